"""Choosing the torch device from ``--device auto|cpu|cuda|cuda:N|mps``, and the process
settings that make CPU training steps faster."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

import torch

from samplernn_cli.errors import UsageError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an unavailable device is an error."""
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but no CUDA GPU is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {name}: there are only {torch.cuda.device_count()} CUDA devices"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError("--device mps was asked for but Apple MPS is not available")
    elif device.type != "cpu":
        raise UsageError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


# glibc's malloc(3) parameters (malloc.h): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_heap_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of handing it back to the kernel.

    A CPU training step allocates and frees dozens of activation and gradient buffers of a few
    MB. By default glibc serves such sizes with fresh mmap()s, or trims them off the heap
    when freed, so every step faults the same pages in again and the kernel zeroes them. With
    these settings a buffer below 64 MB comes from the heap, and the heap is trimmed only when
    1 GB lies free at its top (the same settings the 2022 tool's benchmarks pin), so a step
    reuses the pages the one before it freed (``benchmarks/process_settings.py`` counts the
    page faults per step with and without them). The process keeps its peak memory, which it
    needed anyway. Returns False where the C library is not glibc (the settings are glibc's);
    nothing changes then.
    """
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(
            libc.mallopt(_M_MMAP_THRESHOLD, 64 * 2**20) and libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
        )
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Keep Python's cyclic garbage collector off the objects that exist when training starts.

    Every training step makes thousands of short-lived Python objects, so the collector runs
    again and again, and its older generations walk everything loaded before: torch's
    modules, the model, the data. Frozen, those are no longer walked
    (``benchmarks/process_settings.py`` times the collections with and without). Objects made
    during training are collected as usual; on leaving, the frozen ones are handed back to
    the collector (``gc.unfreeze``), so a Python caller that trains twice loses nothing.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
