"""The command line's options against the settings they set: the spellings, help, panels,
limits, allowed values and defaults declared once, in samplernn_cli.config; the declarations'
legacy and inherited values; and shell completion."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import subprocess
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer

from samplernn_cli.cli.app import app
from samplernn_cli.config import (
    AudioConfig,
    GenerateSettings,
    LiveSettings,
    ModelConfig,
    StopConditions,
    TrainConfig,
)
from samplernn_cli.config.rules import Rule, Settings, declaration, declarations, default, shown
from samplernn_cli.errors import ConfigError
from samplernn_cli.training.startup import fine_tune_settings

from .conftest import SAMPLERNN

SETTINGS = (ModelConfig, AudioConfig, TrainConfig, LiveSettings, StopConditions, GenerateSettings)
# The settings each command takes (all of a class's that declare flags, or those named).
COMMAND_SETTINGS: dict[str, tuple[tuple[type[Settings], tuple[str, ...]], ...]] = {
    "train": tuple((c, ()) for c in (AudioConfig, ModelConfig, TrainConfig, LiveSettings,
                                     StopConditions)),
    "resume": ((LiveSettings, ()), (StopConditions, ())),
    "generate": ((GenerateSettings, ()),),
    "quantize-preview": ((AudioConfig, ()), (ModelConfig, ("q_levels", "quantizer"))),
}  # fmt: skip
# Positional arguments each command needs before its options are parsed.
POSITIONAL = {"resume": ["x.pt"], "generate": ["x.pt"], "evaluate": ["x.pt", "a.wav"],
              "inspect-checkpoint": ["x.pt"], "quantize-preview": ["a.wav"],
              "export": ["x.pt"]}  # fmt: skip


def setting_options() -> list[tuple[str, Any, str, type, str]]:
    """(command, click parameter, its first spelling, settings class, setting name) for every
    option that sets a stored setting (declared, or made by hand from a declaration)."""
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


def probes(rule: Rule, text_parsed: bool) -> list[str]:
    """Values on both sides of every limit, as typed on the command line."""
    if rule.kind is str:
        return [*rule.choices, "nope"]
    if rule.kind is int:
        low, high = int(rule.low), int(rule.high)  # type: ignore[arg-type]
        return [str(v) for v in (low - 1, low, low + 1, high - 1, high, high + 1)]
    low, high = float(rule.low), float(rule.high)  # type: ignore[arg-type]
    values = [low, math.nextafter(low, math.inf), high, math.nextafter(high, math.inf), -1.0]
    if text_parsed:  # a duration
        return [f"{v!r}s" for v in values] + ["1h30m", "0s"]
    return [repr(v) for v in values] + ["nan", "inf"]


def accepted_by_setting(settings: type, name: str, text: str) -> bool:
    declared = declaration(settings, name)
    try:
        if declared.rule.kind is str:
            declared.rule.check(text)
        elif declared.parse is not None:
            declared.rule.check(declared.parse(text))
        else:
            for part in text.split(","):
                declared.rule.check(declared.rule.kind(part))
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
        command = group.commands[command_name]  # type: ignore[attr-defined]
        declared = declaration(settings, name)
        for text in probes(declared.rule, declared.parse is not None):
            try:
                command.make_context(command_name, [*POSITIONAL.get(command_name, []), flag, text])
                parsed = True
            except typer.TyperException:
                parsed = False
            if parsed != accepted_by_setting(settings, name, text):
                disagreements.append(f"{command_name} {flag} {text}: option {parsed}")
    assert not disagreements, disagreements


@pytest.mark.parametrize("command_name", sorted(COMMAND_SETTINGS))
def test_every_declared_setting_is_an_option_as_declared(command_name: str) -> None:
    """Spellings, help, panel and default of each option are its declaration's; the limits
    are checked above."""
    command = typer.main.get_command(app).commands[command_name]  # type: ignore[attr-defined]
    params = {param.name: param for param in command.params}
    checked = 0
    for settings, names in COMMAND_SETTINGS[command_name]:
        for name, declared in declarations(settings).items():
            if not declared.flags or (names and name not in names):
                continue
            param = params[name]
            value = default(settings, name)
            assert [*param.opts, *param.secondary_opts] == declared.spellings(), name
            assert param.help == declared.help.replace("{default}", shown(value)), name
            assert param.rich_help_panel == (declared.panel or settings.panel), name
            given_only = settings.given_only or declared.given_only
            expected = None if given_only else value
            assert getattr(param.default, "value", param.default) == expected, name
            checked += 1
    assert checked >= 4


def test_quantize_preview_writes_float_by_default() -> None:
    """Its --encoding is generate's, with the default that keeps the dequantized values."""
    command = typer.main.get_command(app).commands["quantize-preview"]  # type: ignore[attr-defined]
    encoding = next(param for param in command.params if param.name == "encoding")
    assert encoding.default.value == "float"


@pytest.mark.parametrize("settings", SETTINGS)
def test_validate_checks_every_setting_by_its_rule(settings: type) -> None:
    for field in dataclasses.fields(settings):
        rule = declaration(settings, field.name).rule
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


@pytest.mark.parametrize("settings", SETTINGS)
def test_legacy_and_inherited_declarations_are_valid(settings: type[Settings]) -> None:
    legacy = settings.legacy_values()
    for name, value in legacy.items():
        declared = declaration(settings, name)
        if value is None:  # "not set", which only an optional setting may be
            assert declared.optional, name
        else:
            declared.rule.check(value)
    settings(**legacy).validate()
    inherited = [name for name, d in declarations(settings).items() if d.inherited]
    # Fine-tuning takes only train settings from its parent (the architecture it keeps).
    assert not inherited or settings is TrainConfig
    assert all(declaration(settings, name).flags for name in inherited)


def test_fine_tune_rule_names_the_declared_option_and_inherits_the_declared() -> None:
    parent_train = TrainConfig(batch_size=4, seed=9, patience=1, average_decay=0.5)
    parent = SimpleNamespace(model_config=ModelConfig(hidden_size=16), sample_rate=8000,
                             train=parent_train, path=Path("parent.pt"))  # fmt: skip
    own = TrainConfig(seed=3, grad_clip=2.0)
    model, audio, train = fine_tune_settings(
        parent,
        ModelConfig(),
        AudioConfig(),
        own,
        chosen={"grad_clip"},  # type: ignore[arg-type]
    )
    assert model == parent.model_config and audio.sample_rate == 8000
    inherited = {n for n, d in declarations(TrainConfig).items() if d.inherited}
    for name in {f.name for f in dataclasses.fields(TrainConfig)}:
        source = parent_train if name in inherited - {"grad_clip"} else own
        assert getattr(train, name) == getattr(source, name), name
    # A Python caller chose every setting: a model of its own conflicts.
    with pytest.raises(ConfigError, match=r"--hidden-size 1024 conflicts with parent\.pt"):
        fine_tune_settings(parent, ModelConfig(), AudioConfig(), own)  # type: ignore[arg-type]


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


def test_the_2022_preset_keeps_its_earlier_name() -> None:
    from samplernn_cli.cli.options import PresetName
    from samplernn_cli.presets import PRESETS, preset_named

    assert preset_named("seed") is PRESETS["2022"] is preset_named("2022")
    assert {"2022", "seed"} <= {member.value for member in PresetName}
