"""The real `samplernn` command, run in subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from .conftest import (
    SAMPLERNN,
    TINY_FLAGS,
    RunApp,
    WriteAudio,
    read_losses,
    run_cli,
    wait_for_loss_lines,
)


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and text in lines[0], lines[0]


def test_help_lists_commands_without_importing_torch(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "train" in result.stdout
    probe = (
        "import sys\n"
        "from samplernn_cli.cli.app import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('torch', 'matplotlib', 'tensorboard') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("with_thread", [False, True])
def test_the_command_ends_without_losing_output_exit_handlers_or_threads(
    tmp_path: Path, with_thread: bool
) -> None:
    """`samplernn` (cli.app.run) skips Python's slow teardown after the command, but keeps
    its exit code, what it left unflushed on stdout and stderr, what exit handlers do, and a
    running thread's work (which gets the ordinary exit)."""
    marker, done = tmp_path / "atexit.txt", tmp_path / "thread.txt"
    probe = f"""
import atexit, sys, threading, time
import samplernn_cli.cli.app as app
def command():
    atexit.register(lambda: open({str(marker)!r}, "w").write("ran"))
    if {with_thread!r}:
        late = lambda: (time.sleep(0.3), open({str(done)!r}, "w").write("x"))
        threading.Thread(target=late).start()
    sys.stdout.write("no newline on stdout")
    sys.stderr.write("no newline on stderr")
    sys.exit(3)
app.main = command
app.run()
print("never reached")
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 3
    assert (out.stdout, out.stderr) == ("no newline on stdout", "no newline on stderr")
    assert marker.read_text() == "ran"
    assert done.exists() == with_thread


def test_core_never_imports_typer_or_rich() -> None:
    # Every module of the package outside samplernn_cli/cli/.
    probe = (
        "import importlib, pkgutil, sys\n"
        "import samplernn_cli\n"
        "for info in pkgutil.walk_packages(samplernn_cli.__path__, 'samplernn_cli.'):\n"
        "    if not info.name.startswith(('samplernn_cli.cli', 'samplernn_cli.__main__')):\n"
        "        importlib.import_module(info.name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("samplernn ")


def test_train_end_to_end(tmp_path: Path, write_audio: WriteAudio) -> None:
    source = write_audio("my song.wav", seconds=1.0, rate=44100, channels=2, subtype="PCM_24")
    result = run_cli(
        "train", source, "-o", "run1", *TINY_FLAGS, "--max-iterations", "6",
        "--generate_every", "3", "--checkpoint_every", "3", "--length", "0.1",
        "--num_generated", "2", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "outputs" / "run1"
    assert result.stdout == f"{Path('outputs/run1/run1_epoch_1_iter_6_model.pt')}\n"
    for name in ("run1_epoch_1_iter_3_model.pt", "run1_epoch_1_iter_6_1.wav",
                 "run1_ground_truth.wav", "run1_args.json"):  # fmt: skip
        assert (folder / name).is_file(), name
    assert len(read_losses(folder / "run1_losses.csv")) == 6
    # Not a terminal: plain progress lines, no Rich control codes.
    assert "iter 1/6 | epoch 1" in result.stderr
    assert "\x1b[" not in result.stderr
    payload = torch.load(folder / "run1_epoch_1_iter_6_model.pt", weights_only=True)
    source = payload["input"]["files"][0]
    assert source["sample_rate"] == 44100 and source["channels"] == 2
    assert payload["sample_rate"] == 8000


def test_example_clip_and_dashed_and_underscored_options(tmp_path: Path) -> None:
    result = run_cli(
        "train", "--example", "-o", "demo", "--hidden-size", "8", "--rnn_layers", "1",
        "--frame-size", "4", "--embed_size", "2", "--batch-size", "2", "--num-frames", "2",
        "--sequence-length", "0.05", "--sample-rate", "8000", "--max-iterations", "2",
        "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # --quiet
    payload = torch.load(tmp_path / result.stdout.strip(), weights_only=True)
    assert payload["input"]["files"][0]["name"] == "speech_allison_10s.flac"
    assert payload["model_config"]["hidden_size"] == 8


def test_preset_fills_in_and_explicit_options_win(tmp_path: Path, write_audio: WriteAudio) -> None:
    source = write_audio("in.wav", seconds=1.0, rate=8000)
    result = run_cli(
        "train", source, "--preset", "small", "--hidden_size", "12", "--batch_size", "2",
        "--num_frames", "1", "--sample-rate", "8000", "--sequence-length", "0.1",
        "--max-iterations", "1", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = torch.load(tmp_path / result.stdout.strip(), weights_only=True)
    assert payload["model_config"]["hidden_size"] == 12  # explicit
    assert payload["model_config"]["embed_size"] == 64  # from the preset
    assert payload["train"]["batch_size"] == 2


def test_output_root_from_env_and_a_broken_user_config(
    tmp_path: Path, write_audio: WriteAudio
) -> None:
    source = write_audio("in.wav", seconds=0.5, rate=8000)
    common = [*TINY_FLAGS, "--max-iterations", "1", "--quiet"]
    env = {"SAMPLERNN_OUTPUT_ROOT": str(tmp_path / "from-env")}
    assert run_cli("train", source, "-o", "b", *common, cwd=tmp_path, env=env).returncode == 0
    assert (tmp_path / "from-env" / "b" / "b_losses.csv").is_file()
    config = tmp_path / "config.toml"
    config.write_text("output_root = [broken\n")
    result = run_cli("train", source, *common, cwd=tmp_path, env={"SAMPLERNN_CONFIG": str(config)})
    assert_one_error_line(result, 2, "cannot read the user config file")


def make_bad_inputs(
    tmp_path: Path, write_audio: WriteAudio
) -> dict[str, tuple[list[str], int, str]]:
    text = tmp_path / "notes.wav"
    text.write_text("definitely not audio")
    empty = tmp_path / "empty.wav"
    empty.touch()
    silent = write_audio("silent.wav", data=np.zeros(8000, dtype=np.float32))
    short = write_audio("short.wav", seconds=0.002, rate=8000)
    good = write_audio("good.wav", seconds=0.5, rate=8000)
    existing = tmp_path / "outputs" / "taken"
    existing.mkdir(parents=True)
    (existing / "taken_losses.csv").write_text("iter,loss\n")
    return {
        "missing": ([str(tmp_path / "nope.wav")], 1, "no such file"),
        "text": ([str(text)], 1, "not an audio file"),
        "empty": ([str(empty)], 1, "is empty"),
        "folder without audio": ([str(tmp_path / "outputs")], 1, "holds no audio files"),
        "silent": ([str(silent)], 1, "is silent"),
        "too short": ([str(short)], 1, "training needs at least"),
        "existing run": ([str(good), "-o", "taken"], 1, "already holds a run"),
        "no input": ([], 2, "missing input"),
        "two inputs, one bad": ([str(good), "-i", str(text)], 1, "not an audio file"),
        "zero hidden": ([str(good), "--hidden_size", "0"], 2, "--hidden_size"),
        "negative length": ([str(good), "--length", "-2"], 2, "--length"),
        "non-numeric": ([str(good), "--batch_size", "many"], 2, "--batch_size"),
        "zero max-time": ([str(good), "--max-time", "0s"], 2, "greater than zero"),
        "bad max-time": ([str(good), "--max-time", "soon"], 2, "cannot read duration"),
        "too many levels": ([str(good), "--quantization", "1000000"], 2, "--quantization"),
        "absurd model": ([str(good), "--hidden_size", "16384", "--rnn_layers", "64"], 2,
                         "parameters"),
        "bad device": ([str(good), "--device", "tpu"], 2, "device"),
        "both rates": ([str(good), "--sample-rate", "8000", "--keep-sample-rate"], 2,
                       "contradict"),
    }  # fmt: skip


# Refused while the command line is checked, before torch is imported: run in this process.
CHECKED_BEFORE_READING = {
    "no input", "zero hidden", "negative length", "non-numeric", "zero max-time",
    "bad max-time", "too many levels", "absurd model", "both rates",
}  # fmt: skip


def test_bad_inputs_get_one_line_and_an_exit_code(
    tmp_path: Path, write_audio: WriteAudio, run_app: RunApp
) -> None:
    cases = make_bad_inputs(tmp_path, write_audio)

    def attempt(label: str) -> str | None:
        args, code, text = cases[label]
        flags = [] if "hidden" in label or "model" in label else ["--hidden_size", "8"]
        run = run_app if label in CHECKED_BEFORE_READING else run_cli
        result = run("train", *args, *flags, "--max-iterations", "1", cwd=tmp_path)
        try:
            assert_one_error_line(result, code, text)
        except AssertionError as exc:
            return f"{label}: {exc}"
        return None

    failures = [attempt(label) for label in CHECKED_BEFORE_READING]
    with ThreadPoolExecutor(max_workers=2) as pool:
        others = [label for label in cases if label not in CHECKED_BEFORE_READING]
        failures += list(pool.map(attempt, others))
    failures = [f for f in failures if f is not None]
    assert not failures, failures
    # Nothing was written into the existing run, and no other run folder appeared.
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["taken"]
    assert [p.name for p in (tmp_path / "outputs" / "taken").iterdir()] == ["taken_losses.csv"]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_writes_a_checkpoint_and_exits(
    tmp_path: Path, write_audio: WriteAudio, sig: signal.Signals, code: int
) -> None:
    source = write_audio("in.wav", seconds=1.0, rate=8000)
    process = subprocess.Popen(
        [*SAMPLERNN, "train", str(source), "-o", "run", *TINY_FLAGS],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    losses = tmp_path / "outputs" / "run" / "run_losses.csv"
    wait_for_loss_lines(losses, 3, process, every=0.1)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    checkpoint = Path(stdout.strip())
    assert checkpoint.name.startswith("run_epoch_1_iter_")
    payload = torch.load(tmp_path / checkpoint, weights_only=True)
    rows = read_losses(losses)
    assert payload["progress"]["iteration"] == len(rows) == int(rows[-1]["iter"])
