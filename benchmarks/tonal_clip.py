"""A made recording of sustained tonal music: four bowed-string-like voices playing a slow
chord progression, each with its own vibrato, bow noise and swells, in a reverberant room.

The corpus holds speech and piano (struck, decaying notes). Sustained tones with vibrato
(strings, winds, voices in a choir) are a third kind of audio, on which a model memorises a
minute of training audio differently; this clip stands in for them in `quality.py --tonal`.
It is the same for the same `--seed`. Run from the repository root:

    python benchmarks/tonal_clip.py ensemble.flac --seconds 75
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

RATE = 16000
# A slow progression in D minor, four voices (MIDI note numbers, bass to top).
CHORDS = [
    (50, 57, 65, 69), (46, 58, 65, 70), (43, 55, 62, 70), (45, 57, 64, 73),
    (50, 57, 65, 74), (48, 55, 64, 72), (41, 57, 65, 72), (43, 58, 62, 70),
    (45, 57, 61, 69), (38, 57, 62, 66), (43, 55, 62, 71), (45, 57, 64, 73),
]  # fmt: skip


def hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def bowed_voice(
    notes: list[int], durations: np.ndarray, rng: np.random.Generator, partials: int = 24
) -> np.ndarray:
    """One voice: each note a sawtooth-like sum of partials (1/k, with a body resonance)
    whose pitch carries vibrato (5 to 6.5 Hz, 10 to 25 cents, fading in), bow noise and a
    swell; notes join with short crossfades, as a player changes bow."""
    out = []
    for note, seconds in zip(notes, durations, strict=True):
        n = int(seconds * RATE)
        t = np.arange(n) / RATE
        rate_hz, depth = rng.uniform(5.0, 6.5), rng.uniform(10, 25) / 1200
        onset = np.clip(t / 0.6, 0, 1)  # vibrato grows after the note starts
        wobble = depth * onset * np.sin(2 * np.pi * rate_hz * t + rng.uniform(0, 2 * np.pi))
        drift = 0.002 * np.cumsum(rng.standard_normal(n)) / np.sqrt(RATE)  # slow pitch drift
        f0 = hz(note) * 2.0 ** (wobble + drift)
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        tone = np.zeros(n)
        for k in range(1, partials + 1):
            if hz(note) * k > RATE / 2 - 500:
                break
            body = 1.0 + 1.5 * np.exp(-(((hz(note) * k - 2800.0) / 900.0) ** 2))
            tone += body * np.sin(k * phase) / k
        envelope = np.minimum(1.0, np.minimum(t / 0.25, (seconds - t) / 0.35))
        envelope = np.clip(envelope, 0, 1) * (0.8 + 0.2 * np.sin(np.pi * t / seconds))
        noise = rng.standard_normal(n) * 0.02 * envelope
        out.append(tone * envelope + noise)
    return np.concatenate(out)


def room(audio: np.ndarray, rng: np.random.Generator, rt60: float = 1.6) -> np.ndarray:
    """A reverberant room: the dry sound plus its convolution with exponentially decaying
    noise (low-passed, as walls absorb high frequencies)."""
    length = int(rt60 * RATE)
    t = np.arange(length) / RATE
    response = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    response = AF.lowpass_biquad(torch.from_numpy(response).float(), RATE, 3500.0).numpy()
    wet = AF.fftconvolve(torch.from_numpy(audio).float(), torch.from_numpy(response)).numpy()
    wet = wet[: len(audio)]
    return audio + 0.35 * wet / np.abs(wet).max() * np.abs(audio).max()


def ensemble(seconds: float, seed: int = 0) -> np.ndarray:
    """``seconds`` of the made ensemble at 16 kHz, peak at -1 dBFS."""
    rng = np.random.default_rng(seed)
    count = int(np.ceil(seconds / 2.0)) + 1
    durations = rng.uniform(1.6, 3.4, count)
    chords = [CHORDS[i % len(CHORDS)] for i in range(count)]
    voices = [bowed_voice([c[v] for c in chords], durations, rng) for v in range(4)]
    mix = sum(gain * v for gain, v in zip((1.0, 0.7, 0.7, 0.9), voices, strict=True))
    mix = room(mix, rng)[: int(seconds * RATE)]
    return (mix / np.abs(mix).max() * 10 ** (-1 / 20)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the audio file to write (WAV or FLAC)")
    parser.add_argument("--seconds", type=float, default=75.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    soundfile.write(str(args.out), ensemble(args.seconds, args.seed), RATE)
    print(args.out)


if __name__ == "__main__":
    main()
