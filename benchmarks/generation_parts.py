"""Generation's parts: what the Numba sampler does differently, each against its alternative.

In alternating rounds, in this process: the whole sampler against the PyTorch sampler (one
compiled call per frame against a library call per operation); an LSTM cell step as one
product against PyTorch's one-step LSTM; a large product of one row (a frame tier's, at the
default size) with float32, bfloat16 (PyTorch's) and int8 weights; the two compiled kernels
(a weight row at a time, four at a time) against BLAS for a few rows; a frame of samples
with one group of clips per thread against one clip per task; and one clip of a small model
with the sample MLP split between the threads against the sampler's choice (one thread),
idle and beside busy processes.

    python benchmarks/generation_parts.py --seconds 0.25
    python benchmarks/generation_parts.py --rounds 9
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from samplernn_cli.config import ModelConfig
from samplernn_cli.generation import kernels, numba_sampler
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.model import SampleRNN

RATE = 16000
DEFAULT = ModelConfig()  # the 2022 defaults: LSTM 5x1024, frame 16, embed 256, 256 levels
SMALL = ModelConfig(hidden_size=256, rnn_layers=1, embed_size=64)
TINY = ModelConfig(hidden_size=48, rnn_layers=1, frame_sizes=(4,), embed_size=4, q_levels=32)


def timed(function: object, *args: object, **kwargs: object) -> float:
    started = time.perf_counter()
    function(*args, **kwargs)  # type: ignore[operator]
    return time.perf_counter() - started


def alternate(
    candidates: dict[str, Callable[[], object]], rounds: int, repeats: int = 1
) -> dict[str, float]:
    """Each candidate's seconds per call: the median over ``rounds`` of a block of
    ``repeats`` calls, the candidates taking turns block by block (after one warm-up call
    each). Blocks, not single calls, so that the thread pools of one (BLAS's, Numba's,
    PyTorch's), which keep spinning for a while after a call, do not slow the next."""
    for candidate in candidates.values():
        candidate()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, candidate in candidates.items():
            started = time.perf_counter()
            for _ in range(repeats):
                candidate()
            times[name].append((time.perf_counter() - started) / repeats)
    return {name: statistics.median(values) for name, values in times.items()}


def report(title: str, results: dict[str, float], unit: str, per_call: float = 1.0) -> None:
    """Print ``per_call`` units per second (or, for ``unit`` "us", microseconds per call)
    for each candidate, and its speed against the last one's, the Numba sampler's choice."""
    print(f"{title} (speed against the last row's):")
    choice = results[list(results)[-1]]
    for name, seconds in results.items():
        figure = (
            f"{seconds * 1e6:10,.1f} us" if unit == "us" else f"{per_call / seconds:10,.0f} {unit}"
        )
        print(f"  {name:34} {figure} {choice / seconds:6.2f}x", flush=True)


def whole_sampler(seconds: float, rounds: int) -> None:
    torch.manual_seed(0)
    model = SampleRNN(SMALL).eval()
    samples = round(seconds * RATE)
    results = alternate(
        {
            "PyTorch sampler": lambda: generate_takes(model, 1, samples, implementation="torch"),
            "Numba sampler": lambda: generate_takes(model, 1, samples, implementation="numba"),
        },
        rounds,
    )
    report(f"whole sampler, small, one clip of {seconds:g} s", results, "samples/s", samples)


def lstm_step(clips: int, rounds: int) -> None:
    hidden = DEFAULT.hidden_size
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(hidden, hidden, batch_first=True).eval()
    cell = numba_sampler._Cell(lstm, 0, clips, lstm=True, precision="float32")
    x = np.random.default_rng(0).standard_normal((clips, hidden), dtype=np.float32)
    h, c = np.zeros((2, clips, hidden), dtype=np.float32)
    x_torch = torch.from_numpy(x).unsqueeze(1)  # (clips, 1 step, hidden)
    state = (torch.zeros(1, clips, hidden), torch.zeros(1, clips, hidden))

    def torch_step() -> None:
        with torch.no_grad():
            lstm(x_torch, state)

    results = alternate(
        {"PyTorch's one-step LSTM": torch_step, "one product": lambda: cell.step(x, h, c)},
        rounds,
        repeats=20,
    )
    report(f"LSTM cell step, {hidden} hidden, clips: {clips}", results, "us")


def large_product(rounds: int) -> None:
    """One row by an LSTM layer's weights at the default size, (4H, 2H), several matrices in
    turn so that they come from memory, as in generation."""
    hidden = DEFAULT.hidden_size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2 * hidden), dtype=np.float32)
    layers = [
        numba_sampler.Linear(
            rng.standard_normal((4 * hidden, 2 * hidden), dtype=np.float32) * 0.02,
            np.zeros(4 * hidden, dtype=np.float32),
            precision,
        )
        for precision in ("float32", "int8")
        for _ in range(6)
    ]
    dense, quantized = layers[:6], layers[6:]
    halves = [torch.from_numpy(layer.weight).bfloat16() for layer in dense]
    x_half = torch.from_numpy(x[0]).bfloat16()
    out = np.empty((1, 4 * hidden), dtype=np.float32)
    threads = numba_sampler.get_num_threads()

    def each(run: Callable[[int], object]) -> Callable[[], None]:
        return lambda: [run(k) for k in range(6)] and None

    def kernel(layer: numba_sampler.Linear) -> None:
        kernels.affine_parallel(x, layer.weight, layer.scale, layer.bias, out, threads)

    results = alternate(
        {
            "float32, BLAS": each(lambda k: np.matmul(x, dense[k].weight.T, out=out)),
            "bfloat16, PyTorch": each(lambda k: torch.mv(halves[k], x_half)),
            "float32, kernel": each(lambda k: kernel(dense[k])),
            "int8, kernel": each(lambda k: kernel(quantized[k])),
        },
        rounds,
        repeats=5,
    )
    report(f"one row by six {4 * hidden} x {2 * hidden} weights", results, "us")


