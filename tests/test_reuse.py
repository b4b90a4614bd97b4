"""Reusing a trained model: fine-tuning with --init-from, and exported inference files."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import StopConditions
from samplernn_cli.evaluation import EvaluateRequest, evaluate_files
from samplernn_cli.export import export_model
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.training.requests import ResumeRequest, TrainRequest
from samplernn_cli.training.session import resume, train

from .conftest import (
    RATE,
    TINY_FLAGS,
    TINY_LIVE,
    RunApp,
    run_cli,
    tiny_request,
    tone_mix,
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def request_for(source: Path, folder: Path, name: str, **changes: object) -> TrainRequest:
    live = replace(TINY_LIVE, learning_rate=5e-3, val_every=100)
    return tiny_request(
        source, folder / name, rate=RATE, iterations=200, **{"live": live, **changes}
    )


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, its training audio): a tiny model that has learned two tones."""
    root = tmp_path_factory.mktemp("parent")
    source = root / "tones.wav"
    soundfile.write(source, tone_mix(2.0, RATE), RATE)
    result = train(request_for(source, root, "parent"))
    assert result.checkpoint is not None
    return result.checkpoint, source


@pytest.fixture
def other_clip(tmp_path: Path) -> Path:
    """Different audio to fine-tune on: a rising chirp."""
    t = np.arange(2 * RATE) / RATE
    path = tmp_path / "chirp.wav"
    soundfile.write(path, (0.7 * np.sin(2 * np.pi * (100 + 300 * t) * t)).astype(np.float32), RATE)
    return path


def bits(checkpoint: Path, audio: Path, held_out: bool = False) -> float:
    request = EvaluateRequest(checkpoint, (audio,), held_out=held_out, device="cpu")
    return float(evaluate_files(request)["bits_per_sample"])


def test_fine_tuning_starts_from_the_parent(
    parent: tuple[Path, Path], other_clip: Path, tmp_path: Path
) -> None:
    checkpoint, parent_audio = parent
    parent_bits = bits(checkpoint, parent_audio)
    assert parent_bits < math.log2(32) - 1  # the parent has learned something
    source = load_checkpoint(checkpoint)
    child = train(
        request_for(other_clip, tmp_path, "child", init_from=source,
                    stop=StopConditions(max_iterations=2))
    ).checkpoint  # fmt: skip
    scratch = train(
        request_for(other_clip, tmp_path, "scratch", stop=StopConditions(max_iterations=2))
    ).checkpoint
    assert child is not None and scratch is not None
    # Two steps on other audio leave it near the parent's level on the parent's audio;
    # a model trained from scratch for as long is near log2(levels).
    assert bits(child, parent_audio) < parent_bits + 0.5
    assert bits(scratch, parent_audio) > math.log2(32) - 0.5
    record = load_checkpoint(child).parent
    assert record is not None
    assert record["file"] == checkpoint.name and record["iteration"] == 200
    assert record["sha256"] == sha256(checkpoint) and record["kind"] == "training"
    assert load_checkpoint(scratch).parent is None
    # Resuming the fine-tuned run keeps its parent in the checkpoints it writes.
    resumed = resume(ResumeRequest(child, stop=StopConditions(max_iterations=3), device="cpu"))
    assert resumed.checkpoint is not None and resumed.checkpoint != child
    assert load_checkpoint(resumed.checkpoint).parent == record


