"""How a setting's declaration in :mod:`samplernn_cli.config` becomes a Typer option: its
limits become Typer's ``min``/``max`` (whole numbers) or a parse-time range check (decimals,
lists), its allowed values an Enum, so the option accepts exactly what the setting accepts.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from enum import Enum
from typing import Any

import typer

from samplernn_cli.config import Rule, StopConditions, default, parse_duration, rule
from samplernn_cli.errors import ConfigError

# Upper limits of whole numbers above this are checked but not shown in the help.
SHOWN_LIMIT = 2**31
# Every option made by setting_option, in the order declared.
SETTING_OPTIONS: list[Any] = []


def choices(settings: type, name: str, enum_name: str) -> type[Enum]:
    """A str Enum of a setting's allowed values (what Typer shows and checks)."""
    values = rule(settings, name).choices
    return Enum(enum_name, {value: value for value in values}, type=str)  # type: ignore[return-value]


def within(setting_rule: Rule) -> Callable[[Any], Any]:
    """A parse-time check of a number against its setting's rule."""

    def check(value: float | None) -> float | None:
        if value is not None:
            try:
                setting_rule.check(value)
            except ConfigError:
                shown = f"{value:g}" if isinstance(value, float) else str(value)
                raise typer.BadParameter(
                    f"must be {setting_rule.describe()}, got {shown}"
                ) from None
        return value

    return check


def each_within(setting_rule: Rule, kind: type) -> Callable[[str | None], str | None]:
    """A parse-time check of a comma-separated list (``16,4``, ``0.8,1.0``) whose every
    element must satisfy the setting's rule; the command splits it."""
    what = "whole numbers" if kind is int else "numbers"

    def check(text: str | None) -> str | None:
        if text is None:
            return None
        parts = text.replace(",", " ").split()
        try:
            values = [kind(part) for part in parts]
        except ValueError:
            values = []
        if not values:
            raise typer.BadParameter(f"{text!r}: give {what} separated by commas")
        for value in values:
            try:
                setting_rule.check(value)
            except ConfigError:
                raise typer.BadParameter(
                    f"{text!r}: each value must be {setting_rule.describe()}"
                ) from None
        return text

    return check


def split_numbers(text: str, kind: type = int) -> tuple[Any, ...]:
    """The values of a comma-separated option checked by :func:`each_within`."""
    return tuple(kind(part) for part in text.replace(",", " ").split())


def checked_duration(text: str | None) -> str | None:
    """``--max-time``: a readable duration within the stop condition's limits."""
    if text is None:
        return None
    try:
        rule(StopConditions, "max_seconds").check(parse_duration(text))
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    return text


def setting_option(settings: type, name: str, *decls: str, **options: Any) -> Any:
    """A Typer option for setting ``name`` of ``settings``, checked by the setting's rule.

    The option remembers its setting (``.setting``), which is how the tests and
    ``options.FIXED_AT_RESUME`` find it.
    """
    setting_rule = rule(settings, name)
    if "callback" not in options:
        if setting_rule.kind is int:
            # Typer checks the range (and shows it in the help); an upper limit far beyond
            # any real value (counters, seeds) is checked without cluttering the help.
            options["min"] = setting_rule.low
            if setting_rule.high <= SHOWN_LIMIT:  # type: ignore[operator]
                options["max"] = setting_rule.high
            else:
                options["callback"] = within(setting_rule)
        elif setting_rule.kind is float:
            options["callback"] = within(setting_rule)
        elif setting_rule.kind is str:
            options.setdefault("case_sensitive", False)
    info = typer.Option(*decls, **options)
    info.setting = (settings, name)  # type: ignore[attr-defined]
    SETTING_OPTIONS.append(info)
    return info


def default_note(settings: type, name: str) -> str:
    """' (default: 0.001)', for the help of options whose default is "not given"."""
    value = default(settings, name)
    if isinstance(value, bool):
        shown = "on" if value else "off"
    else:
        shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f" (default: {shown})"


def spellings(option: object) -> list[str]:
    """Every command-line spelling of an option (e.g. --hidden-size, --hidden_size)."""
    info = typing.get_args(option)[1] if typing.get_args(option) else option
    declared = list(info.param_decls)  # type: ignore[attr-defined]
    first = info.default  # type: ignore[attr-defined]
    if isinstance(first, str) and first.startswith("-"):
        declared.insert(0, first)  # Typer keeps the first spelling in `default`
    return [name for decl in declared for name in decl.split("/") if name.startswith("-")]
