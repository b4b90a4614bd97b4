"""File checks and atomic writes, without importing torch.

Atomic writes go to a temp file in the same folder, are fsynced, then renamed into place: a
crash, a kill or a full disk leaves either the previous file or the complete new one under
the final name, never a partial file; the temp file is removed on failure.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from samplernn_cli.errors import OutputError, SampleRNNError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temp files are created 0600; the finished file gets the permissions a plain open() would.
FILE_MODE = 0o666 & ~_umask()


def atomic_write(
    path: Path, write: Callable[[BinaryIO], None], *, what: str = "", overwrite: bool = True
) -> Path:
    """Call ``write(handle)`` on a temp file, then atomically move it to ``path``.

    With ``overwrite`` False an existing ``path`` is never replaced, even by a file that
    appears while this one is being written (the move is a hard link, which fails if the
    name is taken).

    Raises:
        OutputError: the file could not be written (disk full, permission denied, the name
            is taken, ...).
    """
    if not overwrite and path.exists():
        raise OutputError(f"{path} already exists; not overwriting it")
    label = f"{what} {path}" if what else str(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {label}: {exc.strerror or exc}") from None
    try:
        # Unbuffered: a failed write fails at once, not later inside a seek or close.
        with os.fdopen(fd, "wb", buffering=0) as handle:
            recorder = _WriteErrors(handle)
            try:
                write(recorder)  # type: ignore[arg-type]
            except Exception:
                if recorder.error is not None:
                    raise recorder.error from None
                raise
            if recorder.error is not None:  # a writer that ignored a failed write
                raise recorder.error
            os.fsync(handle.fileno())
        os.chmod(tmp_name, FILE_MODE)
        if overwrite:
            os.replace(tmp_name, path)
        else:
            _move_no_clobber(tmp_name, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(exc, FileExistsError):
            raise OutputError(f"{path} already exists; not overwriting it") from None
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {label}: {exc.strerror or exc}") from None
        raise
    return path


class _WriteErrors:
    """A binary file whose ``write`` records its first OSError and returns the bytes written
    before it, instead of raising.

    Writers that call ``write`` from C (libsndfile through cffi, torch's zip writer) turn an
    exception there into a printed traceback or a vague "unexpected pos"; this way they see
    a short write and fail, and :func:`atomic_write` reports the real error (a full disk,
    say).
    """

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        if self.error is not None:
            return 0
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):  # an unbuffered write may be short; the next one says why
            try:
                written = self.handle.write(view[done:]) or 0
            except OSError as exc:
                self.error = exc
                break
            if written == 0:
                self.error = OSError(errno.EIO, "the write made no progress")
                break
            done += written
        return done

    def __getattr__(self, name: str) -> object:
        return getattr(self.handle, name)


def _move_no_clobber(source: str, target: Path) -> None:
    try:
        os.link(source, target)  # atomic, and fails if target exists
    except FileExistsError:
        raise
    except OSError:  # no hard links on this filesystem: check, then rename
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(source, target)
        return
    os.unlink(source)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); skipped where a folder cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)


def check_input_file(path: Path, error: type[SampleRNNError]) -> os.stat_result:
    """Fail early, with a plain message, on anything that is not a readable, non-empty
    regular file (missing, a folder, a FIFO or device, empty, no permission)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except PermissionError:
        raise error(f"{path}: permission denied") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or device would block or never end, and the readers need to seek.
        raise error(f"{path} is not a regular file (a pipe or device?); save it to a file first")
    if info.st_size == 0:
        raise error(f"{path} is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise error(f"{path}: permission denied")
    return info


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read a megabyte at a time (checkpoints are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def format_bytes(count: float) -> str:
    """1.2 GB, 740 MB, 96 kB (decimal units, as disk tools report free space)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            value = count / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(count)} bytes"
