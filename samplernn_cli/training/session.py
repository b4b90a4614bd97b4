"""Opening a training session: a new run (:func:`train`) or a continued one (:func:`resume`),
through one code path (:func:`_open`): check the run folder, find and decode the input,
build the trainer (restored from the checkpoint when continuing), write the run folder's
starting files, and train while holding the folder's lock.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

from samplernn_cli.checkpoint import Checkpoint, load_checkpoint
from samplernn_cli.config import AudioConfig, LiveSettings, ModelConfig, StopConditions, TrainConfig
from samplernn_cli.data.cache import Dataset, load_dataset
from samplernn_cli.data.files import find_audio_files
from samplernn_cli.device import resolve_device
from samplernn_cli.errors import AudioError, CheckpointError, ConfigError, RunFolderError
from samplernn_cli.quantize import Quantizer
from samplernn_cli.training.artifacts import describe_run, write_data_examples
from samplernn_cli.training.distributed import Distributed, from_environment, membership
from samplernn_cli.training.live import parse_live_settings
from samplernn_cli.training.loop import Trainer
from samplernn_cli.training.requests import (
    ProgressCallback,
    ResumeRequest,
    StopRequest,
    TrainRequest,
    TrainResult,
)
from samplernn_cli.training.runfolder import RunFolder

logger = logging.getLogger("samplernn")


@dataclass(frozen=True)
class _Session:
    """A session to open: a new run's settings, or a checkpoint's with run-time changes."""

    run: RunFolder
    model: ModelConfig
    audio: AudioConfig  # as recorded for the run
    sample_rate: int | None  # the rate the input is read at (None: the first file's)
    train: TrainConfig
    live: LiveSettings
    stop: StopConditions
    device: str
    force: bool
    inputs: tuple[Path, ...]  # files and folders given; empty: the checkpoint's files
    checkpoint: Checkpoint | None = None  # continue from this
    same_folder: bool = False  # continue in the checkpoint's own run folder


def train(
    request: TrainRequest,
    *,
    progress: ProgressCallback | None = None,
    stop: StopRequest | None = None,
) -> TrainResult:
    """Start a new run: read the input, create the run folder, write the data artifacts and
    train until a stop condition or ``stop`` is requested.

    Raises:
        AudioError, ConfigError, RunFolderError, OutputError, TrainingError: see
        :mod:`samplernn_cli.errors`; nothing in an existing run folder is touched unless
        ``request.force``.
    """
    for config in (request.model, request.audio, request.train, request.live, request.stop):
        config.validate()
    session = _Session(
        run=request.run,
        model=request.model,
        audio=request.audio,
        sample_rate=request.audio.sample_rate,
        train=request.train,
        live=request.live,
        stop=request.stop,
        device=request.device,
        force=request.force,
        inputs=request.inputs,
    )
    return _open(session, progress, stop or StopRequest())


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
        TrainingError: see :mod:`samplernn_cli.errors`.
    """
    request.stop.validate()
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
    session = _Session(
        run=folder,
        model=checkpoint.model_config,
        audio=checkpoint.audio,
        sample_rate=checkpoint.sample_rate,
        train=checkpoint.train,
        live=live,
        stop=request.stop,
        device=request.device,
        force=request.force,
        inputs=request.inputs,
        checkpoint=checkpoint,
        same_folder=same_folder,
    )
    return _open(session, progress, stop or StopRequest())


def _open(session: _Session, progress: ProgressCallback | None, stop: StopRequest) -> TrainResult:
    """Check the folder, read the input, build (and restore) the trainer, and train."""
    checkpoint = session.checkpoint
    device = resolve_device(session.device)
    dist = from_environment(device, session.train.batch_size)
    with membership(dist):
        if dist is not None:
            device = dist.device
        if dist is None or dist.is_main:
            _check_folder(session)
        paths = _input_paths(session)
        audio = replace(session.audio, sample_rate=session.sample_rate)
        dataset = _read_inputs(paths, audio, session.model, session.run, dist)
        expected = None if checkpoint is None else checkpoint.codes_sha256
        if expected is not None and expected != dataset.fingerprint:
            what = str(paths[0]) if len(paths) == 1 else f"the {len(paths)} input files"
            raise AudioError(
                f"{what} {'is' if len(paths) == 1 else 'are'} not the audio this run was trained "
                "on (the samples differ after processing); pass -i/--in with the original input"
            )
        trainer = Trainer(
            run=session.run,
            model_config=session.model,
            audio_config=session.audio,
            train_config=session.train,
            live=session.live,
            stop_conditions=session.stop,
            device=device,
            dataset=dataset,
            progress=progress,
            stop=stop,
            dist=dist,
        )
        if checkpoint is not None:
            trainer.restore(checkpoint)
            if trainer.is_main and session.run.best_model.is_file():
                try:
                    best = load_checkpoint(session.run.best_model).stored_summary
                    trainer.best_on_disk = best.get("last_val_loss")
                except CheckpointError as exc:
                    logger.warning(f"{exc}; it will be replaced by the next best model")
            logger.info(
                f"resuming {checkpoint.run_name} from iteration {checkpoint.iteration} (epoch "
                f"{checkpoint.epoch}) of {checkpoint.path.name}"
            )
        try:
            return _train(trainer, write_examples=not session.same_folder)
        finally:
            trainer.ddp = None  # DDP holds the process group: drop it before leaving the group


def _check_folder(session: _Session) -> None:
    """A new run (or a continuation in another folder) needs a free folder; continuing in
    the checkpoint's own folder must not overwrite files written after the checkpoint."""
    folder, checkpoint = session.run, session.checkpoint
    if checkpoint is None or not session.same_folder:
        folder.check_available(force=session.force)
        return
    later = folder.artifacts_after(checkpoint.iteration)
    if later and not session.force:
        newest = max(later, key=lambda p: p.stat().st_mtime)
        raise RunFolderError(
            f"{folder.path} has {len(later)} files written after iteration "
            f"{checkpoint.iteration} (e.g. {newest.name}); continuing from this checkpoint "
            "would overwrite them: resume from the newest checkpoint, continue in a new "
            "folder with -o, or pass --force"
        )


def _input_paths(session: _Session) -> list[Path]:
    """The files to read: those given (folders searched), else those the checkpoint lists."""
    if session.inputs or session.checkpoint is None:
        return find_audio_files(session.inputs, exclude=session.run.path.parent)
    paths = [Path(entry["path"]) for entry in session.checkpoint.input_files]
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
    folder = trainer.folder
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
            trainer.train_config,
            trainer.audio_config.normalize,
            trainer.device,
        )
        trainer.live.write()
        trainer.loss_log.open(trainer.state.history.rows())
        if write_examples:
            write_data_examples(folder, trainer.dataset, trainer.plan, trainer.model)
        return trainer.fit()
