"""``samplernn export``."""

from __future__ import annotations

import logging
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from samplernn_cli.cli.options import OUTPUT, HalfOption, QuietOption
from samplernn_cli.cli.output import print_path
from samplernn_cli.errors import CheckpointError, UsageError
from samplernn_cli.fileio import check_input_file

logger = logging.getLogger("samplernn")


class ExportFormat(str, Enum):
    checkpoint = "checkpoint"
    nn = "nn"


class VoicePrecision(str, Enum):
    int8 = "int8"
    float32 = "float32"


def export(
    checkpoint: Annotated[
        Path, typer.Argument(help="The checkpoint to export.", show_default=False)
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="The file to write (model.pt).",
            show_default=False,
            rich_help_panel=OUTPUT,
        ),
    ],
    file_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="checkpoint: a samplernn model file (weights and settings) for generate, "
            "evaluate and train --init-from. nn: a live voice, a TorchScript file for nn~ in "
            "Max/MSP and Pure Data (the object nn~ voice.ts forward 4096) or any libtorch "
            "host, which plays an endless take at the host's sample rate (see docs/live.md).",
            rich_help_panel=OUTPUT,
        ),
    ] = ExportFormat.checkpoint,
    half: HalfOption = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            "--temperature",
            help="--format nn: the voice's temperature when loaded (default 1.0; the host can "
            "change it, and its input adds to it).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="--format nn: the voice's seed when loaded (default 0): the same seed and "
            "settings play the same samples.",
            show_default=False,
        ),
    ] = None,
    precision: Annotated[
        VoicePrecision | None,
        typer.Option(
            "--precision",
            help="--format nn: the weights' precision in the voice (default int8). int8: the "
            "sample tier's hidden layers and the upsampling products in a quarter of the bytes "
            "(torch's dynamic quantized linear: FBGEMM on x86, QNNPACK on ARM); --preset small "
            "plays 1.3 to 1.6 times as fast on a 2-core x86 CPU, with distributions that "
            "differ from float32's by a KL divergence of 0.0002 bits per sample or less on "
            "average (docs/live.md, Speed). float32: the model exactly as trained.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace an existing output file.", rich_help_panel=OUTPUT),
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Write an inference-only model file, or a live voice for Max/MSP and Pure Data.

    --format checkpoint (the default): weights and settings, no training state, a fraction
    of the checkpoint's size; generate, evaluate, inspect-checkpoint and train --init-from
    accept it, resume does not. It names the checkpoint it came from (file, iteration,
    sha256).

    --format nn: a TorchScript file that nn~ (or any libtorch program) calls once per audio
    buffer; the export times it at 48 kHz (44.1 kHz for 22.05 kHz models) in buffers of
    4,096 samples on one thread and prints its real-time factor, with a warning above 0.7.

    Prints the path of the file on stdout.
    """  # fmt: skip
    check_input_file(checkpoint, CheckpointError)
    from samplernn_cli.cli.console import setup_logging, stderr_is_terminal

    setup_logging(quiet=quiet, rich_output=stderr_is_terminal())
    if file_format is ExportFormat.nn:
        if half is not None:
            raise UsageError(
                "--half applies to --format checkpoint; a live voice's weights are set by "
                "--precision"
            )
        chosen = VoicePrecision.int8 if precision is None else precision
        _export_voice(checkpoint, output, temperature, seed, chosen.value, force)
        return
    if temperature is not None or seed is not None or precision is not None:
        raise UsageError("--temperature, --seed and --precision apply to --format nn")
    from samplernn_cli.export import export_model  # imports torch

    result = export_model(
        checkpoint, output, half=None if half is None else half.value, force=force
    )
    logger.info(
        f"exported {checkpoint.name} ({result.source_size_bytes / 1e6:,.1f} MB) with "
        f"{result.weights_dtype} weights: {result.size_bytes / 1e6:,.1f} MB, "
        f"{result.ratio:.1%} of the checkpoint"
    )
    print_path(result.path)


def _export_voice(
    checkpoint: Path,
    output: Path,
    temperature: float | None,
    seed: int | None,
    precision: str,
    force: bool,
) -> None:
    from samplernn_cli.config import GenerateSettings
    from samplernn_cli.config.rules import declaration
    from samplernn_cli.voice.build import RTF_WARNING, export_voice  # imports torch

    # The same limits as generate's --temperature and --seed (ConfigError: exit code 2).
    temperature = 1.0 if temperature is None else temperature
    declaration(GenerateSettings, "temperatures").rule.check(temperature)
    seed = 0 if seed is None else seed
    declaration(GenerateSettings, "seed").rule.check(seed)
    result = export_voice(
        checkpoint, output, temperature=temperature, seed=seed, precision=precision, force=force
    )
    timing = result.timing
    logger.info(
        f"exported a live voice of {checkpoint.name} ({result.sample_rate:,} Hz model, "
        f"{precision}): "
        f"{result.size_bytes / 1e6:,.1f} MB; at {timing.host_rate:,} Hz in buffers of "
        f"{timing.buffer:,} on one thread it computes a second of audio in "
        f"{timing.median:.2f} s (median; slowest buffer {timing.worst:.2f} s)"
    )
    if timing.worst > RTF_WARNING:
        outcome = "will drop out" if timing.worst > 1 else "may drop out when the machine is busy"
        logger.warning(
            f"the slowest buffer took {timing.worst:.2f} s per second of audio (above "
            f"{RTF_WARNING}): a live host on this machine {outcome}; a smaller model or a "
            "faster CPU plays reliably (docs/live.md, Speed)"
        )
    print_path(result.path)
