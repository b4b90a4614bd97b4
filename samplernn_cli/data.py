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
from collections.abc import Callable
from dataclasses import dataclass

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


def code_dtype(levels: int) -> torch.dtype:
    """Smallest signed dtype that holds codes 0 .. levels - 1 (storage only)."""
    return torch.int16 if levels <= 2**15 else torch.int32


@dataclass(frozen=True)
class DataSplit:
    """The training part and the held-out tail of one input, as codes."""

    train: torch.Tensor  # (T,) codes
    val: torch.Tensor  # (V,) codes, the last samples of the input; empty when V = 0
    val_context: torch.Tensor  # (history,) codes just before ``val``


def split_codes(
    codes: torch.Tensor,
    *,
    val_fraction: float,
    chunk_length: int,
    history: int,
    sample_rate: int,
    name: str,
) -> DataSplit:
    """Hold out the end of the input for validation.

    The held-out part is ``val_fraction`` of the input but at least one chunk (when the
    fraction is not zero); the training part must also hold at least one chunk.

    Raises:
        AudioError: the input is too short for one training chunk (plus one for validation).
    """
    total = codes.numel()
    val_length = 0
    if val_fraction > 0:
        val_length = max(round(total * val_fraction), chunk_length)
    needed = chunk_length + (chunk_length if val_fraction > 0 else 0)
    if total - val_length < chunk_length:
        parts = "frame size x num_frames" + (" x 2 with validation" if val_fraction > 0 else "")
        raise AudioError(
            f"{name} is {total / sample_rate:.3g} s long; training needs at least "
            f"{needed / sample_rate:.3g} s ({parts}, at {sample_rate} Hz); "
            "use a longer file or lower --num_frames or --frame_size"
        )
    train = codes[: total - val_length]
    val = codes[total - val_length :]
    context = train[-history:] if train.numel() >= history else train
    return DataSplit(train=train, val=val, val_context=context)


def whole_chunks(requested: int, available: int, chunk_length: int) -> int:
    """A sequence length in samples: whole chunks, at most ``available``, at least one chunk."""
    return max(1, min(requested, available) // chunk_length) * chunk_length


class SequencePlan:
    """The deterministic schedule of training sequences, batches and chunks.

    Sequences of ``sequence_length`` samples start at evenly spaced offsets covering the
    whole training audio; there are at least ``batch_size`` of them (overlapping when the
    audio is short) and a whole number of batches. Each epoch visits them all in an order
    drawn from (seed, epoch). Every sequence carries ``history`` samples of real context
    before its first target (silence before the start of the file).
    """

    def __init__(
        self,
        train_codes: torch.Tensor,
        *,
        history: int,
        zero_code: int,
        sequence_length: int,
        chunk_length: int,
        batch_size: int,
        seed: int,
    ) -> None:
        total = train_codes.numel()
        if total < chunk_length:
            raise ValueError("training audio shorter than one chunk")
        self.sequence_length = whole_chunks(sequence_length, total, chunk_length)
        self.chunk_length = chunk_length
        self.chunks_per_sequence = self.sequence_length // chunk_length
        self.history = history
        self.batch_size = batch_size
        self.seed = seed
        padding = torch.full((history,), zero_code, dtype=train_codes.dtype)
        self.padded = torch.cat([padding, train_codes])
        wanted = max(math.ceil(total / self.sequence_length), batch_size)
        self.num_sequences = math.ceil(wanted / batch_size) * batch_size
        span = total - self.sequence_length
        if self.num_sequences == 1:
            self.starts = torch.zeros(1, dtype=torch.long)
        else:
            steps = torch.arange(self.num_sequences, dtype=torch.float64)
            self.starts = torch.round(steps * span / (self.num_sequences - 1)).long()
        self.batches_per_epoch = self.num_sequences // batch_size

    @property
    def iterations_per_epoch(self) -> int:
        return self.batches_per_epoch * self.chunks_per_sequence

    def order(self, epoch: int) -> torch.Tensor:
        """Permutation of the sequences for ``epoch`` (0-based)."""
        generator = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
        return torch.randperm(self.num_sequences, generator=generator)

    def batch(self, epoch: int, index: int) -> torch.Tensor:
        """(B, history + sequence_length) codes of batch ``index`` of ``epoch``."""
        chosen = self.order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        # Overlapping windows as a view; indexing copies only the chosen B rows.
        windows = self.padded.unfold(0, self.history + self.sequence_length, 1)
        return windows[self.starts[chosen]]

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
    context: torch.Tensor,
    codes: torch.Tensor,
    *,
    sequence_length: int,
    chunk_length: int,
    should_stop: Callable[[], bool] | None = None,
) -> float | None:
    """Negative log-likelihood of ``codes`` under ``model``, in bits per sample.

    The audio is cut into segments of ``sequence_length`` samples, each evaluated like a
    training sequence (state reset at its start, carried across its chunks, the real audio
    before it as context; ``context`` holds the samples before ``codes``). The last segment
    is padded and the padding is not counted. Returns None when ``should_stop`` fires.
    """
    device = next(model.parameters()).device
    history = model.history
    zero = model.quantizer.zero_code
    total = codes.numel()
    if total == 0:
        raise ValueError("nothing to evaluate")
    # Segments no longer than the audio; forward-only steps may be longer than a training
    # chunk (the state is carried either way, so the figure is the same).
    sequence_length = max(chunk_length, sequence_length // chunk_length * chunk_length)
    sequence_length = min(sequence_length, math.ceil(total / chunk_length) * chunk_length)
    step = min(sequence_length, chunk_length * max(1, EVAL_STEP_SAMPLES // chunk_length))
    batch_size = max(1, EVAL_BATCH_SAMPLES // step)
    num_segments = math.ceil(total / sequence_length)
    padded_length = num_segments * sequence_length
    stream = torch.cat(
        [
            F.pad(context.long(), (history - context.numel(), 0), value=zero),
            F.pad(codes.long(), (0, padded_length - total), value=zero),
        ]
    )
    mask = torch.zeros(padded_length, dtype=torch.bool)
    mask[:total] = True
    windows = stream.unfold(0, history + sequence_length, sequence_length)  # (S, H + len)
    masks = mask.view(num_segments, sequence_length)
    nll_sum = torch.zeros((), dtype=torch.float64)
    for first in range(0, num_segments, batch_size):
        rows = windows[first : first + batch_size].to(device)
        row_masks = masks[first : first + batch_size].to(device)
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
            nll_sum += (nll * row_masks[:, start : start + length].reshape(-1)).sum().cpu()
    return float(nll_sum) / total / LOG2
