"""What a session works with (:class:`Session`: its settings, the model, the data and the
optimizer, built once at start-up), and what changes as a run trains: its place in the data
plan, the RNN state carried between chunks and the loss history (:class:`RunState`), and the
moving average of the weights (:class:`WeightAverage`); those two are saved in every
checkpoint and restored on resume.

The average (TrainConfig.average_decay): the weights after each step move by the step's
noise as much as by what the step learned; their average over the last thousand or so steps
scores better on held-out audio than any of them (Polyak averaging). Training keeps updating
the weights as before; validation, the generated clips, the best model and every
checkpoint's ``model`` use the average, and a checkpoint keeps the weights training goes on
from as ``training_weights``. ``torch.optim.swa_utils.AveragedModel`` does the same with a
second copy of the whole module; this keeps only the parameters' averages (no buffers, no
second module to move between devices), updates them in one fused ``_foreach_lerp_`` per
step, and swaps them into the model for validation, so exact resume needs nothing beyond two
entries of the checkpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from samplernn_cli.checkpoint import RESUME_PROGRESS, Checkpoint, Progress
from samplernn_cli.data.cache import Dataset
from samplernn_cli.data.plan import SequencePlan
from samplernn_cli.data.split import DataSplit
from samplernn_cli.history import LossHistory
from samplernn_cli.model import ModelState, SampleRNN
from samplernn_cli.run.folder import RunFolder
from samplernn_cli.training.distributed import Distributed
from samplernn_cli.training.requests import TrainRequest


@dataclass(frozen=True)
class Session:
    """What a session trains, on what, and with what: built once by :func:`set_up` and
    handed whole to the parts of the loop (the step, validation, generation rounds and the
    checkpoint writer), which take from it what they act on."""

    request: TrainRequest  # the run's settings (a resumed run's: its checkpoint's)
    device: torch.device
    dataset: Dataset
    dist: Distributed | None  # this process's place in a torchrun job, None in one process
    model: SampleRNN
    split: DataSplit
    plan: SequencePlan  # the training parts, and their copies at other speeds
    rows: slice  # this process's rows of every batch (all of them in a single process)
    optimizer: torch.optim.Optimizer
    average: WeightAverage | None  # of the weights (TrainConfig.average_decay), if kept

    @property
    def run(self) -> RunFolder:
        return self.request.run

    @property
    def is_main(self) -> bool:
        """This process writes the run folder (the only process, or rank 0)."""
        return self.dist is None or self.dist.is_main


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


class WeightAverage:
    """The moving average of a model's parameters, updated after every optimizer step.

    Early on the average would remember the random initial weights for thousands of steps,
    so step ``n`` (counting from 1) uses the decay ``min(decay, (1 + n) / (10 + n))``: the
    average follows the weights closely at first and settles at ``decay`` after a few
    hundred steps.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.model = model
        self.decay = decay
        self.names = [name for name, _ in model.named_parameters()]
        self.average = [p.detach().clone() for p in model.parameters()]
        self.updates = 0

    def update(self) -> None:
        """Move the average towards the model's current parameters (after a step)."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            params = [p.detach() for p in self.model.parameters()]
            torch._foreach_lerp_(self.average, params, 1.0 - decay)

    def restart(self) -> None:
        """Start the average again from the model's current parameters (after they were
        replaced: the plateau schedule went back to the best model)."""
        with torch.no_grad():
            torch._foreach_copy_(self.average, [p.detach() for p in self.model.parameters()])

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The model with the averaged parameters inside the block, its own afterwards."""
        params = [p.detach() for p in self.model.parameters()]
        own = [p.clone() for p in params]
        with torch.no_grad():
            torch._foreach_copy_(params, self.average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(params, own)

    def weights(self) -> dict[str, torch.Tensor]:
        """The model's state dict with the averaged parameters (clones)."""
        state = self.model.state_dict()
        for name, value in zip(self.names, self.average, strict=True):
            state[name] = value.clone()
        return state

    def load(self, weights: dict[str, torch.Tensor], updates: int) -> None:
        """Take the average from a checkpoint's ``model`` weights and its update count."""
        with torch.no_grad():
            for name, value in zip(self.names, self.average, strict=True):
                value.copy_(weights[name])
        self.updates = updates


def averaged(average: WeightAverage | None) -> contextlib.AbstractContextManager[None]:
    """The model with the run's averaged weights inside the block (if the run averages them)."""
    return contextlib.nullcontext() if average is None else average.applied()
