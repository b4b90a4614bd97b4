"""Reading, mixing down, resampling, normalising and writing audio.

soundfile (libsndfile) reads and writes the files: WAV, FLAC, OGG, MP3, AIFF and the other
formats libsndfile knows, at any bit depth, integer or float; ffmpeg, when installed, reads
the rest (M4A/AAC, MP4, WebM: see :mod:`samplernn_cli.decoders`). torchaudio is used only for
DSP (resampling): its own ``load``/``save`` need FFmpeg and TorchCodec.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile
import torch

from samplernn_cli.config import AudioConfig
from samplernn_cli.decoders import Reader, open_reader, soundfile_reason
from samplernn_cli.errors import AudioError, OutputError
from samplernn_cli.fileio import atomic_write, check_input_file

# Above this many filter taps (new rate x kernel width, after reducing the ratio) the
# polyphase kernel torchaudio builds would need gigabytes; such rate pairs are refused.
MAX_RESAMPLE_KERNEL = 50_000_000
# --encoding names -> libsndfile subtypes
ENCODINGS = {"pcm16": "PCM_16", "pcm24": "PCM_24", "float": "FLOAT"}


@dataclass(frozen=True)
class AudioSource:
    """What the input file was, before any processing."""

    path: str
    name: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Waveform:
    """Mono float32 audio at the model's rate, after mixing, resampling and normalisation."""

    samples: torch.Tensor  # (T,) float32
    sample_rate: int
    source: AudioSource
    source_peak: float  # peak of the mono mix at the model rate, before normalisation
    gain: float  # factor applied by normalisation (1.0 when off)

    @property
    def duration(self) -> float:
        return self.samples.numel() / self.sample_rate


@contextlib.contextmanager
def open_audio(path: Path) -> Iterator[tuple[Reader, AudioSource]]:
    """Open an audio file for reading (libsndfile, else ffmpeg: see
    :mod:`samplernn_cli.decoders`); ``source.frames`` is what the header declares (0 where
    only decoding tells: ``reader.frames`` is None).

    Raises:
        AudioError: the file is missing, unreadable, not audio, or declares no valid rate.
    """
    check_input_file(path, AudioError)
    reader = open_reader(path)
    try:
        source = AudioSource(
            path=str(path.resolve()),
            name=path.name,
            sample_rate=int(reader.sample_rate),
            channels=int(reader.channels),
            frames=reader.frames or 0,
            format=reader.format,
            subtype=reader.subtype,
        )
        if source.sample_rate <= 0:
            raise AudioError(f"{path} declares an invalid sample rate ({source.sample_rate} Hz)")
        yield reader, source
    finally:
        reader.close()


def read_audio(path: str | os.PathLike[str], config: AudioConfig) -> Waveform:
    """Read an audio file as a mono float32 waveform at the configured rate.

    Channels are averaged; the result is resampled with ``torchaudio.functional.resample``
    when ``config.sample_rate`` differs from the file's rate (None keeps the file's rate), and
    scaled so that its peak is 1.0 when ``config.normalize`` is set: one gain for the whole
    file, never per window, so dynamics and DC are kept.

    Raises:
        AudioError: the file is missing, unreadable, not audio, empty, silent, or holds NaN
            or infinite samples.
    """
    path = Path(path)
    with open_audio(path) as (reader, source):
        data = reader.read_all()
    if data.shape[0] == 0:
        raise AudioError(f"{path} contains no audio samples (only a header?)")
    source = AudioSource(**{**source.to_dict(), "frames": int(data.shape[0])})  # type: ignore[arg-type]
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise AudioError(f"{path} contains {bad} non-finite samples (NaN or infinity)")

    mono = torch.from_numpy(data.mean(axis=1, dtype=np.float32))
    rate = source.sample_rate if config.sample_rate is None else config.sample_rate
    mono = resample(mono, source.sample_rate, rate)
    peak = float(mono.abs().max()) if mono.numel() else 0.0
    if peak == 0.0:
        raise AudioError(f"{path} is silent (every sample is zero); there is nothing to learn")
    gain = 1.0 / peak if config.normalize else 1.0
    if gain != 1.0:
        mono = mono * gain
    return Waveform(samples=mono, sample_rate=rate, source=source, source_peak=peak, gain=gain)


