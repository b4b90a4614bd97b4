"""The level audio is scored at (evaluate --gain) and primed at (generate --prime-gain)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile

from samplernn_cli.gain import choose_gain

from .conftest import RATE, TINY_FLAGS, RunApp, run_cli, tone_mix

TRAINING = [{"name": "quartet.wav", "gain": 4.0}]


def test_choose_gain() -> None:
    """Each mode, the name match, the median of several files, the clipping fallback, and a
    run that did not normalise."""
    same = choose_gain("training", Path("x/quartet.wav"), 0.5, True, TRAINING)
    assert same.factor == 4.0 and same.reason == "the training gain of quartet.wav"
    cut = choose_gain("training", Path("tail.wav"), 0.1, True, TRAINING)
    assert cut.factor == 4.0 and cut.reason == "the training gain of quartet.wav"
    loud = choose_gain("training", Path("loud.wav"), 0.8, True, TRAINING)
    assert loud.factor == pytest.approx(1.25)
    assert loud.reason == "peak-normalised: the training gain of quartet.wav would clip it"
    several = [{"name": "a.wav", "gain": 1.0}, {"name": "b.wav", "gain": 2.0},
               {"name": "c.wav", "gain": 8.0}]  # fmt: skip
    median = choose_gain("training", Path("d.wav"), 0.1, True, several)
    assert median.factor == 2.0 and median.reason == "the median training gain of 3 files"
    assert choose_gain("peak", Path("quartet.wav"), 0.5, True, TRAINING).factor == 2.0
    assert choose_gain("none", Path("quartet.wav"), 0.5, True, TRAINING).factor == 1.0
    raw = choose_gain("training", Path("quartet.wav"), 0.5, False, TRAINING)
    assert raw.factor == 1.0 and raw.reason == "training applied no gain"
    assert same.describe() == f"{20 * math.log10(4):+.1f} dB (the training gain of quartet.wav)"


def test_a_quiet_passage_cut_from_the_training_file(tmp_path: Path, run_app: RunApp) -> None:
    """A file whose held-out tail is 26 dB quieter than the rest: cut into its own file, it
    is scored by default at the training gain, like the run's validation of the same
    samples; --gain peak scores it 26 dB louder and says so."""
    loud = tone_mix(1.8, RATE)
    quiet = tone_mix(0.2, RATE, seed=1) * (0.05 / np.abs(tone_mix(0.2, RATE, seed=1)).max())
    audio = np.concatenate([loud / np.abs(loud).max() * 0.9, quiet]).astype(np.float32)
    source = tmp_path / "take.wav"
    soundfile.write(source, audio, RATE)
    result = run_cli("train", source, "-o", "run", *TINY_FLAGS, "--max-iterations", "40",
                     "--val_every", "40", "--quiet", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    checkpoint = tmp_path / result.stdout.strip()
    held_out = json.loads(run_cli("evaluate", checkpoint, source, "--held-out", "--json",
                                  cwd=tmp_path).stdout)  # fmt: skip
    tail_samples = held_out["files"][0]["samples"]
    tail = tmp_path / "tail.wav"
    soundfile.write(tail, audio[-tail_samples:], RATE)

    scored = {}
    for mode in ("training", "peak", "none"):
        result = run_app("evaluate", checkpoint, tail, "--gain", mode, "--json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        scored[mode] = json.loads(result.stdout)["files"][0]
    training_db = 20 * math.log10(1 / 0.9)
    assert scored["training"]["gain"]["db"] == pytest.approx(training_db, abs=0.01)
    assert scored["training"]["gain"]["reason"] == "the training gain of take.wav"
    assert scored["peak"]["gain"]["db"] == pytest.approx(20 * math.log10(1 / 0.05), abs=0.1)
    assert scored["none"]["gain"]["db"] == 0.0
    # The same samples at the same level as validation saw them (only the context before
    # the cut differs: silence instead of the audio before it).
    assert scored["training"]["bits_per_sample"] == pytest.approx(
        held_out["bits_per_sample"], abs=0.05
    )
    assert scored["peak"]["bits_per_sample"] != pytest.approx(
        scored["training"]["bits_per_sample"], abs=0.05
    )
    table = run_app("evaluate", checkpoint, tail, cwd=tmp_path)
    assert "+0.9 dB: the training" in table.stdout  # the gain column (wrapped)

    # The prime: the level is logged; --prime-gain needs --prime.
    result = run_cli("generate", checkpoint, "--prime", tail, "--length", "0.01", "-d", "clips",
                     "--prime-gain", "peak", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "prime tail.wav: gain +26.0 dB (peak-normalised on its own)" in result.stderr
    result = run_app("generate", checkpoint, "--prime-gain", "none", cwd=tmp_path)
    assert result.returncode == 2 and "need --prime FILE" in result.stderr
    result = run_app("evaluate", checkpoint, tail, "--gain", "loud", cwd=tmp_path)
    assert result.returncode == 2 and "--gain" in result.stderr
