"""Faults a week-long run must survive: SIGKILL at any moment, full disks, bad numbers."""

from __future__ import annotations

import csv
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile

from samplernn_cli.checkpoint import load_checkpoint

from .audio_matrix import make_audio_matrix
from .conftest import (
    RATE,
    SAMPLERNN,
    TINY_FLAGS,
    RunApp,
    kill_while_training,
    read_losses,
    run_cli,
    tiny_request,
    tone_mix,
)

# A model big enough that writing its checkpoint (every iteration) takes a good share of the
# time, so random kills land inside checkpoint writes too.
KILL_FLAGS = [
    "--hidden_size", "96", "--rnn_layers", "2", "--frame_size", "4", "--embed_size", "8",
    "--quantization", "64", "--batch_size", "4", "--num_frames", "4",
    "--sequence-length", "0.05", "--val-fraction", "0.1", "--sample-rate", str(RATE),
    "--checkpoint_every", "1", "--val_every", "3", "--quiet",
]  # fmt: skip


def test_sigkill_at_random_moments_never_loses_the_run(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """Kill `samplernn train`/`resume` with SIGKILL at random moments (2 times; 20 with
    --run-slow). After every kill: each checkpoint present loads, the losses CSV parses (a
    partial last line is allowed), and the newest checkpoint resumes, which repairs the CSV."""
    kills = 20 if pytestconfig.getoption("--run-slow") else 2
    rng = random.Random(1234)
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(1.0, RATE), RATE)
    folder = tmp_path / "outputs" / "run"
    losses = folder / "run_losses.csv"
    command = [*SAMPLERNN, "train", str(source), "-o", "run", *KILL_FLAGS]
    for attempt in range(kills):
        # Once this session has trained a little, kill it at a random moment.
        kill_while_training(command, tmp_path, losses, lines=2, latest=0.6, rng=rng)

        checkpoints = sorted(folder.glob("run_epoch_*_iter_*_model.pt"),
                             key=lambda p: int(p.name.split("_")[4]))  # fmt: skip
        assert checkpoints, f"attempt {attempt}: no checkpoint written"
        for path in [*checkpoints, folder / "run_best_model.pt"]:
            if path.exists():
                load_checkpoint(path)  # raises if damaged
        with open(losses, newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0][:2] == ["iter", "loss"]
        complete = [row for row in rows[1:] if len(row) == 6]
        assert [int(row[0]) for row in complete] == list(range(1, len(complete) + 1))
        assert len(rows) - 1 - len(complete) <= 1  # at most one partial line, the last
        # Continue from the newest checkpoint next time round.
        command = [*SAMPLERNN, "resume", str(checkpoints[-1]), "--force", "--quiet"]

    newest = max(
        folder.glob("run_epoch_*_iter_*_model.pt"), key=lambda p: int(p.name.split("_")[4])
    )
    iteration = load_checkpoint(newest).iteration
    result = run_cli("resume", newest, "--max-iterations", iteration + 2, "--quiet", "--force",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = read_losses(losses)
    assert [int(r["iter"]) for r in rows] == list(range(1, iteration + 3))
    assert not list(folder.glob(".*.tmp"))  # temp files of killed writes were cleaned up


def test_disk_full_while_writing_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk during a checkpoint write: a clear error, the previous checkpoint intact,
    nothing half-written under a final name."""
    from samplernn_cli import fileio
    from samplernn_cli.config import LiveSettings
    from samplernn_cli.errors import OutputError
    from samplernn_cli.run.folder import RunFolder
    from samplernn_cli.training.session import train

    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(1.0, RATE), RATE)
    run = RunFolder(path=tmp_path / "run", name="run")
    original = fileio.atomic_write

    def fill_disk_after_first_checkpoint(path: Path, write: object, **kwargs: object) -> Path:
        if path.name.endswith("_model.pt") and (run.path / "run_epoch_1_iter_2_model.pt").exists():

            def partial(handle: object) -> None:
                handle.write(b"half a checkpoint")  # type: ignore[attr-defined]
                raise OSError(28, "No space left on device")

            return original(path, partial, **kwargs)  # type: ignore[arg-type]
        return original(path, write, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fileio, "atomic_write", fill_disk_after_first_checkpoint)
    import samplernn_cli.checkpoint.writing as checkpoint_module

    monkeypatch.setattr(checkpoint_module, "atomic_write", fill_disk_after_first_checkpoint)
    with pytest.raises(OutputError, match="No space left on device"):
        train(tiny_request(source, run.path, rate=RATE, iterations=10,
                           live=LiveSettings(checkpoint_every=2, val_every=1000)))  # fmt: skip
    names = sorted(p.name for p in run.path.iterdir())
    assert "run_epoch_1_iter_2_model.pt" in names
    assert "run_epoch_1_iter_4_model.pt" not in names
    assert not [n for n in names if n.endswith(".tmp")]
    load_checkpoint(run.path / "run_epoch_1_iter_2_model.pt")


NUMERIC_OPTIONS = {
    "train": [
        "--hidden_size", "--rnn_layers", "--frame_size", "--embed_size", "--quantization",
        "--batch_size", "--num_frames", "--sequence-length", "--learning-rate", "--grad-clip",
        "--val-fraction", "--seed", "--generate_every", "--checkpoint_every", "--val_every",
        "--length", "--num_generated", "--temperature", "--max-iterations", "--max-epochs",
        "--sample-rate", "--log-every",
    ],
    "generate": ["--length", "--count", "--seed", "--batch-size", "--prime-seconds"],
}  # fmt: skip
# Values no numeric option accepts (embed_size, seed and val-fraction accept 0).
BAD_VALUES = ["-1", "abc", "1e400", "99999999999999999999999", ""]


@pytest.mark.parametrize("command", NUMERIC_OPTIONS)
def test_bad_numbers_are_usage_errors(command: str, tmp_path: Path, run_app: RunApp) -> None:
    """Negative, non-numeric, infinite, absurd and empty values for every numeric option:
    exit code 2, one line naming the option, before anything is read or written."""
    target = tmp_path / "in.wav" if command == "train" else tmp_path / "ckpt.pt"
    target.write_bytes(b"unused: the option is refused before the file is read")
    failures = []
    for option in NUMERIC_OPTIONS[command]:
        values = list(BAD_VALUES)
        if option not in ("--embed_size", "--seed", "--val-fraction"):
            values.append("0")
        for value in values:
            result = run_app(command, target, option, value, cwd=tmp_path)
            lines = result.stderr.strip().splitlines()
            ok = (
                result.returncode == 2
                and len(lines) == 1
                and lines[0].startswith("error: ")
                and "Traceback" not in result.stderr
            )
            if not ok:
                failures.append(f"{option} {value!r}: {result.returncode} {result.stderr!r}")
    assert not failures, failures
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_absurdly_large_values_are_refused_before_allocating(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(0.5, RATE), RATE)
    for args in (["--hidden_size", "16384", "--rnn_layers", "64"],
                 ["--embed_size", "16384", "--frame_size", "4096"],
                 ["--quantization", "65536", "--hidden_size", "16384"]):  # fmt: skip
        result = run_cli("train", source, *args, cwd=tmp_path)
        assert result.returncode == 2 and "parameters" in result.stderr, result.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_input(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(0.5, RATE), RATE)
    source.chmod(0)
    result = run_cli("train", source, cwd=tmp_path)
    assert result.returncode == 1 and "permission denied" in result.stderr


def test_input_is_never_written(tmp_path: Path) -> None:
    """Even with --force, a run folder that would overwrite the input is refused."""
    folder = tmp_path / "outputs" / "x"
    folder.mkdir(parents=True)
    source = folder / "x_ground_truth.wav"
    soundfile.write(source, tone_mix(0.5, RATE), RATE)
    before = source.read_bytes()
    result = run_cli("train", source, "-o", "x", "--force", "--hidden_size", "8",
                     "--max-iterations", "1", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "input" in result.stderr, result.stderr
    assert source.read_bytes() == before


def test_bad_and_unusual_audio_through_the_command(tmp_path: Path) -> None:
    """Each input of the matrix is trained on, or refused with one line and exit code 1;
    never a traceback, and a refused input leaves no run folder behind."""
    from concurrent.futures import ThreadPoolExecutor

    cases = make_audio_matrix(tmp_path)
    assert len(cases) >= 20

    def attempt(item: tuple[int, tuple[str, tuple[Path, int, str]]]) -> str | None:
        index, (name, (path, code, fragment)) = item
        result = run_cli("train", path, "-o", f"case{index}", *TINY_FLAGS, "--max-iterations",
                         "1", "--quiet", cwd=tmp_path)  # fmt: skip
        lines = result.stderr.strip().splitlines()
        if result.returncode != code or "Traceback" in result.stderr:
            return f"{name}: exit {result.returncode}, stderr {result.stderr!r}"
        if code != 0 and (len(lines) != 1 or not lines[0].startswith("error:")
                          or fragment not in lines[0]):  # fmt: skip
            return f"{name}: expected one error line with {fragment!r}, got {lines!r}"
        made = (tmp_path / "outputs" / f"case{index}").exists()
        if made != (code == 0):
            return f"{name}: run folder {'made' if made else 'missing'}"
        return None

    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(attempt, enumerate(cases.items())) if f is not None]
    assert not failures, failures


@pytest.fixture
def tiny_filesystem(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 1 MiB filesystem (tmpfs), where this machine lets the tests mount one."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip("cannot mount a small filesystem here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_really_full_disk(tiny_filesystem: Path, tmp_path: Path) -> None:
    """Training into a 1 MiB filesystem fills it with real checkpoints and audio: exit 1 with
    one "No space left" line, every file left under a final name complete, no temp files;
    generating into the full disk fails the same way and leaves nothing half-written."""
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(1.0, RATE), RATE)
    flags = [*TINY_FLAGS, "--hidden_size", "48", "--checkpoint_every", "1", "--generate_every",
             "1", "--length", "1", "--max-iterations", "50", "--keep-checkpoints", "all",
             "--quiet"]  # fmt: skip
    result = run_cli("train", source, "-o", str(tiny_filesystem / "run"), *flags, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    # The start-up warning (the disk cannot hold the run's checkpoints), then the error,
    # which names the newest complete checkpoint.
    # (The tiny model's clips are noise: each round's warning says so; its 1 s recording is
    # too short for the distance, which a warning says too.)
    lines = [
        line
        for line in result.stderr.strip().splitlines()
        if "are traps" not in line and "ranked by their bits alone" not in line
    ]
    warning, error = lines

    assert warning.startswith(f"warning: the disk of {tiny_filesystem / 'run'} has "), warning
    assert "No space left on device" in error, error
    folder = tiny_filesystem / "run"
    newest = error.split("; the newest complete checkpoint is ")[1]
    assert load_checkpoint(newest).path.parent == folder
    assert not list(folder.glob(".*.tmp"))
    checkpoints = sorted(folder.glob("*_model.pt"))
    assert checkpoints, sorted(p.name for p in folder.iterdir())
    for checkpoint in checkpoints:
        load_checkpoint(checkpoint)
    for clip in folder.glob("*.wav"):
        assert soundfile.info(clip).frames > 0
    # Generating onto the full disk: the same kind of error, and no partial clip. The clip
    # (16-bit, 8 kHz) is a few seconds longer than the space left.
    before = sorted(p.name for p in folder.iterdir())
    length = shutil.disk_usage(folder).free // (2 * RATE) + 2
    result = run_cli("generate", checkpoints[0], "--length", str(length), "--seed", "1",
                     "--quiet", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1 and "No space left on device" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_code_cache_too_small_for_the_copies(tiny_filesystem: Path, tmp_path: Path) -> None:
    """The code cache on a 1 MiB filesystem that holds the codes of 40 s at 8 kHz but not
    their copies at other speeds: exit 1 with one "No space left" line that names the cache
    and how to move it, and nothing half-written left in it; with the copies off, the same
    command trains."""
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(40.0, RATE), RATE)
    env = {"SAMPLERNN_CACHE_DIR": str(tiny_filesystem)}
    flags = [*TINY_FLAGS, "--sample-rate", str(RATE), "--max-iterations", "2", "--quiet"]
    result = run_cli("train", source, "-o", "run", *flags, cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], lines
    assert "SAMPLERNN_CACHE_DIR" in lines[0] and "copy of the training audio" in lines[0]
    assert "Traceback" not in result.stderr
    assert len(list(tiny_filesystem.glob("*.codes"))) == 1  # the codes themselves
    assert not list(tiny_filesystem.rglob(".*.tmp"))
    result = run_cli("train", source, "-o", "run2", *flags, "--speed-spread", "0",
                     "--shift-copies", "0", cwd=tmp_path, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
