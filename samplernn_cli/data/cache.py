"""Training audio from one or many files: decoding each once into a cache of codes, and
reading the codes lazily.

Every file is brought to the model's rate and mono (and peak-normalised on its own when
normalisation is on), quantized, and written to the code cache as 2 bytes per sample
(4 above 32768 levels). Training then reads the cached codes through a memory map, so the
dataset never has to fit in memory, and a second run (or a resume) on the same files skips
decoding. Files longer than :data:`BLOCK_FRAMES` are decoded, resampled and quantized block
by block, so not even one file is held whole in memory.

The cache lives in the user cache folder (``platformdirs``; ``$SAMPLERNN_CACHE_DIR``
overrides it); an entry is keyed by the file's path, size and modification time and the
processing settings. Codes made from the training audio (its copies, see
:mod:`samplernn_cli.data.augment`) are cached the same way (:func:`stored_codes`). Deleting
the folder is always safe.

The cache is bounded (:func:`bound_cache`, ``$SAMPLERNN_CACHE_LIMIT``): every use of an entry
renews its modification time, and when a training session has its data ready, the entries
used longest ago go until the cache is within its bound; those the session uses always stay.
Entries are only ever removed whole, and a run that finds one gone makes it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from samplernn_cli.audio import AudioSource, open_audio, read_audio, resample_stream
from samplernn_cli.config import AudioConfig
from samplernn_cli.decoders import Reader
from samplernn_cli.errors import AudioError, ConfigError, OutputError
from samplernn_cli.fileio import atomic_write, check_input_file, format_bytes
from samplernn_cli.quantize import Quantizer

logger = logging.getLogger("samplernn")

# Source frames decoded at a time. Files up to this length are decoded whole (as
# `generate` and `evaluate` read them); longer ones block by block: 4 M frames is 95 s at
# 44.1 kHz, 16 MB of floats per channel.
BLOCK_FRAMES = 2**22
CACHE_VERSION = 1
CACHE_ENV = "SAMPLERNN_CACHE_DIR"
LIMIT_ENV = "SAMPLERNN_CACHE_LIMIT"
# The bound when $SAMPLERNN_CACHE_LIMIT is not set: ten hours of training audio at 16 kHz
# take about 7 GB with the copies training makes at the defaults, so a few such datasets
# stay cached, and a folder of old entries cannot fill a disk unnoticed.
DEFAULT_LIMIT = 20 * 10**9
# Modification times taken this close before a session opened still count as its own
# (file systems store them as coarsely as 2 s).
CLOCK_SLACK_S = 2.0
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
# Every cache file this process has mapped: never removed by its own pruning, whatever the
# file system's clock says.
_MAPPED: set[Path] = set()


def cache_folder() -> Path:
    """Where decoded codes are cached: ``$SAMPLERNN_CACHE_DIR``, else the user cache folder."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("samplernn", appauthor=False)) / "codes"


@dataclass(frozen=True)
class EncodedFile:
    """One input file as codes at the model's rate."""

    source: AudioSource
    codes: np.ndarray  # (T,) int16 or int32 codes, memory-mapped from the cache
    gain: float  # normalisation factor (1.0 when off)
    peak: float  # peak of the mono mix at the model rate, before normalisation
    fingerprint: str  # sha256 of the codes' bytes

    @property
    def length(self) -> int:
        return int(self.codes.shape[0])


@dataclass(frozen=True)
class Dataset:
    """The training audio: every input file's codes, in order."""

    files: tuple[EncodedFile, ...]
    sample_rate: int

    @property
    def fingerprint(self) -> str:
        """Identifies the codes of all files, in order (one file: that file's fingerprint)."""
        if len(self.files) == 1:
            return self.files[0].fingerprint
        joined = "\n".join(f.fingerprint for f in self.files)
        return hashlib.sha256(joined.encode()).hexdigest()

    @property
    def total_samples(self) -> int:
        return sum(f.length for f in self.files)

    @property
    def codes(self) -> list[np.ndarray]:
        return [f.codes for f in self.files]


def code_dtype(q_levels: int) -> type[np.signedinteger]:
    """Smallest signed dtype that holds codes 0 .. levels - 1 (storage only)."""
    return np.int16 if q_levels <= 2**15 else np.int32


