"""Decoding audio files block by block: libsndfile (through soundfile) first, ffmpeg for the
formats it does not know.

libsndfile reads WAV (PCM, float, mu-law, a-law, ADPCM, GSM 6.10), FLAC, Ogg Vorbis and Opus,
MP3, AIFF, W64 and more. Some of its decoders cannot seek (a GSM 6.10 WAV): those files are
read front to back, reopened for another pass. What libsndfile cannot read at all (M4A/AAC,
the audio of an MP4 or WebM, ...) is decoded by an ``ffmpeg`` executable found on PATH, when
there is one: ffmpeg writes 32-bit float WAV to a pipe, and the samples are taken from the
pipe a block at a time, so no file is ever held whole in memory. Without ffmpeg the error
names the format (from the file's first bytes) and the two ways out.
"""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile

from samplernn_cli.errors import AudioError

SOUNDFILE_ERRORS = (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError)
GET_FFMPEG = (
    "install ffmpeg (https://ffmpeg.org/download.html, or apt install ffmpeg, brew install "
    "ffmpeg, winget install ffmpeg)"
)
# MP4-family brands (bytes 8-12 of an "ftyp" box) that mean an audio-only M4A file.
M4A_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ")


def soundfile_reason(exc: Exception) -> str:
    """The useful tail of a libsndfile message ("Error opening '<path>': Format not
    recognised." -> "Format not recognised")."""
    text = str(exc).strip()
    if ": " in text:
        text = text.rsplit(": ", 1)[-1]
    return text.rstrip(".") or type(exc).__name__


