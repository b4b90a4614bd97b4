"""What every sampler shares: the frame stepping and the protocol they keep
(:class:`FrameStepper`, whose ``run`` returns :class:`Takes`), per-clip random streams,
drawing a code from logits, and the progress protocol.

Randomness: clip ``i`` of a request with seed ``s`` draws its samples by inverting the
softmax's cumulative distribution at uniform numbers from its own stream, seeded from
``(s, i)``. So a clip depends only on the seed, its index, its temperature and the model: not
on the batch size, the other clips or the device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from samplernn_cli.generation.quiet import QuietGuard, QuietWatch
from samplernn_cli.seeding import mix_seed

if TYPE_CHECKING:
    from samplernn_cli.model import ModelState, SampleRNN

# Called with (samples done, samples total) of the current batch once per top-tier frame;
# returning True stops generation (GenerationStopped).
GenerateProgress = Callable[[int, int], bool | None]
# Called with (count, n) int64 codes: the samples finished since the previous call, in
# order (once per top-tier frame, and at the end), so they can be written while generation
# goes on.
CodesCallback = Callable[[torch.Tensor], None]


class GenerationStopped(Exception):
    """Raised when the progress callback asks generation to stop."""


@dataclass(frozen=True)
class Takes:
    """Clips as codes, and how likely the model found each."""

    codes: torch.Tensor  # (count, num_samples) int64, the prime not included
    # (count,) float64: the mean over each clip's samples of -log2 p(sample) under the
    # model's own distribution (temperature 1), as it was sampled: its bits per sample.
    bits_per_sample: torch.Tensor


class FrameStepper(ABC):
    """The frame stepping both samplers share, and the protocol they keep (:meth:`run`).

    A clip is made in whole top-tier frames: before each bottom-tier frame the frame tiers
    whose frame starts there take a step, top first (:func:`stepping_tiers`), the linear
    prediction refits on its grid, and the bottom frame's samples are drawn. The codes are
    handed to ``on_codes``, and ``progress`` asked, once per top-tier frame. A sampler
    provides the arithmetic (the Numba sampler's compiled kernels, the PyTorch sampler's
    modules) through the methods below; ``samplernn_cli.generation.engine.SAMPLERS`` is the
    table they are chosen from.
    """

    def __init__(
        self,
        model: SampleRNN,
        temperatures: Sequence[float],
        precision: str = "float32",
        *,
        noise: ClipNoise | None = None,
        guard: QuietGuard | None = None,
    ) -> None:
        """A sampler of ``len(temperatures)`` clips of ``model`` at those temperatures, with
        its weights in ``precision`` (``samplernn_cli.model.precision.PRECISIONS``), drawing
        from ``noise`` (the clips' streams; default: seed 0), its clips kept from falling
        silent by ``guard`` (default: none). It keeps what every sampler needs (the model,
        the count, the streams, the frame tiers' frame lengths bottom up, the prediction),
        then :meth:`_prepare` makes its own."""
        self.model = model
        self.count = len(temperatures)
        self.temperatures = [float(t) for t in temperatures]
        self.precision = precision
        self.noise = noise or ClipNoise(0, 0, self.count)
        self.frames = [tier.frame_samples for tier in model.frame_tiers]
        self.predictor = model.predictor
        self.guard = guard
        self.watch = None
        if guard is not None:
            levels = torch.arange(model.config.q_levels)
            self.watch = QuietWatch(guard, model.quantizer.decode(levels))
        self._prepare()

    @abstractmethod
    def _prepare(self) -> None:
        """Build what this sampler's arithmetic needs (weights in its precision, buffers)."""

    @torch.no_grad()
    def run(
        self,
        num_samples: int,
        *,
        history: torch.Tensor | None = None,
        state: ModelState | None = None,
        progress: GenerateProgress | None = None,
        on_codes: CodesCallback | None = None,
        carry: bool = False,
    ) -> Takes:
        """Generate ``num_samples`` per clip.

        Args:
            history: (count, model.history) codes before the first sample (default: silence).
            state: the frame tiers' state at that point (default: reset).
            progress: called with (done, total) once per top-tier frame; True stops
                (:class:`GenerationStopped`).
            on_codes: see :data:`CodesCallback`.
            carry: go on from where the previous run ended (its frame tiers' state and the
                prediction's taps; ``state`` is not used): with ``history`` its last codes,
                and whole top-tier frames and prediction blocks per run, runs one after
                another make the samples of one long run.
        """
        top, bottom = self.frames[-1], self.frames[0]
        total = -(-num_samples // top) * top  # whole top-tier frames; the rest is dropped
        self._start(total, history, state, carry)
        if self.watch is not None and not carry:
            self.watch.reset(self.count)
            self._guard_temperatures()
        watched = 0  # samples the guard has counted
        emitted = 0  # samples handed to on_codes
        for frame_start in range(0, total, top):
            if self.watch is not None and frame_start - watched >= self.watch.needed():
                watched = self._watch(watched, frame_start)
            if on_codes is not None and frame_start > emitted:
                end = min(frame_start, num_samples)
                on_codes(self._codes(emitted, end))
                emitted = end
            if progress is not None and progress(frame_start, total):
                raise GenerationStopped
            self._top_frame(frame_start, total)
            for t in range(frame_start, frame_start + top, bottom):
                for k in stepping_tiers(t, self.frames):
                    self._step_tier(k, t)
                if self.predictor is not None and self.predictor.refits(t):
                    self._refit(t)
                self._sample_frame(t, num_samples)
        if self.watch is not None:
            self._watch(watched, total)
        if on_codes is not None and num_samples > emitted:
            on_codes(self._codes(emitted, num_samples))
        if progress is not None:
            progress(total, total)
        return Takes(self._codes(0, num_samples), self._bits(num_samples))

    def _watch(self, watched: int, end: int) -> int:
        """Count the samples from ``watched`` to ``end`` towards the guard's blocks (it
        judges the clips at each completed block, and the last judgement sets the
        temperatures of the samples to come); returns ``end``."""
        assert self.watch is not None
        if self.watch.add(self._codes(watched, end)):
            self._guard_temperatures()
        return end

    def _guard_temperatures(self) -> None:
        assert self.watch is not None and self.guard is not None
        base = torch.tensor(self.temperatures, dtype=torch.float64)
        self._set_temperatures(self.watch.boosted(base, self.guard.boost).view(-1).numpy())

    @abstractmethod
    def _set_temperatures(self, temperatures: np.ndarray) -> None:
        """Sample each clip at its temperature in (count,) ``temperatures`` from now on."""

    @abstractmethod
    def _start(
        self, total: int, history: torch.Tensor | None, state: ModelState | None, carry: bool
    ) -> None:
        """Make room for ``total`` samples after ``history``; the frame tiers take ``state``
        (or a reset state), unless ``carry``."""

    def _top_frame(self, start: int, total: int) -> None:  # noqa: B027 (optional)
        """Before the top-tier frame at sample ``start`` of ``total``."""

    @abstractmethod
    def _step_tier(self, k: int, t: int) -> None:
        """Frame tier ``k`` steps on the frame that ends before sample ``t``."""

    @abstractmethod
    def _refit(self, t: int) -> None:
        """Fit the prediction's taps to the samples before ``t``."""

    @abstractmethod
    def _sample_frame(self, t: int, num_samples: int) -> None:
        """Draw the bottom-tier frame's samples from ``t`` (those from ``num_samples`` on
        are dropped)."""

    @abstractmethod
    def _codes(self, start: int, end: int) -> torch.Tensor:
        """(count, end - start) int64 codes of samples ``start`` to ``end``, on the CPU."""

    @abstractmethod
    def _bits(self, num_samples: int) -> torch.Tensor:
        """(count,) float64: each clip's mean -log2 p over its first ``num_samples``."""


def stepping_tiers(t: int, frames: Sequence[int]) -> list[int]:
    """The frame tiers (indices into ``frames``, their frames' lengths in samples, bottom
    up) that take a step before sample ``t``, top first: those whose frame starts there.
    Each takes the codes of its last frame and the conditioning of the tier above."""
    return [k for k in reversed(range(len(frames))) if t % frames[k] == 0]


class ClipNoise:
    """Per-clip streams of uniform random numbers, drawn a block at a time."""

    def __init__(self, seed: int, first_clip: int, count: int) -> None:
        self.generators = [
            torch.Generator().manual_seed(mix_seed(seed, first_clip + i)) for i in range(count)
        ]

    def draw(self, length: int, device: torch.device) -> torch.Tensor:
        """(count, length) uniforms in [0, 1)."""
        rows = [torch.rand(length, generator=g, dtype=torch.float64) for g in self.generators]
        return torch.stack(rows).to(device=device, dtype=torch.float32)


def sample_from_logits(
    logits: torch.Tensor, temperatures: torch.Tensor, uniforms: torch.Tensor
) -> torch.Tensor:
    """Draw one code per row by inverting the softmax's CDF at ``uniforms``.

    Args:
        logits: (B, levels).
        temperatures: (B, 1).
        uniforms: (B,) in [0, 1).

    Returns:
        (B,) int64 codes, distributed as ``softmax(logits / temperature)``.
    """
    cdf = torch.softmax(logits / temperatures, dim=-1).cumsum(dim=-1)
    # right=True: the first level whose cumulative probability exceeds the draw, so a level
    # of probability zero is never chosen.
    target = (uniforms * cdf[:, -1]).unsqueeze(1)
    return torch.searchsorted(cdf, target, right=True).squeeze(1).clamp_(max=logits.shape[-1] - 1)


def temperature_column(
    temperature: float | Sequence[float], count: int, device: torch.device
) -> torch.Tensor:
    """(count, 1) temperatures from one value or one per clip."""
    if isinstance(temperature, (int, float)):
        values = [float(temperature)] * count
    else:
        values = [float(value) for value in temperature]
    if len(values) != count:
        raise ValueError(f"{len(values)} temperatures for {count} clips")
    return torch.tensor(values, dtype=torch.float32, device=device).unsqueeze(1)
