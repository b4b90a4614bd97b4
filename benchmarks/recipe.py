"""Screen training recipes by their takes as well as their bits: each variant (extra `samplernn
train` options) trains `--preset small` on each clip with each seed for the same number of
iterations, then makes `--takes` takes of 4 s from a fixed seed, measured as
`quality.py` measures them (the distance to the clip's training part, the log-mel distance,
the traps, the level).

Equal iterations, not equal time: `--jobs` runs train side by side, each with one thread
(on a 2-core machine two runs at once do as much work as one with two threads), so their
speed says nothing; what a variant costs per step is measured apart (`end_to_end.py`,
`training_step_parts.py`), and `quality.py` compares the chosen recipe with the 2022 scheme
at equal wall-clock budgets. Each run's folder, takes and figures are kept under `--out`
(VARIANT/CLIP_sSEED/), so a screen can be stopped and continued, and variants added later.

    python benchmarks/recipe.py CLIPS... --variant defaults= --variant "no-lp=--linear-prediction 0"
    python benchmarks/recipe.py CLIPS... --variant ... --iterations 1500 --seeds 0,1 --out runs
    python benchmarks/recipe.py CLIPS... --variant ... --temperatures 0.9,1,1.1   # takes at each

Clips are used whole (cut them with `quality.py`'s excerpt first: a minute at 16 kHz); the
last 10 % of each is held out. The table gives, per variant and clip, the mean over seeds of
the held-out bits, of the takes' median distance and median log-mel distance, and the traps
of all its takes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
from quality import SEEDREF, SMALL, VAL_FRACTION, Judge, heard, peak  # benchmarks/quality.py

SAMPLERNN = [sys.executable, "-m", "samplernn_cli"]
SEED_SCHEME = "(seedref)"
SEED_NAME = "2022 scheme"


def run(command: list, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                            env=env)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{result.stderr[-3000:]}")
    return result


def train_and_generate(clip: Path, seed: int, extra: str, folder: Path,
                       args: argparse.Namespace) -> dict:  # fmt: skip
    """Train one variant on one clip with one seed and make its takes (once: a finished
    run's record is read back)."""
    record = folder / "result.json"
    if record.exists():
        return json.loads(record.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "NUMBA_NUM_THREADS": threads}  # fmt: skip
    if extra == SEED_SCHEME:
        return train_seedref(clip, seed, folder, args, env)
    trained = run([*SAMPLERNN, "train", clip, "-o", "run", "--output-root", folder, "--preset",
                   "small", "--val-fraction", VAL_FRACTION, "--seed", seed, "--max-iterations",
                   args.iterations, "--generate-every", 10**9, "--quiet", *extra.split()],
                  folder, env)  # fmt: skip
    checkpoint = trained.stdout.strip().splitlines()[-1]
    summary = json.loads(run([*SAMPLERNN, "inspect-checkpoint", checkpoint, "--json"], folder,
                             env).stdout)  # fmt: skip
    run([*SAMPLERNN, "generate", checkpoint, "--length", 4, "--count", args.takes, "--seed", 1,
         "-d", folder / "takes", "--quiet"], folder, env)  # fmt: skip
    result = {
        "clip": clip.stem, "seed": seed, "extra": extra, "checkpoint": checkpoint,
        "folder": str(folder),
        "bits": summary["losses"]["last_val_loss"],
        "iterations": summary["training"]["iteration"],
    }  # fmt: skip
    record.write_text(json.dumps(result, indent=1) + "\n")
    return result


def train_seedref(clip: Path, seed: int, folder: Path, args: argparse.Namespace,
                  env: dict[str, str]) -> dict:  # fmt: skip
    """The 2022 scheme (quality.py's settings) for --seed-iterations, and its takes; they are
    judged at the scale `samplernn train` hears the clip at (the result's "scale", as
    quality.py's Judge.takes reads it)."""
    checkpoint = folder / "seedref.pt"
    command = [sys.executable, SEEDREF, "train", clip, "--seconds", 10**6, *SMALL,
               "--num_frames", 8, "--val-fraction", VAL_FRACTION, "--seed", seed,
               "--max-iters", args.seed_iterations, "--save", checkpoint]  # fmt: skip
    trained = run(command, folder, env)
    report = json.loads(trained.stdout.strip().splitlines()[-1])
    run([sys.executable, SEEDREF, "generate", "--ckpt", checkpoint, "--length", 4, "--count",
         args.takes, "--batched", "--seed", 1, "--out", folder / "takes"], folder, env)  # fmt: skip
    result = {"clip": clip.stem, "seed": seed, "extra": SEED_SCHEME,
              "folder": str(folder), "bits": report["val_bits"],
              "iterations": report["iterations"],
              "scale": peak(soundfile.read(str(clip), dtype="float32")[0])}  # fmt: skip
    (folder / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def takes_at(result: dict, temperature: float, args: argparse.Namespace) -> list[Path]:
    """The run's takes at ``temperature`` (made once: 1 is the run's own takes)."""
    folder = Path(result["folder"])
    if temperature == 1.0:
        return sorted((folder / "takes").glob("*.wav"))
    made = folder / f"takes_t{temperature:g}"
    if not made.exists():
        run([*SAMPLERNN, "generate", result["checkpoint"], "--length", 4, "--count", args.takes,
             "--seed", 1, "--temperature", temperature, "-d", made, "--quiet"], folder,
            dict(os.environ))  # fmt: skip
    return sorted(made.glob("*.wav"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="+", type=Path)
    parser.add_argument("--variant", action="append", required=True,
                        help="NAME=OPTIONS: a recipe to screen (repeat)")  # fmt: skip
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--takes", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once")
    parser.add_argument("--threads", type=int, default=1, help="threads per run")
    parser.add_argument("--out", type=Path, default=Path("recipe_runs"))
    parser.add_argument("--temperatures", default="1", help="of the takes, comma-separated")
    parser.add_argument("--seed-iterations", type=int, default=0,
                        help="also the 2022 scheme, this many iterations (0: not)")  # fmt: skip
    args = parser.parse_args()
    variants = dict(v.split("=", 1) for v in args.variant)
    if args.seed_iterations:
        variants[SEED_NAME] = SEED_SCHEME
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(name, clip, seed) for name in variants for seed in seeds for clip in args.clips]
    with ThreadPoolExecutor(args.jobs) as pool:

        def one(job: tuple[str, Path, int]) -> dict:
            name, clip, seed = job
            folder = args.out / name / f"{clip.stem}_s{seed}"
            return train_and_generate(clip.resolve(), seed, variants[name], folder, args)

        results = list(pool.map(one, jobs))
    judges = {}
    table: dict[tuple[str, str], list[dict]] = {}
    temperatures = [float(t) for t in args.temperatures.split(",")]
    for (name, clip, _), result in zip(jobs, results, strict=True):
        if clip not in judges:
            audio = soundfile.read(str(clip), dtype="float32")[0]
            judges[clip] = Judge(heard(audio)[: int(len(audio) * (1 - VAL_FRACTION))])
        for temperature in temperatures if name != SEED_NAME else [1.0]:
            takes = judges[clip].takes(
                takes_at(result, temperature, args), scale=result.get("scale", 1.0)
            )
            label = name if len(temperatures) == 1 else f"{name} t{temperature:g}"
            table.setdefault((label, clip.stem), []).append({**result, **takes})
    print(f"{'variant':16s} {'clip':10s} {'bits':>6s} {'distance':>9s} {'log-mel':>8s} "
          f"{'level':>6s}  traps (of {args.takes} x {len(seeds)} seeds)")  # fmt: skip
    for (name, clip), runs in table.items():
        caught = {}
        for r in runs:
            for trap, count in r["traps"].items():
                caught[trap] = caught.get(trap, 0) + count
        traps = ", ".join(f"{n} {t}" for t, n in caught.items() if n) or "-"
        distances = [r["distance"] for r in runs]
        print(f"{name:16s} {clip:10s} {np.mean([r['bits'] for r in runs]):6.3f} "
              f"{np.mean(distances):9.2f} {np.mean([r['mel_distance'] for r in runs]):8.2f} "
              f"{np.mean([r['level_db'] for r in runs]):6.1f}  {traps}   (distance by seed: "
              + ", ".join(f"{d:.2f}" for d in distances) + ")")  # fmt: skip


if __name__ == "__main__":
    main()
