"""A run's generation rounds: every ``generate_every`` iterations, rank 0 generates
``num_generated`` clips with the model as it stands (its averaged weights, when the run
averages them), ranks them as ``generate --candidates`` does (traps last, the rest by their
distance to the training audio: :mod:`samplernn_cli.generation.ranking`), writes them best
first as ``NAME_epoch_E_iter_I_N.wav``, draws the round's picture (``NAME_epoch_E_iter_I.png``:
the loss curves and the clips' spectrograms, with their scores, beside the training audio's),
hands the clips and their scores to TensorBoard and keeps the scores in the run state (for
the next checkpoint). A round whose clips are all traps is reported with a warning.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from samplernn_cli.audio import write_audio
from samplernn_cli.config import LiveSettings
from samplernn_cli.config.generation import QUIET_BOOST
from samplernn_cli.data.cache import Dataset
from samplernn_cli.data.split import DataSplit
from samplernn_cli.distance import Reference
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.generation.quiet import QuietGuard
from samplernn_cli.generation.ranking import (
    TakeScore,
    describe_traps,
    median_distance,
    rank,
    score_takes,
)
from samplernn_cli.generation.sampling import GenerationStopped
from samplernn_cli.history import LossHistory
from samplernn_cli.model import SampleRNN
from samplernn_cli.pictures import save_round_picture
from samplernn_cli.quantize import Quantizer
from samplernn_cli.run.artifacts import format_seconds
from samplernn_cli.run.folder import RunFolder
from samplernn_cli.run.tensorboard_log import TensorBoardLog
from samplernn_cli.seeding import mix_seed
from samplernn_cli.training.state import RunState, Session, averaged

logger = logging.getLogger("samplernn")

# The ground truth of a round's picture: the loudest clip-long piece of the first training
# part's first this many seconds (the same piece every round, so rounds compare).
TRUTH_SEARCH_SECONDS = 60.0


class GenerationRounds:
    """The generation rounds of a session (rank 0 runs them)."""

    def __init__(
        self,
        session: Session,
        *,
        board: TensorBoardLog,
        should_stop: Callable[[], bool],
        level_dbfs: float | None = None,
        reference: Reference | None = None,
    ) -> None:
        """``session``: the model (its weight average, when the run keeps one, makes the
        clips), the run folder and the data; each round's clips draw from the run's seed
        mixed with the iteration; ``should_stop``: polled while the clips are made (a signal
        cuts the round short); ``level_dbfs``: the training audio's level, for the silence
        rule; ``reference``: its statistics, for the distance and the quiet rule (None: not
        measured)."""
        self.model, self.run = session.model, session.run
        self.dataset, self.split = session.dataset, session.split
        self.seed = session.request.train.seed
        self.average = session.average
        self.board = board
        self.should_stop = should_stop
        self.level_dbfs = level_dbfs
        self.reference = reference

    def generate(self, state: RunState, live: LiveSettings) -> None:
        """The round at ``state.iteration``, with the live settings' length, number of clips
        and temperature."""
        with averaged(self.average):
            clips = generate_clips(
                self.model,
                self.run,
                live,
                sample_rate=self.dataset.sample_rate,
                seed=mix_seed(self.seed, state.iteration),
                epoch=state.last_epoch,
                iteration=state.iteration,
                should_stop=self.should_stop,
                level_dbfs=self.level_dbfs,
                reference=self.reference,
            )
        if clips is None:
            return
        state.last_round = {"iteration": clips.iteration,
                            "takes": [s.to_dict() for s in clips.scores]}  # fmt: skip
        rate = self.dataset.sample_rate
        truth = training_piece(self.dataset, self.split, self.model.quantizer, clips.audio.shape[1])
        write_round_picture(self.run, clips, truth, sample_rate=rate, history=state.history)
        self.board.clips(clips.iteration, clips.audio, truth, rate, labels=clips.labels)
        self.board.scores(clips.iteration, clips.scores)


@dataclass(frozen=True)
class GeneratedClips:
    """The clips of one generation round (written to their files), best first: their audio
    (N, T) and scores."""

    audio: torch.Tensor
    iteration: int
    epoch: int
    scores: list[TakeScore]

    @property
    def labels(self) -> list[str]:
        """Each clip's score in a few words: "distance 1.84, 3.12 bits", "quiet (distance
        9.20, 2.10 bits)", or without a distance "3.12 bits"."""
        return [describe_take(s) for s in self.scores]


