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

from samplernn_cli.checkpoint.reading import Checkpoint, load_checkpoint
from samplernn_cli.checkpoint.records import (
    EXPORT_FORMAT_VERSION,
    FORMAT,
    FORMAT_VERSION,
    RESUME_PROGRESS,
    TRAINING_FORMAT_VERSION,
    InputFile,
    Progress,
    TrainingSnapshot,
)
from samplernn_cli.checkpoint.writing import (
    provenance,
    save_checkpoint,
    save_export,
    write_payload,
)

__all__ = [
    "EXPORT_FORMAT_VERSION",
    "FORMAT",
    "FORMAT_VERSION",
    "RESUME_PROGRESS",
    "TRAINING_FORMAT_VERSION",
    "Checkpoint",
    "InputFile",
    "Progress",
    "TrainingSnapshot",
    "load_checkpoint",
    "provenance",
    "save_checkpoint",
    "save_export",
    "write_payload",
]
