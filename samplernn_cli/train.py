"""The training loop: truncated BPTT over long sequences, with run-folder artifacts.

The loop reports through a ``progress`` callback (one :class:`TrainStatus` per iteration) and
the ``samplernn`` logger; it never prints. A first SIGINT or SIGTERM ends training after the
current iteration with a checkpoint; a second one stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from samplernn_cli.audio import write_audio
from samplernn_cli.checkpoint import (
    Checkpoint,
    checkpoint_inputs,
    load_checkpoint,
    save_checkpoint,
)
from samplernn_cli.config import (
    AudioConfig,
    LiveSettings,
    ModelConfig,
    StopConditions,
    TrainConfig,
)
from samplernn_cli.data import (
    LOG2,
    DataSplit,
    SequencePlan,
    evaluate_bits,
    mix_seed,
    split_dataset,
)
from samplernn_cli.dataset import Dataset, decode_head, find_audio_files, load_dataset
from samplernn_cli.device import resolve_device
from samplernn_cli.distributed import Distributed, collective, from_environment, membership
from samplernn_cli.errors import (
    AudioError,
    CheckpointError,
    ConfigError,
    RunFolderError,
    TrainingError,
)
from samplernn_cli.generate import GenerationStopped, generate_codes
from samplernn_cli.live import LiveSettingsFile, parse_live_settings
from samplernn_cli.model import ModelState, SampleRNN, detach_state
from samplernn_cli.quantize import Quantizer
from samplernn_cli.runfolder import LossLog, RunFolder

logger = logging.getLogger("samplernn")

# Consecutive iterations with a NaN or infinite loss or gradient before training gives up.
MAX_BAD_STEPS = 20
# A second SIGINT/SIGTERM at least this long after the first stops at once, without a
# checkpoint; an earlier one is taken as the same request.
SIGNAL_REPEAT_SECONDS = 1.0
# Input files listed one by one in the log when training starts (inspect-checkpoint lists all).
MAX_LISTED_INPUTS = 10
# Activation values (batch x targets x hidden) per slice of the sample MLP in a training step:
# 16 M floats (64 MB) keeps the MLP's part of the memory small at any size, while each slice
# still feeds the matrix units large products (at the default size, 128 targets x batch 128).
MLP_SLICE_FLOATS = 16 * 2**20
# NAME_ground_truth.wav holds the first input file as the model hears it, up to this long.
GROUND_TRUTH_SECONDS = 600.0


@dataclass(frozen=True)
class TrainStatus:
    """A snapshot after each iteration, for progress displays."""

    iteration: int
    epoch: int  # 1-based epoch this iteration belonged to
    epoch_fraction: float  # share of that epoch done after this iteration
    loss: float  # training NLL of this iteration, bits per sample
    val_loss: float | None  # last validation NLL, bits per sample
    samples_per_s: float  # target samples per second of this iteration
    session_seconds: float
    start_iteration: int  # iteration count when this session started
    total_iterations: int | None  # where the stop conditions end, if they say
    eta_seconds: float | None


ProgressCallback = Callable[[TrainStatus], None]


@dataclass(frozen=True)
class TrainRequest:
    """Everything ``samplernn train`` needs to start a new run."""

    inputs: tuple[Path, ...]  # files and folders (searched recursively)
    run: RunFolder
    model: ModelConfig = field(default_factory=ModelConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    live: LiveSettings = field(default_factory=LiveSettings)
    stop: StopConditions = field(default_factory=StopConditions)
    device: str = "auto"
    force: bool = False


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    iteration: int
    epoch: int
    checkpoint: Path | None  # the newest checkpoint of the run
    stopped_by: str  # "max_iterations", "max_epochs", "max_time", "SIGINT" or "SIGTERM"
    last_loss: float | None
    last_val_loss: float | None
    best_val_loss: float | None


class StopRequest:
    """Set by a signal handler (or a caller) to end training at the next safe point."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.since = 0.0  # time.monotonic() of the request

    def request(self, reason: str) -> None:
        self.reason = reason
        self.since = time.monotonic()

    @property
    def requested(self) -> bool:
        return self.reason is not None

    @property
    def interrupted(self) -> bool:
        """Stopped by a signal: skip the final validation and cut long work short."""
        return self.reason in ("SIGINT", "SIGTERM")


