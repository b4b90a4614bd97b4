"""Retention: a run folder's periodic checkpoints over a long run: which ones are there, the
newest complete one (what ``samplernn resume RUN_FOLDER`` continues from), keeping only the
newest N, and the disk space they take.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from samplernn_cli.checkpoint import Checkpoint, load_checkpoint
from samplernn_cli.config import LiveSettings, StopConditions
from samplernn_cli.errors import CheckpointError
from samplernn_cli.fileio import format_bytes
from samplernn_cli.run.folder import RunFolder

logger = logging.getLogger("samplernn")

# What a checkpoint holds per parameter: the weights and Adam's two moments (and the
# weights training goes on from, when ``model`` holds their average).
COPIES_PER_PARAMETER = 3


@dataclass(frozen=True)
class StoredCheckpoint:
    """One periodic checkpoint file of a run (``NAME_epoch_E_iter_I_model.pt``)."""

    path: Path
    run_name: str
    iteration: int


def periodic_checkpoints(folder: Path, run_name: str | None = None) -> list[StoredCheckpoint]:
    """The periodic checkpoints in ``folder`` (of run ``run_name`` only, when given), oldest
    first by iteration. The best model (``NAME_best_model.pt``) is not one of them."""
    found = []
    for path in folder.glob("*_model.pt"):
        parsed = RunFolder.parse(path.name)
        if parsed is None or parsed.kind != "checkpoint" or not path.is_file():
            continue
        if run_name is not None and parsed.run_name != run_name:
            continue
        found.append(StoredCheckpoint(path, parsed.run_name, parsed.iteration))
    return sorted(found, key=lambda stored: (stored.iteration, stored.path.name))


def newest_complete(folder: Path) -> Checkpoint:
    """The checkpoint ``samplernn resume RUN_FOLDER`` continues from: the run's periodic
    checkpoint of the highest iteration that loads completely; a newer one that does not
    (corrupt, truncated) is reported and passed over.

    Raises:
        CheckpointError: the folder holds no checkpoint, checkpoints of several runs, or
            none that can be resumed.
    """
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a run folder")
    stored = periodic_checkpoints(folder)
    names = sorted({s.run_name for s in stored})
    if len(names) > 1:
        if folder.name not in names:
            raise CheckpointError(
                f"{folder} holds checkpoints of several runs ({', '.join(names)}); "
                "resume one of its checkpoint files instead"
            )
        stored = [s for s in stored if s.run_name == folder.name]
    if not stored:
        raise CheckpointError(
            f"{folder} holds no checkpoint (NAME_epoch_E_iter_I_model.pt) to resume; a run "
            "writes its first one after checkpoint_every iterations or when it stops"
        )
    failures: list[str] = []
    for candidate in reversed(stored):
        try:
            checkpoint = load_checkpoint(candidate.path)
            checkpoint.require_training_state()
        except CheckpointError as exc:
            failures.append(str(exc))
            logger.warning(f"passing over {candidate.path.name}: {exc}")
            continue
        if failures:
            logger.warning(
                f"resuming from {candidate.path.name}, the newest complete checkpoint "
                f"({len(failures)} newer {'file' if len(failures) == 1 else 'files'} could not "
                "be used)"
            )
        return checkpoint
    raise CheckpointError(
        f"none of the {len(stored)} checkpoints in {folder} can be resumed (the newest: "
        f"{failures[0]})"
    )


def prune(
    run: RunFolder, keep: int, *, iteration: int, protected: Collection[Path] = ()
) -> list[Path]:
    """Delete the run's periodic checkpoints older than its newest ``keep`` (counting those
    up to ``iteration``; files of later iterations, left by an abandoned continuation, are
    not this session's to judge). ``protected`` files are never deleted. Call only after the
    newest checkpoint is completely written. Returns the deleted paths."""
    stored = [s for s in periodic_checkpoints(run.path, run.name) if s.iteration <= iteration]
    keep_always = {path.resolve() for path in protected}
    removed = []
    for old in stored[: max(0, len(stored) - keep)]:
        if old.path.resolve() in keep_always:
            continue
        try:
            old.path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.warning(f"cannot delete the old checkpoint {old.path.name}: {exc.strerror}")
            continue
        removed.append(old.path)
    return removed


def estimated_checkpoint_bytes(parameter_bytes: int, *, averaged: bool = False) -> int:
    """About how large a training checkpoint of a model is: its weights and Adam's two
    moments, and with ``averaged`` the weights' average too (the RNN state, RNG state and
    loss history add well under 1 % at the presets)."""
    return (COPIES_PER_PARAMETER + averaged) * parameter_bytes


def disk_plan(
    run: RunFolder,
    *,
    checkpoint_bytes: int,
    live: LiveSettings,
    stop: StopConditions,
    iteration: int,
    iterations_per_epoch: int,
) -> tuple[str, str | None]:
    """What the run's checkpoints will take, as a line to log, and a warning when the free
    space of the run folder's disk will not hold what the run writes before retention
    next deletes a checkpoint (or, keeping all, before the run's stop condition)."""
    size = format_bytes(checkpoint_bytes)
    free = shutil.disk_usage(run.path).free
    every = live.checkpoint_every
    if live.keep_checkpoints is not None:
        keep = live.keep_checkpoints
        existing = len([s for s in periodic_checkpoints(run.path, run.name)
                        if s.iteration <= iteration])  # fmt: skip
        # New periodic checkpoints until one is deleted (the newest is written before the
        # oldest goes), plus the best model (or, replacing it, its temporary copy).
        files = max(keep + 1 - existing, 1) + 1
        line = (
            f"checkpoints: about {size} each, {_every(every)}; keeping the newest "
            f"{keep} and the best model (up to {format_bytes((keep + 2) * checkpoint_bytes)})"
        )
        when = "before an old checkpoint is deleted"
    else:
        last = stop.max_iterations
        if stop.max_epochs is not None:
            by_epochs = stop.max_epochs * iterations_per_epoch
            last = by_epochs if last is None else min(last, by_epochs)
        if last is None:
            # No end in sight: at least the next checkpoint and the best model.
            files = 2
            fits = free // max(checkpoint_bytes, 1)
            line = (
                f"checkpoints: about {size} each, {_every(every)}, all kept (room for "
                f"about {fits} more on this disk; --keep-checkpoints N keeps only the newest N)"
            )
            when = "for its next checkpoint and best model"
        else:
            files = max(last // every - iteration // every, 0) + 2  # + the last one + best
            line = (
                f"checkpoints: about {size} each, {_every(every)}, all kept "
                f"({files} more files of up to {format_bytes(files * checkpoint_bytes)} by "
                f"iteration {last})"
            )
            when = f"by iteration {last}"
    needed = files * checkpoint_bytes
    warning = None
    if free < needed:
        warning = (
            f"the disk of {run.path} has {format_bytes(free)} free, less than the "
            f"{format_bytes(needed)} this run writes {when}; free some space"
            + (", or lower --keep-checkpoints" if live.keep_checkpoints else ", or pass "
               "--keep-checkpoints N to keep only the newest N checkpoints")
        )  # fmt: skip
    return line, warning


def _every(iterations: int) -> str:
    return "every iteration" if iterations == 1 else f"every {iterations} iterations"
