"""The schedule of a session: the learning rate, and when the session stops.

**The learning-rate schedule** is the live learning rate (``NAME_args.json``) times what the
plateau schedule has made of it; the plateau schedule is what training does when validation
stops improving. On a few minutes of audio a SampleRNN starts memorising its training audio
within minutes, and from then on every step makes the held-out figure worse. With the
plateau schedule (``lr_schedule`` of :class:`samplernn_cli.config.TrainConfig`) and
``patience`` > 0, after ``patience`` validations in a row without a new best, training goes
back to the best model (its weights and Adam's state, kept in memory at every new best) and
continues with half the learning rate; after ``max_halvings`` halvings, the next such plateau
ends the run, with the best model as its final weights.

A session with a stop condition keeps the rate constant instead (``lr_schedule`` auto): on
audio that teaches the model slowly (sustained tones), validation pauses for a few
validations and then improves again, and halving the rate at such a pause stalls the run
for the rest of its budget; the weight average already smooths the steps as a falling rate
would, and the augmentations keep a short recording from being memorised
(``benchmarks/quality.py``; docs/how-it-works.md).

The counters live in :class:`samplernn_cli.training.state.RunState` and every checkpoint, so
a resumed run continues the schedule exactly. The best model a session has not seen itself
(it was found before a resume) is read back from ``NAME_best_model.pt``; under
DistributedDataParallel, where that file is only on rank 0's disk, only what every rank
kept in memory is used.

**Stopping** (:class:`Stopping`): the stop conditions (``--max-iterations``,
``--max-epochs``, ``--max-time``), the plateau schedule's end, a :class:`StopRequest` (a
signal, a caller), and under torchrun the agreement of every rank on it, once per iteration.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import LiveSettings, StopConditions, TrainConfig
from samplernn_cli.errors import CheckpointError
from samplernn_cli.training.distributed import Distributed
from samplernn_cli.training.requests import StopReason, StopRequest
from samplernn_cli.training.state import RunState, WeightAverage

logger = logging.getLogger("samplernn")

# A model's weights and its optimizer's state, as state dicts on the CPU.
Snapshot = tuple[dict[str, Any], dict[str, Any]]


def _to_cpu(value: Any) -> Any:
    """A copy of a (nested) state dict with every tensor on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def plateau_schedule(train: TrainConfig, stop: StopConditions) -> bool:
    """Whether a session follows the plateau schedule (or else keeps a constant rate)."""
    return train.lr_schedule == "plateau" or (train.lr_schedule == "auto" and not stop.bounded)


class PlateauSchedule:
    """Keeps the best model of a session and applies the schedule after each validation."""

    def __init__(
        self,
        train: TrainConfig,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        best_model: Path,
        shared: bool,
        report: bool,
        average: WeightAverage | None = None,
        acting: bool = True,
    ) -> None:
        """``best_model``: the run's best-model file; ``shared``: every rank of a distributed
        run calls the same methods at the same validations; ``report``: this process logs;
        ``average``: the run's weight average (training/state.py), if it keeps one: the
        best model is then the average, and it starts again from the best model's weights
        when they come back; ``acting``: the session follows the plateau schedule (see
        :func:`plateau_schedule`; otherwise it keeps a constant rate)."""
        self.patience = train.patience if acting else 0
        self.max_halvings = train.max_halvings
        self.model = model
        self.optimizer = optimizer
        self.best_model = best_model
        self.shared = shared
        self.report = report
        self.average = average
        self.best: Snapshot | None = None  # this session's best model
        self.stopped = False  # the schedule has ended the run

    def describe(self, rate: float, *, bounded: bool) -> str:
        """This session's schedule at learning rate ``rate``, in words, for its log;
        ``bounded``: the session has a stop condition."""
        if self.patience > 0:
            return (
                f"learning rate {rate:g}, halved after {self.patience} validations without a "
                f"new best; after {self.max_halvings} halvings the next such plateau ends the run"
            )
        until = "its stop condition" if bounded else "interrupted"
        return f"learning rate {rate:g}, constant: training until {until}"

    def keep_best(self) -> None:
        """Remember the model as it is now: it just set a new best validation figure."""
        if self.patience > 0:
            weights = self.model.state_dict() if self.average is None else self.average.weights()
            self.best = (_to_cpu(weights), _to_cpu(self.optimizer.state_dict()))

    def _best(self) -> Snapshot | None:
        if self.best is not None or self.shared:
            return self.best
        if not self.best_model.is_file():
            return None
        try:
            checkpoint = load_checkpoint(self.best_model)
        except CheckpointError as exc:
            logger.warning(f"cannot return to the best model: {exc}")
            return None
        if checkpoint.optimizer_state is None:
            return None
        return checkpoint.weights, checkpoint.optimizer_state

    def after_validation(self, state: RunState, *, improved: bool) -> bool:
        """Count a validation of the training loop; returns whether the model's weights were
        replaced by the best model's. The caller sets the learning rate afterwards (the live
        rate times ``state.lr_scale``)."""
        if self.patience == 0 or self.stopped:
            return False
        if improved:
            state.stale_validations = 0
            return False
        state.stale_validations += 1
        if state.stale_validations < self.patience:
            return False
        state.stale_validations = 0
        best = self._best()
        if best is not None:
            self.model.load_state_dict(best[0])
            self.optimizer.load_state_dict(best[1])
            if self.average is not None:
                self.average.restart()
        best_val = state.history.best_val
        if best is None:
            where = "the current weights (no best model to return to)"
        elif best_val is not None:
            where = f"the best model (iteration {best_val[0]}, {best_val[1]:.4f} bits)"
        else:
            where = "the best model"
        if state.lr_halvings >= self.max_halvings:
            self.stopped = True
            if self.report:
                logger.info(
                    f"no new best validation in {self.patience} validations after "
                    f"{state.lr_halvings} learning-rate halvings: ending the run with {where}"
                )
        else:
            state.lr_halvings += 1
            if self.report:
                logger.info(
                    f"no new best validation in {self.patience} validations: continuing from "
                    f"{where} with the learning rate halved (x{state.lr_scale:g})"
                )
        return best is not None


