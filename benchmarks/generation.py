"""Generation speed: the fast sampler against the straightforward implementation.

The straightforward implementation (`samplernn_cli.reference.naive_generate`) is the model
run step by step the obvious way, as the 2022 tool did: for every sample an embedding lookup,
a concatenation, four linear layers, a softmax and a multinomial draw; the LSTM and the
upsampling at every frame boundary; one clip at a time. Both run in this process on the
same weights (a checkpoint, or a model initialised with a fixed seed), and the table prints
samples per second for both and the ratio. Generating N clips one after another costs N
times one clip, so the straightforward figure for one clip is also its aggregate rate for N
clips.

    python benchmarks/generation.py                    # every CPU row, 1 s of audio per clip
    python benchmarks/generation.py --rows small-1,small-5 --seconds 4
    python benchmarks/generation.py --checkpoint outputs/run1/run1_best_model.pt
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import ModelConfig
from samplernn_cli.generation.engine import generate_codes
from samplernn_cli.model import SampleRNN
from samplernn_cli.reference import naive_generate

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="default-1,default-5,small-1,small-5,"
                        "gpu-dadabots-100,gpu-dadabots-1")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=1.0, help="audio per clip")
    parser.add_argument("--checkpoint", type=Path, help="use this checkpoint's weights")
    parser.add_argument("--baseline-seconds", type=float, default=None,
                        help="audio for the straightforward run (default: --seconds)")  # fmt: skip
    args = parser.parse_args()
    print(f"# {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads; {args.seconds:g} s of audio per clip at {RATE} Hz")  # fmt: skip
    print(f"{'row':18} {'clips':>5} {'straightforward':>16} {'fast':>12} {'ratio':>7} "
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
        fast = clips * num_samples / seconds
        ratio = "" if baseline is None else f"{fast / baseline:.1f}x"
        base = "-" if baseline is None else f"{baseline:,.0f}/s"
        print(
            f"{row:18} {clips:>5} {base:>16} {fast:>10,.0f}/s {ratio:>7} {fast / RATE:>9.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
