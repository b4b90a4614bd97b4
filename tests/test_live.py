"""NAME_args.json: valid edits apply, invalid ones are reported once and ignored."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from samplernn_cli.config import LiveSettings
from samplernn_cli.errors import ConfigError
from samplernn_cli.run.live import LiveSettingsFile, parse_live_settings


def edit(path: Path, text: str) -> None:
    path.write_text(text)
    stat = path.stat()  # make sure the change is seen even within one mtime tick
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"generate_every": 0}', "generate_every must be at least 1"),
        ('{"generate_every": -5}', "generate_every must be at least 1"),
        ('{"generate_every": "10"}', "whole number"),
        ('{"generate_every": 2.5}', "whole number"),
        ('{"length": 0}', "length must be greater than 0"),
        ('{"length": true}', "must be a number"),
        ('{"learning_rate": -1e-3}', "learning_rate"),
        ('{"generate_evry": 10}', "unknown settings: generate_evry"),
    ],
)
def test_invalid_edits_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_live_settings(text, LiveSettings())


def test_partial_edits_keep_other_values_and_ints_work_for_floats() -> None:
    settings = parse_live_settings('{"length": 3, "num_generated": 2}', LiveSettings())
    assert settings.length == 3.0 and isinstance(settings.length, float)
    assert settings.num_generated == 2
    assert settings.generate_every == LiveSettings().generate_every


def test_file_polling(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "run_args.json"
    live = LiveSettingsFile(path, LiveSettings())
    live.write()
    assert json.loads(path.read_text()) == LiveSettings().to_dict()
    assert live.poll() is None  # unchanged

    with caplog.at_level(logging.INFO, logger="samplernn"):
        edit(path, '{"generate_every": 7}')
        assert live.poll() == LiveSettings(generate_every=7)
        assert "generate_every 1000 -> 7" in caplog.text
        caplog.clear()

        edit(path, "{broken")
        assert live.poll() is None
        edit(path, "{broken")  # the same bad content again: reported once
        assert live.poll() is None
        assert caplog.text.count("ignoring the edit") == 1
        assert live.current.generate_every == 7  # last good values stay in effect
        caplog.clear()

        path.unlink()
        assert live.poll() is None
        assert live.poll() is None
        assert caplog.text.count("was deleted") == 1

        edit(path, '{"checkpoint_every": 3}')
        assert live.poll() == LiveSettings(generate_every=7, checkpoint_every=3)
