"""What a checkpoint records: the format's name and versions, and the typed records training
hands over (:class:`TrainingSnapshot`, with its :class:`Progress` and :class:`InputFile`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import torch

from samplernn_cli.audio import AudioSource
from samplernn_cli.config import AudioConfig, LiveSettings, ModelConfig, TrainConfig
from samplernn_cli.history import LossHistory
from samplernn_cli.model import ModelState

FORMAT = "samplernn-cli checkpoint"
# Training checkpoints are still written as version 1 (their layout has only gained keys
# older readers ignore); exports as version 2. This package reads up to the newest of them.
TRAINING_FORMAT_VERSION = 1
EXPORT_FORMAT_VERSION = 2
FORMAT_VERSION = max(TRAINING_FORMAT_VERSION, EXPORT_FORMAT_VERSION)
# What a checkpoint's "progress" must hold for training to resume from it.
RESUME_PROGRESS = ("epoch_index", "batch", "chunk", "training_seconds")


@dataclass(frozen=True)
class Progress:
    """Where a run stands. Checkpoints that cannot resume may hold only the first two."""

    iteration: int  # optimizer steps done
    epoch: int  # 1-based epoch of the last iteration (used in file names)
    epoch_index: int | None = None  # 0-based epoch in progress
    batch: int | None = None  # batch within the epoch
    chunk: int | None = None  # chunk within the batch's sequences
    training_seconds: float | None = None  # summed over sessions
    iterations_per_epoch: int | None = None
    sequence_samples: int | None = None  # the training sequence length the data plan used
    # The plateau schedule (TrainConfig.patience): learning-rate halvings so far, and
    # validations since the last new best or halving. None in files written before it.
    lr_halvings: int | None = None
    stale_validations: int | None = None
    # Steps the weight average (TrainConfig.average_decay) has taken in; None: no average.
    average_updates: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        """The progress a file records (None for what older files lack)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            value = data[f.name] if f.name in ("iteration", "epoch") else data.get(f.name)
            kind = float if f.name == "training_seconds" else int
            values[f.name] = None if value is None else kind(value)
        return cls(**values)


@dataclass(frozen=True)
class InputFile:
    """One training input file: what it was, how it was processed and split."""

    source: AudioSource
    gain: float  # normalisation factor (1.0 when off)
    samples: int  # at the model's rate
    codes_sha256: str
    train_samples: int
    val_samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.source.to_dict(),
            "duration_s": self.source.duration,
            "gain": self.gain,
            "samples": self.samples,
            "codes_sha256": self.codes_sha256,
            "train_samples": self.train_samples,
            "val_samples": self.val_samples,
        }


@dataclass(frozen=True)
class TrainingSnapshot:
    """Everything a training checkpoint records, as training hands it over."""

    run_name: str
    model_config: ModelConfig
    audio: AudioConfig
    train: TrainConfig
    live: LiveSettings
    sample_rate: int
    inputs: tuple[InputFile, ...]
    codes_sha256: str  # of all input files' codes, in order
    weights: dict[str, torch.Tensor]  # the average's, when the run averages its weights
    optimizer: dict[str, Any]
    progress: Progress
    rnn_state: ModelState | None  # (layers, B, H) tensors of the whole batch, on the CPU
    rng: dict[str, torch.Tensor]  # "torch", and "cuda" on CUDA
    history: LossHistory
    device: str
    # Where the run's starting weights came from (see :func:`provenance`); None: from scratch.
    parent: dict[str, Any] | None = None
    # The training audio's RMS level as the model hears it (dBFS), for generation.ranking.
    level_dbfs: float | None = None
    # The training audio's statistics for the take-to-recording distance
    # (distance.Reference.to_dict); None: not measured.
    reference: dict[str, Any] | None = None
    # The last generation round's takes' scores (generation.ranking.TakeScore.to_dict, best
    # first) and its iteration; None: no round yet.
    last_round: dict[str, Any] | None = None
    # The weights training goes on from, when ``weights`` are their average; None: the same.
    training_weights: dict[str, torch.Tensor] | None = None

    def to_payload(self) -> dict[str, Any]:
        """The file's dict (without the format header)."""
        summary = self.history.summary()
        return {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "run_name": self.run_name,
            "model_config": self.model_config.to_dict(),
            "audio": self.audio.to_dict(),
            "train": self.train.to_dict(),
            "live": self.live.to_dict(),
            "sample_rate": self.sample_rate,
            "input": {
                "files": [f.to_dict() for f in self.inputs],
                "codes_sha256": self.codes_sha256,
                "train_samples": sum(f.train_samples for f in self.inputs),
                "val_samples": sum(f.val_samples for f in self.inputs),
                **({} if self.level_dbfs is None else {"level_dbfs": self.level_dbfs}),
                **({} if self.reference is None else {"reference": self.reference}),
            },
            "last_round": self.last_round,
            "model": self.weights,
            **(
                {} if self.training_weights is None else {"training_weights": self.training_weights}
            ),
            "optimizer": self.optimizer,
            "progress": self.progress.to_dict(),
            "rnn_state": None
            if self.rnn_state is None
            else [None if s is None else list(s) for s in self.rnn_state],
            "rng": self.rng,
            "history": self.history.to_dict(),
            "summary": {
                "last_loss": summary.last_loss,
                "best_loss": summary.best_loss,
                "best_loss_iteration": summary.best_loss_iteration,
                "last_val_loss": summary.last_val_loss,
                "last_val_iteration": summary.last_val_iteration,
                "best_val_loss": summary.best_val_loss,
                "best_val_iteration": summary.best_val_iteration,
            },
            "environment": {"torch": str(torch.__version__), "device": self.device},
            "parent": self.parent,
        }
