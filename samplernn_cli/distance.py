"""How far a generated take sounds from the recording the model learned: a distance with no
learned weights, 1 when the take is as close to the recording as the recording's own pieces
of the same length are to the rest of it.

Each 10 ms frame of audio is described by 87 numbers (:func:`frame_features`):

- the power in 40 mel bands from 0 Hz to the Nyquist rate, in dB (a 32 ms Hann window, the
  scale of speech and music features; 40 bands as in the Fréchet Audio Distance's mel front
  end), floored 80 dB below the recording's mean band power, so that digital silence and
  near-silence, which no listener tells apart, stay close;
- how each band moves from frame to frame (deltas over five frames): rhythm, onsets and
  decays, which a texture of the right colour lacks;
- in each octave from 62.5 Hz up (seven at 16 kHz), the spectral flatness of a 128 ms
  window, in dB: a held partial is a narrow peak (-20 dB and lower), noise of any colour
  sits near -2.5 dB. The mel bands are too coarse to tell strings from noise of their
  colour and loudness; this is what makes the distance hear partials.

For each of the three groups of numbers (bands, deltas, flatness), the frames of a take and
of the recording are each summarised by a Gaussian (mean and covariance), and the Fréchet
distance between the two (as the Fréchet Audio Distance, with these frames instead of a
network's embeddings; no model download, which a machine without the network, or a test,
could not make) is divided by the median Fréchet distance between pieces of the recording
as long as the take and the rest of it. The take's distance is the mean of the three: each
group counts alike, whatever its units and spread (without that, the bands' spread across a
recording's pieces hides what the other two see). A take is first brought to the
recording's RMS level, so level alone moves it nowhere (the silence traps of
:mod:`samplernn_cli.generation.ranking` judge level).

What the distance needs of the recording (:class:`Reference`) is a few kilobytes, measured
when training starts and kept in every checkpoint, so ``generate`` scores takes without the
audio. Probes on every development recording (``python benchmarks/distance_probes.py``):
held-out pieces of the recording score about 1, noise shaped like the recording and noise
added at 10 dB SNR 1.5 to 20, white noise, a steady noise band, a sine and a loop more.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torchaudio.functional as AF

from samplernn_cli.clip_stats import QUIET_FRAME_DB, quiet_share, spectral_stats

FRAME_SECONDS = 0.032
HOP_SECONDS = 0.010
MEL_BANDS = 40
FLOOR_DB = 80.0
DELTA_FRAMES = 5
# The flatness window, and the lowest octave band's lower edge.
PARTIAL_SECONDS = 0.128
LOWEST_OCTAVE_HZ = 62.5
# Recording pieces the normaliser is measured on: lengths from SHORTEST_PIECE up, doubling,
# while the recording holds at least two, up to LONGEST_PIECE; at most MAX_PIECES pieces of
# each length.
SHORTEST_PIECE_SECONDS = 1.0
LONGEST_PIECE_SECONDS = 64.0
MAX_PIECES = 16
# The recording's frames measured for its statistics: stretches of STRETCH_SECONDS evenly
# spread through it, adding up to about MAX_REFERENCE_SECONDS (an hour of audio needs no
# more for a steady mean and covariance, and they take a few seconds).
MAX_REFERENCE_SECONDS = 300.0
STRETCH_SECONDS = 60.0
GROUPS = ("bands", "deltas", "flatness")
# A take must give this many frames to be measured.
MIN_FRAMES = 10


def _groups(features: int) -> list[slice]:
    """The columns of each of :data:`GROUPS` in a frame's ``features`` numbers."""
    return [slice(0, MEL_BANDS), slice(MEL_BANDS, 2 * MEL_BANDS), slice(2 * MEL_BANDS, features)]


