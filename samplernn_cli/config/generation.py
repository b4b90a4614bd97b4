"""What ``samplernn generate`` makes (:class:`GenerateSettings`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from samplernn_cli.config.rules import MAX_SEED, OUTPUT_PANEL, Settings, setting
from samplernn_cli.errors import ConfigError
from samplernn_cli.gain import GAIN_MODES

# The gain modes of samplernn_cli.gain in words (also the help of `evaluate --gain`).
GAIN_HELP = (
    "training: the gain training gave the input file of the same name (else the training "
    "files' median gain, or peak if that would clip); peak: peak-normalised on its own; "
    "none: the file's own level."
)

# The default --quiet-boost (samplernn_cli.generation.quiet.QuietGuard), which the
# generation rounds of training use too.
QUIET_BOOST = 1.2


@dataclass(frozen=True)
class GenerateSettings(Settings):
    """What ``samplernn generate`` makes: how many clips, how long, how they are drawn and
    written. The model, quantizer and sample rate come from the checkpoint."""

    what: ClassVar[str] = "generation settings"
    panel: ClassVar[str] = "Generation"

    length: float = setting(
        10.0, "length", float, 0.0, 36000.0, low_inclusive=False, endless=True,
        flags=("--length",),
        help="Seconds of new audio per clip; inf streams one clip without end (with -o -) "
        "until its reader closes the pipe or Ctrl-C.",
    )  # fmt: skip
    # given_only: the default depends on --temperature.
    count: int = setting(
        1, "count", int, 1, 100_000, flags=("--count", "-n"), given_only=True,
        help="Number of clips (default: {default}, or one per --temperature value).",
    )  # fmt: skip
    # One temperature for all clips, or one per clip.
    temperatures: tuple[float, ...] = setting(
        (1.0,), "temperature", float, 0.0, 100.0, low_inclusive=False,
        flags=("--temperature",), given_only=True,
        help="Sampling temperature: one value for every clip, or a comma-separated list with "
        "one per clip (0.8,1.0,1.2). 1.0 samples the model's own distribution; lower is "
        "tamer (default: {default}).",
    )  # fmt: skip
    quiet_boost: float = setting(
        QUIET_BOOST, "quiet boost", float, 1.0, 10.0, flags=("--quiet-boost",),
        help="While a clip's last quarter second lies 20 dB below the training audio's level "
        "(or its last second far below the recording's quietest 4 s), sample it at this many "
        "times its temperature until it sounds again, so that it cannot fall silent for good "
        "(default: {default}; 1: off).",
    )  # fmt: skip
    # None: as many as --count (every take is written, in the order generated).
    candidates: int | None = setting(
        None, "candidates", int, 1, 100_000, flags=("--candidates",),
        help="Generate this many takes and keep the --count best, written and printed best "
        "first: takes that are silence, far quieter than the training audio, a loop or noise "
        "are rejected, the rest ranked by their distance to the training audio (lower: "
        "closer; by the model's own bits per sample for checkpoints from before the "
        "distance). --json gives every take's scores (default: --count, every take kept in "
        "the order generated).",
    )  # fmt: skip
    seed: int | None = setting(
        None, "seed", int, 0, MAX_SEED, flags=("--seed",),
        help="Random seed: the same seed, checkpoint and settings give identical files "
        "(default: a random seed, reported on stderr).",
    )  # fmt: skip
    batch_size: int = setting(
        64, "batch size", int, 1, 65536, flags=("--batch-size", "--batch_size"),
        help="At most this many clips are generated together (bounds memory; does not change "
        "the output). More clips together are faster in all.",
    )  # fmt: skip
    # samplernn_cli.model.precision; "auto" resolves in generation.engine.resolve_precision
    precision: str = setting(
        "auto", "precision", str, choices=("auto", "float32", "int8"), flags=("--precision",),
        help="The weights' precision while generating: int8 stores the large weights in a "
        "quarter of the bytes, which makes one or a few clips at the default size two to three "
        "times as fast on the CPU, with distributions that differ from float32's by a KL "
        "divergence of 0.0001 to 0.0005 bits per sample on average (the tests hold it under "
        "0.01); float32 is the model exactly as trained. "
        "auto: int8 on the CPU, float32 on other devices (evaluate always uses float32).",
    )  # fmt: skip
    prime_seconds: float | None = setting(
        None, "prime seconds", float, 0.0, 36000.0, low_inclusive=False,
        flags=("--prime-seconds",), help="Use only the last this many seconds of the prime.",
    )  # fmt: skip
    keep_prime: bool = setting(
        False, "keep_prime", bool, flags=("--keep-prime/--no-keep-prime",),
        help="Start each file with the prime (as the model heard it) before the new audio.",
    )  # fmt: skip
    # The level the prime is brought to (samplernn_cli.gain); given_only: it needs --prime.
    prime_gain: str = setting(
        "training", "prime gain", str, choices=GAIN_MODES, flags=("--prime-gain",),
        given_only=True, help="Level of the prime (default: {default}). " + GAIN_HELP,
    )  # fmt: skip
    file_format: str = setting("wav", "format", str, choices=("wav", "flac"),
                               flags=("--format",), help="Audio file format.",
                               panel=OUTPUT_PANEL)  # fmt: skip
    encoding: str = setting(
        "pcm16", "encoding", str, choices=("pcm16", "pcm24", "float"), flags=("--encoding",),
        help="Sample encoding: pcm16, pcm24 or float (32-bit float, WAV only).",
        panel=OUTPUT_PANEL,
    )  # fmt: skip

    def validate(self) -> None:
        super().validate()
        if len(self.temperatures) not in (1, self.count):
            raise ConfigError(
                f"{len(self.temperatures)} temperatures for {self.count} clips; give one, "
                "or one per clip"
            )
        if self.candidates is not None and self.candidates < self.count:
            raise ConfigError(
                f"--candidates {self.candidates} is fewer than --count {self.count}: generate "
                "at least as many takes as the clips to keep"
            )
        if self.candidates is not None and len(self.temperatures) > 1:
            raise ConfigError("--candidates ranks takes of one temperature; give one value")
        if self.endless and (self.count != 1 or self.candidates is not None):
            raise ConfigError(
                "--length inf streams one clip without end: drop --count and --candidates"
            )
        if self.file_format == "flac" and self.encoding == "float":
            raise ConfigError("FLAC holds integer samples only; use --encoding pcm16 or pcm24")

    @property
    def endless(self) -> bool:
        """--length inf: one clip streamed without end."""
        return math.isinf(self.length)

    @property
    def takes(self) -> int:
        """How many takes are generated (--candidates, else --count)."""
        return self.count if self.candidates is None else self.candidates

    def clip_temperatures(self) -> list[float]:
        """One temperature per take."""
        if len(self.temperatures) == 1:
            return list(self.temperatures) * self.takes
        return list(self.temperatures)
