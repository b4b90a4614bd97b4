"""The quiet guard: a clip sampled hotter while its recent samples are near silence."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np
import pytest
import torch

from samplernn_cli.generation.engine import generate_endless, generate_takes
from samplernn_cli.generation.quiet import QuietGuard, QuietWatch
from samplernn_cli.generation.torch_sampler import TorchSampler

from .test_model import VARIANTS, build


@dataclasses.dataclass(frozen=True)
class ShortBlocks(QuietGuard):
    """Judged every 24 samples, so that a few hundred samples see many judgements."""

    BLOCK: ClassVar[int] = 24


def typical_energy(model: torch.nn.Module, length: int) -> float:
    """The median mean square of the unguarded takes' blocks: a floor the guard crosses."""
    codes = generate_takes(model, 3, length, seed=9).codes
    audio = model.quantizer.decode(codes).double().numpy()
    blocks = audio[:, : length // ShortBlocks.BLOCK * ShortBlocks.BLOCK]
    energy = np.square(blocks).reshape(3, -1, ShortBlocks.BLOCK).mean(axis=2)
    return float(np.median(energy))


def test_for_recording_is_off_without_a_level_or_a_boost() -> None:
    assert QuietGuard.for_recording(None, 16000, 1.2) is None
    assert QuietGuard.for_recording(-20.0, 16000, 1.0) is None
    guard = QuietGuard.for_recording(-20.0, 16000, 1.2)
    assert guard is not None and guard.boost == 1.2
    # 20 dB below -20 dBFS, as a mean square; a quarter second in blocks.
    assert math.isclose(guard.floor, 10 ** (-40 / 10))
    assert guard.blocks == round(0.25 * 16000 / QuietGuard.BLOCK)


def test_a_recording_with_quiet_stretches_keeps_them() -> None:
    """The floor is 20 dB below the recording's level, or 10 dB below its quietest pieces
    where those lie lower: a recording of sparse sounds in silence keeps its silences."""
    from samplernn_cli.distance import measure_reference

    rate = 8000
    t = np.arange(2 * rate) / rate
    dense = 0.5 * np.sin(2 * np.pi * 220 * t)
    sparse = dense * (np.sin(2 * np.pi * 0.5 * t) > 0.9)  # short bursts, long silences
    pieces = [torch.from_numpy(np.tile(x, 6)).float() for x in (dense, sparse)]
    for audio, expect_lower in zip(pieces, (False, True), strict=True):
        reference = measure_reference([audio], rate)
        guard = QuietGuard.for_recording(None, rate, 1.2, reference)
        assert guard is not None
        below_db = 10 * math.log10(guard.floor) - reference.level_dbfs
        quietest = reference.piece_limits(QuietGuard.WINDOW_SECONDS)[0]
        assert math.isclose(below_db, min(-20.0, quietest - 10.0), abs_tol=1e-9)
        assert (below_db < -20.0 - 1e-9) == expect_lower, (below_db, quietest)


def test_a_recording_of_events_over_a_quiet_background_gets_the_slow_floor() -> None:
    """Bursts every 4 s over a hum 40 dB down: its seconds get as quiet as the hum
    (the fast floor keeps below it), but every 4 s holds bursts, so a second of hum alone
    lies under the slow floor: 10 dB below the quietest 4 s pieces."""
    from samplernn_cli.distance import measure_reference

    rate = 8000
    t = np.arange(4 * rate) / rate
    hum = 0.005 * np.sin(2 * np.pi * 50 * t)
    bursts = 0.5 * np.sin(2 * np.pi * 2000 * t) * (t < 0.3)
    audio = torch.from_numpy(np.tile(hum + bursts, 8)).float()
    reference = measure_reference([audio], rate)
    guard = QuietGuard.for_recording(None, rate, 1.2, reference)
    assert guard is not None
    assert guard.slow_blocks == round(QuietGuard.SLOW_WINDOW_SECONDS * rate / QuietGuard.BLOCK)
    slow_db = 10 * math.log10(guard.slow_floor) - reference.level_dbfs
    quietest_4s = reference.piece_limits(QuietGuard.SLOW_PIECE_SECONDS)[0]
    assert math.isclose(slow_db, quietest_4s - 10.0, abs_tol=1e-9)
    hum_db = 10 * math.log10(float(np.mean(np.square(hum)))) - reference.level_dbfs
    assert 10 * math.log10(guard.floor) - reference.level_dbfs < hum_db < slow_db
    # Without the recording's statistics (older checkpoints), no slow rule.
    assert QuietGuard.for_recording(-20.0, rate, 1.2).slow_floor == 0.0


def temperatures_used(guard: QuietGuard | None, length: int) -> list[list[float]]:
    """The temperature each of two clips was sampled at, sample by sample."""
    model = build(VARIANTS["3-tier"]).eval()
    sampler = TorchSampler(model, [0.8, 1.0], guard=guard)
    used: list[list[float]] = []
    stream = sampler.pick

    def pick(t: int, logits: torch.Tensor) -> torch.Tensor:
        used.append(sampler.column[:, 0].tolist())
        return stream(t, logits)

    sampler.pick = pick
    sampler.run(length)
    return used


def test_boosted_once_a_window_of_its_own_samples_is_quiet() -> None:
    """A take is judged on its own samples once they fill the window (2 blocks here): a
    guard whose floor nothing reaches samples each clip at boost times its temperature
    from then on, one that nothing falls under never changes it; either way the first
    window is the unguarded take's."""
    window = 2 * ShortBlocks.BLOCK
    always = temperatures_used(ShortBlocks(floor=math.inf, boost=1.5, blocks=2), 3 * window)
    assert np.allclose(always[:window], [[0.8, 1.0]] * window)
    assert np.allclose(always[window:], [[1.2, 1.5]] * (2 * window))
    never = temperatures_used(ShortBlocks(floor=0.0, boost=1.5, blocks=2), 3 * window)
    assert np.allclose(never, [[0.8, 1.0]] * (3 * window))
    # The slow window (4 blocks) alone: judged once the take fills it.
    slow = ShortBlocks(floor=0.0, boost=1.5, blocks=2, slow_floor=math.inf, slow_blocks=4)
    late = temperatures_used(slow, 3 * window)
    assert np.allclose(late[: 2 * window], [[0.8, 1.0]] * (2 * window))
    assert np.allclose(late[2 * window :], [[1.2, 1.5]] * window)

    model = build(VARIANTS["3-tier"]).eval()
    guarded = generate_takes(model, 2, 3 * window, seed=2,
                             guard=ShortBlocks(floor=math.inf, boost=1.5, blocks=2))  # fmt: skip
    plain = generate_takes(model, 2, 3 * window, seed=2).codes
    assert torch.equal(guarded.codes[:, :window], plain[:, :window])
    assert not torch.equal(guarded.codes, plain)


def test_a_guard_that_switches_is_the_same_in_both_samplers_and_any_batch() -> None:
    """With a floor at the takes' typical level, the guard switches clips back and forth;
    each clip still depends only on its own samples: the two samplers agree, and a clip
    is the same made alone or in a batch."""
    model = build(VARIANTS["3-tier"]).eval()
    floor = typical_energy(model, 600)
    guard = ShortBlocks(floor=floor / 4, boost=2.0, blocks=2, slow_floor=floor, slow_blocks=5)
    kwargs = {"seed": 9, "temperature": 1.0, "guard": guard}
    compiled = generate_takes(model, 3, 600, implementation="numba", **kwargs).codes
    stepped = generate_takes(model, 3, 600, implementation="torch", **kwargs).codes
    assert torch.equal(compiled, stepped)
    alone = generate_takes(model, 1, 600, first_clip=1, implementation="numba", **kwargs).codes
    assert torch.equal(alone[0], compiled[1])
    unguarded = generate_takes(model, 3, 600, seed=9).codes
    hotter = generate_takes(model, 3, 600, seed=9, temperature=2.0).codes
    # It acted, and not all the time.
    assert not torch.equal(compiled, unguarded) and not torch.equal(compiled, hotter)


@pytest.mark.parametrize("implementation", ["numba", "torch"])
def test_an_endless_guarded_clip_is_the_long_clip(implementation: str) -> None:
    """The guard's blocks carry from segment to segment (segments of 40 samples, blocks of
    24): an endless clip is the long clip, judged at the same samples."""
    model = build(VARIANTS["3-tier"]).eval()
    guard = ShortBlocks(floor=typical_energy(model, 600), boost=2.0, blocks=3)
    length = 600
    expected = generate_takes(model, 1, length, seed=5, guard=guard,
                              implementation=implementation).codes  # fmt: skip
    parts: list[torch.Tensor] = []

    class Enough(Exception):
        pass

    def collect(codes: torch.Tensor) -> None:
        parts.append(codes)
        if sum(part.shape[1] for part in parts) >= length:
            raise Enough

    with pytest.raises(Enough):
        generate_endless(model, collect, seed=5, segment=40, guard=guard,
                         implementation=implementation)  # fmt: skip
    assert torch.equal(torch.cat(parts, 1)[:, :length], expected)
    assert not torch.equal(expected, generate_takes(model, 1, length, seed=5).codes)


def test_the_watch_judges_every_block_however_the_codes_arrive() -> None:
    """Codes handed over in one piece longer than a block, or in pieces that straddle
    blocks, are judged at the same block boundaries: the same energies and verdicts."""
    decode = torch.linspace(-1.0, 1.0, 32)
    guard = ShortBlocks(floor=0.05, boost=2.0, blocks=2, slow_floor=0.2, slow_blocks=5)
    codes = torch.randint(0, 32, (3, 300), generator=torch.Generator().manual_seed(4))
    codes[1, 100:250] = 16  # near silence in one row
    whole, pieces = QuietWatch(guard, decode), QuietWatch(guard, decode)
    whole.reset(3)
    pieces.reset(3)
    assert whole.add(codes)
    verdicts = []
    for start in range(0, 300, 7):
        if pieces.add(codes[:, start : start + 7]):
            verdicts.append(pieces.quiet.clone())
    assert len(verdicts) == 300 // ShortBlocks.BLOCK
    for name in ("energy", "slow_energy", "partial", "filled", "slot", "quiet"):
        assert torch.equal(getattr(whole, name), getattr(pieces, name)), name
    assert not torch.equal(verdicts[0], verdicts[-1])  # the silent row was judged quiet
