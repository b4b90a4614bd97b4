"""The figures behind generation's trap rules (samplernn_cli.generation.ranking): each rule's
statistic on takes of trained models, on windows of their training audio, and on made
signals, beside the threshold.

For each checkpoint, --takes takes of --length seconds are generated at temperature 1 (the
CPU's default precision) and scored as `generate --candidates` scores them; the training
audio (the checkpoint's first input file, at the gain training gave it) is cut into windows
of the same length and measured the same way. Made signals show what the rules catch.

    python benchmarks/ranking.py CKPT [CKPT ...] --takes 16 --length 4 --temperatures 1,0.9

With --picture DIR, the first checkpoint's takes at the first temperature are drawn twice
(DIR/takes_all.png: every take in the order generated, with its score; DIR/takes_kept.png:
the --keep best, as `generate --count K --candidates N` writes them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from samplernn_cli.audio import read_audio
from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import AudioConfig
from samplernn_cli.generation import ranking
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.generation.ranking import TakeScore, score_take
from samplernn_cli.pictures import _colour_range, _draw_spectrogram, _figure, mel_spectrogram


def draw_takes(path: Path, audio: torch.Tensor, scores: list[TakeScore], rate: int,
               heading: str) -> None:  # fmt: skip
    """The takes' spectrograms, two to a row, each titled with its scores."""
    spectrograms = [mel_spectrogram(audio[s.take - 1], rate) for s in scores]
    rows = (len(scores) + 1) // 2
    figure = _figure(12.0, 0.8 + 2.4 * rows)
    figure.suptitle(heading, fontsize="large")
    limits = _colour_range(spectrograms)
    for index, (spectrogram, s) in enumerate(zip(spectrograms, scores, strict=True)):
        ax = figure.add_subplot(rows, 2, index + 1)
        verdict = f"rejected: {s.trap}" if s.trap else f"{s.bits:.3f} bits"
        _draw_spectrogram(ax, spectrogram, limits, f"take {s.take}: {verdict}")
    figure.savefig(path, dpi=80)


def table(label: str, scores: list[TakeScore]) -> None:
    """One row per group: each statistic's median and its extreme towards the trap."""
    bits = [s.bits for s in scores if s.bits == s.bits]
    silent = [s.silent_share for s in scores]
    loop = [s.loop_correlation for s in scores]
    flat = [s.flatness for s in scores]
    traps = ranking.describe_traps(scores) or "none"
    print(f"{label:36} {len(scores):>3}  silent {np.median(silent):.2f} (max {max(silent):.2f})"
          f"  loop {np.median(loop):.2f} (max {max(loop):.2f})  flatness {np.median(flat):.3f}"
          f" (max {max(flat):.3f})  bits {np.median(bits) if bits else float('nan'):.3f}"
          f"  traps: {traps}", flush=True)  # fmt: skip


def training_windows(checkpoint_path: Path, seconds: float) -> tuple[list[np.ndarray], int, float]:
    """Windows of the checkpoint's first training file as the model heard it, its rate and
    the training level (dBFS)."""
    checkpoint = load_checkpoint(checkpoint_path)
    rate = checkpoint.sample_rate
    record = checkpoint.input_files[0]
    wave = read_audio(Path(record["path"]), AudioConfig(sample_rate=rate, normalize=False))
    model = checkpoint.build_model(torch.device("cpu"))
    heard = model.quantizer.decode(model.quantizer.encode(wave.samples * float(record["gain"])))
    audio = heard.numpy()
    level = checkpoint.training_level_dbfs
    if level is None:
        level = 10 * float(np.log10(np.mean(np.square(audio, dtype=np.float64)) + 1e-24))
    size = round(seconds * rate)
    windows = [audio[i : i + size] for i in range(0, len(audio) - size + 1, size // 2)]
    return windows, rate, level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--takes", type=int, default=16)
    parser.add_argument("--length", type=float, default=4.0)
    parser.add_argument("--temperatures", default="1.0")
    parser.add_argument("--picture", type=Path)
    parser.add_argument("--keep", type=int, default=2)
    args = parser.parse_args()
    print(f"thresholds: silence: level {ranking.SILENT_DB:g} dB below the training level, or a "
          f"share > {ranking.SILENT_SHARE} of frames {ranking.QUIET_FRAME_DB:g} dB below it; "
          f"loop correlation >= {ranking.LOOP_CORRELATION}; flatness >= "
          f"{ranking.NOISE_FLATNESS}")  # fmt: skip
    rate = 16000
    for path in args.checkpoints:
        windows, rate, level = training_windows(path, args.length)
        name = path.parent.name
        heard = [score_take(i + 1, w, rate, float("nan"), level) for i, w in enumerate(windows)]
        table(f"{name}: training audio windows", heard)
        checkpoint = load_checkpoint(path)
        model = checkpoint.build_model(torch.device("cpu"))
        for temperature in (float(t) for t in args.temperatures.split(",")):
            takes = generate_takes(model, args.takes, round(args.length * rate), seed=1,
                                   temperature=temperature, precision="auto")  # fmt: skip
            audio = model.quantizer.decode(takes.codes)
            scores = [score_take(i + 1, audio[i], rate, float(takes.bits_per_sample[i]), level)
                      for i in range(args.takes)]  # fmt: skip
            table(f"{name}: takes at temperature {temperature:g}", scores)
            ranked = ranking.rank(scores)
            for s in ranked:
                print(f"    take {s.take:>2}: bits {s.bits:.3f} level {s.level_dbfs:6.1f} dBFS "
                      f"silent {s.silent_share:.2f} loop {s.loop_correlation:.2f} "
                      f"flatness {s.flatness:.3f} {s.trap or ''}")  # fmt: skip
            if args.picture is not None:
                args.picture.mkdir(parents=True, exist_ok=True)
                what = f"{name}, temperature {temperature:g}"
                draw_takes(args.picture / "takes_all.png", audio, scores, rate,
                           f"{what}: {args.takes} takes, in the order generated")  # fmt: skip
                kept = [s for s in ranked if s.trap is None][: args.keep]
                draw_takes(args.picture / "takes_kept.png", audio, kept, rate,
                           f"{what}: the {len(kept)} kept by --count {args.keep} "
                           f"--candidates {args.takes}, best first")  # fmt: skip
                args.picture = None
    size = round(args.length * rate)
    generator = np.random.default_rng(1)
    t = np.arange(size) / rate
    burst = generator.normal(0, 0.2, round(0.3 * rate))
    made = {
        "digital silence": np.zeros(size),
        "hiss at -70 dBFS": generator.normal(0, 10 ** (-70 / 20), size),
        "a 220 Hz tone, unchanging": 0.3 * np.sin(2 * np.pi * 220 * t),
        "a 0.3 s noise burst, repeated": np.resize(burst, size) + generator.normal(0, 0.01, size),
        "white noise": generator.uniform(-0.5, 0.5, size),
    }
    for label, signal in made.items():
        table(label, [score_take(1, signal.astype(np.float32), rate, float("nan"), -20.0)])


if __name__ == "__main__":
    main()
