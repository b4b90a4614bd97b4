"""Saving a session: what a checkpoint of the moment records (a :class:`TrainingSnapshot`),
writing the run's periodic checkpoints, and retention after each one
(:mod:`samplernn_cli.run.retention`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samplernn_cli.checkpoint import InputFile, TrainingSnapshot, save_checkpoint
from samplernn_cli.data.cache import Dataset
from samplernn_cli.data.split import DataSplit
from samplernn_cli.distance import Reference, measure_reference, stretches
from samplernn_cli.errors import OutputError
from samplernn_cli.quantize import Quantizer
from samplernn_cli.run.live import LiveSettingsFile
from samplernn_cli.run.retention import prune
from samplernn_cli.run.tensorboard_log import TensorBoardLog
from samplernn_cli.training.state import RunState, Session

logger = logging.getLogger("samplernn")


def input_records(dataset: Dataset, split: DataSplit) -> tuple[InputFile, ...]:
    """What a checkpoint records of each input file: where it came from, its gain, its
    length and fingerprint, and how much of it trains and validates."""
    train = {s.file: s.length for s in split.train}
    val = {s.file: s.length for s in split.val}
    return tuple(
        InputFile(
            source=file.source,
            gain=file.gain,
            samples=file.length,
            codes_sha256=file.fingerprint,
            train_samples=train.get(index, 0),
            val_samples=val.get(index, 0),
        )
        for index, file in enumerate(dataset.files)
    )


# Samples read to measure the training audio's level: enough for a steady figure, few enough
# to be instant for hours of audio (an even stride through every file).
LEVEL_SAMPLES = 2**22


def training_level_dbfs(dataset: Dataset, quantizer: Quantizer) -> float:
    """RMS level of the training audio as the model hears it (decoded codes), in dBFS."""
    total = max(dataset.total_samples, 1)
    stride = max(1, total // LEVEL_SAMPLES)
    energy = count = 0.0
    for codes in dataset.codes:
        picked = torch.from_numpy(np.asarray(codes[::stride], dtype=np.int64))
        energy += float(quantizer.decode(picked).double().square().sum())
        count += picked.numel()
    return 10 * math.log10(energy / max(count, 1) + 1e-24)


def training_reference(
    dataset: Dataset, split: DataSplit, quantizer: Quantizer
) -> Reference | None:
    """The training parts' statistics for the take-to-recording distance, as the model hears
    them (decoded codes; for hours of audio, spread stretches of it), or None where there is
    too little training audio to measure them (a warning says so)."""
    segments = split.train
    pieces = []
    for index, start, length in stretches([s.length for s in segments], dataset.sample_rate):
        segment = segments[index]
        codes = dataset.files[segment.file].codes[segment.start + start :
                                                  segment.start + start + length]  # fmt: skip
        pieces.append(quantizer.decode(torch.from_numpy(np.array(codes, dtype=np.int64))))
    try:
        return measure_reference(pieces, dataset.sample_rate)
    except ValueError as exc:
        logger.warning(f"clips will be ranked by their bits alone: {exc}")
        return None


@dataclass
class CheckpointWriter:
    """Takes snapshots of a session and writes its periodic checkpoints."""

    session: Session  # the settings, model, optimizer, data and plan it records
    # The settings in effect: what a checkpoint records, and how many checkpoints
    # retention keeps.
    live: LiveSettingsFile
    board: TensorBoardLog  # flushed before each checkpoint
    level_dbfs: float  # the training audio's (training_level_dbfs), recorded in checkpoints
    reference: Reference | None  # the training audio's (training_reference), recorded too
    # Where the starting weights came from (checkpoint.provenance), kept by every
    # checkpoint of the run; None: trained from scratch.
    parent: dict[str, Any] | None = None
    # The checkpoint this session continues from, when it is in the run folder: never
    # deleted by retention while the session runs.
    resumed_from: Path | None = None

    def snapshot(self, state: RunState) -> TrainingSnapshot:
        """What a checkpoint of this moment records (on every rank: they all take part in
        gathering the RNN state)."""
        session = self.session
        rnn_state = None
        if state.rnn_state is not None:  # (layers, B, H) tensors; every rank's rows, in order
            rnn_state = [
                None if s is None else tuple(self._all_rows(t).cpu() for t in s)
                for s in state.rnn_state
            ]
        rng = {"torch": torch.get_rng_state()}
        if session.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(session.device)
        request, average = session.request, session.average
        return TrainingSnapshot(
            run_name=self.session.run.name,
            model_config=request.model,
            audio=request.audio,
            train=request.train,
            live=self.live.current,
            sample_rate=session.dataset.sample_rate,
            inputs=input_records(session.dataset, session.split),
            codes_sha256=session.dataset.fingerprint,
            weights=session.model.state_dict() if average is None else average.weights(),
            training_weights=None if average is None else session.model.state_dict(),
            optimizer=session.optimizer.state_dict(),
            progress=state.progress(
                iterations_per_epoch=session.plan.iterations_per_epoch,
                sequence_samples=session.plan.sequence_length,
                average_updates=None if average is None else average.updates,
            ),
            rnn_state=rnn_state,
            rng=rng,
            history=state.history,
            device=str(session.device),
            parent=self.parent,
            level_dbfs=round(self.level_dbfs, 2),
            reference=None if self.reference is None else self.reference.to_dict(),
            last_round=state.last_round,
        )

    def _all_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor if self.session.dist is None else self.session.dist.gather_rows(tensor, dim=1)

    def write(self, state: RunState) -> None:
        """Write a checkpoint (on every rank: they all take part in gathering the RNN state;
        rank 0 writes it), then delete the checkpoints retention no longer keeps."""
        snapshot = self.snapshot(state)
        state.last_checkpoint_iteration = state.iteration
        if not self.session.is_main:
            return
        self.board.flush()  # the events up to the checkpoint survive a kill after it
        run = self.session.run
        path = run.checkpoint(state.last_epoch, state.iteration)
        save_checkpoint(path, snapshot)
        state.last_checkpoint = path
        logger.info(f"checkpoint: {path}")
        keep = self.live.current.keep_checkpoints
        if keep is not None:  # only now that the new one is complete
            protected = [path] if self.resumed_from is None else [path, self.resumed_from]
            for old in prune(run, keep, iteration=state.iteration, protected=protected):
                logger.info(f"deleted {old.name} (keeping the newest {keep} checkpoints)")

    @contextlib.contextmanager
    def naming_newest(self, state: RunState) -> Iterator[None]:
        """A file that cannot be written (a full disk, say) stops the run; its message names
        the newest complete checkpoint, the one to continue from."""
        try:
            yield
        except OutputError as exc:
            newest = state.last_checkpoint
            where = (
                f"the newest complete checkpoint is {newest}"
                if newest is not None and newest.is_file()
                else "no checkpoint of this run was written yet"
            )
            raise OutputError(f"{exc}; {where}") from None
