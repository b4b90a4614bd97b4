"""Checkpoints: atomic writes and safe, validated loading."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from samplernn_cli.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    TRAINING_FORMAT_VERSION,
    load_checkpoint,
    write_payload,
)
from samplernn_cli.config import AudioConfig, LiveSettings, TrainConfig
from samplernn_cli.errors import CheckpointError, OutputError
from samplernn_cli.model import SampleRNN

from .conftest import TINY_MODEL


def minimal_payload() -> dict[str, object]:
    torch.manual_seed(0)
    return {
        "model_config": TINY_MODEL.to_dict(),
        "audio": AudioConfig().to_dict(),
        "train": TrainConfig().to_dict(),
        "live": LiveSettings().to_dict(),
        "sample_rate": 16000,
        "progress": {"iteration": 3, "epoch": 1},
        "model": SampleRNN(TINY_MODEL).state_dict(),
    }


def test_round_trip_with_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    write_payload(path, minimal_payload())
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["format_version"] == TRAINING_FORMAT_VERSION
    checkpoint = load_checkpoint(path)
    assert checkpoint.iteration == 3 and checkpoint.model_config == TINY_MODEL
    model = checkpoint.build_model()
    assert not model.training
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temp files left


def test_checkpoints_from_before_a_setting_keep_the_behaviour_they_trained_with(
    tmp_path: Path,
) -> None:
    """A checkpoint written before random sequence starts, the plateau schedule, random gains,
    input noise, speed copies, shifted copies, polarity flips and the weight average existed
    resumes with fixed starts, a constant learning rate and its sequences and weights as they
    are, as it was trained; new runs default to random starts, the schedule, speed copies,
    shifted copies, polarity flips and the weight average (random gains and input noise are
    opt-in)."""
    payload = minimal_payload()
    train = dict(payload["train"])  # type: ignore[call-overload]
    for key in ("sequence_starts", "patience", "max_halvings", "min_gain", "input_noise",
                "speed_spread", "average_decay", "polarity_flip", "shift_copies"):  # fmt: skip
        del train[key]
    write_payload(tmp_path / "old.pt", {**payload, "train": train})
    old = load_checkpoint(tmp_path / "old.pt")
    assert (old.train.sequence_starts, old.train.patience, old.train.min_gain,
            old.train.input_noise, old.train.speed_spread, old.train.average_decay,
            old.train.polarity_flip, old.train.shift_copies) == ("fixed", 0, 1.0, 0.0, 0.0, 0.0,
                                                                 0.0, 0)  # fmt: skip
    assert old.training_weights is old.weights  # one set of weights, trained and scored
    new = TrainConfig()
    assert (new.sequence_starts, new.patience, new.speed_spread, new.average_decay,
            new.polarity_flip, new.shift_copies) == ("random", 3, 0.08, 0.999, 0.25, 1)  # fmt: skip


class RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch PWNED",))


def test_bad_checkpoints_get_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "good.pt"
    write_payload(good, minimal_payload())
    data = good.read_bytes()

    cases: dict[str, str] = {}
    (tmp_path / "empty.pt").touch()
    cases["empty.pt"] = "empty"
    (tmp_path / "text.pt").write_text("hello\n")
    cases["text.pt"] = "not a readable checkpoint .truncated or corrupt"
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    cases["truncated.pt"] = "truncated or corrupt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "foreign.pt")
    cases["foreign.pt"] = "not a samplernn checkpoint"
    torch.save({"x": RunsCode()}, tmp_path / "evil.pt")
    cases["evil.pt"] = "could run code"
    with open(tmp_path / "evil-protocol-2.pkl", "wb") as handle:
        pickle.dump(RunsCode(), handle, protocol=2)
    cases["evil-protocol-2.pkl"] = "could run code"
    with open(tmp_path / "evil-protocol-5.pkl", "wb") as handle:
        pickle.dump(RunsCode(), handle, protocol=5)
    cases["evil-protocol-5.pkl"] = "not a readable checkpoint"
    future = {**minimal_payload(), "format": FORMAT, "format_version": FORMAT_VERSION + 1}
    torch.save(future, tmp_path / "future.pt")
    cases["future.pt"] = f"format {FORMAT_VERSION + 1}.*upgrade"
    newer = minimal_payload()
    newer["train"] = {**newer["train"], "tape_wobble": 0.1}  # type: ignore[dict-item]
    newer["model_config"] = {**newer["model_config"], "attention_heads": 4}  # type: ignore[dict-item]
    write_payload(tmp_path / "newer.pt", {**newer, "package_version": "9.1.0"})
    cases["newer.pt"] = (
        r"written by samplernn 9\.1\.0, with settings this samplernn .* does not know "
        r"\(attention_heads, tape_wobble\): upgrade samplernn-cli to 9\.1\.0 or newer"
    )
    broken = {**minimal_payload(), "format": FORMAT, "format_version": 1}
    del broken["model_config"]
    torch.save(broken, tmp_path / "incomplete.pt")
    cases["incomplete.pt"] = "incomplete or damaged"
    cases["missing.pt"] = "no such checkpoint"

    for name, message in cases.items():
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(tmp_path / name)
    assert not (tmp_path / "PWNED").exists()


def test_mismatched_weights_are_reported(tmp_path: Path) -> None:
    payload = minimal_payload()
    payload["model"] = {k: v for k, v in payload["model"].items() if "output" not in k}
    write_payload(tmp_path / "x.pt", payload)
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(tmp_path / "x.pt").build_model()


def test_failed_write_leaves_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.pt"
    write_payload(path, minimal_payload())
    before = path.read_bytes()

    def disk_full(obj: object, handle: object, *args: object, **kwargs: object) -> None:
        handle.write(b"partial")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OutputError, match="No space left on device"):
        write_payload(path, minimal_payload())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
