"""Sampling new audio from a trained model, all clips of a batch at once.

Generation runs the tiers at their own rates: a frame tier steps once per frame of its
length, the sample-level MLP once per sample, and each new sample is drawn from the softmax
of the logits divided by the temperature. It starts from the model's reset state with a
silent history, exactly as a training sequence at the start of a file does, or from the
state reached by running the network over a prime (real audio to continue).

Randomness: clip ``i`` of a request with seed ``s`` draws its samples by inverting the
softmax's cumulative distribution at uniform numbers from its own stream, seeded from
``(s, i)``. So a clip depends only on the seed, its index, its temperature and the model: not
on the batch size, the other clips or the device.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from samplernn_cli.audio import ENCODINGS, read_audio, write_audio
from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import AudioConfig
from samplernn_cli.data import mix_seed
from samplernn_cli.device import resolve_device
from samplernn_cli.errors import UsageError
from samplernn_cli.model import ModelState, SampleRNN

logger = logging.getLogger("samplernn")

# Called with (samples done, samples total) of the current batch once per top-tier frame;
# returning True stops generation (GenerationStopped).
GenerateProgress = Callable[[int, int], bool | None]
# Chooses the codes at step t from that step's (B, levels) logits; returns (B,) int64.
Picker = Callable[[int, torch.Tensor], torch.Tensor]

# Samples of prime audio run through the frame tiers per forward call.
PRIME_STEP_SAMPLES = 65536


class GenerationStopped(Exception):
    """Raised when the progress callback asks generation to stop."""


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
        ready for :func:`autoregress`.
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


@torch.no_grad()
def autoregress(
    model: SampleRNN,
    count: int,
    num_samples: int,
    pick: Picker,
    *,
    history: torch.Tensor | None = None,
    state: ModelState | None = None,
    progress: GenerateProgress | None = None,
) -> torch.Tensor:
    """Run the model one sample at a time, feeding back what ``pick`` chooses.

    Args:
        history: (count, model.history) codes before the first sample (default: silence).
        state: the frame tiers' state at that point (default: reset).

    Returns:
        (count, num_samples) int64 codes.
    """
    device = next(model.parameters()).device
    tiers = model.frame_tiers
    frames = [tier.frame_samples for tier in tiers]
    context = model.history
    frame_size = model.sample_tier.frame_size
    # Round up to whole top-tier frames; the extra samples are dropped at the end.
    total = -(-num_samples // frames[-1]) * frames[-1]
    codes = torch.full(
        (count, context + total), model.quantizer.zero_code, dtype=torch.long, device=device
    )
    if history is not None:
        codes[:, :context] = history.to(device)
    state = list(state) if state is not None else model.initial_state()
    # Each tier's output for its current frame, (B, ratio, H); all tiers step at t = 0.
    conditioning = [torch.empty(0)] * len(tiers)
    tables = model.sample_tier.input_tables()
    for t in range(total):
        position = context + t
        for k in reversed(range(len(tiers))):
            size = frames[k]
            if t % size:
                continue
            if k == len(tiers) - 1 and progress is not None and progress(t, total):
                raise GenerationStopped
            frame = model.quantizer.scale_codes(codes[:, position - size : position])
            above = None
            if k + 1 < len(tiers):
                above = conditioning[k + 1][:, (t // size) % tiers[k + 1].ratio].unsqueeze(1)
            conditioning[k], state[k] = tiers[k](frame.unsqueeze(1), above, state[k])
        previous = codes[:, position - frame_size : position]
        first = model.sample_tier.first_layer(previous, tables)
        logits = model.sample_tier.head(first + conditioning[0][:, t % frames[0]])
        codes[:, position] = pick(t, logits)
    if progress is not None:
        progress(total, total)
    return codes[:, context : context + num_samples]


def generate_codes(
    model: SampleRNN,
    count: int,
    num_samples: int,
    *,
    temperature: float | Sequence[float] = 1.0,
    seed: int = 0,
    first_clip: int = 0,
    prime: torch.Tensor | None = None,
    progress: GenerateProgress | None = None,
    implementation: str = "auto",
) -> torch.Tensor:
    """Generate ``count`` clips of ``num_samples`` codes each, together as one batch.

    Args:
        model: the network (its device is used), in eval mode.
        temperature: one value for all clips or one per clip; 1.0 samples the model's own
            distribution, lower is more conservative, higher more adventurous.
        seed, first_clip: clip ``first_clip + i`` draws from the stream seeded by
            ``(seed, first_clip + i)``.
        prime: (P,) codes to continue from (see :func:`prime_model`), or None.
        progress: see :data:`GenerateProgress`.
        implementation: ``"fast"`` (:class:`fastgen.FastSampler`, CPU only), ``"reference"``
            (:func:`autoregress`, any device) or ``"auto"`` (fast on the CPU).

    Returns:
        (count, num_samples) int64 codes (the prime is not included).
    """
    device = next(model.parameters()).device
    temperatures = temperature_column(temperature, count, device)
    noise = ClipNoise(seed, first_clip, count)
    history, state = (None, None) if prime is None else prime_model(model, prime, count)
    if implementation == "auto":
        implementation = "fast" if device.type == "cpu" else "reference"
    if implementation == "fast":
        from samplernn_cli.fastgen import FastSampler

        sampler = FastSampler(model, count, temperatures.squeeze(1).tolist())
        return sampler.run(
            num_samples,
            lambda block: noise.draw(block, torch.device("cpu")).numpy(),
            history=history,
            state=state,
            progress=progress,
        )
    if implementation != "reference":
        raise ValueError(f"unknown implementation {implementation!r}")
    block = model.config.tier_frame_samples[-1]
    uniforms = torch.empty(0)

    def sample(t: int, logits: torch.Tensor) -> torch.Tensor:
        nonlocal uniforms
        if t % block == 0:
            uniforms = noise.draw(block, device)
        return sample_from_logits(logits, temperatures, uniforms[:, t % block])

    return autoregress(
        model, count, num_samples, sample, history=history, state=state, progress=progress
    )


# --------------------------------------------------------------------- the generate command

FORMATS = {"wav": "wav", "flac": "flac"}


@dataclass(frozen=True)
class GenerateRequest:
    """What ``samplernn generate`` asks for."""

    checkpoint: Path
    length: float  # seconds of new audio per clip
    count: int = 1
    temperatures: tuple[float, ...] = (1.0,)  # one, or one per clip
    seed: int | None = None  # None: a random seed, reported in the result
    out_dir: Path | None = None  # default: the checkpoint's folder
    prefix: str | None = None  # default: RUN_iter_I_gen
    prime: Path | None = None
    prime_seconds: float | None = None  # use only the prime's last seconds
    keep_prime: bool = False
    batch_size: int = 16
    device: str = "auto"
    file_format: str = "wav"
    encoding: str = "pcm16"


@dataclass(frozen=True)
class GenerateStatus:
    """Progress over the whole request, for displays."""

    samples_done: int  # per clip, summed over clips
    samples_total: int
    seconds: float
    sample_rate: int

    @property
    def samples_per_s(self) -> float:
        return self.samples_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio made per second of wall clock, all clips together."""
        return self.samples_per_s / self.sample_rate


