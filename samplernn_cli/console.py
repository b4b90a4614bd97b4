"""Everything that draws on the terminal: the log handler and progress displays.

Status and progress go to stderr; stdout is kept for data (paths, JSON). On a terminal, Rich
draws a live progress bar with log messages above it; otherwise (a pipe, a file, a batch
job) there is one plain line every N iterations, and ``--quiet`` leaves only warnings and
errors.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, Progress, TaskID, TextColumn

if TYPE_CHECKING:  # the module itself must not import torch
    from samplernn_cli.train import TrainStatus

LOGGER_NAME = "samplernn"


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"warning: {message}"
        return message


def setup_logging(*, quiet: bool, rich_output: bool) -> Console | None:
    """Route the ``samplernn`` logger to stderr; returns the Rich console when there is one."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    console = None
    handler: logging.Handler
    if rich_output:
        console = Console(stderr=True)
        handler = RichHandler(
            console=console, show_path=False, markup=False, show_level=False, log_time_format="%X"
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PlainFormatter())
    logger.addHandler(handler)
    return console


def print_error(message: str) -> None:
    """One line on stderr (plain text: paths with brackets are not Rich markup)."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


def _format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _status_fields(status: TrainStatus) -> list[str]:
    total = f"/{status.total_iterations}" if status.total_iterations else ""
    parts = [
        f"iter {status.iteration}{total}",
        f"epoch {status.epoch}",
        f"train {status.loss:.3f} bits",
        "val " + ("-" if status.val_loss is None else f"{status.val_loss:.3f} bits"),
        f"{status.samples_per_s:,.0f} samples/s",
    ]
    if status.eta_seconds is not None:
        parts.append(f"ETA {_format_eta(status.eta_seconds)}")
    return parts


class TrainDisplay:
    """Progress for ``samplernn train``: a Rich bar, plain lines, or nothing.

    Use as a context manager; call the instance with each :class:`TrainStatus`.
    """

    def __init__(self, console: Console | None, *, quiet: bool, log_every: int) -> None:
        self.quiet = quiet
        self.log_every = log_every
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        if console is not None and not quiet:
            self.progress = Progress(
                TextColumn("[bold]training"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                console=console,
                transient=False,
            )

    def __enter__(self) -> TrainDisplay:
        if self.progress is not None:
            self.progress.start()
            self.task = self.progress.add_task("train", total=None, info="starting")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, status: TrainStatus) -> None:
        if self.quiet:
            return
        if self.progress is not None and self.task is not None:
            total = status.total_iterations
            self.progress.update(
                self.task,
                completed=status.iteration,
                total=total,
                info="  ".join(_status_fields(status)),
            )
            return
        first = status.iteration == status.start_iteration + 1
        if first or status.iteration % self.log_every == 0:
            sys.stderr.write(" | ".join(_status_fields(status)) + "\n")
            sys.stderr.flush()
