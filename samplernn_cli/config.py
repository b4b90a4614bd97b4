"""Frozen settings objects shared by the core and the command line, with their rules.

Every setting's default, limits and allowed values are declared once, on its dataclass field
(:func:`setting`): :meth:`validate` checks them (raising :class:`ConfigError` with a message
that names the setting) and the command line builds its options from the same declarations
(``samplernn_cli.cli.options``), so a value the options accept is one the settings accept.

Each object converts to and from a plain dict of JSON types, which is how it is stored in
checkpoints and in ``NAME_args.json``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

from samplernn_cli.errors import ConfigError
from samplernn_cli.gain import GAIN_MODES

# Upper bounds that catch typos (an extra zero or three) before they turn into an
# out-of-memory crash minutes later. Each is far above any published SampleRNN setting.
MAX_PARAMETERS = 2_000_000_000
MAX_TOP_FRAME = 65536  # samples in the top tier's frame (the product of the frame sizes)
# Counters and periods in iterations: any count a run could reach, well inside int64.
MAX_COUNT = 2**62
MAX_SEED = 2**63 - 1

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
        too_low = value < self.low if self.low_inclusive else value <= self.low
        return math.isfinite(value) and not too_low and value <= self.high

    def describe(self) -> str:
        """The limits in words, for help texts and errors: 'greater than 0 and at most 10'."""
        if self.kind is str:
            return "one of " + ", ".join(self.choices)
        if self.kind is int:
            return f"between {self.low} and {self.high}"
        bound = "at least" if self.low_inclusive else "greater than"
        return f"{bound} {self.low:g} and at most {self.high:g}"


def setting(
    default: Any,
    label: str,
    kind: type,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    choices: tuple[str, ...] = (),
    optional: bool = False,
) -> Any:
    """A dataclass field with its default and its :class:`Rule`; ``optional`` settings (and
    those whose default is None) also accept None, meaning "not set"."""
    rule = Rule(label, kind, low, high, low_inclusive, choices)
    return dataclasses.field(
        default=default, metadata={"rule": rule, "optional": optional or default is None}
    )


def rule(settings: type, name: str) -> Rule:
    """The rule declared on field ``name`` of a settings class."""
    for f in fields(settings):  # type: ignore[arg-type]
        if f.name == name:
            return f.metadata["rule"]
    raise KeyError(f"{settings.__name__} has no setting {name!r}")


def default(settings: type, name: str) -> Any:
    """The default of field ``name`` of a settings class."""
    for f in fields(settings):  # type: ignore[arg-type]
        if f.name == name:
            return f.default
    raise KeyError(f"{settings.__name__} has no setting {name!r}")


def _check_rules(obj: object) -> None:
    """Check every field that declares a rule (tuples element by element; None allowed
    where the setting is optional)."""
    for f in fields(obj):  # type: ignore[arg-type]
        field_rule: Rule | None = f.metadata.get("rule")
        if field_rule is None:
            continue
        value = getattr(obj, f.name)
        if value is None and f.metadata["optional"]:
            continue
        if isinstance(f.default, tuple):
            if not isinstance(value, tuple) or not value:
                raise ConfigError(f"{field_rule.label} must be a non-empty list")
            for item in value:
                field_rule.check(item)
        else:
            field_rule.check(value)


class Settings:
    """Base of the settings dataclasses: checking the rules, and plain-dict conversion."""

    what: ClassVar[str] = "settings"  # how messages name the whole set

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


@dataclass(frozen=True)
class ModelConfig(Settings):
    """The architecture: everything needed to rebuild the network and read its output.

    ``frame_sizes`` lists the frame tiers from the bottom up: the first entry is the bottom
    frame tier's frame in samples (the seed's ``--frame_size``); each further entry is how many
    frames of the tier below make one frame of the next tier up. ``(16,)`` is the 2-tier
    model; ``(2, 4)`` is a 3-tier model with frames of 2 and 8 samples.
    """

    what: ClassVar[str] = "model settings"

    frame_sizes: tuple[int, ...] = setting((16,), "frame_size", int, 1, 4096)
    rnn_type: str = setting("lstm", "rnn type", str, choices=("lstm", "gru"))
    rnn_layers: int = setting(5, "rnn_layers", int, 1, 64)
    hidden_size: int = setting(1024, "hidden_size", int, 1, 16384)
    # 0: one-hot input to the sample MLP
    embed_size: int = setting(256, "embed_size", int, 0, 16384)
    # Quantization levels: the model's output classes (`--quantization` on the command line).
    # With 2 levels silence would have no code of its own.
    q_levels: int = setting(256, "quantization", int, 3, 65536)
    quantizer: str = setting("linear", "quantizer", str, choices=("linear", "mu-law", "a-law"))
    skip_connections: bool = setting(False, "skip_connections", bool)
    weight_norm: bool = setting(False, "weight_norm", bool)
    learn_h0: bool = setting(False, "learn_h0", bool)

    @property
    def tier_frame_samples(self) -> tuple[int, ...]:
        """Frame length in samples of each frame tier, bottom up: (16,) or (2, 8)."""
        sizes = []
        length = 1
        for ratio in self.frame_sizes:
            length *= ratio
            sizes.append(length)
        return tuple(sizes)

    @property
    def history(self) -> int:
        """Samples of context before the first target that a training window must carry."""
        return self.tier_frame_samples[-1]

    @property
    def num_tiers(self) -> int:
        """Tiers including the sample-level MLP: 2 for the seed's model."""
        return len(self.frame_sizes) + 1

    def parameter_count(self) -> int:
        """Number of trainable parameters of :class:`samplernn_cli.model.SampleRNN`."""
        hidden, q, wn = self.hidden_size, self.q_levels, self.weight_norm

        def linear(inputs: int, outputs: int, bias: bool = True) -> int:
            # weight (+ bias) (+ one norm per output unit with weight normalisation)
            return inputs * outputs + (outputs if bias else 0) + (outputs if wn else 0)

        gates = 4 if self.rnn_type == "lstm" else 3

        def rnn_layer(inputs: int) -> int:
            return linear(inputs, gates * hidden, bias=True) + linear(
                hidden, gates * hidden, bias=True
            )

        total = 0
        for frame, ratio in zip(self.tier_frame_samples, self.frame_sizes, strict=True):
            total += linear(frame, hidden)  # input expansion
            if self.skip_connections:
                total += rnn_layer(hidden) + (self.rnn_layers - 1) * rnn_layer(2 * hidden)
                total += linear(self.rnn_layers * hidden, hidden)
            else:
                total += self.rnn_layers * rnn_layer(hidden)
            total += linear(hidden, hidden * ratio)  # learned upsampling
            if self.learn_h0:
                total += (2 if self.rnn_type == "lstm" else 1) * self.rnn_layers * hidden
        width = self.embed_size if self.embed_size > 0 else q
        total += q * self.embed_size  # embedding table (none for one-hot)
        total += linear(self.frame_sizes[0] * width, hidden, bias=False)
        total += 2 * linear(hidden, hidden) + linear(hidden, q)
        return total

    def describe(self) -> str:
        """A one-line summary: '2-tier SampleRNN, LSTM 5x1024, frame 16, embed 256, ...'."""
        frames = "/".join(str(s) for s in self.tier_frame_samples)
        extras = [
            name
            for name, on in (
                ("skip connections", self.skip_connections),
                ("weight norm", self.weight_norm),
                ("learned h0", self.learn_h0),
            )
            if on
        ]
        embed = f"embed {self.embed_size}" if self.embed_size else "one-hot input"
        return (
            f"{self.num_tiers}-tier SampleRNN, {self.rnn_type.upper()} "
            f"{self.rnn_layers}x{self.hidden_size}, frames of {frames} samples, {embed}, "
            f"{self.q_levels} {self.quantizer} levels" + "".join(f", {e}" for e in extras)
        )

    def validate(self) -> None:
        if not isinstance(self.frame_sizes, tuple) or not self.frame_sizes:
            raise ConfigError("frame sizes must be a non-empty list of whole numbers")
        super().validate()
        if self.tier_frame_samples[-1] > MAX_TOP_FRAME:
            raise ConfigError(
                f"the top tier's frame is {self.tier_frame_samples[-1]} samples long; "
                f"the product of the frame sizes must be at most {MAX_TOP_FRAME}"
            )
        count = self.parameter_count()
        if count > MAX_PARAMETERS:
            raise ConfigError(
                f"this model would have {count:,} parameters (more than {MAX_PARAMETERS:,}); "
                "lower hidden_size, rnn_layers, embed_size, frame_size or quantization"
            )


