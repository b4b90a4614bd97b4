"""Which generated takes are worth keeping: traps are rejected, the rest ranked by how close
they sound to the recording the model learned.

A take's score is its distance to the recording (:mod:`samplernn_cli.distance`: 1 is as
close as the recording's own pieces of that length are to the rest of it; lower is closer),
measured against the reference statistics the checkpoint keeps. Checkpoints written before
the distance existed have none, and their takes are ranked by the model's mean bits per
sample of the samples it drew (lower: more likely), which is also recorded for every take.
Before ranking, four kinds of take that a good score does not make good are rejected:

- **silence**: the take far below the training audio's level, or nearly all of it;
- **quiet**: the take well below the quietest of the recording's own pieces as long, or
  with far more near-silent frames than they have (what a model that has not learned to
  leave the silence generation starts from makes: a crackle or a hiss under the level);
- **a loop**: the take repeats itself, a strong autocorrelation at one lag over the whole
  take (a stuck pattern, or a drone that never changes);
- **noise**: a spectrum near white noise's flatness (what an untrained or diverged model
  makes).

The thresholds below were measured on takes of trained models and on pieces of their
training audio, and each lies well outside everything measured on the audio
(``python benchmarks/ranking.py`` and ``python benchmarks/distance_probes.py`` print the
figures).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from samplernn_cli.clip_stats import QUIET_FRAME_DB, level_dbfs, quiet_share, spectral_stats
from samplernn_cli.distance import Reference

# Silence: a take whose RMS level is more than SILENT_DB below the training audio's (with no
# training level recorded, below SILENT_FLOOR_DBFS), or whose 64 ms frames are nearly all
# (more than SILENT_SHARE) more than QUIET_FRAME_DB below it. Measured on 4 s pieces: of the
# training audio, the quietest piano piece (the final chord's decay, which counts as silence)
# lies 32.6 dB below its training level, the next 27.7 dB, speech's 2.7 dB, and at most 0.68
# (piano) and 0.31 (speech) of their
# frames are quiet; trained models' takes at temperature 1 lie at most 15 dB below; speech
# takes at temperature 0.9 that sound like silence with faint hiss lie 33 to 42 dB below.
SILENT_DB = 30.0
SILENT_FLOOR_DBFS = -60.0
SILENT_SHARE = 0.9
# Quiet: with the recording's reference statistics, a take whose level lies more than
# QUIET_MARGIN_DB below the 10th percentile of the levels of the recording's pieces as long
# (Reference.piece_limits), or whose share of near-silent frames exceeds the 90th
# percentile of theirs by more than QUIET_SHARE_MARGIN.
QUIET_MARGIN_DB = 10.0
QUIET_SHARE_MARGIN = 0.3
# A loop: the take's normalised autocorrelation reaches LOOP_CORRELATION at some lag between
# LOOP_MIN_SECONDS and half the take (lags this long are past any pitch period, so a note's
# own periodicity only counts when it never changes). The piano piece's repeated figures
# reach 0.82 at most on 4 s pieces, speech 0.17, trained models' takes 0.21; a phrase,
# a burst or a tone repeated unchanged reach 0.99 and more.
LOOP_CORRELATION = 0.9
LOOP_MIN_SECONDS = 0.05
# Noise: white noise's flatness by clip_stats.spectral_stats is 0.56; the training audio's
# 4 s pieces reach 0.068 (piano) and 0.054 (speech), trained models' takes at temperature 1
# 0.034 (piano) and 0.335 (speech from a short run: breathy, but speech).
NOISE_FLATNESS = 0.45
# With the recording's reference statistics, a recording whose own pieces are that flat
# (rain, wind, a cymbal wash) raises the bar: noise is NOISE_MARGIN flatter than the 90th
# percentile of the flatness of its pieces as long.
NOISE_MARGIN = 0.2

TRAPS = ("silence", "quiet", "loop", "noise")


@dataclass(frozen=True)
class TakeScore:
    """What was measured of one take, and whether it is a trap."""

    take: int  # 1-based, in the order the takes were generated
    bits: float  # the model's mean bits per sample of the take (lower: more likely)
    # The distance to the recording (distance.Reference.distance; lower is closer); NaN
    # where the checkpoint keeps no reference or the take is too short to measure.
    distance: float
    level_dbfs: float
    silent_share: float  # share of 64 ms frames far below the training audio's level
    loop_correlation: float  # the largest autocorrelation at a lag of 50 ms or more
    flatness: float
    trap: str | None  # one of TRAPS, or None

    def to_dict(self) -> dict[str, object]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def silent_share(audio: np.ndarray, rate: int, reference_dbfs: float | None) -> float:
    """Share of the take's 64 ms frames far below ``reference_dbfs`` (the training audio's
    level; None: an absolute floor alone)."""
    floor = SILENT_FLOOR_DBFS if reference_dbfs is None else reference_dbfs - QUIET_FRAME_DB
    return quiet_share(audio, rate, floor)


def loop_correlation(audio: np.ndarray, rate: int) -> float:
    """The largest normalised autocorrelation of the take at a lag from
    :data:`LOOP_MIN_SECONDS` to half its length (0 for a take too short to tell)."""
    signal = torch.as_tensor(audio, dtype=torch.float64)
    signal = signal - signal.mean()
    n = signal.numel()
    low = max(1, round(LOOP_MIN_SECONDS * rate))
    high = n // 2
    if high <= low:
        return 0.0
    # Autocorrelation by FFT (zero-padded: no wrap-around), normalised at each lag by the
    # energies of the two overlapping parts, so a lag of half the take counts fully.
    spectrum = torch.fft.rfft(signal, 2 * n)
    correlation = torch.fft.irfft(spectrum.abs().square(), 2 * n)[: high + 1]
    energy = torch.cumsum(signal.square(), 0)
    total = energy[-1]
    lags = torch.arange(low, high + 1)
    head = energy[n - 1 - lags]  # signal[: n - lag]
    tail = total - energy[lags - 1]  # signal[lag:]
    normalised = correlation[low : high + 1] / torch.sqrt(head * tail).clamp_min(1e-24)
    return float(normalised.max().clamp(-1.0, 1.0))


def score_take(
    take: int,
    audio: np.ndarray | torch.Tensor,
    rate: int,
    bits: float,
    reference_dbfs: float | None,
    reference: Reference | None = None,
) -> TakeScore:
    """Measure one take and name its trap, if it is one. ``reference_dbfs``: the training
    audio's level (None: not recorded); ``reference``: the recording's statistics for the
    distance and the rules measured against its pieces (None: not recorded), whose level
    then counts."""
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    if reference is not None:
        reference_dbfs = reference.level_dbfs
    share = silent_share(samples, rate, reference_dbfs)
    loop = loop_correlation(samples, rate)
    flatness = spectral_stats(samples, rate)["flatness"] if np.any(samples) else 0.0
    level = level_dbfs(samples)
    distance = math.nan
    floor = SILENT_FLOOR_DBFS if reference_dbfs is None else reference_dbfs - SILENT_DB
    quiet, noisiest = False, NOISE_FLATNESS
    if reference is not None:
        distance = reference.distance(samples)
        lowest, most_silent, flattest = reference.piece_limits(samples.size / rate)
        quiet = (
            level < reference.level_dbfs + lowest - QUIET_MARGIN_DB
            or share > most_silent + QUIET_SHARE_MARGIN
        )
        noisiest = max(NOISE_FLATNESS, flattest + NOISE_MARGIN)
    trap = None
    if level < floor or share > SILENT_SHARE:
        trap = "silence"
    elif quiet:
        trap = "quiet"
    elif loop >= LOOP_CORRELATION:
        trap = "loop"
    elif flatness >= noisiest:
        trap = "noise"
    return TakeScore(take, float(bits), distance, level, share, loop, flatness, trap)


def score_takes(
    audio: torch.Tensor, bits: torch.Tensor, rate: int, reference_dbfs: float | None,
    reference: Reference | None = None, *, first: int = 0,
) -> list[TakeScore]:  # fmt: skip
    """:func:`score_take` for each of the (N, T) takes ``audio`` with their (N,) ``bits``,
    numbered from ``first + 1``."""
    return [score_take(first + n + 1, audio[n], rate, float(bits[n]), reference_dbfs, reference)
            for n in range(audio.shape[0])]  # fmt: skip


def rank(scores: list[TakeScore]) -> list[TakeScore]:
    """Takes best first: those that are not traps by their distance to the recording
    (nearer first; by their bits where no distance was measured, lower first; the earlier
    take first on a tie), then the traps in the order they were generated."""

    def key(score: TakeScore) -> tuple[float, float, int]:
        distance = 0.0 if math.isnan(score.distance) else score.distance
        return distance, score.bits, score.take

    good = sorted((s for s in scores if s.trap is None), key=key)
    return good + [s for s in scores if s.trap is not None]


def median_distance(scores: list[TakeScore]) -> float:
    """The median distance of the takes, traps included (NaN: none measured)."""
    measured = [s.distance for s in scores if not math.isnan(s.distance)]
    return float(np.median(measured)) if measured else math.nan


def describe_traps(scores: list[TakeScore]) -> str:
    """ "3 silent, 1 loop" (empty when there is no trap)."""
    words = {"silence": "silent", "quiet": "quiet", "loop": "a loop", "noise": "noise"}
    counts = [(sum(s.trap == trap for s in scores), words[trap]) for trap in TRAPS]
    return ", ".join(f"{n} {word}" for n, word in counts if n)
