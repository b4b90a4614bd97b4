"""``samplernn evaluate``: the model's negative log-likelihood of audio, in bits per sample.

Audio goes through exactly the processing the training audio went through (mono, resampled to
the checkpoint's rate, peak-normalised if training normalised, quantized) and is scored like
validation: segments of the training sequence length, each from a reset state, in the same
steps. With ``held_out`` the file is split as training split it and only its held-out tail
is scored, which reproduces the run's validation figure for that checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samplernn_cli.audio import read_audio
from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import AudioConfig
from samplernn_cli.data import Segment, evaluate_bits, tail_length, whole_chunks
from samplernn_cli.device import resolve_device
from samplernn_cli.errors import AudioError, UsageError


@dataclass(frozen=True)
class EvaluateRequest:
    checkpoint: Path
    inputs: tuple[Path, ...]
    held_out: bool = False
    device: str = "auto"


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
    audio = AudioConfig(sample_rate=checkpoint.sample_rate, normalize=checkpoint.audio.normalize)
    if request.held_out and checkpoint.train.val_split == "files":
        raise UsageError(
            "this run held out whole files (inspect-checkpoint lists them); evaluate those "
            "files without --held-out"
        )
    # The sequence length training used (SequencePlan), which validation scored with.
    stored = checkpoint.payload["progress"].get("sequence_samples")
    results = []
    for path in request.inputs:
        wave = read_audio(path, audio)
        codes = model.quantizer.encode(wave.samples)
        segment = Segment(0, 0, codes.numel())
        if request.held_out:
            held = tail_length(codes.numel(), train.val_fraction, chunk)
            if codes.numel() - held < chunk:
                raise AudioError(f"{path} is too short to have been split for validation")
            segment = Segment(0, codes.numel() - held, held)
            if stored is None:  # checkpoints written before the length was stored
                sequence = whole_chunks(sequence, codes.numel() - held, chunk)
        if stored is not None:
            sequence = int(stored)
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