@dataclass(frozen=True)
class AudioConfig(Settings):
    """How input audio becomes the model's waveform.

    ``sample_rate`` None keeps the input file's own rate.
    """

    what: ClassVar[str] = "audio settings"

    sample_rate: int | None = setting(16000, "sample rate", int, 1_000, 384_000, optional=True)
    normalize: bool = setting(True, "normalize", bool)


@dataclass(frozen=True)
class TrainConfig(Settings):
    """Training settings fixed for the life of a run (the data plan depends on them)."""

    what: ClassVar[str] = "training settings"

    batch_size: int = setting(128, "batch_size", int, 1, 65536)
    num_frames: int = setting(64, "num_frames", int, 1, 1_000_000)
    sequence_seconds: float = setting(8.0, "sequence length", float, 0.0, 3600.0,
                                      low_inclusive=False)  # fmt: skip
    grad_clip: float = setting(1.0, "grad clip", float, 0.0, 1e6, low_inclusive=False)
    val_fraction: float = setting(0.05, "validation fraction", float, 0.0, 0.5)
    seed: int = setting(0, "seed", int, 0, MAX_SEED)
    # "tail": the end of every file validates; "files": whole files
    val_split: str = setting("tail", "val_split", str, choices=("tail", "files"))
    # "random": each epoch draws where every training sequence starts (within its share of
    # the audio); "fixed": the same evenly spaced starts every epoch (what checkpoints written
    # before this setting existed did)
    sequence_starts: str = setting("random", "sequence_starts", str,
                                   choices=("random", "fixed"))  # fmt: skip
    # Validations in a row without a new best before the learning rate is halved and training
    # continues from the best model (weights and optimizer state); 0: never, a constant rate
    # (what checkpoints written before this setting existed did).
    patience: int = setting(3, "patience", int, 0, MAX_COUNT)
    # Halvings after which the next such plateau ends the run, with the best model.
    max_halvings: int = setting(3, "max_halvings", int, 0, 64)
    # Each training sequence is played at a gain drawn from [min_gain, 1] per epoch and
    # quantized again; 1: off (what checkpoints written before this setting existed did).
    min_gain: float = setting(1.0, "min_gain", float, 0.0, 1.0, low_inclusive=False)
    # The probability that an input code the model sees (not a target) moves one level up or
    # down; 0: off (what checkpoints written before this setting existed did).
    input_noise: float = setting(0.0, "input_noise", float, 0.0, 1.0)
    # Training also runs on copies of the training parts played at speeds 1 - s, 1 - s/2,
    # 1 + s/2 and 1 + s (resampled: pitch moves with speed); 0: off (what checkpoints
    # written before this setting existed did).
    speed_spread: float = setting(0.08, "speed_spread", float, 0.0, 0.5)
    # Validation, generated clips and checkpoints use an exponential moving average of the
    # weights with this decay per step (training/averaging.py); 0: off, the weights as
    # trained (what checkpoints written before this setting existed did).
    average_decay: float = setting(0.999, "average_decay", float, 0.0, 0.99999)

    def chunk_length(self, model: ModelConfig) -> int:
        """Target samples per truncated-BPTT step: ``num_frames`` top-tier frames."""
        return self.num_frames * model.tier_frame_samples[-1]


