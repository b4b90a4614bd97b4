"""The run folder's starting files, and what a session tells the log when it starts: the
data examples the original tool wrote (the ground truth, one training sequence as input and
target, both on one timeline) and the description of the input, model, data plan and folder.
"""

from __future__ import annotations

import logging
import math

import torch

from samplernn_cli.audio import write_audio
from samplernn_cli.config import ModelConfig, TrainConfig
from samplernn_cli.data.cache import Dataset, decode_head
from samplernn_cli.data.plan import SequencePlan
from samplernn_cli.data.split import DataSplit
from samplernn_cli.model import SampleRNN
from samplernn_cli.run.folder import RunFolder

logger = logging.getLogger("samplernn")

# NAME_ground_truth.wav holds the first input file as the model hears it, up to this long.
GROUND_TRUTH_SECONDS = 600.0
# Input files listed one by one in the log when training starts (inspect-checkpoint lists all).
MAX_LISTED_INPUTS = 10


def format_seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def write_data_examples(
    folder: RunFolder, dataset: Dataset, plan: SequencePlan, model: SampleRNN
) -> None:
    """Ground truth and one training example, as the original tool documents."""
    rate, quantizer, history = dataset.sample_rate, model.quantizer, model.history
    head = decode_head(dataset.files[0], quantizer, round(GROUND_TRUTH_SECONDS * rate))
    write_audio(folder.ground_truth, head, rate)
    sequence = plan.batch(0, 0)[0]  # (history + S,) the first sequence
    inputs = quantizer.decode(sequence[:-1])
    targets = quantizer.decode(sequence[history:])
    write_audio(folder.input_example, inputs, rate)
    write_audio(folder.target_example, targets, rate)
    # Stereo on one timeline: input on the left, target (one sample ahead) on the right.
    overlap = torch.zeros(sequence.numel(), 2)
    overlap[:-1, 0] = inputs
    overlap[history:, 1] = targets
    write_audio(folder.overlap_example, overlap, rate)


def describe_run(
    folder: RunFolder,
    dataset: Dataset,
    split: DataSplit,
    plan: SequencePlan,
    model: SampleRNN,
    train_config: TrainConfig,
    normalize: bool,
    device: torch.device,
) -> None:
    """Log the inputs, the model, the data plan and the run folder."""
    files, rate = dataset.files, dataset.sample_rate
    for number, file in enumerate(files[:MAX_LISTED_INPUTS], 1):
        source = file.source
        channels = "mono" if source.channels == 1 else f"{source.channels} channels to mono"
        gain = f", {20 * math.log10(file.gain):+.1f} dB" if file.gain != 1 else ""
        label = "input" if len(files) == 1 else f"input {number}/{len(files)}"
        logger.info(
            f"{label} {source.name}: {source.duration:.1f} s at {source.sample_rate} Hz, "
            f"{channels}{gain}"
        )
    if len(files) > MAX_LISTED_INPUTS:
        logger.info(f"... and {len(files) - MAX_LISTED_INPUTS} more input files")
    total = dataset.total_samples / rate
    logger.info(
        f"training at {rate} Hz on {len(files)} file{'s' if len(files) > 1 else ''} "
        f"({format_seconds(total)})" + (", each peak-normalised" if normalize else "")
    )
    if split.skipped:
        names = ", ".join(files[i].source.name for i in split.skipped[:5])
        more = len(split.skipped) - 5
        logger.warning(
            f"{len(split.skipped)} input files are too short to train on and are "
            f"skipped: {names}" + (f" and {more} more" if more > 0 else "")
        )
    if plan.limited_by_shortest and len(files) > 1:
        logger.warning(
            f"sequences are {plan.sequence_length / rate:.2f} s, shorter than "
            f"--sequence-length {plan.requested_length / rate:g}, because the "
            "shortest training file is that short; remove very short files to learn "
            "longer context"
        )
    params = sum(p.numel() for p in model.parameters())
    config: ModelConfig = model.config
    logger.info(f"model: {config.describe()}, {params:,} parameters, on {device}")
    what = "whole files" if train_config.val_split == "files" else "file ends"
    logger.info(
        f"data: {split.train_samples / rate:.1f} s training, "
        f"{split.val_samples / rate:.1f} s validation ({what}); "
        f"{plan.num_sequences} sequences of {plan.sequence_length / rate:.2f} s "
        f"per epoch in batches of {plan.batch_size}; {plan.chunks_per_sequence} chunks of "
        f"{plan.chunk_length} samples per sequence; {plan.iterations_per_epoch} "
        "iterations per epoch"
    )
    logger.info(f"run folder: {folder.path}")
