"""What the sample tier's linear prediction (`--linear-prediction`) costs: a training step and
generation, with and without it, alternating in one process.

* training: `forward_backward` of one `--preset small` step (batch 16, 256 targets) on
  random codes, then the optimizer, as `samplernn train` does; the median over `--steps`;
* generation: `generate_takes` (the Numba sampler) of `--seconds` per clip at 16 kHz for 1
  and 4 clips, at `--preset small` and at the default size (untrained weights: the speed
  does not depend on them); samples per second per clip.

Each pair alternates `--rounds` times and prints the two figures and their ratio (with
prediction / without). Run from the repository root:

    python benchmarks/prediction_cost.py
    python benchmarks/prediction_cost.py --rounds 5 --seconds 4
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from samplernn_cli.config import ModelConfig
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.model import SampleRNN, StepDraws
from samplernn_cli.presets import PRESETS
from samplernn_cli.training.step import forward_backward, make_optimizer

RATE = 16000


def small(order: int) -> ModelConfig:
    values = PRESETS["small"].values_of(ModelConfig)
    return ModelConfig(**{**values, "linear_prediction": order})


def step_seconds(config: ModelConfig, steps: int) -> float:
    torch.manual_seed(0)
    model = SampleRNN(config)
    model.set_prediction_noise(0.1)
    optimizer = make_optimizer(model, 1e-3)
    window = torch.randint(0, config.q_levels, (16, model.history + 256))
    times = []
    for index in range(steps + 2):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        forward_backward(model, window, None, draws=StepDraws(index, slice(None), 16))
        optimizer.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times[2:])


def samples_per_second(config: ModelConfig, clips: int, seconds: float) -> float:
    torch.manual_seed(0)
    model = SampleRNN(config).eval()
    generate_takes(model, clips, 512, seed=0)  # compile and warm up
    started = time.perf_counter()
    generate_takes(model, clips, int(seconds * RATE), seed=1)
    return seconds * RATE / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="training steps per round")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per clip")
    parser.add_argument("--order", type=int, default=256)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"with prediction (order {args.order}) / without", flush=True)  # fmt: skip

    def pair(name: str, measure) -> None:  # type: ignore[no-untyped-def]
        with_, without = [], []
        for _ in range(args.rounds):
            without.append(measure(0))
            with_.append(measure(args.order))
        a, b = statistics.median(with_), statistics.median(without)
        print(f"{name}: {a:,.4g} with, {b:,.4g} without: {a / b:.2f}x "
              f"(rounds {', '.join(f'{x / y:.2f}' for x, y in zip(with_, without, strict=True))})",
              flush=True)  # fmt: skip

    pair("small training step, ms",
         lambda order: 1e3 * step_seconds(small(order), args.steps))  # fmt: skip
    for clips in (1, 4):
        pair(f"small, {clips} clip(s), samples/s per clip",
             lambda order, c=clips: samples_per_second(small(order), c, args.seconds))  # fmt: skip
    default = ModelConfig()
    for clips in (1, 4):
        pair(f"default size, {clips} clip(s), samples/s per clip",
             lambda order, c=clips: samples_per_second(
                 dataclasses.replace(default, linear_prediction=order), c,
                 args.seconds / 4))  # fmt: skip


if __name__ == "__main__":
    main()
