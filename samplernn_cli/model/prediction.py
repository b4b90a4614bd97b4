"""Backward-adaptive linear prediction: the sample tier's estimate of each sample as a
linear combination of the ``order`` samples before it.

:class:`LinearPredictor` owns it: its constants, the grid its taps are fitted on and the
rule that keeps that grid the same everywhere. Every ``block`` samples (whole bottom-tier
frames, about 256) the taps are fitted again to the ``FIT`` samples before the block, by the
autocorrelation method under an exponential window of ``DECAY`` samples (the last notes count
most). Only samples before a block go into its taps, and the blocks start at the first
predicted sample of a training chunk, a validation window or a clip, which training chunks
of whole blocks keep on one grid (:meth:`LinearPredictor.keeps_grid`): training, validation,
``evaluate`` and both samplers compute the prediction the same way, from the past alone. It
has no weights.

A sustained tone is predicted well from its last few periods, which a fitted linear predictor
finds in one solve, while a recurrent network learns it over many steps. The sample tier
reads the prediction as an extra input (the level nearest it, and how far from that level it
lies: ``SampleTier.prediction_input``), and learns how far to trust it.

Hand-written: torch has the FFT this needs, but no linear-prediction fit; the libraries that
have one (librosa's Burg method, SciPy's Levinson solver) take one NumPy signal at a time,
where training fits a batch of windows at every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from numba import njit


@dataclass(frozen=True)
class LinearPredictor:
    """The linear prediction of a model with ``order`` taps, fitted again every ``block``
    samples (:meth:`for_model`: whole bottom-tier frames, as near :attr:`BLOCK` as they
    come, so generation fits at a frame's start)."""

    # Samples between fits the block is chosen near, and samples each fit reads.
    BLOCK: ClassVar[int] = 256
    FIT: ClassVar[int] = 16000
    # The fit window's decay: 1/e after this many samples back.
    DECAY: ClassVar[float] = 2000.0
    # Relative and absolute terms added to the zero-lag autocorrelation: they keep the solve
    # defined on silence (whose taps are then zero) and on a pure tone.
    RIDGE: ClassVar[float] = 1e-6
    FLOOR: ClassVar[float] = 1e-3
    # The fit window rises from zero over its oldest RAMP samples.
    RAMP: ClassVar[int] = 256

    order: int
    block: int

    @classmethod
    def for_model(cls, order: int, bottom_frame: int) -> LinearPredictor | None:
        """The predictor of a model with ``order`` taps (None: 0, no prediction) whose
        bottom frame tier reads frames of ``bottom_frame`` samples."""
        if not order:
            return None
        return cls(order, max(1, cls.BLOCK // bottom_frame) * bottom_frame)

    @classmethod
    def span_of(cls, order: int) -> int:
        """Samples before a predicted sample that its prediction reads (the fit window and
        the taps)."""
        return cls.FIT + order

    @property
    def span(self) -> int:
        return self.span_of(self.order)

    def keeps_grid(self, chunk: int) -> bool:
        """Whether training chunks of ``chunk`` samples fit the taps where generation does:
        every chunk starts a block, so a chunk must be whole blocks."""
        return chunk % self.block == 0

    def refits(self, offset: int) -> bool:
        """Whether the taps are fitted again at ``offset`` samples after the first predicted
        sample."""
        return offset % self.block == 0

    def fit(self, past: torch.Tensor) -> torch.Tensor:
        """(B, >= FIT) float64 signal -> (B, order) taps fitted to its last FIT samples:
        the prediction of x[t] is sum_k taps[k] * x[t - 1 - k]."""
        return windowed_taps(past[:, -self.FIT :] * _window(past.device), self.order)

    @staticmethod
    def apply(signal: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
        """(B, order + N - 1) signal and (B, order) taps -> (B, N) predictions of the N
        samples that follow each run of ``order`` samples (the last one is not predicted)."""
        order = taps.shape[1]
        runs = signal.unfold(1, order, 1).flip(-1)  # (B, N, order), most recent first
        return torch.einsum("bno,bo->bn", runs, taps)

    def predict(self, signal: torch.Tensor, start: int, length: int) -> torch.Tensor:
        """(B, length) float32 predictions of ``signal[:, start : start + length]`` ((B, T)
        float64 values, with ``start >= span``) from the samples before each, the taps
        fitted again every ``block`` samples from ``start``."""
        predictions = []
        for first in range(start, start + length, self.block):
            count = min(self.block, start + length - first)
            taps = self.fit(signal[:, :first])
            recent = signal[:, first - self.order : first + count - 1]
            predictions.append(self.apply(recent, taps))
        return torch.cat(predictions, 1).float()


_windows: dict[str, torch.Tensor] = {}


def _window(device: torch.device) -> torch.Tensor:
    """(FIT,) float64: exponential decay into the past, with a linear ramp over the oldest
    RAMP samples so the window starts at zero."""
    key = str(device)
    if key not in _windows:
        fit, ramp = LinearPredictor.FIT, LinearPredictor.RAMP
        ages = torch.arange(fit - 1, -1, -1, dtype=torch.float64, device=device)
        rise = torch.clamp(torch.arange(fit, dtype=torch.float64, device=device) / ramp, max=1)
        _windows[key] = torch.exp(-ages / LinearPredictor.DECAY) * rise
    return _windows[key]


def windowed_taps(weighted: torch.Tensor, order: int) -> torch.Tensor:
    """(B, N) float64 signal, already windowed -> (B, order) taps: the autocorrelation
    method's normal equations (with a white-noise floor, so silence gives zero taps)."""
    size = 1 << (2 * weighted.shape[1] - 1).bit_length()  # no circular wrap-around
    spectrum = torch.fft.rfft(weighted, size)
    r = torch.fft.irfft(spectrum.real**2 + spectrum.imag**2, size)[:, : order + 1]
    r[:, 0] = r[:, 0] * (1 + LinearPredictor.RIDGE) + LinearPredictor.FLOOR
    taps = np.empty((r.shape[0], order))
    levinson(r.cpu().numpy(), taps)
    return torch.from_numpy(taps).to(weighted.device)


@njit(cache=True)
def levinson(r: np.ndarray, taps: np.ndarray) -> None:
    """Solve each row's normal equations (the Toeplitz system of autocorrelations
    ``r[b, |i - j|]`` times ``taps[b]`` equals ``r[b, 1:]``) by the Levinson-Durbin
    recursion: order^2 steps where a general solver takes order^3 (a batch of 256 x 256
    systems cost more than the rest of a small training step)."""
    rows, order = taps.shape
    previous = np.empty(order)
    for b in range(rows):
        error = r[b, 0]
        for i in range(order):
            acc = r[b, i + 1]
            for j in range(i):
                acc -= taps[b, j] * r[b, i - j]
            k = acc / error
            for j in range(i):
                previous[j] = taps[b, j]
            for j in range(i):
                taps[b, j] = previous[j] - k * previous[i - 1 - j]
            taps[b, i] = k
            error *= 1.0 - k * k
