"""Compiled inner loops of the Numba sampler.

Generation is a loop over samples in which every step depends on the previous one, so it
cannot be batched over time; at small model sizes the cost per step is dominated by the
overhead of calling a library once per operation (twenty-odd operations per sample, each
with its own argument checks and dispatch). These kernels run a whole frame of samples per
call instead. And at large sizes the BLAS libraries' matrix products for a few rows (a few
clips) are poor, being tuned for large blocks: written here as dot products against
transposed weights, each weight row is read once for all clips.
``benchmarks/generation.py --parts`` times both choices against their alternatives.

Floating-point sums are reassociated (vectorised), so results differ from PyTorch's in the
last bits, as any two BLAS libraries do.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

FASTMATH = {"reassoc", "contract"}  # vectorise sums; keep NaN and infinity semantics


@njit(cache=True, fastmath=FASTMATH)
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


@njit(cache=True, fastmath=FASTMATH)
def _relu(x: np.ndarray) -> None:
    rows, width = x.shape
    for r in range(rows):
        for j in range(width):
            if x[r, j] < 0.0:
                x[r, j] = 0.0


@njit(cache=True, parallel=True)
def affine_parallel(
    x: np.ndarray, weight_t: np.ndarray, bias: np.ndarray, out: np.ndarray, chunks: int
) -> None:
    """:func:`affine` with the outputs split between the CPU's threads: each thread reads
    its share of the weights once for all rows (for large products of a few rows); ``chunks``
    is the number of threads."""
    outputs = weight_t.shape[0]
    for c in prange(chunks):
        # Chunk bounds on multiples of four, the kernel's block of outputs.
        start = (c * outputs // chunks) // 4 * 4
        stop = outputs if c == chunks - 1 else ((c + 1) * outputs // chunks) // 4 * 4
        affine(x, weight_t[start:stop], bias[start:stop], out[:, start:stop])


@njit(cache=True, fastmath=FASTMATH)
def _group_steps(
    first: int,
    last: int,
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
    """:func:`sample_steps` for clips ``first:last`` alone (clips are independent within a
    frame); the group's rows go through each layer together."""
    hidden = tables.shape[1]
    levels = wo_t.shape[0]
    frame_size = offsets.shape[0]
    xg, h1g, h2g, lg = x[first:last], h1[first:last], h2[first:last], logits[first:last]
    for s in range(steps):
        at = position + s
        # First layer: the sum of one table row per previous code, plus the conditioning.
        for r in range(first, last):
            for j in range(hidden):
                x[r, j] = conditioning[r, s, j]
            for p in range(frame_size):
                row = codes[r, at - frame_size + p] + offsets[p]
                for j in range(hidden):
                    x[r, j] += tables[row, j]
        _relu(xg)
        affine(xg, w1_t, b1, h1g)
        _relu(h1g)
        affine(h1g, w2_t, b2, h2g)
        _relu(h2g)
        affine(h2g, wo_t, bo, lg)
        for r in range(first, last):
            scale = inverse_temperature[r]
            peak = logits[r, 0] * scale
            for j in range(1, levels):
                peak = max(peak, logits[r, j] * scale)
            total = np.float32(0.0)
            for j in range(levels):
                weight = np.exp(logits[r, j] * scale - peak)
                logits[r, j] = weight
                total += weight
            target = draws[r, s] * total
            chosen = levels - 1
            cumulative = np.float32(0.0)
            for j in range(levels):
                cumulative += logits[r, j]
                if cumulative > target:
                    chosen = j
                    break
            codes[r, at] = chosen


@njit(cache=True, parallel=True)
def _parallel(groups, codes, position, steps, tables, offsets, conditioning, w1_t, b1, w2_t,
              b2, wo_t, bo, inverse_temperature, draws, x, h1, h2, logits):  # fmt: skip
    count = codes.shape[0]
    for g in prange(groups):
        _group_steps(g * count // groups, (g + 1) * count // groups, codes, position, steps,
                     tables, offsets, conditioning, w1_t, b1, w2_t, b2, wo_t, bo,
                     inverse_temperature, draws, x, h1, h2, logits)  # fmt: skip


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

    Clips are independent within a frame, so they are split into one group per thread, and
    each group's clips go through every layer together, each weight row read once for all of
    them (with one clip per task, every task reads all the weights).
    """
    count = codes.shape[0]
    groups = min(count, get_num_threads())
    if groups == 1:
        _group_steps(0, count, codes, position, steps, tables, offsets, conditioning, w1_t,
                     b1, w2_t, b2, wo_t, bo, inverse_temperature, draws, x, h1, h2,
                     logits)  # fmt: skip
        return
    _parallel(groups, codes, position, steps, tables, offsets, conditioning, w1_t, b1, w2_t,
              b2, wo_t, bo, inverse_temperature, draws, x, h1, h2, logits)  # fmt: skip
