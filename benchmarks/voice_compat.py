"""Does a live voice written by this torch load and play the same in another torch (nn~ 1.6
is built on libtorch 2.5.1)?

Runs the same few lines in this Python and in another one (a virtual environment with the
other torch, e.g. `python -m venv t25 && t25/bin/pip install torch==2.5.1`): load the voice,
set a 48 kHz host rate, play 12 buffers of 4,096 samples under inference mode; then compares
the samples bit for bit.

    python benchmarks/voice_compat.py voice.ts t25/bin/python
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

PLAY = """
import sys, torch
voice = torch.jit.load(sys.argv[1])
assert voice.set_sample_rate(48000) == 0
with torch.inference_mode():
    out = torch.cat([voice(torch.zeros(1, 2, 4096))[0, 0] for _ in range(12)])
torch.save(out, sys.argv[2])
print(torch.__version__)
"""


def play(python: str, voice: Path, out: Path) -> str:
    done = subprocess.run([python, "-c", PLAY, str(voice), str(out)], capture_output=True,
                          text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"{python} could not play {voice}:\n{done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("voice", type=Path)
    parser.add_argument("other_python", help="the interpreter of the other torch")
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as folder:
        ours, theirs = Path(folder) / "ours.pt", Path(folder) / "theirs.pt"
        here = play(sys.executable, args.voice, ours)
        there = play(args.other_python, args.voice, theirs)
        a, b = torch.load(ours), torch.load(theirs)
    verdict = "identical"
    if not torch.equal(a, b):
        verdict = f"differ by up to {float((a - b).abs().max()):.3g}"
    print(f"torch {here} and torch {there}: {a.numel():,} samples each, {verdict}")


if __name__ == "__main__":
    main()