@dataclass(frozen=True)
class GenerateResult:
    paths: list[Path]
    seed: int
    seconds: float
    samples: int  # generated samples, all clips together (the prime not counted)
    sample_rate: int

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    @property
    def realtime_factor(self) -> float:
        return self.samples_per_s / self.sample_rate


def _output_paths(out_dir: Path, prefix: str, suffix: str, count: int) -> list[Path]:
    """``prefix_N.suffix`` for the next ``count`` numbers after any already in ``out_dir``."""
    taken = 0
    for path in out_dir.glob(f"{prefix}_*{suffix}"):
        number = path.name[len(prefix) + 1 : -len(suffix)]
        if number.isdigit():
            taken = max(taken, int(number))
    return [out_dir / f"{prefix}_{taken + i + 1}{suffix}" for i in range(count)]


def generate_files(
    request: GenerateRequest,
    *,
    progress: Callable[[GenerateStatus], bool | None] | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> GenerateResult:
    """Generate clips from a checkpoint alone and write them as audio files.

    Files are named ``PREFIX_N.EXT`` with N continuing after the highest number already in
    the folder, so nothing is ever overwritten. ``on_file`` is called with each path as soon
    as it is written.

    Raises:
        CheckpointError, AudioError, OutputError, UsageError: see :mod:`samplernn_cli.errors`.
    """
    if request.file_format not in FORMATS or request.encoding not in ENCODINGS:
        raise UsageError(f"unknown output format {request.file_format}/{request.encoding}")
    if request.file_format == "flac" and request.encoding == "float":
        raise UsageError("FLAC holds integer samples only; use --encoding pcm16 or pcm24")
    if len(request.temperatures) not in (1, request.count):
        raise UsageError(
            f"{len(request.temperatures)} temperatures for {request.count} clips; give one, "
            "or one per clip"
        )
    checkpoint = load_checkpoint(request.checkpoint)
    device = resolve_device(request.device)
    model = checkpoint.build_model(device)
    rate = checkpoint.sample_rate
    num_samples = max(1, round(request.length * rate))
    seed = request.seed if request.seed is not None else int(torch.seed() % 2**31)

    prime_codes = None
    prime_audio = None
    if request.prime is not None:
        # The prime goes through exactly the processing the training audio went through.
        audio = AudioConfig(sample_rate=rate, normalize=checkpoint.audio.normalize)
        wave = read_audio(request.prime, audio)
        samples = wave.samples
        if request.prime_seconds is not None:
            samples = samples[-max(1, round(request.prime_seconds * rate)) :]
        prime_codes = model.quantizer.encode(samples)
        prime_audio = model.quantizer.decode(prime_codes)

    out_dir = request.out_dir if request.out_dir is not None else checkpoint.path.parent
    if not out_dir.is_dir():
        raise UsageError(f"output folder {out_dir} does not exist")
    run_name = str(checkpoint.payload.get("run_name") or checkpoint.path.stem)
    prefix = request.prefix or f"{run_name}_iter_{checkpoint.iteration}_gen"
    paths = _output_paths(out_dir, prefix, f".{request.file_format}", request.count)
    temperatures = list(request.temperatures) * (
        request.count if len(request.temperatures) == 1 else 1
    )

    started = time.perf_counter()
    total = request.count * num_samples
    written: list[Path] = []
    for first in range(0, request.count, request.batch_size):
        count = min(request.batch_size, request.count - first)

        def batch_progress(
            done: int, batch_total: int, first: int = first, count: int = count
        ) -> bool | None:
            if progress is None:
                return None
            finished = first * num_samples + count * min(done, num_samples)
            return progress(GenerateStatus(finished, total, time.perf_counter() - started, rate))

        codes = generate_codes(
            model,
            count,
            num_samples,
            temperature=temperatures[first : first + count],
            seed=seed,
            first_clip=first,
            prime=prime_codes,
            progress=batch_progress,
        )
        audio_out = model.quantizer.decode(codes.cpu())
        for row in range(count):
            clip = audio_out[row]
            if request.keep_prime and prime_audio is not None:
                clip = torch.cat([prime_audio, clip])
            path = write_audio(
                paths[first + row],
                clip,
                rate,
                subtype=ENCODINGS[request.encoding],
                overwrite=False,
            )
            written.append(path)
            if on_file is not None:
                on_file(path)
    seconds = time.perf_counter() - started
    return GenerateResult(
        paths=written, seed=seed, seconds=seconds, samples=total, sample_rate=rate
    )
