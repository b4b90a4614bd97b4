"""Named sets of settings for ``samplernn train --preset NAME``.

A preset fills in options the user did not give on the command line; explicit options
always win. Keys are the names of ``samplernn train`` options (underscore spelling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    source: str
    values: dict[str, Any]


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="seed",
            description="The 2022 PyTorch tool's defaults: 2-tier, LSTM 5x1024, frame 16, "
            "64 frames, embed 256, 256 linear levels, batch 128 (also samplernn's defaults).",
            source="the 2022 SampleRNN PyTorch reimplementation this tool's interface follows",
            values={
                "hidden_size": 1024,
                "rnn_layers": 5,
                "frame_size": 16,
                "embed_size": 256,
                "quantization": 256,
                "quantizer": "linear",
                "batch_size": 128,
                "num_frames": 64,
            },
        ),
        Preset(
            name="small",
            description="A small 2-tier model (LSTM 1x256, embed 64, batch 16, 16 frames) that "
            "trains usefully on a laptop CPU in minutes.",
            source="samplernn",
            values={
                "hidden_size": 256,
                "rnn_layers": 1,
                "frame_size": 16,
                "embed_size": 64,
                "quantization": 256,
                "quantizer": "linear",
                "batch_size": 16,
                "num_frames": 16,
            },
        ),
    )
}
