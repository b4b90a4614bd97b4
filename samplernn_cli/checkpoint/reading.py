"""Reading a checkpoint: :func:`load_checkpoint` loads and validates any file this package
or an older version wrote, and :class:`Checkpoint` answers what the rest of the package asks
of it."""

from __future__ import annotations

import dataclasses
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from samplernn_cli import __version__
from samplernn_cli.checkpoint.records import FORMAT, FORMAT_VERSION, RESUME_PROGRESS, Progress
from samplernn_cli.config import AudioConfig, LiveSettings, ModelConfig, TrainConfig
from samplernn_cli.distance import Reference
from samplernn_cli.errors import CheckpointError, ConfigError
from samplernn_cli.history import LossHistory
from samplernn_cli.model import ModelState, SampleRNN


@dataclass(frozen=True)
class Checkpoint:
    """A loaded, validated checkpoint. ``payload`` is the file's dict as written."""

    path: Path
    payload: dict[str, Any]
    model_config: ModelConfig
    audio: AudioConfig
    train: TrainConfig
    live: LiveSettings
    sample_rate: int
    progress: Progress

    @property
    def iteration(self) -> int:
        return self.progress.iteration

    @property
    def epoch(self) -> int:
        return self.progress.epoch

    @property
    def written(self) -> dict[str, Any]:
        """Who wrote the file, and when: its format and format version, the samplernn
        version, the time, the run's name and the machine (None or empty where an older file
        lacks one)."""
        payload = self.payload
        return {
            "format": payload["format"],
            "format_version": payload["format_version"],
            "package_version": payload.get("package_version"),
            "created": payload.get("created"),
            "run_name": payload.get("run_name"),
            "environment": payload.get("environment", {}),
        }

    @property
    def run_name(self) -> str:
        """The run's name (older files: the checkpoint folder's name)."""
        return str(self.payload.get("run_name") or self.path.parent.name)

    @property
    def history(self) -> LossHistory:
        return LossHistory.from_dict(self.payload.get("history", {}))

    @property
    def input_files(self) -> list[dict[str, Any]]:
        """The input files recorded (checkpoints of single-file runs from before several
        files could be given record one file directly under "input")."""
        source = self.payload.get("input", {})
        if not isinstance(source, dict):
            return []
        if "files" in source:
            return [f for f in source["files"] if isinstance(f, dict)]
        return [source] if "path" in source else []

    @property
    def training_level_dbfs(self) -> float | None:
        """RMS level of the training audio as the model heard it, where recorded."""
        level = self._recorded("level_dbfs")
        return float(level) if isinstance(level, (int, float)) else None

    @property
    def reference(self) -> Reference | None:
        """The training audio's statistics for the take-to-recording distance, where
        recorded (None in files written before it, or where they are unreadable: takes are
        then ranked as before)."""
        stored = self._recorded("reference")
        if not isinstance(stored, dict):
            return None
        try:
            return Reference.from_dict(stored)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError):
            return None

    @property
    def last_round(self) -> dict[str, Any] | None:
        """The last generation round's iteration and its takes' scores, best first, where
        recorded."""
        stored = self.payload.get("last_round")
        return stored if isinstance(stored, dict) else None

    @property
    def codes_sha256(self) -> str | None:
        """The fingerprint of the processed training audio, where recorded."""
        return self._recorded("codes_sha256")

    def _recorded(self, key: str) -> Any:
        source = self.payload.get("input", {})
        return source.get(key) if isinstance(source, dict) else None

    @property
    def is_export(self) -> bool:
        """An inference-only file written by ``samplernn export``."""
        return self.payload.get("kind") == "export"

    @property
    def parent(self) -> dict[str, Any] | None:
        """Where the run's starting weights came from (``--init-from``), if anywhere."""
        parent = self.payload.get("parent")
        return parent if isinstance(parent, dict) else None

    @property
    def exported_from(self) -> dict[str, Any] | None:
        """The training checkpoint an export was made from (see :func:`provenance`)."""
        source = self.payload.get("exported_from")
        return source if isinstance(source, dict) else None

    def require_training_state(self) -> None:
        """Raise :class:`CheckpointError` unless training can resume from this file."""
        if self.is_export:
            raise CheckpointError(
                f"{self.path} is an exported model (weights only, no optimizer or data "
                "state) and cannot be resumed; resume the training checkpoint it came from, "
                f"or fine-tune it with `samplernn train AUDIO --init-from {self.path}`"
            )
        progress = self.progress
        missing = [key for key in RESUME_PROGRESS if getattr(progress, key) is None]
        if "history" not in self.payload or missing:
            raise CheckpointError(f"{self.path} lacks the training state needed to resume")

    def rnn_state(self, device: torch.device) -> ModelState | None:
        """The RNN state carried into the next chunk, on ``device`` (None: reset)."""
        state = self.payload.get("rnn_state")
        if state is None:
            return None
        return [None if s is None else tuple(t.to(device) for t in s) for s in state]

    @property
    def weights(self) -> dict[str, torch.Tensor]:
        """The model's weights (of a run that averages its weights: the average)."""
        return self.payload["model"]

    @property
    def training_weights(self) -> dict[str, torch.Tensor]:
        """The weights training resumes from: ``weights`` unless the run averages them."""
        weights = self.payload.get("training_weights")
        return weights if isinstance(weights, dict) else self.weights

    @property
    def optimizer_state(self) -> dict[str, Any] | None:
        """The optimizer's state (None in an export)."""
        state = self.payload.get("optimizer")
        return state if isinstance(state, dict) else None

    @property
    def rng(self) -> dict[str, torch.Tensor]:
        return self.payload["rng"]

    @property
    def stored_summary(self) -> dict[str, Any]:
        """The summary written with the file (empty in files written before it)."""
        return self.payload.get("summary", {})

    def build_model(self, device: torch.device | str = "cpu") -> SampleRNN:
        """The network with this checkpoint's weights, on ``device``, in eval mode (float32:
        half-precision weights of an export are widened as they are copied in)."""
        model = SampleRNN(self.model_config)
        try:
            model.load_state_dict(self.weights)
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
        # torch's weights-only unpickler names the global it refused to import; anything
        # else it refuses is simply not a checkpoint.
        if "global" in str(exc).lower():
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
    _refuse_newer_settings(path, payload)
    try:
        # Settings added after format 1 was first written take the value that matches
        # checkpoints written before them (their declared legacy value).
        model_config = ModelConfig.from_dict(
            {**ModelConfig.legacy_values(), **payload["model_config"]}
        )
        model_config.validate()
        audio = AudioConfig.from_dict(payload["audio"])
        train = TrainConfig.from_dict({**TrainConfig.legacy_values(), **payload["train"]})
        live = LiveSettings.from_dict({**LiveSettings.legacy_values(), **payload["live"]})
        sample_rate = int(payload["sample_rate"])
        progress = Progress.from_dict(payload["progress"])
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
        progress=progress,
    )


def _refuse_newer_settings(path: Path, payload: dict) -> None:
    """A file written by a newer samplernn may hold settings this one does not know (a
    setting added since keeps the format): name the version that wrote it, to upgrade to,
    rather than calling the file damaged."""
    sections = {"model_config": ModelConfig, "audio": AudioConfig, "train": TrainConfig,
                "live": LiveSettings}  # fmt: skip
    unknown = []
    for key, settings in sections.items():
        section = payload.get(key)
        if isinstance(section, dict):
            known = {f.name for f in dataclasses.fields(settings)}  # type: ignore[arg-type]
            unknown += sorted(name for name in section if name not in known)
    if unknown:
        writer = payload.get("package_version", "?")
        raise CheckpointError(
            f"{path} was written by samplernn {writer}, with settings this samplernn "
            f"{__version__} does not know ({', '.join(unknown)}): upgrade samplernn-cli to "
            f"{writer} or newer to read it"
        )
