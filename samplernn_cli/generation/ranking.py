"""Which generated takes are worth keeping: traps are rejected, the rest ranked by the
model's own likelihood.

A take's score is the model's mean bits per sample of the samples it drew (computed while
sampling, at temperature 1: lower is more likely). Before ranking, three kinds of take that
a low score does not make good are rejected:

- **silence**: the take far below the training audio's level, or nearly all of it;
- **a loop**: the take repeats itself, a strong autocorrelation at one lag over the whole
  take (a stuck pattern, or a drone that never changes);
- **noise**: a spectrum near white noise's flatness (what an untrained or diverged model
  makes).

The thresholds below were measured on takes of trained models (piano and speech, ``--preset
small`` and the default size) and on windows of their training audio, and each lies well
outside everything measured there (``python benchmarks/ranking.py`` prints the figures).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from samplernn_cli.clip_stats import level_dbfs, spectral_stats

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
QUIET_FRAME_DB = 40.0
SILENT_SHARE = 0.9
SILENCE_FRAME_SECONDS = 0.064
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

TRAPS = ("silence", "loop", "noise")


@dataclass(frozen=True)
class TakeScore:
    """What was measured of one take, and whether it is a trap."""

    take: int  # 1-based, in the order the takes were generated
    bits: float  # the model's mean bits per sample of the take (lower: more likely)
    level_dbfs: float
    silent_share: float  # share of 64 ms frames far below the training audio's level
    loop_correlation: float  # the largest autocorrelation at a lag of 50 ms or more
    flatness: float
    trap: str | None  # "silence", "loop", "noise", or None

    def to_dict(self) -> dict[str, object]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def silent_share(audio: np.ndarray, rate: int, reference_dbfs: float | None) -> float:
    """Share of the take's 64 ms frames far below ``reference_dbfs`` (the training audio's
    level; None: an absolute floor alone)."""
    frame = max(1, round(SILENCE_FRAME_SECONDS * rate))
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame) if len(audio) >= frame \
        else audio.reshape(1, -1)  # fmt: skip
    levels = 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-24)
    floor = SILENT_FLOOR_DBFS if reference_dbfs is None else reference_dbfs - QUIET_FRAME_DB
    return float(np.mean(levels < floor))


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
    take: int, audio: np.ndarray | torch.Tensor, rate: int, bits: float,
    reference_dbfs: float | None,
) -> TakeScore:  # fmt: skip
    """Measure one take and name its trap, if it is one."""
    samples = np.asarray(audio, dtype=np.float32)
    share = silent_share(samples, rate, reference_dbfs)
    loop = loop_correlation(samples, rate)
    flatness = spectral_stats(samples, rate)["flatness"] if np.any(samples) else 0.0
    level = level_dbfs(samples)
    floor = SILENT_FLOOR_DBFS if reference_dbfs is None else reference_dbfs - SILENT_DB
    trap = None
    if level < floor or share > SILENT_SHARE:
        trap = "silence"
    elif loop >= LOOP_CORRELATION:
        trap = "loop"
    elif flatness >= NOISE_FLATNESS:
        trap = "noise"
    return TakeScore(take, float(bits), level, share, loop, flatness, trap)


def score_takes(
    audio: torch.Tensor, bits: torch.Tensor, rate: int, reference_dbfs: float | None,
    *, first: int = 0,
) -> list[TakeScore]:  # fmt: skip
    """:func:`score_take` for each of the (N, T) takes ``audio`` with their (N,) ``bits``,
    numbered from ``first + 1``."""
    return [score_take(first + n + 1, audio[n], rate, float(bits[n]), reference_dbfs)
            for n in range(audio.shape[0])]  # fmt: skip


def rank(scores: list[TakeScore]) -> list[TakeScore]:
    """Takes best first: those that are not traps by their bits (lower first, the earlier
    take first on a tie), then the traps in the order they were generated."""
    good = sorted((s for s in scores if s.trap is None), key=lambda s: (s.bits, s.take))
    return good + [s for s in scores if s.trap is not None]


def describe_traps(scores: list[TakeScore]) -> str:
    """ "3 silent, 1 loop" (empty when there is no trap)."""
    words = {"silence": "silent", "loop": "a loop", "noise": "noise"}
    counts = [(sum(s.trap == trap for s in scores), words[trap]) for trap in TRAPS]
    return ", ".join(f"{n} {word}" for n, word in counts if n)
