"""Generation speed as a user meets it: whole `samplernn generate` commands at the default
size against the 2022 scheme (`../shared/tools/seedref.py generate`: its model at the same
size, one clip at a time), in the same run, with this machine's limits.

For a checkpoint (default: an untrained default-size one, written first by a one-step
`samplernn train`), each row runs `samplernn generate CKPT --length L --count N --seed 1
--precision P` as a subprocess, and the same command with a clip of one frame; the
difference is the time to generate (start-up, loading and preparing the weights
subtracted). The 2022 scheme generates one clip of the same length (its own start-up
subtracted the same way); N clips one after another cost it N times one.

Limits, measured in the same run: memory bandwidth (a sum over 512 MB on PyTorch's threads:
bytes read per second) and matrix-product speed (a 2048 x 2048 x 2048 float32 product). One
clip reads the frame tiers' weights from memory once per frame; the sample MLP's weights
(9.4 MB in float32 at the default size) stay in the last-level cache when they fit, and are
then not counted. So one clip's ceiling is bandwidth / (bytes read from memory per sample);
many clips share each read, so theirs is FLOP/s / (FLOP per sample), or the bandwidth one
if lower. Each row is printed as a fraction of its ceiling.

    python benchmarks/generation.py
    python benchmarks/generation.py --clips 1,5,32 --length 4 --precisions float32,int8
    python benchmarks/generation.py --checkpoint outputs/run1/run1_best_model.pt
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import ModelConfig

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEEDREF = SHARED / "tools" / "seedref.py"
CLIP = SHARED / "corpus" / "piano_bach_bwv846_prelude.flac"
SAMPLERNN = [sys.executable, "-m", "samplernn_cli"]


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Seconds the command took (it must succeed)."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return seconds


def untrained_checkpoint(folder: Path, *options: str, name: str = "untrained") -> Path:
    """A checkpoint after one tiny step, default-size unless ``options`` say otherwise (what
    its weights are does not change the speed)."""
    run([*SAMPLERNN, "train", str(CLIP), "-o", name, "--output-root", str(folder),
         "--max-iterations", "1", "--batch-size", "1", "--num-frames", "1",
         "--val-fraction", "0", "--speed-spread", "0", "--quiet", *options], folder)  # fmt: skip
    return next((folder / name).glob(f"{name}_epoch_*_model.pt"))


def bandwidth() -> float:
    """Bytes read per second by a sum over 512 MB (median of 5)."""
    data = torch.ones(2**27)
    times = []
    for _ in range(6):
        started = time.perf_counter()
        data.sum()
        times.append(time.perf_counter() - started)
    return 4 * data.numel() / statistics.median(times[1:])


def cache_bytes() -> int:
    """The last-level cache's size (0 where the system does not say)."""
    try:
        text = Path("/sys/devices/system/cpu/cpu0/cache/index3/size").read_text().strip()
    except OSError:
        return 0
    return int(text.rstrip("K")) * 1024 if text.endswith("K") else int(text)


