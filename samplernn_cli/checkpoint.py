"""Versioned, self-describing checkpoints: atomic save and safe load.

A checkpoint is a ``torch.save`` of a dict holding only tensors and plain data (str, int,
float, bool, None, lists, dicts), so it loads with ``torch.load(weights_only=True)``:
loading never runs code from the file. It carries everything needed to generate without the
training data and to resume training exactly: the configs, the sample rate, the weights, the
optimizer state, the RNG state, the position in the data plan, the carried RNN state and the
loss history.
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from samplernn_cli import __version__
from samplernn_cli.config import AudioConfig, LiveSettings, ModelConfig, TrainConfig
from samplernn_cli.errors import CheckpointError, ConfigError, OutputError
from samplernn_cli.fileio import atomic_write
from samplernn_cli.model import SampleRNN

FORMAT = "samplernn-cli checkpoint"
FORMAT_VERSION = 1
LEGACY_MODEL_SETTINGS = {"skip_connections": False, "weight_norm": False, "learn_h0": False}


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus the format header) to ``path`` atomically.

    Raises:
        OutputError: the file could not be written; nothing is left under ``path``.
    """
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        **payload,
    }

    try:
        atomic_write(path, lambda handle: torch.save(payload, handle), what="checkpoint")
    except RuntimeError as exc:  # torch's zip writer reports some I/O failures this way
        raise OutputError(f"cannot write checkpoint {path}: {exc}") from None


@dataclass(frozen=True)
class Checkpoint:
    """A loaded, validated checkpoint."""

    path: Path
    payload: dict[str, Any]
    model_config: ModelConfig
    audio: AudioConfig
    train: TrainConfig
    live: LiveSettings
    sample_rate: int

    @property
    def iteration(self) -> int:
        return int(self.payload["progress"]["iteration"])

    @property
    def epoch(self) -> int:
        return int(self.payload["progress"]["epoch"])

    def build_model(self, device: torch.device | str = "cpu") -> SampleRNN:
        """The network with this checkpoint's weights, on ``device``, in eval mode."""
        model = SampleRNN(self.model_config)
        try:
            model.load_state_dict(self.payload["model"])
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
        # checkpoints written before them.
        model_config = ModelConfig.from_dict({**LEGACY_MODEL_SETTINGS, **payload["model_config"]})
        model_config.validate()
        audio = AudioConfig.from_dict(payload["audio"])
        train = TrainConfig.from_dict(payload["train"])
        live = LiveSettings.from_dict(payload["live"])
        sample_rate = int(payload["sample_rate"])
        progress = payload["progress"]
        int(progress["iteration"]), int(progress["epoch"])
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
    )


def _downsample(values: list[float], points: int) -> list[tuple[int, float]]:
    """(iteration, mean value) over ``points`` equal buckets of a per-iteration series."""
    finite = [(i + 1, v) for i, v in enumerate(values) if math.isfinite(v)]
    if len(finite) <= points:
        return finite
    size = len(finite) / points
    out = []
    for bucket in range(points):
        part = finite[int(bucket * size) : int((bucket + 1) * size)]
        out.append((part[-1][0], sum(v for _, v in part) / len(part)))
    return out


