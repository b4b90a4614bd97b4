"""Command-line options made from the settings' declarations (:mod:`samplernn_cli.config`).

A command takes the options of a settings class through a parameter ``model:
Given[ModelConfig]`` and the decorator :func:`setting_options`, which puts in that
parameter's place (so the help lists them there) one Typer option for every setting of the
class that declares flags, and calls the command with a :class:`Given`: the options' values
and which of them the command line gave. ``Annotated[Given[ModelConfig], Only("q_levels",
"quantizer")]`` takes only the settings named.

An option accepts exactly what its setting accepts: the rule's limits become Typer's
``min``/``max`` (whole numbers) or a parse-time range check (decimals, lists, parsed text),
its allowed values an Enum, so a bad value exits with code 2 and a one-line message before
anything is read or written. Values reach the command as the settings hold them: Enum
members as plain strings, a comma-separated list as a tuple, parsed text as its value.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Generic, TypeVar

import typer

from samplernn_cli.config.rules import (
    Declaration,
    Rule,
    Settings,
    declaration,
    declarations,
    default,
    shown,
)
from samplernn_cli.errors import ConfigError

# Upper limits of whole numbers above this are checked but not shown in the help.
SHOWN_LIMIT = 2**31
# The parameter through which a decorated command gets Typer's context.
CONTEXT = "settings_context"

S = TypeVar("S", bound=Settings)
Command = TypeVar("Command", bound=Callable[..., Any])


@dataclass(frozen=True)
class Given(Generic[S]):
    """What the command line says about the settings of one class: each option's value (a
    given_only option's only when given) and the names of the options it gave."""

    values: dict[str, Any]
    explicit: frozenset[str]


class Only:
    """Marks a :class:`Given` parameter that takes only the settings named."""

    def __init__(self, *names: str) -> None:
        self.names = names


@functools.cache
def choice_enum(settings: type, name: str) -> type[Enum]:
    """The str Enum of a setting's allowed values (what Typer shows and checks)."""
    values = declaration(settings, name).rule.choices
    enum_name = name.title().replace("_", "")
    return Enum(enum_name, {value: value for value in values}, type=str)  # type: ignore[return-value]


def within(setting_rule: Rule) -> Callable[[Any], Any]:
    """A parse-time check of a number against its setting's rule."""

    def check(value: float | None) -> float | None:
        if value is not None:
            try:
                setting_rule.check(value)
            except ConfigError:
                text = f"{value:g}" if isinstance(value, float) else str(value)
                raise typer.BadParameter(f"must be {setting_rule.describe()}, got {text}") from None
        return value

    return check


def each_within(setting_rule: Rule) -> Callable[[str | None], tuple[Any, ...] | None]:
    """Reads a comma-separated list (``16,4``, ``0.8,1.0``) whose every element must satisfy
    the setting's rule."""
    kind = setting_rule.kind
    what = "whole numbers" if kind is int else "numbers"

    def check(text: str | None) -> tuple[Any, ...] | None:
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
        return tuple(values)

    return check


def parsed(declared: Declaration) -> Callable[[str | None], Any]:
    """Reads a value with the setting's declared parser (``--max-time 1h30m``), within its
    rule."""
    assert declared.parse is not None

    def check(text: str | None) -> Any:
        if text is None:
            return None
        try:
            value = declared.parse(text)  # type: ignore[misc]
            if value is not None or not declared.optional:
                declared.rule.check(value)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from None
        return value

    return check


def setting_option(settings: type, name: str, *decls: str, **options: Any) -> Any:
    """A Typer option spelled ``decls`` for setting ``name`` of ``settings``, checked by the
    setting's rule. The option remembers its setting (``.setting``), which is how the tests
    find it."""
    setting_rule = declaration(settings, name).rule
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
    return info


def given_only(settings: type[Settings], name: str) -> bool:
    """Whether the option of setting ``name`` has no default of its own."""
    return settings.given_only or declaration(settings, name).given_only


def option_default(settings: type[Settings], name: str) -> Any:
    """The default of a setting's option: None for a given_only option, else the setting's
    (an Enum member for a setting with allowed values)."""
    value = default(settings, name)
    if value is None or given_only(settings, name):
        return None
    if declaration(settings, name).rule.choices:
        return choice_enum(settings, name)(value)
    return value


