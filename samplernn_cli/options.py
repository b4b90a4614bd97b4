"""Command-line options shared between commands: one definition per option.

Options of the original tool keep their spelling (``--hidden_size``) and also accept the dashed
spelling (``--hidden-size``). Range checks happen here, so a bad number exits with code 2 and a
one-line message before anything is read or written. Options that ``resume`` may override
default to None, meaning "not given"; each command fills in its own default.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from samplernn_cli.config import (
    MAX_Q_LEVELS,
    MAX_SAMPLE_RATE,
    MIN_Q_LEVELS,
    MIN_SAMPLE_RATE,
    AudioConfig,
    LiveSettings,
    ModelConfig,
    TrainConfig,
)
from samplernn_cli.presets import PRESETS

INPUT = "Input audio"
MODEL = "Model"
TRAINING = "Training"
LIVE = "Live settings (also in NAME_args.json, editable while training)"
STOP = "Stop conditions"
OUTPUT = "Output and display"
GENERATION = "Generation"

MODEL_DEFAULTS = ModelConfig()
TRAIN_DEFAULTS = TrainConfig()
LIVE_DEFAULTS = LiveSettings()
AUDIO_DEFAULTS = AudioConfig()


class QuantizerKind(str, Enum):
    linear = "linear"
    mu_law = "mu-law"
    a_law = "a-law"


class ValSplit(str, Enum):
    tail = "tail"
    files = "files"


class RnnType(str, Enum):
    lstm = "lstm"
    gru = "gru"


DEFAULT_RNN_TYPE = RnnType(ModelConfig().rnn_type)


class Encoding(str, Enum):
    pcm16 = "pcm16"
    pcm24 = "pcm24"
    float = "float"


class FileFormat(str, Enum):
    wav = "wav"
    flac = "flac"


PresetName = Enum("PresetName", {name: name for name in PRESETS}, type=str)  # type: ignore[misc]


def _positive(limit: float) -> Callable[[float | None], float | None]:
    """A callback accepting numbers greater than 0 and at most ``limit``."""

    def check(value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and 0 < value <= limit):
            raise typer.BadParameter(f"must be greater than 0 and at most {limit:g}, got {value:g}")
        return value

    return check


def _fraction(value: float) -> float:
    if not (math.isfinite(value) and 0 <= value <= 0.5):
        raise typer.BadParameter(f"must be between 0 and 0.5, got {value:g}")
    return value


def parse_frame_sizes(value: str | None) -> str | None:
    """Check ``16``, ``16,4`` or ``"16 4"`` at parse time; the command splits it."""
    if value is None:
        return None
    parts = value.replace(",", " ").split()
    if not parts or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise typer.BadParameter(f"{value!r}: give whole numbers >= 1, like 16 or 16,4")
    return value


def split_numbers(value: str) -> tuple[int, ...]:
    return tuple(int(part) for part in value.replace(",", " ").split())


def parse_temperatures(value: str | None) -> str | None:
    """Check ``0.9`` or ``0.8,1.0,1.2`` at parse time; the command splits it."""
    if value is None:
        return None
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number or a comma-separated list") from None
    for number in numbers:
        if not (math.isfinite(number) and 0 < number <= 100):
            raise typer.BadParameter(f"temperatures must be greater than 0, got {number:g}")
    return value


# ---------------------------------------------------------------- input audio

SampleRateOption = Annotated[
    int | None,
    typer.Option(
        "--sample-rate",
        "--sample_rate",
        min=MIN_SAMPLE_RATE,
        max=MAX_SAMPLE_RATE,
        help=f"Rate in Hz the audio is resampled to and the model runs at "
        f"(default: {AUDIO_DEFAULTS.sample_rate}).",
        show_default=False,
        rich_help_panel=INPUT,
    ),
]
KeepSampleRateOption = Annotated[
    bool,
    typer.Option(
        "--keep-sample-rate",
        help="Keep the input file's own sample rate instead of resampling.",
        rich_help_panel=INPUT,
    ),
]
NormalizeOption = Annotated[
    bool,
    typer.Option(
        "--normalize/--no-normalize",
        help="Scale the whole file so its peak is at full scale (one gain for the whole "
        "file; never per window).",
        rich_help_panel=INPUT,
    ),
]
QuantizationOption = Annotated[
    int,
    typer.Option(
        "--quantization",
        min=MIN_Q_LEVELS,
        max=MAX_Q_LEVELS,
        help="Number of quantization levels (the model's output classes).",
        rich_help_panel=INPUT,
    ),
]
QuantizerOption = Annotated[
    QuantizerKind,
    typer.Option(
        "--quantizer",
        case_sensitive=False,
        help="Quantization curve: linear, mu-law (mu = levels - 1) or a-law (A = 87.6).",
        rich_help_panel=INPUT,
    ),
]
TrainingInputOption = Annotated[
    list[Path] | None,
    typer.Option(
        "-i",
        "--in",
        help="Training audio: a file or a folder (searched recursively); repeat for several. "
        "For resume: where the input is now, if it moved.",
        show_default=False,
        rich_help_panel=INPUT,
    ),
]

# ---------------------------------------------------------------- model

PresetOption = Annotated[
    PresetName | None,
    typer.Option(
        "--preset",
        case_sensitive=False,
        help="Start from a named set of settings (see README); options given explicitly "
        "override it. " + "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values()),
        show_default=False,
        rich_help_panel=MODEL,
    ),
]
HiddenSizeOption = Annotated[
    int,
    typer.Option(
        "--hidden-size",
        "--hidden_size",
        min=1,
        max=16384,
        help="Width of the RNN and MLP layers.",
        rich_help_panel=MODEL,
    ),
]
RnnLayersOption = Annotated[
    int,
    typer.Option(
        "--rnn-layers",
        "--rnn_layers",
        min=1,
        max=64,
        help="Number of stacked RNN layers in the frame tier.",
        rich_help_panel=MODEL,
    ),
]
FrameSizeOption = Annotated[
    int | None,
    typer.Option(
        "--frame-size",
        "--frame_size",
        min=1,
        max=4096,
        help=f"Frame length in samples of the bottom frame tier: it steps once per frame, and "
        f"the sample MLP sees this many previous samples (default: "
        f"{MODEL_DEFAULTS.frame_sizes[0]}).",
        show_default=False,
        rich_help_panel=MODEL,
    ),
]
FrameSizesOption = Annotated[
    str | None,
    typer.Option(
        "--frame-sizes",
        "--frame_sizes",
        callback=parse_frame_sizes,
        help="All frame tiers, bottom up: the bottom tier's frame in samples, then for each "
        "further tier how many frames of the tier below make one of its frames. 16 is the "
        "2-tier model; 2,4 a 3-tier model with frames of 2 and 8 samples (default: 16).",
        show_default=False,
        rich_help_panel=MODEL,
    ),
]
RnnTypeOption = Annotated[
    RnnType,
    typer.Option("--rnn-type", "--rnn_type", case_sensitive=False,
                 help="Recurrent cell of the frame tiers.", rich_help_panel=MODEL),
]  # fmt: skip
SkipConnectionsOption = Annotated[
    bool,
    typer.Option(
        "--skip-connections/--no-skip-connections",
        help="Feed each frame tier's input to every RNN layer and make the tier's output a sum "
        "of per-layer projections (Dadabots).",
        rich_help_panel=MODEL,
    ),
]
WeightNormOption = Annotated[
    bool,
    typer.Option(
        "--weight-norm/--no-weight-norm",
        help="Weight-normalise every linear and recurrent weight (the paper).",
        rich_help_panel=MODEL,
    ),
]
LearnH0Option = Annotated[
    bool,
    typer.Option(
        "--learn-h0/--no-learn-h0",
        help="Learn the RNNs' initial state, used at every sequence start and at the start of "
        "generation (the paper); otherwise zeros.",
        rich_help_panel=MODEL,
    ),
]
EmbedSizeOption = Annotated[
    int,
    typer.Option(
        "--embed-size",
        "--embed_size",
        min=0,
        max=16384,
        help="Size of the embedding of each previous sample fed to the sample MLP; 0 feeds "
        "one-hot vectors instead.",
        rich_help_panel=MODEL,
    ),
]

# ---------------------------------------------------------------- training

BatchSizeOption = Annotated[
    int,
    typer.Option(
        "--batch-size",
        "--batch_size",
        min=1,
        max=65536,
        help="Sequences trained on together.",
        rich_help_panel=TRAINING,
    ),
]
NumFramesOption = Annotated[
    int,
    typer.Option(
        "--num-frames",
        "--num_frames",
        min=1,
        max=1_000_000,
        help="Frames per truncated-BPTT step (one iteration trains on num_frames x frame_size "
        "samples of each sequence, carrying the RNN state to the next step).",
        rich_help_panel=TRAINING,
    ),
]
SequenceLengthOption = Annotated[
    float,
    typer.Option(
        "--sequence-length",
        callback=_positive(3600.0),
        help="Seconds of audio per training sequence; the RNN state is carried across a "
        "sequence and reset between sequences.",
        rich_help_panel=TRAINING,
    ),
]
GradClipOption = Annotated[
    float,
    typer.Option(
        "--grad-clip",
        callback=_positive(1e6),
        help="Clip the gradient's global norm to this value.",
        rich_help_panel=TRAINING,
    ),
]
ValFractionOption = Annotated[
    float,
    typer.Option(
        "--val-fraction",
        callback=_fraction,
        help="Share of the input held out for validation (0 to turn validation off): the "
        "end of every file, or whole files with --val-split files.",
        rich_help_panel=TRAINING,
    ),
]
ValSplitOption = Annotated[
    ValSplit,
    typer.Option(
        "--val-split",
        help="What validates: the last --val-fraction of every file (tail), or whole files "
        "holding --val-fraction of the audio, drawn with --seed (files; needs 2+ files).",
        rich_help_panel=TRAINING,
    ),
]
SeedOption = Annotated[
    int,
    typer.Option(
        "--seed",
        min=0,
        max=2**63 - 1,
        help="Random seed: the same seed and settings give the same run.",
        rich_help_panel=TRAINING,
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps.",
        rich_help_panel=OUTPUT,
    ),
]

# ---------------------------------------------------------------- live settings

LearningRateOption = Annotated[
    float | None,
    typer.Option(
        "--learning-rate",
        "--learning_rate",
        "--lr",
        callback=_positive(10.0),
        help=f"Adam learning rate (default: {LIVE_DEFAULTS.learning_rate:g}).",
        show_default=False,
        rich_help_panel=LIVE,
    ),
]
GenerateEveryOption = Annotated[
    int | None,
    typer.Option(
        "--generate-every",
        "--generate_every",
        min=1,
        help=f"Generate num_generated clips every this many iterations "
        f"(default: {LIVE_DEFAULTS.generate_every}).",
        show_default=False,
        rich_help_panel=LIVE,
    ),
]
CheckpointEveryOption = Annotated[
    int | None,
    typer.Option(
        "--checkpoint-every",
        "--checkpoint_every",
        min=1,
        help=f"Write a checkpoint every this many iterations "
        f"(default: {LIVE_DEFAULTS.checkpoint_every}).",
        show_default=False,
        rich_help_panel=LIVE,
    ),
]
ValEveryOption = Annotated[
    int | None,
    typer.Option(
        "--val-every",
        "--val_every",
        min=1,
        help=f"Measure validation bits per sample every this many iterations "
        f"(default: {LIVE_DEFAULTS.val_every}).",
        show_default=False,
        rich_help_panel=LIVE,
    ),
]
LengthOption = Annotated[
    float | None,
    typer.Option(
        "--length",
        callback=_positive(36000.0),
        help=f"Length in seconds of each generated clip (default for clips made during "
        f"training: {LIVE_DEFAULTS.length:g}).",
        show_default=False,
        rich_help_panel=LIVE,
    ),
]
NumGeneratedOption = Annotated[
    int | None,
    typer.Option(
        "--num-generated",
        "--num_generated",
        min=1,
        max=4096,
        help=f"Number of clips generated (together, in one batch) each time "
        f"(default: {LIVE_DEFAULTS.num_generated}).",
        show_default=False,
        rich_help_panel=LIVE,
    ),
]
TemperatureOption = Annotated[
    float | None,
    typer.Option(
        "--temperature",
        callback=_positive(100.0),
        help=f"Sampling temperature of the clips generated during training "
        f"(default: {LIVE_DEFAULTS.temperature:g}).",
        show_default=False,
        rich_help_panel=LIVE,
    ),
]

# ---------------------------------------------------------------- stop conditions

MaxIterationsOption = Annotated[
    int | None,
    typer.Option(
        "--max-iterations",
        "--max_iterations",
        min=1,
        help="Stop when the run has done this many iterations in all.",
        show_default=False,
        rich_help_panel=STOP,
    ),
]
MaxEpochsOption = Annotated[
    int | None,
    typer.Option(
        "--max-epochs",
        "--max_epochs",
        min=1,
        help="Stop when the run has done this many epochs in all.",
        show_default=False,
        rich_help_panel=STOP,
    ),
]
MaxTimeOption = Annotated[
    str | None,
    typer.Option(
        "--max-time",
        "--max_time",
        help="Stop after this much wall-clock time in this session: 90s, 45m, 12h, 2d, 1h30m.",
        show_default=False,
        rich_help_panel=STOP,
    ),
]

# ---------------------------------------------------------------- generation

CountOption = Annotated[
    int | None,
    typer.Option(
        "--count",
        "-n",
        min=1,
        max=100_000,
        help="Number of clips (default: 1, or one per --temperature value).",
        show_default=False,
        rich_help_panel=GENERATION,
    ),
]
TemperaturesOption = Annotated[
    str | None,
    typer.Option(
        "--temperature",
        callback=parse_temperatures,
        help="Sampling temperature: one value for every clip, or a comma-separated list with "
        "one per clip (0.8,1.0,1.2). 1.0 samples the model's own distribution; lower is "
        "tamer (default: 1.0).",
        show_default=False,
        rich_help_panel=GENERATION,
    ),
]
GenerateSeedOption = Annotated[
    int | None,
    typer.Option(
        "--seed",
        min=0,
        max=2**63 - 1,
        help="Random seed: the same seed, checkpoint and settings give identical files "
        "(default: a random seed, reported on stderr).",
        show_default=False,
        rich_help_panel=GENERATION,
    ),
]
GenerateBatchSizeOption = Annotated[
    int,
    typer.Option(
        "--batch-size",
        "--batch_size",
        min=1,
        max=65536,
        help="At most this many clips are generated together (bounds memory; does not change "
        "the output).",
        rich_help_panel=GENERATION,
    ),
]
PrimeOption = Annotated[
    Path | None,
    typer.Option(
        "--prime",
        help="Audio file to continue from: it is processed like the training audio and run "
        "through the network over its whole length, and each clip continues from its end.",
        show_default=False,
        rich_help_panel=GENERATION,
    ),
]
PrimeSecondsOption = Annotated[
    float | None,
    typer.Option(
        "--prime-seconds",
        callback=_positive(36000.0),
        help="Use only the last this many seconds of the prime.",
        show_default=False,
        rich_help_panel=GENERATION,
    ),
]
KeepPrimeOption = Annotated[
    bool,
    typer.Option(
        "--keep-prime/--no-keep-prime",
        help="Start each file with the prime (as the model heard it) before the new audio.",
        rich_help_panel=GENERATION,
    ),
]
FileFormatOption = Annotated[
    FileFormat,
    typer.Option("--format", case_sensitive=False, help="Audio file format.",
                 rich_help_panel=OUTPUT),
]  # fmt: skip
EncodingOption = Annotated[
    Encoding,
    typer.Option(
        "--encoding",
        case_sensitive=False,
        help="Sample encoding: pcm16, pcm24 or float (32-bit float, WAV only).",
        rich_help_panel=OUTPUT,
    ),
]

# ---------------------------------------------------------------- output and display

OutputRootOption = Annotated[
    Path | None,
    typer.Option(
        "--output-root",
        help="Folder that holds run folders (default: $SAMPLERNN_OUTPUT_ROOT, else "
        "output_root in the user config file, else ./outputs).",
        show_default=False,
        rich_help_panel=OUTPUT,
    ),
]
RunNameOption = Annotated[
    str | None,
    typer.Option(
        "-o",
        "--out",
        help="Run name: artifacts go to ROOT/NAME/ (a value containing / is the run folder "
        "itself).",
        show_default=False,
        rich_help_panel=OUTPUT,
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Allow overwriting files of an existing run folder or output.",
        rich_help_panel=OUTPUT,
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Only warnings and errors on stderr; no progress display.",
        rich_help_panel=OUTPUT,
    ),
]
LogEveryOption = Annotated[
    int,
    typer.Option(
        "--log-every",
        min=1,
        max=10**9,
        help="When stderr is not a terminal: print a progress line every this many iterations.",
        rich_help_panel=OUTPUT,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout instead of a table.",
                 rich_help_panel=OUTPUT),
]  # fmt: skip


def spellings(option: object) -> list[str]:
    """Every command-line spelling of an Annotated option (e.g. --hidden-size, --hidden_size)."""
    info = typing.get_args(option)[1]
    declared = list(info.param_decls)
    if isinstance(info.default, str) and info.default.startswith("-"):
        declared.insert(0, info.default)  # Typer keeps the first spelling in `default`
    return [name for decl in declared for name in decl.split("/") if name.startswith("-")]


# Settings that define the model and its data; `resume` takes them from the checkpoint.
FIXED_AT_RESUME = {
    name
    for option in (
        PresetOption, HiddenSizeOption, RnnLayersOption, FrameSizeOption, FrameSizesOption,
        RnnTypeOption, SkipConnectionsOption, WeightNormOption, LearnH0Option, EmbedSizeOption,
        QuantizationOption, QuantizerOption, SampleRateOption, KeepSampleRateOption,
        NormalizeOption, BatchSizeOption, NumFramesOption, SequenceLengthOption,
        GradClipOption, ValFractionOption, SeedOption,
    )
    for name in spellings(option)
} | {"--example"}  # fmt: skip