def few_rows(rows: int, rounds: int) -> None:
    hidden = DEFAULT.hidden_size
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, hidden), dtype=np.float32)
    layer = numba_sampler.Linear(
        rng.standard_normal((hidden, hidden), dtype=np.float32),
        rng.standard_normal(hidden, dtype=np.float32),
    )
    parts = (layer.weight, layer.scale, layer.bias)
    out = np.empty((rows, hidden), dtype=np.float32)

    def blas() -> None:
        np.matmul(x, layer.weight.T, out=out)
        np.add(out, layer.bias, out=out)

    results = alternate(
        {
            "BLAS": blas,
            "kernel, a weight row at a time": lambda: kernels.affine(x, *parts, out),
            "kernel, four weight rows at a time": lambda: kernels.affine_blocked(x, *parts, out),
        },
        rounds,
        repeats=200,
    )
    report(f"product of {rows} rows by {hidden} x {hidden}", results, "us")


def clip_groups(clips: int, rounds: int) -> None:
    torch.manual_seed(0)
    sampler = numba_sampler.NumbaSampler(SampleRNN(DEFAULT).eval(), [1.0] * clips)
    frame_size, hidden = sampler.frame_size, DEFAULT.hidden_size
    rng = np.random.default_rng(0)
    codes = rng.integers(0, sampler.levels, (clips, 2 * frame_size), dtype=np.int64)
    bits = np.zeros(codes.shape, dtype=np.float32)
    conditioning = rng.standard_normal((clips, frame_size, hidden), dtype=np.float32)
    draws = rng.random((clips, frame_size), dtype=np.float32)

    def frame(groups: int) -> Callable[[], None]:
        return lambda: kernels._parallel_groups(
            groups, codes, frame_size, frame_size, sampler.mlp, conditioning,
            sampler.inverse_temperature, draws, sampler.scratch, bits,
        )  # fmt: skip

    threads = min(clips, numba_sampler.get_num_threads())
    results = alternate(
        {"one clip per task": frame(clips), f"one group per thread ({threads})": frame(threads)},
        rounds,
        repeats=20,
    )
    report(f"a frame of {frame_size} samples, default size, clips: {clips}", results, "us")


@contextlib.contextmanager
def busy_processes(busy: bool = True) -> Iterator[int]:
    """With ``busy``, one process per CPU that never waits (as a training run on the same
    machine is) while the block runs; yields how many."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range((os.cpu_count() or 1) if busy else 0)
    ]
    try:
        yield len(spinners)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def one_clip_threads(name: str, config: ModelConfig, seconds: float, rounds: int,
                     busy: bool) -> None:  # fmt: skip
    """One clip with the sample MLP's layers split between the threads at every step (as
    before the sampler weighed their size: two meetings of the threads per sample) against
    the sampler's choice for this size (one thread below the default size), on an idle
    machine or beside one process per CPU that never waits (as a training run on the same
    machine is)."""
    torch.manual_seed(0)
    model = SampleRNN(config).eval()
    samples = round(seconds * RATE)

    def take(split_macs: int) -> Callable[[], object]:
        def run() -> object:
            chosen, numba_sampler.SPLIT_MACS = numba_sampler.SPLIT_MACS, split_macs
            try:
                return generate_takes(model, 1, samples, implementation="numba")
            finally:
                numba_sampler.SPLIT_MACS = chosen

        return run

    with busy_processes(busy) as spinners:
        results = alternate(
            {
                "split at every size": take(0),
                "the sampler's choice": take(numba_sampler.SPLIT_MACS),
            },
            rounds,
        )
    where = f"beside {spinners} busy processes" if busy else "idle"
    report(f"one clip of {seconds:g} s, {name}, {where}", results, "samples/s", samples)


def parts(seconds: float, rounds: int) -> None:
    """What the Numba sampler does differently, each against its alternative."""
    whole_sampler(seconds, rounds)
    for clips in (1, 5):
        lstm_step(clips, rounds)
    large_product(rounds)
    for rows in (1, 2, 5):
        few_rows(rows, rounds)
    clip_groups(5, rounds)
    for name, config in (("small", SMALL), ("hidden 48, frame 4", TINY)):
        for busy in (False, True):
            one_clip_threads(name, config, seconds * 4, rounds, busy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.25, help="audio of the whole sampler")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    args = parser.parse_args()
    print(f"# {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads")  # fmt: skip
    parts(args.seconds, args.rounds)


if __name__ == "__main__":
    main()
