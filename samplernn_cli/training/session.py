"""Opening a training session: a new run (:func:`train`) or a continued one (:func:`resume`),
through one code path (:func:`_open`): check the run folder, find and decode the input,
build the trainer (restored from the checkpoint when continuing), write the run folder's
starting files, and train while holding the folder's lock.

A continued run is opened as a :class:`TrainRequest` built from its checkpoint's settings
(with this session's folder, input, live settings and stop conditions), plus the checkpoint.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from pathlib import Path

from samplernn_cli.checkpoint import Checkpoint, load_checkpoint
from samplernn_cli.config import AudioConfig, ModelConfig
from samplernn_cli.data.cache import Dataset, bound_cache, cache_limit, load_dataset
from samplernn_cli.data.files import find_audio_files
from samplernn_cli.device import keep_heap_memory, resolve_device
from samplernn_cli.errors import (
    AudioError,
    ConfigError,
    MissingDependencyError,
    RunFolderError,
)
from samplernn_cli.quantize import Quantizer
from samplernn_cli.run.artifacts import describe_run, write_data_examples
from samplernn_cli.run.folder import RunFolder
from samplernn_cli.run.live import parse_live_settings
from samplernn_cli.run.retention import disk_plan, estimated_checkpoint_bytes, newest_complete
from samplernn_cli.run.tensorboard_log import tensorboard_problem
from samplernn_cli.training.distributed import (
    Distributed,
    from_environment,
    membership,
    rank_in_environment,
)
from samplernn_cli.training.loop import Trainer
from samplernn_cli.training.requests import (
    ProgressCallback,
    ResumeRequest,
    StopRequest,
    TrainRequest,
    TrainResult,
)
from samplernn_cli.training.startup import fine_tune_settings

logger = logging.getLogger("samplernn")


def train(
    request: TrainRequest,
    *,
    progress: ProgressCallback | None = None,
    stop: StopRequest | None = None,
) -> TrainResult:
    """Start a new run: read the input, create the run folder, write the data artifacts and
    train until a stop condition or ``stop`` is requested.

    Raises:
        AudioError, ConfigError, RunFolderError, OutputError, TrainingError,
        MissingDependencyError: see :mod:`samplernn_cli.errors`; nothing in an existing run
        folder is touched unless ``request.force``.
    """
    for config in (request.model, request.audio, request.train, request.live, request.stop):
        config.validate()
    if request.init_from is not None:
        # The command line has applied the rule already; a Python caller chose every setting.
        model, audio, training = fine_tune_settings(
            request.init_from, request.model, request.audio, request.train
        )
        request = replace(request, model=model, audio=audio, train=training)
    request.train.check_with(request.model)
    return _open(request, progress, stop or StopRequest())


def resume(
    request: ResumeRequest,
    *,
    progress: ProgressCallback | None = None,
    stop: StopRequest | None = None,
) -> TrainResult:
    """Continue a run exactly where a checkpoint left off.

    The model, optimizer and RNG state, the position in the data, the carried RNN state,
    the iteration and epoch counters and the loss history all come from the checkpoint; the
    live settings from the run's ``NAME_args.json`` as last edited (when continuing in the
    same folder), then from ``request.live_overrides``. ``NAME_losses.csv`` is rewritten
    from the checkpoint's history, so rows written after the checkpoint by an interrupted
    session are replaced by the ones the continued run writes.

    Raises:
        CheckpointError, AudioError, RunFolderError, ConfigError, OutputError,
        TrainingError, MissingDependencyError: see :mod:`samplernn_cli.errors`.
    """
    request.stop.validate()
    by_folder = request.checkpoint.is_dir()
    if by_folder:
        checkpoint = newest_complete(request.checkpoint)
    else:
        checkpoint = load_checkpoint(request.checkpoint)
        checkpoint.require_training_state()
    own_folder = RunFolder(path=checkpoint.path.parent, name=checkpoint.run_name)
    folder = request.run or own_folder
    same_folder = (
        folder.path.resolve() == own_folder.path.resolve() and folder.name == own_folder.name
    )
    live = checkpoint.live
    if same_folder and folder.args_json.is_file():
        try:
            live = parse_live_settings(folder.args_json.read_text(encoding="utf-8"), live)
        except (OSError, UnicodeDecodeError, ConfigError) as exc:
            logger.warning(f"ignoring {folder.args_json.name} ({exc}); using the checkpoint's")
    try:
        live = replace(live, **request.live_overrides)
    except TypeError as exc:
        raise ConfigError(f"unknown live setting ({exc})") from None
    live.validate()
    # The run's own settings, with this session's folder, input, live settings and limits.
    continued = TrainRequest(
        inputs=request.inputs,
        run=folder,
        model=checkpoint.model_config,
        audio=checkpoint.audio,
        train=checkpoint.train,
        live=live,
        stop=request.stop,
        device=request.device,
        force=request.force,
    )
    return _open(
        continued,
        progress,
        stop or StopRequest(),
        checkpoint,
        same_folder=same_folder,
        replace_later=by_folder,
    )


def _open(
    request: TrainRequest,
    progress: ProgressCallback | None,
    stop: StopRequest,
    checkpoint: Checkpoint | None = None,
    *,
    same_folder: bool = False,
    replace_later: bool = False,
) -> TrainResult:
    """The one way a session opens: check the folder, read the input, build the trainer
    (restored from ``checkpoint`` when continuing, in its own folder if ``same_folder``),
    and train. ``replace_later``: the run continues from its newest complete checkpoint, so
    files an interrupted session wrote after it are replaced as the run gets there again.

    Raises:
        MissingDependencyError: the live settings ask for TensorBoard and it is not
            installed (before anything is read or written).
    """
    opened = time.time()
    if request.live.tensorboard and rank_in_environment() == 0:  # rank 0 alone writes
        problem = tensorboard_problem()
        if problem is not None:
            raise MissingDependencyError(problem)
    # Read first: a malformed $SAMPLERNN_CACHE_LIMIT stops the run before anything is read.
    limit = cache_limit()
    device = resolve_device(request.device)
    keep_heap_memory()  # fewer page faults per CPU step (samplernn_cli.device)
    dist = from_environment(device, request.train.batch_size)
    with membership(dist):
        if dist is not None:
            device = dist.device
        if dist is None or dist.is_main:
            _check_folder(request, checkpoint if same_folder else None, replace_later)
        paths = _input_paths(request, checkpoint)
        # A continued run reads its input at the rate it was trained at (the first file's,
        # when it kept the input's own rate).
        rate = request.audio.sample_rate if checkpoint is None else checkpoint.sample_rate
        audio = replace(request.audio, sample_rate=rate)
        dataset = _read_inputs(paths, audio, request.model, request.run, dist)
        expected = None if checkpoint is None else checkpoint.codes_sha256
        if expected is not None and expected != dataset.fingerprint:
            what = str(paths[0]) if len(paths) == 1 else f"the {len(paths)} input files"
            raise AudioError(
                f"{what} {'is' if len(paths) == 1 else 'are'} not the audio this run was trained "
                "on (the samples differ after processing); pass -i/--in with the original input"
            )
        trainer = Trainer(
            request, device=device, dataset=dataset, progress=progress, stop=stop, dist=dist
        )
        if dist is None or dist.is_main:  # the session's codes and copies are ready
            bound_cache(opened, limit)
        if checkpoint is not None:
            trainer.restore(checkpoint, own_folder=same_folder)
            logger.info(
                f"resuming {checkpoint.run_name} from iteration {checkpoint.iteration} (epoch "
                f"{checkpoint.epoch}) of {checkpoint.path.name}"
            )
        elif request.init_from is not None:
            trainer.start_from(request.init_from, optimizer=request.init_optimizer)
            parent = request.init_from
            logger.info(
                f"fine-tuning from {parent.path.name} (iteration {parent.iteration} of run "
                f"{parent.run_name}), {'with its' if request.init_optimizer else 'with a fresh'} "
                "optimizer state"
            )
        try:
            return _train(trainer, write_examples=not same_folder)
        finally:
            trainer.step.ddp = None  # DDP holds the process group: drop it before leaving it


def _check_folder(
    request: TrainRequest, continuing: Checkpoint | None, replace_later: bool = False
) -> None:
    """A new run (or a continuation in another folder) needs a free folder; continuing in
    the checkpoint's own folder must not overwrite files written after the checkpoint,
    unless it continues the run from its newest complete checkpoint (``replace_later``)."""
    folder = request.run
    if continuing is None:
        folder.check_available(force=request.force)
        return
    later = folder.artifacts_after(continuing.iteration)
    if later and replace_later:
        logger.warning(
            f"{len(later)} files written after iteration {continuing.iteration} by an "
            "interrupted session (checkpoints that cannot be used, clips, pictures) will be "
            "replaced as the run gets there again"
        )
    elif later and not request.force:
        newest = max(later, key=lambda p: p.stat().st_mtime)
        raise RunFolderError(
            f"{folder.path} has {len(later)} files written after iteration "
            f"{continuing.iteration} (e.g. {newest.name}); continuing from this checkpoint "
            "would overwrite them: resume from the newest checkpoint, continue in a new "
            "folder with -o, or pass --force"
        )


def _input_paths(request: TrainRequest, checkpoint: Checkpoint | None) -> list[Path]:
    """The files to read: those given (folders searched), else those the checkpoint lists."""
    if request.inputs or checkpoint is None:
        return find_audio_files(request.inputs, exclude=request.run.path.parent)
    paths = [Path(entry["path"]) for entry in checkpoint.input_files]
    missing = [path for path in paths if not path.exists()]
    if missing:
        others = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise AudioError(
            f"the training input {missing[0]} is missing{others}; pass -i/--in with its "
            "new location (a file or folder; repeat -i for several)"
        )
    return paths


def _read_inputs(
    paths: list[Path],
    audio: AudioConfig,
    model_config: ModelConfig,
    folder: RunFolder,
    dist: Distributed | None,
) -> Dataset:
    """Decode the inputs (distributed: rank 0 first, filling the code cache, then the others,
    which find the files there when the cache folder is shared with rank 0)."""
    for path in paths:
        if folder.owns(path):
            raise ConfigError(
                f"the input {path} is a file this run would write; move it or choose "
                "another run name with -o"
            )
    quantizer = Quantizer(model_config.quantizer, model_config.q_levels)
    if dist is not None and not dist.is_main:
        dist.barrier()
    dataset = load_dataset(paths, audio, quantizer)
    if dist is not None and dist.is_main:
        dist.barrier()
    for file in dataset.files:
        if file.gain > 1000:
            logger.warning(
                f"{file.source.name} is very quiet (peak {20 * math.log10(file.peak):.0f} "
                "dBFS); normalisation amplifies its noise floor too"
            )
    return dataset


def _train(trainer: Trainer, *, write_examples: bool) -> TrainResult:
    """Create the run folder, write its starting files and train, holding the run's lock
    (the run folder is rank 0's alone)."""
    if not trainer.is_main:
        return trainer.fit()
    folder = trainer.run
    folder.create()
    with folder.lock():
        for path in folder.remove_stale_temp_files():
            logger.info(f"removed {path.name}, left by an interrupted write")
        describe_run(
            folder,
            trainer.dataset,
            trainer.split,
            trainer.plan,
            trainer.model,
            trainer.request.train,
            trainer.request.audio.normalize,
            trainer.device,
        )
        bounded = trainer.request.stop.bounded
        logger.info(trainer.plateau.describe(trainer.schedule.rate, bounded=bounded))
        trainer.live.write()
        _plan_disk(trainer)
        trainer.reporter.loss_log.open(trainer.state.history.rows())
        if write_examples:
            write_data_examples(folder, trainer.dataset, trainer.plan, trainer.model)
        return trainer.fit()


def _plan_disk(trainer: Trainer) -> None:
    """Say what the run's checkpoints will take, and warn when the disk will not hold it."""
    resumed_from = trainer.writer.resumed_from
    if resumed_from is not None:
        size = resumed_from.stat().st_size
    else:
        size = estimated_checkpoint_bytes(
            sum(p.numel() * p.element_size() for p in trainer.model.parameters()),
            averaged=trainer.average is not None,
        )
    line, warning = disk_plan(
        trainer.run,
        checkpoint_bytes=size,
        live=trainer.live.current,
        stop=trainer.request.stop,
        iteration=trainer.state.iteration,
        iterations_per_epoch=trainer.plan.iterations_per_epoch,
    )
    logger.info(line)
    if warning is not None:
        logger.warning(warning)
