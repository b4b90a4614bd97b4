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

from samplernn_cli.seeding import mix_seed

if TYPE_CHECKING:
    from samplernn_cli.distance import Reference
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


@dataclass(frozen=True)
class QuietGuard:
    """Keeps takes from falling silent for good: while a clip's last quarter second lies
    under ``floor`` (20 dB below the training audio's level, or 10 dB below the quietest
    of the recording's own pieces where they get quieter than 10 dB down), the clip is
    sampled at ``boost`` times its temperature, back to its own as soon as it sounds again.

    A model that has learned a recording with hard attacks and silence between them (a
    drum kit) can sample its way into a silence it then finds likelier and likelier to go
    on: at temperature 1, every take of rock drums fell silent after a few hits. A higher
    temperature everywhere cures that but takes the other recordings' takes away from
    them; raised only in such silences it costs them nothing they would miss (see
    docs/what-to-expect.md). The level is judged every ``BLOCK`` samples, on the clip's
    own samples alone, so a clip stays independent of the others in its batch.
    """

    BLOCK = 256  # samples between judgements

    floor: float  # mean square (of samples in [-1, 1]) under which a window is quiet
    boost: float
    blocks: int  # the window, in blocks

    WINDOW_SECONDS = 0.25
    # How far below the training audio's level a window is quiet: measured with 20 and
    # 30 dB on seven recordings (docs/what-to-expect.md), 20 caught the jazz kit's quiet
    # takes that 30 let through. A recording whose own pieces get quieter (sparse sounds
    # in silence) keeps its silences: the floor is then MARGIN_DB below its quietest
    # pieces (their 10th percentile, as the quiet trap of generation/ranking.py judges).
    BELOW_DB = 20.0
    MARGIN_DB = 10.0

    @classmethod
    def for_recording(
        cls,
        level_dbfs: float | None,
        sample_rate: int,
        boost: float,
        reference: Reference | None = None,
    ) -> QuietGuard | None:
        """The guard for a model whose training audio was at ``level_dbfs`` (the
        recording's statistics ``reference`` take its place where given; neither: not
        recorded, no guard), at ``sample_rate``; None where ``boost`` is 1 (off)."""
        below = -cls.BELOW_DB
        if reference is not None:
            level_dbfs = reference.level_dbfs
            quietest = reference.piece_limits(cls.WINDOW_SECONDS)[0]
            below = min(below, quietest - cls.MARGIN_DB)
        if level_dbfs is None or boost == 1.0:
            return None
        floor = 10.0 ** ((level_dbfs + below) / 10.0)
        return cls(floor=floor, boost=boost, blocks=cls.window_blocks(sample_rate))

    @classmethod
    def window_blocks(cls, sample_rate: int) -> int:
        """The quarter second at ``sample_rate``, in blocks."""
        return max(1, round(cls.WINDOW_SECONDS * sample_rate / cls.BLOCK))


class _Watch:
    """A :class:`QuietGuard` at work on ``count`` clips: the mean square of each clip's
    last blocks, and the samples of the block in progress (carried from run to run)."""

    def __init__(self, guard: QuietGuard, count: int, squares: np.ndarray) -> None:
        self.guard = guard
        self.squares = squares  # (levels,) each code's decoded value, squared
        self.energy = np.zeros((count, guard.blocks))  # mean squares, a ring of blocks
        self.slot = 0
        self.partial = np.zeros(count)  # sum of squares of the block in progress
        self.filled = 0  # its samples so far
        self.quiet = np.zeros(count, dtype=bool)

    def start(self) -> None:
        """A new take: judged on its own samples alone, from when they fill the window (so
        a take that never falls quiet is the take made without the guard)."""
        self.energy[:] = np.inf
        self.slot = self.filled = 0
        self.partial[:] = 0.0
        self._judge()

    def completes(self, samples: int) -> bool:
        """Whether ``samples`` more complete the block in progress."""
        return self.filled + samples >= self.guard.BLOCK

    def add(self, codes: np.ndarray) -> bool:
        """Count the (count, n) codes made since the last call (n at most what completes
        the block in progress); True when a block was completed and the clips judged."""
        self.partial += self.squares[codes].sum(axis=1)
        self.filled += codes.shape[1]
        if self.filled < self.guard.BLOCK:
            return False
        self.energy[:, self.slot] = self.partial / self.filled
        self.slot = (self.slot + 1) % self.guard.blocks
        self.partial[:] = 0.0
        self.filled = 0
        self._judge()
        return True

    def _judge(self) -> None:
        self.quiet = self.energy.mean(axis=1) < self.guard.floor


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
        self.watch = None
        if guard is not None:
            values = model.quantizer.decode(torch.arange(model.config.q_levels)).double()
            self.watch = _Watch(guard, self.count, values.square().numpy())
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
            self.watch.start()
            self._guard_temperatures()
        watched = 0  # samples the guard has counted
        emitted = 0  # samples handed to on_codes
        for frame_start in range(0, total, top):
            if self.watch is not None and self.watch.completes(frame_start - watched):
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
        judges the clips at each completed block); returns ``end``."""
        assert self.watch is not None
        while watched < end:
            upto = min(end, watched + self.watch.guard.BLOCK - self.watch.filled)
            if self.watch.add(self._codes(watched, upto).numpy()):
                self._guard_temperatures()
            watched = upto
        return watched

    def _guard_temperatures(self) -> None:
        assert self.watch is not None
        base = np.asarray(self.temperatures)
        self._set_temperatures(np.where(self.watch.quiet, base * self.watch.guard.boost, base))

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
