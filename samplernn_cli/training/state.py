"""What changes as a run trains: its place in the data plan, the RNN state carried between
chunks, and the loss history. Saved in every checkpoint, restored on resume."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from samplernn_cli.checkpoint import RESUME_PROGRESS, Checkpoint, Progress
from samplernn_cli.data.plan import SequencePlan
from samplernn_cli.history import LossHistory
from samplernn_cli.model import ModelState


@dataclass
class RunState:
    """The position of a run, and what it has measured so far."""

    iteration: int = 0  # optimizer steps done
    epoch_index: int = 0  # 0-based epoch in progress
    batch: int = 0  # batch within the epoch
    chunk: int = 0  # chunk within the batch's sequences
    last_epoch: int = 1  # 1-based epoch of the last iteration (used in file names)
    training_seconds: float = 0.0
    rnn_state: ModelState | None = None
    history: LossHistory = field(default_factory=LossHistory)
    last_checkpoint: Path | None = None
    last_checkpoint_iteration: int = -1
    lr_halvings: int = 0  # by the plateau schedule (TrainConfig.patience)
    stale_validations: int = 0  # in a row without a new best, since the last halving
    # The last generation round: its iteration and its takes' scores, best first
    # (checkpoint.TrainingSnapshot.last_round).
    last_round: dict[str, Any] | None = None

    @property
    def lr_scale(self) -> float:
        """What the plateau schedule multiplies the live learning rate by."""
        return 0.5**self.lr_halvings

    def advance(self, plan: SequencePlan) -> None:
        """Count an iteration done: on to the next chunk of the sequences, and after the
        last chunk to the next batch (with a fresh RNN state) and epoch."""
        self.last_epoch = self.epoch_index + 1
        self.iteration += 1
        self.chunk += 1
        if self.chunk == plan.chunks_per_sequence:
            self.chunk = 0
            self.batch += 1
            self.rnn_state = None
            if self.batch == plan.batches_per_epoch:
                self.batch = 0
                self.epoch_index += 1

    def progress(
        self, *, iterations_per_epoch: int, sequence_samples: int, average_updates: int | None
    ) -> Progress:
        position = {name: getattr(self, name) for name in RESUME_PROGRESS}
        return Progress(
            iteration=self.iteration,
            epoch=self.last_epoch,
            iterations_per_epoch=iterations_per_epoch,
            sequence_samples=sequence_samples,
            lr_halvings=self.lr_halvings,
            stale_validations=self.stale_validations,
            average_updates=average_updates,
            **position,
        )

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, device: torch.device) -> RunState:
        """The state a checkpoint recorded (it must hold the training state)."""
        checkpoint.require_training_state()
        progress = checkpoint.progress
        position = {name: getattr(progress, name) for name in RESUME_PROGRESS}
        return cls(
            iteration=progress.iteration,
            last_epoch=progress.epoch,
            rnn_state=checkpoint.rnn_state(device),
            history=checkpoint.history,
            last_checkpoint=checkpoint.path,
            last_checkpoint_iteration=progress.iteration,
            lr_halvings=progress.lr_halvings or 0,
            stale_validations=progress.stale_validations or 0,
            last_round=checkpoint.last_round,
            **position,
        )
