"""``samplernn train`` and ``samplernn resume``."""

from __future__ import annotations

import logging
from dataclasses import fields, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from samplernn_cli.cli.boundary import exit_code_for_stop, stop_on_signals
from samplernn_cli.cli.options import (
    AUDIO_DEFAULTS,
    DEFAULT_QUANTIZER,
    DEFAULT_RNN_TYPE,
    DEFAULT_VAL_SPLIT,
    INPUT,
    MODEL_DEFAULTS,
    TRAIN_DEFAULTS,
    BatchSizeOption,
    CheckpointEveryOption,
    DeviceOption,
    EmbedSizeOption,
    ForceOption,
    FrameSizeOption,
    FrameSizesOption,
    GenerateEveryOption,
    GradClipOption,
    HiddenSizeOption,
    InitFromOption,
    InitOptimizerOption,
    KeepCheckpointsOption,
    KeepSampleRateOption,
    LearnH0Option,
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
    QuantizerOption,
    QuietOption,
    RnnLayersOption,
    RnnTypeOption,
    RunNameOption,
    SampleRateOption,
    SeedOption,
    SequenceLengthOption,
    SkipConnectionsOption,
    TemperatureOption,
    TensorBoardOption,
    TrainingInputOption,
    ValEveryOption,
    ValFractionOption,
    ValSplitOption,
    WeightNormOption,
    audio_settings,
)
from samplernn_cli.cli.output import print_path
from samplernn_cli.cli.rules import split_numbers
from samplernn_cli.cli.schedule_options import (
    DEFAULT_SEQUENCE_STARTS,
    AverageDecayOption,
    InputNoiseOption,
    MaxHalvingsOption,
    MinGainOption,
    PatienceOption,
    SequenceStartsOption,
    SpeedSpreadOption,
)
from samplernn_cli.config import (
    LiveSettings,
    ModelConfig,
    StopConditions,
    TrainConfig,
    parse_duration,
)
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


def _model_settings(
    ctx: typer.Context, *, preset: str | None, given: dict[str, Any], frame_size: int | None
) -> dict[str, Any]:
    """The model and batch settings: explicit options, else the preset, else the defaults.

    ``--frame_size N`` sets the bottom tier of ``--frame-sizes`` (or of the preset's).
    """
    from samplernn_cli.presets import PRESETS

    def explicit(name: str) -> bool:
        return _explicit(ctx, name)

    settings = dict(given)
    if settings["frame_sizes"] is None:
        settings["frame_sizes"] = MODEL_DEFAULTS.frame_sizes
    if preset is not None:
        for key, value in PRESETS[preset].values.items():
            if not explicit(key):
                settings[key] = value
    if frame_size is not None:
        sizes = settings["frame_sizes"]
        if explicit("frame_sizes") and sizes[0] != frame_size:
            raise UsageError(
                f"--frame_size {frame_size} contradicts --frame-sizes (whose first entry is "
                f"{sizes[0]}); give one of them"
            )
        settings["frame_sizes"] = (frame_size, *sizes[1:])
    return settings


# With --init-from, the train settings not given on the command line are the parent's.
INHERITED_TRAIN_SETTINGS = ("batch_size", "num_frames", "sequence_seconds", "sequence_starts",
                            "min_gain", "input_noise", "speed_spread", "average_decay",
                            "grad_clip", "val_fraction", "val_split")  # fmt: skip