@contextlib.contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[None]:
    """First SIGINT/SIGTERM: ask for a clean stop. Another, a second or more later: stop at
    once (KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if stop.requested:
            # One Ctrl-C can arrive twice (under torchrun, from the terminal and again from
            # torchrun itself): only a signal a second or more later stops at once.
            if time.monotonic() - stop.since < SIGNAL_REPEAT_SECONDS:
                return
            raise KeyboardInterrupt
        stop.request(name)
        logger.warning(
            f"{name} received: stopping after this iteration and writing a checkpoint "
            "(send it again, a second or more later, to stop at once without one)"
        )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class RunState:
    """What changes as training goes: saved in every checkpoint."""

    iteration: int = 0  # optimizer steps done
    epoch_index: int = 0  # 0-based epoch in progress
    batch: int = 0  # batch within the epoch
    chunk: int = 0  # chunk within the batch's sequences
    last_epoch: int = 1  # 1-based epoch of the last iteration (used in file names)
    training_seconds: float = 0.0
    rnn_state: ModelState | None = None
    # One entry per iteration (the rows of NAME_losses.csv).
    losses: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    val_history: list[tuple[int, float]] = field(default_factory=list)
    bad_steps: int = 0
    last_checkpoint: Path | None = None
    last_checkpoint_iteration: int = -1

    @property
    def last_val(self) -> tuple[int, float] | None:
        return self.val_history[-1] if self.val_history else None

    @property
    def best_val(self) -> tuple[int, float] | None:
        return min(self.val_history, key=lambda item: item[1]) if self.val_history else None

    def loss_rows(self) -> list[tuple[int, float, int, float, float | None, float]]:
        """The NAME_losses.csv rows so far."""
        vals = dict(self.val_history)
        return [
            (i + 1, loss, epoch, elapsed, vals.get(i + 1), rate)
            for i, (loss, epoch, elapsed, rate) in enumerate(
                zip(self.losses, self.epochs, self.elapsed, self.rates, strict=True)
            )
        ]

    def history_payload(self) -> dict[str, torch.Tensor]:
        return {
            "loss": torch.tensor(self.losses, dtype=torch.float64),
            "epoch": torch.tensor(self.epochs, dtype=torch.int64),
            "elapsed_s": torch.tensor(self.elapsed, dtype=torch.float64),
            "samples_per_s": torch.tensor(self.rates, dtype=torch.float64),
            "val_iteration": torch.tensor([i for i, _ in self.val_history], dtype=torch.int64),
            "val_loss": torch.tensor([v for _, v in self.val_history], dtype=torch.float64),
        }

    @classmethod
    def from_checkpoint(cls, payload: dict[str, Any], device: torch.device) -> RunState:
        progress, history = payload["progress"], payload["history"]
        rnn_state = payload.get("rnn_state")
        if rnn_state is not None:
            rnn_state = [None if s is None else tuple(t.to(device) for t in s) for s in rnn_state]
        return cls(
            iteration=int(progress["iteration"]),
            epoch_index=int(progress["epoch_index"]),
            batch=int(progress["batch"]),
            chunk=int(progress["chunk"]),
            last_epoch=int(progress["epoch"]),
            training_seconds=float(progress["training_seconds"]),
            rnn_state=rnn_state,
            losses=history["loss"].tolist(),
            epochs=history["epoch"].tolist(),
            elapsed=history["elapsed_s"].tolist(),
            rates=history["samples_per_s"].tolist(),
            val_history=list(
                zip(history["val_iteration"].tolist(), history["val_loss"].tolist(), strict=True)
            ),
        )


def forward_backward(
    model: SampleRNN,
    window: torch.Tensor,
    state: ModelState | None,
    *,
    slice_floats: int = MLP_SLICE_FLOATS,
) -> tuple[float, ModelState]:
    """Loss and gradients of one truncated-BPTT chunk, with bounded memory.

    The frame tiers run over the whole chunk. The sample-level MLP, whose activations are
    (batch x targets x hidden) and dominate memory, runs in slices of whole bottom-tier frames
    of at most about ``slice_floats`` activation values each, together with the bottom tier's
    upsampling (whose output, one vector per target, is the largest tensor of the chunk):
    every slice's loss is back-propagated at once (into the MLP and upsampling weights, the
    bottom tier's per-frame vectors and the first layer's tables), freeing its activations,
    and the accumulated gradients then flow through the frame tiers and the tables in one
    backward pass. Same loss and gradients as one pass over the chunk, up to float summation
    order. Nothing is back-propagated when the loss is not finite.

    Returns:
        The mean loss in bits per sample (NaN or infinite if so) and the state after the
        chunk (not detached).
    """
    history = model.history
    tier = model.sample_tier
    batch = window.shape[0]
    length = window.shape[1] - history
    targets = window[:, history:]
    # (B, L, FS): the frame_size codes before each target (a view, not a copy).
    previous = window[:, history - tier.frame_size : -1].unfold(1, tier.frame_size, 1)
    step = max(1, slice_floats // (batch * tier.input.out_features))
    if step >= length:
        conditioning, new_state = model.frame_tiers_pass(window, state)
        logits = tier(previous, conditioning)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        bits = loss.item() / LOG2
        if math.isfinite(bits):
            loss.backward()
        return bits, new_state
    bottom = model.frame_tiers[0]
    features, new_state = model.frame_tiers_pass(window, state, upsample=False)
    frames_per_slice = max(1, step // bottom.ratio)
    tables = tier.input_tables()
    features_leaf = features.detach().requires_grad_()
    tables_leaf = tables.detach().requires_grad_()
    total = torch.zeros((), dtype=torch.float64, device=window.device)
    for first in range(0, features.shape[1], frames_per_slice):
        frames = slice(first, first + frames_per_slice)
        part = slice(first * bottom.ratio, min((first + frames_per_slice) * bottom.ratio, length))
        conditioning = bottom.upsample_frames(features_leaf[:, frames])
        logits = tier(previous[:, part], conditioning, tables_leaf)
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets[:, part].reshape(-1), reduction="sum"
        ) / (batch * length)
        loss.backward()
        total += loss.detach()
    bits = float(total) / LOG2
    if math.isfinite(bits):
        torch.autograd.backward([features, tables], [features_leaf.grad, tables_leaf.grad])
    return bits, new_state


def make_optimizer(model: SampleRNN, learning_rate: float) -> torch.optim.Optimizer:
    """Adam, with PyTorch's fused implementation (one kernel for all parameters) where the
    device has one: the same update as the per-parameter loop, several times faster."""
    device = next(model.parameters()).device
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=learning_rate, fused=fused or None)


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class Trainer:
    """One training session of a run (a new run, or later a resumed one)."""

    def __init__(
        self,
        *,
        run: RunFolder,
        model_config: ModelConfig,
        audio_config: AudioConfig,
        train_config: TrainConfig,
        live: LiveSettings,
        stop_conditions: StopConditions,
        device: torch.device,
        dataset: Dataset,
        progress: ProgressCallback | None,
        stop: StopRequest,
        dist: Distributed | None = None,
    ) -> None:
        self.folder = run
        self.dist = dist
        self.is_main = dist is None or dist.is_main
        self.model_config = model_config
        self.audio_config = audio_config
        self.train_config = train_config
        self.stop_conditions = stop_conditions
        self.device = device
        self.progress = progress
        self.stop = stop
        self.dataset = dataset
        self.sample_rate = dataset.sample_rate
        self.chunk_length = train_config.chunk_length(model_config)

        torch.manual_seed(train_config.seed)
        self.model = SampleRNN(model_config).to(device)
        self.quantizer = self.model.quantizer
        # Identifies the training data after all processing, to check it on resume.
        self.fingerprint = dataset.fingerprint
        self.split: DataSplit = split_dataset(
            [f.length for f in dataset.files],
            [f.source.name for f in dataset.files],
            val_fraction=train_config.val_fraction,
            val_split=train_config.val_split,
            chunk_length=self.chunk_length,
            sample_rate=self.sample_rate,
            seed=train_config.seed,
        )
        self.plan = SequencePlan(
            dataset.codes,
            self.split.train,
            history=model_config.history,
            zero_code=self.quantizer.zero_code,
            sequence_length=round(train_config.sequence_seconds * self.sample_rate),
            chunk_length=self.chunk_length,
            batch_size=train_config.batch_size,
            seed=train_config.seed,
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
        self.optimizer = make_optimizer(self.model, live.learning_rate)
        self.live = LiveSettingsFile(run.args_json, live)
        self.loss_log = LossLog(run.losses_csv)
        self.state = RunState()
        # Validation figure of NAME_best_model.pt when continuing a run that has one: it is
        # only replaced by a better model.
        self.best_on_disk: float | None = None

    def restore(self, checkpoint: Checkpoint) -> None:
        """Take the weights, optimizer, RNG and run state from a checkpoint of this run."""
        payload = checkpoint.payload
        per_epoch = payload["progress"].get("iterations_per_epoch")
        if per_epoch is not None and per_epoch != self.plan.iterations_per_epoch:
            raise CheckpointError(
                f"{checkpoint.path}: the data plan differs ({per_epoch} iterations per epoch "
                f"then, {self.plan.iterations_per_epoch} now); is this the same input?"
            )
        try:
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.state = RunState.from_checkpoint(payload, self.device)
            if self.dist is not None and self.state.rnn_state is not None:
                self.state.rnn_state = [
                    None if s is None else tuple(t[:, self.rows].contiguous() for t in s)
                    for s in self.state.rnn_state
                ]
            torch.set_rng_state(payload["rng"]["torch"])
            if self.device.type == "cuda" and "cuda" in payload["rng"]:
                torch.cuda.set_rng_state(payload["rng"]["cuda"], self.device)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{checkpoint.path} cannot be resumed: its training state is incomplete or "
                f"damaged ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
        for group in self.optimizer.param_groups:
            group["lr"] = self.live.current.learning_rate
        self.state.last_checkpoint = checkpoint.path
        self.state.last_checkpoint_iteration = self.state.iteration

    # ----------------------------------------------------------------- artifacts

    def write_data_examples(self) -> None:
        """Ground truth and one training example, as the original tool documents."""
        rate = self.sample_rate
        first = self.dataset.files[0]
        head = decode_head(first, self.quantizer, round(GROUND_TRUTH_SECONDS * rate))
        write_audio(self.folder.ground_truth, head, rate)
        sequence = self.plan.batch(0, 0)[0]  # (history + S,) the first sequence
        history = self.model_config.history
        inputs = self.quantizer.decode(sequence[:-1])
        targets = self.quantizer.decode(sequence[history:])
        write_audio(self.folder.input_example, inputs, rate)
        write_audio(self.folder.target_example, targets, rate)
        # Stereo on one timeline: input on the left, target (one sample ahead) on the right.
        overlap = torch.zeros(sequence.numel(), 2)
        overlap[:-1, 0] = inputs
        overlap[history:, 1] = targets
        write_audio(self.folder.overlap_example, overlap, rate)

    def describe(self) -> None:
        files, rate = self.dataset.files, self.sample_rate
        for number, file in enumerate(files[:MAX_LISTED_INPUTS], 1):
            source = file.source
            channels = "mono" if source.channels == 1 else f"{source.channels} channels to mono"
            gain = f", {20 * math.log10(file.gain):+.1f} dB" if file.gain != 1 else ""
            label = "input" if len(files) == 1 else f"input {number}/{len(files)}"
            logger.info(
                f"{label} {source.name}: {source.duration:.1f} s at {source.sample_rate} Hz, "
                f"{channels}{gain}"
            )
        if len(files) > MAX_LISTED_INPUTS:
            logger.info(f"... and {len(files) - MAX_LISTED_INPUTS} more input files")
        total = self.dataset.total_samples / rate
        logger.info(
            f"training at {rate} Hz on {len(files)} file{'s' if len(files) > 1 else ''} "
            f"({_fmt_seconds(total)})"
            + (", each peak-normalised" if self.audio_config.normalize else "")
        )
        if self.split.skipped:
            names = ", ".join(files[i].source.name for i in self.split.skipped[:5])
            more = len(self.split.skipped) - 5
            logger.warning(
                f"{len(self.split.skipped)} input files are too short to train on and are "
                f"skipped: {names}" + (f" and {more} more" if more > 0 else "")
            )
        if self.plan.limited_by_shortest and len(files) > 1:
            logger.warning(
                f"sequences are {self.plan.sequence_length / rate:.2f} s, shorter than "
                f"--sequence-length {self.plan.requested_length / rate:g}, because the "
                "shortest training file is that short; remove very short files to learn "
                "longer context"
            )
        params = sum(p.numel() for p in self.model.parameters())
        described = self.model_config.describe()
        logger.info(f"model: {described}, {params:,} parameters, on {self.device}")
        plan = self.plan
        what = "whole files" if self.train_config.val_split == "files" else "file ends"
        logger.info(
            f"data: {self.split.train_samples / self.sample_rate:.1f} s training, "
            f"{self.split.val_samples / self.sample_rate:.1f} s validation ({what}); "
            f"{plan.num_sequences} sequences of {plan.sequence_length / self.sample_rate:.2f} s "
            f"per epoch in batches of {plan.batch_size}; {plan.chunks_per_sequence} chunks of "
            f"{self.chunk_length} samples per sequence; {plan.iterations_per_epoch} "
            "iterations per epoch"
        )
        logger.info(f"run folder: {self.folder.path}")

    # ----------------------------------------------------------------- checkpoints

    def checkpoint_payload(self) -> dict[str, Any]:
        state = self.state
        rnn_state = None
        if state.rnn_state is not None:  # (layers, B, H) tensors; every rank's rows, in order
            rnn_state = [
                None if s is None else [self._all_rows(t).cpu() for t in s] for s in state.rnn_state
            ]
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        last_val, best_val = state.last_val, state.best_val
        finite = [(i + 1, v) for i, v in enumerate(state.losses) if math.isfinite(v)]
        best_loss = min(finite, key=lambda item: item[1]) if finite else None
        return {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "run_name": self.folder.name,
            "model_config": self.model_config.to_dict(),
            "audio": self.audio_config.to_dict(),
            "train": self.train_config.to_dict(),
            "live": self.live.current.to_dict(),
            "sample_rate": self.sample_rate,
            "input": self.input_payload(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "progress": {
                "iteration": state.iteration,
                "epoch": state.last_epoch,
                "epoch_index": state.epoch_index,
                "batch": state.batch,
                "chunk": state.chunk,
                "training_seconds": state.training_seconds,
                "iterations_per_epoch": self.plan.iterations_per_epoch,
                "sequence_samples": self.plan.sequence_length,
            },
            "rnn_state": rnn_state,
            "rng": rng,
            "history": state.history_payload(),
            "summary": {
                "last_loss": state.losses[-1] if state.losses else None,
                "best_loss": None if best_loss is None else best_loss[1],
                "best_loss_iteration": None if best_loss is None else best_loss[0],
                "last_val_loss": None if last_val is None else last_val[1],
                "last_val_iteration": None if last_val is None else last_val[0],
                "best_val_loss": None if best_val is None else best_val[1],
                "best_val_iteration": None if best_val is None else best_val[0],
            },
            "environment": {"torch": str(torch.__version__), "device": str(self.device)},
        }

    def input_payload(self) -> dict[str, Any]:
        """The input files, their processing and their split (checkpoint "input")."""
        train = {s.file: s.length for s in self.split.train}
        val = {s.file: s.length for s in self.split.val}
        files = []
        for index, file in enumerate(self.dataset.files):
            files.append(
                {
                    **file.source.to_dict(),
                    "duration_s": file.source.duration,
                    "gain": file.gain,
                    "samples": file.length,
                    "codes_sha256": file.fingerprint,
                    "train_samples": train.get(index, 0),
                    "val_samples": val.get(index, 0),
                }
            )
        return {
            "files": files,
            "codes_sha256": self.fingerprint,
            "train_samples": self.split.train_samples,
            "val_samples": self.split.val_samples,
        }

    def _all_rows(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor if self.dist is None else self.dist.gather_rows(tensor, dim=1)

    def write_checkpoint(self) -> Path | None:
        """Write a checkpoint (on every rank: they all take part in gathering the RNN state;
        rank 0 writes it)."""
        payload = self.checkpoint_payload()
        self.state.last_checkpoint_iteration = self.state.iteration
        if not self.is_main:
            return None
        path = self.folder.checkpoint(self.state.last_epoch, self.state.iteration)
        save_checkpoint(path, payload)
        self.state.last_checkpoint = path
        logger.info(f"checkpoint: {path}")
        return path

    # ----------------------------------------------------------------- evaluation

    def validate(self) -> float | None:
        """Validation NLL in bits per sample (None without validation data or if stopped).

        Distributed: called on every rank; rank 0 evaluates and the others learn its figure
        (and take part in saving the best model)."""
        if not self.split.val:
            return None
        started = time.perf_counter()
        bits = None
        if self.is_main:
            self.model.eval()
            try:
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
        best = self.state.best_val
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
        self.state.val_history.append((self.state.iteration, bits))
        if self.is_main:
            note = " (best so far)" if improved else f" (best {previous_best:.4f})"
            logger.info(
                f"validation at iteration {self.state.iteration}: {bits:.4f} bits per sample"
                f"{note} [{_fmt_seconds(time.perf_counter() - started)}]"
            )
        if improved:
            payload = self.checkpoint_payload()
            self.best_on_disk = bits
            if self.is_main:
                save_checkpoint(self.folder.best_model, payload)
                logger.info(f"best model so far: {self.folder.best_model}")
        return bits

    def generate_clips(self) -> list[Path]:
        live = self.live.current
        num_samples = max(1, round(live.length * self.sample_rate))
        started = time.perf_counter()
        self.model.eval()
        try:
            codes = generate_codes(
                self.model,
                live.num_generated,
                num_samples,
                temperature=live.temperature,
                seed=mix_seed(self.train_config.seed, self.state.iteration),
                progress=lambda done, total: self.stop.interrupted,
            )
        except GenerationStopped:
            logger.warning("generation of clips interrupted")
            return []
        finally:
            self.model.train()
        audio = self.quantizer.decode(codes.cpu())
        paths = []
        for number in range(live.num_generated):
            path = self.folder.clip(self.state.last_epoch, self.state.iteration, number + 1)
            paths.append(write_audio(path, audio[number], self.sample_rate))
        seconds = time.perf_counter() - started
        rate = live.num_generated * num_samples / seconds
        logger.info(
            f"generated {live.num_generated} clips of {live.length:g} s in "
            f"{_fmt_seconds(seconds)} ({rate:,.0f} samples/s): {paths[0].name} ..."
        )
        return paths

    # ----------------------------------------------------------------- the loop

    def _stop_reason(self, session_started: float) -> str | None:
        conditions, state = self.stop_conditions, self.state
        if self.stop.reason is not None:
            return self.stop.reason
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

    def _total_iterations(self) -> int | None:
        conditions = self.stop_conditions
        totals = []
        if conditions.max_iterations is not None:
            totals.append(conditions.max_iterations)
        if conditions.max_epochs is not None:
            totals.append(conditions.max_epochs * self.plan.iterations_per_epoch)
        return min(totals) if totals else None

    def _eta(self, session_started: float, start_iteration: int) -> float | None:
        elapsed = time.monotonic() - session_started
        done = self.state.iteration - start_iteration
        candidates = []
        total = self._total_iterations()
        if total is not None and done > 0:
            candidates.append(max(0, total - self.state.iteration) * elapsed / done)
        if self.stop_conditions.max_seconds is not None:
            candidates.append(max(0.0, self.stop_conditions.max_seconds - elapsed))
        return min(candidates) if candidates else None

    def _step(self, window: torch.Tensor) -> float:
        """One optimizer step on one chunk; returns the loss in bits per sample (may be NaN)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.ddp is None:
            bits, new_state = forward_backward(self.model, window, self.state.rnn_state)
        else:
            bits, new_state = self._distributed_forward_backward(window)
        ok = math.isfinite(bits)
        if ok:
            norm = torch.nn.utils.clip_grad_norm_(
                self.model.parameters(), self.train_config.grad_clip
            )
            ok = bool(torch.isfinite(norm))
        if ok:
            self.optimizer.step()
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

    def _distributed_forward_backward(self, window: torch.Tensor) -> tuple[float, ModelState]:
        """One forward and one backward pass through DistributedDataParallel, which averages
        the gradients over the ranks as the backward pass produces them. (The sliced pass of
        :func:`forward_backward` runs several backward passes per step, which DDP's
        gradient hooks do not allow; each rank's share of the batch keeps the memory down
        instead.) Always back-propagates, even a non-finite loss: every rank must join the
        gradient reduction, and a NaN anywhere then makes every rank skip the step."""
        assert self.ddp is not None and self.dist is not None
        history = self.model.history
        ddp = self.ddp

        def step() -> tuple[torch.Tensor, ModelState]:
            logits, new_state = ddp(window, self.state.rnn_state)
            targets = window[:, history:].reshape(-1)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets)
            loss.backward()  # the gradients' all-reduce happens in here
            return loss, new_state

        loss, new_state = collective(step)
        return self.dist.mean(loss) / LOG2, new_state

    def _agree(self, session_started: float) -> tuple[str | None, LiveSettings]:
        """Why to stop now (None: go on) and the live settings in effect, the same on every
        rank: a stop on any rank (a signal, say) stops all; the live settings are rank 0's
        (only rank 0 reads NAME_args.json)."""
        reason = self._stop_reason(session_started)
        live = self.live.current
        if self.dist is None:
            return reason, live
        reasons = [None, "max_iterations", "max_epochs", "max_time", "SIGINT", "SIGTERM"]
        values = [float(reasons.index(reason))]
        fields = ["learning_rate", "val_every", "generate_every", "checkpoint_every"]
        values += [float(getattr(live, f)) if self.is_main else -1.0 for f in fields]
        agreed = self.dist.agree(values)
        reason = reasons[int(agreed[0])]
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

    def fit(self) -> TrainResult:
        """Train until a stop condition or a signal; always leaves a checkpoint of the last
        completed iteration."""
        state = self.state
        session_started = time.monotonic()
        start_iteration = state.iteration
        sequence_batch: torch.Tensor | None = None
        batch_key: tuple[int, int] | None = None
        stopped_by = None
        world = 1 if self.dist is None else self.dist.world_size
        self.model.train()
        with contextlib.closing(self.loss_log):
            while True:
                stopped_by, live = self._agree(session_started)
                if stopped_by is not None:
                    break
                if self.dist is not None:
                    for group in self.optimizer.param_groups:
                        group["lr"] = live.learning_rate
                if batch_key != (state.epoch_index, state.batch):
                    batch_key = (state.epoch_index, state.batch)
                    sequence_batch = self.plan.batch(*batch_key, self.rows)
                assert sequence_batch is not None
                window = self.plan.window(sequence_batch, state.chunk).to(self.device)
                started = time.perf_counter()
                bits = self._step(window)
                step_seconds = time.perf_counter() - started
                samples_per_s = world * window.shape[0] * self.chunk_length / step_seconds
                self._advance()
                state.training_seconds += step_seconds
                state.losses.append(bits)
                state.epochs.append(state.last_epoch)
                state.elapsed.append(state.training_seconds)
                state.rates.append(samples_per_s)
                if state.bad_steps >= MAX_BAD_STEPS:
                    raise TrainingError(
                        f"training diverged: {MAX_BAD_STEPS} iterations in a row had a non-finite "
                        f"loss or gradient (up to iteration {state.iteration}); the last good "
                        f"checkpoint is {state.last_checkpoint or 'none'}; lower learning_rate "
                        "and resume from it"
                    )
                val = None
                if state.iteration % live.val_every == 0:
                    val = self.validate()
                if self.is_main:
                    self.loss_log.append(
                        state.iteration,
                        bits,
                        state.last_epoch,
                        state.training_seconds,
                        val,
                        samples_per_s,
                    )
                if self.progress is not None and self.is_main:
                    total = self._total_iterations()
                    done_in_epoch = state.batch * self.plan.chunks_per_sequence + state.chunk
                    fraction = done_in_epoch / self.plan.iterations_per_epoch or 1.0
                    last_val = state.last_val
                    self.progress(
                        TrainStatus(
                            iteration=state.iteration,
                            epoch=state.last_epoch,
                            epoch_fraction=fraction,
                            loss=bits,
                            val_loss=None if last_val is None else last_val[1],
                            samples_per_s=samples_per_s,
                            session_seconds=time.monotonic() - session_started,
                            start_iteration=start_iteration,
                            total_iterations=total,
                            eta_seconds=self._eta(session_started, start_iteration),
                        )
                    )
                if (
                    self.is_main
                    and state.iteration % live.generate_every == 0
                    and not self.stop.requested
                ):
                    self.generate_clips()
                if state.iteration % live.checkpoint_every == 0:
                    self.write_checkpoint()
                if self.is_main and (changed := self.live.poll()) is not None:
                    for group in self.optimizer.param_groups:
                        group["lr"] = changed.learning_rate
            # Finish: a final validation figure (unless interrupted) and a final checkpoint.
            last_val = state.last_val
            interrupted = self.stop.interrupted
            if self.dist is not None:  # a signal may have reached some ranks only
                interrupted = bool(self.dist.agree([float(interrupted)])[0])
            if (
                not interrupted
                and state.iteration > start_iteration
                and (last_val is None or last_val[0] != state.iteration)
            ):
                self.validate()
            if state.iteration > 0 and state.last_checkpoint_iteration != state.iteration:
                self.write_checkpoint()
        last_val, best_val = state.last_val, state.best_val
        return TrainResult(
            run_dir=self.folder.path,
            iteration=state.iteration,
            epoch=state.last_epoch,
            checkpoint=state.last_checkpoint,
            stopped_by=stopped_by,
            last_loss=state.losses[-1] if state.losses else None,
            last_val_loss=None if last_val is None else last_val[1],
            best_val_loss=None if best_val is None else best_val[1],
        )


