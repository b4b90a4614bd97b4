"""Sampling new audio from a trained model, all clips of a batch at once.

Generation starts from the model's reset state with a silent history, exactly as a training
sequence at the start of a file does, or from the state reached by running the network over
a prime (real audio to continue). Two samplers can run it: ``"numba"``, compiled CPU
kernels over weights prepared once (:mod:`samplernn_cli.generation.numba_sampler`), which
the CPU uses, and ``"torch"``, the model's own PyTorch modules one sample at a time on any
device (:mod:`samplernn_cli.generation.torch_sampler`), which every other device uses. Both
draw the same samples for the same seed (see :mod:`samplernn_cli.generation.sampling`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from samplernn_cli.generation.numba_sampler import NumbaSampler
from samplernn_cli.generation.quiet import QuietGuard
from samplernn_cli.generation.sampling import (
    ClipNoise,
    CodesCallback,
    FrameStepper,
    GenerateProgress,
    Takes,
    temperature_column,
)
from samplernn_cli.generation.torch_sampler import TorchSampler
from samplernn_cli.model import ModelState, SampleRNN
from samplernn_cli.model.precision import PRECISIONS

# Samples of prime audio run through the frame tiers per forward call.
PRIME_STEP_SAMPLES = 65536


@torch.no_grad()
def prime_model(
    model: SampleRNN, prime: torch.Tensor, count: int
) -> tuple[torch.Tensor, ModelState]:
    """Run the frame tiers over ``prime`` (teacher forcing) to warm up their state.

    The prime is padded with silence at the front to whole top-tier frames, like a training
    sequence at the start of a file, and processed over its whole length.

    Args:
        prime: (P,) codes.
        count: clips that will continue from it.

    Returns:
        (count, history) codes (the prime's last samples) and the frame tiers' state, both
        ready for a sampler's ``run``.
    """
    device = next(model.parameters()).device
    top = model.config.tier_frame_samples[-1]
    history = model.history
    padding = (-prime.numel()) % top + history
    stream = torch.cat(
        [torch.full((padding,), model.quantizer.zero_code, dtype=torch.long), prime.long().cpu()]
    ).to(device)
    step = top * max(1, PRIME_STEP_SAMPLES // top)
    state: ModelState | None = None
    for start in range(0, stream.numel() - history, step):
        window = stream[start : start + history + step].unsqueeze(0)
        _, state = model.frame_tiers_pass(window, state)
    assert state is not None
    expanded: ModelState = [
        None if s is None else tuple(t.expand(-1, count, -1).contiguous() for t in s) for s in state
    ]
    return stream[-history:].unsqueeze(0).expand(count, -1).clone(), expanded


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"``: int8 where the Numba sampler runs (the CPU), float32 elsewhere (the
    PyTorch sampler would compute with the int8 weights' values, no faster)."""
    if precision == "auto":
        return "int8" if device.type == "cpu" else "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}")
    return precision


# The samplers, by the name ``--implementation`` gives.
SAMPLERS: dict[str, type[FrameStepper]] = {"numba": NumbaSampler, "torch": TorchSampler}


def resolve_implementation(implementation: str, device: torch.device) -> str:
    """``"auto"``: the Numba sampler on the CPU, the PyTorch sampler elsewhere."""
    if implementation == "auto":
        implementation = "numba" if device.type == "cpu" else "torch"
    if implementation not in SAMPLERS:
        raise ValueError(f"unknown implementation {implementation!r}")
    return implementation


def make_sampler(
    model: SampleRNN,
    count: int,
    *,
    temperature: float | Sequence[float],
    seed: int,
    first_clip: int,
    implementation: str,
    precision: str,
    guard: QuietGuard | None = None,
) -> FrameStepper:
    """The sampler ``implementation`` names (``"auto"``: see :func:`resolve_implementation`)
    for ``count`` clips of ``model`` at ``temperature`` (one or one per clip), clip
    ``first_clip + i`` drawing from the stream seeded by ``(seed, first_clip + i)``, kept
    from falling silent by ``guard``."""
    device = next(model.parameters()).device
    temperatures = temperature_column(temperature, count, device).squeeze(1).tolist()
    sampler = SAMPLERS[resolve_implementation(implementation, device)]
    noise = ClipNoise(seed, first_clip, count)
    return sampler(
        model, temperatures, resolve_precision(precision, device), noise=noise, guard=guard
    )


