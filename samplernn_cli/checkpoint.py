"""The checkpoint file: the one owner of its format (write, read, validate, provenance;
:mod:`samplernn_cli.summary` summarises a loaded file for ``inspect-checkpoint``).

A checkpoint is a ``torch.save`` of a dict of tensors and plain data only, so it loads with
``torch.load(weights_only=True)``: loading never runs code from the file. It carries all
that generating needs without the training data, and all that resuming exactly needs: the
configs, sample rate, weights, optimizer, RNG and carried RNN state, the position in the data
plan and the loss history (:mod:`samplernn_cli.history`). Training describes it with a
:class:`TrainingSnapshot`; :func:`save_checkpoint` makes the dict and :func:`load_checkpoint`
reads every format-1 file written so far (filling in what older ones lack).

An export (``samplernn export``, written by :func:`save_export`) holds only what inference
needs: ``"kind": "export"``, format version 2 (so that versions from before exports refuse it
with "upgrade"), and no optimizer, RNG, data-position or loss-history state. It loads as a
:class:`Checkpoint` whose :attr:`Checkpoint.is_export` is true.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from samplernn_cli import __version__
from samplernn_cli.audio import AudioSource
from samplernn_cli.config import AudioConfig, LiveSettings, ModelConfig, TrainConfig
from samplernn_cli.distance import Reference
from samplernn_cli.errors import CheckpointError, ConfigError, OutputError
from samplernn_cli.fileio import atomic_write, file_sha256
from samplernn_cli.history import LossHistory
from samplernn_cli.model import ModelState, SampleRNN

FORMAT = "samplernn-cli checkpoint"
# The newest version this package reads. Training checkpoints are still written as version 1
# (their layout has only gained keys older readers ignore); exports as version 2.
FORMAT_VERSION = 2
TRAINING_FORMAT_VERSION = 1
EXPORT_FORMAT_VERSION = 2
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


def save_checkpoint(path: Path, snapshot: TrainingSnapshot) -> None:
    """Write a training checkpoint to ``path`` atomically.

    Raises:
        OutputError: the file could not be written; nothing is left under ``path``.
    """
    write_payload(path, snapshot.to_payload())


def save_export(
    path: Path, checkpoint: Checkpoint, *, dtype: torch.dtype, overwrite: bool = False
) -> None:
    """Write the inference-only file of ``checkpoint`` (a training checkpoint or an export)
    to ``path`` atomically, with its floating-point weights stored as ``dtype``.

    Raises:
        OutputError: the file could not be written (or exists, without ``overwrite``);
            nothing is left under ``path``.
    """
    weights = {
        name: tensor.to(dtype) if tensor.is_floating_point() else tensor
        for name, tensor in checkpoint.weights.items()
    }
    payload = checkpoint.payload
    progress = checkpoint.progress
    write_payload(
        path,
        {
            "kind": "export",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "run_name": checkpoint.run_name,
            "model_config": checkpoint.model_config.to_dict(),
            "audio": checkpoint.audio.to_dict(),
            "train": checkpoint.train.to_dict(),
            "live": checkpoint.live.to_dict(),
            "sample_rate": checkpoint.sample_rate,
            # The input as recorded (names, durations, fingerprints): small, and evaluate
            # --held-out needs the split settings that go with it.
            "input": payload.get("input", {}),
            "model": weights,
            "progress": {
                "iteration": progress.iteration,
                "epoch": progress.epoch,
                "training_seconds": progress.training_seconds,
                "iterations_per_epoch": progress.iterations_per_epoch,
                "sequence_samples": progress.sequence_samples,
            },
            "summary": checkpoint.stored_summary,
            "last_round": checkpoint.last_round,
            "environment": payload.get("environment", {}),
            "parent": checkpoint.parent,
            # An export of an export keeps naming the training checkpoint it all came from.
            "exported_from": checkpoint.exported_from or provenance(checkpoint),
        },
        format_version=EXPORT_FORMAT_VERSION,
        overwrite=overwrite,
    )


def write_payload(
    path: Path,
    payload: dict[str, Any],
    *,
    format_version: int = TRAINING_FORMAT_VERSION,
    overwrite: bool = True,
) -> None:
    """Write ``payload`` behind the format header, atomically (tools and tests use it to
    write files of unusual content; training writes through :func:`save_checkpoint`, export
    through :func:`save_export`).

    Raises:
        OutputError: the file could not be written (or exists, without ``overwrite``);
            nothing is left under ``path``.
    """
    payload = {
        "format": FORMAT,
        "format_version": format_version,
        "package_version": __version__,
        **payload,
    }
    try:
        atomic_write(
            path, lambda handle: torch.save(payload, handle), what="checkpoint", overwrite=overwrite
        )
    except RuntimeError as exc:  # torch's zip writer reports some I/O failures this way
        raise OutputError(f"cannot write checkpoint {path}: {exc}") from None


@dataclass(frozen=True)
class Checkpoint:
    """A loaded, validated checkpoint. ``payload`` is the file's dict as written."""

    path: Path
    payload: dict[str, Any]
    model_config: ModelConfig
    audio: AudioConfig
    train: TrainConfig
    live: LiveSettings
    sample_rate: int
    progress: Progress

    @property
    def iteration(self) -> int:
        return self.progress.iteration

    @property
    def epoch(self) -> int:
        return self.progress.epoch

    @property
    def run_name(self) -> str:
        """The run's name (older files: the checkpoint folder's name)."""
        return str(self.payload.get("run_name") or self.path.parent.name)

    @property
    def history(self) -> LossHistory:
        return LossHistory.from_dict(self.payload.get("history", {}))

    @property
    def input_files(self) -> list[dict[str, Any]]:
        """The input files recorded (checkpoints of single-file runs from before several
        files could be given record one file directly under "input")."""
        source = self.payload.get("input", {})
        if not isinstance(source, dict):
            return []
        if "files" in source:
            return [f for f in source["files"] if isinstance(f, dict)]
        return [source] if "path" in source else []

    @property
    def training_level_dbfs(self) -> float | None:
        """RMS level of the training audio as the model heard it, where recorded."""
        level = self._recorded("level_dbfs")
        return float(level) if isinstance(level, (int, float)) else None

    @property
    def reference(self) -> Reference | None:
        """The training audio's statistics for the take-to-recording distance, where
        recorded (None in files written before it, or where they are unreadable: takes are
        then ranked as before)."""
        stored = self._recorded("reference")
        if not isinstance(stored, dict):
            return None
        try:
            return Reference.from_dict(stored)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError):
            return None

    @property
    def last_round(self) -> dict[str, Any] | None:
        """The last generation round's iteration and its takes' scores, best first, where
        recorded."""
        stored = self.payload.get("last_round")
        return stored if isinstance(stored, dict) else None

    @property
    def codes_sha256(self) -> str | None:
        """The fingerprint of the processed training audio, where recorded."""
        return self._recorded("codes_sha256")

    def _recorded(self, key: str) -> Any:
        source = self.payload.get("input", {})
        return source.get(key) if isinstance(source, dict) else None

    @property
    def is_export(self) -> bool:
        """An inference-only file written by ``samplernn export``."""
        return self.payload.get("kind") == "export"

    @property
    def parent(self) -> dict[str, Any] | None:
        """Where the run's starting weights came from (``--init-from``), if anywhere."""
        parent = self.payload.get("parent")
        return parent if isinstance(parent, dict) else None

    @property
    def exported_from(self) -> dict[str, Any] | None:
        """The training checkpoint an export was made from (see :func:`provenance`)."""
        source = self.payload.get("exported_from")
        return source if isinstance(source, dict) else None

    def require_training_state(self) -> None:
        """Raise :class:`CheckpointError` unless training can resume from this file."""
        if self.is_export:
            raise CheckpointError(
                f"{self.path} is an exported model (weights only, no optimizer or data "
                "state) and cannot be resumed; resume the training checkpoint it came from, "
                f"or fine-tune it with `samplernn train AUDIO --init-from {self.path}`"
            )
        progress = self.progress
        missing = [key for key in RESUME_PROGRESS if getattr(progress, key) is None]
        if "history" not in self.payload or missing:
            raise CheckpointError(f"{self.path} lacks the training state needed to resume")

    def rnn_state(self, device: torch.device) -> ModelState | None:
        """The RNN state carried into the next chunk, on ``device`` (None: reset)."""
        state = self.payload.get("rnn_state")
        if state is None:
            return None
        return [None if s is None else tuple(t.to(device) for t in s) for s in state]

    @property
    def weights(self) -> dict[str, torch.Tensor]:
        """The model's weights (of a run that averages its weights: the average)."""
        return self.payload["model"]

    @property
    def training_weights(self) -> dict[str, torch.Tensor]:
        """The weights training resumes from: ``weights`` unless the run averages them."""
        weights = self.payload.get("training_weights")
        return weights if isinstance(weights, dict) else self.weights

    @property
    def optimizer_state(self) -> dict[str, Any] | None:
        """The optimizer's state (None in an export)."""
        state = self.payload.get("optimizer")
        return state if isinstance(state, dict) else None

    @property
    def rng(self) -> dict[str, torch.Tensor]:
        return self.payload["rng"]

    @property
    def stored_summary(self) -> dict[str, Any]:
        """The summary written with the file (empty in files written before it)."""
        return self.payload.get("summary", {})

    def build_model(self, device: torch.device | str = "cpu") -> SampleRNN:
        """The network with this checkpoint's weights, on ``device``, in eval mode (float32:
        half-precision weights of an export are widened as they are copied in)."""
        model = SampleRNN(self.model_config)
        try:
            model.load_state_dict(self.weights)
        except (RuntimeError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"{self.path}: the weights do not match the model settings stored with them "
                f"({first})"
            ) from None
        return model.to(device).eval()


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load and validate a checkpoint on the CPU without running any code from the file.

    Raises:
        CheckpointError: missing, empty, truncated, corrupt, foreign (not written by
            samplernn), unsafe (contains objects that would run code) or from a newer format.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); the checkpoint was not written")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's weights-only unpickler names the global it refused to import; anything
        # else it refuses is simply not a checkpoint.
        if "global" in str(exc).lower():
            raise CheckpointError(
                f"{path} holds Python objects other than tensors and plain data, which could run "
                "code when loaded; refusing to load it (samplernn checkpoints never do)"
            ) from None
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupt pickle data)"
        ) from None
    except PermissionError:
        raise CheckpointError(f"{path}: permission denied") from None
    except MemoryError:
        raise CheckpointError(f"{path} is too large to load into memory") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, OSError, KeyError, ...
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupt: {type(exc).__name__})"
        ) from None
    return _validate(path, payload)


