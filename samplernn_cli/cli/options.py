"""Command-line options shared between commands: one definition per option.

An option that sets a stored setting is made by :func:`.rules.setting_option` from the setting's
declaration in :mod:`samplernn_cli.config`: its limits (Typer's ``min``/``max`` for whole
numbers, a range check for decimals) and allowed values (an Enum) are the setting's own, so
a bad number exits with code 2 and a one-line message before anything is read or written,
and the option and the setting cannot disagree (a test checks every option against its
setting). Options of the original tool keep their spelling (``--hidden_size``) and also
accept the dashed spelling (``--hidden-size``). Options that ``resume`` may override default
to None, meaning "not given"; each command fills in its own default.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from samplernn_cli.cli.rules import (
    SETTING_OPTIONS,
    checked_duration,
    choices,
    default_note,
    each_within,
    setting_option,
    spellings,
)
from samplernn_cli.config import (
    AudioConfig,
    GenerateSettings,
    LiveSettings,
    ModelConfig,
    StopConditions,
    TrainConfig,
    default,
    rule,
)
from samplernn_cli.errors import UsageError
from samplernn_cli.presets import PRESETS

INPUT = "Input audio"
MODEL = "Model"
TRAINING = "Training"
LIVE = "Live settings (also in NAME_args.json, editable while training)"
STOP = "Stop conditions"
OUTPUT = "Output and display"
GENERATION = "Generation"

# Settings that define a run: fixed for its life, so `resume` takes them from the checkpoint.
RUN_SETTINGS = (ModelConfig, AudioConfig, TrainConfig)

QuantizerKind = choices(ModelConfig, "quantizer", "QuantizerKind")
RnnType = choices(ModelConfig, "rnn_type", "RnnType")
ValSplit = choices(TrainConfig, "val_split", "ValSplit")
Encoding = choices(GenerateSettings, "encoding", "Encoding")
FileFormat = choices(GenerateSettings, "file_format", "FileFormat")
GainMode = choices(GenerateSettings, "prime_gain", "GainMode")
PresetName = Enum("PresetName", {name: name for name in PRESETS}, type=str)  # type: ignore[misc]

# The settings' defaults, for the commands' parameter defaults.
MODEL_DEFAULTS = ModelConfig()
AUDIO_DEFAULTS = AudioConfig()
TRAIN_DEFAULTS = TrainConfig()
GENERATE_DEFAULTS = GenerateSettings()
DEFAULT_QUANTIZER = QuantizerKind(MODEL_DEFAULTS.quantizer)
DEFAULT_RNN_TYPE = RnnType(MODEL_DEFAULTS.rnn_type)
DEFAULT_VAL_SPLIT = ValSplit(TRAIN_DEFAULTS.val_split)
DEFAULT_FILE_FORMAT = FileFormat(GENERATE_DEFAULTS.file_format)
DEFAULT_GAIN = GainMode(GENERATE_DEFAULTS.prime_gain)
DEFAULT_ENCODING = Encoding(GENERATE_DEFAULTS.encoding)


def audio_settings(sample_rate: int | None, keep_sample_rate: bool, normalize: bool) -> AudioConfig:
    """The audio settings of ``--sample-rate``, ``--keep-sample-rate`` and ``--normalize``
    (train and quantize-preview process input the same way)."""
    if keep_sample_rate and sample_rate is not None:
        raise UsageError("--sample-rate and --keep-sample-rate contradict each other")
    rate = None if keep_sample_rate else (sample_rate or AUDIO_DEFAULTS.sample_rate)
    return AudioConfig(sample_rate=rate, normalize=normalize)


# quantize-preview writes 32-bit float: exactly the dequantized values its report describes.
PREVIEW_ENCODING = Encoding("float")


# ---------------------------------------------------------------- input audio

SampleRateOption = Annotated[
    int | None,
    setting_option(
        AudioConfig, "sample_rate", "--sample-rate", "--sample_rate",
        help="Rate in Hz the audio is resampled to and the model runs at"
        + default_note(AudioConfig, "sample_rate") + ".",
        show_default=False, rich_help_panel=INPUT,
    ),
]  # fmt: skip
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
    setting_option(
        AudioConfig, "normalize", "--normalize/--no-normalize",
        help="Scale the whole file so its peak is at full scale (one gain for the whole "
        "file; never per window).",
        rich_help_panel=INPUT,
    ),
]  # fmt: skip
QuantizationOption = Annotated[
    int,
    setting_option(
        ModelConfig, "q_levels", "--quantization",
        help="Number of quantization levels (the model's output classes).",
        rich_help_panel=INPUT,
    ),
]  # fmt: skip
QuantizerOption = Annotated[
    QuantizerKind,
    setting_option(
        ModelConfig, "quantizer", "--quantizer",
        help="Quantization curve: linear, mu-law (mu = levels - 1) or a-law (A = 87.6).",
        rich_help_panel=INPUT,
    ),
]  # fmt: skip
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
    setting_option(ModelConfig, "hidden_size", "--hidden-size", "--hidden_size",
                   help="Width of the RNN and MLP layers.", rich_help_panel=MODEL),
]  # fmt: skip
RnnLayersOption = Annotated[
    int,
    setting_option(ModelConfig, "rnn_layers", "--rnn-layers", "--rnn_layers",
                   help="Number of stacked RNN layers in the frame tier.", rich_help_panel=MODEL),
]  # fmt: skip
FrameSizeOption = Annotated[
    int | None,
    setting_option(
        ModelConfig, "frame_sizes", "--frame-size", "--frame_size",
        help="Frame length in samples of the bottom frame tier: it steps once per frame, and "
        "the sample MLP sees this many previous samples (default: "
        f"{default(ModelConfig, 'frame_sizes')[0]}).",
        show_default=False, rich_help_panel=MODEL,
    ),
]  # fmt: skip
FrameSizesOption = Annotated[
    str | None,
    setting_option(
        ModelConfig, "frame_sizes", "--frame-sizes", "--frame_sizes",
        callback=each_within(rule(ModelConfig, "frame_sizes"), int),
        help="All frame tiers, bottom up: the bottom tier's frame in samples, then for each "
        "further tier how many frames of the tier below make one of its frames. 16 is the "
        "2-tier model; 2,4 a 3-tier model with frames of 2 and 8 samples (default: "
        + ",".join(str(s) for s in default(ModelConfig, "frame_sizes")) + ").",
        show_default=False, rich_help_panel=MODEL,
    ),
]  # fmt: skip
RnnTypeOption = Annotated[
    RnnType,
    setting_option(ModelConfig, "rnn_type", "--rnn-type", "--rnn_type",
                   help="Recurrent cell of the frame tiers.", rich_help_panel=MODEL),
]  # fmt: skip
SkipConnectionsOption = Annotated[
    bool,
    setting_option(
        ModelConfig, "skip_connections", "--skip-connections/--no-skip-connections",
        help="Feed each frame tier's input to every RNN layer and make the tier's output a sum "
        "of per-layer projections (Dadabots).",
        rich_help_panel=MODEL,
    ),
]  # fmt: skip
WeightNormOption = Annotated[
    bool,
    setting_option(
        ModelConfig, "weight_norm", "--weight-norm/--no-weight-norm",
        help="Weight-normalise every linear and recurrent weight (the paper).",
        rich_help_panel=MODEL,
    ),
]  # fmt: skip
LearnH0Option = Annotated[
    bool,
    setting_option(
        ModelConfig, "learn_h0", "--learn-h0/--no-learn-h0",
        help="Learn the RNNs' initial state, used at every sequence start and at the start of "
        "generation (the paper); otherwise zeros.",
        rich_help_panel=MODEL,
    ),
]  # fmt: skip
EmbedSizeOption = Annotated[
    int,
    setting_option(
        ModelConfig, "embed_size", "--embed-size", "--embed_size",
        help="Size of the embedding of each previous sample fed to the sample MLP; 0 feeds "
        "one-hot vectors instead.",
        rich_help_panel=MODEL,
    ),
]  # fmt: skip

# ---------------------------------------------------------------- training

BatchSizeOption = Annotated[
    int,
    setting_option(TrainConfig, "batch_size", "--batch-size", "--batch_size",
                   help="Sequences trained on together.", rich_help_panel=TRAINING),
]  # fmt: skip
NumFramesOption = Annotated[
    int,
    setting_option(
        TrainConfig, "num_frames", "--num-frames", "--num_frames",
        help="Frames per truncated-BPTT step (one iteration trains on num_frames x frame_size "
        "samples of each sequence, carrying the RNN state to the next step).",
        rich_help_panel=TRAINING,
    ),
]  # fmt: skip
SequenceLengthOption = Annotated[
    float,
    setting_option(
        TrainConfig, "sequence_seconds", "--sequence-length",
        help="Seconds of audio per training sequence; the RNN state is carried across a "
        "sequence and reset between sequences.",
        rich_help_panel=TRAINING,
    ),
]  # fmt: skip
GradClipOption = Annotated[
    float,
    setting_option(TrainConfig, "grad_clip", "--grad-clip",
                   help="Clip the gradient's global norm to this value.",
                   rich_help_panel=TRAINING),
]  # fmt: skip
ValFractionOption = Annotated[
    float,
    setting_option(
        TrainConfig, "val_fraction", "--val-fraction",
        help="Share of the input held out for validation (0 to turn validation off): the "
        "end of every file, or whole files with --val-split files.",
        rich_help_panel=TRAINING,
    ),
]  # fmt: skip
ValSplitOption = Annotated[
    ValSplit,
    setting_option(
        TrainConfig, "val_split", "--val-split",
        help="What validates: the last --val-fraction of every file (tail), or whole files "
        "holding --val-fraction of the audio, drawn with --seed (files; needs 2+ files).",
        rich_help_panel=TRAINING,
    ),
]  # fmt: skip
SeedOption = Annotated[
    int,
    setting_option(TrainConfig, "seed", "--seed",
                   help="Random seed: the same seed and settings give the same run.",
                   rich_help_panel=TRAINING),
]  # fmt: skip
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps.",
        rich_help_panel=OUTPUT,
    ),
]

# ---------------------------------------------------------------- live settings


def live_option(name: str, *decls: str, help: str) -> object:
    """An option for a live setting: "not given" by default (then the run's NAME_args.json
    or the setting's default decides), listed with the live settings."""
    return setting_option(
        LiveSettings, name, *decls, help=help + default_note(LiveSettings, name) + ".",
        show_default=False, rich_help_panel=LIVE,
    )  # fmt: skip


LearningRateOption = Annotated[
    float | None,
    live_option("learning_rate", "--learning-rate", "--learning_rate", "--lr",
                help="Adam learning rate"),
]  # fmt: skip
GenerateEveryOption = Annotated[
    int | None,
    live_option("generate_every", "--generate-every", "--generate_every",
                help="Generate num_generated clips every this many iterations"),
]  # fmt: skip
CheckpointEveryOption = Annotated[
    int | None,
    live_option("checkpoint_every", "--checkpoint-every", "--checkpoint_every",
                help="Write a checkpoint every this many iterations"),
]  # fmt: skip
KeepCheckpointsOption = Annotated[
    int | None,
    setting_option(
        LiveSettings, "keep_checkpoints", "--keep-checkpoints", "--keep_checkpoints",
        help="Keep only the newest N periodic checkpoints, deleting older ones once a new one "
        "is completely written; the best model and the checkpoint a resume started from are "
        "always kept (default: keep all; null in NAME_args.json keeps all).",
        show_default=False, rich_help_panel=LIVE,
    ),
]  # fmt: skip
ValEveryOption = Annotated[
    int | None,
    live_option("val_every", "--val-every", "--val_every",
                help="Measure validation bits per sample every this many iterations"),
]  # fmt: skip
LengthOption = Annotated[
    float | None,
    live_option("length", "--length", help="Length in seconds of each clip generated during "
                "training"),
]  # fmt: skip
NumGeneratedOption = Annotated[
    int | None,
    live_option("num_generated", "--num-generated", "--num_generated",
                help="Number of clips generated (together, in one batch) each time"),
]  # fmt: skip
TemperatureOption = Annotated[
    float | None,
    live_option("temperature", "--temperature",
                help="Sampling temperature of the clips generated during training"),
]  # fmt: skip

TensorBoardOption = Annotated[
    bool | None,
    live_option("tensorboard", "--tensorboard/--no-tensorboard",
                help="Write TensorBoard event files (losses, learning rate, gradient norm, "
                "speed, clips, spectrograms) to the run folder's tensorboard/; needs pip "
                'install "samplernn-cli\\[tensorboard]". resume keeps the run\'s choice unless '
                "given"),
]  # fmt: skip

# ---------------------------------------------------------------- stop conditions

MaxIterationsOption = Annotated[
    int | None,
    setting_option(
        StopConditions, "max_iterations", "--max-iterations", "--max_iterations",
        help="Stop when the run has done this many iterations in all.",
        show_default=False, rich_help_panel=STOP,
    ),
]  # fmt: skip
MaxEpochsOption = Annotated[
    int | None,
    setting_option(
        StopConditions, "max_epochs", "--max-epochs", "--max_epochs",
        help="Stop when the run has done this many epochs in all.",
        show_default=False, rich_help_panel=STOP,
    ),
]  # fmt: skip
MaxTimeOption = Annotated[
    str | None,
    setting_option(
        StopConditions, "max_seconds", "--max-time", "--max_time",
        callback=checked_duration,
        help="Stop after this much wall-clock time in this session: 90s, 45m, 12h, 2d, 1h30m.",
        show_default=False, rich_help_panel=STOP,
    ),
]  # fmt: skip

# ---------------------------------------------------------------- generation

GenerateLengthOption = Annotated[
    float,
    setting_option(GenerateSettings, "length", "--length",
                   help="Seconds of new audio per clip.", rich_help_panel=GENERATION),
]  # fmt: skip
CountOption = Annotated[
    int | None,
    setting_option(
        GenerateSettings, "count", "--count", "-n",
        help="Number of clips (default: 1, or one per --temperature value).",
        show_default=False, rich_help_panel=GENERATION,
    ),
]  # fmt: skip
TemperaturesOption = Annotated[
    str | None,
    setting_option(
        GenerateSettings, "temperatures", "--temperature",
        callback=each_within(rule(GenerateSettings, "temperatures"), float),
        help="Sampling temperature: one value for every clip, or a comma-separated list with "
        "one per clip (0.8,1.0,1.2). 1.0 samples the model's own distribution; lower is "
        "tamer (default: 1.0).",
        show_default=False, rich_help_panel=GENERATION,
    ),
]  # fmt: skip
GenerateSeedOption = Annotated[
    int | None,
    setting_option(
        GenerateSettings, "seed", "--seed",
        help="Random seed: the same seed, checkpoint and settings give identical files "
        "(default: a random seed, reported on stderr).",
        show_default=False, rich_help_panel=GENERATION,
    ),
]  # fmt: skip
GenerateBatchSizeOption = Annotated[
    int,
    setting_option(
        GenerateSettings, "batch_size", "--batch-size", "--batch_size",
        help="At most this many clips are generated together (bounds memory; does not change "
        "the output).",
        rich_help_panel=GENERATION,
    ),
]  # fmt: skip
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
    setting_option(GenerateSettings, "prime_seconds", "--prime-seconds",
                   help="Use only the last this many seconds of the prime.",
                   show_default=False, rich_help_panel=GENERATION),
]  # fmt: skip
KeepPrimeOption = Annotated[
    bool,
    setting_option(
        GenerateSettings, "keep_prime", "--keep-prime/--no-keep-prime",
        help="Start each file with the prime (as the model heard it) before the new audio.",
        rich_help_panel=GENERATION,
    ),
]  # fmt: skip
GAIN_HELP = (
    "training: the gain training gave the input file of the same name (else the training "
    "files' median gain, or peak if that would clip); peak: peak-normalised on its own; "
    "none: the file's own level."
)
PrimeGainOption = Annotated[
    GainMode | None,
    setting_option(GenerateSettings, "prime_gain", "--prime-gain",
                   help="Level of the prime (default: training). " + GAIN_HELP,
                   show_default=False, rich_help_panel=GENERATION),
]  # fmt: skip
EvaluateGainOption = Annotated[
    GainMode,
    typer.Option("--gain", help="Level the audio is scored at. " + GAIN_HELP,
                 case_sensitive=False),
]  # fmt: skip
FileFormatOption = Annotated[
    FileFormat,
    setting_option(GenerateSettings, "file_format", "--format", help="Audio file format.",
                   rich_help_panel=OUTPUT),
]  # fmt: skip
EncodingOption = Annotated[
    Encoding,
    setting_option(
        GenerateSettings, "encoding", "--encoding",
        help="Sample encoding: pcm16, pcm24 or float (32-bit float, WAV only).",
        rich_help_panel=OUTPUT,
    ),
]  # fmt: skip

