"""Straightforward formulations, kept as test oracles and benchmark baselines.

They compute what the optimised code computes, the obvious way: the sample MLP's first
layer as a product with the concatenated embeddings of the previous samples (materialising a
batch x time x frame_size x embed_size tensor), and generation one clip at a time with a
softmax and a multinomial draw per sample. Nothing in the tool itself runs them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from samplernn_cli.model.network import ModelState, SampleRNN


def naive_logits(
    model: SampleRNN, window: torch.Tensor, state: ModelState | None = None
) -> tuple[torch.Tensor, ModelState]:
    """:meth:`SampleRNN.forward` with the first MLP layer as concatenation and product."""
    conditioning, new_state = model.frame_tiers_pass(window, state)
    tier = model.sample_tier
    frame_size = tier.frame_size
    previous = window[:, model.history - frame_size : -1].unfold(1, frame_size, 1)
    if tier.embedding is None:
        inputs = F.one_hot(previous, tier.q_levels).to(conditioning.dtype).flatten(-2)
    else:
        inputs = tier.embedding(previous).flatten(-2)  # (B, L, FS * E), materialised
    x = tier.input(inputs) + conditioning
    predicted = model.prediction(window)
    if predicted is not None:
        x = x + tier.prediction_input(predicted)
    return tier.head(x), new_state


def naive_loss(
    model: SampleRNN, window: torch.Tensor, state: ModelState | None = None
) -> tuple[torch.Tensor, ModelState]:
    """Mean cross-entropy (nats) of a chunk the straightforward way, and the new state."""
    logits, new_state = naive_logits(model, window, state)
    targets = window[:, model.history :]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return loss, new_state


@torch.no_grad()
def naive_generate(model: SampleRNN, num_samples: int, seed: int = 0) -> torch.Tensor:
    """One clip of a 2-tier model, sample by sample, as the 2022 tool did: for every sample
    an embedding lookup, a concatenation, four linear layers, a softmax and a multinomial
    draw; the LSTM and the upsampling at every frame boundary."""
    if len(model.frame_tiers) != 1 or model.sample_tier.embedding is None:
        raise ValueError("the straightforward generator handles 2-tier embedding models")
    if model.config.linear_prediction:
        raise ValueError("the straightforward generator has no linear prediction")
    generator = torch.Generator().manual_seed(seed)
    tier = model.sample_tier
    frame_tier = model.frame_tiers[0]
    frame_size = tier.frame_size
    codes = [model.quantizer.zero_code] * frame_size
    state = None
    conditioning = torch.empty(0)
    for t in range(num_samples):
        if t % frame_size == 0:
            frame = model.quantizer.scale_codes(torch.tensor(codes[-frame_size:])).view(1, 1, -1)
            conditioning, state = frame_tier(frame, None, state)  # LSTM + upsampling
        previous = torch.tensor(codes[-frame_size:]).view(1, frame_size)
        embedded = tier.embedding(previous).view(1, -1)  # lookup + concatenation
        x = F.relu(tier.input(embedded) + conditioning[:, t % frame_size])
        x = F.relu(tier.hidden[0](x))
        x = F.relu(tier.hidden[1](x))
        probabilities = F.softmax(tier.output(x), dim=-1)
        codes.append(int(torch.multinomial(probabilities, 1, generator=generator)))
    return torch.tensor(codes[frame_size:])
