"""What a training session is asked to do, what it reports while it runs, and how it ends."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from samplernn_cli.config import AudioConfig, LiveSettings, ModelConfig, StopConditions, TrainConfig
from samplernn_cli.run.folder import RunFolder

if TYPE_CHECKING:
    from samplernn_cli.checkpoint import Checkpoint


class StopReason(str, Enum):
    """Why a session stopped (:attr:`TrainResult.stopped_by`, unless a caller gave
    :meth:`StopRequest.request` a reason of its own). When the ranks of a distributed run
    see different reasons, they all stop for the one declared last here."""

    MAX_ITERATIONS = "max_iterations"
    MAX_EPOCHS = "max_epochs"
    MAX_TIME = "max_time"
    SIGINT = "SIGINT"
    SIGTERM = "SIGTERM"
    PLATEAU = "plateau"  # the plateau schedule ended the run (training/schedule.py)

    def __str__(self) -> str:  # the value in f-strings on every Python version
        return self.value


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
    # Fine-tuning: start from this checkpoint's (or export's) weights; ``model`` and the
    # audio's sample rate must be its own. The optimizer starts fresh unless
    # ``init_optimizer`` (a training checkpoint's Adam state is then taken too).
    init_from: Checkpoint | None = None
    init_optimizer: bool = False


@dataclass(frozen=True)
class ResumeRequest:
    """Everything ``samplernn resume`` needs. Architecture and data settings come from the
    checkpoint; only run-time settings can be given here."""

    checkpoint: Path  # a checkpoint file, or a run folder: its newest complete checkpoint
    run: RunFolder | None = None  # None: the checkpoint's own run folder
    inputs: tuple[Path, ...] = ()  # files and folders; empty: the files the checkpoint lists
    live_overrides: dict[str, Any] = field(default_factory=dict)
    stop: StopConditions = field(default_factory=StopConditions)
    device: str = "auto"
    force: bool = False


@dataclass(frozen=True)
class TrainStatus:
    """A snapshot after each iteration, for progress displays."""

    iteration: int
    epoch: int  # 1-based epoch this iteration belonged to
    loss: float  # training NLL of this iteration, bits per sample
    val_loss: float | None  # last validation NLL, bits per sample
    samples_per_s: float  # target samples per second of this iteration
    start_iteration: int  # iteration count when this session started
    total_iterations: int | None  # where the stop conditions end, if they say
    eta_seconds: float | None


ProgressCallback = Callable[[TrainStatus], None]


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    iteration: int
    epoch: int
    checkpoint: Path | None  # the newest checkpoint of the run
    stopped_by: StopReason | str  # a str: the reason a caller gave StopRequest.request
    last_loss: float | None
    last_val_loss: float | None


class StopRequest:
    """Asks a training session to stop at its next safe point: after the current
    iteration, with a checkpoint.

    Anyone may call :meth:`request`: the command line does when SIGINT or SIGTERM arrives
    (:attr:`StopReason.SIGINT`/:attr:`StopReason.SIGTERM`, which also cut validation and
    clip generation short), a progress callback may (with a reason of its own). A session
    marks the span in which it polls the request with :meth:`watching`; the core never
    touches the process's signal handlers itself.
    """

    def __init__(self) -> None:
        self.reason: StopReason | str | None = None
        self.since = 0.0  # time.monotonic() of the request
        self.watched = False  # a session is polling this request

    def request(self, reason: StopReason | str) -> None:
        self.reason = reason
        self.since = time.monotonic()

    @property
    def requested(self) -> bool:
        return self.reason is not None

    @property
    def interrupted(self) -> bool:
        """Stopped by a signal: skip the final validation and cut long work short."""
        return self.reason in (StopReason.SIGINT, StopReason.SIGTERM)

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """The span in which a session polls this request (training, up to its final
        checkpoint)."""
        self.watched = True
        try:
            yield
        finally:
            self.watched = False
