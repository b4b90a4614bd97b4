"""What ``samplernn inspect-checkpoint`` shows about a checkpoint or an exported model, as
JSON-ready data read through :class:`samplernn_cli.checkpoint.Checkpoint`."""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any

import torch

from samplernn_cli.checkpoint import Checkpoint
from samplernn_cli.history import LossSummary


def _downsample(finite: list[tuple[int, float]], points: int) -> list[tuple[int, float]]:
    """(iteration, mean value) over ``points`` equal buckets of (iteration, value) pairs."""
    if len(finite) <= points:
        return finite
    size = len(finite) / points
    out = []
    for bucket in range(points):
        part = finite[int(bucket * size) : int((bucket + 1) * size)]
        out.append((part[-1][0], sum(v for _, v in part) / len(part)))
    return out


def _weights_dtype(weights: dict[str, torch.Tensor]) -> str:
    """The floating-point type of the weights ("float32", "float16", "bfloat16")."""
    kinds = {str(t.dtype).removeprefix("torch.") for t in weights.values() if t.is_floating_point()}
    return "/".join(sorted(kinds)) or "none"


def _last_round(checkpoint: Checkpoint) -> dict[str, Any] | None:
    """The last generation round's iteration, the median distance of its clips to the
    training audio, its trap count and each clip's scores (best first); None before one."""
    stored = checkpoint.last_round
    if stored is None:
        return None
    takes = [t for t in stored.get("takes", []) if isinstance(t, dict)]
    distances = [t.get("distance") for t in takes]
    distances = [d for d in distances if isinstance(d, (int, float)) and not math.isnan(d)]
    return {
        "iteration": stored.get("iteration"),
        "median_distance": float(statistics.median(distances)) if distances else None,
        "traps": sum(1 for t in takes if t.get("trap")),
        "takes": takes,
    }


def summarize(checkpoint: Checkpoint, curve_points: int = 40) -> dict[str, Any]:
    """Every fact ``samplernn inspect-checkpoint`` shows, as JSON-ready data."""
    written = checkpoint.written
    config = checkpoint.model_config
    parts: dict[str, int] = {}
    for name, tensor in checkpoint.weights.items():
        if name.startswith("frame_tiers."):
            index = int(name.split(".")[1])
            size = config.tier_frame_samples[index]
            part = f"frame tier {index + 1} ({size}-sample frames)"
        else:
            part = "sample tier (MLP)"
        parts[part] = parts.get(part, 0) + int(tensor.numel())
    progress = checkpoint.progress
    history = checkpoint.history
    losses = history.summary()
    if checkpoint.is_export:  # no history: the figures stored with it
        stored = checkpoint.stored_summary
        losses = LossSummary(
            **{f.name: stored.get(f.name) for f in dataclasses.fields(LossSummary)}
        )
        if losses.last_loss is not None:  # the last loss is the checkpoint's iteration's
            losses = dataclasses.replace(losses, last_loss_iteration=checkpoint.iteration)
    optimizer = (checkpoint.optimizer_state or {}).get("param_groups", [{}])[0]
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
        for entry in checkpoint.input_files
    ]
    return {
        "path": str(checkpoint.path),
        "file_size_bytes": checkpoint.path.stat().st_size,
        "format": written["format"],
        "format_version": written["format_version"],
        "package_version": written["package_version"],
        "created": written["created"],
        "run_name": written["run_name"],
        "kind": "export" if checkpoint.is_export else "training",
        "weights_dtype": _weights_dtype(checkpoint.weights),
        "parent": checkpoint.parent,
        "exported_from": checkpoint.exported_from,
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
            "iterations_per_epoch": progress.iterations_per_epoch,
            "training_seconds": progress.training_seconds,
            **train.to_dict(),
            "chunk_samples": train.chunk_length(config),
        },
        "optimizer": None
        if checkpoint.optimizer_state is None
        else {
            "name": "Adam",
            "learning_rate": optimizer.get("lr"),
            "betas": list(optimizer.get("betas", ())),
            "eps": optimizer.get("eps"),
            "weight_decay": optimizer.get("weight_decay"),
            "grad_clip": train.grad_clip,
        },
        "losses": {"unit": "bits per sample", **dataclasses.asdict(losses)},
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
        "environment": written["environment"],
        "last_round": _last_round(checkpoint),
        "loss_curve": [list(p) for p in _downsample(history.finite_losses(), curve_points)],
        "val_curve": [list(point) for point in history.validations],
    }
