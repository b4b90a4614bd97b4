"""Training-time variations of the code sequences, against memorising a short recording.

Both are drawn from the run's seed (and the epoch or iteration), so a run stays
reproducible and resumes exactly. Validation and evaluation never see them.
"""

from __future__ import annotations

import torch

from samplernn_cli.quantize import Quantizer
from samplernn_cli.seeding import GAIN_SALT, NOISE_SALT, mix_seed


def epoch_gains(seed: int, epoch: int, count: int, min_gain: float) -> torch.Tensor:
    """(count,) float64 gains, uniform in [min_gain, 1], one per training sequence, drawn
    from (seed, epoch); all 1 when ``min_gain`` is 1."""
    if min_gain >= 1.0:
        return torch.ones(count, dtype=torch.float64)
    generator = torch.Generator().manual_seed(mix_seed(mix_seed(seed, epoch), GAIN_SALT))
    draws = torch.rand(count, generator=generator, dtype=torch.float64)
    return min_gain + (1.0 - min_gain) * draws


def regain(codes: torch.Tensor, gains: torch.Tensor, quantizer: Quantizer) -> torch.Tensor:
    """(B, T) codes -> the same audio at one gain per row, quantized again (same dtype).

    What the quantizer would have made of the recording played that much quieter: for a
    linear quantizer the waveform's shape at fewer levels, for mu-law and A-law the same
    shape on another part of the curve. Silence stays silence.
    """
    audio = quantizer.decode(codes) * gains.to(torch.float32)[:, None]
    return quantizer.encode(audio).to(codes.dtype)


def jitter(
    codes: torch.Tensor,
    probability: float,
    levels: int,
    seed: int,
    iteration: int,
    rows: slice = slice(None),
    batch: int | None = None,
) -> torch.Tensor:
    """A copy of (CPU) ``codes`` in which each code, with ``probability``, moved one level up
    or down (staying within [0, levels)), drawn from (seed, iteration).

    In a distributed run ``codes`` are this process's ``rows`` of a batch of ``batch``: the
    draws are made for the whole batch, so the processes together move the codes one process
    would.
    """
    shape = (codes.shape[0] if batch is None else batch, codes.shape[1])
    generator = torch.Generator().manual_seed(mix_seed(mix_seed(seed, iteration), NOISE_SALT))
    moved = (torch.rand(shape, generator=generator) < probability)[rows]
    step = (torch.randint(0, 2, shape, generator=generator, dtype=codes.dtype) * 2 - 1)[rows]
    return (codes + moved.to(codes.dtype) * step).clamp_(0, levels - 1)