def test_fine_tuning_from_an_export_and_with_the_optimizer(
    parent: tuple[Path, Path], other_clip: Path, tmp_path: Path
) -> None:
    checkpoint, _ = parent
    exported = export_model(checkpoint, tmp_path / "model.pt", half="bfloat16").path
    result = run_cli("train", other_clip, "-o", "ft", "--output-root", tmp_path / "runs",
                     "--init-from", exported, *TINY_FLAGS, "--max-iterations", "2",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    child = load_checkpoint(result.stdout.strip())
    assert child.parent is not None and child.parent["kind"] == "export"
    assert child.parent["exported_from"]["sha256"] == sha256(checkpoint)
    assert child.weights["sample_tier.output.weight"].dtype == torch.float32

    refused = run_cli("train", other_clip, "-o", "ft2", "--output-root", tmp_path / "runs",
                      "--init-from", exported, "--init-optimizer", "--max-iterations", "2",
                      cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 1 and "without optimizer state" in refused.stderr
    assert not (tmp_path / "runs" / "ft2").exists()

    request = request_for(other_clip, tmp_path, "with_optimizer", init_optimizer=True,
                          init_from=load_checkpoint(checkpoint),
                          stop=StopConditions(max_iterations=1))  # fmt: skip
    assert train(request).iteration == 1


def test_fine_tuning_refuses_conflicts_and_bad_files(
    parent: tuple[Path, Path], other_clip: Path, tmp_path: Path, run_app: RunApp
) -> None:
    checkpoint, _ = parent
    runs = tmp_path / "runs"
    conflicts = [
        (["--hidden_size", "32"], "--hidden-size 32 conflicts"),
        (["--quantizer", "mu-law"], "--quantizer mu-law conflicts"),
        (["--frame-sizes", "8"], "--frame-sizes 8 conflicts"),
        (["--sample-rate", "16000"], "runs at 8000 Hz"),
        (["--keep-sample-rate"], "runs at 8000 Hz"),
        (["--preset", "small"], "--preset sets the architecture"),
    ]
    for args, text in conflicts:
        result = run_app("train", other_clip, "-o", "x", "--output-root", runs,
                         "--init-from", checkpoint, *args, cwd=tmp_path)  # fmt: skip
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: ") and text in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1
    # The same value as the checkpoint's is no conflict.
    same = run_app("train", other_clip, "-o", "same", "--output-root", runs, "--init-from",
                   checkpoint, "--hidden_size", "16", "--quantization", "32", "--frame-sizes",
                   "4", "--frame_size", "4",
                   "--max-iterations", "1", "-q", cwd=tmp_path)  # fmt: skip
    assert same.returncode == 0, same.stderr

    class RunsCode:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("touch PWNED",))

    (tmp_path / "corrupt.pt").write_bytes(checkpoint.read_bytes()[:5000])
    torch.save({"model": RunsCode()}, tmp_path / "evil.pt")
    bad = [
        ("missing.pt", "no such file"),
        ("corrupt.pt", "not a readable checkpoint"),
        ("evil.pt", "could run code"),
    ]
    for name, text in bad:
        result = run_app("train", other_clip, "-o", "bad", "--output-root", runs,
                         "--init-from", tmp_path / name, cwd=tmp_path)  # fmt: skip
        assert result.returncode == 1, (name, result.stderr)
        assert result.stderr.startswith("error: ") and text in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "PWNED").exists() and not (runs / "bad").exists()


def test_export_is_small_safe_and_generates_the_same(
    parent: tuple[Path, Path], tmp_path: Path
) -> None:
    checkpoint, _ = parent
    result = export_model(checkpoint, tmp_path / "model.pt")
    raw = torch.load(result.path, weights_only=True)
    assert raw["kind"] == "export" and raw["format_version"] == 2
    assert not {"optimizer", "rng", "rnn_state", "history"} & set(raw)
    assert result.size_bytes < 0.5 * checkpoint.stat().st_size
    full, slim = load_checkpoint(checkpoint), load_checkpoint(result.path)
    assert slim.is_export and slim.exported_from is not None
    assert slim.exported_from["sha256"] == sha256(checkpoint)
    codes = [
        generate_takes(c.build_model(), 2, 400, seed=5, temperature=1.0).codes for c in (full, slim)
    ]
    torch.testing.assert_close(codes[0], codes[1], rtol=0, atol=0)


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_export_scores_like_the_checkpoint(
    parent: tuple[Path, Path], tmp_path: Path, half: str
) -> None:
    checkpoint, audio = parent
    exported = export_model(checkpoint, tmp_path / f"{half}.pt", half=half).path
    assert load_checkpoint(exported).weights["sample_tier.output.weight"].dtype == getattr(
        torch, half
    )
    full = bits(checkpoint, audio, held_out=True)
    assert abs(bits(exported, audio, held_out=True) - full) < 0.01


def test_export_command(parent: tuple[Path, Path], tmp_path: Path, run_app: RunApp) -> None:
    checkpoint, audio = parent
    out = tmp_path / "model.pt"
    first = run_app("export", checkpoint, "-o", out, "--half", "float16", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(out) and "% of the checkpoint" in first.stderr
    before = out.read_bytes()
    again = run_app("export", checkpoint, "-o", out, cwd=tmp_path)
    assert again.returncode == 1 and "already exists; pass --force" in again.stderr
    assert out.read_bytes() == before
    onto_itself = run_app("export", checkpoint, "-o", checkpoint, "--force", cwd=tmp_path)
    assert onto_itself.returncode == 1 and "being exported" in onto_itself.stderr
    forced = run_app("export", checkpoint, "-o", out, "--force", cwd=tmp_path)
    assert forced.returncode == 0 and out.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no temp files

    refused = run_app("resume", out, cwd=tmp_path)
    assert refused.returncode == 1 and "exported model" in refused.stderr
    assert "cannot be resumed" in refused.stderr and len(refused.stderr.splitlines()) == 1

    shown = run_cli("inspect-checkpoint", out, "--json", cwd=tmp_path)
    summary = json.loads(shown.stdout)
    assert summary["kind"] == "export" and summary["optimizer"] is None
    assert summary["exported_from"]["file"] == checkpoint.name
    assert summary["losses"]["last_val_loss"] is not None
    table = run_cli("inspect-checkpoint", out, cwd=tmp_path)
    assert table.returncode == 0 and "exported from" in table.stdout
    assert run_cli("evaluate", out, audio, cwd=tmp_path).returncode == 0
    generated = run_cli("generate", out, "--length", "0.1", "-d", tmp_path / "a" / "b",
                        cwd=tmp_path)  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    assert Path(generated.stdout.strip()).parent == tmp_path / "a" / "b"
