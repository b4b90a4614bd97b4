"""The run folder ``<root>/NAME/`` and the names of everything in it.

File names follow the original tool: ``NAME_args.json``, ``NAME_losses.csv``,
``NAME_ground_truth.wav``, ``NAME_input_example.wav``, ``NAME_target_example.wav``,
``NAME_overlap_example.wav``, ``NAME_epoch_E_iter_I_model.pt`` and
``NAME_epoch_E_iter_I_N.wav``; each generation round's picture is ``NAME_epoch_E_iter_I.png``
and TensorBoard's event files go to ``tensorboard/``.

The root is, first found: the ``--output-root`` option, the ``SAMPLERNN_OUTPUT_ROOT``
environment variable, ``output_root`` in the user config file (``config.toml`` in the
platform's user config folder, or the file named by ``SAMPLERNN_CONFIG``), ``./outputs``.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from samplernn_cli.errors import ConfigError, OutputError, RunFolderError
from samplernn_cli.fileio import atomic_write

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_OUTPUT_ROOT = "SAMPLERNN_OUTPUT_ROOT"
ENV_CONFIG = "SAMPLERNN_CONFIG"
DEFAULT_ROOT = Path("outputs")
NAME_PATTERN = re.compile(r"^[^/\\\x00]+$")


def user_config_path() -> Path:
    """Where the user config file is looked for."""
    override = os.environ.get(ENV_CONFIG)
    if override:
        return Path(override).expanduser()
    return platformdirs.user_config_path("samplernn") / "config.toml"


def resolve_output_root(option: Path | None) -> Path:
    """The folder that holds run folders (see the module docstring for the order)."""
    if option is not None:
        return option.expanduser()
    env = os.environ.get(ENV_OUTPUT_ROOT)
    if env:
        return Path(env).expanduser()
    config_path = user_config_path()
    if config_path.is_file():
        try:
            settings = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the user config file {config_path}: {exc}") from None
        root = settings.get("output_root")
        if root is not None:
            if not isinstance(root, str) or not root:
                raise ConfigError(f"{config_path}: output_root must be a folder path (a string)")
            return Path(root).expanduser()
    return DEFAULT_ROOT


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run's artifacts."""

    path: Path
    name: str

    @classmethod
    def locate(cls, out: str, root: Path) -> RunFolder:
        """``-o NAME`` is a run name under ``root``; a value with a path separator is the run
        folder itself (its last component is the run name)."""
        if not out or out.strip() != out or out in {".", ".."}:
            raise ConfigError(f"invalid run name {out!r}")
        if os.sep in out or (os.altsep and os.altsep in out):
            folder = Path(out).expanduser()
            name = folder.name
            if not name or name in {".", ".."}:
                raise ConfigError(f"invalid run folder {out!r}: it must end in a name")
            return cls(path=folder, name=name)
        if not NAME_PATTERN.match(out):
            raise ConfigError(f"invalid run name {out!r}")
        return cls(path=root / out, name=out)

    def file(self, suffix: str) -> Path:
        return self.path / f"{self.name}_{suffix}"

    @property
    def args_json(self) -> Path:
        return self.file("args.json")

    @property
    def losses_csv(self) -> Path:
        return self.file("losses.csv")

    @property
    def ground_truth(self) -> Path:
        return self.file("ground_truth.wav")

    @property
    def input_example(self) -> Path:
        return self.file("input_example.wav")

    @property
    def target_example(self) -> Path:
        return self.file("target_example.wav")

    @property
    def overlap_example(self) -> Path:
        return self.file("overlap_example.wav")

    @property
    def best_model(self) -> Path:
        """The checkpoint with the best validation figure so far."""
        return self.file("best_model.pt")

    def checkpoint(self, epoch: int, iteration: int) -> Path:
        return self.file(f"epoch_{epoch}_iter_{iteration}_model.pt")

    def clip(self, epoch: int, iteration: int, number: int) -> Path:
        return self.file(f"epoch_{epoch}_iter_{iteration}_{number}.wav")

    def picture(self, epoch: int, iteration: int) -> Path:
        """The picture of the generation round at ``iteration``."""
        return self.file(f"epoch_{epoch}_iter_{iteration}.png")

    @property
    def tensorboard(self) -> Path:
        """The folder of TensorBoard's event files."""
        return self.path / "tensorboard"

    def existing_artifacts(self) -> list[Path]:
        """Files in the folder that belong to a run of this name."""
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.glob(f"{glob_escape(self.name)}_*") if p.is_file())

    def check_available(self, *, force: bool) -> None:
        """Refuse a folder that already holds a run of this name, unless ``force``.

        Raises:
            RunFolderError: the run exists (without ``force``), or the path is not a folder.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"{self.path} exists and is not a folder")
        existing = self.existing_artifacts()
        if existing and not force:
            raise RunFolderError(
                f"{self.path} already holds a run named {self.name!r} "
                f"({len(existing)} files); continue it with `samplernn resume {self.path}`, "
                "choose another name with -o, or pass --force to overwrite its files"
            )

    def owns(self, path: Path) -> bool:
        """Whether ``path`` is a file this run writes (so it must never be an input)."""
        if path.resolve().parent != self.path.resolve():
            return False
        fixed = {self.args_json, self.losses_csv, self.ground_truth, self.input_example,
                 self.target_example, self.overlap_example, self.best_model}  # fmt: skip
        pattern = rf"^{re.escape(self.name)}_epoch_\d+_iter_\d+(_model\.pt|_\d+\.wav|\.png)$"
        return path.name in {p.name for p in fixed} or re.match(pattern, path.name) is not None

    def artifacts_after(self, iteration: int) -> list[Path]:
        """Checkpoints, generated clips and pictures of this run written after ``iteration``."""
        pattern = re.compile(
            rf"^{re.escape(self.name)}_epoch_\d+_iter_(\d+)(_model\.pt|_\d+\.wav|\.png)$"
        )
        later = []
        for path in self.existing_artifacts():
            match = pattern.match(path.name)
            if match and int(match.group(1)) > iteration:
                later.append(path)
        return later

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the run folder while training, so two processes never
        train into the same folder at once. The lock is on the folder itself (no lock file
        to leave behind); it is a no-op where flock is not available."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise RunFolderError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunFolderError(
                    f"another samplernn process is training in {self.path}; wait for it to "
                    "finish or stop it first"
                ) from None
            except OSError:
                pass  # the filesystem does not support locks: go on without one
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete temp files a killed process left while writing this run's files (call
        while holding :meth:`lock`, so that no live writer owns them)."""
        removed = []
        for path in self.path.glob(f".{glob_escape(self.name)}_*.tmp"):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
        return removed

    def create(self) -> None:
        """Create the folder (and its parents) and check that it is writable."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(
                f"cannot create run folder {self.path}: {exc.strerror or exc}"
            ) from None
        if not os.access(self.path, os.W_OK):
            raise RunFolderError(f"run folder {self.path} is not writable")


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


LOSS_COLUMNS = ("iter", "loss", "epoch", "elapsed_s", "val_loss", "samples_per_s")
# iter, loss (bits), epoch, elapsed seconds, validation loss (bits) or None, samples/s
LossRow = tuple[int, float, int, float, float | None, float]


class LossLog:
    """``NAME_losses.csv``: one row per iteration, appended and flushed as training goes.

    Columns: ``iter`` (iteration number), ``loss`` (training NLL, bits per sample), ``epoch``,
    ``elapsed_s`` (training wall-clock seconds, summed over sessions), ``val_loss``
    (validation NLL in bits per sample, empty where not measured), ``samples_per_s``
    (target samples per second of that iteration).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: io.TextIOWrapper | None = None

    def open(self, rows: Iterable[LossRow] = ()) -> None:
        """Start the file with ``rows`` (the history when resuming), then open it for
        appending. Whatever the file held before is replaced, partial lines included."""
        text = ",".join(LOSS_COLUMNS) + "\n" + "".join(_format_row(*row) for row in rows)
        atomic_write(self.path, lambda handle: handle.write(text.encode("utf-8")))
        try:
            self._handle = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def append(
        self,
        iteration: int,
        loss: float,
        epoch: int,
        elapsed: float,
        val_loss: float | None,
        samples_per_s: float,
    ) -> None:
        if self._handle is None:
            raise RuntimeError("LossLog.append before open")
        try:
            self._handle.write(
                _format_row(iteration, loss, epoch, elapsed, val_loss, samples_per_s)
            )
            self._handle.flush()
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None


def _format_row(
    iteration: int,
    loss: float,
    epoch: int,
    elapsed: float,
    val_loss: float | None,
    samples_per_s: float,
) -> str:
    val = "" if val_loss is None else _number(val_loss, 6)
    return f"{iteration},{_number(loss, 6)},{epoch},{elapsed:.3f},{val},{samples_per_s:.1f}\n"


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
