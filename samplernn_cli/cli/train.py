"""``samplernn train`` and ``samplernn resume``."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from samplernn_cli.cli.boundary import exit_code_for_stop, stop_on_signals
from samplernn_cli.cli.options import (
    INPUT,
    DeviceOption,
    ForceOption,
    FrameSizeOption,
    InitFromOption,
    InitOptimizerOption,
    KeepSampleRateOption,
    LogEveryOption,
    OutputRootOption,
    PresetOption,
    QuietOption,
    RunNameOption,
    TrainingInputOption,
    audio_settings,
)
from samplernn_cli.cli.output import print_path
from samplernn_cli.cli.settings import Given, setting_options
from samplernn_cli.config import AudioConfig, LiveSettings, ModelConfig, StopConditions, TrainConfig
from samplernn_cli.config.rules import default
from samplernn_cli.errors import AudioError, CheckpointError, UsageError
from samplernn_cli.fileio import check_input_file

if TYPE_CHECKING:
    from samplernn_cli.checkpoint import Checkpoint
    from samplernn_cli.training.requests import StopRequest, TrainResult

EXAMPLE_CLIP = "speech_allison_10s.flac"
logger = logging.getLogger("samplernn")


def _example_clip() -> Path:
    path = Path(str(resources.files("samplernn_cli") / "examples" / EXAMPLE_CLIP))
    if not path.is_file():
        raise UsageError(f"the example clip is missing from this installation ({path})")
    return path


def _training_inputs(
    input_paths: list[Path] | None, in_option: list[Path] | None, example: bool
) -> list[Path]:
    given = [*(input_paths or []), *(in_option or [])]
    if example and given:
        raise UsageError("--example trains on the bundled clip; do not give an input file too")
    if example:
        return [_example_clip()]
    if not given:
        raise UsageError(
            "missing input: samplernn train INPUT.wav (or a folder, or several; --example to "
            "try it out)"
        )
    return list(dict.fromkeys(given))  # each once, in the order given


def _default_name(source: Path) -> str:
    """The run name for an input: a file's stem, a folder's name."""
    return (source.resolve().name if source.is_dir() else source.stem) or "run"


def _with_preset(given: Given[Any], settings: type, preset: str | None) -> dict[str, Any]:
    """The settings of one class: those given explicitly, else the preset's, else the
    defaults (a given_only setting that nothing sets is left to its class's default)."""
    from samplernn_cli.presets import preset_named

    values = dict(given.values)
    if preset is not None:
        preset_values = preset_named(preset).values_of(settings)
        values.update({k: v for k, v in preset_values.items() if k not in given.explicit})
    return values


def _model_settings(
    given: Given[ModelConfig], preset: str | None, frame_size: int | None, parent: Checkpoint | None
) -> ModelConfig:
    """The architecture asked for: explicit options, else the preset, else the defaults.

    ``--frame_size N`` sets the bottom tier of ``--frame-sizes``, else of the preset's, else
    of the parent's (``--init-from``), else of the default.
    """
    values = _with_preset(given, ModelConfig, preset)
    if frame_size is not None:
        sizes = values.get("frame_sizes")
        if "frame_sizes" in given.explicit and sizes[0] != frame_size:
            raise UsageError(
                f"--frame_size {frame_size} contradicts --frame-sizes (whose first entry is "
                f"{sizes[0]}); give one of them"
            )
        if sizes is None:
            sizes = (
                parent.model_config.frame_sizes if parent else default(ModelConfig, "frame_sizes")
            )
        values["frame_sizes"] = (frame_size, *sizes[1:])
    return ModelConfig(**values)


def _checkpoint_or_folder(given: Path) -> Path:
    """resume's argument: a checkpoint file, a run folder, or a run's name under the output
    root (``samplernn resume run1`` after ``samplernn train ... -o run1``)."""
    from samplernn_cli.errors import CheckpointError

    if given.is_dir():
        return given
    if not given.exists() and len(given.parts) == 1:
        from samplernn_cli.run.folder import resolve_output_root

        under_root = resolve_output_root(None) / given
        if under_root.is_dir():
            return under_root
    check_input_file(given, CheckpointError)
    return given


def _run(start: Any, request: Any, *, quiet: bool, log_every: int) -> int:
    """Set up the display and signals, open the session (``start(request, progress=...,
    stop=...)``: :func:`session.train` or :func:`session.resume`) and report how training
    ended; returns the exit code."""
    from samplernn_cli.cli.console import TrainDisplay, setup_logging, stderr_is_terminal
    from samplernn_cli.training.distributed import rank_in_environment
    from samplernn_cli.training.requests import StopReason, StopRequest

    stop: StopRequest = StopRequest()
    if rank_in_environment() > 0:  # under torchrun: rank 0 reports, the others only errors
        setup_logging(quiet=True, rich_output=False)
        logging.getLogger("samplernn").setLevel(logging.ERROR)
        with stop_on_signals(stop):
            result: TrainResult = start(request, progress=None, stop=stop)
        return exit_code_for_stop(result.stopped_by)
    console = setup_logging(quiet=quiet, rich_output=stderr_is_terminal())
    with TrainDisplay(console, quiet=quiet, log_every=log_every) as display, stop_on_signals(stop):
        result = start(request, progress=display, stop=stop)
    reasons = {
        StopReason.MAX_ITERATIONS: "reached --max-iterations",
        StopReason.MAX_EPOCHS: "reached --max-epochs",
        StopReason.MAX_TIME: "reached --max-time",
        StopReason.SIGINT: "interrupted (Ctrl-C)",
        StopReason.SIGTERM: "terminated (SIGTERM)",
        StopReason.PLATEAU: "validation stopped improving (--patience, --max-halvings); the "
        "final checkpoint holds the best model",
    }
    val = "" if result.last_val_loss is None else f", validation {result.last_val_loss:.4f} bits"
    logger.info(
        f"stopped at iteration {result.iteration}, epoch {result.epoch}: "
        f"{reasons.get(result.stopped_by, result.stopped_by)}{val}"
    )
    if result.checkpoint is not None:
        print_path(result.checkpoint)
    return exit_code_for_stop(result.stopped_by)


@setting_options
def train(
    *,
    input_paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="INPUT...",
            help="Audio files or folders to train on (folders are searched recursively; WAV, "
            "FLAC, OGG, MP3, ...; any rate, depth, channels; each file is mixed to mono and "
            "resampled to the model's rate).",
            show_default=False,
        ),
    ] = None,
    in_option: TrainingInputOption = None,
    example: Annotated[
        bool,
        typer.Option(
            "--example",
            help="Train on the 10-second speech clip that ships with samplernn.",
            rich_help_panel=INPUT,
        ),
    ] = False,
    out: RunNameOption = None,
    output_root: OutputRootOption = None,
    force: ForceOption = False,
    audio: Given[AudioConfig],
    keep_sample_rate: KeepSampleRateOption = False,
    preset: PresetOption = None,
    frame_size: FrameSizeOption = None,
    model: Given[ModelConfig],
    training: Given[TrainConfig],
    device: DeviceOption = "auto",
    live: Given[LiveSettings],
    stopping: Given[StopConditions],
    init_from: InitFromOption = None,
    init_optimizer: InitOptimizerOption = False,
    quiet: QuietOption = False,
    log_every: LogEveryOption = 50,
) -> int:
    """Train a new model on audio files or folders.

    With several files (or folders, searched recursively), sequences never cross from one
    file into another and every file gives its end to validation (or whole files validate,
    with --val-split files). Under torchrun, one process per GPU trains with
    DistributedDataParallel (see docs/long-runs.md). The run folder (-o NAME, default: the
    first input's name) fills with checkpoints, generated clips and a loss log. With no stop
    condition, training runs until Ctrl-C, which writes a checkpoint first. The path of the
    last checkpoint is printed on stdout.
    """
    sources = _training_inputs(input_paths, in_option, example)
    audio_config = audio_settings(audio, keep_sample_rate)
    for source in sources:  # before the slow torch import
        if not source.is_dir():
            check_input_file(source, AudioError)
    if init_from is not None:
        check_input_file(init_from, CheckpointError)
    elif init_optimizer:
        raise UsageError("--init-optimizer takes the optimizer state of --init-from CHECKPOINT")

    from samplernn_cli.run.folder import RunFolder, resolve_output_root

    run = RunFolder.locate(
        out or ("example" if example else _default_name(sources[0])),
        resolve_output_root(output_root),
    )
    parent = None
    if init_from is not None:
        from samplernn_cli.checkpoint import load_checkpoint  # imports torch

        parent = load_checkpoint(init_from)
    preset_name = None if preset is None else preset.value
    model_config = _model_settings(model, preset_name, frame_size, parent)
    train_config = TrainConfig(**_with_preset(training, TrainConfig, preset_name))
    if parent is not None:
        from samplernn_cli.training.startup import fine_tune_settings

        # --frame-size chooses the bottom tier; --keep-sample-rate, the input's own rate.
        chosen = model.explicit | audio.explicit | training.explicit
        chosen |= {"frame_sizes"} if frame_size is not None else set()
        chosen |= {"sample_rate"} if keep_sample_rate else set()
        model_config, audio_config, train_config = fine_tune_settings(
            parent, model_config, audio_config, train_config, chosen, preset=preset_name
        )
    live_settings = LiveSettings(**live.values)
    stop_conditions = StopConditions(**stopping.values)
    for config in (model_config, audio_config, train_config, live_settings, stop_conditions):
        config.validate()

    from samplernn_cli.training import session  # imports torch: after the quick checks
    from samplernn_cli.training.requests import TrainRequest

    request = TrainRequest(
        inputs=tuple(sources),
        run=run,
        model=model_config,
        audio=audio_config,
        train=train_config,
        live=live_settings,
        stop=stop_conditions,
        device=device,
        force=force,
        init_from=parent,
        init_optimizer=init_optimizer,
    )
    return _run(session.train, request, quiet=quiet, log_every=log_every)


