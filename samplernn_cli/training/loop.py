"""The training loop of one session of a run (new or resumed): truncated BPTT over long
sequences, with validation, checkpoints and generated clips on their schedules.

The loop reports through a ``progress`` callback (one :class:`TrainStatus` per iteration) and
the ``samplernn`` logger; it never prints, and it never handles signals: it polls a
:class:`StopRequest` after every iteration and ends with a checkpoint when one is made.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from samplernn_cli.checkpoint import (
    Checkpoint,
    TrainingSnapshot,
    provenance,
    save_checkpoint,
)
from samplernn_cli.config import LiveSettings
from samplernn_cli.data.augment import jitter
from samplernn_cli.data.cache import Dataset
from samplernn_cli.data.plan import training_plan
from samplernn_cli.data.split import DataSplit, split_dataset
from samplernn_cli.device import long_lived_objects_frozen
from samplernn_cli.errors import CheckpointError, OutputError, TrainingError
from samplernn_cli.evaluation import evaluate_bits
from samplernn_cli.model import SampleRNN, detach_state
from samplernn_cli.seeding import mix_seed
from samplernn_cli.training.artifacts import (
    GeneratedClips,
    format_seconds,
    generate_clips,
    training_piece,
    write_round_picture,
)
from samplernn_cli.training.averaging import WeightAverage
from samplernn_cli.training.checkpoints import input_records, prune
from samplernn_cli.training.distributed import Distributed
from samplernn_cli.training.live import LiveSettingsFile
from samplernn_cli.training.plateau import PlateauSchedule
from samplernn_cli.training.requests import (
    ProgressCallback,
    StopRequest,
    TrainRequest,
    TrainResult,
    TrainStatus,
)
from samplernn_cli.training.runfolder import LossLog
from samplernn_cli.training.state import RunState
from samplernn_cli.training.step import (
    distributed_forward_backward,
    forward_backward,
    make_optimizer,
)
from samplernn_cli.training.tensorboard_log import TensorBoardLog, check_live_settings

logger = logging.getLogger("samplernn")

# Consecutive iterations with a NaN or infinite loss or gradient before training gives up.
MAX_BAD_STEPS = 20
# Why a session stops, in the order the ranks of a distributed run agree on it.
STOP_REASONS = (None, "max_iterations", "max_epochs", "max_time", "SIGINT", "SIGTERM", "plateau")


class Trainer:
    """One training session of a run: the model, its optimizer, the data plan and the run
    state, and the loop that advances them."""

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
        self.progress = progress
        self.stop = stop
        self.dist = dist
        self.is_main = dist is None or dist.is_main
        model_config, train_config = request.model, request.train
        self.sample_rate = dataset.sample_rate
        self.chunk_length = train_config.chunk_length(model_config)

        torch.manual_seed(train_config.seed)
        self.model = SampleRNN(model_config).to(device)
        self.split: DataSplit = split_dataset(
            [f.length for f in dataset.files],
            [f.source.name for f in dataset.files],
            val_fraction=train_config.val_fraction,
            val_split=train_config.val_split,
            chunk_length=self.chunk_length,
            sample_rate=self.sample_rate,
            seed=train_config.seed,
        )
        self.plan = training_plan(  # the training parts, and their copies at other speeds
            dataset.codes,
            self.split.train,
            train_config,
            model_config,
            self.model.quantizer,
            self.sample_rate,
        )
        # This process's rows of every batch (all of them in a single process).
        self.rows = slice(None) if dist is None else dist.rows(train_config.batch_size)
        self.ddp: torch.nn.Module | None = None
        if dist is not None:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(
                self.model,
                device_ids=[device.index] if device.type == "cuda" else None,
                # A learned initial state is used only at the first chunk of a sequence.
                find_unused_parameters=model_config.learn_h0,
            )
        self.optimizer = make_optimizer(self.model, request.live.learning_rate)
        self.live = LiveSettingsFile(self.run.args_json, request.live, check_live_settings)
        self.loss_log = LossLog(self.run.losses_csv)
        self.board = TensorBoardLog(self.run.tensorboard)  # rank 0 opens it
        self.grad_norm = math.nan  # of the last step, before clipping (NaN: none)
        self.state = RunState()
        # Validation figure of NAME_best_model.pt when continuing a run that has one: it is
        # only replaced by a better model.
        self.best_on_disk: float | None = None
        # The checkpoint this session continues from, when it is in the run folder: never
        # deleted by retention while the session runs.
        self.resumed_from: Path | None = None
        # Where the starting weights came from (checkpoint.provenance), kept by every
        # checkpoint of the run; None: trained from scratch.
        self.parent: dict[str, Any] | None = None
        decay = request.train.average_decay
        self.average = WeightAverage(self.model, decay) if decay else None
        self.plateau = PlateauSchedule(
            request.train, self.model, self.optimizer, best_model=self.run.best_model,
            shared=dist is not None, report=self.is_main, average=self.average,
        )  # fmt: skip
        self.weights_replaced = False  # after the last validation figure (the schedule)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Take the weights, optimizer, RNG and run state from a checkpoint of this run."""
        per_epoch = checkpoint.progress.iterations_per_epoch
        if per_epoch is not None and per_epoch != self.plan.iterations_per_epoch:
            raise CheckpointError(
                f"{checkpoint.path}: the data plan differs ({per_epoch} iterations per epoch "
                f"then, {self.plan.iterations_per_epoch} now); is this the same input?"
            )
        try:
            self.model.load_state_dict(checkpoint.training_weights)
            if self.average is not None:
                self.average.load(checkpoint.weights, checkpoint.progress.average_updates or 0)
            self.optimizer.load_state_dict(checkpoint.optimizer_state)
            self.state = RunState.from_checkpoint(checkpoint, self.device)
            if self.dist is not None and self.state.rnn_state is not None:
                self.state.rnn_state = [
                    None if s is None else tuple(t[:, self.rows].contiguous() for t in s)
                    for s in self.state.rnn_state
                ]
            torch.set_rng_state(checkpoint.rng["torch"])
            if self.device.type == "cuda" and "cuda" in checkpoint.rng:
                torch.cuda.set_rng_state(checkpoint.rng["cuda"], self.device)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
            raise CheckpointError(
                f"{checkpoint.path} cannot be resumed: its training state is incomplete or "
                f"damaged ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
        self._set_learning_rate(self.live.current.learning_rate)
        self.parent = checkpoint.parent

    def start_from(self, parent: Checkpoint, *, optimizer: bool = False) -> None:
        """Fine-tuning: take the weights (and with ``optimizer`` Adam's state) of another
        run's checkpoint or export; everything else starts as in a new run."""
        if optimizer and parent.optimizer_state is None:
            raise CheckpointError(
                f"{parent.path} is an exported model without optimizer state; fine-tune it "
                "with a fresh optimizer (drop --init-optimizer) or use its training checkpoint"
            )
        try:
            # Half-precision weights of an export are widened to float32 as they are copied.
            self.model.load_state_dict(parent.weights)
            if self.average is not None:
                self.average.restart()
            if optimizer:
                self.optimizer.load_state_dict(parent.optimizer_state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{parent.path} cannot initialise this model ({first})") from None
        self._set_learning_rate(self.live.current.learning_rate)
        self.parent = provenance(parent)

    # ----------------------------------------------------------------- checkpoints

    def training_snapshot(self) -> TrainingSnapshot:
        """What a checkpoint of this moment records (on every rank: they all take part in
        gathering the RNN state)."""
        state = self.state
        rnn_state = None
        if state.rnn_state is not None:  # (layers, B, H) tensors; every rank's rows, in order
            rnn_state = [
                None if s is None else tuple(self._all_rows(t).cpu() for t in s)
                for s in state.rnn_state
            ]
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        average = self.average
        return TrainingSnapshot(
            run_name=self.run.name,
            model_config=self.request.model,
            audio=self.request.audio,
            train=self.request.train,
            live=self.live.current,
            sample_rate=self.sample_rate,
            inputs=input_records(self.dataset, self.split),
            codes_sha256=self.dataset.fingerprint,
            weights=self.model.state_dict() if average is None else average.weights(),
            training_weights=None if average is None else self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            progress=state.progress(
                iterations_per_epoch=self.plan.iterations_per_epoch,
                sequence_samples=self.plan.sequence_length,
                average_updates=None if average is None else average.updates,
            ),
            rnn_state=rnn_state,
            rng=rng,
            history=state.history,
            device=str(self.device),
            parent=self.parent,
        )

    def _all_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor if self.dist is None else self.dist.gather_rows(tensor, dim=1)

    def write_checkpoint(self) -> None:
        """Write a checkpoint (on every rank: they all take part in gathering the RNN state;
        rank 0 writes it)."""
        snapshot = self.training_snapshot()
        self.state.last_checkpoint_iteration = self.state.iteration
        if not self.is_main:
            return
        self.board.flush()  # the events up to the checkpoint survive a kill after it
        path = self.run.checkpoint(self.state.last_epoch, self.state.iteration)
        save_checkpoint(path, snapshot)
        self.state.last_checkpoint = path
        logger.info(f"checkpoint: {path}")
        keep = self.live.current.keep_checkpoints
        if keep is not None:  # only now that the new one is complete
            protected = [path] if self.resumed_from is None else [path, self.resumed_from]
            for old in prune(self.run, keep, iteration=self.state.iteration, protected=protected):
                logger.info(f"deleted {old.name} (keeping the newest {keep} checkpoints)")

    # ----------------------------------------------------------------- evaluation

    def validate(self, *, schedule: bool = False) -> float | None:
        """Validation NLL in bits per sample (None without validation data or if stopped),
        and the best model written when it improved; with ``schedule`` (the loop's own
        validations), then the plateau schedule's step.

        Distributed: called on every rank; rank 0 evaluates and the others learn its figure
        (and take part in saving the best model)."""
        if not self.split.val:
            return None
        started = time.perf_counter()
        bits = None
        if self.is_main:
            self.model.eval()
            try:
                with self.averaged():
                    bits = evaluate_bits(
                        self.model,
                        self.dataset.codes,
                        self.split.val,
                        sequence_length=self.plan.sequence_length,
                        chunk_length=self.chunk_length,
                        should_stop=lambda: self.stop.interrupted,
                    )
            finally:
                self.model.train()
        history = self.state.history
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
        history.validations.append((self.state.iteration, bits))
        if self.is_main:
            self.board.scalars(self.state.iteration, {"bits_per_sample/validation": bits})
            note = " (best so far)" if improved else f" (best {previous_best:.4f})"
            logger.info(
                f"validation at iteration {self.state.iteration}: {bits:.4f} bits per sample"
                f"{note} [{format_seconds(time.perf_counter() - started)}]"
            )
        self.weights_replaced = False
        if improved:
            self.plateau.keep_best()
            snapshot = self.training_snapshot()
            self.best_on_disk = bits
            if self.is_main:
                save_checkpoint(self.run.best_model, snapshot)
                logger.info(f"best model so far: {self.run.best_model}")
        if schedule:
            self._after_validation(improved)
        return bits

    def averaged(self) -> contextlib.AbstractContextManager[None]:
        """The model with the run's averaged weights inside the block (if it averages)."""
        return contextlib.nullcontext() if self.average is None else self.average.applied()

    def _set_learning_rate(self, live_rate: float) -> None:
        """The live learning rate, times what the plateau schedule has made of it."""
        for group in self.optimizer.param_groups:
            group["lr"] = live_rate * self.state.lr_scale

    def _after_validation(self, improved: bool) -> None:
        """Apply the plateau schedule after a validation in the loop."""
        if self.plateau.after_validation(self.state, improved=improved):
            self.weights_replaced = True
        self._set_learning_rate(self.live.current.learning_rate)

    # ----------------------------------------------------------------- the loop

    def _stop_reason(self, session_started: float) -> str | None:
        conditions, state = self.request.stop, self.state
        if self.stop.reason is not None:
            return self.stop.reason
        if self.plateau.stopped:
            return "plateau"
        if conditions.max_iterations is not None and state.iteration >= conditions.max_iterations:
            return "max_iterations"
        if conditions.max_epochs is not None and state.epoch_index >= conditions.max_epochs:
            return "max_epochs"
        if (
            conditions.max_seconds is not None
            and time.monotonic() - session_started >= conditions.max_seconds
        ):
            return "max_time"
        return None

    def _step(self, window: torch.Tensor) -> float:
        """One optimizer step on one (CPU) chunk, with input noise if the run has it; returns
        the loss in bits per sample (may be NaN)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.grad_norm = math.nan
        train, state = self.request.train, self.state
        inputs = None if train.input_noise == 0 else jitter(
            window, train.input_noise, self.model.sample_tier.q_levels, train.seed,
            state.iteration, self.rows, train.batch_size).to(self.device)  # fmt: skip
        window = window.to(self.device)
        if self.ddp is None:
            bits, new_state = forward_backward(self.model, window, state.rnn_state, inputs=inputs)
        else:
            assert self.dist is not None
            bits, new_state = distributed_forward_backward(
                self.ddp, self.dist, window, state.rnn_state, self.model.history, inputs
            )
        ok = math.isfinite(bits)
        if ok:
            norm = torch.nn.utils.clip_grad_norm_(
                self.model.parameters(), self.request.train.grad_clip
            )
            self.grad_norm = float(norm)
            ok = math.isfinite(self.grad_norm)
        if ok:
            self.optimizer.step()
            if self.average is not None:
                self.average.update()
            self.state.rnn_state = detach_state(new_state)
            self.state.bad_steps = 0
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.state.rnn_state = None  # the state may hold NaNs: restart these sequences
            self.state.bad_steps += 1
            what = "loss" if not math.isfinite(bits) else "gradient"
            logger.warning(
                f"iteration {self.state.iteration + 1}: non-finite {what}; step skipped "
                f"({self.state.bad_steps} in a row)"
            )
        return bits

    def _agree(self, session_started: float) -> tuple[str | None, LiveSettings]:
        """Why to stop now (None: go on) and the live settings in effect, the same on every
        rank: a stop on any rank (a signal, say) stops all; the live settings are rank 0's
        (only rank 0 reads NAME_args.json)."""
        reason = self._stop_reason(session_started)
        live = self.live.current
        if self.dist is None:
            return reason, live
        values = [float(STOP_REASONS.index(reason))]
        fields = ["learning_rate", "val_every", "generate_every", "checkpoint_every"]
        values += [float(getattr(live, f)) if self.is_main else -1.0 for f in fields]
        agreed = self.dist.agree(values)
        reason = STOP_REASONS[int(agreed[0])]
        if reason in ("SIGINT", "SIGTERM") and not self.stop.requested:
            self.stop.request(reason)
        settings = {
            f: (v if f == "learning_rate" else int(v))
            for f, v in zip(fields, agreed[1:], strict=True)
        }
        return reason, replace(live, **settings)

    def _advance(self) -> None:
        state, plan = self.state, self.plan
        state.last_epoch = state.epoch_index + 1
        state.iteration += 1
        state.chunk += 1
        if state.chunk == plan.chunks_per_sequence:
            state.chunk = 0
            state.batch += 1
            state.rnn_state = None
            if state.batch == plan.batches_per_epoch:
                state.batch = 0
                state.epoch_index += 1

    def _show_round(self, clips: GeneratedClips) -> None:
        """The picture of a generation round, and its clips in TensorBoard (rank 0)."""
        truth = training_piece(self.dataset, self.split, self.model.quantizer, clips.audio.shape[1])
        history = self.state.history
        write_round_picture(self.run, clips, truth, sample_rate=self.sample_rate, history=history)
        self.board.clips(clips, truth, self.sample_rate)

    def _report(self, bits: float, samples_per_s: float, started: float, first: int) -> None:
        if self.progress is None or not self.is_main:
            return
        last_val = self.state.history.last_val
        stop, per_epoch, now = self.request.stop, self.plan.iterations_per_epoch, time.monotonic()
        self.progress(
            TrainStatus(
                iteration=self.state.iteration,
                epoch=self.state.last_epoch,
                loss=bits,
                val_loss=None if last_val is None else last_val[1],
                samples_per_s=samples_per_s,
                start_iteration=first,
                total_iterations=stop.total_iterations(per_epoch),
                eta_seconds=stop.eta(
                    self.state.iteration, per_epoch, now - started, self.state.iteration - first
                ),
            )
        )

    def fit(self) -> TrainResult:
        """Train until a stop condition or a stop request; always leaves a checkpoint of the
        last completed iteration."""
        start_iteration = self.state.iteration
        with (
            self.stop.watching(),
            long_lived_objects_frozen(),
            contextlib.closing(self.loss_log),
            contextlib.closing(self.board),
            self._naming_newest(),
        ):
            if self.is_main:
                self.board.follow(self.live.current.tensorboard, start_iteration)
            stopped_by = self._loop(start_iteration)
            # Finish: a final validation figure (unless interrupted) and a final checkpoint.
            state = self.state
            interrupted = self.stop.interrupted
            if self.dist is not None:  # a signal may have reached some ranks only
                interrupted = bool(self.dist.agree([float(interrupted)])[0])
            last_val = state.history.last_val
            validated = (
                not interrupted
                and state.iteration > start_iteration
                and (last_val is None or last_val[0] != state.iteration or self.weights_replaced)
            )
            if validated:
                self.validate()
            # The last checkpoint holds the final validation figure too (rewritten when it
            # was written at this iteration, before the figure existed).
            if state.iteration > 0 and (
                validated or state.last_checkpoint_iteration != state.iteration
            ):
                self.write_checkpoint()
        last_val = self.state.history.last_val
        losses = self.state.history.losses
        return TrainResult(
            run_dir=self.run.path,
            iteration=self.state.iteration,
            epoch=self.state.last_epoch,
            checkpoint=self.state.last_checkpoint,
            stopped_by=stopped_by,
            last_loss=losses[-1] if losses else None,
            last_val_loss=None if last_val is None else last_val[1],
        )

    @contextlib.contextmanager
    def _naming_newest(self) -> Iterator[None]:
        """A file that cannot be written (a full disk, say) stops the run; its message names
        the newest complete checkpoint, the one to continue from."""
        try:
            yield
        except OutputError as exc:
            newest = self.state.last_checkpoint
            where = (
                f"the newest complete checkpoint is {newest}"
                if newest is not None and newest.is_file()
                else "no checkpoint of this run was written yet"
            )
            raise OutputError(f"{exc}; {where}") from None

    def _loop(self, start_iteration: int) -> str:
        """Iterate until a stop condition or request; returns why it stopped."""
        state = self.state
        session_started = time.monotonic()
        sequence_batch: torch.Tensor | None = None
        batch_key: tuple[int, int] | None = None
        world = 1 if self.dist is None else self.dist.world_size
        self.model.train()
        while True:
            stopped_by, live = self._agree(session_started)
            if stopped_by is not None:
                return stopped_by
            if self.dist is not None:
                self._set_learning_rate(live.learning_rate)
            if batch_key != (state.epoch_index, state.batch):
                batch_key = (state.epoch_index, state.batch)
                sequence_batch = self.plan.batch(*batch_key, self.rows)
            assert sequence_batch is not None
            window = self.plan.window(sequence_batch, state.chunk)
            started = time.perf_counter()
            bits = self._step(window)
            step_seconds = time.perf_counter() - started
            samples_per_s = world * window.shape[0] * self.chunk_length / step_seconds
            self._advance()
            state.training_seconds += step_seconds
            state.history.append(bits, state.last_epoch, state.training_seconds, samples_per_s)
            if state.bad_steps >= MAX_BAD_STEPS:
                raise TrainingError(
                    f"training diverged: {MAX_BAD_STEPS} iterations in a row had a non-finite "
                    f"loss or gradient (up to iteration {state.iteration}); the last good "
                    f"checkpoint is {state.last_checkpoint or 'none'}; lower learning_rate "
                    "and resume from it"
                )
            val = None
            if state.iteration % live.val_every == 0:
                val = self.validate(schedule=True)
            if self.is_main:
                self.loss_log.append(
                    state.iteration,
                    bits,
                    state.last_epoch,
                    state.training_seconds,
                    val,
                    samples_per_s,
                )
                self.board.scalars(
                    state.iteration,
                    {
                        "bits_per_sample/train": bits,
                        "learning_rate": self.optimizer.param_groups[0]["lr"],
                        "gradient_norm": self.grad_norm,
                        "samples_per_second": samples_per_s,
                    },
                )
            self._report(bits, samples_per_s, session_started, start_iteration)
            if (
                self.is_main
                and state.iteration % live.generate_every == 0
                and not self.stop.requested
            ):
                with self.averaged():
                    clips = generate_clips(
                        self.model,
                        self.run,
                        self.live.current,
                        sample_rate=self.sample_rate,
                        seed=mix_seed(self.request.train.seed, state.iteration),
                        epoch=state.last_epoch,
                        iteration=state.iteration,
                        should_stop=lambda: self.stop.interrupted,
                    )
                if clips is not None:
                    self._show_round(clips)
            if state.iteration % live.checkpoint_every == 0:
                self.write_checkpoint()
            if self.is_main and (changed := self.live.poll()) is not None:
                self._set_learning_rate(changed.learning_rate)
                self.board.follow(changed.tensorboard, state.iteration)