def load_dataset(
    paths: Sequence[Path],
    config: AudioConfig,
    quantizer: Quantizer,
    *,
    cache: Path | None = None,
) -> Dataset:
    """Decode (or take from the cache) every file, at the rate of the first file when
    ``config.sample_rate`` is None.

    Raises:
        AudioError: a file cannot be used (see :func:`encode_file`), or the cache cannot be
            written.
    """
    if not paths:
        raise AudioError("no input files")
    folder = cache or cache_folder()
    # Every header first, so a file that is not audio fails before anything is decoded.
    rates = []
    for path in paths:
        with open_audio(path) as (_, source):
            rates.append(source.sample_rate)
    rate = config.sample_rate or rates[0]
    files = []
    for number, path in enumerate(paths, 1):
        if len(paths) > 1 and (number == 1 or number % 50 == 0 or number == len(paths)):
            logger.info(f"reading input {number} of {len(paths)}: {path.name}")
        files.append(encode_file(path, rate, config.normalize, quantizer, folder))
    return Dataset(files=tuple(files), sample_rate=rate)


def _cache_key(
    path: Path, info: os.stat_result, rate: int, normalize: bool, quantizer: Quantizer
) -> str:
    identity = {
        "version": CACHE_VERSION,
        "path": str(path.resolve()),
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "sample_rate": rate,
        "normalize": normalize,
        "quantizer": quantizer.kind,
        "levels": quantizer.q_levels,
        "block_frames": BLOCK_FRAMES,
    }
    return _key(identity)


def _key(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:40]


def _mapped(path: Path, dtype: type | np.dtype, length: int) -> np.ndarray | None:
    """``length`` codes memory-mapped from ``path``; None when it is missing, unreadable,
    empty or of another length (damaged). A use renews the entry's modification time (the
    order :func:`prune_cache` removes entries in)."""
    try:
        codes = np.memmap(path, dtype=dtype, mode="r")
    except (OSError, ValueError):
        return None
    if codes.shape[0] != length:
        return None
    with contextlib.suppress(OSError):  # a read-only cache is used as it is
        os.utime(path)
    _MAPPED.add(path.absolute())
    return codes


