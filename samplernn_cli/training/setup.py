"""Setting a session up: the model, the split of the input into training and validation
parts, the plan of the training sequences, DistributedDataParallel under torchrun, the
optimizer and the weight average, built in the order that keeps every run's random draws
the same (the model's initial weights come first, from the run's seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from samplernn_cli.data.cache import Dataset
from samplernn_cli.data.plan import SequencePlan, training_plan
from samplernn_cli.data.split import DataSplit, split_dataset
from samplernn_cli.model import SampleRNN
from samplernn_cli.training.averaging import WeightAverage
from samplernn_cli.training.distributed import Distributed
from samplernn_cli.training.requests import TrainRequest
from samplernn_cli.training.step import make_optimizer


@dataclass(frozen=True)
class Setup:
    """What a session trains, on what, and with what."""

    model: SampleRNN
    split: DataSplit
    plan: SequencePlan  # the training parts, and their copies at other speeds
    rows: slice  # this process's rows of every batch (all of them in a single process)
    ddp: torch.nn.Module | None  # ``model`` in DistributedDataParallel, under torchrun
    optimizer: torch.optim.Optimizer
    average: WeightAverage | None  # of the weights (TrainConfig.average_decay), if kept


def set_up(
    request: TrainRequest, dataset: Dataset, device: torch.device, dist: Distributed | None
) -> Setup:
    """The session's model (on ``device``), data plan and optimizer for ``request``'s
    settings and ``dataset``; under torchrun (``dist``) every rank calls this together."""
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
    return Setup(model, split, plan, rows, ddp, optimizer, average)