class LearningRateSchedule:
    """The optimizer's learning rate: the live setting times ``RunState.lr_scale``, which
    the plateau schedule halves."""

    def __init__(self, optimizer: torch.optim.Optimizer, plateau: PlateauSchedule) -> None:
        self.optimizer = optimizer
        self.plateau = plateau
        # The plateau schedule put the best model's weights back after the last validation
        # figure (which therefore no longer measures them).
        self.weights_replaced = False

    def apply(self, live_rate: float, state: RunState) -> None:
        """Set the rate: ``live_rate`` times what the schedule has made of it."""
        for group in self.optimizer.param_groups:
            group["lr"] = live_rate * state.lr_scale

    @property
    def rate(self) -> float:
        """The rate in effect."""
        return self.optimizer.param_groups[0]["lr"]

    def after_validation(self, state: RunState, *, improved: bool, live_rate: float) -> None:
        """Apply the plateau schedule after a validation of the training loop."""
        self.weights_replaced = self.plateau.after_validation(state, improved=improved)
        self.apply(live_rate, state)


# A stop reason as a number for the ranks' all-reduce (their maximum wins): 0 is "go on".
AGREED_REASONS = (None, *StopReason)
# The live settings that travel with the stop reason, from rank 0 (the one that reads
# NAME_args.json) to the others.
SHARED_LIVE_SETTINGS = ("learning_rate", "val_every", "generate_every", "checkpoint_every")


class Stopping:
    """Decides, before every iteration, whether the session stops, the same way on every
    rank."""

    def __init__(
        self,
        conditions: StopConditions,
        request: StopRequest,
        dist: Distributed | None,
        *,
        started: float,
    ) -> None:
        """``started``: ``time.monotonic()`` when the session's loop began (``--max-time``
        counts from it)."""
        self.conditions = conditions
        self.request = request
        self.dist = dist
        self.started = started

    def reason(self, state: RunState, *, plateau_ended: bool) -> StopReason | str | None:
        """Why this process would stop now (None: go on)."""
        conditions = self.conditions
        if self.request.reason is not None:
            return self.request.reason
        if plateau_ended:
            return StopReason.PLATEAU
        if conditions.max_iterations is not None and state.iteration >= conditions.max_iterations:
            return StopReason.MAX_ITERATIONS
        if conditions.max_epochs is not None and state.epoch_index >= conditions.max_epochs:
            return StopReason.MAX_EPOCHS
        if (
            conditions.max_seconds is not None
            and time.monotonic() - self.started >= conditions.max_seconds
        ):
            return StopReason.MAX_TIME
        return None

    def agree(
        self, state: RunState, live: LiveSettings, *, plateau_ended: bool
    ) -> tuple[StopReason | str | None, LiveSettings]:
        """Why to stop now (None: go on) and the live settings in effect, the same on every
        rank: a stop on any rank (a signal, say) stops all; the live settings are rank 0's
        (only rank 0 reads NAME_args.json). ``live``: this process's settings."""
        reason = self.reason(state, plateau_ended=plateau_ended)
        if self.dist is None:
            return reason, live
        values = [float(AGREED_REASONS.index(reason))]
        values += [
            float(getattr(live, f)) if self.dist.is_main else -1.0 for f in SHARED_LIVE_SETTINGS
        ]
        agreed = self.dist.agree(values)
        reason = AGREED_REASONS[int(agreed[0])]
        if reason in (StopReason.SIGINT, StopReason.SIGTERM) and not self.request.requested:
            self.request.request(reason)
        settings = {
            f: (v if f == "learning_rate" else int(v))
            for f, v in zip(SHARED_LIVE_SETTINGS, agreed[1:], strict=True)
        }
        return reason, replace(live, **settings)

    def interrupted(self) -> bool:
        """Whether a signal stopped the session, on any rank (it may reach some ranks only)."""
        interrupted = self.request.interrupted
        if self.dist is not None:
            interrupted = bool(self.dist.agree([float(interrupted)])[0])
        return interrupted
