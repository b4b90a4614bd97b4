"""Training-time variations of the code sequences, against memorising a short recording.

Copies at other speeds and copies sampled between the samples are made once, from the
training parts alone; gains and input noise are drawn from the run's seed (and the epoch or
iteration). So a run stays reproducible and resumes exactly. Validation and evaluation
never see any of them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF

from samplernn_cli.audio import resample_stream
from samplernn_cli.data.cache import cache_folder, stored_codes
from samplernn_cli.data.split import Segment, whole_chunks
from samplernn_cli.quantize import Quantizer
from samplernn_cli.seeding import GAIN_SALT, NOISE_SALT, mix_seed

logger = logging.getLogger("samplernn")


def speeds(spread: float) -> tuple[float, ...]:
    """The speeds of the training audio's extra copies for ``spread`` (none for 0):
    1 - spread, 1 - spread / 2, 1 + spread / 2 and 1 + spread."""
    if spread <= 0:
        return ()
    return (1.0 - spread, 1.0 - spread / 2, 1.0 + spread / 2, 1.0 + spread)


def shifted(audio: torch.Tensor, count: int) -> list[torch.Tensor]:
    """``count`` copies of ``audio`` (float, (T,)) sampled between its samples: copy j
    (1..count) holds the band-limited waveform at j/(count+1) of a sample after each of
    ``audio``'s samples, the same length. Made by resampling to count+1 times the rate
    (torchaudio) and keeping every (count+1)-th sample from j."""
    if count <= 0:
        return []
    step = count + 1
    fine = AF.resample(audio, 1, step)
    return [fine[j::step][: len(audio)].contiguous() for j in range(1, step)]


# Copies are made a block of input samples at a time (a shifted copy's block with
# SHIFT_CONTEXT samples of the audio around it, more than the resampling kernel reaches; a
# speed copy's through resample_stream), and written to the code cache on disk, which
# training reads through a memory map: an hour-long training part needs a block's floats,
# not the hour's several times over, and its copies take disk, not memory.
COPY_BLOCK = 1 << 20
SHIFT_CONTEXT = 64
COPIES_VERSION = 1


def _decoded(source: np.ndarray, quantizer: Quantizer) -> Iterator[torch.Tensor]:
    for first in range(0, len(source), COPY_BLOCK):
        block = np.asarray(source[first : first + COPY_BLOCK], np.int64)
        yield quantizer.decode(torch.from_numpy(block))


def speed_blocks(source: np.ndarray, speed: Fraction, quantizer: Quantizer) -> Iterator[np.ndarray]:
    """The codes of the code array ``source`` played at ``speed`` (resampled, band-limited,
    to 1/speed of its length, and quantized again), block by block, in ``source``'s dtype."""
    for block in resample_stream(_decoded(source, quantizer), speed.numerator, speed.denominator):
        yield quantizer.encode(block).numpy().astype(source.dtype)


def shifted_blocks(source: np.ndarray, count: int, quantizer: Quantizer) -> Iterator[np.ndarray]:
    """The codes of ``count`` copies of the code array ``source`` sampled between its
    samples (:func:`shifted`), quantized again, block by block: (n, count) arrays in
    ``source``'s dtype whose column j - 1 is copy j."""
    for lo in range(0, len(source), COPY_BLOCK):
        hi = min(len(source), lo + COPY_BLOCK)
        first, last = max(0, lo - SHIFT_CONTEXT), min(len(source), hi + SHIFT_CONTEXT)
        audio = quantizer.decode(torch.from_numpy(np.asarray(source[first:last], np.int64)))
        pieces = [quantizer.encode(piece[lo - first : hi - first]).numpy()
                  for piece in shifted(audio, count)]  # fmt: skip
        yield np.stack(pieces, axis=1).astype(source.dtype)


def _digest(source: np.ndarray) -> str:
    digest = hashlib.sha256()
    for first in range(0, len(source), COPY_BLOCK):
        digest.update(np.ascontiguousarray(source[first : first + COPY_BLOCK]).tobytes())
    return digest.hexdigest()


