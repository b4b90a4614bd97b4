"""TensorBoard event files of a run, in its run folder's ``tensorboard/`` folder (the live
setting ``tensorboard``; it needs ``pip install tensorboard``).

Written at the iteration as the step (see :data:`SCALARS`): the training loss, learning rate,
gradient norm and speed of every iteration, every validation figure, and at every
generation round each clip as audio (``audio/clip_N``), the ground truth piece its
spectrogram is compared with (``audio/ground_truth``) and, for the first clips, the clip's
spectrogram beside the ground truth's (``spectrogram/clip_N``).

The writer is opened with ``purge_step`` at the session's first new iteration: events a
killed session wrote after the checkpoint a run continues from are discarded by TensorBoard,
so the curves go on with no step twice. Under torchrun only rank 0 writes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from samplernn_cli.config import LiveSettings
from samplernn_cli.errors import ConfigError, OutputError
from samplernn_cli.generation.ranking import median_distance
from samplernn_cli.pictures import MAX_CLIPS_DRAWN, spectrogram_pair

if TYPE_CHECKING:
    from samplernn_cli.generation.ranking import TakeScore

logger = logging.getLogger("samplernn")

INSTALL = "pip install tensorboard"
# The scalar tags, and what each holds.
SCALARS = {
    "bits_per_sample/train": "training NLL of the iteration, bits per sample",
    "bits_per_sample/validation": "validation NLL, bits per sample",
    "learning_rate": "Adam's learning rate in the iteration",
    "gradient_norm": "global gradient norm before clipping",
    "samples_per_second": "target samples trained on per second in the iteration",
}


def tensorboard_problem() -> str | None:
    """Why event files cannot be written in this installation (None: they can)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return f"TensorBoard is not installed: {INSTALL}, or leave it off (--no-tensorboard)"
    return None


def check_live_settings(settings: LiveSettings) -> None:
    """Refuse live settings that ask for TensorBoard where it is not installed.

    Raises:
        ConfigError: ``settings.tensorboard`` is on and TensorBoard cannot be imported.
    """
    if settings.tensorboard and (problem := tensorboard_problem()) is not None:
        raise ConfigError(problem)


class TensorBoardLog:
    """The event files of one run; closed (writing nothing) until :meth:`follow` opens it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._writer: Any = None  # torch.utils.tensorboard.SummaryWriter while open

    def follow(self, enabled: bool, iteration: int) -> None:
        """Open the writer (the run stands at ``iteration``) or close it, as the setting
        says.

        Raises:
            OutputError: the folder cannot be written.
        """
        if enabled and self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            try:
                # TensorBoard drops events at or after purge_step from earlier sessions.
                self._writer = SummaryWriter(log_dir=str(self.folder), purge_step=iteration + 1)
            except OSError as exc:
                raise OutputError(
                    f"cannot write TensorBoard event files to {self.folder}: {exc.strerror or exc}"
                ) from None
            logger.info(f"TensorBoard event files: {self.folder}")
        elif not enabled and self._writer is not None:
            self.close()
            logger.info("TensorBoard event files: off")

    def scalars(self, iteration: int, values: dict[str, float]) -> None:
        """Record ``values`` (tags of :data:`SCALARS`) at ``iteration``; non-finite values
        (a skipped step) are left out."""
        if self._writer is None:
            return
        for tag, value in values.items():
            if math.isfinite(value):
                self._writer.add_scalar(tag, value, iteration)

    def clips(
        self,
        iteration: int,
        clips: torch.Tensor,
        truth: torch.Tensor,
        sample_rate: int,
        *,
        labels: Sequence[str] | None = None,
    ) -> None:
        """The generation round at ``iteration``: every clip of ``clips`` (N, T) as audio,
        the ground truth ``truth`` (T,), and the first clips' spectrograms beside the ground
        truth's (titled with ``labels``, one per clip, when given)."""
        if self._writer is None:
            return
        self._writer.add_audio(
            "audio/ground_truth", truth[None], iteration, sample_rate=sample_rate
        )
        for number, clip in enumerate(clips, 1):
            self._writer.add_audio(
                f"audio/clip_{number}", clip.clamp(-1, 1)[None], iteration, sample_rate=sample_rate
            )
            if number <= MAX_CLIPS_DRAWN:
                title = f"clip {number}, iteration {iteration}"
                if labels:
                    title += f": {labels[number - 1]}"
                image = spectrogram_pair(clip, truth, sample_rate, title)
                self._writer.add_image(
                    f"spectrogram/clip_{number}", image, iteration, dataformats="HWC"
                )

    def scores(self, iteration: int, scores: Sequence[TakeScore]) -> None:
        """A round's clips' scores (best first): the median distance of the clips to the
        training audio, the best clip's bits per sample and the number of traps as scalars,
        and every clip's scores as a table."""
        if self._writer is None:
            return
        good = [s for s in scores if s.trap is None]
        distance = median_distance(list(scores))
        if math.isfinite(distance):
            self._writer.add_scalar("generation/distance", distance, iteration)
        if good:
            self._writer.add_scalar("generation/best_clip_bits", good[0].bits, iteration)
        self._writer.add_scalar("generation/traps", len(scores) - len(good), iteration)
        rows = [
            f"| {n} | {s.distance:.2f} | {s.bits:.3f} | {s.level_dbfs:.1f} | "
            f"{s.silent_share:.2f} | {s.loop_correlation:.2f} | {s.flatness:.3f} | "
            f"{s.trap or ''} |"
            for n, s in enumerate(scores, 1)
        ]
        header = ("| clip | distance | bits | level dBFS | silent | loop | flatness | trap |\n"
                  "|---|---|---|---|---|---|---|---|\n")  # fmt: skip
        self._writer.add_text("generation/scores", header + "\n".join(rows), iteration)

    def flush(self) -> None:
        """Put every event recorded so far on disk (before a checkpoint)."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
