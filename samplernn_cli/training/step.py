"""One training step: the loss and gradients of a truncated-BPTT chunk (in slices of bounded
memory, or through DistributedDataParallel), the optimizer, and the loop's step
(:class:`TrainingStep`) with what it does when a loss or gradient is not finite."""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F

from samplernn_cli.data.augment import jitter
from samplernn_cli.errors import TrainingError
from samplernn_cli.evaluation import LOG2
from samplernn_cli.model import ModelState, SampleRNN, StepDraws, detach_state
from samplernn_cli.model.head_loss import head_loss
from samplernn_cli.seeding import DROPOUT_SALT, mix_seed
from samplernn_cli.training.distributed import Distributed, collective
from samplernn_cli.training.state import RunState, Session

logger = logging.getLogger("samplernn")

# Activation values (batch x targets x hidden) per slice of the sample MLP in a training step:
# 16 M floats (64 MB) keeps the MLP's part of the memory small at any size, while each slice
# still feeds the matrix units large products (at the default size, 128 targets x batch 128).
MLP_SLICE_FLOATS = 16 * 2**20
# Consecutive iterations with a NaN or infinite loss or gradient before training gives up.
MAX_BAD_STEPS = 20


def forward_backward(
    model: SampleRNN,
    window: torch.Tensor,
    state: ModelState | None,
    *,
    inputs: torch.Tensor | None = None,
    draws: StepDraws | None = None,
    slice_floats: int = MLP_SLICE_FLOATS,
) -> tuple[float, ModelState]:
    """Loss and gradients of one truncated-BPTT chunk, with bounded memory.

    The frame tiers run over the whole chunk. The sample-level MLP, whose activations are
    (batch x targets x hidden) and dominate memory, runs in slices of whole bottom-tier frames
    of at most about ``slice_floats`` activation values each, together with the bottom tier's
    upsampling (whose output, one vector per target, is the largest tensor of the chunk):
    every slice's loss is back-propagated at once (into the MLP and upsampling weights, the
    bottom tier's per-frame vectors and the first layer's tables), freeing its activations,
    and the accumulated gradients then flow through the frame tiers and the tables in one
    backward pass. Same loss and gradients as one pass over the chunk, up to float summation
    order. Nothing is back-propagated when the loss is not finite.

    Args:
        window: (B, history + L) codes: the targets are its last L.
        inputs: what the model sees instead of ``window`` (same shape; input noise), or None.
        draws: the step's random draws (frame dropout, prediction noise), where it has them.

    Returns:
        The mean loss in bits per sample (NaN or infinite if so) and the state after the
        chunk (not detached).
    """
    history = model.history
    tier = model.sample_tier
    batch = window.shape[0]
    length = window.shape[1] - history
    targets = window[:, history:]
    if inputs is not None:
        window = inputs
    # (B, L, FS): the frame_size codes before each target (a view, not a copy).
    previous = window[:, history - tier.frame_size : -1].unfold(1, tier.frame_size, 1)
    step = max(1, slice_floats // (batch * tier.input.out_features))
    prediction = model.prediction(window, draws)
    if step >= length:
        conditioning, new_state = model.frame_tiers_pass(window, state, draws=draws)
        summed = tier.first_layer(previous, tier.input_tables(), prediction)
        loss = head_loss(tier, summed, conditioning, targets, 1.0 / targets.numel())
        bits = loss.item() / LOG2
        if math.isfinite(bits):
            loss.backward()
        return bits, new_state
    bottom = model.frame_tiers[0]
    features, new_state = model.frame_tiers_pass(window, state, upsample=False, draws=draws)
    frames_per_slice = max(1, step // bottom.ratio)
    tables = tier.input_tables()
    features_leaf = features.detach().requires_grad_()
    tables_leaf = tables.detach().requires_grad_()
    total = torch.zeros((), dtype=torch.float64, device=window.device)
    for first in range(0, features.shape[1], frames_per_slice):
        frames = slice(first, first + frames_per_slice)
        part = slice(first * bottom.ratio, min((first + frames_per_slice) * bottom.ratio, length))
        conditioning = bottom.upsample_frames(features_leaf[:, frames])
        predicted = None if prediction is None else prediction[:, part]
        summed = tier.first_layer(previous[:, part], tables_leaf, predicted)
        loss = head_loss(tier, summed, conditioning, targets[:, part], 1.0 / (batch * length))
        loss.backward()
        total += loss.detach()
    bits = float(total) / LOG2
    if math.isfinite(bits):
        torch.autograd.backward([features, tables], [features_leaf.grad, tables_leaf.grad])
    return bits, new_state


def distributed_forward_backward(
    ddp: torch.nn.Module,
    dist: Distributed,
    window: torch.Tensor,
    state: ModelState | None,
    history: int,
    inputs: torch.Tensor | None = None,
    draws: StepDraws | None = None,
) -> tuple[float, ModelState]:
    """One forward and one backward pass through DistributedDataParallel, which averages
    the gradients over the ranks as the backward pass produces them. (The sliced pass of
    :func:`forward_backward` runs several backward passes per step, which DDP's gradient
    hooks do not allow; each rank's share of the batch keeps the memory down instead.)
    Always back-propagates, even a non-finite loss: every rank must join the gradient
    reduction, and a NaN anywhere then makes every rank skip the step.

    Returns:
        The loss averaged over the ranks in bits per sample, and this rank's new state.
    """

    def step() -> tuple[torch.Tensor, ModelState]:
        logits, new_state = ddp(window if inputs is None else inputs, state, draws)
        targets = window[:, history:].reshape(-1)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets)
        loss.backward()  # the gradients' all-reduce happens in here
        return loss, new_state

    loss, new_state = collective(step)
    return dist.mean(loss) / LOG2, new_state


def make_optimizer(model: SampleRNN, learning_rate: float) -> torch.optim.Optimizer:
    """Adam, with PyTorch's fused implementation (one kernel for all parameters) where the
    device has one: the same update as the per-parameter loop, several times faster."""
    device = next(model.parameters()).device
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=learning_rate, fused=fused or None)


