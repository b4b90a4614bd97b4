"""Splitting and the truncated-BPTT data plan."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from samplernn_cli.config import ModelConfig
from samplernn_cli.data import SequencePlan, evaluate_bits, split_codes
from samplernn_cli.errors import AudioError
from samplernn_cli.model import SampleRNN


def make_plan(total: int = 1000, **overrides: int) -> tuple[torch.Tensor, SequencePlan]:
    codes = torch.arange(total, dtype=torch.int32) % 200 + 10
    settings = dict(history=8, zero_code=128, sequence_length=96, chunk_length=32,
                    batch_size=4, seed=3)  # fmt: skip
    settings.update(overrides)
    return codes, SequencePlan(codes, **settings)


def test_split_holds_out_the_tail() -> None:
    codes = torch.arange(1000)
    split = split_codes(codes, val_fraction=0.1, chunk_length=32, history=8, sample_rate=100,
                        name="x.wav")  # fmt: skip
    assert split.train.tolist() == list(range(900))
    assert split.val.tolist() == list(range(900, 1000))
    assert split.val_context.tolist() == list(range(892, 900))


def test_split_without_validation_and_minimum_lengths() -> None:
    split = split_codes(torch.arange(40), val_fraction=0.0, chunk_length=32, history=8,
                        sample_rate=100, name="x.wav")  # fmt: skip
    assert split.val.numel() == 0 and split.train.numel() == 40
    # With validation both parts need a whole chunk: 63 samples are too few for two.
    with pytest.raises(AudioError, match=r"x.wav is 0.63 s long; training needs at least 0.64 s"):
        split_codes(torch.arange(63), val_fraction=0.05, chunk_length=32, history=8,
                    sample_rate=100, name="x.wav")  # fmt: skip


def test_plan_is_deterministic_per_epoch_and_covers_the_audio() -> None:
    _, plan = make_plan()
    assert plan.sequence_length == 96 and plan.chunks_per_sequence == 3
    assert plan.num_sequences % plan.batch_size == 0
    assert plan.num_sequences >= math.ceil(1000 / 96)
    # Starts are evenly spaced from the first to the last possible one.
    assert plan.starts[0] == 0 and plan.starts[-1] == 1000 - 96
    covered = torch.zeros(1000, dtype=torch.bool)
    for start in plan.starts.tolist():
        covered[start : start + 96] = True
    assert covered.all()
    assert torch.equal(plan.order(0), make_plan()[1].order(0))
    assert not torch.equal(plan.order(0), plan.order(1))
    seen = torch.cat([plan.order(0)]).sort().values
    assert torch.equal(seen, torch.arange(plan.num_sequences))


def test_batches_and_windows_hold_the_right_samples() -> None:
    codes, plan = make_plan()
    batch = plan.batch(2, 1)
    assert batch.shape == (4, 8 + 96)
    chosen = plan.order(2)[4:8]
    for row, index in zip(batch, chosen.tolist(), strict=True):
        start = plan.starts[index].item()
        padded = torch.cat([torch.full((8,), 128, dtype=torch.int32), codes])
        assert torch.equal(row, padded[start : start + 8 + 96])
    window = plan.window(batch, 1)
    assert window.dtype == torch.int64 and window.shape == (4, 8 + 32)
    assert torch.equal(window, batch[:, 32 : 32 + 40].long())


def test_short_audio_gives_overlapping_sequences_for_a_full_batch() -> None:
    _, plan = make_plan(total=100, batch_size=8, sequence_length=1000)
    assert plan.sequence_length == 96  # whole chunks, at most the audio
    assert plan.num_sequences == 8 and plan.batches_per_epoch == 1


def test_evaluate_bits_matches_a_direct_computation_and_ignores_padding() -> None:
    torch.manual_seed(0)
    model = SampleRNN(ModelConfig(frame_sizes=(4,), rnn_layers=1, hidden_size=8, embed_size=2,
                                  q_levels=16)).eval()  # fmt: skip
    codes = torch.randint(0, 16, (100,))  # not a multiple of the chunk: the tail is padded
    context = torch.randint(0, 16, (4,))
    bits = evaluate_bits(model, context, codes, sequence_length=1000, chunk_length=8)
    with torch.no_grad():
        window = torch.cat([context, codes, torch.full((4,), 8)]).unsqueeze(0)
        logits, _ = model(window)
        direct = F.cross_entropy(logits[0, :100], codes).item() / math.log(2)
    assert bits == pytest.approx(direct, rel=1e-5)
    # Segments restart the state: two segments of 48 differ from one of 100.
    split = evaluate_bits(model, context, codes, sequence_length=48, chunk_length=8)
    assert split != pytest.approx(bits, rel=1e-9)
    assert evaluate_bits(model, context, codes, sequence_length=96, chunk_length=8,
                         should_stop=lambda: True) is None  # fmt: skip
