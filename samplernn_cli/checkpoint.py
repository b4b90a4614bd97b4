"""Versioned, self-describing checkpoints: atomic save and safe load.

A checkpoint is a ``torch.save`` of a dict holding only tensors and plain data (str, int,
float, bool, None, lists, dicts), so it loads with ``torch.load(weights_only=True)``:
loading never runs code from the file. It carries everything needed to generate without the
training data and to resume training exactly: the configs, the sample rate, the weights, the
optimizer state, the RNG state, the position in the data plan, the carried RNN state and the
loss history.
"""

from __future__ import annotations

import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from samplernn_cli import __version__
from samplernn_cli.config import AudioConfig, LiveSettings, ModelConfig, TrainConfig
from samplernn_cli.errors import CheckpointError, ConfigError, OutputError
from samplernn_cli.fileio import atomic_write
from samplernn_cli.model import SampleRNN

FORMAT = "samplernn-cli checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus the format header) to ``path`` atomically.

    Raises:
        OutputError: the file could not be written; nothing is left under ``path``.
    """
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        **payload,
    }
    try:
        atomic_write(path, lambda handle: torch.save(payload, handle), what="checkpoint")
    except RuntimeError as exc:  # torch's zip writer reports I/O failures this way
        raise OutputError(f"cannot write checkpoint {path}: {exc}") from None


@dataclass(frozen=True)
class Checkpoint:
    """A loaded, validated checkpoint."""

    path: Path
    payload: dict[str, Any]
    model_config: ModelConfig
    audio: AudioConfig
    train: TrainConfig
    live: LiveSettings
    sample_rate: int

    @property
    def iteration(self) -> int:
        return int(self.payload["progress"]["iteration"])

    @property
    def epoch(self) -> int:
        return int(self.payload["progress"]["epoch"])

    def build_model(self, device: torch.device | str = "cpu") -> SampleRNN:
        """The network with this checkpoint's weights, on ``device``, in eval mode."""
        model = SampleRNN(self.model_config)
        try:
            model.load_state_dict(self.payload["model"])
        except (RuntimeError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"{self.path}: the weights do not match the model settings stored with them "
                f"({first})"
            ) from None
        return model.to(device).eval()


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load and validate a checkpoint on the CPU without running any code from the file.

    Raises:
        CheckpointError: missing, empty, truncated, corrupt, foreign (not written by
            samplernn), unsafe (contains objects that would run code) or from a newer format.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); the checkpoint was not written")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower():
            raise CheckpointError(
                f"{path} holds Python objects other than tensors and plain data, which could run "
                "code when loaded; refusing to load it (samplernn checkpoints never do)"
            ) from None
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupt pickle data)"
        ) from None
    except PermissionError:
        raise CheckpointError(f"{path}: permission denied") from None
    except MemoryError:
        raise CheckpointError(f"{path} is too large to load into memory") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, OSError, KeyError, ...
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupt: {type(exc).__name__})"
        ) from None
    return _validate(path, payload)


def _validate(path: Path, payload: object) -> Checkpoint:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a samplernn checkpoint (it was written by another program)"
        )
    version = payload.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path} has an invalid format version ({version!r})")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} uses checkpoint format {version}, written by samplernn "
            f"{payload.get('package_version', '?')}; this is samplernn {__version__} "
            f"(format {FORMAT_VERSION}): upgrade samplernn-cli to read it"
        )
    try:
        model_config = ModelConfig.from_dict(payload["model_config"])
        model_config.validate()
        audio = AudioConfig.from_dict(payload["audio"])
        train = TrainConfig.from_dict(payload["train"])
        live = LiveSettings.from_dict(payload["live"])
        sample_rate = int(payload["sample_rate"])
        progress = payload["progress"]
        int(progress["iteration"]), int(progress["epoch"])
        if not isinstance(payload["model"], dict):
            raise TypeError("weights are not a state dict")
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{path} is incomplete or damaged ({exc})") from None
    return Checkpoint(
        path=path,
        payload=payload,
        model_config=model_config,
        audio=audio,
        train=train,
        live=live,
        sample_rate=sample_rate,
    )
