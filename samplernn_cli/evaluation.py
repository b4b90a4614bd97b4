"""Scoring audio with a model: the negative log-likelihood in bits per sample.

:func:`evaluate_bits` scores stretches of codes the way validation does during training;
:func:`evaluate_files` is ``samplernn evaluate``: audio goes through exactly the processing
the training audio went through (mono, resampled to the checkpoint's rate, peak-normalised if
training normalised, quantized) and is scored like validation: segments of the training
sequence length, each from a reset state, in the same steps. With ``held_out`` the file is
split as training split it and only its held-out tail is scored, which reproduces the run's
validation figure for that checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from samplernn_cli.audio import read_audio
from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import AudioConfig
from samplernn_cli.data.plan import read_rows
from samplernn_cli.data.split import Segment, tail_length, whole_chunks
from samplernn_cli.device import resolve_device
from samplernn_cli.errors import AudioError, UsageError
from samplernn_cli.gain import choose_gain
from samplernn_cli.model import ModelState, SampleRNN, detach_state

# Nats per bit: losses are computed in nats and reported in bits per sample.
LOG2 = math.log(2.0)
# Evaluation runs forward only, in steps of about EVAL_STEP_SAMPLES targets per segment and
# at most EVAL_BATCH_SAMPLES targets per forward call (about the memory of a training step
# at the default size).
EVAL_STEP_SAMPLES = 8192
EVAL_BATCH_SAMPLES = 131072


@torch.no_grad()
def evaluate_bits(
    model: SampleRNN,
    codes: Sequence[np.ndarray | torch.Tensor],
    segments: Sequence[Segment],
    *,
    sequence_length: int,
    chunk_length: int,
    should_stop: Callable[[], bool] | None = None,
) -> float | None:
    """Negative log-likelihood of the ``segments`` of ``codes`` under ``model``, in bits per
    sample.

    Each segment is cut into pieces of ``sequence_length`` samples (or of its own length in
    whole chunks, if shorter), each evaluated like a training sequence (state reset at its
    start, carried across its chunks, the real audio of the same file before it as
    context). A segment's last piece is padded and the padding is not counted. Returns None
    when ``should_stop`` fires.
    """
    total = sum(s.length for s in segments)
    if total == 0:
        raise ValueError("nothing to evaluate")
    sequence_length = max(chunk_length, sequence_length // chunk_length * chunk_length)
    # Pieces of each segment, grouped by length: a segment's pieces are no longer than the
    # segment (in whole chunks), so a short segment is not padded to a long piece, and each
    # segment is cut the same way whatever other segments are scored with it.
    groups: dict[int, list[tuple[int, int, int]]] = {}
    for segment in segments:
        length = min(sequence_length, math.ceil(segment.length / chunk_length) * chunk_length)
        for position in range(segment.start, segment.end, length):
            piece = (segment.file, position, min(length, segment.end - position))
            groups.setdefault(length, []).append(piece)
    nll_sum = torch.zeros((), dtype=torch.float64)
    for length, pieces in groups.items():
        part = _evaluate_pieces(model, codes, pieces, length, chunk_length, should_stop)
        if part is None:
            return None
        nll_sum += part
    return float(nll_sum) / total / LOG2


def _evaluate_pieces(
    model: SampleRNN,
    codes: Sequence[np.ndarray | torch.Tensor],
    pieces: list[tuple[int, int, int]],
    sequence_length: int,
    chunk_length: int,
    should_stop: Callable[[], bool] | None,
) -> torch.Tensor | None:
    """Summed NLL (nats) of (file, position, counted samples) pieces of one length."""
    device = next(model.parameters()).device
    history = model.history
    zero = model.quantizer.zero_code
    # Forward-only steps may be longer than a training chunk (the state is carried either
    # way, so the figure is the same).
    step = min(sequence_length, chunk_length * max(1, EVAL_STEP_SAMPLES // chunk_length))
    batch_size = max(1, EVAL_BATCH_SAMPLES // step)
    nll_sum = torch.zeros((), dtype=torch.float64)
    for first in range(0, len(pieces), batch_size):
        group = pieces[first : first + batch_size]
        rows = read_rows(
            codes, [(f, p) for f, p, _ in group], before=history, length=sequence_length,
            fill=zero,
        ).to(device)  # fmt: skip
        counted = torch.arange(sequence_length) < torch.tensor([n for _, _, n in group])[:, None]
        counted = counted.to(device)
        state: ModelState | None = None
        for start in range(0, sequence_length, step):
            if should_stop is not None and should_stop():
                return None
            length = min(step, sequence_length - start)
            window = rows[:, start : start + history + length]
            logits, state = model(window, state)
            state = detach_state(state)
            nll = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(),
                window[:, history:].reshape(-1),
                reduction="none",
            )
            nll_sum += (nll * counted[:, start : start + length].reshape(-1)).sum().cpu()
    return nll_sum


@dataclass(frozen=True)
class EvaluateRequest:
    checkpoint: Path
    inputs: tuple[Path, ...]
    held_out: bool = False
    device: str = "auto"
    gain: str = "training"  # see samplernn_cli.gain


def evaluate_files(request: EvaluateRequest) -> dict[str, Any]:
    """Score each input; returns per-file figures and their sample-weighted mean.

    Raises:
        CheckpointError, AudioError, UsageError: see :mod:`samplernn_cli.errors`.
    """
    if not request.inputs:
        raise UsageError("give at least one audio file to evaluate")
    checkpoint = load_checkpoint(request.checkpoint)
    if request.held_out and checkpoint.train.val_fraction == 0:
        raise UsageError("this run held nothing out (--val-fraction 0); evaluate whole files")
    device = resolve_device(request.device)
    model = checkpoint.build_model(device)
    config, train = checkpoint.model_config, checkpoint.train
    chunk = train.chunk_length(config)
    sequence = round(train.sequence_seconds * checkpoint.sample_rate)
    # Read at the file's own level; the gain is chosen per file (samplernn_cli.gain).
    audio = AudioConfig(sample_rate=checkpoint.sample_rate, normalize=False)
    if request.held_out and checkpoint.train.val_split == "files":
        raise UsageError(
            "this run held out whole files (inspect-checkpoint lists them); evaluate those "
            "files without --held-out"
        )
    # The sequence length training used (SequencePlan), which validation scored with.
    stored = checkpoint.progress.sequence_samples
    results = []
    for path in request.inputs:
        wave = read_audio(path, audio)
        gain = choose_gain(request.gain, Path(path), wave.source_peak,
                           checkpoint.audio.normalize, checkpoint.input_files)  # fmt: skip
        codes = model.quantizer.encode(wave.samples * gain.factor)
        segment = Segment(0, 0, codes.numel())
        if request.held_out:
            held = tail_length(codes.numel(), train.val_fraction, chunk)
            if codes.numel() - held < chunk:
                raise AudioError(f"{path} is too short to have been split for validation")
            segment = Segment(0, codes.numel() - held, held)
            if stored is None:  # checkpoints written before the length was stored
                sequence = whole_chunks(sequence, codes.numel() - held, chunk)
        if stored is not None:
            sequence = stored
        if segment.length == 0:
            raise AudioError(f"{path} has no samples to evaluate")
        bits = evaluate_bits(
            model, [codes], [segment], sequence_length=sequence, chunk_length=chunk
        )
        assert bits is not None  # no stop callback
        results.append(
            {
                "path": str(path),
                "samples": segment.length,
                "seconds": segment.length / checkpoint.sample_rate,
                "bits_per_sample": bits,
                "gain": gain.to_dict(),
            }
        )
    total = sum(r["samples"] for r in results)
    return {
        "checkpoint": str(checkpoint.path),
        "iteration": checkpoint.iteration,
        "sample_rate": checkpoint.sample_rate,
        "part": "held-out tail" if request.held_out else "whole files",
        "files": results,
        "samples": total,
        "bits_per_sample": sum(r["bits_per_sample"] * r["samples"] for r in results) / total,
    }
