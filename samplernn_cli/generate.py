"""Sampling new audio from a trained model, all clips of a batch at once.

Generation runs the tiers at their own rates: a frame tier steps once per frame of its
length, the sample-level MLP once per sample, and each new sample is drawn from the softmax
of the logits divided by the temperature. It starts from the model's reset state with a
silent history, exactly as every training sequence starts from a reset state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from samplernn_cli.model import ModelState, SampleRNN

# Called with (samples done, samples total) once per top-tier frame; returning True stops.
GenerateProgress = Callable[[int, int], bool | None]
# Chooses the codes at step t from that step's (B, levels) logits; returns (B,) int64.
Picker = Callable[[int, torch.Tensor], torch.Tensor]


class GenerationStopped(Exception):
    """Raised when the progress callback asks generation to stop."""


@torch.no_grad()
def autoregress(
    model: SampleRNN,
    count: int,
    num_samples: int,
    pick: Picker,
    progress: GenerateProgress | None = None,
) -> torch.Tensor:
    """Run the model one sample at a time, feeding back what ``pick`` chooses.

    Returns:
        (count, num_samples) int64 codes.
    """
    device = next(model.parameters()).device
    tiers = model.frame_tiers
    frames = [tier.frame_samples for tier in tiers]
    history = model.history
    frame_size = model.sample_tier.frame_size
    # Round up to whole top-tier frames; the extra samples are dropped at the end.
    total = -(-num_samples // frames[-1]) * frames[-1]
    codes = torch.full(
        (count, history + total), model.quantizer.zero_code, dtype=torch.long, device=device
    )
    state: ModelState = model.initial_state()
    # Each tier's output for its current frame, (B, ratio, H); all tiers step at t = 0.
    conditioning = [torch.empty(0)] * len(tiers)
    tables = model.sample_tier.input_tables()
    for t in range(total):
        position = history + t
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
        logits = model.sample_tier.head(first + conditioning[0][:, t % frames[0]])
        codes[:, position] = pick(t, logits)
    if progress is not None:
        progress(total, total)
    return codes[:, history : history + num_samples]


def temperature_column(
    temperature: float | Sequence[float], count: int, device: torch.device
) -> torch.Tensor:
    """(count, 1) temperatures from one value or one per clip."""
    if isinstance(temperature, (int, float)):
        values = [float(temperature)] * count
    else:
        values = [float(value) for value in temperature]
    if len(values) != count:
        raise ValueError(f"{len(values)} temperatures for {count} clips")
    return torch.tensor(values, dtype=torch.float32, device=device).unsqueeze(1)


def generate_codes(
    model: SampleRNN,
    count: int,
    num_samples: int,
    *,
    temperature: float | Sequence[float] = 1.0,
    generator: torch.Generator | None = None,
    progress: GenerateProgress | None = None,
) -> torch.Tensor:
    """Generate ``count`` clips of ``num_samples`` codes each, together as one batch.

    Args:
        model: the network (its device is used).
        temperature: one value for all clips or one per clip; 1.0 samples the model's own
            distribution, lower is more conservative, higher more adventurous.
        generator: random source, for reproducible output.
        progress: see :data:`GenerateProgress`.

    Returns:
        (count, num_samples) int64 codes.
    """
    device = next(model.parameters()).device
    temperatures = temperature_column(temperature, count, device)

    def sample(t: int, logits: torch.Tensor) -> torch.Tensor:
        probabilities = torch.softmax(logits / temperatures, dim=-1)
        return torch.multinomial(probabilities, 1, generator=generator).squeeze(1)

    return autoregress(model, count, num_samples, sample, progress)
