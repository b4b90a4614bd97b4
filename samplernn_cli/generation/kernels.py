"""Compiled inner loops of the Numba sampler.

Generation is a loop over samples in which every step depends on the previous one, so it
cannot be batched over time; at small model sizes the cost per step is dominated by the
overhead of calling a library once per operation (twenty-odd operations per sample, each
with its own argument checks and dispatch). These kernels run a whole frame of samples per
call instead. And the BLAS libraries' matrix products for a few rows (a few clips) are poor,
being tuned for large blocks: written here as dot products against the weights in PyTorch's
(out_features, in_features) layout, each weight row is read once for all clips.

Every product takes its weight in float32 or in int8 with one scale per output row
(``out = scale * (x @ weight.T) + bias``; a float32 weight has scales of one, which leave
every product exactly as it was). At one clip a product reads every weight once per use
from memory, so int8 weights, a quarter of the bytes, make it up to four times faster;
they are converted to float32 as they are read, and summed in float32.
``benchmarks/generation.py --parts`` times these choices against their alternatives.

Floating-point sums are reassociated (vectorised), so results differ from PyTorch's in the
last bits, as any two BLAS libraries do.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

FASTMATH = {"reassoc", "contract"}  # vectorise sums; keep NaN and infinity semantics
LN2 = np.log(2.0)


@njit(cache=True, fastmath=FASTMATH)
def affine(
    x: np.ndarray, weight: np.ndarray, scale: np.ndarray, bias: np.ndarray, out: np.ndarray
) -> None:
    """out = scale * (x @ weight.T) + bias for (B, K) x, (N, K) float32 or int8 weight,
    (N,) scale and bias, (B, N) out.

    One weight row at a time, for every x row while it is in the L1 cache: the weights
    stream through once, in order, and each dot product vectorises over its whole length
    (faster, for one to a few x rows, than four weight rows at a time, which reads each x
    row once for four weight rows)."""
    rows, inner = x.shape
    for n in range(weight.shape[0]):
        for r in range(rows):
            acc = np.float32(0.0)
            for k in range(inner):
                acc += x[r, k] * np.float32(weight[n, k])
            out[r, n] = acc * scale[n] + bias[n]


@njit(cache=True, fastmath=FASTMATH)
def affine_blocked(
    x: np.ndarray, weight: np.ndarray, scale: np.ndarray, bias: np.ndarray, out: np.ndarray
) -> None:
    """:func:`affine` four weight rows at a time, each x row read once for all four: faster
    for weights the caches hold (the sample MLP's), slower for weights streamed from
    memory."""
    rows, inner = x.shape
    outputs = weight.shape[0]
    n = 0
    while n + 4 <= outputs:
        for r in range(rows):
            a0 = np.float32(0.0)
            a1 = np.float32(0.0)
            a2 = np.float32(0.0)
            a3 = np.float32(0.0)
            for k in range(inner):
                value = x[r, k]
                a0 += value * np.float32(weight[n, k])
                a1 += value * np.float32(weight[n + 1, k])
                a2 += value * np.float32(weight[n + 2, k])
                a3 += value * np.float32(weight[n + 3, k])
            out[r, n] = a0 * scale[n] + bias[n]
            out[r, n + 1] = a1 * scale[n + 1] + bias[n + 1]
            out[r, n + 2] = a2 * scale[n + 2] + bias[n + 2]
            out[r, n + 3] = a3 * scale[n + 3] + bias[n + 3]
        n += 4
    affine(x, weight[n:], scale[n:], bias[n:], out[:, n:])


@njit(cache=True, parallel=True)
def affine_parallel(
    x: np.ndarray,
    weight: np.ndarray,
    scale: np.ndarray,
    bias: np.ndarray,
    out: np.ndarray,
    chunks: int,
    blocked: bool = False,
) -> None:
    """:func:`affine` (or with ``blocked``, :func:`affine_blocked`, each share a multiple of
    four rows) with the outputs split between the CPU's threads: each thread reads its share
    of the weights once for all rows (for large products of a few rows); ``chunks`` is the
    number of threads."""
    outputs = weight.shape[0]
    step = 4 if blocked else 1
    for c in prange(chunks):
        start = (c * outputs // chunks) // step * step
        stop = outputs if c == chunks - 1 else ((c + 1) * outputs // chunks) // step * step
        if blocked:
            affine_blocked(
                x, weight[start:stop], scale[start:stop], bias[start:stop], out[:, start:stop]
            )
        else:
            affine(x, weight[start:stop], scale[start:stop], bias[start:stop], out[:, start:stop])


@njit(cache=True, fastmath=FASTMATH)
def relu(x: np.ndarray) -> None:
    """In place, on a (B, N) array."""
    rows, width = x.shape
    for r in range(rows):
        for j in range(width):
            if x[r, j] < 0.0:
                x[r, j] = 0.0


@njit(cache=True, fastmath=FASTMATH)
def first_layer(
    codes: np.ndarray,
    at: int,
    first: int,
    last: int,
    tables: np.ndarray,
    offsets: np.ndarray,
    conditioning: np.ndarray,
    x: np.ndarray,
    taps: np.ndarray,
    table: np.ndarray,
    distance: np.ndarray,
    zero: np.ndarray,
) -> None:
    """relu(x) for clips ``first:last`` at position ``at``: the sum of one table row per
    previous code, plus the bottom frame tier's (B, H) ``conditioning``, plus, with linear
    prediction, the prediction's input.

    The linear prediction: (B, order) float64 ``taps`` (order 0: none), the (levels, H)
    ``table`` row per level nearest the prediction, the (H,) weights of its ``distance`` from
    that level, and the (1,) ``zero`` code."""
    zero_code = zero[0]
    hidden = tables.shape[1]
    frame_size = offsets.shape[0]
    order = taps.shape[1]
    levels = table.shape[0]
    for r in range(first, last):
        for j in range(hidden):
            x[r, j] = conditioning[r, j]
        for p in range(frame_size):
            row = codes[r, at - frame_size + p] + offsets[p]
            for j in range(hidden):
                x[r, j] += tables[row, j]
        if order:
            predicted = np.float64(0.0)
            for k in range(order):
                predicted += taps[r, k] * (codes[r, at - 1 - k] - zero_code)
            value = np.float32(predicted)
            nearest = round(value)
            part = value - np.float32(nearest)
            row = min(max(nearest + zero_code, 0), levels - 1)
            for j in range(hidden):
                x[r, j] += table[row, j] + part * distance[j]
    relu(x[first:last])


@njit(cache=True, fastmath=FASTMATH)
def draw(
    codes: np.ndarray,
    at: int,
    first: int,
    last: int,
    logits: np.ndarray,
    inverse_temperature: np.ndarray,
    draws: np.ndarray,
    bits: np.ndarray,
) -> None:
    """Choose ``codes[r, at]`` for clips ``first:last`` by inverting the cumulative
    distribution of ``softmax(logits * inverse_temperature)`` at ``draws[r]``, and write the
    code's information under the model's own distribution (temperature 1), -log2 p, to
    ``bits[r, at]``. ``logits`` is overwritten."""
    levels = logits.shape[1]
    for r in range(first, last):
        scale = inverse_temperature[r]
        top = logits[r, 0]
        for j in range(1, levels):
            top = max(top, logits[r, j])
        # log of the normaliser at temperature 1, unless the loop below gives it
        log_total = np.float64(0.0)
        if scale != 1.0:
            plain = np.float64(0.0)
            for j in range(levels):
                plain += np.exp(np.float64(logits[r, j] - top))
            log_total = np.log(plain)
        peak = top * scale  # scale > 0: the largest scaled logit
        total = np.float32(0.0)
        for j in range(levels):
            weight = np.exp(logits[r, j] * scale - peak)
            logits[r, j] = weight
            total += weight
        target = draws[r] * total
        chosen = levels - 1
        cumulative = np.float32(0.0)
        for j in range(levels):
            cumulative += logits[r, j]
            if cumulative > target:
                chosen = j
                break
        codes[r, at] = chosen
        if scale == 1.0:
            bits[r, at] = (np.log(np.float64(total)) - np.log(np.float64(logits[r, chosen]))) / LN2
        else:
            # logits[r, chosen] is exp(l * scale - peak): recover l - top from it.
            logit = (np.log(np.float64(logits[r, chosen])) + peak) / scale
            bits[r, at] = (top + log_total - logit) / LN2


@njit(cache=True, fastmath=FASTMATH)
def _hidden_layer(x, weight, scale, bias, out, chunks):  # fmt: skip
    """:func:`affine_blocked` then :func:`relu`; with ``chunks`` > 0 the outputs are split
    between that many threads (:func:`affine_parallel`)."""
    if chunks > 0:
        affine_parallel(x, weight, scale, bias, out, chunks, True)
    else:
        affine_blocked(x, weight, scale, bias, out)
    relu(out)


@njit(cache=True, fastmath=FASTMATH)
def _group_steps(first, last, codes, position, steps, mlp, conditioning, inverse_temperature,
                 draws, scratch, bits, chunks=0):  # fmt: skip
    """:func:`sample_steps` (the same arguments) for clips ``first:last`` alone (clips are
    independent within a frame); the group's rows go through each layer together.
    ``chunks`` > 0 (for fewer clips than threads): the hidden layers' outputs are split
    between that many threads instead (see :func:`affine_parallel`)."""
    tables, offsets, w1, s1, b1, w2, s2, b2, wo, so, bo, taps, table, distance, zero = mlp
    x, h1, h2, logits = scratch
    xg, h1g, h2g, lg = x[first:last], h1[first:last], h2[first:last], logits[first:last]
    for s in range(steps):
        at = position + s
        first_layer(codes, at, first, last, tables, offsets, conditioning[:, s], x,
                    taps, table, distance, zero)  # fmt: skip
        _hidden_layer(xg, w1, s1, b1, h1g, chunks)
        _hidden_layer(h1g, w2, s2, b2, h2g, chunks)
        affine_blocked(h2g, wo, so, bo, lg)
        draw(codes, at, first, last, logits, inverse_temperature, draws[:, s], bits)


@njit(cache=True, parallel=True)
def _parallel_groups(groups, codes, position, steps, mlp, conditioning, inverse_temperature,
                     draws, scratch, bits):  # fmt: skip
    count = codes.shape[0]
    for g in prange(groups):
        _group_steps(g * count // groups, (g + 1) * count // groups, codes, position, steps,
                     mlp, conditioning, inverse_temperature, draws, scratch, bits)  # fmt: skip


def sample_steps(
    codes: np.ndarray,
    position: int,
    steps: int,
    mlp: tuple,
    conditioning: np.ndarray,
    inverse_temperature: np.ndarray,
    draws: np.ndarray,
    scratch: tuple,
    bits: np.ndarray,
    split: bool = True,
) -> None:
    """Generate ``steps`` samples per clip, writing ``codes[:, position + s]``.

    Args:
        codes: (B, T) int64, the clips so far; the frame_size codes before ``position`` are
            the MLP's first input.
        mlp: the sample tier: ``(tables, offsets, w1, s1, b1, w2, s2, b2, wo, so, bo, taps,
            table, distance, zero)``: (frame_size * levels, H) first-layer tables and (frame_size,)
            ``offsets`` of ``p * levels``; then each layer's weight (float32 or int8,
            PyTorch layout), per-output scale and bias; then the linear prediction's
            arrays (see :func:`first_layer`).
        conditioning: (B, steps, H) from the bottom frame tier, one vector per step.
        inverse_temperature: (B,) 1 / temperature per clip.
        draws: (B, steps) uniforms in [0, 1): sample s of clip r is the first level whose
            cumulative probability exceeds ``draws[r, s]`` (inverse-CDF sampling).
        scratch: (B, H) x, h1, h2 and (B, levels) logits buffers.
        bits: (B, T) float32 like ``codes``: each new sample's -log2 p (at temperature 1).
        split: with fewer clips than threads, whether the layers are large enough to be
            split between the threads; if not, this thread makes every clip's samples.

    Clips are independent within a frame, so they are split into one group per thread, and
    each group's clips go through every layer together, each weight row read once for all of
    them (with one clip per task, every task would read all the weights). With fewer clips
    than threads, each layer is split between the threads instead, if ``split``: that takes
    two meetings of the threads per sample, which pays for a large layer (the default
    size's); for a small one it is slower, on a busy machine (where each meeting waits for a
    thread to be scheduled) up to five times (``benchmarks/generation_parts.py``).
    """
    count = codes.shape[0]
    threads = get_num_threads()
    args = (codes, position, steps, mlp, conditioning, inverse_temperature, draws, scratch, bits)
    if count >= threads:
        _parallel_groups(min(count, threads), *args)
    else:
        _group_steps(0, count, *args, threads if split else 0)
