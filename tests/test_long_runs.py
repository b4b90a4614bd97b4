"""Runs of days: keeping only the newest checkpoints, resuming a run folder, batch jobs that
are stopped at their time limit and submitted again."""

from __future__ import annotations

import os
import random
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import torch

from samplernn_cli.checkpoint import load_checkpoint, write_payload
from samplernn_cli.config import LiveSettings, StopConditions
from samplernn_cli.run.folder import RunFolder
from samplernn_cli.run.retention import disk_plan, newest_complete, periodic_checkpoints

from .conftest import (
    RATE,
    SAMPLERNN,
    TINY_FLAGS,
    RunApp,
    kill_while_training,
    loss_lines,
    read_losses,
    run_cli,
    tone_mix,
    wait_for_loss_lines,
)

LONG_RUNS_GUIDE = Path(__file__).resolve().parents[1] / "docs" / "long-runs.md"


def iterations(folder: Path, name: str = "run") -> list[int]:
    return [stored.iteration for stored in periodic_checkpoints(folder, name)]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in.wav"
    soundfile.write(path, tone_mix(1.0, RATE), RATE)
    return path


def test_retention_keeps_the_newest_and_the_best(tmp_path: Path, source: Path) -> None:
    """--keep-checkpoints 2 with a checkpoint every iteration: the 2 newest periodic
    checkpoints and the best model remain, each loads; resuming by folder protects the
    checkpoint it started from and keeps counting."""
    folder = tmp_path / "outputs" / "run"
    result = run_cli("train", source, "-o", "run", *TINY_FLAGS, "--checkpoint_every", "1",
                     "--keep-checkpoints", "2", "--val_every", "4", "--max-iterations", "30",
                     "--log-every", "1", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert iterations(folder) == [29, 30]
    assert (folder / "run_best_model.pt").is_file()
    for path in folder.glob("*.pt"):
        load_checkpoint(path)
    assert re.search(r"checkpoints: about \d+ kB each, every iteration; keeping the newest 2",
                     result.stderr), result.stderr  # fmt: skip
    assert "deleted run_epoch_1_iter_28_model.pt" in result.stderr
    assert '"keep_checkpoints": 2' in (folder / "run_args.json").read_text()

    # Resumed by folder with one kept: the checkpoint it started from stays while it runs.
    result = run_cli("resume", folder, "--keep-checkpoints", "1", "--max-iterations", "34",
                     "--quiet", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(folder / "run_epoch_1_iter_34_model.pt")
    assert iterations(folder) == [30, 34]
    # A later session no longer protects 30 (but does 34, its own start); by run name.
    result = run_cli("resume", "run", "--max-iterations", "35", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert iterations(folder) == [34, 35]
    assert [int(row["iter"]) for row in read_losses(folder / "run_losses.csv")] == list(
        range(1, 36)
    )


def test_the_default_keeps_five_checkpoints_and_all_keeps_every_one(
    tmp_path: Path, source: Path
) -> None:
    """Without --keep-checkpoints a run keeps its 5 newest periodic checkpoints; `all` (null
    in NAME_args.json, as runs from before the default wrote) keeps every one, also when a
    checkpoint written before the setting existed is resumed."""
    folder = tmp_path / "outputs" / "run"
    common = [*TINY_FLAGS, "--checkpoint_every", "1", "--val_every", "4", "--quiet"]
    result = run_cli("train", source, "-o", "run", *common, "--max-iterations", "9",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert iterations(folder) == [5, 6, 7, 8, 9]
    assert '"keep_checkpoints": 5' in (folder / "run_args.json").read_text()

    every = tmp_path / "outputs" / "every"
    result = run_cli("train", source, "-o", "every", *common, "--max-iterations", "6",
                     "--keep-checkpoints", "all", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert iterations(every, "every") == [1, 2, 3, 4, 5, 6]
    assert '"keep_checkpoints": null' in (every / "every_args.json").read_text()

    # A checkpoint whose live settings lack the key (written before it existed) keeps all.
    newest = load_checkpoint(every / "every_epoch_1_iter_6_model.pt")
    payload = {k: v for k, v in newest.payload.items()
               if k not in ("format", "format_version", "package_version")}  # fmt: skip
    payload["live"] = {k: v for k, v in payload["live"].items() if k != "keep_checkpoints"}
    write_payload(newest.path, payload)
    (every / "every_args.json").unlink()
    assert load_checkpoint(newest.path).live.keep_checkpoints is None
    result = run_cli("resume", every, "--max-iterations", "8", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert iterations(every, "every") == list(range(1, 9))
    # "all" in NAME_args.json reads as null too.
    (every / "every_args.json").write_text('{"keep_checkpoints": "all"}')
    result = run_cli("resume", every, "--max-iterations", "9", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert iterations(every, "every") == list(range(1, 10))


def test_retention_survives_sigkill(tmp_path: Path, source: Path) -> None:
    """SIGKILL at random moments of a run that writes and deletes a checkpoint every
    iteration: every checkpoint left loads, at most one beyond the 2 kept is left (killed
    between writing the newest and deleting the oldest), and resuming the folder goes on."""
    rng = random.Random(7)
    folder = tmp_path / "outputs" / "run"
    losses = folder / "run_losses.csv"
    flags = [*TINY_FLAGS, "--hidden_size", "96", "--checkpoint_every", "1", "--val_every", "3",
             "--keep-checkpoints", "2", "--quiet"]  # fmt: skip
    command = [*SAMPLERNN, "train", str(source), "-o", "run", *flags]
    started_from = None
    for attempt in range(2):
        kill_while_training(command, tmp_path, losses, lines=3, latest=0.5, rng=rng)
        kept = [i for i in iterations(folder) if i != started_from]
        assert 2 <= len(kept) <= 3, (attempt, kept, started_from)
        for path in folder.glob("*.pt"):
            load_checkpoint(path)  # raises if damaged
        command = [*SAMPLERNN, "resume", str(folder), "--quiet"]
        started_from = iterations(folder)[-1]  # kept while the next session runs
    newest = iterations(folder)[-1]
    result = run_cli("resume", folder, "--max-iterations", newest + 2, "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The 2 newest, and the one this session started from.
    assert iterations(folder) == [newest, newest + 1, newest + 2]
    assert (folder / "run_best_model.pt").is_file()


def test_resume_by_folder_passes_over_a_damaged_newest(
    tmp_path: Path, source: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The newest checkpoint damaged: resuming the folder says so and continues from the
    newest one that loads, replacing the damaged file when the run gets there again."""
    folder = tmp_path / "outputs" / "run"
    result = run_cli("train", source, "-o", "run", *TINY_FLAGS, "--checkpoint_every", "3",
                     "--max-iterations", "9", "--quiet", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    damaged = folder / "run_epoch_1_iter_9_model.pt"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    assert newest_complete(folder).iteration == 6
    assert "passing over run_epoch_1_iter_9_model.pt" in caplog.text

    result = run_cli("resume", folder, "--max-iterations", "10", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "passing over run_epoch_1_iter_9_model.pt" in result.stderr
    assert "resuming from run_epoch_1_iter_6_model.pt, the newest complete checkpoint" in (
        result.stderr
    )
    assert "resuming run from iteration 6" in result.stderr
    assert load_checkpoint(damaged).iteration == 9  # written again, complete
    assert [int(r["iter"]) for r in read_losses(folder / "run_losses.csv")] == list(range(1, 11))


def test_resume_by_folder_bad_input(tmp_path: Path, source: Path, run_app: RunApp) -> None:
    """A folder with no checkpoint, one whose every checkpoint is damaged, a missing name:
    one line each, exit 1; a retention of 0 or less: a usage error, exit 2."""
    empty = tmp_path / "outputs" / "empty"
    empty.mkdir(parents=True)
    (empty / "empty_losses.csv").write_text("iter,loss\n")
    result = run_cli("resume", empty, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {empty} holds no checkpoint (NAME_epoch_E_iter_I_model.pt) to resume; a run "
        "writes its first one after checkpoint_every iterations or when it stops"
    ]
    broken = tmp_path / "outputs" / "broken"
    broken.mkdir()
    (broken / "broken_epoch_1_iter_5_model.pt").write_bytes(b"not a checkpoint")
    result = run_cli("resume", "broken", cwd=tmp_path)
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: none of the 1 checkpoints in {Path('outputs/broken')}")
    assert "Traceback" not in result.stderr
    result = run_app("resume", "no-such-run", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr == "error: no-such-run: no such file\n"
    for value in ("0", "-1", "two"):
        result = run_app("train", source, "--keep-checkpoints", value, cwd=tmp_path)
        assert result.returncode == 2, (value, result.stderr)
        assert "--keep-checkpoints" in result.stderr and len(result.stderr.splitlines()) == 1


def test_disk_plan_warns_with_the_numbers(tmp_path: Path) -> None:
    """The start-up estimate against the real free space of the run folder's disk."""
    run = RunFolder(tmp_path, "run")
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    small = 1000
    keep3 = LiveSettings(keep_checkpoints=3)
    line, warning = disk_plan(run, checkpoint_bytes=small, live=keep3, stop=StopConditions(),
                              iteration=0, iterations_per_epoch=10)  # fmt: skip
    assert line == (
        "checkpoints: about 1.0 kB each, every 1000 iterations; keeping the newest 3 and the "
        "best model (up to 5.0 kB)"
    )
    assert warning is None
    huge = free // 2  # two of them (the first + the best model) fit; five do not
    _, warning = disk_plan(run, checkpoint_bytes=huge, live=LiveSettings(keep_checkpoints=3),
                           stop=StopConditions(), iteration=0, iterations_per_epoch=10)  # fmt: skip
    assert warning is not None and "before an old checkpoint is deleted" in warning
    assert "or lower --keep-checkpoints" in warning
    # Keeping all with an end: everything up to it; without one: the next checkpoint.
    live = LiveSettings(checkpoint_every=100, keep_checkpoints=None)
    _, warning = disk_plan(run, checkpoint_bytes=free // 10, live=live,
                           stop=StopConditions(max_iterations=2000), iteration=0,
                           iterations_per_epoch=10)  # fmt: skip
    assert warning is not None and "by iteration 2000" in warning
    assert "--keep-checkpoints N" in warning
    line, warning = disk_plan(run, checkpoint_bytes=free // 10, live=live, stop=StopConditions(),
                              iteration=0, iterations_per_epoch=10)  # fmt: skip
    assert warning is None and "all kept (room for about" in line


def test_a_full_disk_names_the_newest_checkpoint(tmp_path: Path, source: Path) -> None:
    """The disk fills mid-run: the one-line error names the newest complete checkpoint, which
    loads and resumes."""
    from samplernn_cli.checkpoint import writing as checkpoint_module
    from samplernn_cli.errors import OutputError
    from samplernn_cli.training.requests import TrainRequest
    from samplernn_cli.training.session import train

    from .conftest import TINY_MODEL, TINY_TRAIN

    run = RunFolder(path=tmp_path / "run", name="run")
    original = checkpoint_module.atomic_write

    def full_after_iteration_4(path: Path, write: object, **kwargs: object) -> Path:
        if path.name == "run_epoch_1_iter_6_model.pt":
            raise OutputError(f"cannot write checkpoint {path}: No space left on device")
        return original(path, write, **kwargs)  # type: ignore[arg-type]

    checkpoint_module.atomic_write = full_after_iteration_4  # type: ignore[assignment]
    try:
        with pytest.raises(OutputError) as caught:
            train(TrainRequest(inputs=(source,), run=run, model=TINY_MODEL, train=TINY_TRAIN,
                               live=LiveSettings(checkpoint_every=2, keep_checkpoints=1),
                               stop=StopConditions(max_iterations=10), device="cpu"))  # fmt: skip
    finally:
        checkpoint_module.atomic_write = original
    newest = run.path / "run_epoch_1_iter_4_model.pt"
    assert str(caught.value) == (
        f"cannot write checkpoint {run.path / 'run_epoch_1_iter_6_model.pt'}: No space left on "
        f"device; the newest complete checkpoint is {newest}"
    )
    assert iterations(run.path) == [4]
    assert load_checkpoint(newest).iteration == 4


def _job_script(tmp_path: Path, source: Path, iterations: int) -> Path:
    """The Slurm job script of docs/long-runs.md, with its settings lines pointed at a tiny run."""
    text = LONG_RUNS_GUIDE.read_text(encoding="utf-8")
    script = re.search(r"```bash\n(#!/bin/bash\n#SBATCH.*?)```", text, re.S)
    assert script is not None, "docs/long-runs.md has no Slurm job script"
    body = script.group(1)
    options = [*TINY_FLAGS, "--val_every", "7", "--checkpoint_every", "50",
               "--keep-checkpoints", "2"]  # fmt: skip
    settings = {
        "AUDIO": str(source),
        "NAME": "myrun",
        "ITERATIONS": str(iterations),
        "OPTIONS": '"' + " ".join(options) + '"',
    }
    for key, value in settings.items():
        body, count = re.subn(rf"^{key}=.*$", f"{key}={value}", body, flags=re.M)
        assert count == 1, key
    path = tmp_path / "train.sbatch"
    path.write_text(body)
    return path


def test_slurm_job_resubmitted_after_time_limits_equals_one_run(
    tmp_path: Path, source: Path
) -> None:
    """The guide's job script, stopped twice by the scheduler's SIGTERM and run to its end:
    it resubmits itself after each stop (and not after the end), the loss log holds every
    iteration once, and the final weights equal an uninterrupted run's."""
    total = 300
    job = _job_script(tmp_path, source, total)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    submitted = tmp_path / "submitted.txt"
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(f'#!/bin/sh\necho "$@" >> {submitted}\n')
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}"
           f"{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    losses = tmp_path / "outputs" / "myrun" / "myrun_losses.csv"
    for job_number, stop_after in enumerate((30, 150, None)):
        before = loss_lines(losses)
        process = subprocess.Popen(["bash", str(job)], cwd=tmp_path, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)  # fmt: skip
        if stop_after is not None:
            wait_for_loss_lines(losses, stop_after, process, every=0.005)
            process.send_signal(signal.SIGTERM)  # Slurm's warning, to the job script
        _, err = process.communicate(timeout=120)
        expected = 143 if stop_after is not None else 0
        assert process.returncode == expected, (job_number, err)
        assert "Traceback" not in err
        resubmissions = submitted.read_text().splitlines() if submitted.exists() else []
        assert resubmissions == [str(job)] * min(job_number + 1, 2), (job_number, err)
        assert loss_lines(losses) > before
    rows = read_losses(losses)
    assert [int(row["iter"]) for row in rows] == list(range(1, total + 1))

    result = run_cli("train", source, "-o", "straight", *TINY_FLAGS, "--val_every", "7",
                     "--max-iterations", total, "--quiet", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    straight = load_checkpoint(newest_complete(tmp_path / "outputs" / "straight").path).weights
    assert newest_complete(tmp_path / "outputs" / "myrun").iteration == total
    resumed = load_checkpoint(newest_complete(tmp_path / "outputs" / "myrun").path).weights
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    assert [float(r["loss"]) for r in rows] == [
        float(r["loss"])
        for r in read_losses(tmp_path / "outputs" / "straight" / "straight_losses.csv")
    ]
