"""The live voice's quiet boost: what ``samplernn generate --quiet-boost`` does
(:class:`samplernn_cli.generation.sampling.QuietGuard`), kept in buffers so that a live take
cannot fall silent for good either.

No ``from __future__ import annotations`` here: TorchScript reads the annotations.
"""

import torch
from torch import Tensor, nn


class QuietWatch(nn.Module):
    """Each row's mean square over its last ``blocks`` blocks of about ``block`` samples
    (judged when a chunk completes a block), and whether it lies under ``floor``: then the
    row is sampled at the quiet boost times its temperature. A new take is judged on its
    own samples from when they fill the window."""

    def __init__(self, floor: float, blocks: int, block: int, decode_table: Tensor):
        super().__init__()
        self.floor = float(floor)
        self.block = int(block)
        # Each code's sample, squared (in float64, as generate's guard sums them).
        self.register_buffer("squares", decode_table.detach().double().square().float())
        self.register_buffer("energy", torch.full((1, blocks), float("inf")))
        self.register_buffer("partial", torch.zeros(1))  # the block in progress: sum
        self.register_buffer("filled", torch.zeros(1, dtype=torch.long))  # and samples
        self.register_buffer("slot", torch.zeros(1, dtype=torch.long))
        self.register_buffer("quiet", torch.zeros(1, dtype=torch.bool))

    def reset(self, batch: int) -> None:
        self.energy = torch.full((batch, self.energy.shape[1]), float("inf"))
        self.partial = torch.zeros(batch)
        self.filled = torch.zeros(1, dtype=torch.long)
        self.slot = torch.zeros(1, dtype=torch.long)
        self.quiet = torch.zeros(batch, dtype=torch.bool)

    def adopt(self) -> None:
        self.energy = self.energy.clone()
        self.partial = self.partial.clone()
        self.filled = self.filled.clone()
        self.slot = self.slot.clone()
        self.quiet = self.quiet.clone()

    def add(self, codes: Tensor) -> None:
        """Count a chunk's (B, n) codes."""
        self.partial.add_(self.squares[codes].sum(1))
        self.filled.add_(codes.shape[1])
        count = int(self.filled[0])
        if count < self.block:
            return
        self.energy.select(1, int(self.slot[0])).copy_(self.partial / count)
        self.slot.copy_((self.slot + 1) % self.energy.shape[1])
        self.partial.zero_()
        self.filled.zero_()
        self.quiet.copy_(self.energy.mean(1) < self.floor)

    def boosted(self, temperature: Tensor, boost: float) -> Tensor:
        """(B, 1, 1): the (B,) ``temperature``, times ``boost`` in the rows quiet now."""
        return torch.where(self.quiet, temperature * boost, temperature).view(-1, 1, 1)
