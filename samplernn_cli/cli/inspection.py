"""``samplernn inspect-checkpoint``, ``samplernn evaluate`` and ``samplernn quantize-preview``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from samplernn_cli.cli.options import (
    DEFAULT_GAIN,
    OUTPUT,
    PREVIEW_ENCODING,
    DeviceOption,
    EvaluateGainOption,
    ForceOption,
    JsonOption,
    KeepSampleRateOption,
    PreviewEncodingOption,
    audio_settings,
)
from samplernn_cli.cli.output import print_json, print_path
from samplernn_cli.cli.settings import Given, Only, setting_options
from samplernn_cli.config import AudioConfig, ModelConfig
from samplernn_cli.errors import AudioError, CheckpointError, UsageError
from samplernn_cli.fileio import check_input_file


def inspect_checkpoint(
    checkpoint: Annotated[Path, typer.Argument(help="The checkpoint file.", show_default=False)],
    as_json: JsonOption = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="PICTURE",
            help="Draw the run's training and validation loss curves (bits per sample "
            "against iteration) into this .png, .svg or .pdf file, and print its path "
            "instead of the summary.",
            show_default=False,
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="With --plot: overwrite the picture if it exists.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
) -> None:
    """Show what a checkpoint holds: architecture, training state, losses, input.

    Works on the checkpoint file alone; loading never runs code from the file.
    """  # fmt: skip
    check_input_file(checkpoint, CheckpointError)
    if plot is not None:
        _check_plot_path(plot, force=force, as_json=as_json)
    elif force:
        raise UsageError("--force applies to --plot only (inspect-checkpoint writes nothing else)")
    from samplernn_cli.checkpoint import load_checkpoint  # imports torch
    from samplernn_cli.summary import summarize

    loaded = load_checkpoint(checkpoint)
    if plot is not None:
        from samplernn_cli.pictures import save_loss_plot

        if not loaded.history.losses and not loaded.history.validations:
            raise CheckpointError(
                f"{checkpoint} holds no loss history to plot (an exported model keeps none); "
                "give a training checkpoint of the run"
            )
        heading = f"{loaded.run_name}: {checkpoint.name}, iteration {loaded.iteration}"
        print_path(save_loss_plot(plot, loaded.history, heading, overwrite=force))
        return
    summary = summarize(loaded)
    if as_json:
        print_json(summary)
    else:
        from samplernn_cli.cli.console import render_checkpoint

        render_checkpoint(summary)


def _check_plot_path(plot: Path, *, force: bool, as_json: bool) -> None:
    """Before loading anything: a picture format, and no file overwritten unasked."""
    from samplernn_cli.pictures import PICTURE_FORMATS  # imports torch, not matplotlib

    if as_json:
        raise UsageError("--plot prints the picture's path; give --json or --plot, not both")
    if plot.suffix.lower().lstrip(".") not in PICTURE_FORMATS:
        kinds = ", ".join(f".{kind}" for kind in PICTURE_FORMATS)
        raise UsageError(f"{plot}: the plot is written as {kinds}")
    if plot.is_dir():
        raise UsageError(f"{plot} is a folder; give the picture's file name")
    if plot.exists() and not force:
        raise UsageError(f"{plot} already exists; choose another name or pass --force")


def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="The checkpoint file.", show_default=False)],
    inputs: Annotated[
        list[Path],
        typer.Argument(metavar="AUDIO...", help="Audio files to score.", show_default=False),
    ],
    held_out: Annotated[
        bool,
        typer.Option(
            "--held-out",
            help="Score only the tail of each file that training held "
            "out for validation (give the training file to reproduce the run's "
            "validation figure).",
        ),
    ] = False,
    gain: EvaluateGainOption = DEFAULT_GAIN,
    device: DeviceOption = "auto",
    as_json: JsonOption = False,
) -> None:
    """Score audio with a model: negative log-likelihood in bits per sample.

    The audio is processed exactly as the training audio was and scored exactly as
    validation is, so figures compare across checkpoints of a run (lower is better).
    """  # fmt: skip
    check_input_file(checkpoint, CheckpointError)
    for path in inputs:
        check_input_file(path, AudioError)
    from samplernn_cli.evaluation import EvaluateRequest, evaluate_files  # imports torch

    report = evaluate_files(
        EvaluateRequest(
            checkpoint, tuple(inputs), held_out=held_out, device=device, gain=gain.value
        )
    )
    if as_json:
        print_json(report)
    else:
        from samplernn_cli.cli.console import render_evaluation

        render_evaluation(report)


@setting_options
def quantize_preview(
    *,
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="Audio file to preview.", show_default=False)
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Where to write the preview (default: next to the "
            "input, INPUT.quantized-KIND-LEVELS.wav).",
            show_default=False,
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    audio: Given[AudioConfig],
    keep_sample_rate: KeepSampleRateOption = False,
    quantization: Annotated[Given[ModelConfig], Only("q_levels", "quantizer")],
    encoding: PreviewEncodingOption = PREVIEW_ENCODING,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Hear and measure what quantization does to a file before training on it.

    Applies exactly the loading, mixing, resampling, normalisation and quantization that
    `samplernn train` would, writes the result (as 32-bit float WAV by default, so the file
    holds exactly the dequantized values) and reports SNR, levels used, code entropy, DC
    offset, peak and RMS level and clipping.
    """  # fmt: skip
    audio_config = audio_settings(audio, keep_sample_rate)
    check_input_file(input_path, AudioError)
    if output is not None and output.suffix.lower() not in (".wav", ".flac"):
        raise UsageError(f"{output}: the preview is written as .wav or .flac")
    if output is not None and output.suffix.lower() == ".flac" and encoding.value == "float":
        raise UsageError("FLAC holds integer samples only; use --encoding pcm16 or pcm24")

    from samplernn_cli.preview import PreviewRequest, preview  # imports torch
    from samplernn_cli.quantize import Quantizer

    report = preview(
        PreviewRequest(
            input_path=input_path,
            audio=audio_config,
            quantizer=Quantizer(quantization.values["quantizer"], quantization.values["q_levels"]),
            output=output,
            encoding=encoding.value,
            force=force,
        )
    )
    if as_json:
        print_json(report)
    else:
        from samplernn_cli.cli.console import render_preview

        render_preview(report)