def flops() -> float:
    """FLOP/s of a 2048^3 float32 matrix product on PyTorch's threads (median of 5)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    times = []
    for _ in range(6):
        started = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - started)
    return 2 * 2048**3 / statistics.median(times[1:])


def per_sample(config: ModelConfig, cache: int) -> tuple[float, float, float]:
    """(float32 bytes, int8 bytes, FLOP) per generated sample: every frame tier's large
    weights read from memory once per frame of its own; the sample MLP's once per sample,
    unless they fit in the cache (the first layer's table rows and the input expansions are
    small and counted in float32 either way)."""
    hidden, gates = config.hidden_size, 4 if config.rnn_type == "lstm" else 3
    frame_weights = 0.0
    for frame, ratio in zip(config.tier_frame_samples, config.frame_sizes, strict=True):
        rnn = gates * hidden * 2 * hidden * config.rnn_layers
        if config.skip_connections:
            rnn += gates * hidden * hidden * (config.rnn_layers - 1) + config.rnn_layers * hidden**2
        frame_weights += (rnn + hidden * hidden * ratio) / frame
    mlp = 2 * hidden * hidden + config.q_levels * hidden
    small = config.frame_sizes[0] * hidden  # table rows gathered
    flop = 2 * (frame_weights + mlp + small)
    bytes32, bytes8 = 4 * (frame_weights + small), frame_weights + 4 * small
    if 4 * mlp > cache:
        bytes32 += 4 * mlp
    if mlp > cache:
        bytes8 += mlp
    return bytes32, bytes8, flop


def seed_rate(folder: Path, length: float) -> float:
    """Samples per second of the 2022 scheme at the default size, one clip, start-up
    subtracted."""

    def seconds(clip_length: float) -> float:
        command = [sys.executable, str(SEEDREF), "generate", "--wav", str(CLIP), "--length",
                   str(clip_length), "--count", "1", "--seed", "1"]  # fmt: skip
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"seedref failed:\n{result.stderr[-2000:]}")
        return float(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])

    return round(length * 16000) / (seconds(length) - seconds(0.01))


def stream_latency(folder: Path, checkpoint: Path, precision: str) -> float:
    """Seconds from the WAV header (written once the model is loaded) to the first audio
    of `samplernn generate -o -`."""
    command = [*SAMPLERNN, "generate", str(checkpoint), "-o", "-", "--length", "2",
               "--seed", "1", "--precision", precision]  # fmt: skip
    with subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        header = process.stdout.read(44)
        loaded = time.perf_counter()
        first = process.stdout.read(2)
        audio = time.perf_counter()
        process.stdout.read()
    if len(header) != 44 or len(first) != 2 or process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed")
    return audio - loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="default: an untrained default-size one")
    parser.add_argument("--clips", default="1,5,32")
    parser.add_argument("--precisions", default="float32,int8")
    parser.add_argument("--length", type=float, default=2.0, help="seconds per clip")
    parser.add_argument("--seed-length", type=float, default=1.0,
                        help="seconds of the 2022 scheme's clip")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint = args.checkpoint or untrained_checkpoint(folder)
        loaded = load_checkpoint(checkpoint)
        config, rate = loaded.model_config, loaded.sample_rate
        frame = config.tier_frame_samples[-1] / rate
        memory, compute = bandwidth(), flops()
        bytes32, bytes8, flop = per_sample(config, cache_bytes())
        print(f"# {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
              f"threads; {config.describe()}")  # fmt: skip
        print(f"# limits: memory read {memory / 1e9:.1f} GB/s, matrix product "
              f"{compute / 1e9:.0f} GFLOP/s; per sample {bytes32 / 1e6:.1f} MB (float32) or "
              f"{bytes8 / 1e6:.1f} MB (int8) of weights read from memory, {flop / 1e6:.1f} "
              "MFLOP")  # fmt: skip
        seed = seed_rate(folder, args.seed_length)
        print(f"2022 scheme, 1 clip: {seed:,.0f} samples/s", flush=True)
        print(f"{'precision':9} {'clips':>5} {'samples/s':>10} {'x 2022':>7} {'real time':>9} "
              f"{'of limit':>9} {'whole command':>14}")  # fmt: skip
        for precision in args.precisions.split(","):
            for count in (int(c) for c in args.clips.split(",")):

                def seconds(length: float, count: int = count, precision: str = precision) -> float:
                    out = Path(tempfile.mkdtemp(dir=folder))
                    return run([*SAMPLERNN, "generate", str(checkpoint), "--length", str(length),
                                "--count", str(count), "--seed", "1", "--precision", precision,
                                "--out-dir", str(out)], folder)  # fmt: skip

                whole = seconds(args.length)
                generating = whole - seconds(frame)
                samples = count * round(args.length * rate)
                speed = samples / generating
                weight_bytes = bytes8 if precision == "int8" else bytes32
                # One clip is bound by reading its weights, many clips by computing.
                ceiling = min(memory / weight_bytes * count, compute / flop)
                print(f"{precision:9} {count:>5} {speed:>10,.0f} {speed / seed:>6.1f}x "
                      f"{speed / rate:>8.2f}x {speed / ceiling:>8.0%} "
                      f"{samples / whole:>10,.0f}/s", flush=True)  # fmt: skip
        for precision in args.precisions.split(","):
            latencies = [stream_latency(folder, checkpoint, precision) for _ in range(3)]
            print(f"stream ({precision}): first audio {statistics.median(latencies):.2f} s "
                  "after the header (the model loaded), median of 3", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