def checkpoint_inputs(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The input files a checkpoint records (checkpoints of single-file runs record one file
    directly under "input")."""
    source = payload.get("input", {})
    if not isinstance(source, dict):
        return []
    if "files" in source:
        return [f for f in source["files"] if isinstance(f, dict)]
    return [source] if "path" in source else []


def summarize(checkpoint: Checkpoint, curve_points: int = 40) -> dict[str, Any]:
    """Every fact ``samplernn inspect-checkpoint`` shows, as JSON-ready data."""
    payload = checkpoint.payload
    config = checkpoint.model_config
    model_state = payload["model"]
    parts: dict[str, int] = {}
    for name, tensor in model_state.items():
        if name.startswith("frame_tiers."):
            index = int(name.split(".")[1])
            size = config.tier_frame_samples[index]
            part = f"frame tier {index + 1} ({size}-sample frames)"
        else:
            part = "sample tier (MLP)"
        parts[part] = parts.get(part, 0) + int(tensor.numel())
    progress = payload["progress"]
    history = payload.get("history", {})
    losses = history["loss"].tolist() if "loss" in history else []
    val_iterations = history["val_iteration"].tolist() if "val_iteration" in history else []
    val_losses = history["val_loss"].tolist() if "val_loss" in history else []
    finite = [(i + 1, v) for i, v in enumerate(losses) if math.isfinite(v)]
    vals = list(zip(val_iterations, val_losses, strict=True))
    best_loss = min(finite, key=lambda item: item[1]) if finite else None
    best_val = min(vals, key=lambda item: item[1]) if vals else None
    optimizer = payload.get("optimizer", {}).get("param_groups", [{}])[0]
    train = checkpoint.train
    rate = checkpoint.sample_rate
    files = [
        {
            "name": entry.get("name"),
            "path": entry.get("path"),
            "duration_s": entry.get("duration_s"),
            "sample_rate": entry.get("sample_rate"),
            "channels": entry.get("channels"),
            "format": entry.get("format"),
            "subtype": entry.get("subtype"),
            "gain_db": 20 * math.log10(entry["gain"]) if entry.get("gain") else None,
            "train_seconds": entry.get("train_samples", 0) / rate,
            "val_seconds": entry.get("val_samples", 0) / rate,
        }
        for entry in checkpoint_inputs(payload)
    ]
    return {
        "path": str(checkpoint.path),
        "file_size_bytes": checkpoint.path.stat().st_size,
        "format": payload["format"],
        "format_version": payload["format_version"],
        "package_version": payload.get("package_version"),
        "created": payload.get("created"),
        "run_name": payload.get("run_name"),
        "model": {
            "description": config.describe(),
            **config.to_dict(),
            "tiers": config.num_tiers,
            "tier_frame_samples": list(config.tier_frame_samples),
            "parameters": sum(parts.values()),
            "parameters_by_part": parts,
        },
        "quantizer": {"kind": config.quantizer, "levels": config.q_levels},
        "sample_rate": rate,
        "training": {
            "iteration": checkpoint.iteration,
            "epoch": checkpoint.epoch,
            "iterations_per_epoch": progress.get("iterations_per_epoch"),
            "training_seconds": progress.get("training_seconds"),
            **train.to_dict(),
            "chunk_samples": train.chunk_length(config),
        },
        "optimizer": {
            "name": "Adam",
            "learning_rate": optimizer.get("lr"),
            "betas": list(optimizer.get("betas", ())),
            "eps": optimizer.get("eps"),
            "weight_decay": optimizer.get("weight_decay"),
            "grad_clip": train.grad_clip,
        },
        "losses": {
            "unit": "bits per sample",
            "last_loss": finite[-1][1] if finite else None,
            "last_loss_iteration": finite[-1][0] if finite else None,
            "best_loss": None if best_loss is None else best_loss[1],
            "best_loss_iteration": None if best_loss is None else best_loss[0],
            "last_val_loss": vals[-1][1] if vals else None,
            "last_val_iteration": vals[-1][0] if vals else None,
            "best_val_loss": None if best_val is None else best_val[1],
            "best_val_iteration": None if best_val is None else best_val[0],
        },
        "input": {
            "files": files,
            "count": len(files),
            "duration_s": sum(f["duration_s"] or 0.0 for f in files),
            "train_seconds": sum(f["train_seconds"] for f in files),
            "val_seconds": sum(f["val_seconds"] for f in files),
            "val_split": train.val_split,
        },
        "audio": checkpoint.audio.to_dict(),
        "live": checkpoint.live.to_dict(),
        "environment": payload.get("environment", {}),
        "loss_curve": [list(point) for point in _downsample(losses, curve_points)],
        "val_curve": [list(point) for point in vals],
    }
