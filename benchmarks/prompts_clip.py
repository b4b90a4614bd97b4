"""Fetch a minute of speech in another language for `quality.py`: one voice's telephone
prompts in Canadian French, one after another, which the corpus lacks.

The prompts are those of the Debian package `asterisk-core-sounds-fr-wav` (the voice
"June", 8 kHz mono WAV, CC BY-SA 3.0). The package is downloaded with apt, unpacked in a
temporary folder, and the prompts, in the order of their file names, are joined until the
clip is `--seconds` long and written as FLAC:

    python benchmarks/prompts_clip.py /tmp/clips/speech_fr.flac
    python benchmarks/quality.py --budgets 150 /tmp/clips/speech_fr.flac

Needs a Debian or Ubuntu system whose apt sources carry the package (about 20 MB).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile
from outdoor_clip import unpacked  # benchmarks/outdoor_clip.py

PACKAGE = "asterisk-core-sounds-fr-wav"
PROMPTS = "usr/share/asterisk/sounds"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the FLAC file to write")
    parser.add_argument("--deb", type=Path, help=f"an already downloaded {PACKAGE} .deb")
    parser.add_argument("--seconds", type=float, default=62.0, help="at least this long")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = unpacked(PACKAGE, args.deb, Path(tmp))
        prompts = sorted((root / PROMPTS).glob("*/*.wav"), key=lambda p: p.name)
        parts: list[np.ndarray] = []
        rate = 0
        for prompt in prompts:
            audio, prompt_rate = soundfile.read(str(prompt), dtype="float32", always_2d=True)
            if rate and prompt_rate != rate:
                continue  # one rate for the whole clip
            rate = prompt_rate
            parts.append(audio.mean(axis=1))
            if sum(len(p) for p in parts) >= args.seconds * rate:
                break
    clip = np.concatenate(parts)
    soundfile.write(str(args.out), clip, rate)
    print(f"{args.out}: {len(clip) / rate:.1f} s from {len(parts)} prompts at {rate} Hz")


if __name__ == "__main__":
    main()