@setting_options
def resume(
    *,
    checkpoint: Annotated[
        Path,
        typer.Argument(
            help="Checkpoint to continue from (NAME_epoch_E_iter_I_model.pt), or a run folder "
            "(or the name of a run under the output root): its newest complete checkpoint.",
            show_default=False,
        ),
    ],
    in_option: TrainingInputOption = None,
    out: RunNameOption = None,
    output_root: OutputRootOption = None,
    force: ForceOption = False,
    device: DeviceOption = "auto",
    live: Given[LiveSettings],
    stopping: Given[StopConditions],
    quiet: QuietOption = False,
    log_every: LogEveryOption = 50,
) -> int:
    """Continue training exactly where a checkpoint left off.

    Same architecture, weights, optimizer and RNG state, data position, counters and loss
    history; the live settings as last edited in NAME_args.json. Continues in the
    checkpoint's run folder, or in a new one with -o. Run-time settings (stop conditions,
    live settings, device) may be given; architecture and data settings come from the
    checkpoint. The training audio must still be readable (-i if it moved).

    Given a run folder, continues from its newest complete checkpoint (a newer one that is
    damaged is passed over, with a warning), so a batch job can run the same command again
    and again.
    """  # fmt: skip
    checkpoint = _checkpoint_or_folder(checkpoint)
    stop_conditions = StopConditions(**stopping.values)
    stop_conditions.validate()
    run = None
    if out is not None:
        from samplernn_cli.run.folder import RunFolder, resolve_output_root

        run = RunFolder.locate(out, resolve_output_root(output_root))
    elif output_root is not None:
        raise UsageError("--output-root needs -o NAME (without it, resume continues in "
                         "the checkpoint's own folder)")  # fmt: skip

    from samplernn_cli.training import session  # imports torch
    from samplernn_cli.training.requests import ResumeRequest

    request = ResumeRequest(
        checkpoint=checkpoint,
        run=run,
        inputs=tuple(in_option or ()),
        live_overrides=live.values,
        stop=stop_conditions,
        device=device,
        force=force,
    )
    return _run(session.resume, request, quiet=quiet, log_every=log_every)
