"""What the process-wide settings of a CPU run save, each measured both ways in processes of
its own (a setting, once made, holds for the rest of its process):

* heap (`samplernn_cli.device.keep_heap_memory`): minor page faults and milliseconds per
  training step at the small preset's shapes (LSTM 1x256, frame 16, embed 64, batch 16 x 256
  targets), with glibc's default malloc settings and with the tool's;
* collector (`samplernn_cli.device.long_lived_objects_frozen`): the collections Python's
  cyclic garbage collector makes during the training loop of `samplernn train --preset
  small --max-iterations STEPS` on the bundled example (run in the worker's process, so the
  collections can be timed), the seconds they take and their share of the loop's time, with
  everything loaded before training walked by the collector and with it frozen;
* spin (a setting left to the user, `GOMP_SPINCOUNT`): seconds to generate one clip with
  `samplernn generate` (whole commands, less the same command for one frame: start-up and
  loading subtracted) from an untrained small-preset and default-size checkpoint, on an idle
  machine and beside one busy process per CPU (a loop that never waits, as a training run on
  the same machine is), with libgomp's spin count (unset, what the tool runs) and the
  `--spins` given;
* exit (`samplernn_cli.cli.app.run`): seconds from the end of a command to the end of its
  process, after a short `samplernn train` (`--preset small --max-iterations 3` on the
  bundled example) and after only importing torch, with Python's own shutdown
  (`samplernn_cli.cli.app.main`'s `sys.exit`) and with `run()`'s quick exit.

Each figure is the median over `--rounds` processes per setting, the settings taking turns.
The first three parts run by default, spin only when named. Run from the repository root:

    python benchmarks/process_settings.py
    python benchmarks/process_settings.py --parts exit --rounds 5
    python benchmarks/process_settings.py --parts spin --spins 10000,1000 --where busy
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "samplernn_cli" / "examples" / "speech_allison_10s.flac"
WARMUP_STEPS = 5
# Each part: its two settings, the tool's last.
PARTS = {
    "heap": ("glibc defaults", "keep_heap_memory"),
    "collector": ("not frozen", "frozen"),
    "exit": ("Python's shutdown", "quick exit"),
    "spin": (),  # see spin_part
}
SPIN_SIZES = {  # name: (train options of a one-step run, seconds of the clip)
    "small": (["--preset", "small"], 4.0),
    "default size": ([], 1.0),
}
EXIT_COMMANDS = ("train", "import torch")


def training_step() -> object:
    """A function running one CPU training step at the small preset's shapes."""
    import torch

    from samplernn_cli.config import ModelConfig
    from samplernn_cli.model import SampleRNN
    from samplernn_cli.training.step import forward_backward, make_optimizer

    torch.manual_seed(0)
    model = SampleRNN(ModelConfig(hidden_size=256, rnn_layers=1, embed_size=64))
    optimizer = make_optimizer(model, 1e-3)
    window = torch.randint(0, 256, (16, model.history + 256))

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        forward_backward(model, window, None)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return run


def heap_worker(setting: str, steps: int) -> dict:
    import resource

    from samplernn_cli.device import keep_heap_memory

    if setting == "keep_heap_memory" and not keep_heap_memory():
        raise SystemExit("the heap settings are glibc's; this C library is not glibc")
    step = training_step()
    for _ in range(WARMUP_STEPS):
        step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    started = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - started
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {"faults per step": faults / steps, "ms per step": seconds / steps * 1e3}