def _refuse_inputs_in_outputs(paths: list[Path], folder: RunFolder) -> None:
    for path in paths:
        if folder.owns(path):
            raise ConfigError(
                f"the input {path} is a file this run would write; move it or choose "
                "another run name with -o"
            )


def _warn_if_quiet(dataset: Dataset) -> None:
    for file in dataset.files:
        if file.gain > 1000:
            logger.warning(
                f"{file.source.name} is very quiet (peak {20 * math.log10(file.peak):.0f} "
                "dBFS); normalisation amplifies its noise floor too"
            )


def _read_inputs(
    paths: list[Path],
    audio: AudioConfig,
    model_config: ModelConfig,
    folder: RunFolder,
    dist: Distributed | None,
) -> Dataset:
    """Decode the inputs (distributed: rank 0 first, filling the code cache, then the others,
    which find the files there when the cache folder is shared with rank 0)."""
    _refuse_inputs_in_outputs(paths, folder)
    quantizer = Quantizer(model_config.quantizer, model_config.q_levels)
    if dist is not None and not dist.is_main:
        dist.barrier()
    dataset = load_dataset(paths, audio, quantizer)
    if dist is not None and dist.is_main:
        dist.barrier()
    _warn_if_quiet(dataset)
    return dataset


def _start(
    trainer: Trainer, *, rows: list[Any], write_examples: bool, stop: StopRequest
) -> TrainResult:
    """Create the run folder, write its starting files and train, holding the run's lock."""
    try:
        return _run_training(trainer, rows=rows, write_examples=write_examples, stop=stop)
    finally:
        trainer.ddp = None  # DDP holds the process group: drop it before leaving the group