@dataclass(frozen=True)
class LiveSettings(Settings):
    """The settings kept in ``NAME_args.json``, which may be edited while training runs."""

    what: ClassVar[str] = "live settings"

    length: float = setting(5.0, "length", float, 0.0, 36000.0, low_inclusive=False)
    num_generated: int = setting(4, "num_generated", int, 1, 4096)
    generate_every: int = setting(1000, "generate_every", int, 1, MAX_COUNT)
    checkpoint_every: int = setting(1000, "checkpoint_every", int, 1, MAX_COUNT)
    val_every: int = setting(250, "val_every", int, 1, MAX_COUNT)
    temperature: float = setting(1.0, "temperature", float, 0.0, 100.0, low_inclusive=False)
    learning_rate: float = setting(1e-3, "learning_rate", float, 0.0, 10.0, low_inclusive=False)
    # How many periodic checkpoints to keep (the newest ones); None keeps them all. The best
    # model and the checkpoint a session resumed from are never deleted.
    keep_checkpoints: int | None = setting(None, "keep_checkpoints", int, 1, MAX_COUNT)
    # Write TensorBoard event files to the run folder's tensorboard/ (needs the extra).
    tensorboard: bool = setting(False, "tensorboard", bool)


@dataclass(frozen=True)
class StopConditions(Settings):
    """When a training session ends by itself; all None means: train until interrupted.

    ``max_iterations`` and ``max_epochs`` count from the start of the run (a resumed run
    keeps counting); ``max_seconds`` is the wall-clock budget of this session.
    """

    what: ClassVar[str] = "stop conditions"

    max_iterations: int | None = setting(None, "max iterations", int, 1, MAX_COUNT)
    max_epochs: int | None = setting(None, "max epochs", int, 1, MAX_COUNT)
    max_seconds: float | None = setting(None, "max time", float, 0.0, 1e9, low_inclusive=False)

    def total_iterations(self, iterations_per_epoch: int) -> int | None:
        """The iteration the run stops at by itself, if one is known."""
        totals = [] if self.max_iterations is None else [self.max_iterations]
        if self.max_epochs is not None:
            totals.append(self.max_epochs * iterations_per_epoch)
        return min(totals) if totals else None

    def eta(self, iteration: int, per_epoch: int, elapsed: float, done: int) -> float | None:
        """Seconds until the session stops by itself, at the rate so far (``done``
        iterations in ``elapsed`` seconds of this session, now at ``iteration``), if known."""
        candidates = []
        total = self.total_iterations(per_epoch)
        if total is not None and done > 0:
            candidates.append(max(0, total - iteration) * elapsed / done)
        if self.max_seconds is not None:
            candidates.append(max(0.0, self.max_seconds - elapsed))
        return min(candidates) if candidates else None


