"""Splitting and the truncated-BPTT data plan."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from samplernn_cli.config import ModelConfig
from samplernn_cli.data import augment
from samplernn_cli.data.augment import (
    epoch_draws,
    epoch_gains,
    jitter,
    shifted,
    shifted_blocks,
    speeds,
    with_copies,
)
from samplernn_cli.data.plan import SequencePlan
from samplernn_cli.data.split import DataSplit, Segment, split_dataset
from samplernn_cli.errors import AudioError
from samplernn_cli.evaluation import evaluate_bits
from samplernn_cli.model import SampleRNN
from samplernn_cli.quantize import Quantizer
from samplernn_cli.seeding import COLD_SALT, FLIP_SALT


def shifted_codes(source: np.ndarray, count: int, quantizer: Quantizer) -> list[np.ndarray]:
    """The copies :func:`shifted_blocks` makes, each whole."""
    together = np.concatenate(list(shifted_blocks(source, count, quantizer)))
    return [np.ascontiguousarray(together[:, j]) for j in range(count)]


def make_plan(total: int = 1000, **overrides: int) -> tuple[torch.Tensor, SequencePlan]:
    codes = torch.arange(total, dtype=torch.int32) % 200 + 10
    settings = dict(history=8, zero_code=128, sequence_length=96, chunk_length=32,
                    batch_size=4, seed=3)  # fmt: skip
    settings.update(overrides)
    return codes, SequencePlan([codes], [Segment(0, 0, total)], **settings)


def split(lengths: list[int], **overrides: object) -> DataSplit:
    settings: dict = dict(val_fraction=0.1, chunk_length=32, sample_rate=100)
    settings.update(overrides)
    return split_dataset(lengths, [f"f{i}.wav" for i in range(len(lengths))], **settings)


def test_split_holds_out_the_tail() -> None:
    parts = split([1000])
    assert parts.train == (Segment(0, 0, 900),)
    assert parts.val == (Segment(0, 900, 100),)


def test_split_without_validation_and_minimum_lengths() -> None:
    parts = split([40], val_fraction=0.0)
    assert parts.val == () and parts.train == (Segment(0, 0, 40),)
    # With validation both parts need a whole chunk: 63 samples are too few for two.
    with pytest.raises(AudioError, match=r"f0.wav is 0.63 s long; training needs at least 0.64 s"):
        split([63], val_fraction=0.05)


def test_split_of_several_files_never_overlaps_and_skips_short_files() -> None:
    lengths = [1000, 50, 640, 3000]
    parts = split(lengths)
    assert parts.skipped == (1,)  # 50 samples cannot hold a training and a validation chunk
    assert [s.file for s in parts.train] == [0, 2, 3] == [s.file for s in parts.val]
    for train, val in zip(parts.train, parts.val, strict=True):
        assert train.start == 0 and train.end == val.start and val.end == lengths[train.file]
        assert val.length == max(round(lengths[train.file] * 0.1), 32)
    with pytest.raises(AudioError, match=r"the longest input, f1\.wav, is 0\.5 s long"):
        split([20, 50])


def test_whole_file_validation_is_seeded_and_keeps_a_training_file() -> None:
    lengths = [500] * 10
    parts = split(lengths, val_split="files", val_fraction=0.25, seed=7)
    held = {s.file for s in parts.val}
    assert len(held) == 3  # files are added until they hold at least 25 % of the audio
    assert all(s.start == 0 and s.length == 500 for s in parts.val)
    assert held.isdisjoint(s.file for s in parts.train) and len(parts.train) == 7
    assert held == {s.file for s in split(lengths, val_split="files", val_fraction=0.25,
                                          seed=7).val}  # fmt: skip
    assert held != {s.file for s in split(lengths, val_split="files", val_fraction=0.25,
                                          seed=8).val}  # fmt: skip
    assert len(split([500, 500], val_split="files", val_fraction=0.5).train) == 1
    with pytest.raises(AudioError, match="needs at least two input files"):
        split([500], val_split="files")


def test_sequences_never_cross_from_one_file_into_another() -> None:
    files = [torch.full((n,), i + 1, dtype=torch.int16) for i, n in enumerate([300, 1000, 200])]
    segments = [Segment(0, 0, 270), Segment(1, 0, 900), Segment(2, 0, 180)]
    plan = SequencePlan(files, segments, history=8, zero_code=0, sequence_length=96,
                        chunk_length=32, batch_size=4, seed=1)  # fmt: skip
    assert plan.num_sequences % 4 == 0
    for file, start in zip(plan.files.tolist(), plan.starts.tolist(), strict=True):
        segment = segments[file]
        assert segment.start <= start and start + 96 <= segment.end
    for index in range(plan.batches_per_epoch):
        for row in plan.batch(0, index):
            targets = row[8:]
            assert len(set(targets.tolist())) == 1 and targets[0] != 0  # one file only
            assert set(row[:8].tolist()) <= {0, int(targets[0])}  # silence before its start
    # The shortest training segment caps the sequence length (whole chunks).
    short = SequencePlan(files, [Segment(0, 0, 270), Segment(2, 0, 70)], history=8,
                         zero_code=0, sequence_length=96, chunk_length=32, batch_size=2,
                         seed=1)  # fmt: skip
    assert short.sequence_length == 64 and short.limited_by_shortest
    assert not plan.limited_by_shortest  # 96 of the 96 asked for


def test_plan_is_deterministic_per_epoch_and_covers_the_audio() -> None:
    _, plan = make_plan()
    assert plan.sequence_length == 96 and plan.chunks_per_sequence == 3
    assert (plan.files == 0).all()
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
        assert row.tolist() == padded[start : start + 8 + 96].tolist()
    window = plan.window(batch, 1)
    assert plan.batch(2, 1, slice(1, 3)).tolist() == batch[1:3].tolist()
    assert window.dtype == torch.int64 and window.shape == (4, 8 + 32)
    assert torch.equal(window, batch[:, 32 : 32 + 40].long())


def test_short_audio_gives_overlapping_sequences_for_a_full_batch() -> None:
    _, plan = make_plan(total=100, batch_size=8, sequence_length=1000)
    assert plan.sequence_length == 96  # whole chunks, at most the audio
    assert plan.num_sequences == 8 and plan.batches_per_epoch == 1


def test_evaluate_bits_matches_a_direct_computation_and_ignores_padding() -> None:
    torch.manual_seed(0)
    model = SampleRNN(ModelConfig(frame_sizes=(4,), rnn_layers=1, hidden_size=8, embed_size=2,
                                  q_levels=16, linear_prediction=0)).eval()  # fmt: skip
    codes = torch.randint(0, 16, (100,))  # not a multiple of the chunk: the tail is padded
    context = torch.randint(0, 16, (4,))
    both = torch.cat([context, codes])
    segment = [Segment(0, 4, 100)]
    bits = evaluate_bits(model, [both], segment, sequence_length=1000, chunk_length=8)
    with torch.no_grad():
        window = torch.cat([context, codes, torch.full((4,), 8)]).unsqueeze(0)
        logits, _ = model(window)
        direct = F.cross_entropy(logits[0, :100], codes).item() / math.log(2)
    assert bits == pytest.approx(direct, rel=1e-5)
    # Segments restart the state: two segments of 48 differ from one of 100.
    pieces = evaluate_bits(model, [both], segment, sequence_length=48, chunk_length=8)
    assert pieces != pytest.approx(bits, rel=1e-9)
    assert evaluate_bits(model, [both], segment, sequence_length=96, chunk_length=8,
                         should_stop=lambda: True) is None  # fmt: skip
    # Several segments: the sample-weighted mean of each scored alone.
    other = torch.randint(0, 16, (60,))
    parts = [Segment(0, 4, 100), Segment(1, 20, 40)]
    together = evaluate_bits(model, [both, other], parts, sequence_length=48, chunk_length=8)
    alone = evaluate_bits(model, [other], [Segment(0, 20, 40)], sequence_length=48,
                          chunk_length=8)  # fmt: skip
    assert together == pytest.approx((pieces * 100 + alone * 40) / 140, rel=1e-5)


def test_random_starts_move_every_epoch_within_each_sequences_share() -> None:
    """With random starts, epoch e's starts depend only on (seed, e); each sequence stays in
    its own equal share of the segment's possible starts (so the epoch still covers the
    segment evenly), never crosses the segment's end, and the batches hold those samples."""
    files = [torch.arange(n, dtype=torch.int32) + 1 for n in (1000, 700)]
    segments = [Segment(0, 100, 900), Segment(1, 0, 650)]
    settings = dict(history=8, zero_code=0, sequence_length=96, chunk_length=32, batch_size=4,
                    seed=5, random_starts=True)  # fmt: skip
    plan = SequencePlan(files, segments, **settings)
    fixed = SequencePlan(files, segments, **{**settings, "random_starts": False})
    assert torch.equal(fixed.epoch_starts(0), fixed.starts)  # the schedule before
    assert plan.iterations_per_epoch == fixed.iterations_per_epoch
    epochs = [plan.epoch_starts(e) for e in range(6)]
    assert torch.equal(epochs[2], SequencePlan(files, segments, **settings).epoch_starts(2))
    assert all(not torch.equal(epochs[0], other) for other in epochs[1:])
    for segment in segments:
        mine = (plan.files == segment.file).nonzero().flatten()
        count = len(mine)
        span = segment.length - 96
        for k, index in enumerate(mine.tolist()):
            share = (segment.start + k * (span + 1) // count,
                     segment.start + (k + 1) * (span + 1) // count)  # fmt: skip
            for starts in epochs:
                assert share[0] <= starts[index] < max(share[1], share[0] + 1)
                assert starts[index] + 96 <= segment.end
    # The batch rows are the audio at those starts (codes = position + 1 here).
    order = plan.order(3)
    for index in range(plan.batches_per_epoch):
        rows = plan.batch(3, index)
        chosen = order[index * 4 : (index + 1) * 4]
        for row, sequence in zip(rows, chosen.tolist(), strict=True):
            assert row[8].item() == epochs[3][sequence].item() + 1


@pytest.mark.parametrize("kind", ["linear", "mu-law"])
def test_speed_copies_play_the_training_parts_faster_and_slower(kind: str) -> None:
    """Each training segment is copied at 4 speeds: 1/s of its length, every frequency
    times s (a tape played faster or slower); the held-out part is never copied, the
    originals come first unchanged, and copies shorter than a training sequence are left
    out."""
    assert speeds(0.0) == () and speeds(0.04) == pytest.approx((0.96, 0.98, 1.02, 1.04))
    rate, hz = 8000, 500.0
    quantizer = Quantizer(kind, 256)
    t = torch.arange(3 * rate, dtype=torch.float64) / rate
    codes = quantizer.encode(0.5 * torch.sin(2 * math.pi * hz * t)).numpy().astype("int16")
    segments = (Segment(0, 0, 2 * rate), Segment(0, 2 * rate + 400, rate - 400))
    # Sequences of 7,000 samples (chunks of 500): the shorter segment (7,600 samples) played
    # at 1.1 and 1.2 times the speed (6,910 and 6,334) is too short for one.
    lengths = dict(sequence_length=7000, chunk_length=500)
    same_codes, same_segments = with_copies([codes], segments, quantizer, spread=0.0, shifts=0,
                                            **lengths)  # fmt: skip
    assert same_segments == segments and len(same_codes) == 1
    all_codes, all_segments = with_copies([codes], segments, quantizer, spread=0.2, shifts=0,
                                          **lengths)  # fmt: skip
    assert all_codes[0] is codes and all_segments[:2] == segments
    copies = all_segments[2:]
    expected = [(2 * rate, 0.8), (rate - 400, 0.8), (2 * rate, 0.9), (rate - 400, 0.9),
                (2 * rate, 1.1), (2 * rate, 1.2)]  # fmt: skip
    assert [len(all_codes[s.file]) for s in copies] == [math.ceil(n / v) for n, v in expected]
    for segment, speed in zip(copies[::2][:2] + copies[4:], (0.8, 0.9, 1.1, 1.2), strict=True):
        assert segment.file == all_segments.index(segment) - 1 and segment.start == 0
        copy = all_codes[segment.file]
        assert copy.dtype == codes.dtype and segment.length == len(copy)
        audio = quantizer.decode(torch.from_numpy(copy[1000:-1000].astype("int64")))
        spectrum = torch.fft.rfft(audio * torch.hann_window(len(audio)))
        peak = spectrum.abs().argmax().item() * rate / len(audio)
        assert peak == pytest.approx(hz * speed, abs=2 * rate / len(audio))
        assert audio.abs().max() == pytest.approx(0.5, abs=0.05)
    # With sequences of 6,500, the copy at 1.1 is kept, shorter than the segment it plays.
    shorter = with_copies([codes], segments, quantizer, spread=0.2, shifts=0,
                          sequence_length=6500, chunk_length=500)  # fmt: skip
    assert [len(c) for c in shorter[0][1:]] == [len(c) for c in all_codes[1:5]] + [
        math.ceil(2 * rate / 1.1),
        math.ceil((rate - 400) / 1.1),
        math.ceil(2 * rate / 1.2),
    ]


@pytest.mark.parametrize("kind", ["linear", "mu-law"])
def test_shifted_copies_sample_the_training_parts_between_their_samples(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each training segment gets `shifts` copies of its own length, after the speed copies:
    copy j holds the waveform j/(shifts+1) of a sample later (a sine's phase moves by that
    much), quantized again; the held-out part is never copied. Made block by block, the
    copies are those of the whole part at once."""
    rate, hz = 8000, 440.0
    quantizer = Quantizer(kind, 256)
    t = torch.arange(3 * rate, dtype=torch.float64) / rate
    wave = 0.5 * torch.sin(2 * math.pi * hz * t)
    codes = quantizer.encode(wave).numpy().astype("int16")
    segments = (Segment(0, 0, 2 * rate), Segment(0, 2 * rate + 400, rate - 400))
    lengths = dict(sequence_length=7000, chunk_length=500)
    assert shifted(wave, 0) == []
    for count in (1, 3):
        made = shifted(wave, count)
        assert len(made) == count
        for j, copy in enumerate(made, start=1):
            later = 0.5 * torch.sin(2 * math.pi * hz * (t + j / (count + 1) / rate))
            assert len(copy) == len(wave)
            # Away from the ends (where the band-limited kernel runs out of signal).
            assert (copy[200:-200] - later[200:-200]).abs().max() < 1e-3
    all_codes, all_segments = with_copies([codes], segments, quantizer, spread=0.2, shifts=2,
                                          **lengths)  # fmt: skip
    with_speeds = with_copies([codes], segments, quantizer, spread=0.2, shifts=0, **lengths)
    assert all_segments[:-4] == with_speeds[1]  # the speed copies first, as without shifts
    copies = all_segments[-4:]
    assert [s.length for s in copies] == [2 * rate, 2 * rate, rate - 400, rate - 400]
    for segment, source, j in zip(copies, (segments[0], segments[0], segments[1], segments[1]),
                                  (1, 2, 1, 2), strict=True):  # fmt: skip
        assert segment.start == 0 and len(all_codes[segment.file]) == segment.length
        copy = all_codes[segment.file]
        assert copy.dtype == codes.dtype
        original = torch.from_numpy(codes[source.start : source.end].astype("int64"))
        later = 0.5 * torch.sin(2 * math.pi * hz * (t[source.start : source.end] + j / 3 / rate))
        # The copy's codes differ from the original's; away from the ends it plays the later
        # waveform, within the quantizers' steps at this level, and not the original one.
        assert (torch.from_numpy(copy.astype("int64")) != original).float().mean() > 0.3
        audio = quantizer.decode(torch.from_numpy(copy.astype("int64")))[200:-200].double()
        unshifted = wave[source.start : source.end][200:-200]
        assert (audio - later[200:-200]).abs().max() < 0.02
        error = (audio - later[200:-200]).abs().mean()
        assert error < 0.5 * (audio - unshifted).abs().mean()
    whole = [quantizer.encode(copy).numpy() for copy in shifted(quantizer.decode(
        torch.from_numpy(codes.astype("int64"))), 2)]  # fmt: skip
    monkeypatch.setattr(augment, "COPY_BLOCK", 5000)  # 5 blocks, the last one short
    for block, at_once in zip(shifted_codes(codes, 2, quantizer), whole, strict=True):
        assert block.dtype == codes.dtype
        difference = np.abs(block.astype("int64") - at_once)
        assert difference.max() <= 1 and (difference > 0).mean() < 0.001


def test_copies_are_made_block_by_block_into_the_cache_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copies are made a block at a time into the cache folder and read back through
    memory maps: the same codes as the whole part resampled at once; a second run on the
    same audio reuses them without making any; a damaged entry is made again; a cache that
    cannot be written is a one-line AudioError."""
    import torchaudio.functional as AF

    rate = 8000
    quantizer = Quantizer("linear", 256)
    t = torch.arange(3 * rate, dtype=torch.float64) / rate
    wave = 0.4 * torch.sin(2 * math.pi * 300.0 * t) + 0.2 * torch.sin(2 * math.pi * 1234.5 * t)
    codes = quantizer.encode(wave).numpy().astype("int16")
    segments = (Segment(0, 0, 2 * rate), Segment(0, 2 * rate + 400, rate - 400))
    settings = dict(spread=0.2, shifts=2, sequence_length=6000, chunk_length=500)
    monkeypatch.setattr(augment, "COPY_BLOCK", 3000)  # several blocks per part
    cache = tmp_path / "copies"
    made, made_segments = with_copies([codes], segments, quantizer, cache=cache, **settings)
    assert len(made) == 1 + 4 * 2 + 2 * 2
    assert len(list(cache.glob("*.codes"))) == 4 * 2 + 2  # one file per speed copy, per part
    for copy in made[1:]:
        assert isinstance(copy, np.memmap) and not copy.flags.writeable  # read from disk
        assert copy.dtype == codes.dtype
    # Speed copies: as the whole part resampled at once (to float rounding).
    for index, (segment, speed) in enumerate(
        [(s, v) for v in speeds(0.2) for s in segments], start=1
    ):
        ratio = Fraction(speed).limit_denominator(100)
        audio = quantizer.decode(torch.from_numpy(codes[segment.start : segment.end] * 1))
        whole = quantizer.encode(AF.resample(audio, ratio.numerator, ratio.denominator)).numpy()
        difference = np.abs(made[index].astype("int64") - whole)
        assert len(made[index]) == len(whole) == made_segments[index + 1].length
        assert difference.max() <= 1 and (difference > 0).mean() < 0.001

    # A second run reuses every copy: nothing is made again.
    def fail(*args: object) -> None:
        raise AssertionError("made again")

    monkeypatch.setattr(augment, "speed_blocks", fail)
    monkeypatch.setattr(augment, "shifted_blocks", fail)
    again, again_segments = with_copies([codes], segments, quantizer, cache=cache, **settings)
    assert again_segments == made_segments
    for first, second in zip(made, again, strict=True):
        assert np.array_equal(first, second)
    # A damaged entry (cut short) is made again, the same.
    monkeypatch.undo()
    monkeypatch.setattr(augment, "COPY_BLOCK", 3000)
    damaged = sorted(cache.glob("*.codes"))[0]
    cut = damaged.with_suffix(".cut")  # replaced, not cut in place: `made` still maps it
    cut.write_bytes(damaged.read_bytes()[:100])
    cut.replace(damaged)
    repaired, _ = with_copies([codes], segments, quantizer, cache=cache, **settings)
    for first, second in zip(made, repaired, strict=True):
        assert np.array_equal(first, second)
    # One shifted copy (the default): a plain array of the part's length.
    one, _ = with_copies([codes], segments, quantizer, cache=cache, spread=0.0, shifts=1,
                         sequence_length=6000, chunk_length=500)  # fmt: skip
    for copy, segment in zip(one[1:], segments, strict=True):
        expected = shifted_codes(codes[segment.start : segment.end], 1, quantizer)[0]
        assert copy.shape == (segment.length,) and np.array_equal(copy, expected)
    # A cache that cannot be written (a file where its folder would be).
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    with pytest.raises(AudioError, match="code cache"):
        with_copies([codes], segments, quantizer, cache=blocked / "copies", **settings)


@pytest.mark.parametrize("kind", ["linear", "mu-law"])
def test_random_gains_play_each_sequence_quieter_for_an_epoch(kind: str) -> None:
    """With min_gain, every sequence of an epoch is the same audio at one gain from
    [min_gain, 1] (drawn from seed and epoch), quantized again; silence stays silence."""
    quantizer = Quantizer(kind, 256)
    t = torch.arange(4000, dtype=torch.float32)
    audio = 0.9 * torch.sin(t * 0.05) * torch.sin(t * 0.0013)
    codes = quantizer.encode(audio).to(torch.int16)
    settings = dict(history=8, zero_code=quantizer.zero_code, sequence_length=320,
                    chunk_length=32, batch_size=4, seed=5)  # fmt: skip
    segments = [Segment(0, 0, 4000)]
    plain = SequencePlan([codes], segments, **settings)
    varied = SequencePlan([codes], segments, **settings, min_gain=0.5, quantizer=quantizer)
    off = SequencePlan([codes], segments, **settings, min_gain=1.0, quantizer=quantizer)
    assert torch.equal(off.batch(2, 1), plain.batch(2, 1))
    # Re-quantizing moves a sample by at most half a step of the grid where it lands.
    tolerance = 1 / 255 + 1e-6 if kind == "linear" else 0.025
    drawn = [epoch_gains(5, epoch, plain.num_sequences, 0.5) for epoch in range(3)]
    for epoch, gains in enumerate(drawn):
        assert ((gains >= 0.5) & (gains <= 1.0)).all() and gains.std() > 0.05
        order = plain.order(epoch)
        for index in range(plain.batches_per_epoch):
            clean, quiet = plain.batch(epoch, index), varied.batch(epoch, index)
            assert quiet.dtype == clean.dtype and quiet.shape == clean.shape
            assert torch.equal(varied.batch(epoch, index), quiet)  # determined by (seed, epoch)
            silent = clean == quantizer.zero_code
            assert torch.equal(quiet[silent], clean[silent])
            chosen = order[index * 4 : (index + 1) * 4]
            expected = quantizer.decode(clean) * gains[chosen].float()[:, None]
            assert (quantizer.decode(quiet) - expected).abs().max() <= tolerance
    assert not torch.equal(drawn[0], drawn[1])


@pytest.mark.parametrize("kind,levels", [("linear", 256), ("mu-law", 256), ("linear", 31)])
def test_polarity_flips_play_a_share_of_sequences_upside_down_for_an_epoch(
    kind: str, levels: int
) -> None:
    """With polarity_flip, a share of an epoch's sequences (drawn from seed and epoch) are
    exactly the waveform upside down; silence stays silence; the rest are untouched."""
    quantizer = Quantizer(kind, levels)
    t = torch.arange(8000, dtype=torch.float32)
    audio = 0.7 * torch.sin(t * 0.05) * torch.sin(t * 0.0013) + 0.2 * torch.sin(t * 0.31)
    audio[1000:1500] = 0.0
    codes = quantizer.encode(audio).to(torch.int16)
    settings = dict(history=8, zero_code=quantizer.zero_code, sequence_length=160,
                    chunk_length=32, batch_size=5, seed=5, quantizer=quantizer)  # fmt: skip
    segments = [Segment(0, 0, 8000)]
    plain = SequencePlan([codes], segments, **settings)
    flipped = SequencePlan([codes], segments, **settings, polarity_flip=0.5)
    off = SequencePlan([codes], segments, **settings, polarity_flip=0.0)
    assert torch.equal(off.batch(2, 1), plain.batch(2, 1))
    drawn = [epoch_draws(5, epoch, plain.num_sequences, 0.5, FLIP_SALT) for epoch in range(3)]
    assert not torch.equal(drawn[0], drawn[1])
    assert 0.3 < torch.cat(drawn).float().mean() < 0.7
    assert not epoch_draws(5, 0, plain.num_sequences, 0.0, FLIP_SALT).any()
    for epoch, flips in enumerate(drawn):
        order = plain.order(epoch)
        for index in range(plain.batches_per_epoch):
            clean, played = plain.batch(epoch, index), flipped.batch(epoch, index)
            assert played.dtype == clean.dtype and played.shape == clean.shape
            assert torch.equal(flipped.batch(epoch, index), played)  # from (seed, epoch)
            chosen = order[index * 5 : (index + 1) * 5]
            for row, upside_down in enumerate(flips[chosen].tolist()):
                if not upside_down:
                    assert torch.equal(played[row], clean[row])
                    continue
                assert torch.equal(
                    quantizer.decode(played[row].long()), -quantizer.decode(clean[row].long())
                )
                silent = clean[row] == quantizer.zero_code
                assert torch.equal(played[row][silent], clean[row][silent])


def test_cold_starts_give_a_share_of_sequences_a_silent_past_for_an_epoch() -> None:
    """With cold_starts, a share of an epoch's sequences (drawn from seed and epoch, apart
    from the flips) start from silence: their context before the first target is the zero
    code, their targets untouched; the rest are as without."""
    quantizer = Quantizer("linear", 256)
    t = torch.arange(8000, dtype=torch.float32)
    codes = quantizer.encode(0.6 * torch.sin(t * 0.05) + 0.2 * torch.sin(t * 0.31))
    settings = dict(history=40, zero_code=quantizer.zero_code, sequence_length=160,
                    chunk_length=32, batch_size=5, seed=5, quantizer=quantizer)  # fmt: skip
    segments = [Segment(0, 1000, 7000)]
    plain = SequencePlan([codes], segments, **settings)
    cold = SequencePlan([codes], segments, **settings, cold_starts=0.5)
    drawn = [epoch_draws(5, epoch, plain.num_sequences, 0.5, COLD_SALT) for epoch in range(3)]
    flips = epoch_draws(5, 0, plain.num_sequences, 0.5, FLIP_SALT)
    assert not torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[0], flips)
    seen = 0
    for epoch, colds in enumerate(drawn):
        order = plain.order(epoch)
        for index in range(plain.batches_per_epoch):
            clean, played = plain.batch(epoch, index), cold.batch(epoch, index)
            assert torch.equal(played[:, 40:], clean[:, 40:])  # the targets, as they were
            chosen = order[index * 5 : (index + 1) * 5]
            for row, silent in enumerate(colds[chosen].tolist()):
                expected = torch.full((40,), quantizer.zero_code) if silent else clean[row, :40]
                assert torch.equal(played[row, :40], expected)
                seen += silent
    assert 0 < seen < 3 * plain.num_sequences


def test_input_noise_moves_a_share_of_codes_by_one_level() -> None:
    codes = torch.randint(0, 64, (16, 1000))
    codes[0, :] = 0
    codes[1, :] = 63
    noisy = jitter(codes, 0.1, 64, seed=3, iteration=7)
    moved = noisy != codes
    assert 0.08 < moved.float().mean() < 0.12
    assert (noisy - codes).abs().max() == 1
    assert noisy.min() >= 0 and noisy.max() <= 63
    assert torch.equal(noisy, jitter(codes, 0.1, 64, seed=3, iteration=7))
    assert not torch.equal(noisy, jitter(codes, 0.1, 64, seed=3, iteration=8))
    assert torch.equal(jitter(codes, 0.0, 64, seed=3, iteration=7), codes)
    # A distributed run's processes each move their rows as one process would.
    shares = [jitter(codes[rows], 0.1, 64, seed=3, iteration=7, rows=rows, batch=16)
              for rows in (slice(0, 8), slice(8, 16))]  # fmt: skip
    assert torch.equal(torch.cat(shares), noisy)