def cache_limit() -> int | None:
    """The code cache's bound in bytes: ``$SAMPLERNN_CACHE_LIMIT`` (``20G``, ``500MB``,
    ``1.5T``, a number of bytes; ``none`` for no bound), else :data:`DEFAULT_LIMIT`.

    Raises:
        ConfigError: the variable is set to something else.
    """
    text = os.environ.get(LIMIT_ENV, "").strip().lower()
    if not text:
        return DEFAULT_LIMIT
    if text == "none":
        return None
    match = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([kmgt]?)b?", text)
    if match is None:
        raise ConfigError(
            f"${LIMIT_ENV} is {os.environ[LIMIT_ENV]!r}; give a size such as 20G, 500M or "
            "1.5T (bytes, decimal units), or none"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class Pruned:
    """What :func:`prune_cache` did."""

    removed: int  # entries
    freed: int  # bytes
    held: int  # bytes the cache holds afterwards


def _entries(folder: Path) -> list[tuple[float, int, list[Path]]]:
    """Every entry of the cache ``folder``: (last use, bytes, its files). A file's codes and
    their description are one entry; each copy is one."""
    groups: dict[Path, list[Path]] = {}
    for pattern in ("*.codes", "*.json", "copies/*.codes"):
        for path in folder.glob(pattern):
            groups.setdefault(path.with_suffix(""), []).append(path)
    entries = []
    for paths in groups.values():
        try:
            stats = [path.stat() for path in paths]
        except OSError:  # removed meanwhile by another run
            continue
        entries.append((max(s.st_mtime for s in stats), sum(s.st_size for s in stats), paths))
    return entries


def prune_cache(
    folder: Path, limit: int, *, used_since: float, keep: Collection[Path] = ()
) -> Pruned:
    """Remove the entries of the cache ``folder`` used longest ago until it holds at most
    ``limit`` bytes, never one used at or after ``used_since`` (a time.time()) nor one with
    a file in ``keep`` (absolute paths). Files of other kinds (temporary files being
    written) are left alone, as is an entry another process keeps from being removed."""
    entries = sorted(_entries(folder), key=lambda entry: entry[0])
    held = sum(size for _, size, _ in entries)
    removed = freed = 0
    for last_use, size, paths in entries:
        if held <= limit or last_use >= used_since:
            break
        if any(path.absolute() in keep for path in paths):
            continue
        try:
            # The codes first: where they cannot go (mapped by a process on Windows), the
            # entry stays whole.
            for path in sorted(paths, key=lambda p: p.suffix == ".json"):
                path.unlink(missing_ok=True)
        except OSError:
            continue
        removed, freed, held = removed + 1, freed + size, held - size
    return Pruned(removed=removed, freed=freed, held=held)


def bound_cache(opened: float, limit: int | None, folder: Path | None = None) -> Pruned | None:
    """Keep the code cache within ``limit`` bytes (:func:`cache_limit`), sparing what this
    process mapped and what was used since ``opened`` (the start of this session, whose
    reads renewed its entries; other runs' too); says what it removed. None when the cache
    is unbounded or missing."""
    folder = folder or cache_folder()
    if limit is None or not folder.is_dir():
        return None
    pruned = prune_cache(folder, limit, used_since=opened - CLOCK_SLACK_S, keep=_MAPPED)
    bound = f"its bound of {format_bytes(limit)} (${LIMIT_ENV})"
    if pruned.removed:
        logger.info(
            f"code cache: removed {pruned.removed} entr{'y' if pruned.removed == 1 else 'ies'} "
            f"used longest ago ({format_bytes(pruned.freed)}) to stay within {bound}; it "
            f"holds {format_bytes(pruned.held)}"
        )
    if pruned.held > limit:
        logger.info(
            f"code cache: {format_bytes(pruned.held)}, over {bound}, in entries in use; they stay"
        )
    return pruned


@contextlib.contextmanager
def _writing(cache: Path) -> Iterator[None]:
    """Creates the cache folder ``cache``; a write inside that fails (a full disk) becomes an
    AudioError that says what to do."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AudioError(f"cannot create the code cache {cache}: {exc.strerror or exc}") from None
    try:
        yield
    except OutputError as exc:
        raise AudioError(f"{exc}; free some space or point ${CACHE_ENV} elsewhere") from None


def _not_kept(cache: Path) -> AudioError:
    return AudioError(f"the code cache {cache} does not keep what is written to it")


def stored_codes(
    folder: Path,
    identity: dict,
    blocks: Callable[[], Iterable[np.ndarray]],
    length: int,
    dtype: np.dtype,
    *,
    what: str,
) -> np.ndarray:
    """``length`` codes made from the training audio, memory-mapped from the cache folder
    ``folder``: the entry keyed by ``identity`` when it is there whole, else what ``blocks()``
    gives, written there first.

    Raises:
        AudioError: the cache cannot be written (a full disk, no permission).
    """
    path = folder / f"{_key(identity)}.codes"
    stored = _mapped(path, dtype, length)
    if stored is None:

        def write(handle: BinaryIO) -> None:
            for block in blocks():
                handle.write(np.ascontiguousarray(block).tobytes())

        with _writing(folder):
            atomic_write(path, write, what=what)
        stored = _mapped(path, dtype, length)
        if stored is None:
            raise _not_kept(folder)
    return stored


def encode_file(
    path: Path, rate: int, normalize: bool, quantizer: Quantizer, cache: Path
) -> EncodedFile:
    """One file as cached codes at ``rate``: from the cache when it holds them, else decoded
    (whole, or block by block when long) and written there first.

    Raises:
        AudioError: the file is missing, unreadable, not audio, empty, silent or holds NaN or
            infinite samples, or the cache cannot be written.
    """
    info = check_input_file(path, AudioError)
    key = _cache_key(path, info, rate, normalize, quantizer)
    codes_path, meta_path = cache / f"{key}.codes", cache / f"{key}.json"
    dtype = code_dtype(quantizer.q_levels)
    cached = _read_cache(codes_path, meta_path, dtype)
    if cached is not None:
        return cached
    with _writing(cache):
        with open_audio(path) as (reader, source):
            # Files ffmpeg decodes declare no length: they are always read block by block.
            long_file = reader.frames is None or source.frames > BLOCK_FRAMES
        if long_file:
            meta = _encode_in_blocks(path, rate, normalize, quantizer, codes_path, dtype)
        else:
            meta = _encode_whole(path, rate, normalize, quantizer, codes_path, dtype)
        atomic_write(meta_path, lambda h: h.write(json.dumps(meta).encode()), what="cache entry")
    cached = _read_cache(codes_path, meta_path, dtype)
    if cached is None:
        raise _not_kept(cache)
    return cached


def _read_cache(codes_path: Path, meta_path: Path, dtype: type) -> EncodedFile | None:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        codes = _mapped(codes_path, dtype, meta["length"]) if meta["length"] else None
        if codes is None:
            return None
        return EncodedFile(
            source=AudioSource(**meta["source"]),
            codes=codes,
            gain=float(meta["gain"]),
            peak=float(meta["peak"]),
            fingerprint=str(meta["fingerprint"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _meta(source: AudioSource, length: int, gain: float, peak: float, digest: str) -> dict:
    return {
        "source": source.to_dict(),
        "length": length,
        "gain": gain,
        "peak": peak,
        "fingerprint": digest,
    }


def _encode_whole(
    path: Path, rate: int, normalize: bool, quantizer: Quantizer, target: Path, dtype: type
) -> dict:
    waveform = read_audio(path, AudioConfig(sample_rate=rate, normalize=normalize))
    codes = quantizer.encode(waveform.samples).numpy().astype(dtype)
    data = codes.tobytes()
    atomic_write(target, lambda handle: handle.write(data), what="code cache file")
    digest = hashlib.sha256(data).hexdigest()
    return _meta(waveform.source, codes.shape[0], waveform.gain, waveform.source_peak, digest)


def _mono_blocks(reader: Reader, path: Path) -> Iterator[torch.Tensor]:
    """The mono mix of an open file, BLOCK_FRAMES source frames at a time, from its start."""
    for data in reader.blocks(BLOCK_FRAMES):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise AudioError(f"{path} contains non-finite samples (NaN or infinity)")
        yield torch.from_numpy(data.mean(axis=1, dtype=np.float32))


def _encode_in_blocks(
    path: Path, rate: int, normalize: bool, quantizer: Quantizer, target: Path, dtype: type
) -> dict:
    """Two streaming passes over a long file: the peak (and length), then the codes."""
    with open_audio(path) as (reader, source):
        frames, peak = 0, 0.0

        def counted(blocks: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
            nonlocal frames
            for block in blocks:
                frames += block.numel()
                yield block

        mono = counted(_mono_blocks(reader, path))
        for block in resample_stream(mono, source.sample_rate, rate):
            peak = max(peak, float(block.abs().max())) if block.numel() else peak
        if frames == 0:
            raise AudioError(f"{path} contains no audio samples (only a header?)")
        if peak == 0.0:
            raise AudioError(f"{path} is silent (every sample is zero); there is nothing to learn")
        gain = 1.0 / peak if normalize else 1.0
        digest = hashlib.sha256()
        length = 0

        def write(out: BinaryIO) -> None:
            nonlocal length
            blocks = resample_stream(_mono_blocks(reader, path), source.sample_rate, rate)
            for block in blocks:
                data = quantizer.encode(block * gain if gain != 1.0 else block)
                data = data.numpy().astype(dtype).tobytes()
                digest.update(data)
                out.write(data)
                length += len(data) // np.dtype(dtype).itemsize

        atomic_write(target, write, what="code cache file")
    source = AudioSource(**{**source.to_dict(), "frames": frames})  # type: ignore[arg-type]
    return _meta(source, length, gain, peak, digest.hexdigest())


def decode_head(file: EncodedFile, quantizer: Quantizer, samples: int) -> torch.Tensor:
    """(N,) float32: the first ``samples`` codes of a file, decoded."""
    head = torch.from_numpy(np.array(file.codes[:samples], dtype=np.int64))
    return quantizer.decode(head)
