"""The sample tier's first layer as a sum of table rows, with a compiled CPU backward pass.

The first layer's output for a target is the sum of ``frame_size`` rows gathered from the
per-position tables (:meth:`samplernn_cli.model.network.SampleTier.input_tables`): one row
per previous code. PyTorch's ``embedding_bag`` computes that sum well, but on the CPU its
backward pass first sorts all ``targets x frame_size`` indices, to find the rows each
gradient row adds to. The gradient has a structure no library routine uses: position
``p``'s codes only ever address position ``p``'s table, so each position's gradient is a
plain scatter-add of the output gradient's rows, with nothing to sort.
:func:`_table_gradient` (Numba) does exactly that, position by position in target order:
deterministic, and equal to ``embedding_bag``'s gradient up to float summation order.
Positions write disjoint tables, so they run in parallel on PyTorch's number of threads, each
zeroing its own table first (while it is in that thread's cache, rather than in one pass
over all the tables before). ``benchmarks/training_step_parts.py`` times ``embedding_bag``'s
backward pass, this kernel on one thread and on all of them, alone and inside the whole
step. Other devices keep ``embedding_bag``'s own backward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numba import config, njit, prange, set_num_threads


@njit(cache=True, parallel=True, fastmath={"reassoc", "contract"})
def _table_gradient(codes: np.ndarray, grad: np.ndarray, levels: int, out: np.ndarray) -> None:
    """out[p * levels + c] = the sum of grad[n] over the targets n with codes[n, p] == c, for
    every position p; ``out`` is (positions * levels, H), overwritten."""
    targets, positions = codes.shape
    width = grad.shape[1]
    for p in prange(positions):
        base = p * levels
        out[base : base + levels] = 0.0
        for n in range(targets):
            row = base + codes[n, p]
            for j in range(width):
                out[row, j] += grad[n, j]


def _gather_sum(codes: torch.Tensor, tables: torch.Tensor, levels: int) -> torch.Tensor:
    """(N, FS) codes -> (N, H) with ``embedding_bag`` (forward, and backward off the CPU)."""
    offsets = torch.arange(codes.shape[1], device=codes.device) * levels
    return F.embedding_bag(codes + offsets, tables, mode="sum")


class _TableSum(torch.autograd.Function):
    """(N, FS) codes and (FS * levels, H) tables -> (N, H) sums of one row per position."""

    @staticmethod
    def forward(ctx: Any, codes: torch.Tensor, tables: torch.Tensor, levels: int) -> torch.Tensor:
        ctx.save_for_backward(codes)
        ctx.levels = levels
        ctx.table_shape = tables.shape
        return _gather_sum(codes, tables, levels)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor | None, None]:
        if not ctx.needs_input_grad[1]:
            return None, None, None
        (codes,) = ctx.saved_tensors
        out = torch.empty(ctx.table_shape, dtype=grad.dtype)
        follow_torch_threads()
        _table_gradient(codes.numpy(), grad.contiguous().numpy(), ctx.levels, out.numpy())
        return None, out, None


def follow_torch_threads() -> None:
    """Numba's parallel kernels (this gradient, the numba sampler's) run on as many threads
    as torch's (``torch.set_num_threads``, ``OMP_NUM_THREADS``), at most its pool's: one
    setting for both, which starting numba's pool leaves as it was.

    Numba's OpenMP layer sets the process's OpenMP thread count to its pool's size
    (``NUMBA_NUM_THREADS``, every core) when it starts, torch's included: after the first
    training step or generated clip, a run limited to one thread (two runs side by side,
    or two test workers, on two cores) ran torch on two, each operation's threads waiting
    on each other's (the live voice's tests took 3 times as long)."""
    threads = torch.get_num_threads()
    set_num_threads(max(1, min(threads, config.NUMBA_NUM_THREADS)))  # starts the pool
    torch.set_num_threads(threads)


def table_sum(codes: torch.Tensor, tables: torch.Tensor, levels: int) -> torch.Tensor:
    """(..., FS) codes -> (..., H): for each, the sum over positions ``p`` of row
    ``p * levels + code[p]`` of ``tables``."""
    flat = codes.reshape(-1, codes.shape[-1])
    if tables.device.type == "cpu" and tables.dtype == torch.float32 and tables.requires_grad:
        out = _TableSum.apply(flat, tables, levels)
    else:
        out = _gather_sum(flat, tables, levels)
    return out.view(*codes.shape[:-1], tables.shape[1])