def _explicit(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _flag(ctx: typer.Context, name: str) -> str:
    """How the user spells the option of parameter ``name`` (its first spelling)."""
    param = next(p for p in ctx.command.params if p.name == name)
    return param.opts[0]


def _fine_tune_settings(
    ctx: typer.Context, parent: Checkpoint, settings: dict[str, Any]
) -> dict[str, Any]:
    """The parent's architecture and sample rate (an option that contradicts them is a
    usage error), with the train settings given on the command line, else the parent's."""
    if _explicit(ctx, "preset"):
        raise UsageError(
            f"--preset sets the architecture, which --init-from takes from {parent.path.name}; "
            "drop --preset"
        )
    # The settings' own values (tuples stay tuples, as the options give them).
    architecture = {f.name: getattr(parent.model_config, f.name) for f in fields(ModelConfig)}
    architecture["frame_size"] = parent.model_config.frame_sizes[0]
    given = {**settings, "frame_size": settings["frame_sizes"][0]}

    def shown(value: Any) -> str:
        return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)

    for name in architecture:
        if name in given and _explicit(ctx, name) and given[name] != architecture[name]:
            raise UsageError(
                f"{_flag(ctx, name)} {shown(given[name])} conflicts with {parent.path.name}, "
                f"whose model has {shown(architecture[name])}; a fine-tuned model keeps its "
                "parent's architecture (drop the option, or train from scratch without "
                "--init-from)"
            )
    if _explicit(ctx, "keep_sample_rate") or (
        _explicit(ctx, "sample_rate") and ctx.params["sample_rate"] != parent.sample_rate
    ):
        raise UsageError(
            f"{parent.path.name} runs at {parent.sample_rate} Hz, and a fine-tuned model keeps "
            "its parent's sample rate; drop --sample-rate/--keep-sample-rate"
        )
    return {
        name: settings[name] if _explicit(ctx, name) else getattr(parent.train, name)
        for name in INHERITED_TRAIN_SETTINGS
    }


def _live_given(**values: Any) -> dict[str, Any]:
    """The live settings given on the command line (None: not given)."""
    return {key: value for key, value in values.items() if value is not None}


def _checkpoint_or_folder(given: Path) -> Path:
    """resume's argument: a checkpoint file, a run folder, or a run's name under the output
    root (``samplernn resume run1`` after ``samplernn train ... -o run1``)."""
    from samplernn_cli.errors import CheckpointError

    if given.is_dir():
        return given
    if not given.exists() and len(given.parts) == 1:
        from samplernn_cli.training.runfolder import resolve_output_root

        under_root = resolve_output_root(None) / given
        if under_root.is_dir():
            return under_root
    check_input_file(given, CheckpointError)
    return given


def _stop_conditions(
    max_iterations: int | None, max_epochs: int | None, max_time: str | None
) -> StopConditions:
    stop = StopConditions(
        max_iterations=max_iterations,
        max_epochs=max_epochs,
        max_seconds=None if max_time is None else parse_duration(max_time),
    )
    stop.validate()
    return stop


def _run(session: Any, *, quiet: bool, log_every: int) -> int:
    """Set up the display and signals, call ``session(progress, stop)`` and report how
    training ended; returns the exit code."""
    from samplernn_cli.cli.console import TrainDisplay, setup_logging, stderr_is_terminal
    from samplernn_cli.training.distributed import rank_in_environment
    from samplernn_cli.training.requests import StopRequest

    stop: StopRequest = StopRequest()
    if rank_in_environment() > 0:  # under torchrun: rank 0 reports, the others only errors
        setup_logging(quiet=True, rich_output=False)
        logging.getLogger("samplernn").setLevel(logging.ERROR)
        with stop_on_signals(stop):
            result: TrainResult = session(None, stop)
        return exit_code_for_stop(result.stopped_by)
    console = setup_logging(quiet=quiet, rich_output=stderr_is_terminal())
    with TrainDisplay(console, quiet=quiet, log_every=log_every) as display, stop_on_signals(stop):
        result = session(display, stop)
    reasons = {
        "max_iterations": "reached --max-iterations",
        "max_epochs": "reached --max-epochs",
        "max_time": "reached --max-time",
        "SIGINT": "interrupted (Ctrl-C)",
        "SIGTERM": "terminated (SIGTERM)",
        "plateau": "validation stopped improving (--patience, --max-halvings); the final "
        "checkpoint holds the best model",
    }
    val = "" if result.last_val_loss is None else f", validation {result.last_val_loss:.4f} bits"
    logger.info(
        f"stopped at iteration {result.iteration}, epoch {result.epoch}: "
        f"{reasons.get(result.stopped_by, result.stopped_by)}{val}"
    )
    if result.checkpoint is not None:
        print_path(result.checkpoint)
    return exit_code_for_stop(result.stopped_by)


