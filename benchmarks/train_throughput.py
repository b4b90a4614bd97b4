"""Training throughput (target samples per second) and peak memory of `samplernn train`.

Each configuration runs as its own `samplernn train` process on the same input, so the peak
resident memory (from wait4's rusage) belongs to that configuration alone. Throughput is the
median of the per-iteration `samples_per_s` column of NAME_losses.csv, leaving out the first
iterations (warm-up). Run from the repository root:

    python benchmarks/train_throughput.py                      # small and default, 20/4 iterations
    python benchmarks/train_throughput.py --configs small --iterations 50
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_INPUT = REPO.parent / "shared" / "corpus" / "piano_bach_bwv846_prelude.flac"

CONFIGS: dict[str, tuple[list[str], int]] = {
    # name: (flags, default iteration count)
    "small": (["--preset", "small"], 40),
    "default": (["--preset", "seed"], 4),
}
NEVER = str(10**12)


def run_config(name: str, flags: list[str], iterations: int, source: Path, root: Path) -> dict:
    command = [
        sys.executable, "-m", "samplernn_cli", "train", str(source), "-o", name,
        "--output-root", str(root), *flags, "--max-iterations", str(iterations),
        "--generate_every", NEVER, "--checkpoint_every", NEVER, "--val-every", NEVER,
        "--val-fraction", "0.05", "--device", "cpu", "--quiet",
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: samplernn train failed:\n{stderr}")
    with open(root / name / f"{name}_losses.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    skip = min(2, len(rows) - 1)
    rates = [float(row["samples_per_s"]) for row in rows[skip:]]
    return {
        "config": name,
        "iterations": len(rows),
        "samples_per_s": statistics.median(rates),
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--iterations", type=int, default=None, help="per configuration")
    args = parser.parse_args()
    import torch

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, input {args.input.name}"
    )
    print(f"{'config':10} {'iters':>5} {'samples/s':>10} {'peak RSS MB':>12} {'wall s':>8}")
    with tempfile.TemporaryDirectory() as root:
        for name in args.configs.split(","):
            flags, iterations = CONFIGS[name]
            result = run_config(name, flags, args.iterations or iterations, args.input, Path(root))
            print(
                f"{result['config']:10} {result['iterations']:>5} "
                f"{result['samples_per_s']:>10,.0f} {result['peak_rss_mb']:>12,.0f} "
                f"{result['wall_s']:>8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
