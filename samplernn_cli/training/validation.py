"""Validation during training, and the run's best model (``NAME_best_model.pt``): the
checkpoint of the best validation figure so far, replaced only by a better one.

Under torchrun, rank 0 evaluates and the other ranks learn its figure in an all-reduce.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from samplernn_cli.checkpoint import TrainingSnapshot, load_checkpoint, save_checkpoint
from samplernn_cli.errors import CheckpointError
from samplernn_cli.evaluation import evaluate_bits
from samplernn_cli.run.artifacts import format_seconds
from samplernn_cli.run.tensorboard_log import TensorBoardLog
from samplernn_cli.training.requests import StopRequest
from samplernn_cli.training.state import RunState, Session, averaged

logger = logging.getLogger("samplernn")


@dataclass(frozen=True)
class Figure:
    """A validation figure: the validation NLL in bits per sample, and whether it beats
    the best so far (this session's, and the best model's on disk)."""

    bits: float
    improved: bool


class Validation:
    """Measures the model on the validation data and keeps the run's best model."""

    def __init__(self, session: Session, *, board: TensorBoardLog, stop: StopRequest) -> None:
        """``session``: the model (its weight average, when the run keeps one, is what is
        measured and kept), the data and the plan, whose sequence and chunk lengths
        validation uses too; ``stop``: a signal cuts a validation short."""
        self.model, self.dataset = session.model, session.dataset
        self.split, self.plan = session.split, session.plan
        self.best_model = session.run.best_model
        self.average = session.average
        self.board = board
        self.stop = stop
        self.dist = session.dist
        self.is_main = session.is_main
        # The figure of NAME_best_model.pt when continuing a run that has one.
        self.best_on_disk: float | None = None

    def read_best_on_disk(self) -> None:
        """Take the figure of the best model a continued run left in its folder, if any (a
        file that cannot be read is replaced by the next best model)."""
        if not self.best_model.is_file():
            return
        try:
            best = load_checkpoint(self.best_model).stored_summary
            self.best_on_disk = best.get("last_val_loss")
        except CheckpointError as exc:
            logger.warning(f"{exc}; it will be replaced by the next best model")

    def measure(self, state: RunState) -> Figure | None:
        """Validation NLL of the model as it stands, recorded in ``state``'s history (None
        without validation data or when a signal cut it short).

        Distributed: called on every rank; rank 0 evaluates and the others learn its figure."""
        if not self.split.val:
            return None
        started = time.perf_counter()
        bits = None
        if self.is_main:
            self.model.eval()
            try:
                with averaged(self.average):
                    bits = evaluate_bits(
                        self.model,
                        self.dataset.codes,
                        self.split.val,
                        sequence_length=self.plan.sequence_length,
                        chunk_length=self.plan.chunk_length,
                        should_stop=lambda: self.stop.interrupted,
                    )
            finally:
                self.model.train()
        history = state.history
        best = history.best_val
        candidates = [v for v in (best[1] if best else None, self.best_on_disk) if v is not None]
        previous_best = min(candidates, default=None)
        improved = bits is not None and (previous_best is None or bits < previous_best)
        if self.dist is not None:
            done, figure, better = self.dist.agree(
                [1.0, bits, float(improved)] if bits is not None else [0.0, -math.inf, 0.0]
            )
            bits, improved = (figure if done else None), bool(better)
        if bits is None:
            return None
        history.validations.append((state.iteration, bits))
        if self.is_main:
            self.board.scalars(state.iteration, {"bits_per_sample/validation": bits})
            note = " (best so far)" if improved else f" (best {previous_best:.4f})"
            logger.info(
                f"validation at iteration {state.iteration}: {bits:.4f} bits per sample"
                f"{note} [{format_seconds(time.perf_counter() - started)}]"
            )
        return Figure(bits, improved)

    def save_best(self, snapshot: TrainingSnapshot, bits: float) -> None:
        """Write ``snapshot``, the model of the new best figure ``bits``, as the best model
        (rank 0 writes it)."""
        self.best_on_disk = bits
        if self.is_main:
            save_checkpoint(self.best_model, snapshot)
            logger.info(f"best model so far: {self.best_model}")
