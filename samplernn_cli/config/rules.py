"""How a setting is declared: its rule (:class:`Rule`), and everything else said about it
once, on its dataclass field (:func:`setting`): its default, how the command line spells and
explains it, the value checkpoints written before it existed imply, and whether a fine-tuned
run takes it from its parent.

:class:`Settings` is the base of the settings dataclasses: checking every rule, and
conversion to and from plain dicts of JSON types (how settings are stored in checkpoints and
in ``NAME_args.json``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, TypeVar

from samplernn_cli.errors import ConfigError

# Upper bounds that catch typos (an extra zero or three) before they turn into an
# out-of-memory crash minutes later. Each is far above any published SampleRNN setting.
MAX_PARAMETERS = 2_000_000_000
MAX_TOP_FRAME = 65536  # samples in the top tier's frame (the product of the frame sizes)
# Counters and periods in iterations: any count a run could reach, well inside int64.
MAX_COUNT = 2**62
MAX_SEED = 2**63 - 1

# Help panels that hold options of more than one settings class.
INPUT_PANEL = "Input audio"
OUTPUT_PANEL = "Output and display"

S = TypeVar("S", bound="Settings")


@dataclass(frozen=True)
class Rule:
    """What values one setting accepts.

    ``kind`` is ``int``, ``float``, ``bool`` or ``str``. Numbers lie in ``low .. high``
    (``low`` itself excluded when ``low_inclusive`` is False, which only floats use); a
    ``str`` setting takes one of ``choices``. A tuple setting applies the rule to each
    element; None is accepted where the field's default is None (meaning "not set").
    """

    label: str  # the setting's name in messages
    kind: type
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    choices: tuple[str, ...] = ()
    endless: bool = False  # a float that also accepts infinity ("no end")

    def check(self, value: object) -> None:
        """Raise :class:`ConfigError` unless ``value`` satisfies the rule."""
        name = self.label
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be true or false")
        elif self.kind is str:
            if value not in self.choices:
                raise ConfigError(f"{name} must be {self.describe()}, got {value!r}")
        elif self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be a whole number, got {value!r}")
            if not self.low <= value <= self.high:  # type: ignore[operator]
                raise ConfigError(f"{name} must be {self.describe()}, got {value}")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            if not self.accepts_number(float(value)):
                raise ConfigError(f"{name} must be {self.describe()}, got {float(value):g}")

    def accepts_number(self, value: float) -> bool:
        """Whether a number lies within the limits (finite, never NaN)."""
        assert self.low is not None and self.high is not None
        if self.endless and value == math.inf:
            return True
        too_low = value < self.low if self.low_inclusive else value <= self.low
        return math.isfinite(value) and not too_low and value <= self.high

    def describe(self) -> str:
        """The limits in words, for help texts and errors: 'greater than 0 and at most 10'."""
        if self.kind is str:
            return "one of " + ", ".join(self.choices)
        if self.kind is int:
            if self.high is not None and self.high >= MAX_COUNT:  # no limit a user could reach
                return f"at least {self.low}"
            return f"between {self.low} and {self.high}"
        bound = "at least" if self.low_inclusive else "greater than"
        return f"{bound} {self.low:g} and at most {self.high:g}" + (
            ", or inf" if self.endless else ""
        )


@dataclass(frozen=True)
class Declaration:
    """Everything declared about one setting besides its default (see :func:`setting`)."""

    rule: Rule
    optional: bool  # None is accepted, meaning "not set"
    flags: tuple[str, ...]
    help: str
    panel: str | None
    given_only: bool
    parse: Callable[[str], Any] | None
    legacy: Any
    inherited: bool

    def spellings(self) -> list[str]:
        """Every command-line spelling, the negative of a boolean pair included."""
        return [name for flag in self.flags for name in flag.split("/")]


def setting(
    default: Any,
    label: str,
    kind: type,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    endless: bool = False,
    choices: tuple[str, ...] = (),
    optional: bool = False,
    flags: tuple[str, ...] = (),
    help: str = "",
    panel: str | None = None,
    given_only: bool = False,
    parse: Callable[[str], Any] | None = None,
    legacy: Any = MISSING,
    inherited: bool = False,
) -> Any:
    """A dataclass field: the setting's default and its :class:`Declaration`.

    ``default``, ``label`` (the setting's name in messages), ``kind``, ``low``, ``high``,
    ``low_inclusive``, ``endless`` (a float that also takes infinity) and ``choices`` make
    its :class:`Rule`; ``optional`` settings (and those whose default is None) also accept
    None, meaning "not set".

    The command line: ``flags`` are the option's spellings (none: no option; the first is
    the one messages use; a boolean takes ``"--x/--no-x"``); ``help`` is its help text, in
    which ``{default}`` stands for the default; ``panel`` the help panel, where not the
    class's own. A ``given_only`` option has no default of its own: the command sees a
    value only when one is given, and its help states the default. ``parse`` reads the
    value from the text typed (a comma-separated list reads each element by the rule).

    Checkpoints: ``legacy`` is the value that matches checkpoints written before the setting
    existed; ``inherited`` train settings that a fine-tuning run (``--init-from``) is not
    given are its parent's.
    """
    declaration = Declaration(
        rule=Rule(label, kind, low, high, low_inclusive, choices, endless),
        optional=optional or default is None,
        flags=flags,
        help=help,
        panel=panel,
        given_only=given_only,
        parse=parse,
        legacy=legacy,
        inherited=inherited,
    )
    return dataclasses.field(default=default, metadata={"setting": declaration})


def declarations(settings: type) -> dict[str, Declaration]:
    """The declaration of every setting of a settings class, in field order."""
    return {f.name: f.metadata["setting"] for f in fields(settings)}  # type: ignore[arg-type]


def declaration(settings: type, name: str) -> Declaration:
    """The declaration of setting ``name`` of a settings class."""
    try:
        return declarations(settings)[name]
    except KeyError:
        raise KeyError(f"{settings.__name__} has no setting {name!r}") from None


def rule(settings: type, name: str) -> Rule:
    """The rule declared on field ``name`` of a settings class."""
    return declaration(settings, name).rule


def default(settings: type, name: str) -> Any:
    """The default of field ``name`` of a settings class."""
    for f in fields(settings):  # type: ignore[arg-type]
        if f.name == name:
            return f.default
    raise KeyError(f"{settings.__name__} has no setting {name!r}")


def flag(settings: type, name: str) -> str:
    """How messages name setting ``name``'s option: its first spelling."""
    return declaration(settings, name).spellings()[0]


