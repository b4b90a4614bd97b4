"""The take-to-recording distance (samplernn_cli.distance) on made signals: what it calls
near and far, its invariances, and its reference's round trip through a checkpoint."""

from __future__ import annotations

import io
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.distance import (
    GROUPS,
    MAX_REFERENCE_SECONDS,
    Reference,
    frame_features,
    frechet,
    measure_reference,
    stretches,
)
from samplernn_cli.training.session import train

from .conftest import TINY_LIVE, RunApp, tiny_request, tone_mix

RATE = 16000


def strings(seconds: float, seed: int = 0) -> np.ndarray:
    """Sustained notes with partials, vibrato and changing loudness: a tonal recording."""
    rng = np.random.default_rng(seed)
    out = np.zeros(round(seconds * RATE))
    start = 0
    while start < out.size:
        n = min(round(rng.uniform(0.5, 1.2) * RATE), out.size - start)
        t = np.arange(n) / RATE
        pitch = 196 * 2 ** (rng.integers(0, 12) / 12)
        f0 = pitch * (1 + 0.004 * np.sin(2 * np.pi * 5.5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        note = sum(np.sin(k * phase) / k for k in range(1, 12))
        swell = np.minimum(1, np.minimum(t / 0.1, (n / RATE - t) / 0.1)).clip(0, 1)
        out[start : start + n] = 0.3 * swell * rng.uniform(0.5, 1) * note
        start += n
    return out + 0.002 * rng.standard_normal(out.size)


def shaped_noise(piece: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White noise with ``piece``'s smoothed spectrum in every 32 ms frame: its colour and
    loudness, not its partials."""
    n_fft, hop = 512, 128
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spectrum = torch.stft(torch.from_numpy(piece), n_fft, hop, window=window, return_complex=True)
    kernel = torch.ones(1, 1, 31, dtype=torch.float64) / 31  # about 500 Hz wide
    power = spectrum.abs().square().T.unsqueeze(1)  # (frames, 1, bins)
    smooth = torch.nn.functional.conv1d(power, kernel, padding=15).squeeze(1).T.sqrt()
    noise = torch.stft(torch.from_numpy(rng.standard_normal(piece.size)), n_fft, hop,
                       window=window, return_complex=True)  # fmt: skip
    made = torch.istft(noise / noise.abs().clamp_min(1e-12) * smooth, n_fft, hop, window=window,
                       length=piece.size)  # fmt: skip
    return made.numpy()


@pytest.fixture(scope="module")
def recording() -> tuple[Reference, np.ndarray]:
    """A reference measured on 24 s of made strings, and 4 s of the same strings it never
    saw."""
    audio = strings(28.0)
    return measure_reference([audio[: 24 * RATE]], RATE), audio[24 * RATE :]


def test_frechet_of_gaussians() -> None:
    mean, cov = np.array([1.0, -2.0]), np.array([[2.0, 0.3], [0.3, 1.0]])
    assert frechet(mean, cov, mean, cov) == pytest.approx(0.0, abs=1e-9)
    # One dimension: (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) == \
        pytest.approx(4.0 + 1.0)  # fmt: skip


def test_held_out_strings_are_near_and_what_only_looks_like_them_is_far(
    recording: tuple[Reference, np.ndarray],
) -> None:
    reference, unseen = recording
    rng = np.random.default_rng(1)
    level = np.sqrt(np.mean(unseen**2))
    t = np.arange(unseen.size) / RATE
    near = reference.distance(unseen)
    assert near < 2.0
    far = {
        # The colour and the loudness changes of the strings, without their partials: the
        # mel bands alone barely tell it from them; the flatness group does.
        "shaped noise": shaped_noise(unseen, rng),
        "noise at 10 dB SNR": unseen + rng.standard_normal(unseen.size) * level / np.sqrt(10),
        "white noise": rng.standard_normal(unseen.size) * level,
        "a sine": np.sin(2 * np.pi * 440 * t),
    }
    for name, probe in far.items():
        groups = reference.group_distances(probe)
        assert reference.distance(probe) > 1.5 * near, (name, groups)
    shaped = reference.group_distances(far["shaped noise"])
    assert shaped[GROUPS.index("flatness")] > 3 * shaped[GROUPS.index("bands")]


def test_level_moves_it_nowhere_and_silence_is_infinitely_far(
    recording: tuple[Reference, np.ndarray],
) -> None:
    reference, unseen = recording
    assert reference.distance(unseen * 0.01) == pytest.approx(reference.distance(unseen), rel=1e-6)
    assert reference.distance(np.zeros(RATE)) == math.inf
    # Too short to measure (less than a flatness window and ten frames): not a number.
    assert math.isnan(reference.distance(unseen[:2000]))
    assert frame_features(unseen[:100], RATE, 1e-9).shape[0] == 0


def test_the_normaliser_follows_the_take_length(recording: tuple[Reference, np.ndarray]) -> None:
    reference = recording[0]
    lengths = [row[0] for row in reference.self_distances]
    assert lengths == [1.0, 2.0, 4.0, 8.0]  # doubling while the recording holds two pieces
    # Between the lengths measured: log-log interpolation; outside: the nearest.
    assert np.all(reference.normalisers(0.1) == reference.normalisers(1.0))
    low, high = reference.normalisers(2.0), reference.normalisers(4.0)
    middle = reference.normalisers(2 * math.sqrt(2))
    assert np.allclose(middle, np.sqrt(low * high))
    # Pieces of the recording it was measured on score about 1 at every length.
    audio = strings(28.0)[: 24 * RATE]
    for seconds in (1, 2, 4):
        pieces = [audio[s : s + seconds * RATE] for s in range(0, 20 * RATE, 5 * RATE)]
        assert 0.3 < np.median([reference.distance(p) for p in pieces]) < 2.0, seconds


def test_piece_limits_come_from_the_recording_pieces() -> None:
    audio = strings(12.0)
    audio[3 * RATE : 7 * RATE] *= 0.01  # four seconds 40 dB down
    reference = measure_reference([audio], RATE)
    lowest, silent = reference.piece_limits(1.0)[:2]
    assert lowest < -30  # the 10th percentile of 1 s pieces is a quiet one
    assert reference.piece_limits(4.0)[0] > lowest
    assert 0 <= silent <= 1


def test_the_reference_survives_a_checkpoint_and_is_a_few_kilobytes(
    recording: tuple[Reference, np.ndarray],
) -> None:
    reference, unseen = recording
    stored = reference.to_dict()
    buffer = io.BytesIO()
    torch.save(stored, buffer)
    assert buffer.tell() < 24_000
    buffer.seek(0)
    loaded = Reference.from_dict(torch.load(buffer, weights_only=True))
    # The covariance is kept in float32: the distance moves in the fifth digit at most.
    assert loaded.distance(unseen) == pytest.approx(reference.distance(unseen), rel=1e-4)
    assert loaded.levels == reference.levels
    with pytest.raises(ValueError):
        Reference.from_dict({**stored, "covariance_upper": stored["covariance_upper"][:-1]})
    with pytest.raises(ValueError):
        Reference.from_dict({**stored, "self_distances": stored["self_distances"] * 0})


def test_too_little_or_silent_audio_has_no_reference() -> None:
    with pytest.raises(ValueError, match="silent"):
        measure_reference([np.zeros(5 * RATE)], RATE)
    with pytest.raises(ValueError, match="too short"):
        measure_reference([strings(1.2)], RATE)


def test_long_recordings_are_measured_on_spread_stretches() -> None:
    hour = 3600 * RATE
    picked = stretches([hour, hour // 2], RATE)
    total = sum(length for _, _, length in picked)
    assert total <= 1.2 * MAX_REFERENCE_SECONDS * RATE
    assert {index for index, _, _ in picked} == {0, 1}
    starts = [start for index, start, _ in picked if index == 0]
    assert starts[0] == 0 and starts[-1] > hour * 0.9  # from the start to the end
    assert stretches([5 * RATE, 3 * RATE], RATE) == [(0, 0, 5 * RATE), (1, 0, 3 * RATE)]


def test_other_sample_rates_have_their_own_octaves() -> None:
    for rate, octaves in ((8000, 6), (16000, 7), (44100, 8)):
        features = frame_features(np.random.default_rng(0).standard_normal(rate), rate, 1e-9)
        assert features.shape[1] == 80 + octaves, rate


def test_a_run_keeps_the_reference_and_takes_are_ranked_by_distance(
    tmp_path: Path, run_app: RunApp
) -> None:
    """Training measures the reference and keeps it, with the last round's scores, in its
    checkpoints; inspect-checkpoint shows the round, and generate (also from an export)
    ranks takes by their distance without the training audio."""
    rate = 8000
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(5.0, rate), rate)
    # Long and fast enough to learn the tones (its takes are not noise).
    live = replace(TINY_LIVE, generate_every=200, num_generated=3, length=0.5, val_every=100,
                   learning_rate=5e-3)  # fmt: skip
    result = train(tiny_request(source, tmp_path / "run", rate=rate, iterations=200, live=live))
    source.unlink()  # generate needs the checkpoint alone
    checkpoint = load_checkpoint(result.checkpoint)
    assert checkpoint.reference is not None and checkpoint.reference.rate == rate
    last = checkpoint.last_round
    assert last is not None and last["iteration"] == 200 and len(last["takes"]) == 3
    assert all(math.isfinite(t["distance"]) for t in last["takes"])
    distances = [t["distance"] for t in last["takes"] if t["trap"] is None]
    assert distances == sorted(distances)

    shown = run_app("inspect-checkpoint", result.checkpoint, "--json", cwd=tmp_path)
    summary = json.loads(shown.stdout)["last_round"]
    assert summary["iteration"] == 200 and summary["median_distance"] > 0
    assert "median distance" in run_app("inspect-checkpoint", result.checkpoint,
                                         cwd=tmp_path).stdout  # fmt: skip

    exported = tmp_path / "small.pt"
    assert run_app("export", result.checkpoint, "-o", exported, cwd=tmp_path).returncode == 0
    flags = ["--length", "0.5", "--count", "2", "--candidates", "5", "--seed", "1", "--json"]
    made = run_app("generate", exported, *flags, "-d", tmp_path / "takes", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    takes = [t for t in json.loads(made.stdout)["takes"] if t["trap"] is None]
    assert len(takes) >= 2 and all(t["distance"] > 0 for t in takes)
    assert [t["distance"] for t in takes] == sorted(t["distance"] for t in takes)
    assert [t["kept"] for t in takes[:2]] == [True, True]
