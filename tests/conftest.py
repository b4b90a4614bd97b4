"""Shared fixtures: small synthetic audio files in a temp folder and tiny model settings."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Each pytest-xdist worker (and every command it starts, which inherits this) gets its share
# of the cores. Left to the default, each of two workers ran torch with as many OpenMP
# threads as the machine has cores, and on 2 cores the threads waited on each other's: the
# voice's tests took 98 s, 53 s with this alone, 23 s with it and numba's pool keeping
# torch's count (model/tables.py: follow_torch_threads). A caller's OMP_NUM_THREADS is kept.
if "PYTEST_XDIST_WORKER" in os.environ:
    _workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))

import numpy as np
import pytest
import soundfile

from samplernn_cli.config import LiveSettings, ModelConfig, TrainConfig

if TYPE_CHECKING:
    from samplernn_cli.training.requests import TrainRequest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow")
    cuda = None
    for item in items:
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords:
            if cuda is None:
                import torch

                cuda = torch.cuda.is_available()
            if not cuda:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


@pytest.fixture(autouse=True, scope="session")
def _code_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Decoded training audio is cached in a temp folder (also for the commands the tests
    run), never in the user's cache."""
    os.environ["SAMPLERNN_CACHE_DIR"] = str(tmp_path_factory.mktemp("code-cache"))


def tone_mix(seconds: float, rate: int, *, seed: int = 0) -> np.ndarray:
    """A learnable test signal: two tones with slow amplitude modulation and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.4 * np.sin(2 * np.pi * 0.5 * t)
    signal = envelope * (0.6 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 331 * t))
    signal += 0.01 * rng.standard_normal(t.shape)
    return (0.8 * signal / np.abs(signal).max()).astype(np.float32)


WriteAudio = Callable[..., Path]


@pytest.fixture
def write_audio(tmp_path: Path) -> WriteAudio:
    """write_audio(name, seconds=2.0, rate=16000, channels=1, subtype="PCM_16", data=None)."""

    def write(
        name: str = "input.wav",
        seconds: float = 2.0,
        rate: int = 16000,
        channels: int = 1,
        subtype: str = "PCM_16",
        data: np.ndarray | None = None,
    ) -> Path:
        if data is None:
            mono = tone_mix(seconds, rate)
            data = np.stack([mono * (1 - 0.1 * c) for c in range(channels)], axis=1)
        path = tmp_path / name
        soundfile.write(path, data, rate, subtype=subtype)
        return path

    return write


# The sample rate of the tiny runs' audio (TINY_FLAGS, tiny_request, train_tiny).
RATE = 8000
# A model small enough that a training step takes milliseconds on one CPU core. Without the
# linear prediction, whose fit over 16,000 samples would cost more than the rest of a step
# (tests/test_prediction.py runs it through the command).
TINY_MODEL = ModelConfig(frame_sizes=(4,), rnn_layers=1, hidden_size=16, embed_size=4, q_levels=32,
                         linear_prediction=0)  # fmt: skip
TINY_TRAIN = TrainConfig(batch_size=4, num_frames=4, sequence_seconds=0.05, val_fraction=0.1)
TINY_LIVE = LiveSettings(
    length=0.01, num_generated=2, generate_every=1000, checkpoint_every=1000, val_every=5
)


def tiny_request(
    source: Path, run: Path, *, rate: int = RATE, iterations: int = 12, **changes: Any
) -> TrainRequest:
    """Training the tiny model on ``source`` at ``rate`` on the CPU for ``iterations``, into
    the run folder ``run`` (the run named after it); ``changes`` replace other fields."""
    from samplernn_cli.config import AudioConfig, StopConditions
    from samplernn_cli.run.folder import RunFolder
    from samplernn_cli.training.requests import TrainRequest

    base = TrainRequest(
        inputs=(source,), run=RunFolder(path=run, name=run.name), model=TINY_MODEL,
        audio=AudioConfig(sample_rate=rate), train=TINY_TRAIN, live=TINY_LIVE,
        stop=StopConditions(max_iterations=iterations), device="cpu",
    )  # fmt: skip
    return replace(base, **changes)


def train_tiny(
    root: Path, iterations: int, *, rate: int = RATE, live: LiveSettings = TINY_LIVE
) -> Path:
    """Train the tiny model for ``iterations`` on a second of tones (``root/in.wav``, the run
    in ``root/run``) and return its last checkpoint."""
    from samplernn_cli.training.session import train

    source = root / "in.wav"
    soundfile.write(source, tone_mix(1.0, rate), rate)
    result = train(tiny_request(source, root / "run", rate=rate, iterations=iterations, live=live))
    assert result.checkpoint is not None
    return result.checkpoint


# Command-line flags for the same tiny model.
TINY_FLAGS = [
    "--hidden_size", "16", "--rnn_layers", "1", "--frame_size", "4", "--embed_size", "4",
    "--quantization", "32", "--batch_size", "4", "--num_frames", "4",
    "--sequence-length", "0.05", "--val-fraction", "0.1", "--sample-rate", str(RATE),
    "--linear-prediction", "0",
]  # fmt: skip


_SCRIPT = Path(sys.executable).with_name("samplernn")
# The console script pip installed next to this Python; `python -m samplernn_cli` otherwise.
SAMPLERNN = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "samplernn_cli"]


def run_cli(
    *args: str | os.PathLike[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``samplernn`` command in a subprocess."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("SAMPLERNN_DEBUG", None)
    return subprocess.run(
        [*SAMPLERNN, *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


RunApp = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_app(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> RunApp:
    """Run the ``samplernn`` app in this process, for command lines that fail while their
    options are checked (no subprocess needed); returns what ``run_cli`` returns."""
    from samplernn_cli.cli.app import main

    monkeypatch.delenv("SAMPLERNN_DEBUG", raising=False)

    def run(*args: str | os.PathLike[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


def read_losses(path: Path) -> list[dict[str, str]]:
    """The rows of a run's NAME_losses.csv as dicts of strings."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def loss_lines(path: Path) -> int:
    """Lines in a run's NAME_losses.csv so far (header included; 0 before it exists)."""
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for_loss_lines(
    path: Path, more_than: int, process: subprocess.Popen, *, every: float = 0.02
) -> None:
    """Wait until a training process has written more than ``more_than`` lines to its loss
    log (it has trained a little), or it ended, or a minute passed."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if loss_lines(path) > more_than:
            return
        time.sleep(every)


def kill_while_training(
    command: list[str], cwd: Path, losses: Path, *, lines: int, latest: float, rng: random.Random
) -> None:
    """Run the training ``command`` in ``cwd`` until it has written ``lines`` more lines to
    its loss log ``losses``, then SIGKILL it at a random moment up to ``latest`` seconds
    later; fail if it ended by itself before that."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for_loss_lines(losses, loss_lines(losses) + lines, process)
    time.sleep(rng.uniform(0.0, latest))
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "training ended by itself before the kill"
