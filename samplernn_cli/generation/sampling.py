"""What every sampler shares: the protocol they keep (:class:`Sampler`, returning
:class:`Takes`), the frame stepping, per-clip random streams, drawing a code from logits, and
the progress protocol.

Randomness: clip ``i`` of a request with seed ``s`` draws its samples by inverting the
softmax's cumulative distribution at uniform numbers from its own stream, seeded from
``(s, i)``. So a clip depends only on the seed, its index, its temperature and the model: not
on the batch size, the other clips or the device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

if TYPE_CHECKING:
    from samplernn_cli.model import ModelState

from samplernn_cli.seeding import mix_seed

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


class Sampler(Protocol):
    """A batch of clips made sample by sample from a model, each clip drawing from its own
    stream (:class:`ClipNoise`): the Numba sampler and the PyTorch sampler keep this, and
    ``samplernn_cli.generation.engine.SAMPLERS`` is the table they are chosen from. Both are
    built as ``Sampler(model, count, temperatures, precision, noise=ClipNoise(...))``."""

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
        ...


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
