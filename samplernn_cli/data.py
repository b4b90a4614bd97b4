"""Turning a quantized waveform into truncated-BPTT batches, and held-out validation data.

The training part of the audio is cut into long sequences (8 s by default). A batch is
``batch_size`` sequences; each optimizer step (one *iteration*) sees the next chunk of
``chunk_length`` samples of every sequence in the batch, carrying the RNN state from chunk to
chunk, and the state is reset when the next batch of sequences starts. So the model learns
context as long as a sequence, and generation, which runs for seconds from a reset state,
matches what training saw.

Which sequences make up epoch ``e`` depends only on (seed, e), so a run can be stopped and
resumed at any iteration and see exactly the same data.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from samplernn_cli.errors import AudioError
from samplernn_cli.model import ModelState, SampleRNN, detach_state

LOG2 = math.log(2.0)
# Evaluation runs forward only, in steps of about EVAL_STEP_SAMPLES targets per segment and
# at most EVAL_BATCH_SAMPLES targets per forward call (about the memory of a training step
# at the default size).
EVAL_STEP_SAMPLES = 8192
EVAL_BATCH_SAMPLES = 131072


@dataclass(frozen=True)
class Segment:
    """A stretch of one input file's codes: samples ``start .. start + length``."""

    file: int  # index into the dataset's files
    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class DataSplit:
    """Which parts of the input files train and which validate; they never overlap."""

    train: tuple[Segment, ...]
    val: tuple[Segment, ...]  # empty without validation
    skipped: tuple[int, ...] = ()  # files too short to use

    @property
    def train_samples(self) -> int:
        return sum(s.length for s in self.train)

    @property
    def val_samples(self) -> int:
        return sum(s.length for s in self.val)


VAL_SPLITS = ("tail", "files")


def tail_length(total: int, val_fraction: float, chunk_length: int) -> int:
    """Samples held out at the end of a file of ``total`` samples: ``val_fraction`` of it, but
    at least one chunk (none when the fraction is zero)."""
    return max(round(total * val_fraction), chunk_length) if val_fraction > 0 else 0


def split_dataset(
    lengths: Sequence[int],
    names: Sequence[str],
    *,
    val_fraction: float,
    val_split: str = "tail",
    chunk_length: int,
    sample_rate: int,
    seed: int = 0,
) -> DataSplit:
    """Split the input files into training and validation parts.

    ``tail``: the last ``val_fraction`` of every file (at least one chunk) validates and the
    rest trains. ``files``: whole files validate, drawn in an order fixed by ``seed`` until
    they hold ``val_fraction`` of the audio; at least one file trains. Every training part
    must hold a chunk: with several files, shorter files are skipped (and listed in
    ``skipped``); with one, or when none is long enough, it is an error.

    Raises:
        AudioError: no file is long enough to train on (or ``files`` with one file).
    """
    if val_split not in VAL_SPLITS:
        raise ValueError(f"unknown validation split {val_split!r}")
    count = len(lengths)
    held_out: set[int] = set()
    if val_split == "files" and val_fraction > 0:
        if count < 2:
            raise AudioError(
                "--val-split files holds out whole files and needs at least two input files; "
                "use --val-split tail with one file"
            )
        order = list(range(count))
        random.Random(seed).shuffle(order)
        total = sum(lengths)
        held = 0
        for index in order[:-1]:  # at least one file stays for training
            if held >= val_fraction * total:
                break
            held_out.add(index)
            held += lengths[index]
    train: list[Segment] = []
    val: list[Segment] = []
    skipped: list[int] = []
    for index, total in enumerate(lengths):
        if index in held_out:
            val.append(Segment(index, 0, total))
            continue
        val_length = tail_length(total, val_fraction, chunk_length) if val_split == "tail" else 0
        if total - val_length < chunk_length:
            skipped.append(index)
            continue
        train.append(Segment(index, 0, total - val_length))
        if val_length:
            val.append(Segment(index, total - val_length, val_length))
    if not train:
        with_val = val_fraction > 0 and val_split == "tail"
        needed = chunk_length * (2 if with_val else 1)
        parts = "frame size x num_frames" + (" x 2 with validation" if with_val else "")
        longest = max(range(count), key=lambda i: lengths[i])
        what = names[0] if count == 1 else f"the longest input, {names[longest]},"
        raise AudioError(
            f"{what} is {lengths[longest] / sample_rate:.3g} s long; training needs at least "
            f"{needed / sample_rate:.3g} s ({parts}, at {sample_rate} Hz); "
            "use a longer file or lower --num_frames or --frame_size"
        )
    return DataSplit(train=tuple(train), val=tuple(val), skipped=tuple(skipped))