def _stft_power(audio: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(T,) float32 -> (frames, n_fft // 2 + 1) float64 power of Hann-windowed frames that
    lie wholly inside the audio (no padding at the ends, which would make a take's first and
    last frames unlike any piece of the recording's)."""
    window = torch.hann_window(n_fft)
    spectrum = torch.stft(audio, n_fft, hop, window=window, center=False, return_complex=True)
    return torch.view_as_real(spectrum).square().sum(-1).T.double()


def _octave_edges(rate: int, n_fft: int) -> list[tuple[int, int]]:
    """FFT bin ranges of the octave bands from LOWEST_OCTAVE_HZ up to the Nyquist rate."""
    edges = []
    low = LOWEST_OCTAVE_HZ
    while low * 2 <= rate / 2 + 1e-9:
        edges.append((round(low * n_fft / rate), round(2 * low * n_fft / rate)))
        low *= 2
    return edges


def minimum_samples(rate: int) -> int:
    """The shortest audio :func:`frame_features` describes: one flatness window and the
    deltas' span."""
    return round(PARTIAL_SECONDS * rate) + DELTA_FRAMES * round(HOP_SECONDS * rate)


def frame_features(audio: np.ndarray | torch.Tensor, rate: int, floor_power: float) -> np.ndarray:
    """(T,) audio -> (frames, features) float64: log-mel bands (dB), their deltas, and the
    flatness (dB) of each octave band, one row per 10 ms frame (see the module docstring).
    ``floor_power``: added to every mel band's power (``Reference.floor_power``). The rows
    describe whole frames of both windows, centred alike; none for audio shorter than
    :func:`minimum_samples`."""
    samples = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(-1)
    hop = max(1, round(HOP_SECONDS * rate))
    n_fft = max(16, round(FRAME_SECONDS * rate))
    wide = max(n_fft, round(PARTIAL_SECONDS * rate))
    if samples.numel() < minimum_samples(rate):
        return np.zeros((0, MEL_BANDS * 2 + len(_octave_edges(rate, wide))))
    fine = _stft_power(samples, wide, hop)  # (frames, wide // 2 + 1)
    # The short window centred where the long one is.
    offset = (wide - n_fft) // 2
    power = _stft_power(samples[offset:], n_fft, hop)[: fine.shape[0]]
    with warnings.catch_warnings():  # very low rates leave a band empty
        warnings.simplefilter("ignore")
        banks = AF.melscale_fbanks(n_fft // 2 + 1, 0.0, rate / 2, MEL_BANDS, rate).double()
    mel = 10 * torch.log10(power @ banks + floor_power)  # (frames, bands)
    deltas = AF.compute_deltas(mel.T.contiguous(), win_length=DELTA_FRAMES).T
    fine = fine + floor_power * 1e-3
    bands = [fine[:, low:high] for low, high in _octave_edges(rate, wide)]
    flatness = [10 * (band.log().mean(1) - band.mean(1).log()) / math.log(10) for band in bands]
    features = torch.cat([mel, deltas, torch.stack(flatness, 1)], 1)
    edge = DELTA_FRAMES // 2  # the deltas of the first and last frames see past the ends
    return features[edge : features.shape[0] - edge].numpy()


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frames, D) -> the mean (D,) and covariance (D, D) of the rows."""
    return features.mean(0), np.cov(features, rowvar=False)


def frechet(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """The Fréchet distance between two Gaussians: |m_a - m_b|^2 + tr(C_a + C_b -
    2 (C_a C_b)^(1/2)); the trace of the root is taken from the eigenvalues of the symmetric
    C_a^(1/2) C_b C_a^(1/2), which needs no general matrix square root."""
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    root_trace = float(np.sqrt(np.clip(middle, 0, None)).sum())
    difference = mean_a - mean_b
    return float(difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2 * root_trace)


def rms(audio: np.ndarray | torch.Tensor) -> float:
    samples = np.asarray(audio, dtype=np.float64)
    return float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0


@dataclass(frozen=True)
class Reference:
    """What the distance needs of a recording: its frames' Gaussian, the level takes are
    brought to, and the normaliser for each take length (a few kB)."""

    rate: int
    rms: float  # the recording's RMS amplitude
    floor_power: float  # mel power floor: FLOOR_DB below the recording's mean band power
    mean: np.ndarray  # (D,)
    covariance: np.ndarray  # (D, D)
    # (seconds, then for each of GROUPS the median Fréchet distance of pieces that long to
    # the rest of the recording), for lengths doubling from SHORTEST_PIECE_SECONDS
    self_distances: tuple[tuple[float, ...], ...]
    # (seconds, the 10th percentile of the level of pieces that long in dB relative to the
    # recording's, the 90th percentile of their share of frames QUIET_FRAME_DB below the
    # recording's level, the 90th percentile of their spectral flatness), for the same
    # lengths: how quiet and how noise-like the recording's own pieces get.
    levels: tuple[tuple[float, float, float, float], ...]

    @property
    def level_dbfs(self) -> float:
        return 20 * math.log10(self.rms)

    def piece_limits(self, seconds: float) -> tuple[float, float, float]:
        """How quiet and how noise-like the recording's own pieces of ``seconds`` get: the
        level in dB relative to the recording's (10th percentile), the share of near-silent
        frames (90th) and the spectral flatness (90th), interpolated in log length between
        the lengths measured."""
        table = np.asarray(self.levels)
        where = math.log(max(seconds, 1e-3))
        lengths = np.log(table[:, 0])
        lowest, most_silent, flattest = (np.interp(where, lengths, c) for c in table[:, 1:].T)
        return float(lowest), float(most_silent), float(flattest)

    def normalisers(self, seconds: float) -> np.ndarray:
        """(groups,) the recording's own distances at ``seconds``: interpolated in log-log
        between the lengths measured, the nearest one's outside them."""
        table = np.log(np.asarray(self.self_distances))
        where = math.log(max(seconds, 1e-3))
        return np.exp([np.interp(where, table[:, 0], column) for column in table[:, 1:].T])

    def group_distances(self, take: np.ndarray | torch.Tensor) -> np.ndarray:
        """(groups,) the take's distance to the recording in each of :data:`GROUPS`, each
        divided by the recording's own; infinities for digital silence, which no level
        brings near it, and NaN for a take too short to measure (about a quarter second)."""
        samples = np.asarray(take, dtype=np.float64).reshape(-1)
        if samples.size < minimum_samples(self.rate) + MIN_FRAMES * round(HOP_SECONDS * self.rate):
            return np.full(len(GROUPS), math.nan)
        level = rms(samples)
        if level == 0.0:
            return np.full(len(GROUPS), math.inf)
        features = frame_features(samples * (self.rms / level), self.rate, self.floor_power)
        raw = [frechet(*gaussian(features[:, cols]), self.mean[cols], self.covariance[cols, cols])
               for cols in _groups(features.shape[1])]  # fmt: skip
        return np.asarray(raw) / self.normalisers(samples.size / self.rate)

    def distance(self, take: np.ndarray | torch.Tensor) -> float:
        """The take's distance to the recording: the mean of :meth:`group_distances` (1: as
        close as the recording's own pieces; larger is further)."""
        return float(np.mean(self.group_distances(take)))

    def to_dict(self) -> dict[str, Any]:
        """For the checkpoint: tensors and numbers only (``torch.load(weights_only=True)``);
        the covariance's upper triangle alone, in float32."""
        rows, cols = np.triu_indices(self.mean.size)
        return {
            "rate": self.rate,
            "rms": self.rms,
            "floor_power": self.floor_power,
            "mean": torch.from_numpy(self.mean.astype(np.float32)),
            "covariance_upper": torch.from_numpy(self.covariance[rows, cols].astype(np.float32)),
            "self_distances": torch.tensor(self.self_distances, dtype=torch.float64),
            "levels": torch.tensor(self.levels, dtype=torch.float64),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reference:
        mean = data["mean"].double().numpy()
        upper = data["covariance_upper"].double().numpy()
        size = mean.size
        rows, cols = np.triu_indices(size)
        if upper.size != rows.size:
            raise ValueError("the reference's covariance does not match its mean")
        covariance = np.zeros((size, size))
        covariance[rows, cols] = upper
        covariance[cols, rows] = upper
        table = tuple(tuple(float(v) for v in row) for row in data["self_distances"].tolist())
        if not table or any(len(r) != len(GROUPS) + 1 or min(r) <= 0 for r in table):
            raise ValueError("the reference's normalisers are not positive")
        levels = tuple(tuple(float(v) for v in row) for row in data["levels"].tolist())
        if len(levels) != len(table) or any(len(r) != 4 for r in levels) or data["rms"] <= 0:
            raise ValueError("the reference's levels do not match its normalisers")
        return cls(int(data["rate"]), float(data["rms"]), float(data["floor_power"]), mean,
                   covariance, table, levels)  # fmt: skip


def stretches(lengths: Sequence[int], rate: int) -> list[tuple[int, int, int]]:
    """What :func:`measure_reference` measures of pieces ``lengths`` samples long, as
    (piece, start, length): all of them when they hold no more than MAX_REFERENCE_SECONDS,
    else stretches of STRETCH_SECONDS evenly spread through each piece (so a caller holding
    hours of audio decodes only these)."""
    limit, stretch = round(MAX_REFERENCE_SECONDS * rate), round(STRETCH_SECONDS * rate)
    total = sum(lengths)
    if total <= limit:
        return [(index, 0, length) for index, length in enumerate(lengths)]
    out = []
    for index, length in enumerate(lengths):
        count = max(1, round(length * limit / total / stretch))
        for start in np.linspace(0, max(0, length - stretch), count).astype(int):
            out.append((index, int(start), min(stretch, length)))
    return out


class _Moments:
    """Sums of frames and of their outer products, from which the Gaussian of all frames
    but a few comes without going over them again."""

    def __init__(self, features: np.ndarray) -> None:
        self.count = features.shape[0]
        self.total = features.sum(0)
        self.outer = features.T @ features

    def without(self, piece: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean and covariance of every frame but ``piece``'s rows."""
        count = self.count - piece.shape[0]
        mean = (self.total - piece.sum(0)) / count
        outer = self.outer - piece.T @ piece
        return mean, (outer - count * np.outer(mean, mean)) / (count - 1)


def measure_reference(pieces: Sequence[np.ndarray | torch.Tensor], rate: int) -> Reference:
    """The :class:`Reference` of a recording given as one or more (T,) pieces (a run's
    training parts, as the model hears them). Raises ValueError for silence or too little
    audio (less than two pieces of SHORTEST_PIECE_SECONDS)."""
    whole = [np.asarray(p, dtype=np.float64).reshape(-1) for p in pieces]
    picked = stretches([a.size for a in whole], rate)
    arrays = [whole[i][start : start + length] for i, start, length in picked]
    level = rms(np.concatenate(arrays)) if arrays else 0.0
    if level == 0.0:
        raise ValueError("the recording is silent")
    # The floor follows the recording's mean mel band power (a first pass without one).
    probe = np.concatenate(arrays)[: round(STRETCH_SECONDS * rate)]
    band_power = 10 ** (frame_features(probe, rate, 1e-30)[:, :MEL_BANDS] / 10)
    if band_power.size == 0:
        raise ValueError("the recording is too short to measure the distance against")
    floor = float(band_power.mean()) * 10 ** (-FLOOR_DB / 10)
    features = [frame_features(a, rate, floor) for a in arrays]
    every = np.concatenate(features)
    mean, covariance = gaussian(every)
    groups = _groups(every.shape[1])
    moments = [_Moments(every[:, cols]) for cols in groups]
    hop = round(HOP_SECONDS * rate)
    # Where a row's first frame starts in the audio: its long window's middle hop.
    lead = (round(PARTIAL_SECONDS * rate) - hop) // 2 + DELTA_FRAMES // 2 * hop
    quiet_floor = 20 * math.log10(level) - QUIET_FRAME_DB
    self_distances, levels = [], []
    seconds = SHORTEST_PIECE_SECONDS
    while seconds <= LONGEST_PIECE_SECONDS:
        frames = round(seconds / HOP_SECONDS)
        # Pieces of the recording's frames, each within one part: (part, first frame).
        starts = [
            (i, f)
            for i, feats in enumerate(features)
            for f in range(0, feats.shape[0] - frames + 1, frames)
        ]
        if len(starts) < 2:
            break
        picks = np.linspace(0, len(starts) - 1, min(MAX_PIECES, len(starts))).round()
        values = []
        for part, first in (starts[int(k)] for k in picks):
            piece = features[part][first : first + frames]
            values.append(
                [
                    frechet(*gaussian(piece[:, cols]), *rest.without(piece[:, cols]))
                    for cols, rest in zip(groups, moments, strict=True)
                ]
            )
        self_distances.append((seconds, *np.median(values, axis=0).tolist()))
        audio = [arrays[i][lead + f * hop : lead + (f + frames) * hop] for i, f in starts]
        relative = [20 * math.log10(max(rms(a), 1e-12) / level) for a in audio]
        shares = [quiet_share(a, rate, quiet_floor) for a in audio]
        flatness = [spectral_stats(audio[int(k)], rate)["flatness"] for k in picks]
        levels.append(
            (
                seconds,
                float(np.percentile(relative, 10)),
                float(np.percentile(shares, 90)),
                float(np.percentile(flatness, 90)),
            )
        )
        seconds *= 2
    if not self_distances:
        raise ValueError("the recording is too short to measure the distance against")
    return Reference(rate, level, floor, mean, covariance, tuple(self_distances), tuple(levels))