# ---------------------------------------------------------------- fine-tuning and export

InitFromOption = Annotated[
    Path | None,
    typer.Option(
        "--init-from",
        help="Start from this checkpoint's (or exported model's) weights instead of random "
        "ones: the architecture, quantizer and sample rate are the checkpoint's; the new run "
        "records it as its parent.",
        show_default=False,
        rich_help_panel=MODEL,
    ),
]
InitOptimizerOption = Annotated[
    bool,
    typer.Option(
        "--init-optimizer/--fresh-optimizer",
        help="With --init-from: also take the optimizer's state (Adam's moment estimates) "
        "from the training checkpoint, instead of starting it fresh.",
        rich_help_panel=MODEL,
    ),
]


class HalfType(str, Enum):
    float16 = "float16"
    bfloat16 = "bfloat16"


HalfOption = Annotated[
    HalfType | None,
    typer.Option(
        "--half",
        help="Store the weights in half precision (half the size again; the model still "
        "computes in float32). float16 keeps more precision, bfloat16 more range.",
        show_default=False,
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


# Options that set what defines a run; `resume` takes them from the checkpoint.
FIXED_AT_RESUME = {
    name for info in SETTING_OPTIONS if info.setting[0] in RUN_SETTINGS for name in spellings(info)
} | {"--example", *spellings(PresetOption), *spellings(KeepSampleRateOption)}