def whole_chunks(requested: int, available: int, chunk_length: int) -> int:
    """A sequence length in samples: whole chunks, at most ``available``, at least one chunk."""
    return max(1, min(requested, available) // chunk_length) * chunk_length


def read_rows(
    codes: Sequence[np.ndarray | torch.Tensor],
    picks: Sequence[tuple[int, int]],
    *,
    before: int,
    length: int,
    fill: int,
) -> torch.Tensor:
    """(len(picks), before + length) int64 codes: for each (file, position), that file's codes
    from ``position - before`` to ``position + length``; ``fill`` (silence) where this runs
    past the file's start or end, never into another file. Reads only those samples, so the
    codes may be memory-mapped."""
    rows = np.full((len(picks), before + length), fill, dtype=np.int64)
    for row, (file, position) in enumerate(picks):
        source = codes[file]
        first = max(0, position - before)
        last = min(int(source.shape[0]), position + length)
        if last > first:
            rows[row, first - (position - before) : last - (position - before)] = np.asarray(
                source[first:last]
            )
    return torch.from_numpy(rows)


class SequencePlan:
    """The deterministic schedule of training sequences, batches and chunks.

    Sequences of ``sequence_length`` samples (whole chunks, at most the shortest training
    segment) start at evenly spaced offsets covering each training segment, never crossing
    its end; there are at least ``batch_size`` of them (overlapping more where needed, the
    extra ones going to the longest segments) and a whole number of batches. Each epoch
    visits them all in an order drawn from (seed, epoch). Every sequence carries ``history``
    samples of real context before its first target (silence before the start of a file).
    """

    def __init__(
        self,
        codes: Sequence[np.ndarray | torch.Tensor],
        segments: Sequence[Segment],
        *,
        history: int,
        zero_code: int,
        sequence_length: int,
        chunk_length: int,
        batch_size: int,
        seed: int,
    ) -> None:
        if not segments or min(s.length for s in segments) < chunk_length:
            raise ValueError("a training segment is shorter than one chunk")
        self.codes = codes
        shortest = min(s.length for s in segments)
        self.requested_length = sequence_length
        self.sequence_length = whole_chunks(sequence_length, shortest, chunk_length)
        # Whether the shortest segment, not the request, set the length.
        self.limited_by_shortest = self.sequence_length < whole_chunks(
            sequence_length, sequence_length, chunk_length
        )
        self.chunk_length = chunk_length
        self.chunks_per_sequence = self.sequence_length // chunk_length
        self.history = history
        self.zero_code = zero_code
        self.batch_size = batch_size
        self.seed = seed
        counts = [math.ceil(s.length / self.sequence_length) for s in segments]
        wanted = max(sum(counts), batch_size)
        self.num_sequences = math.ceil(wanted / batch_size) * batch_size
        extra = self.num_sequences - sum(counts)
        by_length = sorted(range(len(segments)), key=lambda i: -segments[i].length)
        for turn in range(extra):
            counts[by_length[turn % len(by_length)]] += 1
        files, starts = [], []
        for segment, count in zip(segments, counts, strict=True):
            span = segment.length - self.sequence_length
            for k in range(count):
                offset = 0 if count == 1 else round(k * span / (count - 1))
                files.append(segment.file)
                starts.append(segment.start + offset)
        self.files = torch.tensor(files, dtype=torch.long)
        self.starts = torch.tensor(starts, dtype=torch.long)  # within each file
        self.batches_per_epoch = self.num_sequences // batch_size

    @property
    def iterations_per_epoch(self) -> int:
        return self.batches_per_epoch * self.chunks_per_sequence

    def order(self, epoch: int) -> torch.Tensor:
        """Permutation of the sequences for ``epoch`` (0-based)."""
        generator = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
        return torch.randperm(self.num_sequences, generator=generator)

    def batch(self, epoch: int, index: int, rows: slice = slice(None)) -> torch.Tensor:
        """(B, history + sequence_length) int64 codes of batch ``index`` of ``epoch`` (or
        only its ``rows``)."""
        chosen = self.order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        chosen = chosen[rows]
        picks = list(zip(self.files[chosen].tolist(), self.starts[chosen].tolist(), strict=True))
        return read_rows(
            self.codes, picks, before=self.history, length=self.sequence_length,
            fill=self.zero_code,
        )  # fmt: skip

    def window(self, batch: torch.Tensor, chunk: int) -> torch.Tensor:
        """(B, history + chunk_length) int64 codes of chunk ``chunk`` of a batch."""
        start = chunk * self.chunk_length
        return batch[:, start : start + self.history + self.chunk_length].long()


def mix_seed(seed: int, salt: int) -> int:
    """A 63-bit seed for a (run seed, salt) pair, e.g. (seed, epoch) or (seed, iteration);
    nearby pairs give unrelated seeds."""
    return (seed * 6364136223846793005 + (salt + 1) * 1442695040888963407) % (2**63)


@torch.no_grad()
def evaluate_bits(
    model: SampleRNN,
    codes: Sequence[np.ndarray | torch.Tensor],
    segments: Sequence[Segment],
    *,
    sequence_length: int,
    chunk_length: int,
    should_stop: Callable[[], bool] | None = None,
) -> float | None:
    """Negative log-likelihood of the ``segments`` of ``codes`` under ``model``, in bits per
    sample.

    Each segment is cut into pieces of ``sequence_length`` samples (or of its own length in
    whole chunks, if shorter), each evaluated like a training sequence (state reset at its
    start, carried across its chunks, the real audio of the same file before it as
    context). A segment's last piece is padded and the padding is not counted. Returns None
    when ``should_stop`` fires.
    """
    total = sum(s.length for s in segments)
    if total == 0:
        raise ValueError("nothing to evaluate")
    sequence_length = max(chunk_length, sequence_length // chunk_length * chunk_length)
    # Pieces of each segment, grouped by length: a segment's pieces are no longer than the
    # segment (in whole chunks), so a short segment is not padded to a long piece, and each
    # segment is cut the same way whatever other segments are scored with it.
    groups: dict[int, list[tuple[int, int, int]]] = {}
    for segment in segments:
        length = min(sequence_length, math.ceil(segment.length / chunk_length) * chunk_length)
        for position in range(segment.start, segment.end, length):
            piece = (segment.file, position, min(length, segment.end - position))
            groups.setdefault(length, []).append(piece)
    nll_sum = torch.zeros((), dtype=torch.float64)
    for length, pieces in groups.items():
        part = _evaluate_pieces(model, codes, pieces, length, chunk_length, should_stop)
        if part is None:
            return None
        nll_sum += part
    return float(nll_sum) / total / LOG2


def _evaluate_pieces(
    model: SampleRNN,
    codes: Sequence[np.ndarray | torch.Tensor],
    pieces: list[tuple[int, int, int]],
    sequence_length: int,
    chunk_length: int,
    should_stop: Callable[[], bool] | None,
) -> torch.Tensor | None:
    """Summed NLL (nats) of (file, position, counted samples) pieces of one length."""
    device = next(model.parameters()).device
    history = model.history
    zero = model.quantizer.zero_code
    # Forward-only steps may be longer than a training chunk (the state is carried either
    # way, so the figure is the same).
    step = min(sequence_length, chunk_length * max(1, EVAL_STEP_SAMPLES // chunk_length))
    batch_size = max(1, EVAL_BATCH_SAMPLES // step)
    nll_sum = torch.zeros((), dtype=torch.float64)
    for first in range(0, len(pieces), batch_size):
        group = pieces[first : first + batch_size]
        rows = read_rows(
            codes, [(f, p) for f, p, _ in group], before=history, length=sequence_length,
            fill=zero,
        ).to(device)  # fmt: skip
        counted = torch.arange(sequence_length) < torch.tensor([n for _, _, n in group])[:, None]
        counted = counted.to(device)
        state: ModelState | None = None
        for start in range(0, sequence_length, step):
            if should_stop is not None and should_stop():
                return None
            length = min(step, sequence_length - start)
            window = rows[:, start : start + history + length]
            logits, state = model(window, state)
            state = detach_state(state)
            nll = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(),
                window[:, history:].reshape(-1),
                reduction="none",
            )
            nll_sum += (nll * counted[:, start : start + length].reshape(-1)).sum().cpu()
    return nll_sum
