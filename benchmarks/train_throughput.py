"""Training throughput and peak memory: the optimised step against the straightforward one.

Both implementations train the same model on the same batches of the same clip:

* optimised (`samplernn_cli.training.step.forward_backward` and `make_optimizer`, what `samplernn
  train` runs): the MLP's first layer as a gather from per-position tables, the MLP and the
  bottom tier's upsampling in slices of bounded memory, fused Adam;
* straightforward (`samplernn_cli.model.reference.naive_loss`, as the 2022 tool did): the first
  layer as a product with the concatenated embeddings of the previous samples, the whole
  chunk at once, Adam's per-parameter loop;
* compiled (`--compile`): the optimised step with the sample tier's MLP and loss
  (`samplernn_cli.model.head_loss.head_loss` with `fused=False`) under torch.compile in
  place of the fused node that `samplernn train` runs on the CPU.

Each (configuration, implementation) runs in its own process, so its peak resident memory
(wait4's rusage) is its own. Throughput is the median of per-iteration target samples per
second after the warm-up iterations. The model FLOP utilisation divides the
matrix-multiply FLOPs each implementation performs per iteration (forward x 3; see
`training_flops`) by the step time and by the fp32 matrix-multiply rate measured in the same
run (a 4096 x 4096 x 4096 product). The optimised step skips most of the first layer's
FLOPs, so its utilisation is of the work it does, not of the straightforward work. Run from the
repository root:

    python benchmarks/train_throughput.py                      # small and default
    python benchmarks/train_throughput.py --configs small --iterations 30
    python benchmarks/train_throughput.py --configs small --compile   # + torch.compile
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_INPUT = REPO.parent / "shared" / "corpus" / "piano_bach_bwv846_prelude.flac"
CONFIGS = {
    # name: (model settings, batch size, frames per step, default iterations)
    "small": ({"hidden_size": 256, "rnn_layers": 1, "embed_size": 64}, 16, 16, 30),
    "default": ({}, 128, 64, 4),  # the 2022 defaults: LSTM 5x1024, frame 16, embed 256
}
WARMUP = 1


def training_flops(settings: dict, batch: int, frames: int, implementation: str) -> float:
    """Matrix-multiply FLOPs of one training iteration of a 2-tier model (forward x 3), as
    the implementation computes it: the straightforward one multiplies the concatenated
    embeddings of every target by the first layer's weight; the optimised one builds the
    per-position tables once per step and then only gathers and adds (no FLOPs counted)."""
    from samplernn_cli.config import ModelConfig

    config = ModelConfig(**settings)
    hidden, levels, frame = config.hidden_size, config.q_levels, config.frame_sizes[0]
    steps = batch * frames  # frame-tier steps
    targets = steps * frame
    gates = 4 if config.rnn_type == "lstm" else 3
    forward = (
        2
        * steps
        * (
            frame * hidden  # input expansion
            + config.rnn_layers * gates * hidden * 2 * hidden  # RNN
            + hidden * hidden * frame  # upsampling
        )
    )
    forward += 2 * targets * (2 * hidden * hidden + hidden * levels)  # MLP after the first layer
    if implementation == "straightforward":
        forward += 2 * targets * frame * config.embed_size * hidden  # the first layer
    else:
        forward += 2 * frame * levels * config.embed_size * hidden  # the first layer's tables
    return 3 * forward


def matmul_peak() -> float:
    """The fastest of five 4096 x 4096 x 4096 fp32 products, in FLOP/s."""
    import torch

    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    a @ b
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * 4096**3 / best


def worker(config: str, implementation: str, iterations: int, source: Path) -> None:
    """Train `iterations` steps in this process and print a JSON line with the timings."""
    import torch

    from samplernn_cli.audio import read_audio
    from samplernn_cli.config import AudioConfig, ModelConfig
    from samplernn_cli.data.plan import SequencePlan
    from samplernn_cli.data.split import Segment
    from samplernn_cli.model import SampleRNN, detach_state
    from samplernn_cli.model.head_loss import head_loss
    from samplernn_cli.model.reference import naive_loss
    from samplernn_cli.training import step
    from samplernn_cli.training.step import forward_backward, make_optimizer

    settings, batch, frames, _ = CONFIGS[config]
    torch.manual_seed(0)
    model = SampleRNN(ModelConfig(**settings))
    if implementation == "straightforward":
        optimizer = torch.optim.Adam(model.parameters())
    else:  # what `samplernn train` uses
        optimizer = make_optimizer(model, 0.001)
    if implementation == "compiled":
        # torch.compile (Inductor) on the sample tier's MLP and loss, the bulk of the work;
        # the first layer's table sums and the LSTM layers stay eager (their kernels are
        # hand-written, and oneDNN's).
        step.head_loss = torch.compile(functools.partial(head_loss, fused=False))
    codes = model.quantizer.encode(read_audio(source, AudioConfig()).samples)
    chunk = frames * model.config.tier_frame_samples[-1]
    plan = SequencePlan([codes], [Segment(0, 0, codes.numel())], history=model.history,
                        zero_code=model.quantizer.zero_code, sequence_length=8 * 16000,
                        chunk_length=chunk, batch_size=batch, seed=0)  # fmt: skip
    sequences = plan.batch(0, 0)
    state = None
    times = []
    for iteration in range(iterations):
        window = plan.window(sequences, iteration % plan.chunks_per_sequence)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        if implementation in ("optimised", "compiled"):
            _, state = forward_backward(model, window, state)
        else:
            loss, state = naive_loss(model, window, state)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        state = detach_state(state)
        times.append(time.perf_counter() - started)
    print(json.dumps({"seconds": times, "samples": batch * chunk}))


def run(config: str, implementation: str, iterations: int, source: Path) -> dict:
    command = [sys.executable, __file__, "--worker", config, implementation,
               "--iterations", str(iterations), "--input", str(source)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    out = process.stdout.read().decode() if process.stdout else ""
    err = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{config}/{implementation} failed:\n{err}")
    result = json.loads(out.strip().splitlines()[-1])
    step = statistics.median(result["seconds"][WARMUP:])
    return {"seconds": step, "samples_per_s": result["samples"] / step,
            "peak_mb": usage.ru_maxrss / 1024}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--iterations", type=int, default=None, help="per run")
    parser.add_argument("--compile", action="store_true",
                        help="also time the optimised step with torch.compile")  # fmt: skip
    parser.add_argument("--worker", nargs=2, metavar=("CONFIG", "IMPLEMENTATION"))
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.iterations, args.input)
        return
    import torch

    peak = matmul_peak()
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; fp32 matmul peak {peak / 1e9:.1f} GFLOP/s; "
          f"input {args.input.name}")  # fmt: skip
    print(f"{'config':8} {'implementation':15} {'samples/s':>10} {'peak MB':>9} {'MFU':>6} "
          f"{'speed x':>8} {'memory x':>9}")  # fmt: skip
    for config in args.configs.split(","):
        settings, batch, frames, default_iterations = CONFIGS[config]
        iterations = args.iterations or default_iterations
        implementations = ["straightforward", "optimised"] + (["compiled"] if args.compile else [])
        results = {impl: run(config, impl, iterations, args.input) for impl in implementations}
        base = results["straightforward"]
        for implementation, result in results.items():
            flops = training_flops(settings, batch, frames, implementation)
            mfu = flops / result["seconds"] / peak
            print(f"{config:8} {implementation:15} {result['samples_per_s']:>10,.0f} "
                  f"{result['peak_mb']:>9,.0f} {mfu:>6.0%} "
                  f"{result['samples_per_s'] / base['samples_per_s']:>7.2f}x "
                  f"{result['peak_mb'] / base['peak_mb']:>8.2f}x", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
