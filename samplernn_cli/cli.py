"""The ``samplernn`` command line (Typer).

Each command parses its options, builds config objects, calls one core function and turns
the result into output: data on stdout, messages on stderr. Errors from the core
(:mod:`samplernn_cli.errors`) become one ``error: ...`` line on stderr and the exit code
documented in README.md. Nothing here imports torch at module level, so ``samplernn --help``
is fast; the commands import the core when they run.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from samplernn_cli import __version__
from samplernn_cli.errors import (
    EXIT_FAILURE,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    SampleRNNError,
    UsageError,
)
from samplernn_cli.options import (
    AUDIO_DEFAULTS,
    INPUT,
    LIVE_DEFAULTS,
    MODEL_DEFAULTS,
    OUTPUT,
    TRAIN_DEFAULTS,
    BatchSizeOption,
    CheckpointEveryOption,
    DeviceOption,
    EmbedSizeOption,
    ForceOption,
    FrameSizeOption,
    GenerateEveryOption,
    GradClipOption,
    HiddenSizeOption,
    KeepSampleRateOption,
    LearningRateOption,
    LengthOption,
    LogEveryOption,
    MaxEpochsOption,
    MaxIterationsOption,
    MaxTimeOption,
    NormalizeOption,
    NumFramesOption,
    NumGeneratedOption,
    OutputRootOption,
    PresetOption,
    QuantizationOption,
    QuantizerKind,
    QuantizerOption,
    QuietOption,
    RnnLayersOption,
    SampleRateOption,
    SeedOption,
    SequenceLengthOption,
    TemperatureOption,
    ValEveryOption,
    ValFractionOption,
)

if TYPE_CHECKING:
    from samplernn_cli.train import TrainResult

EXAMPLE_CLIP = "speech_allison_10s.flac"
DEBUG_ENV = "SAMPLERNN_DEBUG"

app = typer.Typer(
    name="samplernn",
    help="Train SampleRNN on your own audio and generate new audio from it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"samplernn {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Train SampleRNN on your own audio and generate new audio from it.

    Exit codes: 0 success, 1 runtime or data error, 2 usage error, 130 stopped by Ctrl-C,
    143 stopped by SIGTERM.
    """


