"""Writing a checkpoint: training checkpoints (:func:`save_checkpoint`), exports
(:func:`save_export`) and files of any content for tools and tests (:func:`write_payload`),
each atomically; :func:`provenance` is what a file made from another records about it."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from samplernn_cli import __version__
from samplernn_cli.checkpoint.reading import Checkpoint
from samplernn_cli.checkpoint.records import (
    EXPORT_FORMAT_VERSION,
    FORMAT,
    TRAINING_FORMAT_VERSION,
    TrainingSnapshot,
)
from samplernn_cli.errors import OutputError
from samplernn_cli.fileio import atomic_write, file_sha256


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
