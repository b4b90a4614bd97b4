"""Memory of training on a long input: decoded whole (as `train` read one file before) against
decoded block by block into the memory-mapped code cache (what `train` does now).

Builds about an hour of CD-quality audio (44.1 kHz stereo 16-bit WAV, ~635 MB) by
concatenating the corpus clips, then measures the peak resident memory (ru_maxrss) of each
configuration in its own process:

- decode whole: read_audio + quantize, the whole file in memory at once (the old path)
- decode in blocks: load_dataset into an empty code cache (decode, resample, quantize, write)
- train, 1 h input: `samplernn train` on the hour (cache filled), --preset small, N iterations,
  with the default copies of the training audio (four speeds, one shifted: made into the
  cache on disk on the first run, read through memory maps)
- the same without copies (--speed-spread 0 --shift-copies 0)
- train, 10 s input: the same command on the bundled 10-second clip (torch + model baseline)

    python benchmarks/dataset_memory.py                  # about 3 minutes on 2 cores
    python benchmarks/dataset_memory.py --minutes 20 --iterations 50
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def build_input(path: Path, minutes: float) -> float:
    """Write ~``minutes`` of 44.1 kHz stereo audio made of the corpus clips; returns seconds."""
    import numpy as np
    import soundfile
    import torch

    from samplernn_cli.audio import resample

    clips = sorted(CORPUS.glob("*.flac"))
    if not clips:
        sys.exit(f"no corpus clips in {CORPUS}")
    pieces = []
    for clip in clips:
        data, rate = soundfile.read(clip, dtype="float32", always_2d=True)
        pieces.append(resample(torch.from_numpy(data.mean(axis=1)), rate, 44100).numpy())
    base = np.concatenate(pieces)
    stereo = np.stack([base, 0.8 * base], axis=1)
    target = minutes * 60 * 44100
    written = 0
    with soundfile.SoundFile(path, "w", 44100, 2, subtype="PCM_16") as out:
        while written < target:
            out.write(stereo)
            written += stereo.shape[0]
    return written / 44100


def child(mode: str, source: Path, cache: Path, iterations: int) -> None:
    """Run one configuration in this process and print a JSON line with its figures."""
    os.environ["SAMPLERNN_CACHE_DIR"] = str(cache)
    started = time.perf_counter()
    if mode == "decode-whole":
        from samplernn_cli.audio import read_audio
        from samplernn_cli.config import AudioConfig
        from samplernn_cli.quantize import Quantizer

        wave = read_audio(source, AudioConfig(sample_rate=16000))
        codes = Quantizer("linear", 256).encode(wave.samples)
        samples = codes.numel()
    elif mode == "decode-blocks":
        from samplernn_cli.config import AudioConfig
        from samplernn_cli.data.cache import load_dataset
        from samplernn_cli.quantize import Quantizer

        data = load_dataset([source], AudioConfig(sample_rate=16000), Quantizer("linear", 256))
        samples = data.total_samples
    else:
        from samplernn_cli.cli.app import main

        no_copies = ["--speed-spread", "0", "--shift-copies", "0"] if mode == "train-bare" else []

        out = Path(tempfile.mkdtemp(prefix="samplernn-bench-"))
        args = ["train", str(source), "-o", "bench", "--output-root", str(out), "--preset",
                "small", "--max-iterations", str(iterations), "--val-fraction", "0.01",
                "--val_every", "100000", "--generate_every", "100000", "--quiet",
                *no_copies]  # fmt: skip
        try:
            main(args)
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise
        samples = 0
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": mode, "peak_mb": peak_mb, "seconds": seconds, "samples": samples}))


def measure(mode: str, source: Path, cache: Path, iterations: int) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--source", str(source),
               "--cache", str(cache), "--iterations", str(iterations)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{mode} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.source, args.cache, args.iterations)
        return
    with tempfile.TemporaryDirectory(prefix="samplernn-memory-") as tmp:
        folder = Path(tmp)
        source = folder / "hour.wav"
        seconds = build_input(source, args.minutes)
        size_mb = source.stat().st_size / 1e6
        print(f"input: {seconds / 60:.1f} min, 44.1 kHz stereo 16-bit WAV, {size_mb:,.0f} MB; "
              f"as float32 at 44.1 kHz stereo {seconds * 44100 * 2 * 4 / 1e6:,.0f} MB, "
              f"mono at 16 kHz {seconds * 16000 * 4 / 1e6:,.0f} MB")  # fmt: skip
        from samplernn_cli.cli.train import EXAMPLE_CLIP, _example_clip

        long_label = f"train, {seconds / 60:.0f} min input"
        rows = [
            ("decode whole (old path)", measure("decode-whole", source, folder / "c0", 0)),
            ("decode in blocks to cache", measure("decode-blocks", source, folder / "c1", 0)),
            (long_label, measure("train", source, folder / "c1", args.iterations)),
            (
                f"{long_label}, no copies",
                measure("train-bare", source, folder / "c1", args.iterations),
            ),
            (
                f"train, {EXAMPLE_CLIP}",
                measure("train", _example_clip(), folder / "c2", args.iterations),
            ),
        ]
    print(f"{'configuration':46} {'peak RSS':>10} {'wall':>8}")
    for label, row in rows:
        print(f"{label:46} {row['peak_mb']:>7,.0f} MB {row['seconds']:>6.1f} s")
    whole, blocks = rows[0][1]["peak_mb"], rows[1][1]["peak_mb"]
    print(f"decoding peak, blocks / whole: {blocks / whole:.2f}x")
    ratio = rows[2][1]["peak_mb"] / rows[4][1]["peak_mb"]
    print(f"training peak, long / short input: {ratio:.2f}x")
    ratio = rows[2][1]["peak_mb"] / rows[3][1]["peak_mb"]
    print(f"training peak on the long input, with / without copies: {ratio:.2f}x")


if __name__ == "__main__":
    main()
