"""Disk use of a training checkpoint at each preset: what `--keep-checkpoints` multiplies.

For each preset, builds the model, takes one Adam step (so both moments exist, as in every
checkpoint after the first iteration) and writes the weights, their average (the default
`--average-decay`; a copy of the same size) and the optimizer state with `torch.save`, as a
checkpoint holds them; prints the file size next to the estimate `samplernn train` logs at
start (`training.retention.estimated_checkpoint_bytes`: weights, their average and two
moments) and their ratio. With `--average-decay 0` a checkpoint is a quarter smaller. The
rest of a checkpoint (settings, RNG and RNN state, loss history) adds well under 1 %. Run
from the repository root:

    python benchmarks/checkpoint_disk.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from samplernn_cli.config import ModelConfig
from samplernn_cli.fileio import format_bytes
from samplernn_cli.model import SampleRNN
from samplernn_cli.presets import PRESETS
from samplernn_cli.run.retention import estimated_checkpoint_bytes
from samplernn_cli.training.step import make_optimizer


def main() -> None:
    print(f"{'preset':12s} {'parameters':>12s} {'checkpoint':>11s} {'estimate':>10s} {'ratio':>6s}")
    for name, preset in PRESETS.items():
        values = {k: v for k, v in preset.values.items() if k in ModelConfig.__dataclass_fields__}
        model = SampleRNN(ModelConfig(**values))
        optimizer = make_optimizer(model, 1e-3)
        for parameter in model.parameters():
            parameter.grad = torch.zeros_like(parameter)
        optimizer.step()
        count = sum(p.numel() for p in model.parameters())
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        estimate = estimated_checkpoint_bytes(weight_bytes, averaged=True)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "checkpoint.pt"
            average = {k: v.clone() for k, v in model.state_dict().items()}
            torch.save({"model": average, "training_weights": model.state_dict(),
                        "optimizer": optimizer.state_dict()}, path)  # fmt: skip
            size = path.stat().st_size
        print(f"{name:12s} {count:>12,d} {format_bytes(size):>11s} {format_bytes(estimate):>10s} "
              f"{size / estimate:6.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
