"""Render slow movements of three string quartets (Beethoven op. 18 no. 1 and op. 59 no. 1,
Mozart K. 156) from the score, as recordings of sustained strings for `quality.py` (the
corpus holds speech and piano only).

The scores come from music21's corpus; FluidSynth plays them with a General MIDI sound font
(violin, violin, viola, cello) and its reverb. The renderings are stereo at 44.1 kHz, as a
user's recording would be; `quality.py` takes a minute of each:

    python benchmarks/quartet_clip.py /tmp/quartets
    python benchmarks/quality.py --budgets 150,600 /tmp/quartets/op59_1_adagio.flac
    python benchmarks/quality.py --budgets 150,600 --offset 60 /tmp/quartets/op18_1_adagio.flac
    python benchmarks/quality.py --budgets 150,600 /tmp/quartets/k156_adagio.flac

Needs `pip install music21 mido`, the `fluidsynth` program and a GM sound font (Debian and
Ubuntu: `apt install fluidsynth fluid-soundfont-gm`, which gives the default `--soundfont`).
In op. 59 no. 1's rendering one low note sounds under the whole first minute (the MIDI
export holds it), a drone that makes that clip harder to predict than op. 18's.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

MOVEMENTS = {
    "op59_1_adagio": "beethoven/opus59no1/movement3",
    "op18_1_adagio": "beethoven/opus18no1/movement2",
    "k156_adagio": "mozart/k156/movement2",
}
RATE = 44100


def render(score: str, out: Path, soundfont: Path) -> float:
    """Write ``score`` (a music21 corpus name) to ``out`` as FLAC; return its length in s."""
    import mido  # only this script needs them
    from music21 import corpus, instrument

    parsed = corpus.parse(score)
    players = [instrument.Violin, instrument.Violin, instrument.Viola, instrument.Violoncello]
    for part, player in zip(parsed.parts, players, strict=True):
        for old in part.recurse().getElementsByClass(instrument.Instrument):
            old.activeSite.remove(old)
        part.insert(0, player())
    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / "score.mid"
        parsed.write("midi", fp=str(midi))
        seconds = mido.MidiFile(str(midi)).length + 3  # and the reverb's tail
        return synthesize(midi, out, soundfont, seconds)


def synthesize(midi: Path, out: Path, soundfont: Path, seconds: float) -> float:
    """Play ``midi`` through FluidSynth with ``soundfont`` (and its reverb) for ``seconds``
    and write it to ``out`` (stereo, 44.1 kHz); return its length in s."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        # FluidSynth's file renderer does not always stop at the end of the MIDI file, so it
        # is stopped once it has written the score's length (16-bit stereo after a 44-byte
        # header, whose length fields a stopped FluidSynth leaves unwritten).
        frames = int(seconds * RATE)
        synth = subprocess.Popen(["fluidsynth", "-ni", "-g", "0.6", "-r", str(RATE), "-F",
                                  str(raw), str(soundfont), str(midi)],
                                 stdout=subprocess.DEVNULL)  # fmt: skip
        while synth.poll() is None and (not raw.exists() or raw.stat().st_size < 44 + 4 * frames):
            time.sleep(0.2)
        synth.terminate()
        synth.wait()
        data = np.fromfile(raw, dtype="<i2", offset=44)
        frames = min(frames, len(data) // 2)
        audio = data[: frames * 2].reshape(-1, 2).astype(np.float32) / 32768
    soundfile.write(str(out), audio, RATE)
    return frames / RATE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write the FLAC files")
    parser.add_argument(
        "--soundfont", type=Path, default=Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    )
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    for name, score in MOVEMENTS.items():
        out = args.folder / f"{name}.flac"
        print(f"{out}: {render(score, out, args.soundfont):.1f} s")


if __name__ == "__main__":
    main()
