"""Pictures of a run, drawn with matplotlib.

- :func:`save_round_picture`: the PNG of a generation round: the loss curves so far above
  the mel spectrograms of a piece of the training audio and of the clips just generated.
- :func:`save_loss_plot`: the loss curves of a checkpoint (``inspect-checkpoint --plot``).
- :func:`spectrogram_pair`: one clip's spectrogram beside the training audio's, as an RGB
  array (TensorBoard's image summaries).

matplotlib is imported only when a picture is drawn (``samplernn --help`` never loads it),
and only its Agg renderer is used: no display, no pyplot state.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torchaudio.functional as AF

from samplernn_cli.errors import UsageError
from samplernn_cli.fileio import atomic_write
from samplernn_cli.history import LossHistory

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# The formats a picture may be written in (from the file's extension).
PICTURE_FORMATS = ("png", "svg", "pdf")
# A round's PNG draws at most this many clips (a round may make thousands).
MAX_CLIPS_DRAWN = 8
# Every spectrogram of a picture shares one colour scale: this many dB below the loudest.
DYNAMIC_RANGE_DB = 80.0
MAX_MEL_BANDS = 80
# Longer loss histories are drawn as the means of this many equal runs of iterations.
CURVE_POINTS = 1000
# The training figure in a round's title: the mean of the last this many iterations.
RECENT_ITERATIONS = 50
DPI = 100
COLOURMAP = "magma"
FREQUENCY_TICKS_HZ = (50, 100, 200, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000)


@dataclass(frozen=True)
class Spectrogram:
    """A mel power spectrogram in dB: ``db`` is (bands, frames), ``band_hz`` (bands,) the
    centre frequency of each band."""

    db: np.ndarray
    band_hz: np.ndarray
    seconds: float


def mel_spectrogram(audio: torch.Tensor, sample_rate: int) -> Spectrogram:
    """The mel spectrogram of (T,) float audio: a Hann window of about 64 ms, hop of a
    quarter window, power in dB (relative to full scale)."""
    n_fft = 2 ** max(8, round(math.log2(sample_rate * 0.064)))  # 1024 at 16 kHz
    bands = min(MAX_MEL_BANDS, n_fft // 8)
    samples = audio.detach().float().cpu().reshape(-1)
    spectrum = torch.stft(
        samples,
        n_fft,
        hop_length=n_fft // 4,
        window=torch.hann_window(n_fft),
        center=True,
        # Reflecting avoids a click at either end; a clip shorter than half a window has
        # too little to reflect and is padded with silence.
        pad_mode="reflect" if samples.numel() > n_fft // 2 else "constant",
        return_complex=True,
    )  # (n_fft // 2 + 1, frames)
    power = spectrum.abs() ** 2
    with warnings.catch_warnings():  # very low rates leave a band empty: drawn as silence
        warnings.simplefilter("ignore")
        fbanks = AF.melscale_fbanks(
            n_fft // 2 + 1, 0.0, sample_rate / 2, bands, sample_rate
        )  # (n_fft // 2 + 1, bands): triangles of height 1
    mel = fbanks.T @ power  # (bands, frames)
    # A full-scale sine has power (n_fft / 4)^2 in its bin with a Hann window: about 0 dB.
    db = 10 * torch.log10(mel.clamp_min(1e-12) / (n_fft / 4) ** 2)
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    return Spectrogram(
        db=db.numpy(),
        band_hz=freqs[fbanks.argmax(dim=0)].numpy(),
        seconds=samples.numel() / sample_rate,
    )


def _colour_range(spectrograms: Sequence[Spectrogram]) -> tuple[float, float]:
    top = max(float(s.db.max()) for s in spectrograms)
    return top - DYNAMIC_RANGE_DB, top


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _draw_spectrogram(
    ax: Axes, spectrogram: Spectrogram, limits: tuple[float, float], title: str
) -> Any:
    bands = spectrogram.db.shape[0]
    image = ax.imshow(
        spectrogram.db,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        cmap=COLOURMAP,
        vmin=limits[0],
        vmax=limits[1],
        extent=(0.0, spectrogram.seconds, -0.5, bands - 0.5),
    )
    ticks: list[tuple[float, int]] = []  # (band, Hz), at least a tenth of the height apart
    for hz in FREQUENCY_TICKS_HZ:
        if spectrogram.band_hz[0] <= hz <= spectrogram.band_hz[-1]:
            band = float(np.interp(hz, spectrogram.band_hz, np.arange(bands)))
            if not ticks or band - ticks[-1][0] >= bands / 10:
                ticks.append((band, hz))
    ax.set_yticks(
        [band for band, _ in ticks],
        [f"{hz // 1000}k" if hz >= 1000 else str(hz) for _, hz in ticks],
    )
    ax.set_ylabel("Hz (mel scale)")
    ax.set_xlabel("seconds")
    ax.set_title(title, fontsize="medium")
    return image


def downsample_curve(points: list[tuple[int, float]]) -> tuple[list[int], list[float], int]:
    """The points to draw, and how many iterations each one averages."""
    if len(points) <= CURVE_POINTS:
        return [i for i, _ in points], [v for _, v in points], 1
    size = len(points) / CURVE_POINTS
    xs, ys = [], []
    for bucket in range(CURVE_POINTS):
        part = points[int(bucket * size) : int((bucket + 1) * size)]
        xs.append(part[-1][0])
        ys.append(sum(v for _, v in part) / len(part))
    return xs, ys, math.ceil(size)


def _draw_losses(ax: Axes, history: LossHistory) -> None:
    train = history.finite_losses()
    val = [(i, v) for i, v in history.validations if math.isfinite(v)]
    if train:
        xs, ys, each = downsample_curve(train)
        label = "training" if each == 1 else f"training (means of about {each} iterations)"
        ax.plot(xs, ys, linewidth=0.8, color="tab:blue", label=label)
    if val:
        ax.plot(*zip(*val, strict=True), marker="o", markersize=3, linewidth=1.2,
                color="tab:orange", label="validation")  # fmt: skip
    if not train and not val:
        ax.text(0.5, 0.5, "no losses recorded", transform=ax.transAxes, ha="center", va="center")
    else:
        ax.legend(loc="upper right", fontsize="small")
    ax.set_xlabel("iteration")
    ax.set_ylabel("bits per sample")
    ax.grid(alpha=0.3)


def loss_title(history: LossHistory) -> str:
    """'training 3.412, validation 3.530 bits per sample', from what the history holds."""
    parts = []
    recent = [v for v in history.losses[-RECENT_ITERATIONS:] if math.isfinite(v)]
    if recent:
        mean = sum(recent) / len(recent)
        over = "" if len(recent) == 1 else f" (mean of the last {len(recent)} iterations)"
        parts.append(f"training {mean:.3f}{over}")
    if history.last_val is not None:
        parts.append(f"validation {history.last_val[1]:.3f} (iteration {history.last_val[0]})")
    return ", ".join(parts) + " bits per sample" if parts else "no losses recorded"


def _save(figure: Figure, path: Path, *, overwrite: bool = True) -> Path:
    """Write the figure atomically, in the format its extension names.

    Raises:
        UsageError: the extension is not one of :data:`PICTURE_FORMATS`.
        OutputError: the file cannot be written (or exists, without ``overwrite``).
    """
    kind = path.suffix.lower().lstrip(".")
    if kind not in PICTURE_FORMATS:
        raise UsageError(
            f"{path}: a picture is written as " + ", ".join(f".{k}" for k in PICTURE_FORMATS)
        )
    return atomic_write(
        path,
        lambda handle: figure.savefig(handle, format=kind, dpi=DPI),
        what="picture",
        overwrite=overwrite,
    )


def save_round_picture(
    path: Path,
    *,
    clips: torch.Tensor,
    truth: torch.Tensor,
    sample_rate: int,
    history: LossHistory,
    heading: str,
    labels: Sequence[str] | None = None,
) -> Path:
    """One generation round at a glance: the loss curves so far, then the spectrograms of
    ``truth`` (T,) and of the first :data:`MAX_CLIPS_DRAWN` of ``clips`` (N, T), two to a
    row, on one colour scale; ``labels`` (one per clip) are added to the clips' titles.

    Raises:
        OutputError: the file cannot be written.
    """
    shown = clips[:MAX_CLIPS_DRAWN]
    spectrograms = [mel_spectrogram(truth, sample_rate)]
    spectrograms += [mel_spectrogram(clip, sample_rate) for clip in shown]
    titles = ["training audio (ground truth)"] + [
        f"clip {n} of {clips.shape[0]}" + (f": {labels[n - 1]}" if labels else "")
        for n in range(1, shown.shape[0] + 1)
    ]
    rows = math.ceil(len(spectrograms) / 2)
    figure = _figure(12.0, 3.2 + 2.4 * rows)
    grid = figure.add_gridspec(rows + 1, 2, height_ratios=[1.3] + [1.0] * rows)
    figure.suptitle(f"{heading}\n{loss_title(history)}", fontsize="large")
    _draw_losses(figure.add_subplot(grid[0, :]), history)
    limits = _colour_range(spectrograms)
    axes = []
    for index, (spectrogram, title) in enumerate(zip(spectrograms, titles, strict=True)):
        ax = figure.add_subplot(grid[1 + index // 2, index % 2])
        image = _draw_spectrogram(ax, spectrogram, limits, title)
        axes.append(ax)
    figure.colorbar(image, ax=axes, label="dB (full scale)", shrink=0.9)
    return _save(figure, path)


def save_loss_plot(path: Path, history: LossHistory, heading: str, *, overwrite: bool) -> Path:
    """The training and validation curves of ``history``, written to ``path`` (.png, .svg
    or .pdf).

    Raises:
        UsageError: another extension.
        OutputError: the file cannot be written, or exists and ``overwrite`` is False.
    """
    figure = _figure(10.0, 5.0)
    figure.suptitle(f"{heading}\n{loss_title(history)}", fontsize="large")
    _draw_losses(figure.add_subplot(), history)
    return _save(figure, path, overwrite=overwrite)


def spectrogram_pair(
    clip: torch.Tensor, truth: torch.Tensor, sample_rate: int, title: str
) -> np.ndarray:
    """(H, W, 3) uint8: the spectrogram of ``truth`` (T,) beside that of ``clip`` (T,), on
    one colour scale."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    spectrograms = [mel_spectrogram(truth, sample_rate), mel_spectrogram(clip, sample_rate)]
    limits = _colour_range(spectrograms)
    figure = _figure(10.0, 3.2)
    canvas = FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, sharey=True)
    _draw_spectrogram(left, spectrograms[0], limits, "training audio (ground truth)")
    image = _draw_spectrogram(right, spectrograms[1], limits, title)
    right.set_ylabel("")
    figure.colorbar(image, ax=[left, right], label="dB (full scale)", shrink=0.9)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
