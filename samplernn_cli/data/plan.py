"""Turning the training parts of the input files into truncated-BPTT batches.

The training audio is cut into long sequences (8 s by default). A batch is ``batch_size``
sequences; each optimizer step (one *iteration*) sees the next chunk of ``chunk_length``
samples of every sequence in the batch, carrying the RNN state from chunk to chunk, and the
state is reset when the next batch of sequences starts. So the model learns context as long
as a sequence, and generation, which runs for seconds from a reset state, matches what
training saw.

Which sequences make up epoch ``e`` depends only on (seed, e), so a run can be stopped and
resumed at any iteration and see exactly the same data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from samplernn_cli.config import ModelConfig, TrainConfig
from samplernn_cli.data.augment import epoch_draws, epoch_gains, flip, regain, with_copies
from samplernn_cli.data.split import Segment, whole_chunks
from samplernn_cli.quantize import Quantizer
from samplernn_cli.seeding import COLD_SALT, FLIP_SALT, STARTS_SALT, mix_seed


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
    visits them all in an order drawn from (seed, epoch). With ``random_starts`` the k-th
    sequence of a segment starts anywhere in the k-th of equal parts of the segment's
    possible starts, drawn anew for every epoch from (seed, epoch): the same coverage, but
    chunk boundaries and the state's history fall at different samples every epoch, so a
    short recording is not learned as the same few sequences over and over. With
    ``min_gain`` below 1, each sequence is played at a gain drawn from [min_gain, 1] for
    each epoch from (seed, epoch) and quantized again
    (:func:`~samplernn_cli.data.augment.regain`), so the model learns the recording's sound
    at other levels, not its exact codes. With ``polarity_flip`` above 0, each sequence
    plays upside down (:func:`~samplernn_cli.data.augment.flip`) for an epoch with that
    probability, drawn from (seed, epoch). Every sequence carries ``history`` samples of real
    context before its first target (silence before the start of a file); with
    ``cold_starts`` above 0, a sequence's context is silence instead for an epoch with that
    probability, drawn from (seed, epoch): it starts as generation does, from the reset state
    and a silent past.
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
        random_starts: bool = False,
        min_gain: float = 1.0,
        polarity_flip: float = 0.0,
        cold_starts: float = 0.0,
        quantizer: Quantizer | None = None,
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
        files, starts, lows, widths = [], [], [], []
        for segment, count in zip(segments, counts, strict=True):
            span = segment.length - self.sequence_length
            for k in range(count):
                offset = 0 if count == 1 else round(k * span / (count - 1))
                files.append(segment.file)
                starts.append(segment.start + offset)
                # Random starts: sequence k starts anywhere in the k-th of ``count`` equal
                # parts of the segment's possible starts (0 .. span).
                low, high = k * (span + 1) // count, (k + 1) * (span + 1) // count
                lows.append(segment.start + low)
                widths.append(max(1, high - low))
        self.files = torch.tensor(files, dtype=torch.long)
        self.starts = torch.tensor(starts, dtype=torch.long)  # within each file
        self.lows = torch.tensor(lows, dtype=torch.long)
        self.widths = torch.tensor(widths, dtype=torch.long)
        self.random_starts = random_starts
        if min_gain < 1.0 and quantizer is None:
            raise ValueError("random gains need the quantizer")
        if polarity_flip > 0.0 and quantizer is None:
            raise ValueError("polarity flips need the quantizer")
        self.min_gain = min_gain
        self.polarity_flip = polarity_flip
        self.cold_starts = cold_starts
        self.quantizer = quantizer
        self.batches_per_epoch = self.num_sequences // batch_size

    @property
    def iterations_per_epoch(self) -> int:
        return self.batches_per_epoch * self.chunks_per_sequence

    def order(self, epoch: int) -> torch.Tensor:
        """Permutation of the sequences for ``epoch`` (0-based)."""
        generator = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
        return torch.randperm(self.num_sequences, generator=generator)

    def epoch_starts(self, epoch: int) -> torch.Tensor:
        """Where each sequence starts in ``epoch`` (within its file)."""
        if not self.random_starts:
            return self.starts
        generator = torch.Generator().manual_seed(mix_seed(mix_seed(self.seed, epoch), STARTS_SALT))
        draws = torch.rand(self.num_sequences, generator=generator, dtype=torch.float64)
        return self.lows + (draws * self.widths).long().clamp_(max=self.widths - 1)

    def batch(self, epoch: int, index: int, rows: slice = slice(None)) -> torch.Tensor:
        """(B, history + sequence_length) int64 codes of batch ``index`` of ``epoch`` (or
        only its ``rows``)."""
        chosen = self.order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        chosen = chosen[rows]
        starts = self.epoch_starts(epoch)[chosen]
        picks = list(zip(self.files[chosen].tolist(), starts.tolist(), strict=True))
        codes = read_rows(
            self.codes, picks, before=self.history, length=self.sequence_length,
            fill=self.zero_code,
        )  # fmt: skip
        if self.min_gain < 1.0:
            assert self.quantizer is not None
            gains = epoch_gains(self.seed, epoch, self.num_sequences, self.min_gain)
            codes = regain(codes, gains[chosen], self.quantizer)
        if self.polarity_flip > 0.0:
            assert self.quantizer is not None
            flips = epoch_draws(self.seed, epoch, self.num_sequences, self.polarity_flip,
                                FLIP_SALT)  # fmt: skip
            codes = flip(codes, flips[chosen], self.quantizer)
        if self.cold_starts > 0.0:
            colds = epoch_draws(self.seed, epoch, self.num_sequences, self.cold_starts, COLD_SALT)
            codes[colds[chosen], : self.history] = self.zero_code
        return codes

    def window(self, batch: torch.Tensor, chunk: int) -> torch.Tensor:
        """(B, history + chunk_length) int64 codes of chunk ``chunk`` of a batch."""
        start = chunk * self.chunk_length
        return batch[:, start : start + self.history + self.chunk_length].long()


def training_plan(
    codes: Sequence[np.ndarray | torch.Tensor],
    segments: Sequence[Segment],
    train: TrainConfig,
    model: ModelConfig,
    quantizer: Quantizer,
    sample_rate: int,
) -> SequencePlan:
    """A run's plan: its training ``segments`` of ``codes``, their copies at other speeds
    (``train.speed_spread``) and sampled between their samples (``train.shift_copies``:
    :func:`~samplernn_cli.data.augment.with_copies`), with the run's settings."""
    lengths = dict(  # of the training sequences, as requested, and of a chunk
        sequence_length=round(train.sequence_seconds * sample_rate),
        chunk_length=train.chunk_length(model),
    )
    return SequencePlan(
        *with_copies(
            codes,
            segments,
            quantizer,
            spread=train.speed_spread,
            shifts=train.shift_copies,
            **lengths,
        ),
        history=model.history,
        zero_code=quantizer.zero_code,
        batch_size=train.batch_size,
        seed=train.seed,
        random_starts=train.sequence_starts == "random",
        min_gain=train.min_gain,
        polarity_flip=train.polarity_flip,
        cold_starts=train.cold_starts,
        quantizer=quantizer,
        **lengths,
    )
