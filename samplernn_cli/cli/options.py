"""Command-line options that are not one setting each, shared between commands: one
definition per option.

The options that set a stored setting are made from the setting's declaration in
:mod:`samplernn_cli.config` by :func:`.settings.setting_options`; the few here that stand
for part of a setting (``--frame-size``) or reuse one (``quantize-preview --encoding``) take
their limits and allowed values from the same declarations.
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from samplernn_cli.cli.settings import (
    Given,
    choice_enum,
    declared_option,
    setting_option,
    spellings,
)
from samplernn_cli.config import GAIN_HELP, AudioConfig, GenerateSettings, ModelConfig, TrainConfig
from samplernn_cli.config.rules import INPUT_PANEL, OUTPUT_PANEL, declarations, default
from samplernn_cli.errors import UsageError
from samplernn_cli.presets import PRESET_ALIASES, PRESETS

INPUT = INPUT_PANEL
OUTPUT = OUTPUT_PANEL
MODEL = ModelConfig.panel
GENERATION = GenerateSettings.panel

# Settings that define a run: fixed for its life, so `resume` takes them from the checkpoint.
RUN_SETTINGS = (ModelConfig, AudioConfig, TrainConfig)

PresetName = Enum(  # type: ignore[misc]
    "PresetName", {name: name for name in [*PRESETS, *PRESET_ALIASES]}, type=str
)
GainMode = choice_enum(GenerateSettings, "prime_gain")
DEFAULT_GAIN = GainMode(default(GenerateSettings, "prime_gain"))


def audio_settings(given: Given[AudioConfig], keep_sample_rate: bool) -> AudioConfig:
    """The audio settings of ``--sample-rate``, ``--normalize`` and ``--keep-sample-rate``
    (train and quantize-preview process input the same way)."""
    if keep_sample_rate and "sample_rate" in given.explicit:
        raise UsageError("--sample-rate and --keep-sample-rate contradict each other")
    audio = AudioConfig(**given.values)
    return replace(audio, sample_rate=None) if keep_sample_rate else audio


# quantize-preview writes 32-bit float: exactly the dequantized values its report describes.
PreviewEncodingOption = declared_option(GenerateSettings, "encoding")
PREVIEW_ENCODING = choice_enum(GenerateSettings, "encoding")("float")

# ---------------------------------------------------------------- input audio

KeepSampleRateOption = Annotated[
    bool,
    typer.Option(
        "--keep-sample-rate",
        help="Keep the input file's own sample rate instead of resampling.",
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
        help="Start from a named set of settings (see docs/your-audio.md); options given "
        "explicitly override it. "
        + "; ".join(f"{p.name}: {p.description}" for p in PRESETS.values())
        + "".join(f"; {old}: the earlier name of {new}" for old, new in PRESET_ALIASES.items()),
        show_default=False,
        rich_help_panel=MODEL,
    ),
]
# The bottom tier of --frame-sizes, by the seed's name for it.
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
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps.",
        rich_help_panel=OUTPUT,
    ),
]

# ---------------------------------------------------------------- generation

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
EvaluateGainOption = Annotated[
    GainMode,
    typer.Option("--gain", help="Level the audio is scored at. " + GAIN_HELP,
                 case_sensitive=False),
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
    name
    for settings in RUN_SETTINGS
    for declared in declarations(settings).values()
    for name in declared.spellings()
} | {
    "--example",
    *spellings(PresetOption),
    *spellings(KeepSampleRateOption),
    *spellings(FrameSizeOption),
}