@contextlib.contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn every failure into one line on stderr and an exit code; never a traceback
    (unless SAMPLERNN_DEBUG is set)."""
    from samplernn_cli.console import print_error

    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except SampleRNNError as exc:
        print_error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print_error("interrupted")
        raise typer.Exit(EXIT_SIGINT) from None
    except MemoryError:
        print_error("out of memory; use a smaller model, batch size or input")
        raise typer.Exit(EXIT_FAILURE) from None
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "out of memory" in message.lower():
            print_error(f"out of memory ({message}); use a smaller model or batch size")
        else:
            print_error(
                f"unexpected {type(exc).__name__}: {message} (set {DEBUG_ENV}=1 to see "
                "the traceback, and please report it)"
            )
        raise typer.Exit(EXIT_FAILURE) from None


def _example_clip() -> Path:
    path = Path(str(resources.files("samplernn_cli") / "examples" / EXAMPLE_CLIP))
    if not path.is_file():
        raise UsageError(f"the example clip is missing from this installation ({path})")
    return path


def _training_input(input_path: Path | None, in_option: Path | None, example: bool) -> Path:
    given = [p for p in (input_path, in_option) if p is not None]
    if len(given) == 2 and input_path != in_option:
        raise UsageError("give the input once: either as INPUT or with -i/--in")
    if example and given:
        raise UsageError("--example trains on the bundled clip; do not give an input file too")
    if example:
        return _example_clip()
    if not given:
        raise UsageError("missing input: samplernn train INPUT.wav (or --example to try it out)")
    return given[0]


@app.command()
def train(
    ctx: typer.Context,
    input_path: Annotated[
        Path | None,
        typer.Argument(
            metavar="INPUT",
            help="Audio file to train on (WAV, FLAC, OGG, MP3, ...; any rate, depth, channels).",
            show_default=False,
        ),
    ] = None,
    in_option: Annotated[
        Path | None,
        typer.Option(
            "-i", "--in", help="Same as INPUT.", show_default=False, rich_help_panel=INPUT
        ),
    ] = None,
    example: Annotated[
        bool,
        typer.Option(
            "--example",
            help="Train on the 10-second speech clip that ships with samplernn.",
            rich_help_panel=INPUT,
        ),
    ] = False,
    out: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--out",
            help="Run name: artifacts go to ROOT/NAME/ (a value containing / is the run folder "
            "itself). Default: the input file's name without extension.",
            show_default=False,
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    output_root: OutputRootOption = None,
    force: ForceOption = False,
    sample_rate: SampleRateOption = None,
    keep_sample_rate: KeepSampleRateOption = False,
    normalize: NormalizeOption = AUDIO_DEFAULTS.normalize,
    preset: PresetOption = None,
    quantization: QuantizationOption = MODEL_DEFAULTS.q_levels,
    quantizer: QuantizerOption = QuantizerKind.linear,
    hidden_size: HiddenSizeOption = MODEL_DEFAULTS.hidden_size,
    rnn_layers: RnnLayersOption = MODEL_DEFAULTS.rnn_layers,
    frame_size: FrameSizeOption = MODEL_DEFAULTS.frame_sizes[0],
    embed_size: EmbedSizeOption = MODEL_DEFAULTS.embed_size,
    batch_size: BatchSizeOption = TRAIN_DEFAULTS.batch_size,
    num_frames: NumFramesOption = TRAIN_DEFAULTS.num_frames,
    sequence_length: SequenceLengthOption = TRAIN_DEFAULTS.sequence_seconds,
    learning_rate: LearningRateOption = LIVE_DEFAULTS.learning_rate,
    grad_clip: GradClipOption = TRAIN_DEFAULTS.grad_clip,
    val_fraction: ValFractionOption = TRAIN_DEFAULTS.val_fraction,
    seed: SeedOption = TRAIN_DEFAULTS.seed,
    device: DeviceOption = "auto",
    generate_every: GenerateEveryOption = LIVE_DEFAULTS.generate_every,
    checkpoint_every: CheckpointEveryOption = LIVE_DEFAULTS.checkpoint_every,
    val_every: ValEveryOption = LIVE_DEFAULTS.val_every,
    length: LengthOption = LIVE_DEFAULTS.length,
    num_generated: NumGeneratedOption = LIVE_DEFAULTS.num_generated,
    temperature: TemperatureOption = LIVE_DEFAULTS.temperature,
    max_iterations: MaxIterationsOption = None,
    max_epochs: MaxEpochsOption = None,
    max_time: MaxTimeOption = None,
    quiet: QuietOption = False,
    log_every: LogEveryOption = 50,
) -> None:
    """Train a new model on an audio file.

    The run folder fills with checkpoints, generated clips and a loss log.
    With no stop condition, training runs until Ctrl-C, which writes a checkpoint first.
    The path of the last checkpoint is printed on stdout.
    """
    with reporting_errors():
        source = _training_input(input_path, in_option, example)
        if keep_sample_rate and sample_rate is not None:
            raise UsageError("--sample-rate and --keep-sample-rate contradict each other")

        from samplernn_cli.errors import AudioError
        from samplernn_cli.fileio import check_input_file

        check_input_file(source, AudioError)  # before the slow torch import

        from samplernn_cli.config import (
            AudioConfig,
            LiveSettings,
            ModelConfig,
            StopConditions,
            TrainConfig,
            parse_duration,
        )
        from samplernn_cli.console import TrainDisplay, setup_logging, stderr_is_terminal
        from samplernn_cli.runfolder import RunFolder, resolve_output_root

        run = RunFolder.locate(
            out or ("example" if example else source.stem), resolve_output_root(output_root)
        )
        model = {
            "hidden_size": hidden_size,
            "rnn_layers": rnn_layers,
            "frame_size": frame_size,
            "embed_size": embed_size,
            "quantization": quantization,
            "quantizer": quantizer.value,
            "batch_size": batch_size,
            "num_frames": num_frames,
        }
        if preset is not None:
            from samplernn_cli.presets import PRESETS

            for key, value in PRESETS[preset.value].values.items():
                source_of = ctx.get_parameter_source(key)
                if source_of is None or source_of.name == "DEFAULT":
                    model[key] = value
        configs = (
            ModelConfig(
                frame_sizes=(model["frame_size"],),
                rnn_layers=model["rnn_layers"],
                hidden_size=model["hidden_size"],
                embed_size=model["embed_size"],
                q_levels=model["quantization"],
                quantizer=model["quantizer"],
            ),
            AudioConfig(
                sample_rate=None
                if keep_sample_rate
                else (sample_rate or AUDIO_DEFAULTS.sample_rate),
                normalize=normalize,
            ),
            TrainConfig(
                batch_size=model["batch_size"],
                num_frames=model["num_frames"],
                sequence_seconds=sequence_length,
                grad_clip=grad_clip,
                val_fraction=val_fraction,
                seed=seed,
            ),
            LiveSettings(
                length=length,
                num_generated=num_generated,
                generate_every=generate_every,
                checkpoint_every=checkpoint_every,
                val_every=val_every,
                temperature=temperature,
                learning_rate=learning_rate,
            ),
            StopConditions(
                max_iterations=max_iterations,
                max_epochs=max_epochs,
                max_seconds=None if max_time is None else parse_duration(max_time),
            ),
        )
        for config in configs:
            config.validate()

        from samplernn_cli.train import TrainRequest  # imports torch: after the quick checks
        from samplernn_cli.train import train as run_training

        model_config, audio_config, train_config, live, stop = configs
        request = TrainRequest(
            input_path=source,
            run=run,
            model=model_config,
            audio=audio_config,
            train=train_config,
            live=live,
            stop=stop,
            device=device,
            force=force,
        )
        console = setup_logging(quiet=quiet, rich_output=stderr_is_terminal())
        with TrainDisplay(console, quiet=quiet, log_every=log_every) as display:
            result = run_training(request, progress=display)
        _finish_training(result)


def _finish_training(result: TrainResult) -> None:
    import logging

    logger = logging.getLogger("samplernn")
    reasons = {
        "max_iterations": "reached --max-iterations",
        "max_epochs": "reached --max-epochs",
        "max_time": "reached --max-time",
        "SIGINT": "interrupted (Ctrl-C)",
        "SIGTERM": "terminated (SIGTERM)",
    }
    val = "" if result.last_val_loss is None else f", validation {result.last_val_loss:.4f} bits"
    logger.info(
        f"stopped at iteration {result.iteration}, epoch {result.epoch}: "
        f"{reasons.get(result.stopped_by, result.stopped_by)}{val}"
    )
    if result.checkpoint is not None:
        sys.stdout.write(f"{result.checkpoint}\n")
        sys.stdout.flush()
    if result.stopped_by == "SIGINT":
        raise typer.Exit(EXIT_SIGINT)
    if result.stopped_by == "SIGTERM":
        raise typer.Exit(EXIT_SIGTERM)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point.

    Usage errors (a bad or missing option) are printed as one ``error:`` line, like every
    other error, instead of Typer's framed block, and exit with code 2.
    """
    from samplernn_cli.console import print_error

    try:
        code = app(argv, prog_name="samplernn", standalone_mode=False)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # help was printed already
            sys.exit(2)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        context = getattr(exc, "ctx", None)
        hint = f" (see {context.command_path} --help)" if context is not None else ""
        print_error(f"{message}{hint}")
        sys.exit(getattr(exc, "exit_code", 2))
    except typer.Abort:
        print_error("aborted")
        sys.exit(EXIT_FAILURE)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
