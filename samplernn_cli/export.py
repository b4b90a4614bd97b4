"""``samplernn export``: an inference-only model file from a checkpoint.

A training checkpoint carries what resuming needs: Adam's two moment estimates per weight
(twice the weights again), the weights training goes on from when ``model`` holds their
average (once more), the RNG state, the carried RNN state and the loss history. An
export keeps what generating, scoring and fine-tuning need: the weights (optionally in half
precision), the model, quantizer, audio and training settings, the figures of the run and
where the file came from. It is the same kind of file as a checkpoint (loads with
``torch.load(weights_only=True)``, read by :func:`samplernn_cli.checkpoint.load_checkpoint`),
marked ``"kind": "export"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from samplernn_cli.checkpoint import load_checkpoint, save_export
from samplernn_cli.errors import OutputError

# --half names -> the floating-point type the weights are stored in.
HALF_TYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class ExportResult:
    path: Path
    size_bytes: int
    source_size_bytes: int
    weights_dtype: str  # "float32", "float16" or "bfloat16"

    @property
    def ratio(self) -> float:
        """The export's size as a fraction of the checkpoint's."""
        return self.size_bytes / self.source_size_bytes


def check_target(source: Path, target: Path, *, force: bool, example: str) -> None:
    """Raise OutputError unless ``target`` may be written from ``source``."""
    if target.exists() and target.resolve() == source.resolve():
        raise OutputError(f"{target} is the checkpoint being exported; choose another -o file")
    if target.is_dir():
        raise OutputError(f"{target} is a directory; give a file name such as {example}")
    if target.exists() and not force:
        raise OutputError(f"{target} already exists; pass --force to replace it")
    if not target.parent.is_dir():
        raise OutputError(f"cannot write {target}: folder {target.parent} does not exist")


def export_model(
    source: Path, target: Path, *, half: str | None = None, force: bool = False
) -> ExportResult:
    """Write the inference-only file ``target`` from the checkpoint (or export) ``source``,
    atomically: a temp file renamed into place, so ``target`` is never left half-written.

    Args:
        half: None keeps float32 weights; "float16" or "bfloat16" halves their size (the
            model computes in float32 either way: the weights are widened when loaded).
        force: replace an existing ``target``.

    Raises:
        CheckpointError: ``source`` is not a usable checkpoint.
        OutputError: ``target`` exists (without ``force``), is ``source`` itself, or cannot
            be written.
    """
    if half is not None and half not in HALF_TYPES:
        raise ValueError(f"unknown half-precision type {half!r}")
    checkpoint = load_checkpoint(source)
    check_target(source, target, force=force, example="model.pt")
    dtype = HALF_TYPES[half] if half is not None else torch.float32
    save_export(target, checkpoint, dtype=dtype, overwrite=force)
    return ExportResult(
        path=target,
        size_bytes=target.stat().st_size,
        source_size_bytes=source.stat().st_size,
        weights_dtype=str(dtype).removeprefix("torch."),
    )
