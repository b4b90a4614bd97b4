"""The run folder's side files, and what a session tells the log when it starts.

The data examples the original tool wrote (the ground truth, one training sequence as input
and target, both on one timeline), the clips generated while training and the picture of
each generation round.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from samplernn_cli.audio import write_audio
from samplernn_cli.checkpoint import LossHistory
from samplernn_cli.config import LiveSettings, ModelConfig, TrainConfig
from samplernn_cli.data.cache import Dataset, decode_head
from samplernn_cli.data.plan import SequencePlan
from samplernn_cli.data.split import DataSplit
from samplernn_cli.generation.engine import generate_codes
from samplernn_cli.generation.sampling import GenerationStopped
from samplernn_cli.model import SampleRNN
from samplernn_cli.pictures import save_round_picture
from samplernn_cli.quantize import Quantizer
from samplernn_cli.training.runfolder import RunFolder

logger = logging.getLogger("samplernn")

# NAME_ground_truth.wav holds the first input file as the model hears it, up to this long.
GROUND_TRUTH_SECONDS = 600.0
# The ground truth of a round's picture: the loudest clip-long piece of the first training
# part's first this many seconds (the same piece every round, so rounds compare).
TRUTH_SEARCH_SECONDS = 60.0
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


@dataclass(frozen=True)
class GeneratedClips:
    """The clips of one generation round: their files and their audio (N, T)."""

    paths: list[Path]
    audio: torch.Tensor
    iteration: int
    epoch: int


def generate_clips(
    model: SampleRNN,
    folder: RunFolder,
    live: LiveSettings,
    *,
    sample_rate: int,
    seed: int,
    epoch: int,
    iteration: int,
    should_stop: Callable[[], bool],
) -> GeneratedClips | None:
    """The ``num_generated`` clips of a generation round, written as
    ``NAME_epoch_E_iter_I_N.wav`` (None if ``should_stop`` fires while they are made)."""
    num_samples = max(1, round(live.length * sample_rate))
    started = time.perf_counter()
    model.eval()
    try:
        codes = generate_codes(
            model,
            live.num_generated,
            num_samples,
            temperature=live.temperature,
            seed=seed,
            progress=lambda done, total: should_stop(),
        )
    except GenerationStopped:
        logger.warning("generation of clips interrupted")
        return None
    finally:
        model.train()
    audio = model.quantizer.decode(codes.cpu())
    paths = []
    for number in range(live.num_generated):
        path = folder.clip(epoch, iteration, number + 1)
        paths.append(write_audio(path, audio[number], sample_rate))
    seconds = time.perf_counter() - started
    rate = live.num_generated * num_samples / seconds
    logger.info(
        f"generated {live.num_generated} clips of {live.length:g} s in "
        f"{format_seconds(seconds)} ({rate:,.0f} samples/s): {paths[0].name} ..."
    )
    return GeneratedClips(paths=paths, audio=audio, iteration=iteration, epoch=epoch)


def training_piece(
    dataset: Dataset, split: DataSplit, quantizer: Quantizer, samples: int
) -> torch.Tensor:
    """(T,) float: the loudest ``samples``-long piece (by RMS, at multiples of its length) of
    the first :data:`TRUTH_SEARCH_SECONDS` of the first training part, as the model hears it
    (quantized); shorter when the training part is."""
    segment = split.train[0]
    span = min(segment.length, max(samples, round(TRUTH_SEARCH_SECONDS * dataset.sample_rate)))
    codes = dataset.files[segment.file].codes[segment.start : segment.start + span]
    audio = quantizer.decode(torch.from_numpy(np.array(codes, dtype=np.int64)))
    pieces = audio.numel() // samples
    if pieces <= 1:
        return audio[:samples]
    loudest = int(audio[: pieces * samples].reshape(pieces, samples).square().mean(1).argmax())
    return audio[loudest * samples : (loudest + 1) * samples]


def write_round_picture(
    folder: RunFolder,
    clips: GeneratedClips,
    truth: torch.Tensor,
    *,
    sample_rate: int,
    history: LossHistory,
) -> Path:
    """``NAME_epoch_E_iter_I.png``: the loss curves so far and the spectrograms of the
    round's clips beside the training audio's ``truth`` (T,)."""
    path = save_round_picture(
        folder.picture(clips.epoch, clips.iteration),
        clips=clips.audio,
        truth=truth,
        sample_rate=sample_rate,
        history=history,
        heading=f"{folder.name}: iteration {clips.iteration}, epoch {clips.epoch}",
    )
    logger.info(f"picture: {path.name}")
    return path