def train(
    ctx: typer.Context,
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
    sample_rate: SampleRateOption = None,
    keep_sample_rate: KeepSampleRateOption = False,
    normalize: NormalizeOption = AUDIO_DEFAULTS.normalize,
    preset: PresetOption = None,
    q_levels: QuantizationOption = MODEL_DEFAULTS.q_levels,
    quantizer: QuantizerOption = DEFAULT_QUANTIZER,
    rnn_type: RnnTypeOption = DEFAULT_RNN_TYPE,
    hidden_size: HiddenSizeOption = MODEL_DEFAULTS.hidden_size,
    rnn_layers: RnnLayersOption = MODEL_DEFAULTS.rnn_layers,
    frame_size: FrameSizeOption = None,
    frame_sizes: FrameSizesOption = None,
    embed_size: EmbedSizeOption = MODEL_DEFAULTS.embed_size,
    skip_connections: SkipConnectionsOption = MODEL_DEFAULTS.skip_connections,
    weight_norm: WeightNormOption = MODEL_DEFAULTS.weight_norm,
    learn_h0: LearnH0Option = MODEL_DEFAULTS.learn_h0,
    batch_size: BatchSizeOption = TRAIN_DEFAULTS.batch_size,
    num_frames: NumFramesOption = TRAIN_DEFAULTS.num_frames,
    sequence_seconds: SequenceLengthOption = TRAIN_DEFAULTS.sequence_seconds,
    sequence_starts: SequenceStartsOption = DEFAULT_SEQUENCE_STARTS,
    min_gain: MinGainOption = TRAIN_DEFAULTS.min_gain,
    input_noise: InputNoiseOption = TRAIN_DEFAULTS.input_noise,
    speed_spread: SpeedSpreadOption = TRAIN_DEFAULTS.speed_spread,
    average_decay: AverageDecayOption = TRAIN_DEFAULTS.average_decay,
    patience: PatienceOption = TRAIN_DEFAULTS.patience,
    max_halvings: MaxHalvingsOption = TRAIN_DEFAULTS.max_halvings,
    grad_clip: GradClipOption = TRAIN_DEFAULTS.grad_clip,
    val_fraction: ValFractionOption = TRAIN_DEFAULTS.val_fraction,
    val_split: ValSplitOption = DEFAULT_VAL_SPLIT,
    seed: SeedOption = TRAIN_DEFAULTS.seed,
    device: DeviceOption = "auto",
    learning_rate: LearningRateOption = None,
    generate_every: GenerateEveryOption = None,
    checkpoint_every: CheckpointEveryOption = None,
    keep_checkpoints: KeepCheckpointsOption = None,
    val_every: ValEveryOption = None,
    length: LengthOption = None,
    num_generated: NumGeneratedOption = None,
    temperature: TemperatureOption = None,
    tensorboard: TensorBoardOption = None,
    max_iterations: MaxIterationsOption = None,
    max_epochs: MaxEpochsOption = None,
    max_time: MaxTimeOption = None,
    init_from: InitFromOption = None,
    init_optimizer: InitOptimizerOption = False,
    quiet: QuietOption = False,
    log_every: LogEveryOption = 50,
) -> int:
    """Train a new model on audio files or folders.

    With several files (or folders, searched recursively), sequences never cross from one
    file into another and every file gives its end to validation (or whole files validate,
    with --val-split files). Under torchrun, one process per GPU trains with
    DistributedDataParallel (see README). The run folder (-o NAME, default: the first input's
    name) fills with checkpoints, generated
    clips and a loss log. With no stop condition, training runs until Ctrl-C, which writes a
    checkpoint first. The path of the last checkpoint is printed on stdout.
    """
    sources = _training_inputs(input_paths, in_option, example)
    audio_config = audio_settings(sample_rate, keep_sample_rate, normalize)
    for source in sources:  # before the slow torch import
        if not source.is_dir():
            check_input_file(source, AudioError)
    if init_from is not None:
        check_input_file(init_from, CheckpointError)
    elif init_optimizer:
        raise UsageError("--init-optimizer takes the optimizer state of --init-from CHECKPOINT")

    from samplernn_cli.training.runfolder import RunFolder, resolve_output_root

    run = RunFolder.locate(
        out or ("example" if example else _default_name(sources[0])),
        resolve_output_root(output_root),
    )
    settings = _model_settings(
        ctx,
        preset=None if preset is None else preset.value,
        given={
            "hidden_size": hidden_size,
            "rnn_layers": rnn_layers,
            "rnn_type": rnn_type.value,
            "frame_sizes": None if frame_sizes is None else split_numbers(frame_sizes),
            "embed_size": embed_size,
            "q_levels": q_levels,
            "quantizer": quantizer.value,
            "batch_size": batch_size,
            "num_frames": num_frames,
            "skip_connections": skip_connections,
            "weight_norm": weight_norm,
            "learn_h0": learn_h0,
        },
        frame_size=frame_size,
    )
    model_config = ModelConfig(
        **{k: v for k, v in settings.items() if k not in ("batch_size", "num_frames")}
    )
    train_values = {
        "batch_size": settings["batch_size"],
        "num_frames": settings["num_frames"],
        "sequence_seconds": sequence_seconds,
        "sequence_starts": sequence_starts.value,
        "min_gain": min_gain,
        "input_noise": input_noise,
        "speed_spread": speed_spread,
        "average_decay": average_decay,
        "patience": patience,
        "max_halvings": max_halvings,
        "grad_clip": grad_clip,
        "val_fraction": val_fraction,
        "val_split": val_split.value,
    }
    parent = None
    if init_from is not None:
        from samplernn_cli.checkpoint import load_checkpoint  # imports torch

        parent = load_checkpoint(init_from)
        train_values = _fine_tune_settings(ctx, parent, {**settings, **train_values})
        model_config = parent.model_config
        audio_config = replace(audio_config, sample_rate=parent.sample_rate)
    train_config = TrainConfig(**train_values, seed=seed)
    live = LiveSettings(
        **_live_given(
            length=length,
            num_generated=num_generated,
            generate_every=generate_every,
            checkpoint_every=checkpoint_every,
            keep_checkpoints=keep_checkpoints,
            val_every=val_every,
            temperature=temperature,
            learning_rate=learning_rate,
            tensorboard=tensorboard,
        )
    )
    stop_conditions = _stop_conditions(max_iterations, max_epochs, max_time)
    for config in (model_config, audio_config, train_config, live):
        config.validate()

    from samplernn_cli.training import session  # imports torch: after the quick checks
    from samplernn_cli.training.requests import TrainRequest

    request = TrainRequest(
        inputs=tuple(sources),
        run=run,
        model=model_config,
        audio=audio_config,
        train=train_config,
        live=live,
        stop=stop_conditions,
        device=device,
        force=force,
        init_from=parent,
        init_optimizer=init_optimizer,
    )
    return _run(
        lambda progress, stop: session.train(request, progress=progress, stop=stop),
        quiet=quiet,
        log_every=log_every,
    )


