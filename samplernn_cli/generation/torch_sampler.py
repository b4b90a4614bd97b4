"""The PyTorch sampler: the model's own modules run one sample at a time, on any device
(the CPU runs the Numba sampler, :mod:`samplernn_cli.generation.numba_sampler`, instead).

Generation runs the tiers at their own rates (:class:`~samplernn_cli.generation.sampling.
FrameStepper`): a frame tier steps once per frame of its length, the sample-level MLP once per
sample, and each new sample is chosen by ``pick`` from that step's logits. With linear
prediction, the predictor's taps are fitted again every block of samples
(:class:`~samplernn_cli.model.prediction.LinearPredictor`) to the clip so far.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from samplernn_cli.generation.sampling import ClipNoise, FrameStepper, sample_from_logits
from samplernn_cli.model import ModelState
from samplernn_cli.model.precision import rounded_copy

# Chooses the codes at step t from that step's (B, levels) logits; returns (B,) int64.
Picker = Callable[[int, torch.Tensor], torch.Tensor]


def stream_picker(
    noise: ClipNoise, temperatures: torch.Tensor, block: int, device: torch.device
) -> Picker:
    """A ``pick``: each clip's code at step t from its own stream of uniforms, drawn
    ``block`` steps at a time (as the Numba sampler draws them)."""
    uniforms = torch.empty(0)

    def pick(t: int, logits: torch.Tensor) -> torch.Tensor:
        nonlocal uniforms
        if t % block == 0:
            uniforms = noise.draw(block, device)
        return sample_from_logits(logits, temperatures, uniforms[:, t % block])

    return pick


class TorchSampler(FrameStepper):
    """Generates clips with the model's own modules, on its device; with precision int8 the
    model computes with its int8 weights' values (a rounded copy)."""

    def _prepare(self) -> None:
        if self.precision == "int8":
            self.model = rounded_copy(self.model)
        self.device = next(self.model.parameters()).device
        # (count, 1): each clip's temperature, changed in place by the quiet guard.
        self.column = torch.tensor(self.temperatures, dtype=torch.float32, device=self.device)
        self.column = self.column.unsqueeze(1)
        # Chooses each sample's codes: from the clips' streams; replaced by a function of
        # the same signature for teacher forcing (in tests).
        self.pick: Picker = stream_picker(self.noise, self.column, self.frames[-1], self.device)
        self.state: ModelState = []  # the frame tiers' state, carried from run to run

    def _set_temperatures(self, temperatures: np.ndarray) -> None:
        self.column.copy_(torch.from_numpy(temperatures).view(-1, 1))

    def _start(
        self, total: int, history: torch.Tensor | None, state: ModelState | None, carry: bool
    ) -> None:
        model = self.model
        if not carry:
            self.state = list(state) if state is not None else model.initial_state()
        self.context = model.history
        self.codes = torch.full(
            (self.count, self.context + total), model.quantizer.zero_code, dtype=torch.long,
            device=self.device,
        )  # fmt: skip
        if history is not None:
            self.codes[:, : self.context] = history.to(self.device)
        # Each tier's output for its current frame, (B, ratio, H).
        self.conditioning = [torch.empty(0)] * len(self.frames)
        self.tables = model.sample_tier.input_tables()
        self.sample_bits = torch.zeros(self.count, dtype=torch.float64, device=self.device)

    def _step_tier(self, k: int, t: int) -> None:
        size, tiers = self.frames[k], self.model.frame_tiers
        position = self.context + t
        frame = self.model.quantizer.scale_codes(self.codes[:, position - size : position])
        above = None
        if k + 1 < len(tiers):
            above = self.conditioning[k + 1][:, (t // size) % tiers[k + 1].ratio].unsqueeze(1)
        self.conditioning[k], self.state[k] = tiers[k](frame.unsqueeze(1), above, self.state[k])

    def _refit(self, t: int) -> None:
        assert self.predictor is not None
        position = self.context + t
        past = self.codes[:, position - self.predictor.FIT : position]
        self.taps = self.predictor.fit((past - self.model.quantizer.zero_code).double())

    def _sample_frame(self, t: int, num_samples: int) -> None:
        tier, predictor = self.model.sample_tier, self.predictor
        zero = self.model.quantizer.zero_code
        for step in range(t, t + self.frames[0]):
            position = self.context + step
            previous = self.codes[:, position - tier.frame_size : position]
            predicted = None
            if predictor is not None:
                recent = (self.codes[:, position - predictor.order : position] - zero).double()
                predicted = predictor.apply(recent, self.taps)[:, 0].float()
            first = tier.first_layer(previous, self.tables, predicted)
            logits = tier.head(first + self.conditioning[0][:, step - t])
            chosen = self.pick(step, logits)
            if step < num_samples:  # the samples past the end of the clip are dropped
                own = torch.log_softmax(logits.double(), dim=-1)
                self.sample_bits.sub_(own.gather(1, chosen.unsqueeze(1)).squeeze(1) / math.log(2))
            self.codes[:, position] = chosen

    def _codes(self, start: int, end: int) -> torch.Tensor:
        return self.codes[:, self.context + start : self.context + end].cpu()

    def _bits(self, num_samples: int) -> torch.Tensor:
        return self.sample_bits.cpu() / num_samples
