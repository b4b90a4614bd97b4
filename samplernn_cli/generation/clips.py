"""``samplernn generate``: clips from a checkpoint alone, written as audio files."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from samplernn_cli.audio import ENCODINGS, read_audio, write_audio
from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import AudioConfig, GenerateSettings
from samplernn_cli.device import resolve_device
from samplernn_cli.errors import OutputError
from samplernn_cli.generation.engine import generate_codes


@dataclass(frozen=True)
class GenerateRequest:
    """What ``samplernn generate`` asks for."""

    checkpoint: Path
    settings: GenerateSettings = field(default_factory=GenerateSettings)
    out_dir: Path | None = None  # default: the checkpoint's folder
    prefix: str | None = None  # default: RUN_iter_I_gen
    prime: Path | None = None  # audio to continue from
    device: str = "auto"


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
        CheckpointError, AudioError, OutputError, UsageError, ConfigError: see
        :mod:`samplernn_cli.errors`.
    """
    settings = request.settings
    settings.validate()
    checkpoint = load_checkpoint(request.checkpoint)
    device = resolve_device(request.device)
    model = checkpoint.build_model(device)
    rate = checkpoint.sample_rate
    num_samples = max(1, round(settings.length * rate))
    seed = settings.seed if settings.seed is not None else int(torch.seed() % 2**31)

    prime_codes = None
    prime_audio = None
    if request.prime is not None:
        # The prime goes through exactly the processing the training audio went through.
        audio = AudioConfig(sample_rate=rate, normalize=checkpoint.audio.normalize)
        wave = read_audio(request.prime, audio)
        samples = wave.samples
        if settings.prime_seconds is not None:
            samples = samples[-max(1, round(settings.prime_seconds * rate)) :]
        prime_codes = model.quantizer.encode(samples)
        prime_audio = model.quantizer.decode(prime_codes)

    out_dir = request.out_dir if request.out_dir is not None else checkpoint.path.parent
    try:  # created (with its parents) as train creates its run folder
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"output folder {out_dir} is a file, not a folder") from None
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out_dir}: {exc.strerror or exc}") from None
    run_name = str(checkpoint.payload.get("run_name") or checkpoint.path.stem)
    prefix = request.prefix or f"{run_name}_iter_{checkpoint.iteration}_gen"
    paths = _output_paths(out_dir, prefix, f".{settings.file_format}", settings.count)
    temperatures = settings.clip_temperatures()

    started = time.perf_counter()
    total = settings.count * num_samples
    written: list[Path] = []
    for first in range(0, settings.count, settings.batch_size):
        count = min(settings.batch_size, settings.count - first)

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
            if settings.keep_prime and prime_audio is not None:
                clip = torch.cat([prime_audio, clip])
            path = write_audio(
                paths[first + row],
                clip,
                rate,
                subtype=ENCODINGS[settings.encoding],
                overwrite=False,
            )
            written.append(path)
            if on_file is not None:
                on_file(path)
    seconds = time.perf_counter() - started
    return GenerateResult(
        paths=written, seed=seed, seconds=seconds, samples=total, sample_rate=rate
    )
