"""The command line's options against the settings they set: the same limits, allowed values
and defaults (declared once, in samplernn_cli.config), and shell completion."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import subprocess
import typing
from pathlib import Path
from typing import Any

import pytest
import typer

from samplernn_cli.cli.app import app
from samplernn_cli.config import (
    AudioConfig,
    GenerateSettings,
    LiveSettings,
    ModelConfig,
    Rule,
    StopConditions,
    TrainConfig,
    parse_duration,
)
from samplernn_cli.errors import ConfigError

from .conftest import SAMPLERNN

SETTINGS = (ModelConfig, AudioConfig, TrainConfig, LiveSettings, StopConditions, GenerateSettings)
# Positional arguments each command needs before its options are parsed.
POSITIONAL = {"resume": ["x.pt"], "generate": ["x.pt"], "evaluate": ["x.pt", "a.wav"],
              "inspect-checkpoint": ["x.pt"], "quantize-preview": ["a.wav"],
              "export": ["x.pt"]}  # fmt: skip


def setting_options() -> list[tuple[str, Any, str, type, str]]:
    """(command, click parameter, its first spelling, settings class, setting name) for every
    option that sets a stored setting."""
    group = typer.main.get_command(app)
    found = []
    for info in app.registered_commands:
        command = group.commands[info.name]  # type: ignore[attr-defined]
        hints = typing.get_type_hints(info.callback, include_extras=True)
        for param in command.params:
            extras = typing.get_args(hints.get(param.name, int))[1:]
            setting = next((getattr(e, "setting", None) for e in extras), None)
            if setting is not None:
                found.append((info.name, param, param.opts[0], *setting))
    return found


def probes(rule: Rule, flag: str) -> list[str]:
    """Values on both sides of every limit, as typed on the command line."""
    if rule.kind is str:
        return [*rule.choices, "nope"]
    if rule.kind is int:
        low, high = int(rule.low), int(rule.high)  # type: ignore[arg-type]
        return [str(v) for v in (low - 1, low, low + 1, high - 1, high, high + 1)]
    low, high = float(rule.low), float(rule.high)  # type: ignore[arg-type]
    values = [low, math.nextafter(low, math.inf), high, math.nextafter(high, math.inf), -1.0]
    if flag == "--max-time":
        return [f"{v!r}s" for v in values] + ["1h30m", "0s"]
    return [repr(v) for v in values] + ["nan", "inf"]


def accepted_by_setting(rule: Rule, flag: str, text: str) -> bool:
    try:
        if rule.kind is str:
            rule.check(text)
        elif flag == "--max-time":
            rule.check(parse_duration(text))
        else:
            for part in text.split(","):
                rule.check(rule.kind(part))
    except (ConfigError, ValueError):
        return False
    return True


def test_every_option_accepts_exactly_what_its_setting_accepts() -> None:
    group = typer.main.get_command(app)
    options = setting_options()
    assert len(options) > 40
    disagreements = []
    for command_name, param, flag, settings, name in options:
        if param.is_flag:
            continue
        rule = next(f.metadata["rule"] for f in dataclasses.fields(settings) if f.name == name)
        command = group.commands[command_name]  # type: ignore[attr-defined]
        for text in probes(rule, flag):
            try:
                command.make_context(command_name, [*POSITIONAL.get(command_name, []), flag, text])
                parsed = True
            except typer.TyperException:
                parsed = False
            if parsed != accepted_by_setting(rule, flag, text):
                disagreements.append(f"{command_name} {flag} {text}: option {parsed}")
    assert not disagreements, disagreements


def test_option_defaults_are_the_settings_defaults() -> None:
    checked = 0
    for command, param, flag, settings, name in setting_options():
        if param.default is None or name == "frame_sizes":
            continue  # "not given": the command or the live settings file decides
        if (command, flag) == ("quantize-preview", "--encoding"):
            assert param.default.value == "float"  # the exact dequantized values
            continue
        expected = next(f.default for f in dataclasses.fields(settings) if f.name == name)
        default = getattr(param.default, "value", param.default)  # Enums
        assert default == expected, (flag, default, expected)
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("settings", SETTINGS)
def test_validate_checks_every_setting_by_its_rule(settings: type) -> None:
    for field in dataclasses.fields(settings):
        rule: Rule = field.metadata["rule"]
        if rule.kind is bool:
            bad: Any = "yes"
        elif rule.kind is str:
            bad = "nope"
        else:
            bad = rule.high * 2 + 1  # type: ignore[operator]
            bad = rule.kind(bad)
        if isinstance(field.default, tuple):
            bad = (bad,)
        value = dataclasses.replace(settings(), **{field.name: bad})
        with pytest.raises(ConfigError, match=rule.label):
            value.validate()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_shell_completion_in_bash(tmp_path: Path) -> None:
    """The script `--show-completion` prints, sourced into a real bash: commands, options
    and choices complete; file arguments get no candidates, so bash completes file names."""
    (tmp_path / "speech.wav").touch()
    # Name the shell instead of letting Typer detect the one running the tests.
    env = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    script = subprocess.run([*SAMPLERNN, "--show-completion", "bash"], capture_output=True,
                            text=True, check=True, env=env).stdout  # fmt: skip
    assert "complete -o default -F _samplernn_completion samplernn" in script
    lines = [
        'c() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
        '_samplernn_completion samplernn; echo "${COMPREPLY[*]}"; }',
        "c samplernn tr",
        "c samplernn train --hid",
        "c samplernn train --quantizer m",
        "c samplernn generate ckpt.pt --form",
        "c samplernn train spe",
    ]
    # The completion function runs `samplernn` by name, as the user's shell would.
    path = f"{Path(SAMPLERNN[0]).parent}:/usr/bin:/bin"
    result = subprocess.run(
        ["bash", "-c", script + "\n" + "\n".join(lines)],
        capture_output=True, text=True, cwd=tmp_path, env={"PATH": path}, check=True,
    )  # fmt: skip
    assert result.stdout.splitlines() == [
        "train",
        "--hidden-size --hidden_size",
        "mu-law",
        "--format",
        "",
    ], result.stdout + result.stderr
