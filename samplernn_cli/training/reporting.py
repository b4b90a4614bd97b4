"""What a session reports after every iteration: a :class:`TrainStatus` to the progress
callback, a row of ``NAME_losses.csv`` (:class:`LossLog`) and TensorBoard's scalars (rank 0
alone reports)."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import statistics
import time
from collections.abc import Iterable
from pathlib import Path

from samplernn_cli.config import StopConditions
from samplernn_cli.errors import OutputError
from samplernn_cli.fileio import atomic_write
from samplernn_cli.run.folder import RunFolder
from samplernn_cli.run.tensorboard_log import TensorBoardLog
from samplernn_cli.training.requests import ProgressCallback, TrainStatus
from samplernn_cli.training.state import RunState

logger = logging.getLogger("samplernn")
# On a CPU, a model slower than this many seconds per 1,000 iterations gets a warning at the
# start (the default size on a 2-core CPU: about ten hours): a useful model takes a few
# thousand iterations.
SLOW_CPU_SECONDS_PER_1000 = 3600.0
# The steps of a session timed for that warning: the three after the first (warm-up) one.
PACE_STEPS = range(2, 5)

LOSS_COLUMNS = ("iter", "loss", "epoch", "elapsed_s", "val_loss", "samples_per_s")
# iter, loss (bits), epoch, elapsed seconds, validation loss (bits) or None, samples/s
LossRow = tuple[int, float, int, float, float | None, float]


class LossLog:
    """``NAME_losses.csv``: one row per iteration, appended and flushed as training goes.

    Columns: ``iter`` (iteration number), ``loss`` (training NLL, bits per sample), ``epoch``,
    ``elapsed_s`` (training wall-clock seconds, summed over sessions), ``val_loss``
    (validation NLL in bits per sample, empty where not measured), ``samples_per_s``
    (target samples per second of that iteration).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: io.TextIOWrapper | None = None

    def open(self, rows: Iterable[LossRow] = ()) -> None:
        """Start the file with ``rows`` (the history when resuming), then open it for
        appending. Whatever the file held before is replaced, partial lines included."""
        text = ",".join(LOSS_COLUMNS) + "\n" + "".join(_format_row(row) for row in rows)
        atomic_write(self.path, lambda handle: handle.write(text.encode("utf-8")))
        try:
            self._handle = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def append(self, row: LossRow) -> None:
        if self._handle is None:
            raise RuntimeError("LossLog.append before open")
        try:
            self._handle.write(_format_row(row))
            self._handle.flush()
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None


def _format_row(row: LossRow) -> str:
    iteration, loss, epoch, elapsed, val_loss, samples_per_s = row
    val = "" if val_loss is None else _number(val_loss, 6)
    return f"{iteration},{_number(loss, 6)},{epoch},{elapsed:.3f},{val},{samples_per_s:.1f}\n"


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


class Reporter:
    """The session's progress callback, loss log and TensorBoard event files."""

    def __init__(
        self,
        run: RunFolder,
        progress: ProgressCallback | None,
        conditions: StopConditions,
        iterations_per_epoch: int,
        *,
        is_main: bool,
        on_cpu: bool = False,
    ) -> None:
        """``conditions``: the session's stop conditions (where the progress bar ends);
        ``iterations_per_epoch``: of the data plan; ``on_cpu``: training runs on the CPU
        (a model too slow for it gets a warning)."""
        self.on_cpu = on_cpu
        self.pace: list[float] = []  # seconds of the steps in PACE_STEPS
        self.progress = progress
        self.conditions = conditions
        self.iterations_per_epoch = iterations_per_epoch
        self.is_main = is_main
        self.loss_log = LossLog(run.losses_csv)  # the session opens it
        self.board = TensorBoardLog(run.tensorboard)  # rank 0 opens it

    def iteration(
        self,
        state: RunState,
        bits: float,
        val: float | None,
        samples_per_s: float,
        *,
        learning_rate: float,
        grad_norm: float,
        started: float,
        first: int,
        step_seconds: float = 0.0,
    ) -> None:
        """Report the iteration ``state`` has just counted: its loss ``bits``, the
        validation figure measured after it (None: none), its speed and the step's learning
        rate, gradient norm and time. ``started``: ``time.monotonic()`` when the session's
        loop began at iteration ``first``."""
        if not self.is_main:
            return
        if self.on_cpu and state.iteration - first in PACE_STEPS:
            self._check_pace(step_seconds)
        self.loss_log.append(
            (state.iteration, bits, state.last_epoch, state.training_seconds, val, samples_per_s)
        )
        self.board.scalars(
            state.iteration,
            {
                "bits_per_sample/train": bits,
                "learning_rate": learning_rate,
                "gradient_norm": grad_norm,
                "samples_per_second": samples_per_s,
            },
        )
        if self.progress is None:
            return
        last_val = state.history.last_val
        conditions, per_epoch = self.conditions, self.iterations_per_epoch
        self.progress(
            TrainStatus(
                iteration=state.iteration,
                epoch=state.last_epoch,
                loss=bits,
                val_loss=None if last_val is None else last_val[1],
                samples_per_s=samples_per_s,
                start_iteration=first,
                total_iterations=conditions.total_iterations(per_epoch),
                eta_seconds=conditions.eta(
                    state.iteration,
                    per_epoch,
                    time.monotonic() - started,
                    state.iteration - first,
                ),
            )
        )

    def _check_pace(self, step_seconds: float) -> None:
        """Warn once when the first steps say this model is too slow for this CPU."""
        self.pace.append(step_seconds)
        if len(self.pace) != len(PACE_STEPS):
            return
        per_1000 = 1000 * statistics.median(self.pace)
        if per_1000 > SLOW_CPU_SECONDS_PER_1000:
            logger.warning(
                f"on this CPU, 1,000 iterations of this model take about {per_1000:,.0f} s "
                f"({per_1000 / 3600:.1f} h), and a useful model takes a few thousand: "
                "--preset small trains in minutes on a CPU, or train this size on a GPU "
                "(--device cuda or mps)"
            )
