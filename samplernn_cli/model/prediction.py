"""Backward-adaptive linear prediction: the sample tier's estimate of each sample as a
linear combination of the ``order`` samples before it.

Every ``block`` samples (``ModelConfig.prediction_block``, about 256) the taps are fitted
again to the :data:`FIT` samples before the block, by the autocorrelation method under an
exponential window of :data:`DECAY` samples (the last notes count most). Only samples before
a block go into its taps, so training, validation and generation compute the prediction the
same way, from the past alone; it has no weights.

A sustained tone is predicted well from its last few periods, which a fitted linear predictor
finds in one solve, while a recurrent network learns it over many steps. The sample tier
reads the prediction as an extra input (the level nearest it, and how far from that level it
lies: ``SampleTier.prediction_input``), and learns how far to trust it.

Hand-written: torch has the FFT this needs, but no linear-prediction fit; the libraries that
have one (librosa's Burg method, SciPy's Levinson solver) take one NumPy signal at a time,
where training fits a batch of windows at every step.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from samplernn_cli.config.model import PREDICTION_FIT as FIT

# The fit window's decay: 1/e after this many samples back.
DECAY = 2000.0
# Relative and absolute terms added to the zero-lag autocorrelation: they keep the solve
# defined on silence (whose taps are then zero) and on a pure tone.
RIDGE = 1e-6
FLOOR = 1e-3
# The fit window rises from zero over its oldest RAMP samples.
RAMP = 256


_windows: dict[tuple[int, str], torch.Tensor] = {}


def _window(device: torch.device) -> torch.Tensor:
    """(FIT,) float64: exponential decay into the past, with a linear ramp over the oldest
    RAMP samples so the window starts at zero."""
    key = (FIT, str(device))
    if key not in _windows:
        ages = torch.arange(FIT - 1, -1, -1, dtype=torch.float64, device=device)
        ramp = torch.clamp(torch.arange(FIT, dtype=torch.float64, device=device) / RAMP, max=1)
        _windows[key] = torch.exp(-ages / DECAY) * ramp
    return _windows[key]


def fit_taps(past: torch.Tensor, order: int) -> torch.Tensor:
    """(B, >= FIT) float64 signal -> (B, order) taps fitted to its last FIT samples:
    the prediction of x[t] is sum_k taps[k] * x[t - 1 - k]."""
    return windowed_taps(past[:, -FIT:] * _window(past.device), order)


def windowed_taps(weighted: torch.Tensor, order: int) -> torch.Tensor:
    """(B, N) float64 signal, already windowed -> (B, order) taps: the autocorrelation
    method's normal equations (with a white-noise floor, so silence gives zero taps)."""
    size = 1 << (2 * weighted.shape[1] - 1).bit_length()  # no circular wrap-around
    spectrum = torch.fft.rfft(weighted, size)
    r = torch.fft.irfft(spectrum.real**2 + spectrum.imag**2, size)[:, : order + 1]
    r[:, 0] = r[:, 0] * (1 + RIDGE) + FLOOR
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


def apply_taps(signal: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """(B, order + N - 1) signal and (B, order) taps -> (B, N) predictions of the N samples
    that follow each run of ``order`` samples (the last one is not predicted)."""
    order = taps.shape[1]
    runs = signal.unfold(1, order, 1).flip(-1)  # (B, N, order), most recent first
    return torch.einsum("bno,bo->bn", runs, taps)


def predict(signal: torch.Tensor, start: int, length: int, order: int, block: int) -> torch.Tensor:
    """(B, length) float32 predictions of ``signal[:, start : start + length]`` ((B, T)
    float64 values, with ``start >= FIT + order``) from the samples before each, the taps
    fitted again every ``block`` samples from ``start``."""
    predictions = []
    for first in range(start, start + length, block):
        count = min(block, start + length - first)
        taps = fit_taps(signal[:, :first], order)
        predictions.append(apply_taps(signal[:, first - order : first + count - 1], taps))
    return torch.cat(predictions, 1).float()
