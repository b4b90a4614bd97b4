"""``samplernn generate``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from samplernn_cli.cli.options import OUTPUT, DeviceOption, PrimeOption, QuietOption
from samplernn_cli.cli.output import print_json, print_path
from samplernn_cli.cli.settings import Given, setting_options
from samplernn_cli.config import GenerateSettings
from samplernn_cli.config.rules import default
from samplernn_cli.errors import CheckpointError, UsageError
from samplernn_cli.fileio import check_input_file

if TYPE_CHECKING:
    from samplernn_cli.generation.clips import GenerateResult

logger = logging.getLogger("samplernn")


@setting_options
def generate(
    *,
    checkpoint: Annotated[
        Path,
        typer.Argument(
            help="Checkpoint to generate from; nothing else is needed.", show_default=False
        ),
    ],
    prime: PrimeOption = None,
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
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the one clip to this file (.wav or .flac; never overwritten), or with "
            "'-' stream it as WAV to standard output while it is generated (for | aplay, "
            "| sox -t wav - out.flac). Not with --count above 1, -d or --prefix.",
            show_default=False,
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    generation: Given[GenerateSettings],
    device: DeviceOption = "auto",
    quiet: QuietOption = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON document on stdout instead of the paths: the seed, and "
            "every take's scores (distance to the training audio, bits per sample, level, "
            "share of silence, loop correlation, flatness, trap), kept takes first with "
            "their paths.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
) -> None:
    """Generate new audio from a checkpoint.

    Writes --count clips of --length seconds at the checkpoint's sample rate, generated
    together in batches, into --out-dir (created if missing), and prints the path of each
    file on stdout, one per line. Existing files are never overwritten. With --candidates N
    it generates N takes and keeps the --count best, best first. With -o FILE the one clip
    goes to FILE; with -o - it streams to stdout as WAV while it is generated (a closed pipe
    ends it quietly, exit code 141).
    """  # fmt: skip
    check_input_file(checkpoint, CheckpointError)
    values = dict(generation.values)
    temperatures = values.get("temperatures", default(GenerateSettings, "temperatures"))
    count = values.setdefault("count", len(temperatures))
    if len(temperatures) not in (1, count):
        raise UsageError(
            f"--temperature lists {len(temperatures)} values for --count {count}; give one "
            "value, or one per clip"
        )
    if prime is None and ({"prime_seconds", "prime_gain"} & set(values) or values["keep_prime"]):
        raise UsageError("--prime-seconds, --prime-gain and --keep-prime need --prime FILE")
    if prefix is not None and (not prefix or "/" in prefix or prefix.strip() != prefix):
        raise UsageError(f"invalid --prefix {prefix!r}: a file name stem without '/'")
    output_file = None
    if output is not None:
        if count != 1:
            where = "a stream" if output == "-" else "an output file"
            raise UsageError(
                f"-o writes one clip ({where}); --count is {count}: write several clips "
                "as files with -d FOLDER"
            )
        if out_dir is not None or prefix is not None:
            raise UsageError("-o names the one output; it cannot be combined with -d or --prefix")
        if output == "-":
            if as_json:
                raise UsageError("-o - writes the audio to standard output; drop --json")
            if values["file_format"] != "wav":
                raise UsageError("the stream on standard output is WAV; drop --format")
            if sys.stdout.isatty():
                raise UsageError(
                    "-o - writes binary audio to standard output, which is a terminal; pipe "
                    "it into a program (| aplay) or give -o FILE"
                )
        else:
            output_file = Path(output)
            suffix = output_file.suffix.lower().lstrip(".")
            if suffix not in ("wav", "flac"):
                raise UsageError(f"-o {output}: the file name must end in .wav or .flac")
            values["file_format"] = suffix
    settings = GenerateSettings(**values)
    settings.validate()
    if settings.endless and output != "-":
        raise UsageError(
            "--length inf streams one clip without end: write it to standard output with -o - "
            "and pipe it into a player (| aplay, | sox -t wav - -d)"
        )

    from samplernn_cli.cli.console import GenerateDisplay, setup_logging, stderr_is_terminal
    from samplernn_cli.generation.clips import GenerateRequest, generate_files  # imports torch

    request = GenerateRequest(
        checkpoint=checkpoint, settings=settings, out_dir=out_dir, prefix=prefix, prime=prime,
        device=device, output=output_file,
    )  # fmt: skip
    console = setup_logging(quiet=quiet, rich_output=stderr_is_terminal())
    with GenerateDisplay(console, quiet=quiet) as display:
        if output == "-":
            from samplernn_cli.generation.stream import stream_clip

            result = stream_clip(request, sys.stdout.buffer, progress=display)
        else:
            result = generate_files(
                request, progress=display, on_file=None if as_json else print_path, score=as_json
            )
    if as_json:
        print_json(_json_document(result))
    clips = f"{settings.count} clip{'s' if settings.count != 1 else ''}"
    if settings.candidates is not None:
        clips = f"{settings.candidates} takes (kept {len(result.paths)})"
    logger.info(
        f"generated {clips} of {settings.length:g} s with seed "
        f"{result.seed} in {result.seconds:.1f} s: {result.samples_per_s:,.0f} samples/s, "
        f"{result.realtime_factor:.2f}x real time"
    )


def _json_document(result: GenerateResult) -> dict[str, object]:
    """``generate --json``: the seed, and each take's scores with its file (kept takes,
    first) or null (dropped)."""
    paths = [str(path) for path in result.paths] + [None] * len(result.scores)
    return {
        "seed": result.seed,
        "takes": [
            {"path": path, "kept": path is not None, **score.to_dict()}
            for score, path in zip(result.scores, paths, strict=False)
        ],
    }
