"""Training speed as a user sees it: a whole `samplernn train` run against the 2022 scheme.

Both train the small size (LSTM 1x256, frame 16, embed 64, 256 levels, batch 16, 16 frames per
step = 256 target samples per sequence per step) on the same 60 s excerpt for the same number
of iterations, each in its own process, one after the other, `--rounds` times alternating:

* ours: `samplernn train EXCERPT --preset small --max-iterations N` (validation every 250
  iterations and at the end, checkpoints, the loss log, the live-settings check: everything a
  run does). Timed from the end of the first iteration (a warm-up, as the 2022 scheme's first
  iteration is not counted either) to the end of the session's last step, the final
  validation and checkpoint included, from the run's own log lines.
* the 2022 scheme: `../shared/tools/seedref.py train EXCERPT --max-iters N` (random windows,
  zero state per batch, no validation), timed by the script itself after its warm-up
  iteration.

Prints target samples per second for each and their ratio, per round and over the rounds:
the ratio of the medians, and the median of the rounds' ratios (the two differ when the
machine's speed drifts during the run; a round pairs runs made a minute apart). Run from
the repository root:

    python benchmarks/end_to_end.py
    python benchmarks/end_to_end.py --iterations 300 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import soundfile
import torch
import torchaudio.functional as AF

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEEDREF = SHARED / "tools" / "seedref.py"
CLIP = SHARED / "corpus" / "piano_bach_bwv846_prelude.flac"
RATE = 16000
BATCH, CHUNK = 16, 256
SMALL = ["--hidden_size", "256", "--rnn_layers", "1", "--frame_size", "16", "--embed_size", "64",
         "--quantization", "256", "--batch_size", str(BATCH), "--num_frames", "16"]  # fmt: skip


def excerpt(folder: Path, seconds: float) -> Path:
    frames = int(seconds * soundfile.info(str(CLIP)).samplerate)
    audio, rate = soundfile.read(str(CLIP), frames=frames, dtype="float32", always_2d=True)
    mono = torch.from_numpy(audio.mean(axis=1))
    if rate != RATE:
        mono = AF.resample(mono, rate, RATE)
    path = folder / "excerpt.wav"
    soundfile.write(str(path), mono.numpy(), RATE, subtype="FLOAT")
    return path


def ours(clip: Path, iterations: int, folder: Path, extra: list[str]) -> float:
    """Target samples per second of a `samplernn train` run, iterations 2..N."""
    name = f"e2e_{time.monotonic_ns()}"
    command = [sys.executable, "-m", "samplernn_cli", "train", str(clip), "-o", name,
               "--output-root", str(folder), "--preset", "small", "--max-iterations",
               str(iterations), "--log-every", "1", "--generate-every", str(10**9),
               *extra]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               text=True, env=_env())  # fmt: skip
    first_done = None
    assert process.stderr is not None
    for line in process.stderr:
        if first_done is None and line.startswith("iter 1/"):
            first_done = time.monotonic()
    process.wait()
    ended = time.monotonic()
    if process.returncode != 0 or first_done is None:
        raise SystemExit(f"samplernn train failed ({process.returncode})")
    return (iterations - 1) * BATCH * CHUNK / (ended - first_done)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "SAMPLERNN_DEBUG"}


def seed(clip: Path, iterations: int) -> float:
    result = subprocess.run(
        [sys.executable, str(SEEDREF), "train", str(clip), "--seconds", "1e9", "--max-iters",
         str(iterations - 1), *SMALL, "--val-fraction", "0.1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])["target_samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="excerpt length")
    parser.add_argument("--ours-args", default="", help="extra `samplernn train` options")
    args = parser.parse_args()
    print(
        f"{datetime.now():%Y-%m-%d %H:%M}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {args.iterations} iterations, small size"
    )
    rates: dict[str, list[float]] = {"ours": [], "2022 scheme": []}
    with tempfile.TemporaryDirectory() as tmp:
        clip = excerpt(Path(tmp), args.seconds)
        for round_number in range(args.rounds):
            rates["ours"].append(ours(clip, args.iterations, Path(tmp), args.ours_args.split()))
            rates["2022 scheme"].append(seed(clip, args.iterations))
            print(f"round {round_number + 1}: ours {rates['ours'][-1]:,.0f}, 2022 scheme "
                  f"{rates['2022 scheme'][-1]:,.0f} target samples/s, ratio "
                  f"{rates['ours'][-1] / rates['2022 scheme'][-1]:.2f}x", flush=True)  # fmt: skip
    mine, theirs = statistics.median(rates["ours"]), statistics.median(rates["2022 scheme"])
    ratios = [a / b for a, b in zip(rates["ours"], rates["2022 scheme"], strict=True)]
    print(
        f"median: ours {mine:,.0f}, 2022 scheme {theirs:,.0f} target samples/s; "
        f"ratio {mine / theirs:.2f}x (median of the rounds' ratios: "
        f"{statistics.median(ratios):.2f}x)"
    )


if __name__ == "__main__":
    main()
