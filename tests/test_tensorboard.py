"""TensorBoard event files, read back with TensorBoard's own reader: tags, steps and counts,
across a resume and a live edit, and what happens where TensorBoard is not installed."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import soundfile

from samplernn_cli.config import LiveSettings, StopConditions
from samplernn_cli.errors import ConfigError
from samplernn_cli.run.folder import RunFolder
from samplernn_cli.run.live import LiveSettingsFile
from samplernn_cli.run.tensorboard_log import SCALARS, check_live_settings
from samplernn_cli.training.requests import ResumeRequest, TrainRequest, TrainStatus
from samplernn_cli.training.session import resume, train

from .conftest import RATE, TINY_FLAGS, TINY_LIVE, run_cli, tiny_request, tone_mix
from .test_cli import assert_one_error_line

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

EVERYTHING = {"scalars": 0, "images": 0, "audio": 0, "tensors": 0, "histograms": 0}
INSTALL = "pip install tensorboard"


def events(folder: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(folder / "tensorboard"), size_guidance=EVERYTHING)
    accumulator.Reload()
    return accumulator


def steps(accumulator: EventAccumulator, kind: str, tag: str) -> list[int]:
    return [event.step for event in getattr(accumulator, kind)(tag)]


def request(tmp_path: Path, **live: object) -> TrainRequest:
    source = tmp_path / "in.wav"
    # Long enough for the take-to-recording distance's statistics (two seconds to train on).
    soundfile.write(source, tone_mix(3.0, RATE), RATE)
    return tiny_request(source, tmp_path / "outputs" / "run", rate=RATE, iterations=6,
                        live=replace(TINY_LIVE, **live))  # fmt: skip


def test_event_files_hold_the_run_and_continue_across_a_resume(tmp_path: Path) -> None:
    live = {"tensorboard": True, "generate_every": 3, "checkpoint_every": 3, "val_every": 3,
            "length": 0.3, "num_generated": 2}  # fmt: skip
    train(request(tmp_path, **live))
    folder = tmp_path / "outputs" / "run"
    first = events(folder)
    # The rounds add how many clips were traps, their median distance to the training audio
    # and the best clip's bits when one was not a trap.
    rounds = {"generation/traps", "generation/distance", "generation/best_clip_bits"}
    assert set(SCALARS) <= set(first.Tags()["scalars"]) <= set(SCALARS) | rounds
    assert steps(first, "Scalars", "generation/traps") == [3, 6]
    assert steps(first, "Scalars", "generation/distance") == [3, 6]
    assert all(event.value > 0 for event in first.Scalars("generation/distance"))
    assert first.Tags()["tensors"] == ["generation/scores/text_summary"]
    assert steps(first, "Tensors", "generation/scores/text_summary") == [3, 6]
    for tag in ("bits_per_sample/train", "learning_rate", "gradient_norm", "samples_per_second"):
        assert steps(first, "Scalars", tag) == [1, 2, 3, 4, 5, 6], tag
    assert steps(first, "Scalars", "bits_per_sample/validation") == [3, 6]
    assert sorted(first.Tags()["audio"]) == ["audio/clip_1", "audio/clip_2", "audio/ground_truth"]
    assert sorted(first.Tags()["images"]) == ["spectrogram/clip_1", "spectrogram/clip_2"]
    for tag in first.Tags()["audio"]:
        assert steps(first, "Audio", tag) == [3, 6]
        assert first.Audio(tag)[0].sample_rate == RATE
        assert first.Audio(tag)[0].length_frames == round(0.3 * RATE)
    for tag in first.Tags()["images"]:
        assert steps(first, "Images", tag) == [3, 6]
        assert first.Images(tag)[0].width > first.Images(tag)[0].height > 100
    lr = first.Scalars("learning_rate")[0].value
    assert lr == pytest.approx(TINY_LIVE.learning_rate)
    ended = first.Scalars("bits_per_sample/train")[-1].wall_time

    # As if killed after the checkpoint at 3: continuing from it (the setting is the run's,
    # from NAME_args.json) replaces what the first session wrote after it.
    resume(
        ResumeRequest(
            checkpoint=folder / "run_epoch_1_iter_3_model.pt",
            stop=StopConditions(max_iterations=8),
            device="cpu",
            force=True,
        )
    )
    both = events(folder)
    assert len(list((folder / "tensorboard").glob("events.out.tfevents.*"))) == 2
    assert steps(both, "Scalars", "bits_per_sample/train") == list(range(1, 9))
    assert steps(both, "Scalars", "gradient_norm") == list(range(1, 9))
    assert steps(both, "Scalars", "bits_per_sample/validation") == [3, 6, 8]
    assert steps(both, "Audio", "audio/clip_1") == [3, 6]
    assert steps(both, "Images", "spectrogram/clip_2") == [3, 6]
    later = [e for e in both.Scalars("bits_per_sample/train") if e.step > 3]
    assert all(e.wall_time > ended for e in later)  # the second session's, not the first's

    # --no-tensorboard (an override) in a new folder: no event files there.
    resume(
        ResumeRequest(
            checkpoint=folder / "run_epoch_1_iter_8_model.pt",
            run=RunFolder(path=tmp_path / "outputs" / "quiet", name="quiet"),
            live_overrides={"tensorboard": False},
            stop=StopConditions(max_iterations=9),
            device="cpu",
        )
    )
    assert not (tmp_path / "outputs" / "quiet" / "tensorboard").exists()
    assert (
        json.loads((tmp_path / "outputs/quiet/quiet_args.json").read_text())["tensorboard"] is False
    )


def test_an_edit_of_args_json_turns_event_files_on_and_off(tmp_path: Path) -> None:
    base = request(tmp_path, val_every=100)
    args = base.run.args_json

    def edit(status: TrainStatus) -> None:
        if status.iteration in (2, 5):
            settings = json.loads(args.read_text())
            settings["tensorboard"] = status.iteration == 2
            args.write_text(json.dumps(settings))

    train(replace(base, stop=StopConditions(max_iterations=8)), progress=edit)
    # On after iteration 2, off after iteration 5.
    assert steps(events(base.run.path), "Scalars", "bits_per_sample/train") == [3, 4, 5]


def without_tensorboard(tmp_path: Path) -> dict[str, str]:
    """An environment in which `import tensorboard` fails, as where it is not installed."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['tensorboard'] = None\n")
    return {"PYTHONPATH": str(shim)}


