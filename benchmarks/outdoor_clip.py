"""Fetch a real outdoor recording for `quality.py`: a minute of a spring day in the open
(birds near and far, insects, a distant hum), which the corpus lacks.

The recording is the ambience of the "fernland" tileset of the game MegaGlest
(`tilesets/fernland/sounds/day.ogg`, 57.1 s, stereo at 44.1 kHz, CC BY-SA 3.0, from the
Debian package `megaglest-data`). The package is downloaded with apt, unpacked in a
temporary folder, and the recording is written as FLAC:

    python benchmarks/outdoor_clip.py /tmp/clips/outdoor.flac
    python benchmarks/quality.py --budgets 150,600 /tmp/clips/outdoor.flac

`--recording` takes another of the package's ambiences, e.g. `birch_forest/sounds/night.ogg`
(131 s at 48 kHz: birds singing at night over a quiet hum).

Needs a Debian or Ubuntu system whose apt sources carry `megaglest-data` (about 240 MB).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import soundfile

PACKAGE = "megaglest-data"
TILESETS = "usr/share/games/megaglest/tilesets"


def unpacked(package: str, deb: Path | None, folder: Path) -> Path:
    """The files of the Debian ``package`` (its ``deb`` where given, else downloaded with
    apt into ``folder``), unpacked under ``folder / "root"``, which is returned."""
    if deb is None:
        subprocess.run(["apt-get", "download", package], cwd=folder, check=True)
        deb = next(folder.glob(f"{package}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(folder / "root")], check=True)
    return folder / "root"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the FLAC file to write")
    parser.add_argument("--deb", type=Path, help="an already downloaded megaglest-data .deb")
    parser.add_argument("--recording", default="fernland/sounds/day.ogg",
                        help="which, under the package's tilesets/")  # fmt: skip
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        recording = unpacked(PACKAGE, args.deb, Path(tmp)) / TILESETS / args.recording
        audio, rate = soundfile.read(str(recording), dtype="float32")
    soundfile.write(str(args.out), audio, rate)
    print(f"{args.out}: {len(audio) / rate:.1f} s")


if __name__ == "__main__":
    main()
