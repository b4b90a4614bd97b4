"""Where a model's bits go: held-out bits per sample of a run's clip, piece by piece.

A run's validation figure is one number for its held-out tail. This scores the whole clip
the run trained on, training part and tail, in pieces of the run's training sequence length
(each from a reset state with the real audio before it as context, exactly as validation
scores the tail: ``samplernn_cli.evaluation.evaluate_bits``), and prints each piece's
figure. Pieces of the training part that score as high as the tail mean the model has not
memorised them: what the run lacks there is capacity or training time, not regularisation.

    python benchmarks/bits_by_time.py RUN/RUN_best_model.pt CLIP.wav

CLIP must be the file the run trained on (one file, split by ``--val-fraction``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from samplernn_cli.audio import read_audio
from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import AudioConfig
from samplernn_cli.data.split import Segment, tail_length
from samplernn_cli.evaluation import evaluate_bits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("clip", type=Path, help="the audio file the run trained on")
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.checkpoint)
    model = checkpoint.build_model("cpu")
    config, train, rate = checkpoint.model_config, checkpoint.train, checkpoint.sample_rate
    chunk = train.chunk_length(config)
    sequence = checkpoint.progress.sequence_samples or round(train.sequence_seconds * rate)
    audio = AudioConfig(sample_rate=rate, normalize=checkpoint.audio.normalize)
    codes = model.quantizer.encode(read_audio(args.clip, audio).samples)
    held = tail_length(codes.numel(), train.val_fraction, chunk) if train.val_fraction else 0
    boundary = codes.numel() - held
    rows = []
    parts = (("training", 0, boundary), ("held out", boundary, codes.numel()))
    for part, first, last in parts:
        for start in range(first, last, sequence):
            length = min(sequence, last - start)
            bits = evaluate_bits(model, [codes], [Segment(0, start, length)],
                                 sequence_length=sequence, chunk_length=chunk)  # fmt: skip
            rows.append((part, start / rate, (start + length) / rate, bits, length))
    print(f"{args.checkpoint.name}: iteration {checkpoint.iteration}, pieces of "
          f"{sequence / rate:g} s, {args.clip.name}")  # fmt: skip
    for part, begin, end, bits, _ in rows:
        print(f"  {begin:6.1f} - {end:6.1f} s  {part:9s} {bits:6.3f}")
    means = {}
    for part in ("training", "held out"):
        chosen = [(b, n) for p, _, _, b, n in rows if p == part]
        if chosen:
            means[part] = np.average([b for b, _ in chosen], weights=[n for _, n in chosen])
            print(f"  {part}: {means[part]:.3f} bits per sample")
    if "held out" in means:
        above = [b for p, _, _, b, _ in rows if p == "training" and b >= means["held out"]]
        print(f"  training pieces at or above the held-out figure: {len(above)} of "
              f"{sum(p == 'training' for p, *_ in rows)}")  # fmt: skip


if __name__ == "__main__":
    main()
