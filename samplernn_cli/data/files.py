"""Finding the training input: files as given, folders searched recursively."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from samplernn_cli.errors import AudioError
from samplernn_cli.fileio import check_input_file

# File names (lower-case suffixes) picked up when a folder is given; a file named
# explicitly is read whatever its name.
# The last ones are read through ffmpeg (see samplernn_cli.decoders).
AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
                  ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64",
                  ".m4a", ".aac", ".webm", ".mka", ".mp4")  # fmt: skip


def find_audio_files(paths: Sequence[Path], *, exclude: Path | None = None) -> list[Path]:
    """The files to train on: files as given, folders searched recursively (in name order,
    skipping hidden files and folders, and ``exclude``), duplicates dropped.

    Raises:
        AudioError: a path is missing or unreadable, or a folder holds no audio files.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    skip = None if exclude is None else exclude.resolve()
    for path in paths:
        if path.is_dir():
            found = []
            for candidate in sorted(path.rglob("*")):
                relative = candidate.relative_to(path).parts
                if any(part.startswith(".") for part in relative):
                    continue
                if candidate.suffix.lower() not in AUDIO_SUFFIXES or not candidate.is_file():
                    continue
                if skip is not None and skip in candidate.resolve().parents:
                    continue
                found.append(candidate)
            if not found:
                kinds = ", ".join(s.lstrip(".").upper() for s in AUDIO_SUFFIXES[:7])
                raise AudioError(f"{path} holds no audio files ({kinds}, ...)")
        else:
            check_input_file(path, AudioError)
            found = [path]
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files
