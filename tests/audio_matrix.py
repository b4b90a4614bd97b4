"""Bad and unusual audio inputs, made in a folder: each name maps to the path and what the
``train`` command must answer (exit code, and a fragment of its one-line error)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile

from .conftest import RATE, tone_mix


def _write(path: Path, data: np.ndarray, rate: int = RATE, **kwargs: object) -> Path:
    soundfile.write(path, data, rate, **kwargs)
    return path


def make_audio_matrix(folder: Path) -> dict[str, tuple[Path, int, str]]:
    """name -> (path, expected exit code, expected fragment of stderr's error line)."""
    tone = tone_mix(1.0, RATE)
    cases: dict[str, tuple[Path, int, str]] = {}
    text = folder / "notes.wav"
    text.write_text("definitely not audio\n")
    cases["text named .wav"] = (text, 1, "not an audio file")
    empty = folder / "empty.wav"
    empty.touch()
    cases["empty file"] = (empty, 1, "is empty")
    header = _write(folder / "header.wav", np.zeros((0, 1), dtype=np.float32))
    cases["header-only WAV"] = (header, 1, "no audio samples")
    whole = _write(folder / "whole.wav", tone, subtype="PCM_16")
    truncated = folder / "truncated.wav"
    truncated.write_bytes(whole.read_bytes()[: 44 + 2 * RATE // 2])  # header + half the data
    cases["truncated WAV data"] = (truncated, 0, "")
    whole_flac = _write(folder / "whole.flac", tone, subtype="PCM_16")
    truncated_flac = folder / "truncated.flac"
    truncated_flac.write_bytes(whole_flac.read_bytes()[: whole_flac.stat().st_size // 2])
    cases["truncated FLAC"] = (truncated_flac, 1, "not an audio file soundfile can read")
    with_nan = tone.astype(np.float32).copy()
    with_nan[100] = np.nan
    cases["NaN in float WAV"] = (_write(folder / "nan.wav", with_nan, subtype="FLOAT"), 1,
                                 "non-finite")  # fmt: skip
    with_inf = tone.astype(np.float32).copy()
    with_inf[100] = np.inf
    cases["Inf in float WAV"] = (_write(folder / "inf.wav", with_inf, subtype="FLOAT"), 1,
                                 "non-finite")  # fmt: skip
    silent = _write(folder / "silent.wav", np.zeros(RATE, dtype=np.float32))
    cases["silent"] = (silent, 1, "is silent")
    short = _write(folder / "short.wav", tone[:16])
    cases["shorter than a training window"] = (short, 1, "training needs at least")
    cases["8-bit unsigned"] = (_write(folder / "u8.wav", tone, subtype="PCM_U8"), 0, "")
    cases["24-bit"] = (_write(folder / "s24.wav", tone, subtype="PCM_24"), 0, "")
    cases["32-bit integer"] = (_write(folder / "s32.wav", tone, subtype="PCM_32"), 0, "")
    cases["32-bit float"] = (_write(folder / "f32.wav", tone, subtype="FLOAT"), 0, "")
    cases["64-bit float"] = (_write(folder / "f64.wav", tone, subtype="DOUBLE"), 0, "")
    stereo = np.stack([tone, -tone * 0.5], axis=1)
    cases["stereo"] = (_write(folder / "stereo.wav", stereo), 0, "")
    six = np.stack([tone * (k + 1) / 6 for k in range(6)], axis=1)
    cases["6 channels"] = (_write(folder / "six.wav", six), 0, "")
    cases["8 kHz"] = (_write(folder / "8k.wav", tone, 8000), 0, "")
    cases["96 kHz"] = (_write(folder / "96k.wav", tone_mix(1.0, 96000), 96000), 0, "")
    cases["OGG Vorbis"] = (_write(folder / "tone.ogg", tone, format="OGG", subtype="VORBIS"),
                           0, "")  # fmt: skip
    cases["MP3"] = (_write(folder / "tone.mp3", tone, format="MP3", subtype="MPEG_LAYER_III"),
                    0, "")  # fmt: skip
    odd = folder / "a folder with spaces – ü"
    odd.mkdir()
    cases["path with spaces and non-ASCII"] = (_write(odd / "naïve tone é.wav", tone), 0, "")
    cases["a folder (of one file)"] = (odd, 0, "")
    (folder / "no audio here").mkdir()
    (folder / "no audio here" / "readme.txt").write_text("notes\n")
    cases["a folder without audio"] = (folder / "no audio here", 1, "holds no audio files")
    cases["missing path"] = (folder / "nope.wav", 1, "no such file")
    fifo = folder / "fifo.wav"
    os.mkfifo(fifo)
    cases["FIFO"] = (fifo, 1, "not a regular file")
    if os.geteuid() != 0:  # root reads files regardless of permissions
        unreadable = _write(folder / "unreadable.wav", tone)
        unreadable.chmod(0)
        cases["unreadable file"] = (unreadable, 1, "permission denied")
    return cases
