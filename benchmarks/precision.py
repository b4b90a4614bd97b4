"""Is generation at int8 the same model as at float32? And how much faster is it?

For a checkpoint and an audio file, in one process:

* next-sample distributions: the model as trained and its int8 rounding
  (`samplernn_cli.model.precision.rounded_copy`, exactly what the int8 sampler computes
  with) are fed the same history, the first `--seconds` of the audio (teacher forcing, the
  state carried as in training); printed: the KL divergence of the int8 distribution from
  the float32 one at every sample (mean, median, 99th percentile, largest, in bits), and
  each model's bits per sample on that audio;
* generated clips: `--clips` clips of `--length` s at each precision with the same seeds;
  printed: each precision's mean spectral flatness, centroid, level and the model's own bits
  per sample of its clips, with the spread (standard deviation) over the seeds;
* speed: samples per second of one clip and of `--many` clips at each precision.

    python benchmarks/precision.py outputs/run1/run1_best_model.pt in.wav
    python benchmarks/precision.py CKPT AUDIO --seconds 10 --clips 6 --length 4 --many 32
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from samplernn_cli.audio import read_audio
from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.clip_stats import spectral_stats
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.model import SampleRNN
from samplernn_cli.model.precision import divergence


def report_divergence(model: SampleRNN, codes: torch.Tensor, chunk: int) -> None:
    found = divergence(model, codes, chunk)
    kl = found.kl_bits
    q = torch.quantile(kl.float(), torch.tensor([0.5, 0.99]))
    print(f"KL(float32 || int8) per sample over {kl.numel():,} samples: mean "
          f"{kl.mean():.5f} bits, median {q[0]:.5f}, 99th percentile {q[1]:.5f}, largest "
          f"{kl.max():.4f}")  # fmt: skip
    change = found.bits_int8 - found.bits_float32
    print(f"bits per sample of the audio: float32 {found.bits_float32:.4f}, int8 "
          f"{found.bits_int8:.4f} (difference {change:+.4f})")  # fmt: skip


def clips(model: SampleRNN, rate: int, count: int, seconds: float) -> None:
    samples = round(seconds * rate)
    print(f"{'precision':10} {'flatness':>16} {'centroid Hz':>16} {'level dBFS':>16} "
          f"{'own bits':>16}")  # fmt: skip
    for precision in ("float32", "int8"):
        rows = []
        for seed in range(count):
            takes = generate_takes(model, 1, samples, seed=seed, precision=precision)
            audio = model.quantizer.decode(takes.codes[0]).numpy()
            stats = spectral_stats(audio, rate)
            rows.append([*stats.values(), float(takes.bits_per_sample[0])])
        columns = list(zip(*rows, strict=True))
        shown = [f"{statistics.mean(c):8.3f} ±{statistics.stdev(c):6.3f}" for c in columns]
        print(f"{precision:10} " + " ".join(f"{text:>16}" for text in shown), flush=True)


def speed(model: SampleRNN, rate: int, many: int, seconds: float) -> None:
    samples = round(seconds * rate)
    for count in (1, many):
        figures = {}
        for precision in ("float32", "int8"):
            generate_takes(model, count, 64, precision=precision)  # compile, prepare
            started = time.perf_counter()
            generate_takes(model, count, samples, seed=1, precision=precision)
            figures[precision] = count * samples / (time.perf_counter() - started)
        print(f"{count:3} clips: float32 {figures['float32']:8,.0f} samples/s, int8 "
              f"{figures['int8']:8,.0f} samples/s ({figures['int8'] / figures['float32']:.2f}x)",
              flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("audio", type=Path)
    parser.add_argument("--seconds", type=float, default=10.0, help="audio fed to both")
    parser.add_argument("--clips", type=int, default=6, help="clips per precision")
    parser.add_argument("--length", type=float, default=4.0, help="seconds per clip")
    parser.add_argument("--many", type=int, default=32, help="clips of the batched row")
    parser.add_argument("--speed-seconds", type=float, default=1.0)
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.checkpoint)
    model = checkpoint.build_model("cpu")
    print(f"# {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads; {checkpoint.model_config.describe()}, iteration "
          f"{checkpoint.iteration}")  # fmt: skip
    audio = read_audio(args.audio, checkpoint.audio).samples[
        : round(args.seconds * checkpoint.sample_rate)
    ]
    codes = torch.cat([torch.full((model.history,), model.quantizer.zero_code),
                       model.quantizer.encode(audio)])  # fmt: skip
    chunk = checkpoint.train.chunk_length(checkpoint.model_config)
    report_divergence(model, codes, chunk)
    clips(model, checkpoint.sample_rate, args.clips, args.length)
    speed(model, checkpoint.sample_rate, args.many, args.speed_seconds)


if __name__ == "__main__":
    main()
