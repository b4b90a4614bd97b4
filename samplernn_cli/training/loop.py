"""The training loop of one session of a run (new or resumed): truncated BPTT over long
sequences, with validation, checkpoints and generated clips on their schedules.

The loop reports through a ``progress`` callback (one :class:`TrainStatus` per iteration) and
the ``samplernn`` logger; it never prints, and it never handles signals: it polls a
:class:`StopRequest` after every iteration and ends with a checkpoint when one is made.

:class:`Trainer` sets the session up and restores it (:mod:`.startup`), hands the
:class:`~samplernn_cli.training.state.Session` to its parts and runs them in order:
stopping and the learning-rate schedule (:mod:`.schedule`), the step (:mod:`.step`),
validation and the best model (:mod:`.validation`), reporting (:mod:`.reporting`),
generation rounds (:mod:`.rounds`) and checkpoints (:mod:`samplernn_cli.run.saving`).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import torch

from samplernn_cli.checkpoint import Checkpoint, provenance
from samplernn_cli.data.cache import Dataset
from samplernn_cli.device import long_lived_objects_frozen
from samplernn_cli.run.live import LiveSettingsFile
from samplernn_cli.run.saving import (
    CheckpointWriter,
    training_level_dbfs,
    training_reference,
)
from samplernn_cli.run.tensorboard_log import check_live_settings
from samplernn_cli.training.distributed import Distributed
from samplernn_cli.training.reporting import Reporter
from samplernn_cli.training.requests import (
    ProgressCallback,
    StopReason,
    StopRequest,
    TrainRequest,
    TrainResult,
)
from samplernn_cli.training.rounds import GenerationRounds
from samplernn_cli.training.schedule import (
    LearningRateSchedule,
    PlateauSchedule,
    Stopping,
    plateau_schedule,
)
from samplernn_cli.training.startup import restore_run, set_up, start_weights
from samplernn_cli.training.state import RunState
from samplernn_cli.training.step import TrainingStep
from samplernn_cli.training.validation import Figure, Validation


class Trainer:
    """One training session of a run: the model, its optimizer, the data plan and the run
    state, the parts that act on them, and the loop that runs the parts in order."""

    def __init__(
        self,
        request: TrainRequest,
        *,
        device: torch.device,
        dataset: Dataset,
        progress: ProgressCallback | None,
        stop: StopRequest,
        dist: Distributed | None = None,
    ) -> None:
        """``request`` holds the run's settings (for a resumed run, the checkpoint's with
        this session's run folder, live settings and stop conditions)."""
        self.request = request
        self.run = request.run
        self.device = device
        self.dataset = dataset
        self.stop = stop
        self.dist = dist
        session, ddp = set_up(request, dataset, device, dist)
        self.session = session
        self.is_main = session.is_main
        self.model, self.split, self.plan = session.model, session.split, session.plan
        self.rows, self.optimizer, self.average = session.rows, session.optimizer, session.average
        self.live = LiveSettingsFile(self.run.args_json, request.live, check_live_settings)
        self.state = RunState()
        # The parts the loop runs: the step, validation, the rounds and the checkpoint
        # writer are handed the session; the reporter and the plateau schedule (a unit
        # tested on its own) only the few things they use.
        self.reporter = Reporter(
            self.run, progress, request.stop, self.plan.iterations_per_epoch,
            is_main=self.is_main, on_cpu=device.type == "cpu",
        )  # fmt: skip
        board = self.reporter.board
        self.step = TrainingStep(session, ddp=ddp)
        self.plateau = PlateauSchedule(
            request.train, self.model, self.optimizer, best_model=self.run.best_model,
            shared=dist is not None, report=self.is_main, average=self.average,
            acting=plateau_schedule(request.train, request.stop),
        )  # fmt: skip
        self.schedule = LearningRateSchedule(self.optimizer, self.plateau)
        self.validation = Validation(session, board=board, stop=stop)
        # What checkpoints record and the rounds' traps and distance compare clips with
        # (rank 0 writes both).
        level = training_level_dbfs(dataset, self.model.quantizer)
        reference = training_reference(dataset, self.split, self.model.quantizer) \
            if self.is_main else None  # fmt: skip
        self.rounds = GenerationRounds(
            session, board=board, should_stop=lambda: stop.interrupted, level_dbfs=level,
            reference=reference,
        )  # fmt: skip
        self.writer = CheckpointWriter(
            session, live=self.live, board=board, level_dbfs=level, reference=reference
        )

    def restore(self, checkpoint: Checkpoint, *, own_folder: bool) -> None:
        """Take the weights, optimizer, RNG and run state from a checkpoint of this run, and
        the figure of the run's best model a new one must beat. ``own_folder``: the session
        continues in the checkpoint's folder (where retention keeps it)."""
        self.state = restore_run(
            checkpoint, self.model, self.optimizer, average=self.average, device=self.device,
            iterations_per_epoch=self.plan.iterations_per_epoch,
            rows=None if self.dist is None else self.rows,
        )  # fmt: skip
        self.schedule.apply(self.live.current.learning_rate, self.state)
        self.writer.parent = checkpoint.parent
        if own_folder:
            self.writer.resumed_from = checkpoint.path
        if self.is_main:
            self.validation.read_best_on_disk()

    def start_from(self, parent: Checkpoint, *, optimizer: bool = False) -> None:
        """Fine-tuning: take the weights (and with ``optimizer`` Adam's state) of another
        run's checkpoint or export; everything else starts as in a new run."""
        start_weights(parent, self.model, self.optimizer if optimizer else None, self.average)
        self.schedule.apply(self.live.current.learning_rate, self.state)
        self.writer.parent = provenance(parent)

    def fit(self) -> TrainResult:
        """Train until a stop condition or a stop request; always leaves a checkpoint of the
        last completed iteration."""
        state, first = self.state, self.state.iteration
        board = self.reporter.board
        with (
            self.stop.watching(),
            long_lived_objects_frozen(),
            contextlib.closing(self.reporter.loss_log),
            contextlib.closing(board),
            self.writer.naming_newest(state),
        ):
            if self.is_main:
                board.follow(self.live.current.tensorboard, first)
            stopping = Stopping(self.request.stop, self.stop, self.dist, started=time.monotonic())
            stopped_by = self._loop(stopping, first)
            # Finish: a final validation figure (unless interrupted) and a final checkpoint.
            interrupted = stopping.interrupted()
            last_val = state.history.last_val
            validated = (
                not interrupted
                and state.iteration > first
                and (
                    last_val is None
                    or last_val[0] != state.iteration
                    or self.schedule.weights_replaced
                )
            )
            if validated:
                self._validate()
            # The last checkpoint holds the final validation figure too (rewritten when it
            # was written at this iteration, before the figure existed).
            if state.iteration > 0 and (
                validated or state.last_checkpoint_iteration != state.iteration
            ):
                self.writer.write(state)
        return _result(state, self.run.path, stopped_by)

    def _validate(self) -> Figure | None:
        """A validation figure (None: none), and the best model when it improved."""
        figure = self.validation.measure(self.state)
        if figure is not None and figure.improved:
            self.plateau.keep_best()
            self.validation.save_best(self.writer.snapshot(self.state), figure.bits)
        return figure

    def _loop(self, stopping: Stopping, first: int) -> StopReason | str:
        """Iterate until a stop condition or request; returns why it stopped."""
        state, plan, live_file = self.state, self.plan, self.live
        sequence_batch: torch.Tensor | None = None
        batch_key: tuple[int, int] | None = None
        world = 1 if self.dist is None else self.dist.world_size
        self.model.train()
        while True:
            stopped_by, live = stopping.agree(
                state, live_file.current, plateau_ended=self.plateau.stopped
            )
            if stopped_by is not None:
                return stopped_by
            if self.dist is not None:
                self.schedule.apply(live.learning_rate, state)
            if batch_key != (state.epoch_index, state.batch):
                batch_key = (state.epoch_index, state.batch)
                sequence_batch = plan.batch(*batch_key, self.rows)
            assert sequence_batch is not None
            window = plan.window(sequence_batch, state.chunk)
            started = time.perf_counter()
            bits = self.step.take(window, state)
            step_seconds = time.perf_counter() - started
            samples_per_s = world * window.shape[0] * plan.chunk_length / step_seconds
            state.advance(plan)
            state.training_seconds += step_seconds
            state.history.append(bits, state.last_epoch, state.training_seconds, samples_per_s)
            self.step.check_divergence(state)
            figure = self._validate() if state.iteration % live.val_every == 0 else None
            if figure is not None:
                self.schedule.after_validation(
                    state, improved=figure.improved, live_rate=live_file.current.learning_rate
                )
            self.reporter.iteration(
                state, bits, None if figure is None else figure.bits, samples_per_s,
                learning_rate=self.schedule.rate, grad_norm=self.step.grad_norm,
                started=stopping.started, first=first, step_seconds=step_seconds,
            )  # fmt: skip
            if (
                self.is_main
                and state.iteration % live.generate_every == 0
                and not self.stop.requested
            ):
                self.rounds.generate(state, live_file.current)
            if state.iteration % live.checkpoint_every == 0:
                self.writer.write(state)
            if self.is_main and (changed := live_file.poll()) is not None:
                self.schedule.apply(changed.learning_rate, state)
                self.reporter.board.follow(changed.tensorboard, state.iteration)


def _result(state: RunState, run_dir: Path, stopped_by: StopReason | str) -> TrainResult:
    """How a session that ``stopped_by`` a reason ended, as ``state`` says."""
    last_val = state.history.last_val
    losses = state.history.losses
    return TrainResult(
        run_dir=run_dir,
        iteration=state.iteration,
        epoch=state.last_epoch,
        checkpoint=state.last_checkpoint,
        stopped_by=stopped_by,
        last_loss=losses[-1] if losses else None,
        last_val_loss=None if last_val is None else last_val[1],
    )