def collector_worker(setting: str, steps: int, folder: Path) -> dict:
    """Train ``steps`` iterations through the CLI in this process, timing the collections
    made while the training loop runs (the window the tool freezes the collector's objects
    for: `samplernn_cli.training.loop`'s use of `long_lived_objects_frozen`)."""
    import contextlib
    import gc
    from unittest import mock

    from samplernn_cli.cli import app
    from samplernn_cli.device import long_lived_objects_frozen
    from samplernn_cli.training import loop

    figures = {"collections": 0, "collector s": 0.0, "loop s": 0.0}
    began = [0.0]

    def timing(phase: str, info: dict) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            figures["collector s"] += time.perf_counter() - began[0]
            figures["collections"] += 1

    inner = long_lived_objects_frozen if setting == "frozen" else contextlib.nullcontext

    @contextlib.contextmanager
    def timed_window() -> Iterator[None]:
        with inner():
            gc.callbacks.append(timing)
            started = time.perf_counter()
            try:
                yield
            finally:
                figures["loop s"] += time.perf_counter() - started
                gc.callbacks.remove(timing)

    sys.argv = train_command(steps, folder)
    with (
        mock.patch.object(loop, "long_lived_objects_frozen", timed_window),
        contextlib.suppress(SystemExit),
    ):
        app.main()
    figures["share of the loop %"] = 100 * figures["collector s"] / figures["loop s"]
    return figures


def train_command(iterations: int, folder: Path) -> list[str]:
    return ["samplernn", "train", str(EXAMPLE), "--preset", "small", "--max-iterations",
            str(iterations), "--output-root", str(folder), "-o", "run", "--quiet"]  # fmt: skip


def exit_worker(setting: str, command: str, stamp: Path, folder: Path) -> None:
    """Run ``command`` through the CLI's entry point, write the time it returned to
    ``stamp``, then exit as ``setting`` says."""
    import torch  # noqa: F401  (the import torch command: loaded before the CLI runs)

    from samplernn_cli.cli import app

    sys.argv = train_command(3, folder) if command == "train" else ["samplernn", "--version"]
    command_main = app.main

    def stamped() -> None:
        try:
            command_main()
        finally:
            stamp.write_text(repr(time.time()))

    if setting == "quick exit":
        app.main = stamped
        app.run()
    stamped()


def worker(part: str, setting: str, args: argparse.Namespace) -> None:
    if part == "heap":
        print(json.dumps(heap_worker(setting, args.steps)))
    elif part == "collector":
        print(json.dumps(collector_worker(setting, args.steps, args.folder)))
    else:
        exit_worker(setting, args.command, args.stamp, args.folder)


def measure(part: str, setting: str, args: argparse.Namespace, command: str) -> dict:
    """One worker process's figures."""
    with tempfile.TemporaryDirectory() as folder:
        stamp = Path(folder) / "returned"
        result = subprocess.run(
            [sys.executable, __file__, "--worker", part, setting, "--steps", str(args.steps),
             "--folder", folder, "--stamp", str(stamp), "--command", command],
            capture_output=True, text=True, cwd=folder,
        )  # fmt: skip
        ended = time.time()
        if result.returncode != 0:
            raise SystemExit(f"{part}/{setting} failed:\n{result.stderr}")
        if part == "exit":
            return {"exit s": ended - float(stamp.read_text())}
        return json.loads(result.stdout.strip().splitlines()[-1])