def resume(
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
    learning_rate: LearningRateOption = None,
    generate_every: GenerateEveryOption = None,
    checkpoint_every: CheckpointEveryOption = None,
    keep_checkpoints: KeepCheckpointsOption = None,
    val_every: ValEveryOption = None,
    length: LengthOption = None,
    num_generated: NumGeneratedOption = None,
    temperature: TemperatureOption = None,
    tensorboard: TensorBoardOption = None,
    max_iterations: MaxIterationsOption = None,
    max_epochs: MaxEpochsOption = None,
    max_time: MaxTimeOption = None,
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
    stop_conditions = _stop_conditions(max_iterations, max_epochs, max_time)
    run = None
    if out is not None:
        from samplernn_cli.training.runfolder import RunFolder, resolve_output_root

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
        live_overrides=_live_given(
            length=length,
            num_generated=num_generated,
            generate_every=generate_every,
            checkpoint_every=checkpoint_every,
            keep_checkpoints=keep_checkpoints,
            val_every=val_every,
            temperature=temperature,
            learning_rate=learning_rate,
            tensorboard=tensorboard,
        ),
        stop=stop_conditions,
        device=device,
        force=force,
    )
    return _run(
        lambda progress, stop: session.resume(request, progress=progress, stop=stop),
        quiet=quiet,
        log_every=log_every,
    )
