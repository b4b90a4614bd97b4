"""An exponential moving average of the weights (TrainConfig.average_decay).

The weights after each step move by the step's noise as much as by what the step learned;
their average over the last thousand or so steps scores better on held-out audio than any
of them (Polyak averaging). Training keeps updating the weights as before; validation, the
generated clips, the best model and every checkpoint's ``model`` use the average, and a
checkpoint keeps the weights training goes on from as ``training_weights``.

``torch.optim.swa_utils.AveragedModel`` does the same with a second copy of the whole
module; this keeps only the parameters' averages (no buffers, no second module to move
between devices), updates them in one fused ``_foreach_lerp_`` per step, and swaps them
into the model for validation, so exact resume needs nothing beyond two entries of the
checkpoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


class WeightAverage:
    """The moving average of a model's parameters, updated after every optimizer step.

    Early on the average would remember the random initial weights for thousands of steps,
    so step ``n`` (counting from 1) uses the decay ``min(decay, (1 + n) / (10 + n))``: the
    average follows the weights closely at first and settles at ``decay`` after a few
    hundred steps.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.model = model
        self.decay = decay
        self.names = [name for name, _ in model.named_parameters()]
        self.average = [p.detach().clone() for p in model.parameters()]
        self.updates = 0

    def update(self) -> None:
        """Move the average towards the model's current parameters (after a step)."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            params = [p.detach() for p in self.model.parameters()]
            torch._foreach_lerp_(self.average, params, 1.0 - decay)

    def restart(self) -> None:
        """Start the average again from the model's current parameters (after they were
        replaced: the plateau schedule went back to the best model)."""
        with torch.no_grad():
            torch._foreach_copy_(self.average, [p.detach() for p in self.model.parameters()])

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The model with the averaged parameters inside the block, its own afterwards."""
        params = [p.detach() for p in self.model.parameters()]
        own = [p.clone() for p in params]
        with torch.no_grad():
            torch._foreach_copy_(params, self.average)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(params, own)

    def weights(self) -> dict[str, torch.Tensor]:
        """The model's state dict with the averaged parameters (clones)."""
        state = self.model.state_dict()
        for name, value in zip(self.names, self.average, strict=True):
            state[name] = value.clone()
        return state

    def load(self, weights: dict[str, torch.Tensor], updates: int) -> None:
        """Take the average from a checkpoint's ``model`` weights and its update count."""
        with torch.no_grad():
            for name, value in zip(self.names, self.average, strict=True):
                value.copy_(weights[name])
        self.updates = updates


def averaged(average: WeightAverage | None) -> contextlib.AbstractContextManager[None]:
    """The model with the run's averaged weights inside the block (if the run averages them)."""
    return contextlib.nullcontext() if average is None else average.applied()
