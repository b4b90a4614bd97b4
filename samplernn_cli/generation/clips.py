"""``samplernn generate``: clips from a checkpoint alone, written as audio files."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from samplernn_cli.audio import ENCODINGS, read_audio, write_audio
from samplernn_cli.checkpoint import Checkpoint, load_checkpoint
from samplernn_cli.config import AudioConfig, GenerateSettings
from samplernn_cli.device import resolve_device
from samplernn_cli.errors import OutputError, UsageError
from samplernn_cli.gain import choose_gain
from samplernn_cli.generation.engine import generate_takes
from samplernn_cli.generation.quiet import QuietGuard
from samplernn_cli.generation.ranking import TakeScore, describe_traps, rank, score_takes
from samplernn_cli.model import SampleRNN

logger = logging.getLogger("samplernn")


@dataclass(frozen=True)
class GenerateRequest:
    """What ``samplernn generate`` asks for."""

    checkpoint: Path
    settings: GenerateSettings = field(default_factory=GenerateSettings)
    out_dir: Path | None = None  # default: the checkpoint's folder
    prefix: str | None = None  # default: RUN_iter_I_gen
    prime: Path | None = None  # audio to continue from
    device: str = "auto"
    output: Path | None = None  # one clip to this file, instead of numbered files in out_dir


class Pace:
    """How fast samples were made: for records with ``samples``, ``seconds`` and
    ``sample_rate``."""

    samples: int
    seconds: float
    sample_rate: int

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio made per second of wall clock, all clips together."""
        return self.samples_per_s / self.sample_rate


@dataclass(frozen=True)
class GenerateStatus(Pace):
    """Progress over the whole request, for displays."""

    samples: int  # done so far, per clip, summed over clips
    samples_total: int | None  # None: a clip without end
    seconds: float
    sample_rate: int


@dataclass(frozen=True)
class GenerateResult(Pace):
    paths: list[Path]
    seed: int
    seconds: float
    samples: int  # generated samples, all clips together (the prime not counted)
    sample_rate: int
    # Every take's scores (when asked for): ranked best first with --candidates (the first
    # len(paths) are the files written), else in the order generated (each written).
    scores: list[TakeScore] = field(default_factory=list)


def _output_paths(out_dir: Path, prefix: str, suffix: str, count: int) -> list[Path]:
    """``prefix_N.suffix`` for the next ``count`` numbers after any already in ``out_dir``."""
    taken = 0
    for path in out_dir.glob(f"{prefix}_*{suffix}"):
        number = path.name[len(prefix) + 1 : -len(suffix)]
        if number.isdigit():
            taken = max(taken, int(number))
    return [out_dir / f"{prefix}_{taken + i + 1}{suffix}" for i in range(count)]


@dataclass(frozen=True)
class Prepared:
    """What every way of writing clips starts from: the model and the request in samples."""

    checkpoint: Checkpoint
    model: SampleRNN
    rate: int
    num_samples: int  # per clip, the prime not counted; 0 for an endless clip
    seed: int
    prime_codes: torch.Tensor | None  # (P,) codes the clips continue from
    prime_audio: torch.Tensor | None  # (P,) the prime as the model hears it (decoded codes)
    guard: QuietGuard | None  # keeps the clips from falling silent (--quiet-boost)


def prepare(request: GenerateRequest) -> Prepared:
    """Load the checkpoint and the prime, and fix the seed.

    Raises:
        CheckpointError, AudioError, ConfigError: see :mod:`samplernn_cli.errors`.
    """
    settings = request.settings
    settings.validate()
    checkpoint = load_checkpoint(request.checkpoint)
    device = resolve_device(request.device)
    model = checkpoint.build_model(device)
    rate = checkpoint.sample_rate
    seed = settings.seed if settings.seed is not None else int(torch.seed() % 2**31)
    prime_codes = prime_audio = None
    if request.prime is not None:
        # The prime is mixed and resampled as the training audio was, then brought to the
        # level chosen by prime_gain (the training files' gain by default).
        wave = read_audio(request.prime, AudioConfig(sample_rate=rate, normalize=False))
        gain = choose_gain(settings.prime_gain, Path(request.prime), wave.source_peak,
                           checkpoint.audio.normalize, checkpoint.input_files)  # fmt: skip
        logger.info(f"prime {Path(request.prime).name}: gain {gain.describe()}")
        samples = wave.samples * gain.factor
        if settings.prime_seconds is not None:
            samples = samples[-max(1, round(settings.prime_seconds * rate)) :]
        prime_codes = model.quantizer.encode(samples)
        prime_audio = model.quantizer.decode(prime_codes)
    return Prepared(
        checkpoint=checkpoint,
        model=model,
        rate=rate,
        num_samples=0 if settings.endless else max(1, round(settings.length * rate)),
        seed=seed,
        prime_codes=prime_codes,
        prime_audio=prime_audio,
        guard=QuietGuard.for_recording(
            checkpoint.training_level_dbfs, rate, settings.quiet_boost, checkpoint.reference
        ),
    )


