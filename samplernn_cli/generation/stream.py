"""Writing one clip as a WAV stream while it is generated (``samplernn generate -o -``).

The RIFF header goes out first. Its size fields hold the clip's exact final sizes, because
the length is known before generation starts, so readers that trust the header (and those
that cannot seek back to fix it, like a pipe's reader) see a complete, ordinary WAV file.
Only a clip too long for RIFF's 32-bit sizes, or one without end (``--length inf``), gets
0xFFFFFFFF there ("until the end of the stream", as ffmpeg and sox write to pipes). The
samples follow in blocks as the sampler finishes them, encoded by libsndfile exactly as a
file of the same encoding would hold them.
"""

from __future__ import annotations

import contextlib
import io
import struct
import time
from collections.abc import Callable
from typing import BinaryIO

import numpy as np
import soundfile
import torch

from samplernn_cli.audio import ENCODINGS
from samplernn_cli.errors import OutputClosed, UsageError
from samplernn_cli.generation.clips import (
    GenerateRequest,
    GenerateResult,
    GenerateStatus,
    prepare,
)
from samplernn_cli.generation.engine import generate_endless, generate_takes

# Samples collected before a write (after the first frame, written at once): small enough
# that audio flows steadily (0.26 s at 16 kHz), large enough that a write is not a system
# call per top-tier frame.
STREAM_BLOCK_SAMPLES = 4096
# libsndfile subtype -> (WAVE format tag, bits per sample): 1 is integer PCM, 3 IEEE float.
WAVE_FORMATS = {"PCM_16": (1, 16), "PCM_24": (1, 24), "FLOAT": (3, 32)}
UNKNOWN_SIZE = 0xFFFFFFFF


def wav_header(frames: int | None, sample_rate: int, subtype: str) -> bytes:
    """The 44-byte header of a mono WAV file of ``frames`` samples (None: a stream without
    end, whose sizes say "until the end of the stream")."""
    tag, bits = WAVE_FORMATS[subtype]
    block = bits // 8
    data = UNKNOWN_SIZE if frames is None else frames * block
    riff = 36 + data
    if riff > UNKNOWN_SIZE:
        riff = data = UNKNOWN_SIZE
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", riff, b"WAVE",
        b"fmt ", 16, tag, 1, sample_rate, sample_rate * block, block, bits,
        b"data", data,
    )  # fmt: skip


def encode_samples(samples: torch.Tensor | np.ndarray, subtype: str) -> bytes:
    """(T,) float samples as little-endian WAV sample bytes, converted by libsndfile as
    :func:`samplernn_cli.audio.write_audio` would (integer encodings clipped to [-1, 1])."""
    data = np.asarray(samples, dtype=np.float32)
    if subtype != "FLOAT":
        data = np.clip(data, -1.0, 1.0)
    buffer = io.BytesIO()
    soundfile.write(buffer, data, 8000, subtype=subtype, format="RAW", endian="LITTLE")
    return buffer.getvalue()


def stream_clip(
    request: GenerateRequest,
    handle: BinaryIO,
    *,
    progress: Callable[[GenerateStatus], bool | None] | None = None,
) -> GenerateResult:
    """Generate one clip and write it to ``handle`` as a WAV stream while it is made.

    The samples are those :func:`~samplernn_cli.generation.clips.generate_files` writes for
    the same request (clip 1 of its seed). ``handle`` is flushed after every block.

    Raises:
        OutputClosed: the reader went away (a closed pipe); what was written stays written.
        CheckpointError, AudioError, UsageError, ConfigError: see :mod:`samplernn_cli.errors`.
    """
    settings = request.settings
    if settings.count != 1:
        raise UsageError(
            f"a stream holds one clip; --count is {settings.count} (write several clips as "
            "files with -d FOLDER, or run generate once per stream)"
        )
    if settings.candidates is not None:
        raise UsageError(
            "a stream is written while its one take is made; --candidates ranks finished "
            "takes: write the best to a file with -o FILE"
        )
    job = prepare(request)
    model, rate, num_samples = job.model, job.rate, job.num_samples
    subtype = ENCODINGS[settings.encoding]
    lead = job.prime_audio if settings.keep_prime and job.prime_audio is not None else None
    frames = None if settings.endless else num_samples + (0 if lead is None else lead.numel())

    def write(data: bytes) -> None:
        try:
            handle.write(data)
            handle.flush()
        except BrokenPipeError:
            raise OutputClosed("the reader of the output stream closed it") from None

    write(wav_header(frames, rate, subtype))
    if lead is not None:
        write(encode_samples(lead, subtype))
    pending: list[torch.Tensor] = []
    held = 0
    block = 1  # the first samples go out at once; then blocks of STREAM_BLOCK_SAMPLES

    def on_codes(codes: torch.Tensor) -> None:
        nonlocal held
        pending.append(codes[0])
        held += codes.shape[1]
        if held >= block:
            flush()

    def flush() -> None:
        nonlocal held, block
        if pending:
            write(encode_samples(model.quantizer.decode(torch.cat(pending)), subtype))
            pending.clear()
            held = 0
            block = STREAM_BLOCK_SAMPLES

    started = time.perf_counter()

    def clip_progress(done: int, _total: int) -> bool | None:
        if progress is None:
            return None
        seconds = time.perf_counter() - started
        if settings.endless:  # no total: the samples so far
            return progress(GenerateStatus(done, None, seconds, rate))
        return progress(GenerateStatus(min(done, num_samples), num_samples, seconds, rate))

    if settings.endless:
        try:  # returns only by an exception: the reader gone, Ctrl-C
            generate_endless(
                model, on_codes, temperature=settings.clip_temperatures()[0],
                precision=settings.precision, seed=job.seed, prime=job.prime_codes,
                progress=clip_progress, guard=job.guard,
            )  # fmt: skip
        finally:
            # What was made goes out if it still can.
            with contextlib.suppress(OutputClosed):
                flush()
    generate_takes(
        model,
        1,
        num_samples,
        temperature=settings.clip_temperatures()[:1],
        precision=settings.precision,
        seed=job.seed,
        prime=job.prime_codes,
        progress=clip_progress,
        on_codes=on_codes,
        guard=job.guard,
    )
    flush()
    return GenerateResult(
        paths=[],
        seed=job.seed,
        seconds=time.perf_counter() - started,
        samples=num_samples,
        sample_rate=rate,
    )