def _validate(path: Path, payload: object) -> Checkpoint:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a samplernn checkpoint (it was written by another program)"
        )
    version = payload.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path} has an invalid format version ({version!r})")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {version}, written by samplernn "
            f"{payload.get('package_version', '?')}; this is samplernn {__version__} "
            f"(format {FORMAT_VERSION}): upgrade samplernn-cli to read it"
        )
    try:
        # Settings added after format 1 was first written take the value that matches
        # checkpoints written before them (their declared legacy value).
        model_config = ModelConfig.from_dict(
            {**ModelConfig.legacy_values(), **payload["model_config"]}
        )
        model_config.validate()
        audio = AudioConfig.from_dict(payload["audio"])
        train = TrainConfig.from_dict({**TrainConfig.legacy_values(), **payload["train"]})
        live = LiveSettings.from_dict({**LiveSettings.legacy_values(), **payload["live"]})
        sample_rate = int(payload["sample_rate"])
        progress = Progress.from_dict(payload["progress"])
        if not isinstance(payload["model"], dict):
            raise TypeError("weights are not a state dict")
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{path} is incomplete or damaged ({exc})") from None
    return Checkpoint(
        path=path,
        payload=payload,
        model_config=model_config,
        audio=audio,
        train=train,
        live=live,
        sample_rate=sample_rate,
        progress=progress,
    )


def provenance(checkpoint: Checkpoint) -> dict[str, Any]:
    """What a file made from ``checkpoint`` records about it: its name and path, run,
    iteration, kind and sha256 (and, for an export, the training checkpoint it came from),
    so a fine-tuned model or an export can be traced to the exact file it started from."""
    record: dict[str, Any] = {
        "file": checkpoint.path.name,
        "path": str(checkpoint.path.resolve()),
        "run_name": checkpoint.run_name,
        "iteration": checkpoint.iteration,
        "kind": "export" if checkpoint.is_export else "training",
        "sha256": file_sha256(checkpoint.path),
    }
    if checkpoint.exported_from is not None:
        record["exported_from"] = checkpoint.exported_from
    return record
