"""Calibrate the take-to-recording distance (samplernn_cli.distance) and the traps
(samplernn_cli.generation.ranking) on made probes: for each recording, the reference is
measured on its first 90 % (as a run with --val-fraction 0.1 measures it), and probes of
--length seconds are scored against it:

- held-out: pieces of the last 10 %, which no reference saw (they must score lowest);
- noise at 10 dB SNR: those pieces with white noise added 10 dB below them;
- shaped noise: white noise given the pieces' mel-band envelope, frame by frame (their
  colour and their loudness changes, without their partials or fine structure);
- white noise; a steady noise band (a fifth around the recording's spectral centroid); a
  440 Hz sine; a loop (0.3 s of a held-out piece, repeated); near-silence (a held-out piece
  50 dB down).

Each probe's distance (median over pieces) and trap are printed per recording:

    python benchmarks/distance_probes.py /tmp/dev/*.wav --length 4
    python benchmarks/distance_probes.py                 # the corpus clips and a made tonal clip
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF
from tonal_clip import ensemble  # benchmarks/tonal_clip.py

from samplernn_cli.clip_stats import spectral_stats
from samplernn_cli.distance import GROUPS, Reference, measure_reference
from samplernn_cli.generation.ranking import score_take

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
RATE = 16000


def read(path: Path, seconds: float) -> np.ndarray:
    """The first ``seconds`` of ``path``, mono at 16 kHz, peak-normalised."""
    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = torch.from_numpy(audio.mean(1)[: round(seconds * rate)])
    if rate != RATE:
        mono = AF.resample(mono, rate, RATE)
    mono = mono.numpy().astype(np.float64)
    return mono / max(np.abs(mono).max(), 1e-9)


def shaped_noise(piece: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White noise with ``piece``'s mel-band envelope in every 32 ms frame."""
    n_fft, hop = 512, 128
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spectrum = torch.stft(torch.from_numpy(piece), n_fft, hop, window=window,
                          return_complex=True)  # fmt: skip
    banks = AF.melscale_fbanks(n_fft // 2 + 1, 0.0, RATE / 2, 40, RATE).double()
    envelope = (spectrum.abs().square().T @ banks) / banks.sum(0).clamp_min(1e-9)
    smooth = (envelope @ banks.T / banks.T.sum(0).clamp_min(1e-9)).T.sqrt()  # (bins, frames)
    noise = torch.from_numpy(rng.standard_normal(piece.size))
    noise_spectrum = torch.stft(noise, n_fft, hop, window=window, return_complex=True)
    noise_spectrum = noise_spectrum / noise_spectrum.abs().clamp_min(1e-12)
    made = torch.istft(noise_spectrum * smooth, n_fft, hop, window=window, length=piece.size)
    return made.numpy()


def probes(audio: np.ndarray, length: int, rng: np.random.Generator) -> dict[str, list]:
    """Probe name -> (T,) signals, from the held-out tail of ``audio``."""
    tail = audio[round(0.9 * audio.size) :]
    starts = range(0, max(1, tail.size - length + 1), max(1, RATE))
    pieces = [tail[s : s + length] for s in starts if tail[s : s + length].size == length]
    level = np.sqrt(np.mean(np.square(tail)))
    t = np.arange(length) / RATE
    centroid = spectral_stats(tail.astype(np.float32), RATE)["centroid_hz"]
    band = AF.bandpass_biquad(torch.from_numpy(rng.standard_normal(length)), RATE, centroid, 5.0)
    loop = pieces[0][: round(0.3 * RATE)]
    return {
        "held-out": pieces,
        "noise at 10 dB SNR": [
            p + rng.standard_normal(length) * np.sqrt(np.mean(p**2) / 10) for p in pieces
        ],
        "shaped noise": [shaped_noise(p, rng) for p in pieces],
        "white noise": [rng.standard_normal(length) * level],
        "noise band": [band.numpy() / np.sqrt(np.mean(band.numpy() ** 2)) * level],
        "sine 440 Hz": [np.sqrt(2) * level * np.sin(2 * np.pi * 440 * t)],
        "loop of 0.3 s": [np.resize(loop, length)],
        "near-silence": [p * 10 ** (-50 / 20) for p in pieces],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clips", nargs="*", type=Path)
    parser.add_argument("--seconds", type=float, default=60.0, help="of each clip, from its start")
    parser.add_argument("--length", type=float, default=4.0, help="probe length (s)")
    args = parser.parse_args()
    recordings = {p.stem: read(p, args.seconds) for p in args.clips or sorted(CORPUS.glob("*"))
                  if p.suffix in (".wav", ".flac")}  # fmt: skip
    if not args.clips:
        made = ensemble(args.seconds)
        recordings["made ensemble"] = made / np.abs(made).max()
    length = round(args.length * RATE)
    for name, audio in recordings.items():
        rng = np.random.default_rng(0)
        train = audio[: round(0.9 * audio.size)]
        reference = measure_reference([train], RATE)
        level = 20 * np.log10(reference.rms)
        print(
            f"\n{name}: reference of {train.size / RATE:.1f} s, {reference.mean.size} "
            f"features, {size_kb(reference):.1f} kB"
        )
        for probe, signals in probes(audio, length, rng).items():
            groups = np.array([reference.group_distances(s) for s in signals])
            distances = groups.mean(1)
            traps = [score_take(1, s.astype(np.float32), RATE, float("nan"), level).trap
                     for s in signals]  # fmt: skip
            caught = ", ".join(sorted({t for t in traps if t})) or "-"
            medians = np.median(groups, 0)
            parts = " ".join(f"{g} {v:6.2f}" for g, v in zip(GROUPS, medians, strict=True))
            print(
                f"  {probe:20s} distance {np.median(distances):7.2f} "
                f"({min(distances):.2f} to {max(distances):.2f}; {parts})  trap: {caught}"
            )
        sys.stdout.flush()


def size_kb(reference: Reference) -> float:
    return sum(v.numel() * v.element_size() if isinstance(v, torch.Tensor) else 8
               for v in reference.to_dict().values()) / 1024  # fmt: skip


if __name__ == "__main__":
    main()
