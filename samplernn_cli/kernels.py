"""Compiled inner loops of the fast sampler (Numba).

Generation is a loop over samples in which every step depends on the previous one, so it
cannot be batched over time; at small model sizes the cost per step is dominated by the
overhead of calling a library once per operation (about a microsecond for NumPy, several for
PyTorch, twenty-odd operations per sample). These kernels run a whole frame of samples per
call instead. And at large sizes the BLAS libraries' matrix products for a few rows (a few
clips) are poor (measured in ``benchmarks/generation.py``): written here as dot products
against transposed weights, each weight row is read once for all clips.

Floating-point sums are reassociated (vectorised), so results differ from PyTorch's in the
last bits, as any two BLAS libraries do.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

FAST = {"reassoc", "contract"}  # vectorise sums; keep NaN and infinity semantics


@njit(cache=True, fastmath=FAST)
def affine(x: np.ndarray, weight_t: np.ndarray, bias: np.ndarray, out: np.ndarray) -> None:
    """out = x @ weight_t.T + bias for (B, K) x, (N, K) weight_t, (N,) bias, (B, N) out."""
    rows, inner = x.shape
    outputs = weight_t.shape[0]
    n = 0
    # Four outputs at a time: each x row is read once for four weight rows.
    while n + 4 <= outputs:
        for r in range(rows):
            a0 = np.float32(0.0)
            a1 = np.float32(0.0)
            a2 = np.float32(0.0)
            a3 = np.float32(0.0)
            for k in range(inner):
                value = x[r, k]
                a0 += value * weight_t[n, k]
                a1 += value * weight_t[n + 1, k]
                a2 += value * weight_t[n + 2, k]
                a3 += value * weight_t[n + 3, k]
            out[r, n] = a0 + bias[n]
            out[r, n + 1] = a1 + bias[n + 1]
            out[r, n + 2] = a2 + bias[n + 2]
            out[r, n + 3] = a3 + bias[n + 3]
        n += 4
    while n < outputs:
        for r in range(rows):
            acc = np.float32(0.0)
            for k in range(inner):
                acc += x[r, k] * weight_t[n, k]
            out[r, n] = acc + bias[n]
        n += 1


@njit(cache=True, fastmath=FAST)
def _relu(x: np.ndarray) -> None:
    rows, width = x.shape
    for r in range(rows):
        for j in range(width):
            if x[r, j] < 0.0:
                x[r, j] = 0.0


@njit(cache=True, fastmath=FAST)
def _row_steps(
    r: int,
    codes: np.ndarray,
    position: int,
    steps: int,
    tables: np.ndarray,
    offsets: np.ndarray,
    conditioning: np.ndarray,
    w1_t: np.ndarray,
    b1: np.ndarray,
    w2_t: np.ndarray,
    b2: np.ndarray,
    wo_t: np.ndarray,
    bo: np.ndarray,
    inverse_temperature: np.ndarray,
    draws: np.ndarray,
    x: np.ndarray,
    h1: np.ndarray,
    h2: np.ndarray,
    logits: np.ndarray,
) -> None:
    """:func:`sample_steps` for clip ``r`` alone (clips are independent within a frame)."""
    hidden = tables.shape[1]
    levels = wo_t.shape[0]
    frame_size = offsets.shape[0]
    one = slice(r, r + 1)
    xr, h1r, h2r, lr = x[one], h1[one], h2[one], logits[one]
    scale = inverse_temperature[r]
    for s in range(steps):
        at = position + s
        # First layer: the sum of one table row per previous code, plus the conditioning.
        for j in range(hidden):
            xr[0, j] = conditioning[r, s, j]
        for p in range(frame_size):
            row = codes[r, at - frame_size + p] + offsets[p]
            for j in range(hidden):
                xr[0, j] += tables[row, j]
        _relu(xr)
        affine(xr, w1_t, b1, h1r)
        _relu(h1r)
        affine(h1r, w2_t, b2, h2r)
        _relu(h2r)
        affine(h2r, wo_t, bo, lr)
        peak = lr[0, 0] * scale
        for j in range(1, levels):
            peak = max(peak, lr[0, j] * scale)
        total = np.float32(0.0)
        for j in range(levels):
            weight = np.exp(lr[0, j] * scale - peak)
            lr[0, j] = weight
            total += weight
        target = draws[r, s] * total
        chosen = levels - 1
        cumulative = np.float32(0.0)
        for j in range(levels):
            cumulative += lr[0, j]
            if cumulative > target:
                chosen = j
                break
        codes[r, at] = chosen


@njit(cache=True)
def _serial(codes, position, steps, tables, offsets, conditioning, w1_t, b1, w2_t, b2, wo_t,
            bo, inverse_temperature, draws, x, h1, h2, logits):  # fmt: skip
    for r in range(codes.shape[0]):
        _row_steps(r, codes, position, steps, tables, offsets, conditioning, w1_t, b1, w2_t,
                   b2, wo_t, bo, inverse_temperature, draws, x, h1, h2, logits)  # fmt: skip


@njit(cache=True, parallel=True)
def _parallel(codes, position, steps, tables, offsets, conditioning, w1_t, b1, w2_t, b2, wo_t,
              bo, inverse_temperature, draws, x, h1, h2, logits):  # fmt: skip
    for r in prange(codes.shape[0]):
        _row_steps(r, codes, position, steps, tables, offsets, conditioning, w1_t, b1, w2_t,
                   b2, wo_t, bo, inverse_temperature, draws, x, h1, h2, logits)  # fmt: skip


def sample_steps(
    codes: np.ndarray,
    position: int,
    steps: int,
    tables: np.ndarray,
    offsets: np.ndarray,
    conditioning: np.ndarray,
    w1_t: np.ndarray,
    b1: np.ndarray,
    w2_t: np.ndarray,
    b2: np.ndarray,
    wo_t: np.ndarray,
    bo: np.ndarray,
    inverse_temperature: np.ndarray,
    draws: np.ndarray,
    x: np.ndarray,
    h1: np.ndarray,
    h2: np.ndarray,
    logits: np.ndarray,
) -> None:
    """Generate ``steps`` samples per clip, writing ``codes[:, position + s]``.

    Args:
        codes: (B, T) int64, the clips so far; the frame_size codes before ``position`` are
            the MLP's first input.
        tables: (frame_size * levels, H) first-layer tables; ``offsets``: (frame_size,) of
            ``p * levels``.
        conditioning: (B, steps, H) from the bottom frame tier, one vector per step.
        w1_t, w2_t: (H, H) and wo_t: (levels, H), PyTorch-layout weights; b1, b2, bo biases.
        inverse_temperature: (B,) 1 / temperature per clip.
        draws: (B, steps) uniforms in [0, 1): sample s of clip r is the first level whose
            cumulative probability exceeds ``draws[r, s]`` (inverse-CDF sampling).
        x, h1, h2: (B, H) and logits: (B, levels) scratch buffers.

    Clips are independent within a frame, so several clips are spread over the CPU's cores.
    """
    run = _parallel if codes.shape[0] > 1 else _serial
    run(codes, position, steps, tables, offsets, conditioning, w1_t, b1, w2_t, b2, wo_t, bo,
        inverse_temperature, draws, x, h1, h2, logits)  # fmt: skip
