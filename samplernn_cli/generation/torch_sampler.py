"""The PyTorch sampler: the model's own modules run one sample at a time, on any device
(the CPU runs the Numba sampler, :mod:`samplernn_cli.generation.numba_sampler`, instead).

Generation runs the tiers at their own rates: a frame tier steps once per frame of its
length, the sample-level MLP once per sample, and each new sample is chosen by ``pick`` from
that step's logits. With linear prediction, the predictor's taps are fitted again every
``prediction_block`` samples to the clip so far.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from samplernn_cli.generation.sampling import CodesCallback, GenerateProgress, GenerationStopped
from samplernn_cli.model import ModelState, SampleRNN, prediction

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
    order, block = model.config.linear_prediction, model.config.prediction_block
    zero = model.quantizer.zero_code
    taps = torch.empty(0)
    emitted = 0  # samples handed to on_codes
    for t in range(total):
        position = context + t
        if on_codes is not None and t % frames[-1] == 0 and t > emitted:
            end = min(t, num_samples)
            on_codes(codes[:, context + emitted : context + end].cpu())
            emitted = end
        for k in reversed(range(len(tiers))):
            size = frames[k]
            if t % size:
                continue
            if k == len(tiers) - 1 and progress is not None and progress(t, total):
                raise GenerationStopped
            frame = model.quantizer.scale_codes(codes[:, position - size : position])
            above = None
            if k + 1 < len(tiers):
                above = conditioning[k + 1][:, (t // size) % tiers[k + 1].ratio].unsqueeze(1)
            conditioning[k], state[k] = tiers[k](frame.unsqueeze(1), above, state[k])
        previous = codes[:, position - frame_size : position]
        first = model.sample_tier.first_layer(previous, tables)
        x = first + conditioning[0][:, t % frames[0]]
        if order:
            if t % block == 0:
                past = codes[:, position - prediction.FIT : position]
                taps = prediction.fit_taps((past - zero).double(), order)
            recent = (codes[:, position - order : position] - zero).double()
            predicted = prediction.apply_taps(recent, taps)[:, 0].float()
            x = x + model.sample_tier.prediction_input(predicted)
        logits = model.sample_tier.head(x)
        codes[:, position] = pick(t, logits)
    if on_codes is not None and num_samples > emitted:
        on_codes(codes[:, context + emitted : context + num_samples].cpu())
    if progress is not None:
        progress(total, total)
    if final_state is not None:
        final_state[:] = state
    return codes[:, context : context + num_samples]
