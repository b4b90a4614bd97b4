"""How a session starts: what it trains, on what and with what (:func:`set_up`, built in the
order that keeps every run's random draws the same: the model's initial weights come first,
from the run's seed), and where it starts from other than from scratch: a checkpoint of its
own run (:func:`restore_run`: weights, optimizer, RNG and run state) or another run's
checkpoint or export (fine-tuning: :func:`fine_tune_settings`, one rule for the command line
and for Python callers of :func:`samplernn_cli.training.session.train`, and
:func:`start_weights`: its weights, and optionally Adam's state).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import torch

from samplernn_cli.config import AudioConfig, ModelConfig, TrainConfig
from samplernn_cli.config.rules import declarations, flag
from samplernn_cli.data.cache import Dataset
from samplernn_cli.data.plan import training_plan
from samplernn_cli.data.split import split_dataset
from samplernn_cli.errors import ConfigError
from samplernn_cli.model import SampleRNN
from samplernn_cli.training.distributed import Distributed
from samplernn_cli.training.requests import TrainRequest
from samplernn_cli.training.state import Session, WeightAverage
from samplernn_cli.training.step import make_optimizer

if TYPE_CHECKING:
    from samplernn_cli.checkpoint import Checkpoint
from samplernn_cli.checkpoint import Checkpoint
from samplernn_cli.errors import CheckpointError
from samplernn_cli.training.state import RunState


def set_up(
    request: TrainRequest, dataset: Dataset, device: torch.device, dist: Distributed | None
) -> tuple[Session, torch.nn.Module | None]:
    """The session's model (on ``device``), data plan and optimizer for ``request``'s
    settings and ``dataset``, and under torchrun (``dist``; every rank calls this together)
    the model in DistributedDataParallel (None in one process: kept out of the session,
    since the step alone uses it and it must be dropped before the process group is left)."""
    model_config, train_config = request.model, request.train
    torch.manual_seed(train_config.seed)
    model = SampleRNN(model_config).to(device)
    model.set_dropout(train_config.frame_dropout)
    model.set_prediction_noise(train_config.prediction_noise)
    split = split_dataset(
        [f.length for f in dataset.files],
        [f.source.name for f in dataset.files],
        val_fraction=train_config.val_fraction,
        val_split=train_config.val_split,
        chunk_length=train_config.chunk_length(model_config),
        sample_rate=dataset.sample_rate,
        seed=train_config.seed,
    )
    plan = training_plan(
        dataset.codes,
        split.train,
        train_config,
        model_config,
        model.quantizer,
        dataset.sample_rate,
    )
    rows = slice(None) if dist is None else dist.rows(train_config.batch_size)
    # A learned initial state is used only at the first chunk of a sequence.
    ddp = None if dist is None else dist.wrap(model, partly_used=model_config.learn_h0)
    optimizer = make_optimizer(model, request.live.learning_rate)
    decay = train_config.average_decay
    average = WeightAverage(model, decay) if decay else None
    session = Session(request, device, dataset, dist, model, split, plan, rows, optimizer, average)
    return session, ddp


def fine_tune_settings(
    parent: Checkpoint,
    model: ModelConfig,
    audio: AudioConfig,
    train: TrainConfig,
    chosen: Collection[str] | None = None,
    *,
    preset: str | None = None,
) -> tuple[ModelConfig, AudioConfig, TrainConfig]:
    """The model, audio and train settings of a run fine-tuned from ``parent``: the parent's
    architecture and sample rate, and of the train settings those chosen, else (for those
    declared ``inherited``) the parent's.

    ``chosen`` names the model, audio and train settings the caller chose (on the command
    line: the options given); the others are defaults, which the parent's replace. None: all
    of them were chosen.

    Raises:
        ConfigError: ``preset`` is set (a preset chooses an architecture), or a chosen model
            setting or sample rate differs from the parent's.
    """
    if preset is not None:
        raise ConfigError(
            f"--preset sets the architecture, which --init-from takes from {parent.path.name}; "
            "drop --preset"
        )

    def is_chosen(name: str) -> bool:
        return chosen is None or name in chosen

    for field in fields(ModelConfig):
        value, kept = getattr(model, field.name), getattr(parent.model_config, field.name)
        if is_chosen(field.name) and value != kept:
            raise ConfigError(
                f"{flag(ModelConfig, field.name)} {_shown(value)} conflicts with "
                f"{parent.path.name}, whose model has {_shown(kept)}; a fine-tuned model "
                "keeps its parent's architecture (drop the option, or train from scratch "
                "without --init-from)"
            )
    if is_chosen("sample_rate") and audio.sample_rate != parent.sample_rate:
        raise ConfigError(
            f"{parent.path.name} runs at {parent.sample_rate} Hz, and a fine-tuned model keeps "
            "its parent's sample rate; drop --sample-rate/--keep-sample-rate"
        )
    inherited = {
        name: getattr(parent.train, name)
        for name, declared in declarations(TrainConfig).items()
        if declared.inherited and not is_chosen(name)
    }
    return (
        parent.model_config,
        replace(audio, sample_rate=parent.sample_rate),
        replace(train, **inherited),
    )


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


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