def _run_training(
    trainer: Trainer, *, rows: list[Any], write_examples: bool, stop: StopRequest
) -> TrainResult:
    if not trainer.is_main:  # the run folder is rank 0's alone
        with stop_on_signals(stop):
            return trainer.fit()
    folder = trainer.folder
    folder.create()
    with folder.lock():
        for path in folder.remove_stale_temp_files():
            logger.info(f"removed {path.name}, left by an interrupted write")
        trainer.describe()
        trainer.live.write()
        trainer.loss_log.open(rows)
        if write_examples:
            trainer.write_data_examples()
        with stop_on_signals(stop):
            return trainer.fit()


def train(
    request: TrainRequest,
    *,
    progress: ProgressCallback | None = None,
    stop: StopRequest | None = None,
) -> TrainResult:
    """Start a new run: read the input, create the run folder, write the data artifacts and
    train until a stop condition or a signal.

    Raises:
        AudioError, ConfigError, RunFolderError, OutputError, TrainingError: see
        :mod:`samplernn_cli.errors`; nothing in an existing run folder is touched unless
        ``request.force``.
    """
    for config in (request.model, request.audio, request.train, request.live, request.stop):
        config.validate()
    device = resolve_device(request.device)
    dist = from_environment(device, request.train.batch_size)
    with membership(dist):
        if dist is not None:
            device = dist.device
        if dist is None or dist.is_main:
            request.run.check_available(force=request.force)
        paths = find_audio_files(request.inputs, exclude=request.run.path.parent)
        dataset = _read_inputs(paths, request.audio, request.model, request.run, dist)
        stop = stop or StopRequest()
        trainer = Trainer(
            run=request.run,
            model_config=request.model,
            audio_config=request.audio,
            train_config=request.train,
            live=request.live,
            stop_conditions=request.stop,
            device=device,
            dataset=dataset,
            progress=progress,
            stop=stop,
            dist=dist,
        )
        return _start(trainer, rows=[], write_examples=True, stop=stop)