class TrainingStep:
    """The loop's optimizer step, and what it does when the loss or the gradient is not
    finite: the step is skipped (no update; the carried RNN state, which may hold NaNs, is
    dropped) with a warning, and after :data:`MAX_BAD_STEPS` skipped steps in a row training
    stops."""

    def __init__(self, session: Session, *, ddp: torch.nn.Module | None) -> None:
        """``session``: the model, its optimizer and weight average (updated after every
        step) and this process's rows of every batch; ``ddp``: the model in
        DistributedDataParallel under torchrun, None in one process."""
        self.model, self.optimizer = session.model, session.optimizer
        self.train = session.request.train
        self.device = session.device
        self.rows = session.rows
        self.average = session.average
        self.ddp = ddp
        self.dist = session.dist
        self.grad_norm = math.nan  # of the last step, before clipping (NaN: none)
        self.bad_steps = 0  # skipped steps in a row

    def take(self, window: torch.Tensor, state: RunState) -> float:
        """One optimizer step on ``window``, (B, history + L) codes on the CPU, with input
        noise if the run has it, carrying ``state.rnn_state`` on; returns the loss in bits
        per sample (may be NaN)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.grad_norm = math.nan
        train = self.train
        inputs = None if train.input_noise == 0 else jitter(
            window, train.input_noise, self.model.sample_tier.q_levels, train.seed,
            state.iteration, self.rows, train.batch_size).to(self.device)  # fmt: skip
        seed = mix_seed(mix_seed(train.seed, state.iteration), DROPOUT_SALT)
        draws = StepDraws(seed, self.rows, train.batch_size)
        window = window.to(self.device)
        if self.ddp is None:
            bits, new_state = forward_backward(
                self.model, window, state.rnn_state, inputs=inputs, draws=draws
            )
        else:
            assert self.dist is not None
            bits, new_state = distributed_forward_backward(
                self.ddp, self.dist, window, state.rnn_state, self.model.history, inputs, draws
            )
        ok = math.isfinite(bits)
        if ok:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), train.grad_clip)
            self.grad_norm = float(norm)
            ok = math.isfinite(self.grad_norm)
        if ok:
            self.optimizer.step()
            if self.average is not None:
                self.average.update()
            state.rnn_state = detach_state(new_state)
            self.bad_steps = 0
        else:
            self.optimizer.zero_grad(set_to_none=True)
            state.rnn_state = None  # the state may hold NaNs: restart these sequences
            self.bad_steps += 1
            what = "loss" if not math.isfinite(bits) else "gradient"
            logger.warning(
                f"iteration {state.iteration + 1}: non-finite {what}; step skipped "
                f"({self.bad_steps} in a row)"
            )
        return bits

    def check_divergence(self, state: RunState) -> None:
        """Stop training after :data:`MAX_BAD_STEPS` skipped steps in a row (``state`` has
        counted the last of them).

        Raises:
            TrainingError: training diverged; the message names the last good checkpoint.
        """
        if self.bad_steps >= MAX_BAD_STEPS:
            raise TrainingError(
                f"training diverged: {MAX_BAD_STEPS} iterations in a row had a non-finite "
                f"loss or gradient (up to iteration {state.iteration}); the last good "
                f"checkpoint is {state.last_checkpoint or 'none'}; lower learning_rate "
                "and resume from it"
            )
