"""The live voice's arithmetic that is not the model: its counter-based random draws and
the filters that take it to the host's rate and back.

Randomness is a 32-bit integer hash (MurmurHash3's finaliser) of the seed, the batch row, the
frame's index and the draw's place in it, hand-written because the stream's position must be
a number in the module: a ``torch.Generator`` is neither scriptable state nor resumable from a
count. The filters are Kaiser-windowed sincs, designed in the module when the host's rate is
set (torchaudio's resampler works on whole signals, not a stream cut into buffers).

No ``from __future__ import annotations`` here: TorchScript reads the annotations.
"""

import torch
from torch import Tensor

# Host rates up to this multiple of the model's rate (a 16 kHz model: up to 128 kHz).
MAX_RATIO = 8
# The interpolating filter: zero crossings of its sinc on each side (16 model samples per
# output sample), its Kaiser window's beta (about 80 dB down in the stop band) and its
# cut-off as a fraction of the model's Nyquist frequency. TorchScript reads no globals:
# the functions below get these as arguments from the module's attributes.
FILTER_ZEROS = 8
FILTER_BETA = 8.6
FILTER_ROLLOFF = 0.92


def fmix32(h: Tensor) -> Tensor:
    """MurmurHash3's 32-bit finaliser on int64 tensors holding 32-bit values."""
    h = h ^ (h >> 16)
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h = h ^ (h >> 13)
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def lowpass(ratio: int, zeros: int, beta: float, rolloff: float) -> Tensor:
    """(zeros * 2 * ratio,) float64: a Kaiser-windowed sinc at the host's rate, cut off at
    ``rolloff`` times the model's Nyquist frequency, with a DC gain of 1. Centred on a whole
    sample (the centre is the delay: ``zeros`` model samples)."""
    length = 2 * zeros * ratio
    centre = length // 2
    n = torch.arange(length, dtype=torch.float64) - centre
    cutoff = rolloff / ratio
    window = torch.kaiser_window(2 * centre + 1, periodic=False, beta=beta, dtype=torch.float64)
    return cutoff * torch.sinc(cutoff * n) * window[:length]


def interpolation_filter(ratio: int, zeros: int, beta: float, rolloff: float) -> Tensor:
    """(ratio, 1, taps) float32 weights of a polyphase interpolator by ``ratio`` for
    ``F.conv1d``: output phase p of each input sample, from the last ``taps`` inputs."""
    if ratio == 1:
        return torch.ones(1, 1, 1)
    h = lowpass(ratio, zeros, beta, rolloff) * ratio
    # Output phase p of input j is sum_k h[p + ratio * k] x[j - k]; conv1d correlates, so
    # each phase's taps run oldest first.
    phases = h.view(2 * zeros, ratio).t().flip(1)
    return phases.unsqueeze(1).float().contiguous()


def decimation_filter(ratio: int, zeros: int, beta: float, rolloff: float) -> Tensor:
    """(1, 1, taps) float32 weights of the anti-aliasing filter before keeping every
    ``ratio``-th host sample (``F.conv1d`` with that stride)."""
    if ratio == 1:
        return torch.ones(1, 1, 1)
    return lowpass(ratio, zeros, beta, rolloff).flip(0).view(1, 1, -1).float().contiguous()


def gumbel_noise(seed: int, index: int, batch: int, draw_index: Tensor) -> Tensor:
    """(B, draws) Gumbel noise for frame ``index`` of a take: a hash of (seed, row, frame
    index, draw index), so the stream's position is a number and any frame's draws can be
    made alone."""
    seeds = torch.tensor([seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF])
    rows = torch.arange(batch).unsqueeze(1)
    key = fmix32(fmix32(seeds[0] ^ fmix32(rows + 0x9E3779B9)) ^ (index & 0xFFFFFFFF))
    key = fmix32(key ^ fmix32(seeds[1] ^ ((index >> 32) & 0xFFFFFFFF) ^ 0x85EBCA6B))
    h = fmix32((draw_index * 0x9E3779B1 + key) & 0xFFFFFFFF)
    # 24 bits, strictly inside (0, 1).
    uniform = ((h >> 8).float() + 0.5) * (1.0 / 16777216.0)
    return torch.log(torch.log(uniform).neg_()).neg_()
