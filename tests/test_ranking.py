"""Generation's trap rules and ranking (samplernn_cli.generation.ranking) on made signals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from samplernn_cli.distance import Reference, measure_reference
from samplernn_cli.generation.ranking import (
    LOOP_CORRELATION,
    TakeScore,
    describe_traps,
    loop_correlation,
    median_distance,
    rank,
    score_take,
)

RATE = 16000
SECONDS = 3.0


def melody(seed: int = 0) -> np.ndarray:
    """Plucked notes of changing pitch and length, each decaying, with a little noise: what
    a take worth keeping looks like to the rules."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(SECONDS * RATE))
    start = 0
    while start < out.size:
        length = int(rng.uniform(0.15, 0.5) * RATE)
        t = np.arange(min(length, out.size - start)) / RATE
        pitch = 110 * 2 ** (rng.integers(0, 24) / 12)
        note = sum(np.sin(2 * np.pi * pitch * k * t * (1 + 0.0005 * k**2)) / k for k in (1, 2, 3))
        out[start : start + t.size] += 0.3 * np.exp(-t * rng.uniform(3, 8)) * note
        start += t.size
    return (out + 0.003 * rng.standard_normal(out.size)).astype(np.float32)


def score(audio: np.ndarray, reference: float | None = -20.0) -> TakeScore:
    return score_take(1, audio, RATE, 3.0, reference)


def test_a_take_worth_keeping_is_no_trap() -> None:
    for seed in range(3):
        measured = score(melody(seed))
        assert measured.trap is None, measured


@pytest.mark.parametrize(
    "name",
    ["digital silence", "hiss far below the training level", "silence with a click or two"],
)
def test_silence_is_a_trap(name: str) -> None:
    rng = np.random.default_rng(1)
    size = int(SECONDS * RATE)
    audio = {
        "digital silence": np.zeros(size),
        "hiss far below the training level": rng.normal(0, 10 ** (-65 / 20), size),
        "silence with a click or two": np.where(np.arange(size) % 20000 < 300, 0.5, 0.0),
    }[name].astype(np.float32)
    assert score(audio).trap == "silence"


def test_silence_is_measured_against_the_training_level() -> None:
    # Quiet, but as loud as what the model was trained on: kept.
    quiet = (melody() * 10 ** (-30 / 20)).astype(np.float32)
    assert score(quiet, reference=-45.0).trap is None
    assert score(quiet, reference=-10.0).trap == "silence"
    # No training level recorded (older checkpoints): an absolute floor alone.
    assert score(quiet, reference=None).trap is None


def test_loops_are_traps() -> None:
    rng = np.random.default_rng(2)
    size = int(SECONDS * RATE)
    t = np.arange(size) / RATE
    phrase = melody(4)[: int(0.7 * RATE)]
    loops = {
        "a phrase repeated": np.resize(phrase, size) + rng.normal(0, 0.01, size),
        "a burst repeated": np.resize(rng.normal(0, 0.2, 4000), size),
        "a tone that never changes": 0.3 * np.sin(2 * np.pi * 220 * t),
    }
    for name, audio in loops.items():
        measured = score(audio.astype(np.float32))
        assert measured.trap == "loop", (name, measured)
        assert measured.loop_correlation >= LOOP_CORRELATION


def test_loop_correlation_ignores_pitch_periods_and_short_takes() -> None:
    # A lag under 50 ms is a pitch period, not a loop: a 25 Hz tone repeats only below it
    # within a take too short for longer lags to be measured.
    assert loop_correlation(np.ones(100, dtype=np.float32), RATE) == 0.0
    assert loop_correlation(melody(), RATE) < 0.5


def test_noise_is_a_trap() -> None:
    rng = np.random.default_rng(3)
    white = rng.uniform(-0.5, 0.5, int(SECONDS * RATE)).astype(np.float32)
    assert score(white).trap == "noise"


def test_ranking_keeps_order_for_ties_and_puts_traps_last() -> None:
    def take(n: int, bits: float, trap: str | None = None) -> TakeScore:
        return TakeScore(n, bits, float("nan"), -20.0, 0.0, 0.1, 0.05, trap)

    scores = [
        take(1, 3.0),
        take(2, 1.0, "silence"),
        take(3, 2.5),
        take(4, 2.5),
        take(5, 9.0, "loop"),
    ]
    assert [s.take for s in rank(scores)] == [3, 4, 1, 2, 5]
    assert describe_traps(scores) == "1 silent, 1 a loop"
    assert describe_traps(scores[:1]) == ""


@pytest.fixture(scope="module")
def melody_reference() -> Reference:
    """The reference statistics of 12 s of plucked notes."""
    return measure_reference([np.concatenate([melody(s) for s in range(4)])], RATE)


def test_takes_far_quieter_than_the_recording_are_quiet(melody_reference: Reference) -> None:
    take = melody(7)
    level = melody_reference.level_dbfs
    assert score_take(1, take, RATE, 3.0, None, melody_reference).trap is None
    # 20 dB down: well under the quietest pieces of the recording, yet not silence.
    quieter = (take * 0.1).astype(np.float32)
    assert score_take(1, quieter, RATE, 3.0, None, melody_reference).trap == "quiet"
    assert score_take(1, quieter, RATE, 3.0, level).trap is None  # no reference: as before
    # Mostly near-silent frames with a few loud notes (the level alone would pass it).
    gappy = take.copy()
    gappy[: int(0.6 * gappy.size)] *= 1e-3
    measured = score_take(1, gappy, RATE, 3.0, None, melody_reference)
    assert measured.trap == "quiet" and measured.silent_share > 0.5


def test_the_noise_bar_follows_the_recording() -> None:
    rng = np.random.default_rng(5)
    white = rng.uniform(-0.5, 0.5, int(SECONDS * RATE)).astype(np.float32)
    tonal = measure_reference([np.concatenate([melody(s) for s in range(4)])], RATE)
    assert score_take(1, white, RATE, 3.0, None, tonal).trap == "noise"
    # A recording of rain is nearly white: white noise is near it, not a trap.
    rain = measure_reference([rng.normal(0, 0.1, 12 * RATE) * (1 + rng.random(12 * RATE))], RATE)
    measured = score_take(1, white, RATE, 3.0, None, rain)
    assert measured.trap is None and measured.distance < 3


def test_takes_rank_by_their_distance_and_by_bits_without_one() -> None:
    def take(n: int, bits: float, distance: float, trap: str | None = None) -> TakeScore:
        return TakeScore(n, bits, distance, -20.0, 0.0, 0.1, 0.05, trap)

    scores = [take(1, 2.0, 3.0), take(2, 3.0, 1.5), take(3, 1.0, 0.5, "quiet"), take(4, 2.5, 1.5)]
    assert [s.take for s in rank(scores)] == [4, 2, 1, 3]  # a tie goes to the lower bits
    assert median_distance(scores) == pytest.approx(1.5)
    unmeasured = [take(1, 2.0, math.nan), take(2, 1.0, math.nan)]
    assert [s.take for s in rank(unmeasured)] == [2, 1]
    assert math.isnan(median_distance(unmeasured))
    assert describe_traps(scores) == "1 quiet"
