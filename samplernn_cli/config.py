"""Frozen settings objects shared by the core and the command line.

Each object validates itself (:meth:`validate` raises :class:`ConfigError` with a message that
names the option) and converts to and from a plain dict of JSON types, which is how it is
stored in checkpoints and in ``NAME_args.json``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from samplernn_cli.errors import ConfigError

RNN_TYPES = ("lstm", "gru")
QUANTIZERS = ("linear", "mu-law", "a-law")

# Upper bounds that catch typos (an extra zero or three) before they turn into an
# out-of-memory crash minutes later. Each is far above any published SampleRNN setting.
MAX_PARAMETERS = 2_000_000_000
MAX_Q_LEVELS = 65536
MIN_Q_LEVELS = 3  # with 2 levels silence would have no code of its own
MAX_SAMPLE_RATE = 384_000
MIN_SAMPLE_RATE = 1_000

T = TypeVar("T")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")


def _check_float(
    name: str, value: object, low: float, high: float, *, low_inclusive: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    value = float(value)
    too_low = value < low if low_inclusive else value <= low
    if not math.isfinite(value) or too_low or value > high:
        bound = "at least" if low_inclusive else "greater than"
        raise ConfigError(f"{name} must be {bound} {low:g} and at most {high:g}, got {value:g}")


def _from_dict(cls: type[T], data: dict[str, Any], what: str) -> T:
    """Build a dataclass from a dict, refusing unknown keys (missing keys take defaults)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{what} has unknown settings: {', '.join(unknown)}")
    values = dict(data)
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in values and isinstance(values[f.name], list):
            values[f.name] = tuple(values[f.name])
    return cls(**values)


def _to_dict(obj: object) -> dict[str, Any]:
    out = dataclasses.asdict(obj)  # type: ignore[call-overload]
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


@dataclass(frozen=True)
class ModelConfig:
    """The architecture: everything needed to rebuild the network and read its output.

    ``frame_sizes`` lists the frame tiers from the bottom up: the first entry is the bottom
    frame tier's frame in samples (the seed's ``--frame_size``); each further entry is how many
    frames of the tier below make one frame of the next tier up. ``(16,)`` is the 2-tier
    model; ``(2, 4)`` is a 3-tier model with frames of 2 and 8 samples.
    """

    frame_sizes: tuple[int, ...] = (16,)
    rnn_type: str = "lstm"
    rnn_layers: int = 5
    hidden_size: int = 1024
    embed_size: int = 256  # 0: one-hot input to the sample MLP
    q_levels: int = 256
    quantizer: str = "linear"
    skip_connections: bool = False
    weight_norm: bool = False
    learn_h0: bool = False

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
        for size in self.frame_sizes:
            _check_int("frame_size", size, 1, 4096)
        if self.tier_frame_samples[-1] > 65536:
            raise ConfigError(
                f"the top tier's frame is {self.tier_frame_samples[-1]} samples long; "
                "the product of the frame sizes must be at most 65536"
            )
        if self.rnn_type not in RNN_TYPES:
            raise ConfigError(f"rnn type must be one of {', '.join(RNN_TYPES)}")
        _check_int("rnn_layers", self.rnn_layers, 1, 64)
        _check_int("hidden_size", self.hidden_size, 1, 16384)
        _check_int("embed_size", self.embed_size, 0, 16384)
        if self.quantizer not in QUANTIZERS:
            raise ConfigError(f"quantizer must be one of {', '.join(QUANTIZERS)}")
        _check_int("quantization", self.q_levels, MIN_Q_LEVELS, MAX_Q_LEVELS)
        for name in ("skip_connections", "weight_norm", "learn_h0"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false")
        count = self.parameter_count()
        if count > MAX_PARAMETERS:
            raise ConfigError(
                f"this model would have {count:,} parameters (more than {MAX_PARAMETERS:,}); "
                "lower hidden_size, rnn_layers, embed_size, frame_size or quantization"
            )

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return _from_dict(cls, data, "model settings")


@dataclass(frozen=True)
class AudioConfig:
    """How input audio becomes the model's waveform.

    ``sample_rate`` None keeps the input file's own rate.
    """

    sample_rate: int | None = 16000
    normalize: bool = True

    def validate(self) -> None:
        if self.sample_rate is not None:
            _check_int("sample rate", self.sample_rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
        if not isinstance(self.normalize, bool):
            raise ConfigError("normalize must be true or false")

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioConfig:
        return _from_dict(cls, data, "audio settings")


@dataclass(frozen=True)
class TrainConfig:
    """Training settings fixed for the life of a run (the data plan depends on them)."""

    batch_size: int = 128
    num_frames: int = 64
    sequence_seconds: float = 8.0
    grad_clip: float = 1.0
    val_fraction: float = 0.05
    seed: int = 0
    val_split: str = "tail"  # "tail": the end of every file validates; "files": whole files

    def chunk_length(self, model: ModelConfig) -> int:
        """Target samples per truncated-BPTT step: ``num_frames`` top-tier frames."""
        return self.num_frames * model.tier_frame_samples[-1]

    def validate(self) -> None:
        _check_int("batch_size", self.batch_size, 1, 65536)
        _check_int("num_frames", self.num_frames, 1, 1_000_000)
        _check_float("sequence length", self.sequence_seconds, 0.0, 3600.0)
        _check_float("grad clip", self.grad_clip, 0.0, 1e6)
        _check_float("validation fraction", self.val_fraction, 0.0, 0.5, low_inclusive=True)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        if self.val_split not in ("tail", "files"):
            raise ConfigError(f"val_split must be 'tail' or 'files', got {self.val_split!r}")

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, data, "training settings")


@dataclass(frozen=True)
class LiveSettings:
    """The settings kept in ``NAME_args.json``, which may be edited while training runs."""

    length: float = 5.0
    num_generated: int = 4
    generate_every: int = 1000
    checkpoint_every: int = 1000
    val_every: int = 250
    temperature: float = 1.0
    learning_rate: float = 1e-3

    def validate(self) -> None:
        _check_float("length", self.length, 0.0, 36000.0)
        _check_int("num_generated", self.num_generated, 1, 4096)
        _check_int("generate_every", self.generate_every, 1, 2**62)
        _check_int("checkpoint_every", self.checkpoint_every, 1, 2**62)
        _check_int("val_every", self.val_every, 1, 2**62)
        _check_float("temperature", self.temperature, 0.0, 100.0)
        _check_float("learning_rate", self.learning_rate, 0.0, 10.0)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LiveSettings:
        return _from_dict(cls, data, "live settings")


@dataclass(frozen=True)
class StopConditions:
    """When a training session ends by itself; all None means: train until interrupted.

    ``max_iterations`` and ``max_epochs`` count from the start of the run (a resumed run
    keeps counting); ``max_seconds`` is the wall-clock budget of this session.
    """

    max_iterations: int | None = None
    max_epochs: int | None = None
    max_seconds: float | None = None

    def validate(self) -> None:
        if self.max_iterations is not None:
            _check_int("max iterations", self.max_iterations, 1, 2**62)
        if self.max_epochs is not None:
            _check_int("max epochs", self.max_epochs, 1, 2**62)
        if self.max_seconds is not None:
            _check_float("max time", self.max_seconds, 0.0, 1e9)


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
