"""The PyTorch sampler: the model's own modules run one sample at a time, on any device
(the CPU runs the Numba sampler, :mod:`samplernn_cli.generation.numba_sampler`, instead).

Generation runs the tiers at their own rates: a frame tier steps once per frame of its
length, the sample-level MLP once per sample, and each new sample is chosen by ``pick`` from
that step's logits. With linear prediction, the predictor's taps are fitted again every
block of samples (:class:`~samplernn_cli.model.prediction.LinearPredictor`) to the clip so far.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from samplernn_cli.generation.sampling import (
    ClipNoise,
    CodesCallback,
    GenerateProgress,
    GenerationStopped,
    Takes,
    sample_from_logits,
    stepping_tiers,
)
from samplernn_cli.model import ModelState, SampleRNN
from samplernn_cli.model.precision import rounded_copy

# Chooses the codes at step t from that step's (B, levels) logits; returns (B,) int64.
Picker = Callable[[int, torch.Tensor], torch.Tensor]


@torch.no_grad()
def autoregress(
    model: SampleRNN,
    count: int,
    num_samples: int,
    pick: Picker,
    *,
    history: torch.Tensor | None = None,
    state: ModelState | None = None,
    progress: GenerateProgress | None = None,
    on_codes: CodesCallback | None = None,
    final_state: ModelState | None = None,
) -> torch.Tensor:
    """Run the model one sample at a time, feeding back what ``pick`` chooses.

    Args:
        history: (count, model.history) codes before the first sample (default: silence).
        state: the frame tiers' state at that point (default: reset).
        on_codes: see :data:`~samplernn_cli.generation.sampling.CodesCallback`.
        final_state: a list that is given the frame tiers' state at the end (for a run that
            goes on from there: whole top-tier frames end exactly there).

    Returns:
        (count, num_samples) int64 codes.
    """
    device = next(model.parameters()).device
    tiers = model.frame_tiers
    frames = [tier.frame_samples for tier in tiers]
    context = model.history
    frame_size = model.sample_tier.frame_size
    # Round up to whole top-tier frames; the extra samples are dropped at the end.
    total = -(-num_samples // frames[-1]) * frames[-1]
    codes = torch.full(
        (count, context + total), model.quantizer.zero_code, dtype=torch.long, device=device
    )
    if history is not None:
        codes[:, :context] = history.to(device)
    state = list(state) if state is not None else model.initial_state()
    # Each tier's output for its current frame, (B, ratio, H); all tiers step at t = 0.
    conditioning = [torch.empty(0)] * len(tiers)
    tables = model.sample_tier.input_tables()
    predictor = model.predictor
    zero = model.quantizer.zero_code
    taps = torch.empty(0)
    emitted = 0  # samples handed to on_codes
    for t in range(total):
        position = context + t
        if on_codes is not None and t % frames[-1] == 0 and t > emitted:
            end = min(t, num_samples)
            on_codes(codes[:, context + emitted : context + end].cpu())
            emitted = end
        for k in stepping_tiers(t, frames):
            size = frames[k]
            if k == len(tiers) - 1 and progress is not None and progress(t, total):
                raise GenerationStopped
            frame = model.quantizer.scale_codes(codes[:, position - size : position])
            above = None
            if k + 1 < len(tiers):
                above = conditioning[k + 1][:, (t // size) % tiers[k + 1].ratio].unsqueeze(1)
            conditioning[k], state[k] = tiers[k](frame.unsqueeze(1), above, state[k])
        previous = codes[:, position - frame_size : position]
        predicted = None
        if predictor is not None:
            if predictor.refits(t):
                past = codes[:, position - predictor.FIT : position]
                taps = predictor.fit((past - zero).double())
            recent = (codes[:, position - predictor.order : position] - zero).double()
            predicted = predictor.apply(recent, taps)[:, 0].float()
        first = model.sample_tier.first_layer(previous, tables, predicted)
        logits = model.sample_tier.head(first + conditioning[0][:, t % frames[0]])
        codes[:, position] = pick(t, logits)
    if on_codes is not None and num_samples > emitted:
        on_codes(codes[:, context + emitted : context + num_samples].cpu())
    if progress is not None:
        progress(total, total)
    if final_state is not None:
        final_state[:] = state
    return codes[:, context : context + num_samples]


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


class TorchSampler:
    """The PyTorch sampler behind the :class:`~samplernn_cli.generation.sampling.Sampler`
    protocol: :func:`autoregress` with each clip's stream and its bits counted."""

    def __init__(
        self,
        model: SampleRNN,
        count: int,
        temperatures: Sequence[float],
        precision: str = "float32",
        *,
        noise: ClipNoise | None = None,
    ) -> None:
        """``precision`` int8: the model computes with its int8 weights' values (a rounded
        copy); ``noise``: the clips' streams (default: seed 0)."""
        self.device = next(model.parameters()).device
        self.model = rounded_copy(model) if precision == "int8" else model
        self.count = count
        temperature_column = torch.tensor(list(temperatures), dtype=torch.float32)
        self.pick = stream_picker(
            noise or ClipNoise(0, 0, count),
            temperature_column.to(self.device).unsqueeze(1),
            model.config.tier_frame_samples[-1],
            self.device,
        )
        self.state: ModelState = []  # the frame tiers' state where the last run ended

    def run(
        self,
        num_samples: int,
        *,
        history: torch.Tensor | None = None,
        state: ModelState | None = None,
        progress: GenerateProgress | None = None,
        on_codes: CodesCallback | None = None,
        carry: bool = False,
    ) -> Takes:
        """See :meth:`samplernn_cli.generation.sampling.Sampler.run`."""
        bits = torch.zeros(self.count, dtype=torch.float64, device=self.device)

        def sample(t: int, logits: torch.Tensor) -> torch.Tensor:
            chosen = self.pick(t, logits)
            if t < num_samples:  # the samples past the end of the clip are dropped
                own = torch.log_softmax(logits.double(), dim=-1)
                bits.sub_(own.gather(1, chosen.unsqueeze(1)).squeeze(1) / math.log(2))
            return chosen

        final: ModelState = []
        codes = autoregress(
            self.model, self.count, num_samples, sample, history=history,
            state=self.state if carry else state, progress=progress, on_codes=on_codes,
            final_state=final,
        )  # fmt: skip
        self.state = final
        return Takes(codes, bits.cpu() / num_samples)
