"""The live voice's arithmetic that is not the model: its counter-based random draws and
the filters that take it to the host's rate and back.

Randomness is counter-based: each frame's draws come from a ``torch.Generator`` seeded
afresh with a 32-bit hash (MurmurHash3's finaliser, hand-written on plain integers) of the
seed and the frame's index, because the stream's position must be a number in the module: a
generator is neither state a module can keep nor resumable from a count. The filters are
Kaiser-windowed sincs, designed in the module when the host's rate is set (torchaudio's
resampler works on whole signals, not a stream cut into buffers).

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


def mul32(a: int, b: int) -> int:
    """``a * b`` modulo 2**32 for 32-bit ``a`` and ``b``, in halves so that no product leaves
    the 64-bit integers TorchScript computes with."""
    low = a * (b & 0xFFFF)
    high = ((a * (b >> 16)) & 0xFFFF) << 16
    return (low + high) & 0xFFFFFFFF


def fmix32(h: int) -> int:
    """MurmurHash3's 32-bit finaliser."""
    h = h ^ (h >> 16)
    h = mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = mul32(h, 0xC2B2AE35)
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


def gumbel_noise(seed: int, index: int, shape: list[int]) -> Tensor:
    """Gumbel noise of ``shape`` for frame ``index`` of a take: uniform draws (torch's
    Mersenne twister) from a generator seeded by a hash of (seed, frame index), so the
    stream's position is a number and any frame's draws can be made alone. About half the
    time of hashing every draw, which this replaced (``benchmarks/voice.py --parts``: the
    draws' share of the loop 0.06 of real time against 0.11)."""
    key = fmix32((seed & 0xFFFFFFFF) ^ fmix32(((seed >> 32) & 0xFFFFFFFF) ^ 0x9E3779B9))
    key = fmix32(key ^ fmix32((index & 0xFFFFFFFF) ^ 0x85EBCA6B))
    key = fmix32(key ^ fmix32(((index >> 32) & 0xFFFFFFFF) ^ 0xC2B2AE35))
    generator = torch.Generator()
    generator.manual_seed(key)
    # Strictly inside (0, 1): torch's uniform floats can be 0.
    uniform = torch.rand(shape, generator=generator).clamp_(min=1e-30)
    return torch.log(torch.log(uniform).neg_()).neg_()