def test_without_tensorboard_the_option_is_one_line(tmp_path: Path) -> None:
    env = without_tensorboard(tmp_path)
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(1.0, RATE), RATE)
    result = run_cli("train", source, *TINY_FLAGS, "--tensorboard", "--max-iterations", "2",
                     cwd=tmp_path, env=env)  # fmt: skip
    assert_one_error_line(result, 1, INSTALL)
    assert not (tmp_path / "outputs").exists()  # before anything is written


@pytest.mark.slow
def test_without_tensorboard_runs_without_the_option_and_resume_says_so(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(1.0, RATE), RATE)
    with_events = run_cli("train", source, "-o", "tb", *TINY_FLAGS, "--tensorboard",
                          "--max-iterations", "2", cwd=tmp_path)  # fmt: skip
    assert with_events.returncode == 0, with_events.stderr
    checkpoint = tmp_path / with_events.stdout.strip()
    env = without_tensorboard(tmp_path)
    plain = run_cli("train", source, "-o", "plain", *TINY_FLAGS, "--max-iterations", "2",
                    cwd=tmp_path, env=env)  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert not (tmp_path / "outputs/plain/tensorboard").exists()
    # The run asks for event files (NAME_args.json): resume says how to get them, or how not.
    remembered = run_cli("resume", checkpoint, "--max-iterations", "3", cwd=tmp_path, env=env)
    assert_one_error_line(remembered, 1, INSTALL)
    off = run_cli("resume", checkpoint, "--no-tensorboard", "--max-iterations", "3",
                  cwd=tmp_path, env=env)  # fmt: skip
    assert off.returncode == 0, off.stderr


def test_an_edit_that_turns_tensorboard_on_where_it_is_missing_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As where TensorBoard is not installed: importing it fails.
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    with pytest.raises(ConfigError, match="TensorBoard is not installed"):
        check_live_settings(LiveSettings(tensorboard=True))
    check_live_settings(LiveSettings())  # off: nothing needed
    live = LiveSettingsFile(tmp_path / "run_args.json", LiveSettings(), check_live_settings)
    live.write()
    live.path.write_text(json.dumps({"tensorboard": True, "learning_rate": 0.5}))
    with caplog.at_level(logging.WARNING, logger="samplernn"):
        assert live.poll() is None
    assert live.current == LiveSettings()
    assert "ignoring the edit to run_args.json: TensorBoard is not installed" in caplog.text
