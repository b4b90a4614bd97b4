"""The quiet boost (`generate --quiet-boost`): what it does to takes, and what it costs.

For each checkpoint, for each boost and generation seed, `samplernn generate CKPT --length L
--count N --seed S --quiet-boost B --json` (int8 weights on the CPU, as users get them) and
the takes' median distance to the training audio and their traps, as `generate` reports
them: the table of docs/what-to-expect.md ("Silence that does not end").

Then its cost, in the same run: the first checkpoint's takes generated in-process with no
guard and with a guard that judges every block but never acts (floor 0), alternating, best
of `--repeats`: the ratio is the guard's own cost.

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/quiet_boost.py CKPT [CKPT ...]
    python benchmarks/quiet_boost.py CKPT --boosts 1,1.2,1.5 --seeds 1,2 --count 8 --length 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.generation.quiet import QuietGuard

SAMPLERNN = [sys.executable, "-m", "samplernn_cli"]


def takes(checkpoint: Path, boost: str, seed: str, args: argparse.Namespace, out: Path) -> dict:
    """`generate --json` for one setting: the takes' median distance, traps, mean bits."""
    done = subprocess.run(
        [*SAMPLERNN, "generate", str(checkpoint), "--length", str(args.length), "--count",
         str(args.count), "--seed", seed, "--quiet-boost", boost, "-d", str(out), "--json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    scores = json.loads(done.stdout)["takes"]
    traps = [s["trap"] for s in scores if s["trap"]]
    return {
        "median": statistics.median(s["distance"] for s in scores),
        "traps": traps,
        "bits": statistics.mean(s["bits"] for s in scores),
    }


def cost(checkpoint: Path, args: argparse.Namespace) -> None:
    """Seconds to generate ``--count`` clips without and with a guard that never acts."""
    loaded = load_checkpoint(checkpoint)
    model = loaded.build_model("cpu")
    samples = round(args.length * loaded.sample_rate)
    judging = QuietGuard(floor=0.0, boost=1.2, blocks=16)
    best = {"no guard": float("inf"), "guard judging": float("inf")}
    generate_takes(model, args.count, 4096, seed=1, precision="int8")  # compile, warm up
    for _ in range(args.repeats):
        for label, guard in (("no guard", None), ("guard judging", judging)):
            started = time.perf_counter()
            generate_takes(model, args.count, samples, seed=1, precision="int8", guard=guard)
            best[label] = min(best[label], time.perf_counter() - started)
    base = best["no guard"]
    print(f"cost, {args.count} clips of {samples} samples, best of {args.repeats}: "
          + ", ".join(f"{label} {seconds:.3f} s" for label, seconds in best.items())
          + f"; ratio {best['guard judging'] / base:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--boosts", default="1,1.2")
    parser.add_argument("--seeds", default="1,2", help="generation seeds")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--length", type=float, default=4.0, help="seconds per take")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for checkpoint in args.checkpoints:
            for boost in args.boosts.split(","):
                cells = []
                for seed in args.seeds.split(","):
                    result = takes(checkpoint, boost, seed, args, Path(tmp) / f"{len(rows)}")
                    rows.append({"checkpoint": str(checkpoint), "boost": float(boost),
                                 "seed": int(seed), **result})  # fmt: skip
                    caught = f" ({len(result['traps'])} caught)" if result["traps"] else ""
                    cells.append(f"{result['median']:.2f}{caught}")
                print(f"{checkpoint.name}, --quiet-boost {boost}: median distance "
                      f"{', '.join(cells)} (seeds {args.seeds})", flush=True)  # fmt: skip
    cost(args.checkpoints[0], args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
