"""A classic reference for `quality.py`'s figures: backward-adaptive linear prediction.

Speech and audio codecs (G.728, for one) predict each sample as a linear combination of the
samples before it, with coefficients fitted again and again on the recent past. No training:
nothing but the audio before a sample is used to predict it. This scores the held-out tail
of each `quality.py` clip (a 60 s excerpt, mono, 16 kHz, peak-normalised, on the linear
256-level grid `samplernn train` uses; the last 10 % held out) with such a predictor, in the
same unit as the models' validation figures (bits per sample of the codes):

* every ``--block`` samples, the coefficients (``--order`` of them) are fitted to the
  previous ``--fit`` samples by the autocorrelation method (the normal equations solved by
  the Levinson-Durbin recursion, as the sample tier's linear prediction does:
  ``samplernn_cli.model.prediction``) under an exponential window of time constant
  ``--tau`` samples, which weights the recent past most;
* each sample's probability is that of its residual (the code minus the prediction) under
  a Laplace distribution discretised to the grid (unit bins), whose scale is the mean
  absolute residual of the ``--span`` samples before it.

A model that scores above this on a clip predicts that clip's next sample worse than a
fitted filter does. It says nothing about what either sounds like when generating.

    python benchmarks/linear_prediction.py --tonal     # the corpus clips and the made ensemble
    python benchmarks/linear_prediction.py quartets/op59_1_adagio.flac --order 128
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import soundfile
import torch
from quality import CORPUS, excerpt  # benchmarks/quality.py
from tonal_clip import ensemble  # benchmarks/tonal_clip.py

from samplernn_cli.audio import read_audio
from samplernn_cli.clip_stats import level_dbfs
from samplernn_cli.config import AudioConfig
from samplernn_cli.data.split import tail_length
from samplernn_cli.model.prediction import LinearPredictor, windowed_taps
from samplernn_cli.quantize import Quantizer

RATE = 16000
SMALL_CHUNK = 256  # --preset small's chunk: the held-out tail is at least one


def laplace_bits(residual: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """-log2 of the probability of the unit bin centred on ``residual`` (a code minus its
    prediction) under a Laplace distribution of ``scale`` centred at 0."""
    z = residual.abs()
    far, near = z.clamp_min(0.5), z.clamp_max(0.5)  # each branch only where it applies
    outer = -math.log(2) - (far - 0.5) / scale + torch.log1p(-torch.exp(-1 / scale))
    inner = torch.log((1 - 0.5 * torch.exp(-(0.5 - near) / scale)
                       - 0.5 * torch.exp(-(0.5 + near) / scale)).clamp_min(1e-300))  # fmt: skip
    return -torch.where(z >= 0.5, outer, inner) / math.log(2)


def held_out_bits(codes: torch.Tensor, zero: int, args: argparse.Namespace) -> float:
    x = (codes - zero).double()
    start = len(x) - tail_length(len(x), args.val_fraction, SMALL_CHUNK)
    ages = torch.arange(args.fit - 1, -1, -1, dtype=torch.float64)
    window = torch.exp(-ages / args.tau)
    # Residuals from ``args.span`` samples before the tail on, each block's by the
    # coefficients fitted before it (the span before the tail: by the tail's first fit).
    residuals = []
    for first in range(start, len(x), args.block):
        last = min(len(x), first + args.block)
        lo = max(0, first - args.fit)
        weighted = x[lo:first] * window[args.fit - (first - lo) :]
        taps = windowed_taps(weighted[None], args.order)[0]
        begin = first - args.span if first == start else first
        predicted = LinearPredictor.apply(x[None, begin - args.order : last - 1], taps[None])[0]
        residuals.append(x[begin:last] - predicted)
    residual = torch.cat(residuals)
    # Each sample's scale: the mean absolute residual of the span before it.
    total = torch.cat([torch.zeros(1, dtype=torch.float64), residual.abs().cumsum(0)])
    ends = torch.arange(args.span, len(residual))
    scale = ((total[ends] - total[ends - args.span]) / args.span).clamp_min(0.3)
    return float(laplace_bits(residual[args.span :], scale).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", type=Path, help="audio files (default: the corpus)")
    parser.add_argument("--seconds", type=float, default=60.0, help="excerpt length")
    parser.add_argument("--offset", type=float, default=0.0, help="excerpt start (s)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--order", type=int, default=256, help="prediction coefficients")
    parser.add_argument("--fit", type=int, default=16000, help="samples each fit reads")
    parser.add_argument("--tau", type=float, default=2000.0, help="the window's time constant")
    parser.add_argument("--block", type=int, default=256, help="samples between fits")
    parser.add_argument("--span", type=int, default=256, help="samples that set the scale")
    parser.add_argument(
        "--tonal",
        action="store_true",
        help="also the made ensemble of sustained tones (benchmarks/tonal_clip.py)",
    )
    args = parser.parse_args()
    quantizer = Quantizer("linear", 256)
    with tempfile.TemporaryDirectory() as tmp:
        sources = args.clips or sorted(CORPUS.glob("*.flac"))
        if args.tonal:
            made = Path(tmp) / "ensemble.flac"
            soundfile.write(str(made), ensemble(args.seconds + args.offset), RATE)
            sources = [*sources, made]
        for source in sources:
            clip = excerpt(source, args.seconds, args.offset, Path(tmp))
            samples = read_audio(clip, AudioConfig(sample_rate=RATE, normalize=True)).samples
            codes = quantizer.encode(samples)
            level = level_dbfs(samples)
            bits = held_out_bits(codes, quantizer.zero_code, args)
            print(f"{source.name}: held-out {bits:.3f} bits per sample (order {args.order}, "
                  f"window {args.tau:g} samples, refitted every {args.block}; clip at "
                  f"{level:.1f} dBFS RMS)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