def sniff_format(path: Path) -> str | None:
    """The name of a container libsndfile does not read, from the file's first bytes (and
    its extension where the bytes are shared); None when it is none of those."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    suffix = path.suffix.lower()
    if head[4:8] == b"ftyp":
        if head[8:12] in M4A_BRANDS or suffix in (".m4a", ".m4b", ".aac"):
            return "M4A/AAC"
        if head[8:12] == b"qt  ":
            return "QuickTime (MOV)"
        return "MP4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "WebM" if suffix == ".webm" else "Matroska (MKV/MKA)"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "AAC (ADTS)"
    if head.startswith(b"0&\xb2u\x8ef\xcf\x11"):
        return "WMA/ASF"
    if head.startswith(b"#!AMR"):
        return "AMR"
    if head.startswith(b".RMF"):
        return "RealMedia"
    return None


def find_ffmpeg() -> str | None:
    """The ffmpeg executable on PATH, if any."""
    return shutil.which("ffmpeg")


class Reader:
    """An open audio file: its format, and passes over its samples from the start.

    ``frames`` is the length the header declares, or None where only decoding tells
    (ffmpeg); read :meth:`blocks` to the end for the real length.
    """

    sample_rate: int
    channels: int
    frames: int | None
    format: str
    subtype: str

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        """(n, channels) float32 blocks of at most ``frames`` frames, from the start."""
        raise NotImplementedError

    def read_all(self) -> np.ndarray:
        """(T, channels) float32: every frame (the caller wants the whole file anyway)."""
        parts = list(self.blocks(1 << 20))
        if not parts:
            return np.zeros((0, self.channels), dtype=np.float32)
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def close(self) -> None:
        pass


class SoundfileReader(Reader):
    """A file libsndfile opens; one that cannot seek is reopened for each pass."""

    def __init__(self, path: Path, handle: soundfile.SoundFile) -> None:
        self.path = path
        self.handle = handle
        self.sample_rate = int(handle.samplerate)
        self.channels = int(handle.channels)
        self.frames = max(0, int(handle.frames))
        self.format = str(handle.format)
        self.subtype = str(handle.subtype)
        self.used = False  # a non-seekable handle serves one pass

    def _rewound(self) -> soundfile.SoundFile:
        if self.handle.seekable():
            self.handle.seek(0)
        elif self.used:
            self.handle.close()
            self.handle = soundfile.SoundFile(self.path)
        self.used = True
        return self.handle

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        handle = self._rewound()
        while True:
            try:
                data = handle.read(frames, dtype="float32", always_2d=True)
            except SOUNDFILE_ERRORS as exc:
                raise AudioError(f"{self.path} cannot be decoded ({exc})") from None
            if data.shape[0] == 0:
                return
            yield data
            if data.shape[0] < frames:
                return

    def read_all(self) -> np.ndarray:
        if not self.handle.seekable():  # libsndfile reads these only a block at a time
            return super().read_all()
        try:
            return self._rewound().read(dtype="float32", always_2d=True)
        except SOUNDFILE_ERRORS as exc:  # a header libsndfile accepts, data it cannot decode
            raise AudioError(
                f"{self.path} is not an audio file soundfile can read "
                f"({soundfile_reason(exc)}); use WAV, FLAC, OGG or MP3"
            ) from None
        except MemoryError:
            raise AudioError(f"{self.path} is too large to decode into memory") from None

    def close(self) -> None:
        self.handle.close()


class FfmpegReader(Reader):
    """A file decoded by ffmpeg into a pipe of 32-bit float WAV, one process per pass."""

    def __init__(self, path: Path, executable: str, container: str | None) -> None:
        self.path = path
        self.executable = executable
        self.frames = None
        self.format = container or path.suffix.lstrip(".").upper() or "unknown"
        self.subtype = "decoded by ffmpeg"
        with self._decoder():  # the header tells the rate and channels
            pass
        self.sample_rate, self.channels = self._layout

    @contextlib.contextmanager
    def _decoder(self) -> Iterator[tuple[BinaryIO, int]]:
        """A running ffmpeg and its output after the WAV header; (stream, channels)."""
        command = [
            self.executable, "-nostdin", "-hide_banner", "-loglevel", "error",
            "-i", str(self.path), "-map", "0:a:0", "-vn", "-sn", "-dn",
            "-c:a", "pcm_f32le", "-f", "wav", "-",
        ]  # fmt: skip
        with tempfile.TemporaryFile() as errors:  # a file: a full stderr pipe would block it
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
            assert process.stdout is not None
            try:
                self._layout = self._read_header(process.stdout, process, errors)
                yield process.stdout, self._layout[1]
                # Read to the end: check that ffmpeg decoded everything. Stopped early (only
                # the header was wanted): the finally below ends it.
                if not process.stdout.read(1) and process.wait() != 0:
                    raise AudioError(f"{self.path}: ffmpeg failed ({self._message(errors)})")
            finally:
                if process.poll() is None:  # the reader stopped early
                    process.kill()
                process.stdout.close()
                process.wait()

    def _message(self, errors: BinaryIO) -> str:
        errors.seek(0)
        lines = errors.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1].strip() if lines else "no message"

    def _read_header(
        self, stream: BinaryIO, process: subprocess.Popen, errors: BinaryIO
    ) -> tuple[int, int]:
        """Walk the RIFF chunks up to "data"; (sample rate, channels) from "fmt "."""

        def exact(size: int) -> bytes:
            data = stream.read(size)
            if len(data) < size:
                process.wait()
                raise AudioError(
                    f"{self.path} is not an audio file soundfile can read, nor one ffmpeg "
                    f"can decode ({self._message(errors)})"
                )
            return data

        if exact(12)[8:12] != b"WAVE":
            raise AudioError(f"{self.path}: ffmpeg wrote no WAV stream")
        layout = None
        while True:
            name, size = struct.unpack("<4sI", exact(8))
            if name == b"data":
                break
            body = exact(size + (size & 1))
            if name == b"fmt ":
                channels, rate = struct.unpack("<HI", body[2:8])
                layout = (int(rate), int(channels))
        if layout is None or layout[0] <= 0 or layout[1] <= 0:
            raise AudioError(f"{self.path}: ffmpeg's output declares no sample rate")
        return layout

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        with self._decoder() as (stream, channels):
            frame_bytes = 4 * channels
            while True:
                data = stream.read(frames * frame_bytes)
                usable = len(data) - len(data) % frame_bytes
                if usable:
                    yield np.frombuffer(data[:usable], dtype="<f4").reshape(-1, channels)
                if len(data) < frames * frame_bytes:
                    return


def open_reader(path: Path) -> Reader:
    """Open ``path`` with libsndfile, else with ffmpeg when it is on PATH.

    Raises:
        AudioError: neither can read it; the message names the format where it is one
            libsndfile does not know, and how to get ffmpeg or convert the file.
    """
    try:
        return SoundfileReader(path, soundfile.SoundFile(path))
    except SOUNDFILE_ERRORS as exc:
        reason = soundfile_reason(exc)
    container = sniff_format(path)
    executable = find_ffmpeg()
    if executable is not None:
        return FfmpegReader(path, executable, container)
    if container is not None:
        raise AudioError(
            f"{path} is {container} audio, which soundfile (libsndfile) cannot decode: "
            f"{GET_FFMPEG} and samplernn reads it through ffmpeg, or convert it first "
            f"(ffmpeg -i {path.name} {path.stem}.flac)"
        )
    raise AudioError(
        f"{path} is not an audio file soundfile can read ({reason}); use WAV, FLAC, OGG or "
        "MP3, or install ffmpeg to read other formats (M4A/AAC, MP4, WebM, ...)"
    )
