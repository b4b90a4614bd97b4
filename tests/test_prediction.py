"""The linear prediction the sample tier reads: fitted from the past alone, the same in
training, validation and both samplers, with seeded noise while training."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from samplernn_cli.config import ModelConfig
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.model import SampleRNN, StepDraws
from samplernn_cli.model.prediction import LinearPredictor
from samplernn_cli.training.step import forward_backward

from .conftest import TINY_FLAGS, WriteAudio, run_cli

CONFIG = ModelConfig(frame_sizes=(4,), rnn_layers=1, hidden_size=16, embed_size=3, q_levels=64,
                     linear_prediction=8)  # fmt: skip
assert CONFIG.predictor is not None
BLOCK = CONFIG.predictor.block


def resonator(length: int, seed: int = 0) -> torch.Tensor:
    """A damped 440 Hz resonance at 16 kHz driven by white noise (an order-2 process)."""
    rng = np.random.default_rng(seed)
    pole = 0.95 * np.exp(2j * np.pi * 440 / 16000)
    a1, a2 = 2 * pole.real, -(abs(pole) ** 2)
    x = np.zeros(length)
    drive = rng.standard_normal(length)
    for t in range(2, length):
        x[t] = a1 * x[t - 1] + a2 * x[t - 2] + drive[t]
    return torch.from_numpy(x)[None]


def test_fitted_taps_recover_a_resonance() -> None:
    signal = resonator(LinearPredictor.FIT + 500)
    # Within the estimate's spread: the window weights about the last DECAY samples.
    taps = LinearPredictor(2, 256).fit(signal)[0]
    pole = 0.95 * np.exp(2j * np.pi * 440 / 16000)
    np.testing.assert_allclose(taps.numpy(), [2 * pole.real, -(abs(pole) ** 2)], atol=0.04)
    # The prediction error is the drive's (unit variance), far below the signal's.
    start = LinearPredictor.FIT + 8
    predicted = LinearPredictor(8, 256).predict(signal, start, 256)
    error = (signal[0, start : start + 256] - predicted[0].double()).pow(2).mean()
    assert error < 1.3 < signal.pow(2).mean() / 10


def test_silence_predicts_silence() -> None:
    taps = LinearPredictor(16, 256).fit(torch.zeros(3, LinearPredictor.FIT))
    assert torch.isfinite(taps).all() and taps.abs().max() == 0


def test_a_prediction_reads_only_the_past() -> None:
    model = SampleRNN(CONFIG).eval()
    window = torch.randint(0, 64, (2, model.history + 3 * BLOCK))
    before = model.prediction(window)
    assert before is not None and before.shape == (2, 3 * BLOCK)
    for cut in (0, 100, 300, 700):
        changed = window.clone()
        changed[:, model.history + cut :] = torch.randint(
            0, 64, changed[:, model.history + cut :].shape
        )
        after = model.prediction(changed)
        assert after is not None
        assert torch.equal(after[:, : cut + 1], before[:, : cut + 1])


def test_predictions_do_not_depend_on_how_the_audio_is_chunked() -> None:
    model = SampleRNN(CONFIG).eval()
    block = BLOCK
    window = torch.randint(0, 64, (2, model.history + 4 * block))
    whole = model.prediction(window)
    halves = [model.prediction(window[:, start : start + model.history + 2 * block])
              for start in (0, 2 * block)]  # fmt: skip
    assert whole is not None and all(h is not None for h in halves)
    assert torch.equal(whole, torch.cat(halves, 1))  # type: ignore[arg-type]


def test_noise_only_while_training_and_drawn_from_the_seed() -> None:
    model = SampleRNN(CONFIG)
    model.set_prediction_noise(0.1)
    window = torch.randint(0, 64, (4, model.history + BLOCK))
    model.eval()
    clean = model.prediction(window)
    model.train()
    with pytest.raises(ValueError, match="needs the step's draws"):
        model.prediction(window)
    noisy = model.prediction(window, StepDraws(7, slice(None), 4))
    again = model.prediction(window, StepDraws(7, slice(None), 4))
    rows = model.prediction(window[2:], StepDraws(7, slice(2, 4), 4))
    other = model.prediction(window, StepDraws(8, slice(None), 4))
    assert clean is not None and noisy is not None and rows is not None and other is not None
    assert not torch.equal(clean, noisy) and torch.equal(noisy, again)
    # A process that sees some rows of the batch draws those rows' noise (torchrun).
    assert torch.equal(rows, noisy[2:])
    assert not torch.equal(other, noisy)


def test_the_sliced_step_computes_the_whole_step() -> None:
    torch.manual_seed(0)
    model = SampleRNN(CONFIG)
    window = torch.randint(0, 64, (3, model.history + 32))
    whole, _ = forward_backward(model, window, None)
    expected = [p.grad.clone() for p in model.parameters()]  # type: ignore[union-attr]
    model.zero_grad()
    sliced, _ = forward_backward(model, window, None, slice_floats=3 * 16 * 8)
    assert abs(whole - sliced) < 1e-5
    for parameter, grad in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(parameter.grad, grad, rtol=1e-4, atol=1e-6)
    assert model.sample_tier.prediction_table.weight.grad.abs().sum() > 0  # type: ignore[union-attr]


def test_both_samplers_draw_the_same_clips_across_several_fits() -> None:
    torch.manual_seed(0)
    model = SampleRNN(CONFIG).eval()
    kwargs = {"temperature": [0.8, 1.0, 1.3], "seed": 2}
    length = 3 * BLOCK + 10
    compiled = generate_takes(model, 3, length, implementation="numba", **kwargs).codes
    stepped = generate_takes(model, 3, length, implementation="torch", **kwargs).codes
    assert torch.equal(compiled, stepped)


def test_the_block_is_whole_bottom_frames() -> None:
    for frames, block in (((16,), 256), ((5,), 255), ((2, 4), 256), ((300,), 300)):
        config = dataclasses.replace(CONFIG, frame_sizes=frames)
        assert config.predictor == LinearPredictor(CONFIG.linear_prediction, block)
    assert dataclasses.replace(CONFIG, linear_prediction=0).history == 4
    assert dataclasses.replace(CONFIG, linear_prediction=0).predictor is None
    assert CONFIG.history == LinearPredictor.FIT + 8


def test_a_predicting_model_through_every_command(write_audio: WriteAudio, tmp_path: Path) -> None:
    """--linear-prediction 256 (off by default) trains, generates, evaluates and resumes,
    with the prediction noise's default."""
    source = write_audio("tones.wav", seconds=4.0, rate=8000)
    flags = [f for f in TINY_FLAGS if f not in ("--linear-prediction", "0")]
    # The predictor refits every 256 samples: a chunk of 4 frames of 4 samples is refused.
    refused = run_cli("train", source, "-o", "odd", *flags, "--linear-prediction", "256",
                      "--max-iterations", "1", cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2 and "--num_frames 64 or a multiple" in refused.stderr
    assert not (tmp_path / "outputs" / "odd").exists()
    flags[flags.index("--num_frames") + 1] = "64"
    trained = run_cli("train", source, "-o", "run", *flags, "--linear-prediction", "256",
                      "--max-iterations", "12", "--quiet", cwd=tmp_path)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    checkpoint = next((tmp_path / "outputs" / "run").glob("*_best_model.pt"))
    shown = run_cli("inspect-checkpoint", checkpoint, "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary["model"]["linear_prediction"] == 256
    assert "linear prediction 256" in summary["model"]["description"]
    assert summary["training"]["prediction_noise"] == 0.1
    made = run_cli("generate", checkpoint, "--length", "0.2", "--count", "2", "--seed", "1",
                   "-d", tmp_path / "clips", "--quiet", cwd=tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert len(made.stdout.split()) == 2
    scored = run_cli("evaluate", checkpoint, source, cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    resumed = run_cli("resume", tmp_path / "outputs" / "run", "--max-iterations", "14", "--quiet",
                      cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
