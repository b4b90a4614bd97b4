"""Every architecture variant and preset, tiny, through the whole life of a run: train a few
steps (generating clips on the way), save, reload, generate, inspect and resume exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from samplernn_cli.checkpoint import FORMAT, load_checkpoint, write_payload
from samplernn_cli.config import AudioConfig, ModelConfig, StopConditions
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.model import SampleRNN
from samplernn_cli.presets import PRESETS
from samplernn_cli.summary import summarize
from samplernn_cli.training.requests import ResumeRequest, TrainRequest
from samplernn_cli.training.session import resume, train

from .conftest import RATE, TINY_LIVE, TINY_TRAIN, WriteAudio, read_losses, tiny_request
from .test_model import VARIANTS


def tiny_preset(name: str) -> ModelConfig:
    """A preset's architecture at a tiny size (its cell, tiers, options and quantizer)."""
    values = PRESETS[name].values
    return ModelConfig(
        frame_sizes=tuple(min(size, 4) for size in values["frame_sizes"]),
        rnn_type=values["rnn_type"],
        rnn_layers=min(values["rnn_layers"], 2),
        hidden_size=8,
        embed_size=min(values["embed_size"], 3),
        q_levels=16,
        quantizer=values["quantizer"],
        skip_connections=values["skip_connections"],
        weight_norm=values["weight_norm"],
        learn_h0=values["learn_h0"],
    )


CASES = {**VARIANTS, **{f"preset-{name}": tiny_preset(name) for name in PRESETS}}


@pytest.mark.parametrize("name", CASES)
def test_variant_lifecycle(name: str, tmp_path: Path, write_audio: WriteAudio) -> None:
    config = CASES[name]
    source = write_audio("in.wav", seconds=0.5, rate=RATE)
    live = replace(TINY_LIVE, generate_every=2, checkpoint_every=2, length=0.01)
    train_config = replace(TINY_TRAIN, batch_size=2, num_frames=2)
    if config.linear_prediction:  # chunks of whole prediction blocks (TrainConfig.check_with)
        frames = config.predictor.block // config.tier_frame_samples[-1]
        train_config = replace(train_config, num_frames=frames, sequence_seconds=0.1)

    def request(run: str, iterations: int) -> TrainRequest:
        return tiny_request(source, tmp_path / run, rate=RATE, iterations=iterations,
                            model=config, train=train_config, live=live)  # fmt: skip

    first = train(request("a", 3))
    assert (first.run_dir / "a_epoch_1_iter_2_1.wav").is_file()  # generated during training
    checkpoint = load_checkpoint(first.checkpoint)
    assert checkpoint.model_config == config
    model = checkpoint.build_model()
    assert isinstance(model, SampleRNN)
    codes = generate_takes(model, 2, 50, seed=1).codes
    assert codes.shape == (2, 50) and int(codes.min()) >= 0 and int(codes.max()) < 16

    summary = summarize(checkpoint)
    assert summary["model"]["description"] == config.describe()
    assert summary["model"]["parameters"] == config.parameter_count()

    resumed = resume(ResumeRequest(first.checkpoint, stop=StopConditions(max_iterations=5)))
    straight = train(request("b", 5))
    got = load_checkpoint(resumed.checkpoint).payload["model"]
    want = load_checkpoint(straight.checkpoint).payload["model"]
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key
    assert [r["loss"] for r in read_losses(first.run_dir / "a_losses.csv")] == [
        r["loss"] for r in read_losses(straight.run_dir / "b_losses.csv")
    ]


def test_checkpoints_from_before_the_architecture_options_still_load(tmp_path: Path) -> None:
    """Format-1 checkpoints written before skip connections, weight norm and learned h0
    existed hold no such keys: they load as the plain model they are."""
    config = ModelConfig(frame_sizes=(4,), rnn_layers=1, hidden_size=8, embed_size=3, q_levels=16)
    old_settings = {
        key: value
        for key, value in config.to_dict().items()
        if key not in ("skip_connections", "weight_norm", "learn_h0")
    }
    torch.manual_seed(0)
    payload = {
        "format": FORMAT, "format_version": 1, "model_config": old_settings,
        "audio": AudioConfig().to_dict(), "train": TINY_TRAIN.to_dict(),
        "live": TINY_LIVE.to_dict(), "sample_rate": RATE,
        "progress": {"iteration": 1, "epoch": 1}, "model": SampleRNN(config).state_dict(),
    }  # fmt: skip
    write_payload(tmp_path / "old.pt", payload)
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert loaded.model_config == config
    loaded.build_model()