def declared_option(settings: type[Settings], name: str) -> Any:
    """``Annotated[type, typer.Option(...)]``: the option of setting ``name`` as declared
    (spellings, help, panel, limits)."""
    declared = declaration(settings, name)
    value = default(settings, name)
    options: dict[str, Any] = {
        "help": declared.help.replace("{default}", shown(value)),
        "rich_help_panel": declared.panel or settings.panel,
    }
    kind: Any = declared.rule.kind
    if isinstance(value, tuple):
        kind, options["callback"] = str, each_within(declared.rule)
    elif declared.parse is not None:
        kind, options["callback"] = str, parsed(declared)
    elif declared.rule.choices:
        kind = choice_enum(settings, name)
    if option_default(settings, name) is None:
        kind = kind | None
    return Annotated[kind, setting_option(settings, name, *declared.flags, **options)]


def _group(annotation: Any) -> tuple[type[Settings], tuple[str, ...]] | None:
    """(settings class, its settings to take) of a ``Given`` parameter; None for others."""
    names: tuple[str, ...] = ()
    if typing.get_origin(annotation) is Annotated:
        annotation, *extras = typing.get_args(annotation)
        names = next((extra.names for extra in extras if isinstance(extra, Only)), ())
    if typing.get_origin(annotation) is not Given:
        return None
    (settings,) = typing.get_args(annotation)
    flagged = tuple(name for name, declared in declarations(settings).items() if declared.flags)
    return settings, names or flagged


def _from_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def setting_options(command: Command) -> Command:
    """Give ``command`` one option per declared setting of each ``Given`` parameter, in that
    parameter's place; the command is called with the :class:`Given` instead.

    Typer reads the options from the signature this sets (``__signature__``, which
    ``functools.wraps`` passes on to any later wrapper); every parameter becomes
    keyword-only, as Typer calls commands.
    """
    signature = inspect.signature(command, eval_str=True)
    parameters = []
    groups: dict[str, tuple[type[Settings], tuple[str, ...]]] = {}
    keyword = inspect.Parameter.KEYWORD_ONLY
    for param in signature.parameters.values():
        group = _group(param.annotation)
        if group is None:
            parameters.append(param.replace(kind=keyword))
            continue
        groups[param.name] = group
        settings, names = group
        parameters += [
            inspect.Parameter(name, keyword, annotation=declared_option(settings, name),
                              default=option_default(settings, name))
            for name in names
        ]  # fmt: skip
    parameters.append(inspect.Parameter(CONTEXT, keyword, annotation=typer.Context))
    spelled = [param.name for param in parameters]
    twice = sorted({name for name in spelled if spelled.count(name) > 1})
    if twice:
        raise TypeError(f"{command.__name__} has more than one parameter named {twice}")

    @functools.wraps(command)
    def run(**kwargs: Any) -> Any:
        ctx = kwargs.pop(CONTEXT)
        for parameter, (_, names) in groups.items():
            values = {name: kwargs.pop(name) for name in names}
            kwargs[parameter] = Given(
                values={
                    name: value.value if isinstance(value, Enum) else value
                    for name, value in values.items()
                    if value is not None or _from_command_line(ctx, name)
                },
                explicit=frozenset(name for name in names if _from_command_line(ctx, name)),
            )
        return command(**kwargs)

    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {param.name: param.annotation for param in parameters}
    if signature.return_annotation is not inspect.Signature.empty:
        run.__annotations__["return"] = signature.return_annotation
    return run  # type: ignore[return-value]


def spellings(option: object) -> list[str]:
    """Every command-line spelling of a hand-written option (e.g. --frame-size,
    --frame_size)."""
    info = typing.get_args(option)[1] if typing.get_args(option) else option
    declared = list(info.param_decls)  # type: ignore[attr-defined]
    first = info.default  # type: ignore[attr-defined]
    if isinstance(first, str) and first.startswith("-"):
        declared.insert(0, first)  # Typer keeps the first spelling in `default`
    return [name for decl in declared for name in decl.split("/") if name.startswith("-")]
