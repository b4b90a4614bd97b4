"""The live voice's frame tiers: an LSTM or GRU layer run one step at a time with its state
in buffers, and a frame tier stepped once per frame (see :mod:`samplernn_cli.voice.module`).

No ``from __future__ import annotations`` here: TorchScript reads the annotations.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RecurrentLayer(nn.Module):
    """One LSTM or GRU layer's weights, run one step at a time, with its state."""

    def __init__(self, lstm: bool, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor):
        super().__init__()
        self.lstm = lstm
        hidden = w_hh.shape[1]  # (gates, hidden) as torch stores it
        # Transposed, (in, gates), for torch.mm (see LiveVoice's MLP).
        self.register_buffer("w_ih", w_ih.detach().t().contiguous().float())
        self.register_buffer("w_hh", w_hh.detach().t().contiguous().float())
        self.register_buffer("b_ih", b_ih.detach().clone().float())
        self.register_buffer("b_hh", b_hh.detach().clone().float())
        # The state, (batch, hidden); h0/c0 what a reset returns it to, (1, hidden).
        self.register_buffer("h", torch.zeros(1, hidden))
        self.register_buffer("c", torch.zeros(1, hidden))
        self.register_buffer("h0", torch.zeros(1, hidden))
        self.register_buffer("c0", torch.zeros(1, hidden))

    def reset(self, batch: int) -> None:
        self.h = self.h0.expand(batch, -1).clone()
        self.c = self.c0.expand(batch, -1).clone()

    def adopt(self) -> None:
        self.h = self.h.clone()
        self.c = self.c.clone()

    def step(self, x: Tensor) -> Tensor:
        """(B, in) -> (B, hidden), the state moved on by one step."""
        gates_x = torch.mm(x, self.w_ih).add_(self.b_ih)
        gates_h = torch.mm(self.h, self.w_hh).add_(self.b_hh)
        if self.lstm:
            i, f, g, o = (gates_x + gates_h).chunk(4, 1)
            c = torch.sigmoid(f) * self.c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            self.c.copy_(c)
        else:
            r_x, z_x, n_x = gates_x.chunk(3, 1)
            r_h, z_h, n_h = gates_h.chunk(3, 1)
            r = torch.sigmoid(r_x + r_h)
            z = torch.sigmoid(z_x + z_h)
            n = torch.tanh(n_x + r * n_h)
            h = (1.0 - z) * n + z * self.h
        self.h.copy_(h)
        return h


class FrameTierVoice(nn.Module):
    """A frame tier stepped once per frame: frame (and the tier above's vector) in, one
    conditioning vector per frame (or sample) of the tier below out, kept in ``out``."""

    def __init__(
        self,
        frame_samples: int,
        ratio: int,
        skip: bool,
        input_weight: Tensor,
        input_bias: Tensor,
        layers: list[RecurrentLayer],
        skip_weight: Tensor,
        skip_bias: Tensor,
        upsample_weight: Tensor,
        upsample_bias: Tensor,
    ):
        super().__init__()
        self.frame_samples = frame_samples
        self.ratio = ratio
        self.skip = skip
        self.hidden = input_weight.shape[0]
        self.register_buffer("input_weight", input_weight.detach().clone().float())
        self.register_buffer("input_bias", input_bias.detach().clone().float())
        self.layers = nn.ModuleList(layers)
        self.register_buffer("skip_weight", skip_weight.detach().clone().float())
        self.register_buffer("skip_bias", skip_bias.detach().clone().float())
        self.register_buffer("upsample_weight", upsample_weight.detach().t().contiguous().float())
        self.register_buffer("upsample_bias", upsample_bias.detach().clone().float())
        # (B, ratio, H): this tier's vectors for the frames (or samples) of its current frame.
        self.register_buffer("out", torch.zeros(1, ratio, self.hidden))

    def reset(self, batch: int) -> None:
        for layer in self.layers:
            layer.reset(batch)
        self.out = torch.zeros(batch, self.ratio, self.hidden)

    def adopt(self) -> None:
        for layer in self.layers:
            layer.adopt()
        self.out = self.out.clone()

    def step(self, frame: Tensor, above: Tensor) -> None:
        """frame (B, frame_samples) scaled codes; above (B, H), zeros for the top tier."""
        x = F.linear(frame, self.input_weight, self.input_bias) + above
        if self.skip:
            outputs: list[Tensor] = []
            layer_input = x
            for layer in self.layers:
                out = layer.step(layer_input)
                outputs.append(out)
                layer_input = torch.cat([x, out], 1)
            y = F.linear(torch.cat(outputs, 1), self.skip_weight, self.skip_bias)
        else:
            y = x
            for layer in self.layers:
                y = layer.step(y)
        up = torch.mm(y, self.upsample_weight).add_(self.upsample_bias)
        self.out.copy_(up.view(-1, self.ratio, self.hidden))