def shown_figure(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def compare(title: str, part: str, args: argparse.Namespace, command: str = "train") -> None:
    settings = PARTS[part]
    runs: dict[str, list[dict]] = {setting: [] for setting in settings}
    for _ in range(args.rounds):
        for setting in settings:
            runs[setting].append(measure(part, setting, args, command))
    print(f"{title}:")
    medians = {
        setting: {key: statistics.median(run[key] for run in found) for key in found[0]}
        for setting, found in runs.items()
    }
    tool = medians[settings[-1]]
    for setting, figures in medians.items():
        shown = "  ".join(f"{key} {shown_figure(value)}" for key, value in figures.items())
        ratios = "  ".join(
            f"{figures[key] / tool[key]:.2f}x" if tool[key] else "-" for key in figures
        )
        mark = "  <- samplernn" if setting == settings[-1] else ""
        print(f"  {setting:18} {shown}  (against the tool's: {ratios}){mark}", flush=True)


def spin_part(args: argparse.Namespace) -> None:
    """One clip's generation with each spin count, idle and beside busy processes."""
    from generation import SAMPLERNN, run, untrained_checkpoint  # benchmarks/generation.py
    from generation_parts import busy_processes  # benchmarks/generation_parts.py

    from samplernn_cli.checkpoint import load_checkpoint

    # The user's values first, then the tool's: nothing set, so libgomp's default.
    spins: list[int | None] = [int(value) for value in args.spins.split(",")]
    spins.append(None)
    base = {key: value for key, value in os.environ.items() if key != "GOMP_SPINCOUNT"}
    envs = {spin: base if spin is None else {**base, "GOMP_SPINCOUNT": str(spin)}
            for spin in spins}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoints = {}  # name: (checkpoint, seconds of its bottom tier's frame)
        for name, (options, _) in SPIN_SIZES.items():
            checkpoint = untrained_checkpoint(folder, *options, name=name.replace(" ", "_"))
            loaded = load_checkpoint(checkpoint)
            frame = loaded.model_config.tier_frame_samples[-1] / loaded.sample_rate
            checkpoints[name] = (checkpoint, frame)
        takes = itertools.count()

        def generating(name: str, length: float, env: dict[str, str]) -> float:
            checkpoint, frame = checkpoints[name]
            seconds = [
                run([*SAMPLERNN, "generate", str(checkpoint), "--length", str(clip_length),
                     "--seed", "1", "--quiet", "-o", f"take{next(takes)}.wav"], folder, env)
                for clip_length in (length, frame)
            ]  # fmt: skip
            return seconds[0] - seconds[1]

        for checkpoint, frame in checkpoints.values():  # compiles the kernels if not cached
            run([*SAMPLERNN, "generate", str(checkpoint), "--length", str(frame), "--quiet",
                 "-o", f"take{next(takes)}.wav"], folder)  # fmt: skip
        for busy in {"idle": (False,), "busy": (True,), "both": (False, True)}[args.where]:
            with busy_processes(busy) as spinners:
                for name, (_, length) in SPIN_SIZES.items():
                    times: dict[int | None, list[float]] = {spin: [] for spin in spins}
                    for _ in range(args.rounds):
                        for spin in spins:
                            times[spin].append(generating(name, length, envs[spin]))
                    where = f"beside {spinners} busy processes" if busy else "idle"
                    print(f"spin: one {length:g} s clip, {name}, {where}:")
                    tool = statistics.median(times[None])
                    for spin in spins:
                        seconds = statistics.median(times[spin])
                        label = (
                            "unset (libgomp's default)"
                            if spin is None
                            else f"GOMP_SPINCOUNT={spin}"
                        )
                        mark = "  <- samplernn" if spin is None else ""
                        print(f"  {label:30} {seconds:8.2f} s to generate  "
                              f"{seconds / tool:5.2f}x unset's{mark}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="heap,collector,exit",
                        help=f"of {','.join(PARTS)}")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="processes per setting")
    parser.add_argument("--steps", type=int, default=100, help="timed training steps")
    parser.add_argument("--worker", nargs=2, metavar=("PART", "SETTING"))
    parser.add_argument("--command", choices=EXIT_COMMANDS, default="train")
    parser.add_argument("--stamp", type=Path)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--spins", default="10000,1000",
                        help="spin: GOMP_SPINCOUNT values to compare with unset")  # fmt: skip
    parser.add_argument("--where", choices=("idle", "busy", "both"), default="both",
                        help="spin: on an idle machine, beside busy processes or both")  # fmt: skip
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args)
        return
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{platform.libc_ver()[0] or 'unknown libc'}; median of {args.rounds} processes "
          f"per setting, {args.steps} training steps each")  # fmt: skip
    for part in args.parts.split(","):
        if part == "spin":
            spin_part(args)
        elif part == "exit":
            for command in EXIT_COMMANDS:
                compare(f"exit after {command}", part, args, command)
        else:
            compare(f"{part} ({args.steps} training steps)", part, args)


if __name__ == "__main__":
    main()
