"""Pictures: one PNG per generation round, the mel spectrograms they are made of, and
``inspect-checkpoint --plot``."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from samplernn_cli.history import LossHistory
from samplernn_cli.pictures import (
    CURVE_POINTS,
    DPI,
    MAX_CLIPS_DRAWN,
    downsample_curve,
    loss_title,
    mel_spectrogram,
    save_loss_plot,
    save_round_picture,
    spectrogram_pair,
)

from .conftest import RATE, TINY_LIVE, RunApp, train_tiny
from .test_cli import assert_one_error_line


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run of 8 iterations with a generation round at 4 and 8 (2 clips of 0.1 s)."""
    live = replace(TINY_LIVE, generate_every=4, length=0.1, num_generated=2, val_every=2)
    return train_tiny(tmp_path_factory.mktemp("pictures"), 8, rate=RATE, live=live).parent


def test_each_generation_round_leaves_one_picture(run_folder: Path) -> None:
    pictures = sorted(p.name for p in run_folder.glob("*.png"))
    assert pictures == ["run_epoch_1_iter_4.png", "run_epoch_1_iter_8.png"]
    for name in pictures:
        image = imread(run_folder / name)
        # 12 inches wide; the loss curves, then the ground truth and 2 clips two to a row.
        assert image.shape[:2] == (round((3.2 + 2.4 * 2) * DPI), 12 * DPI)
        assert image.shape[2] in (3, 4) and float(image[..., :3].std()) > 0.05  # not blank


def test_a_round_draws_at_most_a_few_clips(tmp_path: Path) -> None:
    t = torch.arange(800) / RATE
    clips = torch.stack([0.5 * torch.sin(2 * math.pi * (100 + 20 * n) * t) for n in range(20)])
    history = LossHistory()
    for i in range(30):
        history.append(5.0 - 0.01 * i, 1, float(i), 1000.0)
    history.validations.append((30, 4.8))
    path = save_round_picture(
        tmp_path / "round.png", clips=clips, truth=clips[0], sample_rate=RATE,
        history=history, heading="run: iteration 30",
    )  # fmt: skip
    rows = math.ceil((MAX_CLIPS_DRAWN + 1) / 2)  # the ground truth and the first clips
    assert imread(path).shape[:2] == (round((3.2 + 2.4 * rows) * DPI), 12 * DPI)
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically


def test_loss_plots_of_long_empty_and_broken_histories(tmp_path: Path) -> None:
    long = LossHistory()
    for i in range(5000):
        long.append(math.nan if i % 97 == 0 else 8.0 - i / 1000, 1, float(i), 1000.0)
    long.validations += [(1000, 6.5), (2000, math.nan), (5000, 3.5)]
    xs, ys, each = downsample_curve(long.finite_losses())
    assert ys[0] == pytest.approx(7.9975) and ys[-1] < ys[0]
    assert len(xs) == CURVE_POINTS and each == 5 and xs[-1] == 5000
    assert "validation 3.500 (iteration 5000)" in loss_title(long)
    assert loss_title(LossHistory()) == "no losses recorded"
    for name, history in (("long.png", long), ("empty.png", LossHistory())):
        path = save_loss_plot(tmp_path / name, history, "run", overwrite=False)
        assert imread(path).shape[:2] == (5 * DPI, 10 * DPI)


def test_mel_spectrogram_places_a_tone_and_handles_tiny_clips() -> None:
    t = torch.arange(16000) / 16000
    tone = mel_spectrogram(torch.sin(2 * math.pi * 1000 * t), 16000)
    assert tone.db.shape[0] == 80 and tone.seconds == pytest.approx(1.0)
    loudest = int(np.argmax(tone.db.mean(axis=1)))
    assert tone.band_hz[loudest] == pytest.approx(1000, rel=0.1)
    assert tone.db.max() == pytest.approx(0.0, abs=3.0)  # a full-scale sine: about 0 dB
    tiny = mel_spectrogram(torch.zeros(10), RATE)  # shorter than half a window
    assert tiny.db.shape[1] == 1 and np.isfinite(tiny.db).all()
    pair = spectrogram_pair(torch.zeros(800), torch.sin(2 * math.pi * 440 * t[:800]), RATE, "x")
    assert pair.dtype == np.uint8 and pair.ndim == 3 and pair.shape[2] == 3


def test_inspect_checkpoint_plot(run_folder: Path, run_app: RunApp, tmp_path: Path) -> None:
    checkpoint = run_folder / "run_epoch_1_iter_8_model.pt"
    result = run_app("inspect-checkpoint", checkpoint, "--plot", "curves.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "curves.png"
    assert imread(tmp_path / "curves.png").shape[:2] == (5 * DPI, 10 * DPI)
    # Never overwritten unasked; --force overwrites.
    again = run_app("inspect-checkpoint", checkpoint, "--plot", "curves.png", cwd=tmp_path)
    assert_one_error_line(again, 2, "curves.png already exists; choose another name or pass")
    forced = run_app("inspect-checkpoint", checkpoint, "--plot", "curves.png", "--force",
                     cwd=tmp_path)  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    # An exported model keeps no loss history: nothing to draw.
    exported = run_app("export", checkpoint, "-o", "model.pt", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    empty = run_app("inspect-checkpoint", "model.pt", "--plot", "empty.png", cwd=tmp_path)
    assert_one_error_line(empty, 1, "model.pt holds no loss history to plot")
    assert not (tmp_path / "empty.png").exists()
    vector = run_app("inspect-checkpoint", checkpoint, "--plot", "curves.svg", cwd=tmp_path)
    assert vector.returncode == 0 and (tmp_path / "curves.svg").read_text().lstrip().startswith(
        ("<?xml", "<svg")
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--plot", "curves.jpg"], 2, "curves.jpg: the plot is written as .png, .svg, .pdf"),
        (["--plot", "no/such/folder/c.png"], 1, "cannot write picture no/such/folder/c.png"),
        (["--plot", "c.png", "--json"], 2, "give --json or --plot, not both"),
        (["--force"], 2, "--force applies to --plot only"),
        (["--plot", "."], 2, "the plot is written as"),
    ],
)
def test_inspect_checkpoint_plot_errors(
    run_folder: Path, run_app: RunApp, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    checkpoint = run_folder / "run_epoch_1_iter_8_model.pt"
    result = run_app("inspect-checkpoint", checkpoint, *args, cwd=tmp_path)
    assert_one_error_line(result, code, message)
    assert not list(tmp_path.iterdir())
