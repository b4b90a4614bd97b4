"""Render a minute and a half of rock drums (a percussive recording: hits, decays and
silences, which the corpus lacks) for `quality.py`.

A drummer's part is written as MIDI (kick, snare, hi-hat, ride, crashes and tom fills, at
`--tempo` beats a minute, with velocity and timing played a little unevenly, the same for the
same `--seed`) and FluidSynth plays it through a General MIDI drum kit of a sound font
(`--kit`: 0 standard, 16 power, 25 TR-808, 32 jazz, 40 brushes), with its reverb, to a
stereo 44.1 kHz FLAC, as a user's recording would be:

    python benchmarks/drum_clip.py /tmp/clips/drums.flac
    python benchmarks/drum_clip.py /tmp/clips/jazz.flac --kit 32 --tempo 138 --seed 1
    python benchmarks/quality.py --budgets 150,600 /tmp/clips/drums.flac

Needs `pip install mido`, the `fluidsynth` program and a GM sound font (Debian and Ubuntu:
`apt install fluidsynth fluid-soundfont-gm`, which gives the default `--soundfont`).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from quartet_clip import synthesize  # benchmarks/quartet_clip.py

TICKS = 480  # per beat
# General MIDI percussion keys (channel 10).
KICK, SNARE, CLOSED_HAT, PEDAL_HAT, OPEN_HAT = 36, 38, 42, 44, 46
CRASH, RIDE, RIDE_BELL = 49, 51, 53
HIGH_TOM, MID_TOM, LOW_TOM, FLOOR_TOM = 50, 47, 45, 41


def bar(rng: np.random.Generator, kind: str) -> list[tuple[float, int, int]]:
    """One 4/4 bar as (beat, key, velocity): a groove ("hat", "ride"), or a fill."""
    hits: list[tuple[float, int, int]] = []
    if kind == "fill":
        toms = [HIGH_TOM, HIGH_TOM, MID_TOM, MID_TOM, LOW_TOM, LOW_TOM, FLOOR_TOM, FLOOR_TOM]
        hits += [(0.0, KICK, 100), (0.0, CLOSED_HAT, 80), (1.0, SNARE, 105)]
        for step, tom in enumerate(toms):
            hits.append((2.0 + step * 0.25, tom, int(rng.integers(90, 120))))
        return hits
    cymbal = CLOSED_HAT if kind == "hat" else RIDE
    for eighth in range(8):
        beat = eighth / 2
        accent = 100 if eighth % 2 == 0 else 70
        key = cymbal
        if kind == "hat" and eighth == 7 and rng.random() < 0.3:
            key = OPEN_HAT
        if kind == "ride" and eighth % 4 == 0 and rng.random() < 0.3:
            key = RIDE_BELL
        hits.append((beat, key, accent + int(rng.integers(-12, 12))))
    kicks = [0.0, 2.0] + [b for b in (1.5, 2.5, 3.5) if rng.random() < 0.35]
    hits += [(b, KICK, int(rng.integers(95, 120))) for b in kicks]
    hits += [(b, SNARE, int(rng.integers(100, 125))) for b in (1.0, 3.0)]
    if rng.random() < 0.4:  # a ghost note
        hits.append((float(rng.choice([1.75, 2.75, 3.25])), SNARE, int(rng.integers(30, 50))))
    return hits


def drum_part(seconds: float, seed: int, tempo: float) -> list[tuple[float, int, int]]:
    """(beat, key, velocity) for ``seconds`` of drums at ``tempo`` beats a minute: 8-bar
    phrases opening on a crash, the hat groove and the ride groove taking turns, a fill
    ending every other phrase."""
    rng = np.random.default_rng(seed)
    bars = int(np.ceil(seconds * tempo / 60 / 4))
    hits: list[tuple[float, int, int]] = []
    for number in range(bars):
        phrase, place = divmod(number, 8)
        kind = "ride" if phrase % 2 else "hat"
        if place == 7 and phrase % 2:
            kind = "fill"
        for beat, key, velocity in bar(rng, kind):
            if place == 0 and beat == 0.0 and key in (CLOSED_HAT, RIDE, RIDE_BELL):
                key = CRASH
            # A drummer's timing: a few milliseconds early or late.
            late = float(rng.normal(0, 0.012))
            hits.append((4 * number + beat + late, key, int(np.clip(velocity, 1, 127))))
    return sorted(hits)


def write_midi(hits: list[tuple[float, int, int]], path: Path, tempo: float, kit: int) -> None:
    import mido  # only the clip scripts need it

    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo)))
    track.append(mido.Message("program_change", channel=9, program=kit))
    events = []
    for beat, key, velocity in hits:
        start = max(0, round(beat * TICKS))
        events.append((start, mido.Message("note_on", channel=9, note=key, velocity=velocity)))
        events.append((start + TICKS // 8, mido.Message("note_off", channel=9, note=key)))
    now = 0
    for tick, message in sorted(events, key=lambda e: e[0]):
        track.append(message.copy(time=tick - now))
        now = tick
    midi = mido.MidiFile(ticks_per_beat=TICKS)
    midi.tracks.append(track)
    midi.save(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the FLAC file to write")
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tempo", type=float, default=112.0, help="beats a minute")
    parser.add_argument("--kit", type=int, default=0, help="General MIDI drum kit (program)")
    parser.add_argument(
        "--soundfont", type=Path, default=Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    )
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / "drums.mid"
        write_midi(drum_part(args.seconds, args.seed, args.tempo), midi, args.tempo, args.kit)
        seconds = synthesize(midi, args.out, args.soundfont, args.seconds + 2)
    print(f"{args.out}: {seconds:.1f} s")


if __name__ == "__main__":
    main()
