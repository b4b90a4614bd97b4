"""Several input files and folders, the code cache, and torchrun (DistributedDataParallel)."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from samplernn_cli.config import AudioConfig
from samplernn_cli.data import cache as dataset_module
from samplernn_cli.data.cache import load_dataset
from samplernn_cli.data.files import find_audio_files
from samplernn_cli.data.plan import SequencePlan
from samplernn_cli.data.split import split_dataset, tail_length
from samplernn_cli.errors import ConfigError
from samplernn_cli.quantize import Quantizer

from .conftest import RATE, TINY_FLAGS, read_losses, run_cli, tone_mix

QUANTIZER = Quantizer("linear", 32)


def make_mixed_folder(root: Path) -> Path:
    """Files of different rates, channel counts, lengths and formats, in nested folders, plus
    files that are not picked up (text, hidden)."""
    folder = root / "album"
    (folder / "disc 2").mkdir(parents=True)
    soundfile.write(folder / "b.wav", tone_mix(1.5, 16000, seed=1), 16000)
    stereo = np.stack([tone_mix(1.0, 44100, seed=2), tone_mix(1.0, 44100, seed=3)], axis=1)
    soundfile.write(folder / "disc 2" / "c.flac", stereo, 44100)
    soundfile.write(folder / "a.ogg", tone_mix(2.0, 8000, seed=4), 8000, subtype="VORBIS")
    (folder / "notes.txt").write_text("not audio\n")
    soundfile.write(folder / ".hidden.wav", tone_mix(0.5, 8000), 8000)
    return folder


def test_folders_are_searched_in_name_order_without_hidden_or_other_files(
    tmp_path: Path,
) -> None:
    folder = make_mixed_folder(tmp_path)
    extra = tmp_path / "extra.wav"
    soundfile.write(extra, tone_mix(0.5, 8000), 8000)
    found = find_audio_files([folder, extra, folder / "b.wav"])
    assert [p.name for p in found] == ["a.ogg", "b.wav", "c.flac", "extra.wav"]


def test_mixed_files_become_one_rate_and_validation_never_overlaps_training(
    tmp_path: Path,
) -> None:
    folder = make_mixed_folder(tmp_path)
    data = load_dataset(find_audio_files([folder]), AudioConfig(sample_rate=RATE), QUANTIZER)
    # Every file at the model rate, mono, with its own length.
    assert [f.length for f in data.files] == [2 * RATE, round(1.5 * RATE), RATE]
    assert [f.source.channels for f in data.files] == [1, 1, 2]
    chunk, history, sequence = 16, 4, 400
    split = split_dataset([f.length for f in data.files], ["a", "b", "c"], val_fraction=0.1,
                          chunk_length=chunk, sample_rate=RATE)  # fmt: skip
    plan = SequencePlan(data.codes, split.train, history=history, zero_code=16,
                        sequence_length=sequence, chunk_length=chunk, batch_size=4,
                        seed=0)  # fmt: skip
    val = {s.file: s for s in split.val}
    train = {s.file: s for s in split.train}
    for index, file in enumerate(data.files):
        held = tail_length(file.length, 0.1, chunk)
        assert val[index].start == file.length - held and val[index].end == file.length
        assert train[index].start == 0 and train[index].end == val[index].start
    # Every sample a training sequence reads as a target lies in its file's training part;
    # the history before it comes from the same file (or is silence at the file's start).
    for file, start in zip(plan.files.tolist(), plan.starts.tolist(), strict=True):
        assert start + plan.sequence_length <= val[file].start
    for index in range(plan.batches_per_epoch):
        rows = plan.batch(0, index)
        chosen = plan.order(0)[index * 4 : (index + 1) * 4]
        for row, sequence_index in zip(rows, chosen.tolist(), strict=True):
            file, start = int(plan.files[sequence_index]), int(plan.starts[sequence_index])
            codes = torch.from_numpy(np.asarray(data.codes[file], dtype=np.int64))
            assert row[history:].tolist() == codes[start : start + plan.sequence_length].tolist()


def test_codes_are_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(1.0, 22050), 22050)
    cache = tmp_path / "cache"
    first = load_dataset([source], AudioConfig(sample_rate=RATE), QUANTIZER, cache=cache)
    assert isinstance(first.files[0].codes, np.memmap)
    assert len(list(cache.glob("*.codes"))) == 1

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(dataset_module, "read_audio", no_decoding)
    again = load_dataset([source], AudioConfig(sample_rate=RATE), QUANTIZER, cache=cache)
    assert again.fingerprint == first.fingerprint
    # A changed file (new size and time) is decoded again.
    monkeypatch.undo()
    soundfile.write(source, tone_mix(1.2, 22050, seed=3), 22050)
    changed = load_dataset([source], AudioConfig(sample_rate=RATE), QUANTIZER, cache=cache)
    assert changed.fingerprint != first.fingerprint


def test_the_cache_bound_reads_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dataset_module.LIMIT_ENV, raising=False)
    assert dataset_module.cache_limit() == dataset_module.DEFAULT_LIMIT == 20 * 10**9
    for text, want in [("20G", 20 * 10**9), ("500 MB", 500 * 10**6), ("1.5t", 1.5e12),
                       ("123", 123), ("0", 0), ("  8k ", 8000), ("None", None)]:  # fmt: skip
        monkeypatch.setenv(dataset_module.LIMIT_ENV, text)
        assert dataset_module.cache_limit() == want, text
    for text in ("-1G", "lots", "20 GiB", "1e9", "5 G B"):
        monkeypatch.setenv(dataset_module.LIMIT_ENV, text)
        with pytest.raises(ConfigError, match="SAMPLERNN_CACHE_LIMIT"):
            dataset_module.cache_limit()


def test_pruning_removes_the_entries_used_longest_ago_and_spares_the_session(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "cache"
    (folder / "copies").mkdir(parents=True)
    now = time.time()

    def entry(name: str, size: int, age: float, *, copy: bool = False) -> None:
        paths = [folder / "copies" / f"{name}.codes"] if copy else [
            folder / f"{name}.codes", folder / f"{name}.json"]  # fmt: skip
        paths[0].write_bytes(b"x" * size)
        if not copy:
            paths[1].write_text("{}")
        for path in paths:
            os.utime(path, (now - age, now - age))

    entry("oldest", 1000, 300)
    entry("copy", 2000, 200, copy=True)
    entry("recent", 500, 100)
    entry("session", 4000, 0)
    temporary = folder / ".session.codes.x1y2.tmp"  # being written by another run
    temporary.write_bytes(b"y" * 10000)
    os.utime(temporary, (now - 1000, now - 1000))

    def names() -> list[str]:
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())

    # 7,506 bytes held: the two used longest ago go, then it is within 5,000.
    pruned = dataset_module.prune_cache(folder, 5000, used_since=now - 50)
    assert (pruned.removed, pruned.freed, pruned.held) == (2, 3002, 4504)
    assert names() == [".session.codes.x1y2.tmp", "recent.codes", "recent.json",
                       "session.codes", "session.json"]  # fmt: skip
    # A bound below what the session uses removes everything else, never the session's,
    # nor what the process keeps (whatever its time).
    pruned = dataset_module.prune_cache(folder, 0, used_since=now - 50,
                                        keep={(folder / "recent.codes").absolute()})  # fmt: skip
    assert (pruned.removed, pruned.held) == (0, 4504)
    pruned = dataset_module.prune_cache(folder, 0, used_since=now - 50)
    assert (pruned.removed, pruned.held) == (1, 4002)
    assert names() == [".session.codes.x1y2.tmp", "session.codes", "session.json"]


def test_a_use_renews_an_entry(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(1.0, RATE), RATE)
    cache = tmp_path / "cache"
    load_dataset([source], AudioConfig(sample_rate=RATE), QUANTIZER, cache=cache)
    (codes,) = cache.glob("*.codes")
    os.utime(codes, (1e9, 1e9))  # 2001
    load_dataset([source], AudioConfig(sample_rate=RATE), QUANTIZER, cache=cache)
    assert codes.stat().st_mtime > time.time() - 60


def test_a_malformed_cache_bound_stops_train_before_anything_is_read(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(1.0, RATE), RATE)
    env = {"SAMPLERNN_CACHE_DIR": str(tmp_path / "cache"), "SAMPLERNN_CACHE_LIMIT": "lots"}
    result = run_cli("train", source, *TINY_FLAGS, "--max-iterations", "2", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: $SAMPLERNN_CACHE_LIMIT is 'lots'; give a size such as 20G, 500M or 1.5T "
        "(bytes, decimal units), or none"
    ]
    assert not (tmp_path / "cache").exists() and not (tmp_path / "outputs").exists()


def test_long_files_are_decoded_in_blocks_to_the_same_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "long.flac"
    stereo = np.stack([tone_mix(2.0, 44100, seed=5), 0.5 * tone_mix(2.0, 44100, seed=6)], axis=1)
    soundfile.write(source, stereo, 44100)
    quantizer = Quantizer("mu-law", 256)
    whole = load_dataset([source], AudioConfig(sample_rate=16000), quantizer,
                         cache=tmp_path / "whole")  # fmt: skip
    monkeypatch.setattr(dataset_module, "BLOCK_FRAMES", 10007)  # 9 blocks, odd boundaries
    blocks = load_dataset([source], AudioConfig(sample_rate=16000), quantizer,
                          cache=tmp_path / "blocks")  # fmt: skip
    a, b = np.asarray(whole.files[0].codes), np.asarray(blocks.files[0].codes)
    assert a.shape == b.shape == (32000,)
    # Float rounding may move a sample lying exactly between two levels, nothing more.
    assert np.abs(a.astype(int) - b).max() <= 1 and np.mean(a != b) < 1e-3
    assert blocks.files[0].gain == pytest.approx(whole.files[0].gain, rel=1e-5)
    assert blocks.files[0].source.frames == 88200


def test_training_on_a_folder_through_the_command(tmp_path: Path) -> None:
    folder = make_mixed_folder(tmp_path)
    cache = tmp_path / "cache"
    env = {"SAMPLERNN_CACHE_DIR": str(cache)}
    result = run_cli("train", folder, *TINY_FLAGS, "--max-iterations", "4", "--val_every", "2",
                     cwd=tmp_path, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    checkpoint = Path(tmp_path, result.stdout.strip())
    assert checkpoint.parent.name == "album"
    shown = run_cli("inspect-checkpoint", checkpoint, "--json", cwd=tmp_path)
    inputs = json.loads(shown.stdout)["input"]
    assert [f["name"] for f in inputs["files"]] == ["a.ogg", "b.wav", "c.flac"]
    assert [round(f["duration_s"], 3) for f in inputs["files"]] == [2.0, 1.5, 1.0]
    for file in inputs["files"]:
        assert file["val_seconds"] == pytest.approx(0.1 * file["duration_s"], abs=1 / RATE)
    # evaluate --held-out on the run's files reproduces its validation figure.
    scored = run_cli("evaluate", checkpoint, *find_audio_files([folder]), "--held-out", "--json",
                     cwd=tmp_path)  # fmt: skip
    summary = torch.load(checkpoint, weights_only=True)["summary"]
    assert json.loads(scored.stdout)["bits_per_sample"] == pytest.approx(
        summary["last_val_loss"], rel=1e-6
    )
    table = run_cli("inspect-checkpoint", checkpoint, cwd=tmp_path)
    assert "3 files" in table.stdout and "c.flac" in table.stdout
    # Whole files held out: each file either trains or validates.
    files_run = run_cli("train", folder, "-o", "by_files", *TINY_FLAGS, "--val-split", "files",
                        "--val-fraction", "0.3", "--max-iterations", "2", cwd=tmp_path,
                        env=env)  # fmt: skip
    assert files_run.returncode == 0, files_run.stderr
    payload = torch.load(Path(tmp_path, files_run.stdout.strip()), weights_only=True)
    files = payload["input"]["files"]
    assert all((f["train_samples"] == 0) != (f["val_samples"] == 0) for f in files)
    assert sum(f["val_samples"] > 0 for f in files) >= 1
    assert sum(f["train_samples"] > 0 for f in files) >= 1
    # Resume finds every file where the checkpoint says they are. With the code cache over
    # its bound, the entries used longest ago go (a stale file's, the other run's copies of
    # its own training parts), never those the resumed run uses.
    codes = sorted(cache.glob("*.codes"))
    assert len(codes) == 3
    stale = [cache / "stale.codes", cache / "stale.json"]
    for path in stale:
        path.write_bytes(b"x" * 5000)
        os.utime(path, (1e9, 1e9))  # 2001
    bounded = {**env, "SAMPLERNN_CACHE_LIMIT": "1k"}
    resumed = run_cli("resume", checkpoint, "--max-iterations", "5", cwd=tmp_path, env=bounded)
    assert resumed.returncode == 0, resumed.stderr
    assert "code cache: removed" in resumed.stderr and "entries used longest ago" in resumed.stderr
    assert "in entries in use; they stay" in resumed.stderr
    assert not any(path.exists() for path in stale)
    assert sorted(cache.glob("*.codes")) == codes


def torchrun(*args: str | os.PathLike[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "samplernn_cli", *map(str, args)]  # fmt: skip
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_torchrun_trains_like_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(2.0, RATE), RATE)
    # Random gains and input noise on: each process must vary its rows as one process would.
    common = [*TINY_FLAGS, "--device", "cpu", "--max-iterations", "6", "--val_every", "3",
              "--checkpoint_every", "3", "--generate_every", "3", "--length", "0.02",
              "--min-gain", "0.5", "--input-noise", "0.1"]  # fmt: skip
    # With TensorBoard (when installed, as with the dev extra): rank 0 alone writes events.
    board = ["--tensorboard"] if importlib.util.find_spec("tensorboard") else []
    distributed = torchrun("train", source, "-o", "dist", *common, *board, cwd=tmp_path)
    assert distributed.returncode == 0, distributed.stderr
    # One run folder, written once: one checkpoint path on stdout, rank 0's log only.
    assert distributed.stdout.strip() == str(Path("outputs/dist/dist_epoch_1_iter_6_model.pt"))
    assert distributed.stderr.count("run folder:") == 1
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["dist"]
    if board:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        event_folder = tmp_path / "outputs/dist/tensorboard"
        assert len(list(event_folder.iterdir())) == 1
        accumulator = EventAccumulator(str(event_folder), size_guidance={"scalars": 0})
        accumulator.Reload()
        train_steps = [e.step for e in accumulator.Scalars("bits_per_sample/train")]
        assert train_steps == [1, 2, 3, 4, 5, 6]
        assert [e.step for e in accumulator.Scalars("bits_per_sample/validation")] == [3, 6]
    single = run_cli("train", source, "-o", "single", *common, cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    rows = read_losses(tmp_path / "outputs/dist/dist_losses.csv")
    expected = read_losses(tmp_path / "outputs/single/single_losses.csv")
    for got, want in zip(rows, expected, strict=True):
        assert float(got["loss"]) == pytest.approx(float(want["loss"]), abs=1e-5)
        if want["val_loss"]:
            assert float(got["val_loss"]) == pytest.approx(float(want["val_loss"]), abs=1e-5)
    # A distributed checkpoint resumes in one process, and the other way round, on the same
    # trajectory.
    middle = tmp_path / "outputs/dist/dist_epoch_1_iter_3_model.pt"
    payload = torch.load(middle, weights_only=True)
    assert payload["rnn_state"][0][0].shape[1] == 4  # every rank's rows of the batch
    alone = run_cli("resume", middle, "-o", "d2s", "--max-iterations", "6", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr
    back = torchrun("resume", tmp_path / "outputs/single/single_epoch_1_iter_3_model.pt",
                    "-o", "s2d", "--max-iterations", "6", cwd=tmp_path)  # fmt: skip
    assert back.returncode == 0, back.stderr
    for name in ("d2s", "s2d"):
        resumed = read_losses(tmp_path / f"outputs/{name}/{name}_losses.csv")
        for got, want in zip(resumed[3:], expected[3:], strict=True):
            assert float(got["loss"]) == pytest.approx(float(want["loss"]), abs=1e-5)


def test_torchrun_refuses_a_batch_that_does_not_split(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(1.0, RATE), RATE)
    result = torchrun("train", source, *TINY_FLAGS, "--batch_size", "3", "--device", "cpu",
                      "--max-iterations", "1", cwd=tmp_path)  # fmt: skip
    assert result.returncode != 0
    assert "error: --batch_size 3 does not split evenly over 2 processes" in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_ctrl_c_under_torchrun_ends_every_process_with_a_checkpoint(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(2.0, RATE), RATE)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "samplernn_cli", "train", str(source), "-o", "run",
               *TINY_FLAGS, "--device", "cpu", "--generate_every", "100000"]  # fmt: skip
    # Its own process group, as a terminal's Ctrl-C reaches torchrun and every worker.
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    losses = tmp_path / "outputs" / "run" / "run_losses.csv"
    try:
        deadline = time.monotonic() + 120
        while not (losses.is_file() and len(read_losses(losses)) >= 20):
            assert process.poll() is None and time.monotonic() < deadline, "training did not run"
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert "SIGINT received" in stderr
    checkpoints = sorted((tmp_path / "outputs" / "run").glob("run_epoch_*_model.pt"))
    assert len(checkpoints) == 1, stderr
    last = int(read_losses(losses)[-1]["iter"])
    assert checkpoints[0].name.endswith(f"_iter_{last}_model.pt")
    resumed = run_cli("resume", checkpoint := checkpoints[0], "--max-iterations", str(last + 2),
                      cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, (checkpoint, resumed.stderr)


@pytest.mark.slow
def test_torchrun_with_a_learned_initial_state_and_three_tiers(tmp_path: Path) -> None:
    # The learned h0 is used only at a sequence's first chunk: DDP must cope with parameters
    # that get no gradient in some steps, and still match one process.
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(1.0, RATE), RATE)
    flags = [*TINY_FLAGS, "--frame-sizes", "2,2", "--rnn-type", "gru", "--learn-h0",
             "--weight-norm", "--skip-connections", "--device", "cpu", "--max-iterations", "8",
             "--val_every", "4", "--generate_every", "100"]  # fmt: skip
    flags.remove("--frame_size")
    flags.remove("4")  # the value of --frame_size (the first "4" in TINY_FLAGS)
    distributed = torchrun("train", source, "-o", "dist", *flags, cwd=tmp_path)
    assert distributed.returncode == 0, distributed.stderr
    single = run_cli("train", source, "-o", "single", *flags, cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    rows = read_losses(tmp_path / "outputs/dist/dist_losses.csv")
    expected = read_losses(tmp_path / "outputs/single/single_losses.csv")
    assert [float(r["loss"]) for r in rows] == pytest.approx(
        [float(r["loss"]) for r in expected], abs=1e-5
    )
