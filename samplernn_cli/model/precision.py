"""The precision of the weights generation reads: float32 as trained, or int8.

At one or a few clips, generating on the CPU reads every large weight from memory once per
step (each RNN layer and the upsampling once per frame, the sample MLP once per sample), so
its speed is the bytes it reads. ``int8`` stores those weights as whole numbers in
[-127, 127] with one float32 scale per output row (``weight[n] ~ scale[n] * q[n]``, the
scale spanning the row's largest magnitude): a quarter of the bytes. The first layer's
tables and the frame tiers' input expansions stay float32 (they are small, or read a few
rows at a time). A 16-bit format would halve the bytes for the same cost of widening each
weight as it is read, so it is not offered; PyTorch's own bfloat16 products measure slower
than float32 on CPUs without bfloat16 instructions, and int8 kernels faster than both
(``benchmarks/generation_parts.py``, docs/performance.md).

:func:`rounded_copy` is the model generation runs at ``int8``, as an ordinary float32
network: the weights it holds are exactly the int8 ones scaled back. :func:`divergence`
compares it with the model as trained (tests and ``benchmarks/precision.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.nn.utils import parametrize

from samplernn_cli.model.network import SampleRNN, detach_state

PRECISIONS = ("float32", "int8")


def quantize_rows(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) float32 -> (N, K) int8 and (N,) float32 scales, ``weight[n] ~ scale[n] *
    q[n]``: each row rounded to the nearest of 255 levels spanning its largest magnitude (a
    row of zeros keeps scale one)."""
    peak = np.abs(weight).max(axis=1)
    scale = np.where(peak > 0, peak / 127, 1).astype(np.float32)
    return np.rint(weight / scale[:, None]).astype(np.int8), scale


def lstm_gate_weights(rnn: torch.nn.Module, layer: int) -> np.ndarray:
    """(4H, in + H): an LSTM layer's input and recurrent weights side by side, as one
    product of ``[x, h]`` uses them (and as their int8 rows are scaled)."""
    w_ih = getattr(rnn, f"weight_ih_l{layer}").detach().cpu().numpy()
    w_hh = getattr(rnn, f"weight_hh_l{layer}").detach().cpu().numpy()
    return np.ascontiguousarray(np.concatenate([w_ih, w_hh], axis=1), dtype=np.float32)


def _rounded(weight: np.ndarray) -> np.ndarray:
    q, scale = quantize_rows(weight)
    return q.astype(np.float32) * scale[:, None]


def _large_weights(model: SampleRNN) -> Iterator[tuple[torch.nn.Module, str | None, int]]:
    """(module, weight name or None for an LSTM layer, layer) of every weight int8 covers."""
    for tier in model.frame_tiers:
        rnns = tier.rnns if tier.skip_connections else [tier.rnn]
        for rnn in rnns:
            for layer in range(rnn.num_layers):
                if tier.rnn_type == "lstm":
                    yield rnn, None, layer
                else:
                    yield rnn, f"weight_ih_l{layer}", layer
                    yield rnn, f"weight_hh_l{layer}", layer
        if tier.skip_connections:
            yield tier.skip_output, "weight", 0
        yield tier.upsample, "weight", 0
    for layer in (*model.sample_tier.hidden, model.sample_tier.output):
        yield layer, "weight", 0


@torch.no_grad()
def rounded_copy(model: SampleRNN) -> SampleRNN:
    """A float32 copy of ``model`` whose large weights are their int8 roundings (what
    generation at ``int8`` computes with; weight normalisation folded in)."""
    device = next(model.parameters()).device
    copied = SampleRNN(replace(model.config, weight_norm=False)).to(device).eval()
    own = dict(model.named_modules())
    with parametrize.cached():
        for name, module in copied.named_modules():
            for parameter_name, parameter in module.named_parameters(recurse=False):
                parameter.copy_(getattr(own[name], parameter_name))
    for module, name, layer in _large_weights(copied):
        if name is not None:
            weight = getattr(module, name)
            weight.copy_(torch.from_numpy(_rounded(weight.detach().cpu().numpy())))
            continue
        w_ih = getattr(module, f"weight_ih_l{layer}")
        both = torch.from_numpy(_rounded(lstm_gate_weights(module, layer)))
        w_ih.copy_(both[:, : w_ih.shape[1]])
        getattr(module, f"weight_hh_l{layer}").copy_(both[:, w_ih.shape[1] :])
    return copied


@dataclass(frozen=True)
class Divergence:
    """How int8 generation's next-sample distributions differ from the model's own, fed the
    same history."""

    kl_bits: torch.Tensor  # (T,) KL(float32 || int8) at each sample, in bits
    bits_float32: float  # each model's bits per sample on the audio
    bits_int8: float


@torch.no_grad()
def _log_probabilities(model: SampleRNN, codes: torch.Tensor, chunk: int) -> torch.Tensor:
    """(T, levels) log-probabilities of every next sample of ``codes`` (history + T,),
    chunk by chunk with the state carried, as in training."""
    history = model.history
    rows, state = [], None
    for start in range(0, codes.numel() - history, chunk):
        window = codes[start : start + history + chunk].unsqueeze(0)
        logits, state = model(window, state)
        state = detach_state(state)
        rows.append(torch.log_softmax(logits[0].double(), dim=-1))
    return torch.cat(rows)


def divergence(model: SampleRNN, codes: torch.Tensor, chunk: int) -> Divergence:
    """Feed ``codes`` ((history + T,) int64: real audio after ``model.history`` codes of
    context) to ``model`` and to its :func:`rounded_copy`, ``chunk`` samples per step."""
    exact = _log_probabilities(model, codes, chunk)
    approx = _log_probabilities(rounded_copy(model), codes, chunk)
    kl = (exact.exp() * (exact - approx)).sum(dim=1) / math.log(2)
    targets = codes[model.history : model.history + kl.numel(), None]
    own = [-float(p.gather(1, targets).mean()) / math.log(2) for p in (exact, approx)]
    return Divergence(kl_bits=kl, bits_float32=own[0], bits_int8=own[1])