@dataclass(frozen=True)
class GenerateSettings(Settings):
    """What ``samplernn generate`` makes: how many clips, how long, how they are drawn and
    written. The model, quantizer and sample rate come from the checkpoint."""

    what: ClassVar[str] = "generation settings"

    length: float = setting(10.0, "length", float, 0.0, 36000.0, low_inclusive=False)
    count: int = setting(1, "count", int, 1, 100_000)
    # One temperature for all clips, or one per clip.
    temperatures: tuple[float, ...] = setting((1.0,), "temperature", float, 0.0, 100.0,
                                              low_inclusive=False)  # fmt: skip
    seed: int | None = setting(None, "seed", int, 0, MAX_SEED)  # None: a random seed
    batch_size: int = setting(16, "batch size", int, 1, 65536)
    prime_seconds: float | None = setting(None, "prime seconds", float, 0.0, 36000.0,
                                          low_inclusive=False)  # fmt: skip
    keep_prime: bool = setting(False, "keep_prime", bool)
    # The level the prime is brought to (samplernn_cli.gain).
    prime_gain: str = setting("training", "prime gain", str, choices=GAIN_MODES)
    file_format: str = setting("wav", "format", str, choices=("wav", "flac"))
    encoding: str = setting("pcm16", "encoding", str, choices=("pcm16", "pcm24", "float"))

    def validate(self) -> None:
        super().validate()
        if len(self.temperatures) not in (1, self.count):
            raise ConfigError(
                f"{len(self.temperatures)} temperatures for {self.count} clips; give one, "
                "or one per clip"
            )
        if self.file_format == "flac" and self.encoding == "float":
            raise ConfigError("FLAC holds integer samples only; use --encoding pcm16 or pcm24")

    def clip_temperatures(self) -> list[float]:
        """One temperature per clip."""
        if len(self.temperatures) == 1:
            return list(self.temperatures) * self.count
        return list(self.temperatures)


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