def _make_folder(folder: Path) -> None:
    """Create the output folder with its parents, as train creates its run folder."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"output folder {folder} is a file, not a folder") from None
    except OSError as exc:
        raise OutputError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None


def generate_files(
    request: GenerateRequest,
    *,
    progress: Callable[[GenerateStatus], bool | None] | None = None,
    on_file: Callable[[Path], None] | None = None,
    score: bool = False,
) -> GenerateResult:
    """Generate clips from a checkpoint alone and write them as audio files.

    Files are named ``PREFIX_N.EXT`` with N continuing after the highest number already in
    the folder (created if missing), so nothing is ever overwritten; or the one clip goes to
    ``request.output`` (which must not exist). ``on_file`` is called with each path as soon
    as it is written. Takes are scored (:mod:`samplernn_cli.generation.ranking`) when
    ``settings.candidates`` ranks them, or with ``score``.

    Raises:
        CheckpointError, AudioError, OutputError, UsageError, ConfigError: see
        :mod:`samplernn_cli.errors`.
    """
    settings = request.settings
    if request.output is not None and request.output.exists():  # before the long part
        raise OutputError(f"{request.output} already exists; generate never overwrites files")
    job = prepare(request)
    checkpoint, model, rate, num_samples = job.checkpoint, job.model, job.rate, job.num_samples
    seed, prime_codes, prime_audio = job.seed, job.prime_codes, job.prime_audio
    if request.output is not None:
        if settings.count != 1:
            raise UsageError(f"an output file holds one clip; --count is {settings.count}")
        paths = [request.output]
        _make_folder(request.output.parent)
    else:
        out_dir = request.out_dir if request.out_dir is not None else checkpoint.path.parent
        _make_folder(out_dir)
        run_name = str(checkpoint.written["run_name"] or checkpoint.path.stem)
        prefix = request.prefix or f"{run_name}_iter_{checkpoint.iteration}_gen"
        paths = _output_paths(out_dir, prefix, f".{settings.file_format}", settings.count)
    temperatures = settings.clip_temperatures()
    ranking = settings.candidates is not None
    level, reference = checkpoint.training_level_dbfs, checkpoint.reference

    started = time.perf_counter()
    takes = settings.takes
    total = takes * num_samples
    written: list[Path] = []
    scores: list[TakeScore] = []
    held: list[torch.Tensor] = []  # ranked takes' audio, written once all are scored

    def write(clip: torch.Tensor, path: Path) -> None:
        if settings.keep_prime and prime_audio is not None:
            clip = torch.cat([prime_audio, clip])
        written.append(write_audio(path, clip, rate, subtype=ENCODINGS[settings.encoding],
                                   overwrite=False))  # fmt: skip
        if on_file is not None:
            on_file(written[-1])

    for first in range(0, takes, settings.batch_size):
        count = min(settings.batch_size, takes - first)

        def batch_progress(
            done: int, batch_total: int, first: int = first, count: int = count
        ) -> bool | None:
            if progress is None:
                return None
            finished = first * num_samples + count * min(done, num_samples)
            return progress(GenerateStatus(finished, total, time.perf_counter() - started, rate))

        batch = generate_takes(
            model,
            count,
            num_samples,
            temperature=temperatures[first : first + count],
            precision=settings.precision,
            seed=seed,
            first_clip=first,
            prime=prime_codes,
            progress=batch_progress,
            guard=job.guard,
        )
        audio_out = model.quantizer.decode(batch.codes.cpu())
        if ranking or score:
            scores += score_takes(audio_out, batch.bits_per_sample, rate, level, reference,
                                  first=first)  # fmt: skip
        for row in range(count):
            if ranking:
                held.append(audio_out[row])
            else:
                write(audio_out[row], paths[first + row])
    if ranking:
        ranked = rank(scores)
        kept = [s for s in ranked if s.trap is None][: settings.count]
        if len(kept) < settings.count:
            logger.warning(
                f"only {len(kept)} of {takes} takes are not traps ({describe_traps(scores)}); "
                f"wrote {len(kept)} of the {settings.count} clips asked for"
            )
        for score, path in zip(kept, paths, strict=False):
            write(held[score.take - 1], path)
        scores = ranked
    seconds = time.perf_counter() - started
    return GenerateResult(
        paths=written, seed=seed, seconds=seconds, samples=total, sample_rate=rate,
        scores=scores,
    )  # fmt: skip
