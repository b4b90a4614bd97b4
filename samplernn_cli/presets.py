"""Named sets of settings for ``samplernn train --preset NAME``.

A preset fills in options the user did not give on the command line; explicit options
always win. Keys are the names of :class:`ModelConfig` and :class:`TrainConfig` settings.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from samplernn_cli.config import ModelConfig, TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    source: str
    values: dict[str, Any]  # setting name -> value

    def __post_init__(self) -> None:
        known = {f.name for f in fields(ModelConfig)} | {f.name for f in fields(TrainConfig)}
        unknown = set(self.values) - known
        if unknown:
            raise ValueError(f"preset {self.name} sets unknown settings {sorted(unknown)}")

    def values_of(self, settings: type) -> dict[str, Any]:
        """What the preset sets of one settings class (ModelConfig or TrainConfig)."""
        names = {f.name for f in fields(settings)}
        return {name: value for name, value in self.values.items() if name in names}


def _preset(name: str, description: str, source: str, **values: Any) -> Preset:
    defaults = {
        "rnn_type": "lstm",
        "skip_connections": False,
        "weight_norm": False,
        "learn_h0": False,
        "quantizer": "linear",
        "q_levels": 256,
    }
    return Preset(name, description, source, {**defaults, **values})


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        _preset(
            "2022",
            "2-tier, LSTM 5x1024, frame 16, 64 frames, embed 256, 256 linear levels, batch 128",
            "the defaults of the 2022 PyTorch reimplementation this tool's interface follows",
            hidden_size=1024, rnn_layers=5, frame_sizes=(16,), embed_size=256,
            batch_size=128, num_frames=64,
        ),
        _preset(
            "dadabots",
            "2-tier, LSTM 5x1024 with skip connections and weight norm, frame 16, 64 frames, "
            "embed 256, 256 mu-law levels, batch 128",
            "the best settings in the Dadabots SampleRNN fork's README",
            hidden_size=1024, rnn_layers=5, frame_sizes=(16,), embed_size=256,
            batch_size=128, num_frames=64, skip_connections=True, weight_norm=True,
            quantizer="mu-law",
        ),
        _preset(
            "paper-2tier",
            "2-tier, GRU 3x1024, frame 16, 64 frames, embed 256, 256 linear levels, weight "
            "norm, learned h0, batch 128",
            "the authors' README (sampleRNN_ICLR2017): best 2-tier settings for MUSIC",
            rnn_type="gru", hidden_size=1024, rnn_layers=3, frame_sizes=(16,), embed_size=256,
            batch_size=128, num_frames=64, weight_norm=True, learn_h0=True,
        ),
        _preset(
            "paper-3tier",
            "3-tier, GRU 1x1024, frames of 2 and 8 samples, 64 top frames (512 samples) per "
            "step, embed 256, 256 linear levels, weight norm, learned h0, batch 128",
            "the authors' README (sampleRNN_ICLR2017): best 3-tier settings for MUSIC",
            rnn_type="gru", hidden_size=1024, rnn_layers=1, frame_sizes=(2, 4),
            embed_size=256, batch_size=128, num_frames=64, weight_norm=True, learn_h0=True,
        ),
        _preset(
            "small",
            "2-tier, LSTM 1x256, frame 16, 16 frames, embed 64, 256 linear levels, batch 16: "
            "trains usefully on a laptop CPU in minutes",
            "samplernn",
            hidden_size=256, rnn_layers=1, frame_sizes=(16,), embed_size=64, batch_size=16,
            num_frames=16,
        ),
    )
}  # fmt: skip
# Names presets had before: still accepted by --preset.
PRESET_ALIASES = {"seed": "2022"}


def preset_named(name: str) -> Preset:
    """The preset of a name or of an earlier name of it."""
    return PRESETS[PRESET_ALIASES.get(name, name)]