def _stored(
    folder: Path, identity: dict, blocks: Callable[[], Iterator[np.ndarray]], length: int,
    dtype: np.dtype, width: int | None = None,
) -> np.ndarray:  # fmt: skip
    """The codes ``blocks()`` gives (``length`` of them, or ``length`` rows of ``width``),
    from the copies' cache folder (:func:`~samplernn_cli.data.cache.stored_codes`)."""
    stored = stored_codes(folder, identity, blocks, length * (width or 1), dtype,
                          what="copy of the training audio")  # fmt: skip
    return stored if width is None else stored.reshape(length, width)


def with_copies(
    codes: Sequence[np.ndarray],
    segments: Sequence[Segment],
    quantizer: Quantizer,
    *,
    spread: float,
    shifts: int,
    sequence_length: int,
    chunk_length: int,
    cache: Path | None = None,
) -> tuple[list[np.ndarray], tuple[Segment, ...]]:
    """``codes`` and their training ``segments``, followed by the segments played at
    :func:`speeds` (``spread``) and then by ``shifts`` copies of each segment sampled
    between its samples (:func:`shifted`): new code arrays, numbered after ``codes``'
    files, each with one whole-array segment.

    Like a tape played faster or slower, pitch and tempo move together: a copy at speed s
    is the segment's audio resampled (band-limited, torchaudio) to 1/s of its length and
    quantized again. A copy shorter than the training sequences the segments give
    (``sequence_length`` requested, in whole chunks of ``chunk_length``: see
    :class:`~samplernn_cli.data.plan.SequencePlan`) is left out, so the copies never shorten
    the training sequences. A shifted copy is the same sound as its segment, with other
    samples and so other codes (quantized again), and the same length.

    The copies are made block by block into ``cache`` (default: the code cache's
    ``copies`` folder), keyed by the segment's codes and the copy's settings, and read
    through memory maps; a later run (or a resume) on the same audio reuses them.

    Raises:
        AudioError: the cache cannot be written (a full disk, no permission).
    """
    if not segments:
        return list(codes), tuple(segments)
    folder = cache if cache is not None else cache_folder() / "copies"
    shortest = whole_chunks(sequence_length, min(s.length for s in segments), chunk_length)
    digests: dict[Segment, str] = {}

    def identity(segment: Segment, source: np.ndarray, **copy: object) -> dict:
        if segment not in digests:
            digests[segment] = _digest(source)
        return {"version": COPIES_VERSION, "codes": digests[segment], "dtype": source.dtype.str,
                "quantizer": quantizer.kind, "levels": quantizer.q_levels,
                "block": COPY_BLOCK, **copy}  # fmt: skip

    extra: list[np.ndarray] = []
    made: list[float] = []  # the speed of each speed copy
    for speed in speeds(spread):
        # A small ratio of integers: torchaudio's kernel has one phase per output step.
        ratio = Fraction(speed).limit_denominator(100)
        for segment in segments:
            if segment.length / speed < shortest:
                continue
            source = codes[segment.file][segment.start : segment.end]
            extra.append(_stored(
                folder,
                identity(segment, source, speed=[ratio.numerator, ratio.denominator]),
                lambda source=source, ratio=ratio: speed_blocks(source, ratio, quantizer),
                -(-len(source) * ratio.denominator // ratio.numerator),
                source.dtype,
            ))  # fmt: skip
            made.append(speed)
    if made:
        used = sorted(set(made))
        times = sum(len(c) for c in extra) / sum(s.length for s in segments)
        left_out = len(segments) * len(speeds(spread)) - len(extra)
        why = f"; {left_out} would be shorter than a training sequence" if left_out else ""
        logger.info(
            f"training audio: also {len(extra)} copies at speeds "
            f"{', '.join(f'{s:g}' for s in used)} ({times:.1f} times the training parts{why})"
        )
    if shifts > 0:
        for segment in segments:
            source = codes[segment.file][segment.start : segment.end]
            together = _stored(
                folder,
                identity(segment, source, shifts=shifts),
                lambda source=source: shifted_blocks(source, shifts, quantizer),
                len(source),
                source.dtype,
                width=shifts,
            )
            extra.extend(together[:, j] for j in range(shifts))
        made_shifted = shifts * len(segments)
        logger.info(
            f"training audio: also {made_shifted} {'copy' if made_shifted == 1 else 'copies'} "
            f"sampled between its samples ({shifts} of each training part, at "
            f"{', '.join(f'{j}/{shifts + 1}' for j in range(1, shifts + 1))} of a sample)"
        )
    extra_segments = [Segment(len(codes) + i, 0, len(copy)) for i, copy in enumerate(extra)]
    return [*codes, *extra], (*segments, *extra_segments)


def epoch_gains(seed: int, epoch: int, count: int, min_gain: float) -> torch.Tensor:
    """(count,) float64 gains, uniform in [min_gain, 1], one per training sequence, drawn
    from (seed, epoch); all 1 when ``min_gain`` is 1."""
    if min_gain >= 1.0:
        return torch.ones(count, dtype=torch.float64)
    generator = torch.Generator().manual_seed(mix_seed(mix_seed(seed, epoch), GAIN_SALT))
    draws = torch.rand(count, generator=generator, dtype=torch.float64)
    return min_gain + (1.0 - min_gain) * draws


def regain(codes: torch.Tensor, gains: torch.Tensor, quantizer: Quantizer) -> torch.Tensor:
    """(B, T) codes -> the same audio at one gain per row, quantized again (same dtype).

    What the quantizer would have made of the recording played that much quieter: for a
    linear quantizer the waveform's shape at fewer levels, for mu-law and A-law the same
    shape on another part of the curve. Silence stays silence.
    """
    audio = quantizer.decode(codes) * gains.to(torch.float32)[:, None]
    return quantizer.encode(audio).to(codes.dtype)


def epoch_draws(seed: int, epoch: int, count: int, probability: float, salt: int) -> torch.Tensor:
    """(count,) bools, one per training sequence, each True with ``probability``, drawn
    from (seed, epoch) and the stream's ``salt``: which sequences play upside down this
    epoch (FLIP_SALT), which start from silence (COLD_SALT). All False when ``probability``
    is 0."""
    if probability <= 0.0:
        return torch.zeros(count, dtype=torch.bool)
    generator = torch.Generator().manual_seed(mix_seed(mix_seed(seed, epoch), salt))
    return torch.rand(count, generator=generator, dtype=torch.float64) < probability


def flip(codes: torch.Tensor, flips: torch.Tensor, quantizer: Quantizer) -> torch.Tensor:
    """(B, T) codes -> the rows that ``flips`` marks with their polarity inverted (the
    waveform upside down, which sounds the same), exactly, in the codes (same dtype).

    Every quantizer's grid is symmetric about its zero code (``quantizer.zero_code``), so
    code k of -x is ``2 * zero_code - k``: silence stays silence. With an even number of
    levels the lowest code (-1.0, half a step outside the grid's symmetric part) has no
    mirror and becomes the highest.
    """
    mirrored = (2 * quantizer.zero_code - codes).clamp_(0, quantizer.q_levels - 1)
    return torch.where(flips.to(codes.device)[:, None], mirrored, codes)


def jitter(
    codes: torch.Tensor,
    probability: float,
    levels: int,
    seed: int,
    iteration: int,
    rows: slice = slice(None),
    batch: int | None = None,
) -> torch.Tensor:
    """A copy of (CPU) ``codes`` in which each code, with ``probability``, moved one level up
    or down (staying within [0, levels)), drawn from (seed, iteration).

    In a distributed run ``codes`` are this process's ``rows`` of a batch of ``batch``: the
    draws are made for the whole batch, so the processes together move the codes one process
    would.
    """
    shape = (codes.shape[0] if batch is None else batch, codes.shape[1])
    generator = torch.Generator().manual_seed(mix_seed(mix_seed(seed, iteration), NOISE_SALT))
    moved = (torch.rand(shape, generator=generator) < probability)[rows]
    step = (torch.randint(0, 2, shape, generator=generator, dtype=codes.dtype) * 2 - 1)[rows]
    return (codes + moved.to(codes.dtype) * step).clamp_(0, levels - 1)