def generate_takes(
    model: SampleRNN,
    count: int,
    num_samples: int,
    *,
    temperature: float | Sequence[float] = 1.0,
    seed: int = 0,
    first_clip: int = 0,
    prime: torch.Tensor | None = None,
    progress: GenerateProgress | None = None,
    on_codes: CodesCallback | None = None,
    implementation: str = "auto",
    precision: str = "float32",
    guard: QuietGuard | None = None,
) -> Takes:
    """Generate ``count`` clips of ``num_samples`` codes each, together as one batch.

    Args:
        model: the network (its device is used), in eval mode.
        temperature: one value for all clips or one per clip; 1.0 samples the model's own
            distribution, lower is more conservative, higher more adventurous.
        seed, first_clip: clip ``first_clip + i`` draws from the stream seeded by
            ``(seed, first_clip + i)``.
        prime: (P,) codes to continue from (see :func:`prime_model`), or None.
        progress: see :data:`GenerateProgress`.
        on_codes: see :data:`CodesCallback` (for writing audio while it is generated).
        implementation: ``"numba"``
            (:class:`~samplernn_cli.generation.numba_sampler.NumbaSampler`, CPU only),
            ``"torch"`` (:class:`TorchSampler`, any device) or ``"auto"`` (numba on the CPU,
            torch elsewhere).
        precision: the weights' precision (:mod:`samplernn_cli.model.precision`), or
            ``"auto"`` (see :func:`resolve_precision`).
        guard: keeps the clips from falling silent (:class:`QuietGuard`), or None.
    """
    history, state = (None, None) if prime is None else prime_model(model, prime, count)
    sampler = make_sampler(
        model, count, temperature=temperature, seed=seed, first_clip=first_clip,
        implementation=implementation, precision=precision, guard=guard,
    )  # fmt: skip
    return sampler.run(
        num_samples, history=history, state=state, progress=progress, on_codes=on_codes
    )


# Samples per segment of an endless clip (about 4 s at 16 kHz): memory stays bounded by a
# segment's codes whatever the clip's length.
SEGMENT_SAMPLES = 65536


def generate_endless(
    model: SampleRNN,
    on_codes: CodesCallback,
    *,
    temperature: float = 1.0,
    seed: int = 0,
    prime: torch.Tensor | None = None,
    progress: GenerateProgress | None = None,
    implementation: str = "auto",
    precision: str = "float32",
    segment: int = SEGMENT_SAMPLES,
    guard: QuietGuard | None = None,
) -> None:
    """Generate one clip without end, handing its codes to ``on_codes`` as they are made.

    The clip is made in segments of whole top-tier frames and prediction blocks (``segment``
    rounded to them), each going on from the codes and state the last one ended with, so
    its samples are those :func:`generate_takes` makes for one clip of the same seed, as
    long as it is. Returns only by an exception: ``on_codes`` raising (the reader went
    away), or ``progress`` (called with the samples done so far and 0 for the total)
    returning True (:class:`GenerationStopped`).
    """
    history, state = (None, None) if prime is None else prime_model(model, prime, 1)
    sampler = make_sampler(
        model, 1, temperature=temperature, seed=seed, first_clip=0,
        implementation=implementation, precision=precision, guard=guard,
    )  # fmt: skip
    step = model.config.tier_frame_samples[-1]
    if model.predictor is not None:
        step = math.lcm(step, model.predictor.block)
    segment = step * max(1, segment // step)
    context = model.history
    done = 0

    def segment_progress(samples: int, _total: int) -> bool | None:
        return None if progress is None else progress(done + samples, 0)

    while True:
        codes = sampler.run(
            segment, history=history, state=state, progress=segment_progress,
            on_codes=on_codes, carry=done > 0,
        ).codes  # fmt: skip
        # The codes the next segment starts from (silence before the clip).
        previous = history
        if previous is None:
            previous = torch.full((1, context), model.quantizer.zero_code, dtype=torch.long)
        history = torch.cat([previous.to(codes.device), codes], 1)[:, -context:]
        done += segment
