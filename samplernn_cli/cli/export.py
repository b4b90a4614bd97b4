"""``samplernn export``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from samplernn_cli.cli.options import OUTPUT, HalfOption, QuietOption
from samplernn_cli.cli.output import print_path
from samplernn_cli.errors import CheckpointError
from samplernn_cli.fileio import check_input_file

logger = logging.getLogger("samplernn")


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
    half: HalfOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace an existing output file.", rich_help_panel=OUTPUT),
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Write an inference-only model file: weights and settings, no training state.

    The file is a fraction of the checkpoint's size; generate, evaluate, inspect-checkpoint
    and train --init-from accept it, resume does not. It names the checkpoint it came from
    (file, iteration, sha256). Prints the path of the file on stdout.
    """  # fmt: skip
    check_input_file(checkpoint, CheckpointError)
    from samplernn_cli.cli.console import setup_logging, stderr_is_terminal
    from samplernn_cli.export import export_model  # imports torch

    setup_logging(quiet=quiet, rich_output=stderr_is_terminal())
    result = export_model(
        checkpoint, output, half=None if half is None else half.value, force=force
    )
    logger.info(
        f"exported {checkpoint.name} ({result.source_size_bytes / 1e6:,.1f} MB) with "
        f"{result.weights_dtype} weights: {result.size_bytes / 1e6:,.1f} MB, "
        f"{result.ratio:.1%} of the checkpoint"
    )
    print_path(result.path)
