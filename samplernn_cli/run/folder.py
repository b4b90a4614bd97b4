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
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import platformdirs

from samplernn_cli.errors import ConfigError, RunFolderError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_OUTPUT_ROOT = "SAMPLERNN_OUTPUT_ROOT"
ENV_CONFIG = "SAMPLERNN_CONFIG"
DEFAULT_ROOT = Path("outputs")
NAME_PATTERN = re.compile(r"^[^/\\\x00]+$")
# NAME_epoch_E_iter_I, then what the file is: a checkpoint (_model.pt), clip N (_N.wav) or
# the round's picture (.png). The run name is greedy: it is what comes before the last
# "_epoch_E_iter_I" that such a tail follows.
ITERATION_FILE = re.compile(
    r"^(?P<run_name>.+)_epoch_(?P<epoch>\d+)_iter_(?P<iteration>\d+)"
    r"(?:(?P<checkpoint>_model\.pt)|_(?P<number>\d+)\.wav|\.png)$"
)


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
class IterationFile:
    """What the name of a file a run writes at an iteration says (:meth:`RunFolder.parse`)."""

    run_name: str
    kind: Literal["checkpoint", "clip", "picture"]
    epoch: int
    iteration: int
    number: int | None  # of a clip, counting from 1


def _named(suffix: str, doc: str | None = None) -> property:
    """The run's file ``NAME_suffix``, as a property of :class:`RunFolder`."""
    return property(lambda folder: folder.file(suffix), doc=doc or f"NAME_{suffix}")


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run's artifacts: it names them and parses their names."""

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

    args_json = _named("args.json")
    losses_csv = _named("losses.csv")
    ground_truth = _named("ground_truth.wav")
    input_example = _named("input_example.wav")
    target_example = _named("target_example.wav")
    overlap_example = _named("overlap_example.wav")
    best_model = _named("best_model.pt", "The checkpoint with the best validation figure so far.")

    def checkpoint(self, epoch: int, iteration: int) -> Path:
        return self.file(f"epoch_{epoch}_iter_{iteration}_model.pt")

    def clip(self, epoch: int, iteration: int, number: int) -> Path:
        return self.file(f"epoch_{epoch}_iter_{iteration}_{number}.wav")

    def picture(self, epoch: int, iteration: int) -> Path:
        """The picture of the generation round at ``iteration``."""
        return self.file(f"epoch_{epoch}_iter_{iteration}.png")

    @staticmethod
    def parse(name: str) -> IterationFile | None:
        """What a file name made by :meth:`checkpoint`, :meth:`clip` or :meth:`picture` (of
        any run) says; None for any other name."""
        match = ITERATION_FILE.match(name)
        if match is None:
            return None
        number = match["number"]
        return IterationFile(
            run_name=match["run_name"],
            kind="checkpoint" if match["checkpoint"] else "picture" if number is None else "clip",
            epoch=int(match["epoch"]),
            iteration=int(match["iteration"]),
            number=None if number is None else int(number),
        )

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
        if path.name in {p.name for p in fixed}:
            return True
        parsed = self.parse(path.name)
        return parsed is not None and parsed.run_name == self.name

    def artifacts_after(self, iteration: int) -> list[Path]:
        """Checkpoints, generated clips and pictures of this run written after ``iteration``."""
        later = []
        for path in self.existing_artifacts():
            parsed = self.parse(path.name)
            if parsed is not None and parsed.run_name == self.name and parsed.iteration > iteration:
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
