"""Where a session starts from, other than from scratch: a checkpoint of its own run
(resume: weights, optimizer, RNG and run state) or another run's checkpoint or export
(fine-tuning: its weights, and optionally Adam's state).
"""

from __future__ import annotations

import torch

from samplernn_cli.checkpoint import Checkpoint
from samplernn_cli.errors import CheckpointError
from samplernn_cli.model import SampleRNN
from samplernn_cli.training.averaging import WeightAverage
from samplernn_cli.training.state import RunState


def restore_run(
    checkpoint: Checkpoint,
    model: SampleRNN,
    optimizer: torch.optim.Optimizer,
    *,
    average: WeightAverage | None,
    device: torch.device,
    iterations_per_epoch: int,
    rows: slice | None,
) -> RunState:
    """Load ``checkpoint``'s weights into ``model`` (and the weight average), its state into
    ``optimizer`` and its RNG state into this process; returns the run state it recorded.

    Args:
        iterations_per_epoch: of this session's data plan, which must be the checkpoint's.
        rows: this process's rows of the batch under torchrun (of the RNN state carried
            over), None in one process.

    Raises:
        CheckpointError: the data plan differs, or the training state is incomplete or
            damaged.
    """
    per_epoch = checkpoint.progress.iterations_per_epoch
    if per_epoch is not None and per_epoch != iterations_per_epoch:
        raise CheckpointError(
            f"{checkpoint.path}: the data plan differs ({per_epoch} iterations per epoch "
            f"then, {iterations_per_epoch} now); is this the same input?"
        )
    try:
        model.load_state_dict(checkpoint.training_weights)
        if average is not None:
            average.load(checkpoint.weights, checkpoint.progress.average_updates or 0)
        optimizer.load_state_dict(checkpoint.optimizer_state)
        state = RunState.from_checkpoint(checkpoint, device)
        if rows is not None and state.rnn_state is not None:
            state.rnn_state = [
                None if s is None else tuple(t[:, rows].contiguous() for t in s)
                for s in state.rnn_state
            ]
        torch.set_rng_state(checkpoint.rng["torch"])
        if device.type == "cuda" and "cuda" in checkpoint.rng:
            torch.cuda.set_rng_state(checkpoint.rng["cuda"], device)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(
            f"{checkpoint.path} cannot be resumed: its training state is incomplete or "
            f"damaged ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    return state


def start_weights(
    parent: Checkpoint,
    model: SampleRNN,
    optimizer: torch.optim.Optimizer | None,
    average: WeightAverage | None,
) -> None:
    """Load ``parent``'s weights into ``model`` (the weight average starts again from them)
    and, given an ``optimizer``, Adam's state.

    Raises:
        CheckpointError: ``optimizer`` is given and ``parent`` is an export, which has no
            optimizer state; or the weights do not fit the model.
    """
    if optimizer is not None and parent.optimizer_state is None:
        raise CheckpointError(
            f"{parent.path} is an exported model without optimizer state; fine-tune it "
            "with a fresh optimizer (drop --init-optimizer) or use its training checkpoint"
        )
    try:
        # Half-precision weights of an export are widened to float32 as they are copied.
        model.load_state_dict(parent.weights)
        if average is not None:
            average.restart()
        if optimizer is not None:
            optimizer.load_state_dict(parent.optimizer_state)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{parent.path} cannot initialise this model ({first})") from None