def describe_take(score: TakeScore) -> str:
    """A take's scores in a few words: "distance 1.84, 3.12 bits" ("3.12 bits" where no
    distance was measured), within "silence (...)" for a trap."""
    words = f"{score.bits:.2f} bits"
    if not math.isnan(score.distance):
        words = f"distance {score.distance:.2f}, {words}"
    return f"{score.trap} ({words})" if score.trap else words


def generate_clips(
    model: SampleRNN,
    folder: RunFolder,
    live: LiveSettings,
    *,
    sample_rate: int,
    seed: int,
    epoch: int,
    iteration: int,
    should_stop: Callable[[], bool],
    level_dbfs: float | None = None,
    reference: Reference | None = None,
) -> GeneratedClips | None:
    """The ``num_generated`` clips of a generation round, ranked and written best first as
    ``NAME_epoch_E_iter_I_N.wav`` (None if ``should_stop`` fires while they are made).
    ``level_dbfs``, ``reference``: the training audio's level and statistics (see
    :class:`GenerationRounds`)."""
    num_samples = max(1, round(live.length * sample_rate))
    started = time.perf_counter()
    model.eval()
    try:
        takes = generate_takes(
            model,
            live.num_generated,
            num_samples,
            temperature=live.temperature,
            precision="auto",
            seed=seed,
            progress=lambda done, total: should_stop(),
            guard=QuietGuard.for_recording(level_dbfs, sample_rate, QUIET_BOOST, reference),
        )
    except GenerationStopped:
        logger.warning("generation of clips interrupted")
        return None
    finally:
        model.train()
    audio = model.quantizer.decode(takes.codes.cpu())
    scores = rank(score_takes(audio, takes.bits_per_sample, sample_rate, level_dbfs, reference))
    audio = audio[[s.take - 1 for s in scores]]
    paths = []
    for number in range(live.num_generated):
        path = folder.clip(epoch, iteration, number + 1)
        paths.append(write_audio(path, audio[number], sample_rate))
    seconds = time.perf_counter() - started
    rate = live.num_generated * num_samples / seconds
    good = [s for s in scores if s.trap is None]
    best = f"best: {describe_take(good[0])}" if good else "no clip worth keeping"
    median = median_distance(scores)
    if not math.isnan(median):
        best = f"median distance {median:.2f}, {best}"
    logger.info(
        f"generated {live.num_generated} clips of {live.length:g} s in "
        f"{format_seconds(seconds)} ({rate:,.0f} samples/s), {best}: {paths[0].name} ..."
    )
    if not good:
        logger.warning(
            f"round at iteration {iteration}: {live.num_generated} of {live.num_generated} "
            f"clips are traps ({describe_traps(scores)})"
        )
    return GeneratedClips(audio=audio, iteration=iteration, epoch=epoch, scores=scores)


def training_piece(
    dataset: Dataset, split: DataSplit, quantizer: Quantizer, samples: int
) -> torch.Tensor:
    """(T,) float: the loudest ``samples``-long piece (by RMS, at multiples of its length) of
    the first :data:`TRUTH_SEARCH_SECONDS` of the first training part, as the model hears it
    (quantized); shorter when the training part is."""
    segment = split.train[0]
    span = min(segment.length, max(samples, round(TRUTH_SEARCH_SECONDS * dataset.sample_rate)))
    codes = dataset.files[segment.file].codes[segment.start : segment.start + span]
    audio = quantizer.decode(torch.from_numpy(np.array(codes, dtype=np.int64)))
    pieces = audio.numel() // samples
    if pieces <= 1:
        return audio[:samples]
    loudest = int(audio[: pieces * samples].reshape(pieces, samples).square().mean(1).argmax())
    return audio[loudest * samples : (loudest + 1) * samples]


def write_round_picture(
    folder: RunFolder,
    clips: GeneratedClips,
    truth: torch.Tensor,
    *,
    sample_rate: int,
    history: LossHistory,
) -> Path:
    """``NAME_epoch_E_iter_I.png``: the loss curves so far and the spectrograms of the
    round's clips beside the training audio's ``truth`` (T,)."""
    path = save_round_picture(
        folder.picture(clips.epoch, clips.iteration),
        clips=clips.audio,
        labels=clips.labels,
        truth=truth,
        sample_rate=sample_rate,
        history=history,
        heading=f"{folder.name}: iteration {clips.iteration}, epoch {clips.epoch}",
    )
    logger.info(f"picture: {path.name}")
    return path