@dataclass(frozen=True)
class ResumeRequest:
    """Everything ``samplernn resume`` needs. Architecture and data settings come from the
    checkpoint; only run-time settings can be given here."""

    checkpoint: Path
    run: RunFolder | None = None  # None: the checkpoint's own run folder
    inputs: tuple[Path, ...] = ()  # files and folders; empty: the files the checkpoint lists
    live_overrides: dict[str, Any] = field(default_factory=dict)
    stop: StopConditions = field(default_factory=StopConditions)
    device: str = "auto"
    force: bool = False


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
    payload = checkpoint.payload
    for key in ("epoch_index", "batch", "chunk", "training_seconds"):
        if key not in payload["progress"] or "history" not in payload:
            raise CheckpointError(f"{checkpoint.path} lacks the training state needed to resume")
    run_name = str(payload.get("run_name") or checkpoint.path.parent.name)
    own_folder = RunFolder(path=checkpoint.path.parent, name=run_name)
    folder = request.run or own_folder
    same_folder = folder.path.resolve() == own_folder.path.resolve() and folder.name == run_name
    device = resolve_device(request.device)
    dist = from_environment(device, checkpoint.train.batch_size)
    main = dist is None or dist.is_main
    with membership(dist):
        if same_folder and main:
            later = folder.artifacts_after(checkpoint.iteration)
            if later and not request.force:
                newest = max(later, key=lambda p: p.stat().st_mtime)
                raise RunFolderError(
                    f"{folder.path} has {len(later)} files written after iteration "
                    f"{checkpoint.iteration} (e.g. {newest.name}); continuing from this checkpoint "
                    "would overwrite them: resume from the newest checkpoint, continue in a new "
                    "folder with -o, or pass --force"
                )
        elif main:
            folder.check_available(force=request.force)
        if request.inputs:
            paths = find_audio_files(request.inputs, exclude=folder.path.parent)
        else:
            paths = [Path(entry["path"]) for entry in checkpoint_inputs(payload)]
            missing = [path for path in paths if not path.exists()]
            if missing:
                others = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise AudioError(
                    f"the training input {missing[0]} is missing{others}; pass -i/--in with its "
                    "new location (a file or folder; repeat -i for several)"
                )
        audio = replace(checkpoint.audio, sample_rate=checkpoint.sample_rate)
        dataset = _read_inputs(paths, audio, checkpoint.model_config, folder, dist)

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

        if dist is not None:
            device = dist.device
        stop = stop or StopRequest()
        trainer = Trainer(
            run=folder,
            model_config=checkpoint.model_config,
            audio_config=checkpoint.audio,
            train_config=checkpoint.train,
            live=live,
            stop_conditions=request.stop,
            device=device,
            dataset=dataset,
            progress=progress,
            stop=stop,
            dist=dist,
        )
        expected = payload["input"].get("codes_sha256")
        if expected is not None and expected != trainer.fingerprint:
            what = str(paths[0]) if len(paths) == 1 else f"the {len(paths)} input files"
            raise AudioError(
                f"{what} {'is' if len(paths) == 1 else 'are'} not the audio this run was trained "
                "on (the samples differ after processing); pass -i/--in with the original input"
            )
        trainer.restore(checkpoint)
        if main and folder.best_model.is_file():
            try:
                best = load_checkpoint(folder.best_model).payload.get("summary", {})
                trainer.best_on_disk = best.get("last_val_loss")
            except CheckpointError as exc:
                logger.warning(f"{exc}; it will be replaced by the next best model")
        logger.info(
            f"resuming {run_name} from iteration {checkpoint.iteration} (epoch "
            f"{checkpoint.epoch}) of {checkpoint.path.name}"
        )
        return _start(
            trainer, rows=trainer.state.loss_rows(), write_examples=not same_folder, stop=stop
        )