def resample(samples: torch.Tensor, source_rate: int, target_rate: int) -> torch.Tensor:
    """Band-limited resampling of a (T,) or (C, T) float tensor; a no-op for equal rates."""
    if source_rate == target_rate:
        return samples
    from torchaudio.functional import resample as ta_resample

    divisor = math.gcd(source_rate, target_rate)
    up, down = target_rate // divisor, source_rate // divisor
    # The size of torchaudio's sinc kernel at its default width of 6 zero crossings.
    width = math.ceil(6 * down / (min(up, down) * 0.99))
    if up * (down + 2 * width) > MAX_RESAMPLE_KERNEL:
        raise AudioError(
            f"resampling {source_rate} Hz to {target_rate} Hz needs an impractically large "
            "filter (the rates share no common factor); convert the file to a standard rate "
            "first (for example with sox or ffmpeg)"
        )
    return ta_resample(samples, source_rate, target_rate)


def write_audio(
    path: str | os.PathLike[str],
    samples: torch.Tensor | np.ndarray,
    sample_rate: int,
    *,
    subtype: str = "PCM_16",
    overwrite: bool = True,
) -> Path:
    """Write (T,) or (T, C) float audio atomically (temp file, then rename).

    The format comes from the extension (.wav, .flac, .ogg, ...). Integer formats are clipped
    to [-1, 1]. With ``overwrite`` False an existing file is an :class:`OutputError`.
    """
    path = Path(path)
    data = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else samples
    data = np.asarray(data, dtype=np.float32)
    if not subtype.startswith(("FLOAT", "DOUBLE")):
        data = np.clip(data, -1.0, 1.0)
    file_format = path.suffix.lstrip(".").upper() or "WAV"
    if file_format == "OGG":
        subtype = "VORBIS"

    def write(handle: BinaryIO) -> None:
        soundfile.write(handle, data, sample_rate, subtype=subtype, format=file_format)

    try:
        atomic_write(path, write, what="audio file", overwrite=overwrite)
    except (soundfile.LibsndfileError, ValueError, TypeError) as exc:
        raise OutputError(f"cannot write {path}: {soundfile_reason(exc)}") from None
    return path


def _resample_width(source_rate: int, target_rate: int) -> tuple[int, int, int]:
    """(source step, target step, kernel half-width in source samples) of torchaudio's
    polyphase resampler for this rate pair, after reducing the ratio."""
    divisor = math.gcd(source_rate, target_rate)
    down, up = source_rate // divisor, target_rate // divisor
    return down, up, math.ceil(6 * down / (min(up, down) * 0.99))


def resample_stream(
    blocks: Iterator[torch.Tensor], source_rate: int, target_rate: int
) -> Iterator[torch.Tensor]:
    """Resample a long (T,) signal given as consecutive blocks, yielding consecutive blocks.

    The output is the same as :func:`resample` of the whole signal (to float rounding):
    torchaudio's resampler computes each group of ``up`` output samples from a window of
    ``down + 2 x width`` input samples starting at a multiple of ``down``, so each block is
    resampled with enough input on both sides and only the groups whose windows lie wholly
    inside are kept. torchaudio has no streaming resampler; this keeps one block (plus a
    margin) in memory instead of the whole file.
    """
    if source_rate == target_rate:
        yield from blocks
        return
    down, up, width = _resample_width(source_rate, target_rate)
    margin = (width // down + 2) * down  # input samples of context, a whole number of groups
    buffer = torch.empty(0)
    buffer_start = 0  # input position of buffer[0], a multiple of down
    done_groups = 0  # output groups already yielded
    total = 0  # input samples seen
    pending = next(blocks, None)
    while pending is not None:
        following = next(blocks, None)
        total += pending.numel()
        buffer = torch.cat([buffer, pending])
        end = buffer_start + buffer.numel()
        if following is None:  # the end of the signal: the rest, cut as the whole would be
            groups = -(-total // down)
            keep = -(-up * total // down) - done_groups * up
        else:
            groups = max(done_groups, (end - margin) // down)
            keep = (groups - done_groups) * up
        if groups > done_groups:
            start = max(0, done_groups * down - margin)
            piece = resample(buffer[start - buffer_start :], source_rate, target_rate)
            first = (done_groups - start // down) * up
            yield piece[first : first + keep]
            done_groups = groups
            cut = max(0, done_groups * down - margin) - buffer_start
            buffer, buffer_start = buffer[cut:], buffer_start + cut
        pending = following
