"""What a listener would notice about a clip, as numbers: its level, how much of it is near
silence, how noise-like its spectrum is (flatness), where its spectrum's weight lies
(centroid)."""

from __future__ import annotations

import numpy as np
import torch

# STFT of 1024-sample frames (64 ms at 16 kHz), hop 256.
FRAME = 1024
HOP = 256
# Frames quieter than this many dB below the clip's loudest frame are left out of the
# spectral figures (silence has no spectrum worth averaging).
FLOOR_DB = 50.0


def level_dbfs(audio: np.ndarray | torch.Tensor) -> float:
    """RMS level in dB relative to full scale (-240 for digital silence)."""
    samples = np.asarray(audio, dtype=np.float64)
    rms = float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0
    return 20 * float(np.log10(rms + 1e-12))


# Near silence is judged in frames of this length, as frames this far below the level of
# the audio the model learned.
QUIET_FRAME_SECONDS = 0.064
QUIET_FRAME_DB = 40.0


def quiet_share(audio: np.ndarray | torch.Tensor, rate: int, floor_dbfs: float) -> float:
    """Share of the clip's :data:`QUIET_FRAME_SECONDS` frames whose RMS level lies below
    ``floor_dbfs`` (a clip shorter than one frame is one frame)."""
    samples = np.asarray(audio, dtype=np.float64).reshape(-1)
    frame = max(1, round(QUIET_FRAME_SECONDS * rate))
    if samples.size >= frame:
        frames = samples[: samples.size // frame * frame].reshape(-1, frame)
    else:
        frames = samples.reshape(1, -1)
    levels = 10 * np.log10(np.mean(np.square(frames), axis=1) + 1e-24)
    return float(np.mean(levels < floor_dbfs))


def spectral_stats(audio: np.ndarray | torch.Tensor, sample_rate: int) -> dict[str, float]:
    """Spectral flatness (0: tonal, 1: white noise) and centroid (Hz), averaged over the
    frames within :data:`FLOOR_DB` of the loudest, and the RMS level (dBFS)."""
    signal = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    if signal.numel() < FRAME:
        signal = torch.nn.functional.pad(signal, (0, FRAME - signal.numel()))
    window = torch.hann_window(FRAME)
    spectrum = torch.stft(signal, FRAME, HOP, window=window, return_complex=True)
    power = spectrum.abs().pow(2).T + 1e-12  # (frames, bins)
    energy = power.sum(dim=1)
    power = power[energy > energy.max() * 10 ** (-FLOOR_DB / 10)]
    flatness = torch.exp(torch.log(power).mean(dim=1)) / power.mean(dim=1)
    freqs = torch.linspace(0, sample_rate / 2, power.shape[1])
    centroid = (power * freqs).sum(dim=1) / power.sum(dim=1)
    return {
        "flatness": float(flatness.mean()),
        "centroid_hz": float(centroid.mean()),
        "level_dbfs": level_dbfs(audio),
    }
