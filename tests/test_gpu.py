"""CUDA: train, resume, generate and evaluate on a GPU, through the command as a user runs it.

Marked ``gpu``: skipped where torch sees no CUDA device.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from samplernn_cli.checkpoint import load_checkpoint

from .conftest import RATE, TINY_FLAGS, read_losses, run_cli, tone_mix

pytestmark = pytest.mark.gpu


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in.wav"
    soundfile.write(path, tone_mix(1.0, RATE), RATE)
    return path


def _train(source: Path, cwd: Path, name: str, *extra: str) -> Path:
    result = run_cli("train", source, "-o", name, *TINY_FLAGS, "--device", "cuda",
                     "--val-every", "5", "--generate-every", "1000", "--quiet", *extra,
                     cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return cwd / result.stdout.strip().splitlines()[-1]


def test_resume_on_cuda_continues_like_a_straight_run(source: Path, tmp_path: Path) -> None:
    straight = _train(source, tmp_path, "a", "--max-iterations", "24")
    first = _train(source, tmp_path, "b", "--max-iterations", "11")
    result = run_cli("resume", first, "--max-iterations", "24", "--device", "cuda", "--quiet",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    resumed = tmp_path / result.stdout.strip().splitlines()[-1]
    rows_a = read_losses(straight.parent / "a_losses.csv")
    rows_b = read_losses(resumed.parent / "b_losses.csv")
    assert [r["iter"] for r in rows_b] == [str(i) for i in range(1, 25)]
    losses_a = np.array([float(r["loss"]) for r in rows_a])
    losses_b = np.array([float(r["loss"]) for r in rows_b])
    assert np.isfinite(losses_b).all()
    weights_a = load_checkpoint(straight).payload["model"]
    weights_b = load_checkpoint(resumed).payload["model"]
    largest = max((weights_a[k] - weights_b[k]).abs().max().item() for k in weights_a)
    assert np.array_equal(losses_a, losses_b) and largest == 0.0, (
        f"losses differ by up to {np.abs(losses_a - losses_b).max():.3g}, "
        f"weights by up to {largest:.3g}"
    )


def test_generate_and_evaluate_on_cuda_and_on_the_cpu(source: Path, tmp_path: Path) -> None:
    checkpoint = _train(source, tmp_path, "run", "--max-iterations", "30")
    assert all(not t.is_cuda for t in load_checkpoint(checkpoint).payload["model"].values())
    for device in ("cuda", "cpu"):
        out = tmp_path / f"clips_{device}"
        result = run_cli("generate", checkpoint, "--length", "0.25", "--count", "3",
                         "--seed", "1", "--device", device, "-d", out, "--quiet",
                         cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr
        clips = sorted(out.glob("*.wav"))
        assert len(clips) == 3
        for clip in clips:
            audio, rate = soundfile.read(clip, dtype="float32")
            assert rate == RATE and len(audio) == RATE // 4
            assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    scores = {}
    for device in ("cuda", "cpu"):
        result = run_cli("evaluate", checkpoint, source, "--held-out", "--json",
                         "--device", device, cwd=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr
        scores[device] = json.loads(result.stdout)["bits_per_sample"]
    # cuDNN's kernels sum in another order than the CPU's (and may use TF32): close, not equal.
    assert scores["cuda"] == pytest.approx(scores["cpu"], rel=1e-3), scores


def test_cuda_is_what_auto_picks() -> None:
    from samplernn_cli.device import resolve_device

    assert resolve_device("auto").type == "cuda"
    assert torch.cuda.is_available()
