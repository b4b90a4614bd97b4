"""The sample tier's MLP and the cross-entropy loss as one autograd node, for CPU training.

On the CPU the matrix products of a training step run near the machine's peak, and what is
left is element-wise work on (targets x hidden) tensors (4 MB each at the small preset) that
autograd does out of place: each op writes a fresh tensor, whose pages come from memory
rather than the cache that holds the tensor it read. In one step: a log-softmax, its
backward pass, a zero-filled gradient for the negative log-likelihood, and three ReLU
backward passes. This node computes the same loss and gradients with every element-wise op
in place:

* forward: ``relu(first + conditioning)``, two hidden layers, the output layer, then the
  loss; the logits' buffer becomes the loss's gradient right away (softmax minus the
  one-hot target, times the loss's scale), which the backward pass needs and nothing else
  reads;
* backward: the products of each layer by hand, each ReLU's backward pass in place on the
  product just made (``threshold_backward``'s out= form).

No library routine fuses a softmax-cross-entropy gradient into the logits' buffer on the
CPU (``torch.compile`` generates such code, but not faster than this node for this step),
hence the hand-written backward pass. The whole step gains less than these ops save, since
part of the memory traffic they caused moves to the matrix products beside them.
``benchmarks/training_step_parts.py`` times the node against :func:`plain_head_loss`
(and with ``--compile`` against that under ``torch.compile``), alone and inside the whole
step. The same loss and gradients as :func:`plain_head_loss`, up to float summation order;
other devices and inference run that.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

_relu_backward_into = torch.ops.aten.threshold_backward.grad_input


class _HeadLoss(torch.autograd.Function):
    """(N, H) first-layer output and conditioning, (N,) targets -> scale x summed loss."""

    @staticmethod
    def forward(
        ctx: Any,
        first: torch.Tensor,
        conditioning: torch.Tensor,
        targets: torch.Tensor,
        scale: float,
        w1: torch.Tensor,
        b1: torch.Tensor,
        w2: torch.Tensor,
        b2: torch.Tensor,
        wo: torch.Tensor,
        bo: torch.Tensor,
    ) -> torch.Tensor:
        a0 = torch.add(first, conditioning).relu_()
        a1 = torch.addmm(b1, a0, w1.t()).relu_()
        a2 = torch.addmm(b2, a1, w2.t()).relu_()
        grad = torch.addmm(bo, a2, wo.t())  # the logits, until they become their gradient
        column = targets.unsqueeze(1)
        picked = grad.gather(1, column)
        top = grad.amax(1, keepdim=True)
        total = grad.sub_(top).exp_().sum(1, keepdim=True)
        loss = (total.log() + top - picked).sum() * scale
        grad.mul_(total.reciprocal_().mul_(scale))
        grad.scatter_add_(1, column, torch.full_like(picked, -scale))
        ctx.save_for_backward(a0, a1, a2, grad, w1, w2, wo)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, upstream: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        a0, a1, a2, grad, w1, w2, wo = ctx.saved_tensors
        if upstream.item() != 1.0:
            grad = grad * upstream
        grads: list[torch.Tensor] = []
        d = grad
        for weight, activation in ((wo, a2), (w2, a1), (w1, a0)):
            grads += [d.sum(0), d.t().mm(activation)]  # bias, weight
            d = d.mm(weight)
            _relu_backward_into(d, activation, 0.0, grad_input=d)
        db_o, dw_o, db2, dw2, db1, dw1 = grads
        return d, d, None, None, dw1, db1, dw2, db2, dw_o, db_o


def head_loss(
    tier: torch.nn.Module,
    first: torch.Tensor,
    conditioning: torch.Tensor,
    targets: torch.Tensor,
    scale: float,
    *,
    fused: bool = True,
) -> torch.Tensor:
    """``scale`` times the summed cross-entropy (nats) of the sample tier's MLP on ``first``
    (the first layer's output) plus ``conditioning`` (both (..., H)) against ``targets``
    (...): one fused node when training float32 on the CPU (and ``fused``), else through
    autograd (the tier's own MLP, then ``F.cross_entropy``; what benchmarks compare with)."""
    hidden = first.shape[-1]
    first = first.reshape(-1, hidden)
    conditioning = conditioning.reshape(-1, hidden)
    targets = targets.reshape(-1)
    cpu_float = first.device.type == "cpu" and first.dtype == torch.float32
    if fused and cpu_float and torch.is_grad_enabled():
        layers = (*tier.hidden, tier.output)  # always two hidden layers
        weights = [p for layer in layers for p in (layer.weight, layer.bias)]
        return _HeadLoss.apply(first, conditioning, targets, scale, *weights)
    logits = tier.head(first + conditioning)  # (targets, levels)
    return F.cross_entropy(logits, targets, reduction="sum") * scale
