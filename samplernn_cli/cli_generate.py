"""``samplernn generate``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from samplernn_cli.cli_common import print_path, reporting_errors
from samplernn_cli.errors import CheckpointError, UsageError
from samplernn_cli.options import (
    OUTPUT,
    CountOption,
    DeviceOption,
    Encoding,
    EncodingOption,
    FileFormat,
    FileFormatOption,
    GenerateBatchSizeOption,
    GenerateSeedOption,
    KeepPrimeOption,
    LengthOption,
    PrimeOption,
    PrimeSecondsOption,
    QuietOption,
    TemperaturesOption,
)

logger = logging.getLogger("samplernn")
DEFAULT_LENGTH = 10.0


def generate(
    checkpoint: Annotated[
        Path,
        typer.Argument(
            help="Checkpoint to generate from; nothing else is needed.", show_default=False
        ),
    ],
    length: LengthOption = None,
    count: CountOption = None,
    temperature: TemperaturesOption = None,
    seed: GenerateSeedOption = None,
    prime: PrimeOption = None,
    prime_seconds: PrimeSecondsOption = None,
    keep_prime: KeepPrimeOption = False,
    batch_size: GenerateBatchSizeOption = 16,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir",
            "-d",
            help="Folder for the clips (default: the checkpoint's folder).",
            show_default=False,
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    prefix: Annotated[
        str | None,
        typer.Option(
            "--prefix",
            help="File names are PREFIX_N.EXT, N continuing after any "
            "such files already there (default: RUN_iter_I_gen).",
            show_default=False,
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    file_format: FileFormatOption = FileFormat.wav,
    encoding: EncodingOption = Encoding.pcm16,
    device: DeviceOption = "auto",
    quiet: QuietOption = False,
) -> None:
    """Generate new audio from a checkpoint.

    Writes --count clips of --length seconds (default 10) at the checkpoint's sample rate,
    generated together in batches, and prints the path of each file on stdout, one per line.
    Existing files are never overwritten.
    """  # fmt: skip
    with reporting_errors():
        from samplernn_cli.fileio import check_input_file

        check_input_file(checkpoint, CheckpointError)
        temperatures = tuple(float(t) for t in (temperature or "1.0").split(","))
        if count is None:
            count = len(temperatures)
        if len(temperatures) not in (1, count):
            raise UsageError(
                f"--temperature lists {len(temperatures)} values for --count {count}; give one "
                "value, or one per clip"
            )
        if prime is None and (prime_seconds is not None or keep_prime):
            raise UsageError("--prime-seconds and --keep-prime need --prime FILE")
        if prefix is not None and (not prefix or "/" in prefix or prefix.strip() != prefix):
            raise UsageError(f"invalid --prefix {prefix!r}: a file name stem without '/'")

        from samplernn_cli.console import GenerateDisplay, setup_logging, stderr_is_terminal
        from samplernn_cli.generate import GenerateRequest, generate_files  # imports torch

        request = GenerateRequest(
            checkpoint=checkpoint,
            length=length if length is not None else DEFAULT_LENGTH,
            count=count,
            temperatures=temperatures,
            seed=seed,
            out_dir=out_dir,
            prefix=prefix,
            prime=prime,
            prime_seconds=prime_seconds,
            keep_prime=keep_prime,
            batch_size=batch_size,
            device=device,
            file_format=file_format.value,
            encoding=encoding.value,
        )
        console = setup_logging(quiet=quiet, rich_output=stderr_is_terminal())
        with GenerateDisplay(console, quiet=quiet) as display:
            result = generate_files(request, progress=display, on_file=print_path)
        logger.info(
            f"generated {len(result.paths)} clips of {request.length:g} s with seed "
            f"{result.seed} in {result.seconds:.1f} s: {result.samples_per_s:,.0f} samples/s, "
            f"{result.realtime_factor:.2f}x real time"
        )