def shown(value: Any) -> str:
    """A setting's value as help texts write it: 0.001, 16, 2,4, on."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_rules(obj: object) -> None:
    """Check every field by its rule (tuples element by element; None allowed where the
    setting is optional)."""
    for f in fields(obj):  # type: ignore[arg-type]
        declared: Declaration = f.metadata["setting"]
        value = getattr(obj, f.name)
        if value is None and declared.optional:
            continue
        if isinstance(f.default, tuple):
            if not isinstance(value, tuple) or not value:
                raise ConfigError(f"{declared.rule.label} must be a non-empty list")
            for item in value:
                declared.rule.check(item)
        else:
            declared.rule.check(value)


class Settings:
    """Base of the settings dataclasses: checking the rules, and plain-dict conversion."""

    what: ClassVar[str] = "settings"  # how messages name the whole set
    panel: ClassVar[str] = ""  # the help panel of its options
    # Whether every option of the class is given_only (see :func:`setting`).
    given_only: ClassVar[bool] = False

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first setting that breaks its rule."""
        _check_rules(self)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls: type[S], data: dict[str, Any]) -> S:
        """Build from a dict, refusing unknown keys (missing keys take defaults)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.what} must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{cls.what} has unknown settings: {', '.join(unknown)}")
        values = dict(data)
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in values and isinstance(values[f.name], list):
                values[f.name] = tuple(values[f.name])
        return cls(**values)

    @classmethod
    def legacy_values(cls) -> dict[str, Any]:
        """The settings added after checkpoints were first written, with the values that
        match checkpoints written before them (which lack them)."""
        return {
            name: declared.legacy
            for name, declared in declarations(cls).items()
            if declared.legacy is not MISSING
        }


def parse_duration(text: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"45m"``, ``"12h"``, ``"2d"`` or ``"1h30m"``."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    remaining = text.strip().lower()
    if not remaining:
        raise ConfigError("empty duration")
    try:
        return _positive(float(remaining), text)
    except ValueError:
        pass
    total = 0.0
    number = ""
    for char in remaining:
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            try:
                total += float(number) * units[char]
            except ValueError:
                raise ConfigError(f"cannot read duration {text!r}") from None
            number = ""
        else:
            raise ConfigError(f"cannot read duration {text!r}; use e.g. 90s, 45m, 12h, 2d or 1h30m")
    if number:
        raise ConfigError(f"cannot read duration {text!r}; a number needs a unit (s, m, h, d)")
    return _positive(total, text)


def _positive(seconds: float, text: str) -> float:
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"duration {text!r} must be greater than zero")
    return seconds
