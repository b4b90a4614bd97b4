"""Generation speed: the sampler `samplernn generate` runs against the straightforward one.

The straightforward implementation (`samplernn_cli.model.reference.naive_generate`) is the
model run step by step the obvious way, as the 2022 tool did: for every sample an embedding
lookup, a concatenation, four linear layers, a softmax and a multinomial draw; the LSTM and
the upsampling at every frame boundary; one clip at a time. `samplernn generate` runs the
Numba sampler on the CPU and the PyTorch sampler on a GPU
(`samplernn_cli.generation.engine.generate_codes`). Both run in this process on the same
weights (a checkpoint, or a model initialised with a fixed seed), and the table prints
samples per second for both and the ratio. Generating N clips one after another costs N
times one clip, so the straightforward figure for one clip is also its aggregate rate for N
clips.

`--parts` times instead what the Numba sampler does differently
(`samplernn_cli.generation.numba_sampler`), each against its alternative in alternating
rounds: the whole sampler against the PyTorch sampler (one compiled call per frame against
a library call per operation), an LSTM cell step as one product against PyTorch's one-step
LSTM, few-row products in the compiled kernel against BLAS, and a frame of samples with one
group of clips per thread against one clip per task.

    python benchmarks/generation.py                    # every CPU row, 1 s of audio per clip
    python benchmarks/generation.py --rows small-1,small-5 --seconds 4
    python benchmarks/generation.py --checkpoint outputs/run1/run1_best_model.pt
    python benchmarks/generation.py --parts --seconds 0.25
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import ModelConfig
from samplernn_cli.generation import kernels, numba_sampler
from samplernn_cli.generation.engine import generate_codes
from samplernn_cli.model import SampleRNN
from samplernn_cli.model.reference import naive_generate

RATE = 16000
DEFAULT = ModelConfig()  # the 2022 defaults: LSTM 5x1024, frame 16, embed 256, 256 levels
SMALL = ModelConfig(hidden_size=256, rnn_layers=1, embed_size=64)
DADABOTS = ModelConfig(skip_connections=True, weight_norm=True, quantizer="mu-law")
ROWS = {
    # name: (config, clips, device)
    "default-1": (DEFAULT, 1, "cpu"),
    "default-5": (DEFAULT, 5, "cpu"),
    "small-1": (SMALL, 1, "cpu"),
    "small-5": (SMALL, 5, "cpu"),
    "gpu-dadabots-100": (DADABOTS, 100, "cuda"),
    "gpu-dadabots-1": (DADABOTS, 1, "cuda"),
}


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
            "PyTorch sampler": lambda: generate_codes(model, 1, samples, implementation="torch"),
            "Numba sampler": lambda: generate_codes(model, 1, samples, implementation="numba"),
        },
        rounds,
    )
    report(f"whole sampler, small, one clip of {seconds:g} s", results, "samples/s", samples)


def lstm_step(clips: int, rounds: int) -> None:
    hidden = DEFAULT.hidden_size
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(hidden, hidden, batch_first=True).eval()
    cell = numba_sampler._Cell(lstm, 0, clips, lstm=True)
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


def few_rows(rows: int, rounds: int) -> None:
    hidden = DEFAULT.hidden_size
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, hidden), dtype=np.float32)
    weight = rng.standard_normal((hidden, hidden), dtype=np.float32)
    bias = rng.standard_normal(hidden, dtype=np.float32)
    out = np.empty((rows, hidden), dtype=np.float32)

    def blas() -> None:
        np.matmul(x, weight.T, out=out)
        np.add(out, bias, out=out)

    results = alternate(
        {"BLAS": blas, "compiled kernel": lambda: numba_sampler.affine(x, weight, bias, out)},
        rounds,
        repeats=200,
    )
    report(f"product of {rows} rows by {hidden} x {hidden}", results, "us")


def clip_groups(clips: int, rounds: int) -> None:
    torch.manual_seed(0)
    sampler = numba_sampler.NumbaSampler(SampleRNN(DEFAULT).eval(), clips, [1.0] * clips)
    frame_size, hidden, levels = sampler.frame_size, DEFAULT.hidden_size, sampler.levels
    rng = np.random.default_rng(0)
    codes = rng.integers(0, levels, (clips, 2 * frame_size), dtype=np.int64)
    conditioning = rng.standard_normal((clips, frame_size, hidden), dtype=np.float32)
    draws = rng.random((clips, frame_size), dtype=np.float32)
    # x, h1, h2 (clips, H) and logits (clips, levels)
    scratch = [np.empty((clips, width), dtype=np.float32) for width in (hidden,) * 3 + (levels,)]

    def frame(groups: int) -> Callable[[], None]:
        return lambda: kernels._parallel(
            groups, codes, frame_size, frame_size, sampler.tables, sampler.offsets,
            conditioning, sampler.w1, sampler.b1, sampler.w2, sampler.b2, sampler.wo,
            sampler.bo, sampler.inverse_temperature, draws, *scratch,
        )  # fmt: skip

    threads = min(clips, numba_sampler.get_num_threads())
    results = alternate(
        {"one clip per task": frame(clips), f"one group per thread ({threads})": frame(threads)},
        rounds,
        repeats=20,
    )
    report(f"a frame of {frame_size} samples, default size, clips: {clips}", results, "us")


def parts(seconds: float, rounds: int) -> None:
    """What the Numba sampler does differently, each against its alternative."""
    whole_sampler(seconds, rounds)
    for clips in (1, 5):
        lstm_step(clips, rounds)
    for rows in (2, 5):
        few_rows(rows, rounds)
    clip_groups(5, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="default-1,default-5,small-1,small-5,"
                        "gpu-dadabots-100,gpu-dadabots-1")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=1.0, help="audio per clip")
    parser.add_argument("--checkpoint", type=Path, help="use this checkpoint's weights")
    parser.add_argument("--baseline-seconds", type=float, default=None,
                        help="audio for the straightforward run (default: --seconds)")  # fmt: skip
    parser.add_argument("--parts", action="store_true",
                        help="time the Numba sampler's choices against alternatives")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5, help="rounds of --parts")
    args = parser.parse_args()
    print(f"# {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads; {args.seconds:g} s of audio per clip at {RATE} Hz")  # fmt: skip
    if args.parts:
        parts(args.seconds, args.rounds)
        return
    print(f"{'row':18} {'clips':>5} {'straightforward':>16} {'samplernn':>12} {'ratio':>7} "
          f"{'real time':>10}")  # fmt: skip
    baselines: dict[ModelConfig, float] = {}
    for row in args.rows.split(","):
        config, clips, device = ROWS[row]
        if device == "cuda" and not torch.cuda.is_available():
            print(f"{row:18} {clips:>5}  (skipped: no CUDA device)")
            continue
        torch.manual_seed(0)
        if args.checkpoint is not None:
            model = load_checkpoint(args.checkpoint).build_model(device)
        else:
            model = SampleRNN(config).to(device).eval()
        num_samples = round(args.seconds * RATE)
        baseline = None
        if device == "cpu":
            if config not in baselines:
                base_samples = round((args.baseline_seconds or args.seconds) * RATE)
                baselines[config] = base_samples / timed(naive_generate, model, base_samples, 0)
            baseline = baselines[config]
        generate_codes(model, clips, 256, seed=0)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = timed(generate_codes, model, clips, num_samples, seed=1)
        rate = clips * num_samples / seconds
        ratio = "" if baseline is None else f"{rate / baseline:.1f}x"
        base = "-" if baseline is None else f"{baseline:,.0f}/s"
        print(
            f"{row:18} {clips:>5} {base:>16} {rate:>10,.0f}/s {ratio:>7} {rate / RATE:>9.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
