"""resume, generate, inspect-checkpoint and quantize-preview through the real command."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from samplernn_cli.checkpoint import write_payload

from .conftest import (
    RATE,
    SAMPLERNN,
    TINY_FLAGS,
    TINY_LIVE,
    TINY_MODEL,
    RunApp,
    read_losses,
    run_cli,
    tone_mix,
    train_tiny,
    wait_for_loss_lines,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a tiny run, copied alone into a folder without the training data."""
    root = tmp_path_factory.mktemp("trained")
    # Long and fast enough to learn the tones, so that temperature matters.
    checkpoint = train_tiny(
        root, 200, rate=RATE, live=replace(TINY_LIVE, learning_rate=5e-3, val_every=100)
    )
    alone = root / "alone"
    alone.mkdir()
    return Path(shutil.copy(checkpoint, alone))


def test_generate_writes_the_files_it_prints(trained: Path, tmp_path: Path) -> None:
    folder = tmp_path / "gen"
    folder.mkdir()
    checkpoint = Path(shutil.copy(trained, folder))
    result = run_cli("generate", checkpoint.name, "--length", "0.25", "--count", "3", "--seed",
                     "7", cwd=folder)  # fmt: skip
    assert result.returncode == 0, result.stderr
    paths = result.stdout.splitlines()
    assert len(paths) == 3
    assert paths == [f"run_iter_200_gen_{n}.wav" for n in (1, 2, 3)]
    for path in paths:
        info = soundfile.info(folder / path)
        assert info.samplerate == RATE and info.frames == 2000 and info.subtype == "PCM_16"
    # The same seed gives identical files; the numbering continues instead of overwriting.
    again = run_cli("generate", checkpoint.name, "--length", "0.25", "--count", "3", "--seed",
                    "7", "--batch-size", "2", cwd=folder)  # fmt: skip
    assert again.stdout.splitlines() == [f"run_iter_200_gen_{n}.wav" for n in (4, 5, 6)]
    for first, second in zip(paths, again.stdout.splitlines(), strict=True):
        assert (folder / first).read_bytes() == (folder / second).read_bytes()


def test_candidates_keep_the_best_takes_best_first(trained: Path, tmp_path: Path) -> None:
    common = ["generate", trained, "--length", "0.5", "--count", "2", "--candidates", "6",
              "--seed", "3", "--json", "--quiet"]  # fmt: skip
    result = run_cli(*common, "-d", tmp_path / "a", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    takes = document["takes"]
    assert document["seed"] == 3 and len(takes) == 6
    assert sorted(t["take"] for t in takes) == [1, 2, 3, 4, 5, 6]
    kept = [t for t in takes if t["kept"]]
    assert [t["path"] for t in kept] == [str(tmp_path / "a" / f"run_iter_200_gen_{n}.wav")
                                         for n in (1, 2)]  # fmt: skip
    assert takes[:2] == kept and all(t["trap"] is None for t in kept)
    # Best first: the kept takes by their bits, and no dropped take that is not a trap is
    # more likely than a kept one.
    assert kept[0]["bits"] <= kept[1]["bits"]
    assert all(t["bits"] >= kept[1]["bits"] for t in takes[2:] if t["trap"] is None)
    for take in takes:
        assert set(take) == {"path", "kept", "take", "bits", "distance", "level_dbfs",
                             "silent_share", "loop_correlation", "flatness", "trap"}  # fmt: skip
        # A second of training audio is too little to measure the distance against: the
        # takes are ranked by their bits, as before the distance.
        assert take["distance"] is None
        assert 0 < take["bits"] < 5  # 32 levels: at most 5 bits
        assert (take["path"] is None) != take["kept"]
    # The same seed gives the same takes, whatever the batches; a take is what it would be
    # among --count takes without --candidates.
    again = run_cli(*common, "--batch-size", "4", "-d", tmp_path / "b", cwd=tmp_path)
    assert json.loads(again.stdout)["takes"] == [
        {**t, "path": t["path"] and t["path"].replace("/a/", "/b/")} for t in takes
    ]
    plain = run_cli("generate", trained, "--length", "0.5", "--count", "6", "--seed", "3",
                    "--quiet", "-d", tmp_path / "c", cwd=tmp_path)  # fmt: skip
    files = plain.stdout.splitlines()
    for take in kept:
        first = Path(take["path"]).read_bytes()
        assert first == Path(files[take["take"] - 1]).read_bytes()
    # Without --candidates, --json scores every take, each kept, in the order generated.
    listed = run_cli("generate", trained, "--length", "0.5", "--count", "2", "--seed", "3",
                     "--quiet", "--json", "-d", tmp_path / "d", cwd=tmp_path)  # fmt: skip
    plain_takes = json.loads(listed.stdout)["takes"]
    assert [(t["take"], t["kept"]) for t in plain_takes] == [(1, True), (2, True)]
    assert [t["bits"] for t in plain_takes] == [
        next(t["bits"] for t in takes if t["take"] == n) for n in (1, 2)
    ]


def test_temperatures_change_the_output_statistics(trained: Path, tmp_path: Path) -> None:
    result = run_cli(
        "generate", trained, "--length", "1", "--temperature", "0.3,1.0,2.0", "--seed", "1",
        "-d", tmp_path, "--format", "flac", "--encoding", "pcm24", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    paths = [Path(p) for p in result.stdout.splitlines()]
    assert [p.suffix for p in paths] == [".flac"] * 3
    entropies = []
    for path in paths:
        data, rate = soundfile.read(path)
        assert rate == RATE and len(data) == RATE
        _, counts = np.unique(data, return_counts=True)
        p = counts / counts.sum()
        entropies.append(-(p * np.log2(p)).sum())
    # Cooler sampling concentrates on fewer levels.
    assert entropies[0] < entropies[1] - 0.2 and entropies[1] < entropies[2] - 0.05, entropies


def test_generate_with_a_prime(trained: Path, tmp_path: Path) -> None:
    prime = tmp_path / "prime.wav"
    soundfile.write(prime, tone_mix(0.5, 22050, seed=3), 22050)
    common = ["generate", trained, "--length", "0.1", "--seed", "2", "--prime", prime, "-d",
              tmp_path, "--quiet"]  # fmt: skip
    kept = run_cli(*common, "--keep-prime", cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert soundfile.info(kept.stdout.strip()).frames == 4000 + 800  # 0.5 s + 0.1 s at 8 kHz
    cut = run_cli(*common, cwd=tmp_path)
    assert soundfile.info(cut.stdout.strip()).frames == 800
    # The continuation after the prime is the same whether or not the prime is kept.
    kept_audio, _ = soundfile.read(kept.stdout.strip())
    cut_audio, _ = soundfile.read(cut.stdout.strip())
    np.testing.assert_array_equal(kept_audio[4000:], cut_audio)


def test_generate_usage_errors(trained: Path, tmp_path: Path, run_app: RunApp) -> None:
    cases = [
        (["--count", "2", "--temperature", "0.5,1,2"], 2, "3 values for --count 2"),
        (["--temperature", "0"], 2, "greater than 0"),
        (["--length", "-1"], 2, "--length"),
        (["--keep-prime"], 2, "need --prime"),
        (["--format", "flac", "--encoding", "float"], 2, "FLAC holds integer"),
        (["-o", "-", "--count", "2"], 2, "-o writes one clip (a stream); --count is 2"),
        (["-o", "x.wav", "--temperature", "1,2"], 2, "-o writes one clip (an output file)"),
        (["-o", "-", "-d", "x"], 2, "cannot be combined with -d"),
        (["-o", "-", "--format", "flac"], 2, "the stream on standard output is WAV"),
        (["-o", "x.mp3"], 2, "must end in .wav or .flac"),
        (["--count", "3", "--candidates", "2"], 2, "fewer than --count 3"),
        (["--candidates", "4", "--temperature", "0.9,1"], 2, "give one value"),
        (["-o", "-", "--candidates", "3"], 2, "--candidates ranks finished takes"),
        (["-o", "-", "--json"], 2, "drop --json"),
        (["-d", str(trained)], 1, "is a file, not a folder"),
    ]
    for args, code, text in cases:
        # Refused while the command line is checked (in this process), or once the
        # checkpoint is loaded (a real process).
        run = run_cli if "-d" in args and "-o" not in args else run_app
        result = run("generate", trained, *args, cwd=tmp_path)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith("error: ") and text in result.stderr, result.stderr
        assert result.stdout == ""


def test_inspect_checkpoint(trained: Path, tmp_path: Path) -> None:
    result = run_cli("inspect-checkpoint", trained, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["training"]["iteration"] == 200
    assert summary["sample_rate"] == RATE
    assert summary["model"]["parameters"] == TINY_MODEL.parameter_count()
    assert summary["quantizer"] == {"kind": "linear", "levels": 32}
    assert [f["name"] for f in summary["input"]["files"]] == ["in.wav"]
    assert summary["losses"]["last_val_iteration"] == 200
    assert summary["file_size_bytes"] == trained.stat().st_size
    table = run_cli("inspect-checkpoint", trained, cwd=tmp_path, env={"COLUMNS": "120"})
    assert table.returncode == 0
    epochs = f"200 / {summary['training']['epoch']}"
    for text in ("2-tier SampleRNN", "LSTM 1x16", "8,000 Hz", epochs, "speed spread 0.08",
                 "shifted copies 1", "weight average 0.999", "loss curve"):  # fmt: skip
        assert text in table.stdout


class RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch PWNED",))


def test_bad_checkpoints_are_refused_by_every_command(trained: Path, tmp_path: Path) -> None:
    data = trained.read_bytes()
    files = {
        "empty.pt": b"",
        "truncated.pt": data[: len(data) // 3],
        "text.pt": b"not a checkpoint at all\n",
        "corrupt.pt": data[:100] + bytes(200) + data[300:],
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"weight": torch.zeros(2)}, tmp_path / "foreign.pt")
    torch.save({"x": RunsCode()}, tmp_path / "evil.pt")
    write_payload(tmp_path / "future.pt", {"format_version": 99})
    expected = {
        "empty.pt": "empty", "truncated.pt": "not a readable checkpoint",
        "text.pt": "not a readable checkpoint", "corrupt.pt": "not a readable checkpoint",
        "foreign.pt": "not a samplernn checkpoint", "evil.pt": "could run code",
        "future.pt": "format 99", "missing.pt": "no such file",
    }  # fmt: skip
    # Every file through inspect-checkpoint; generate and resume share the loader, so a few.
    runs = [(["inspect-checkpoint"], name) for name in expected]
    for command in (["generate", "--length", "0.01"], ["resume"]):
        runs += [(command, name) for name in ("empty.pt", "evil.pt", "foreign.pt")]

    def attempt(run: tuple[list[str], str]) -> str | None:
        command, name = run
        result = run_cli(*command, tmp_path / name, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        if result.returncode != 1 or len(lines) != 1 or expected[name] not in lines[0]:
            return f"{command} {name}: {result.returncode} {result.stderr!r}"
        return None

    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(attempt, runs) if f is not None]
    assert not failures, failures
    assert not (tmp_path / "PWNED").exists()


def test_quantize_preview_reports_what_it_wrote(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    signal_ = tone_mix(1.0, 16000) * 0.5
    soundfile.write(source, signal_, 16000, subtype="FLOAT")
    result = run_cli("quantize-preview", source, "--quantizer", "mu-law", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    output = tmp_path / "in.quantized-mu-law-256.wav"
    assert report["output"] == str(output)
    written, rate = soundfile.read(output, dtype="float32")
    assert rate == 16000 and soundfile.info(output).subtype == "FLOAT"
    # An independent SNR: the input scaled to peak 1 (the documented normalisation) against
    # the written file.
    reference = signal_ / np.abs(signal_).max()
    snr = 10 * math.log10(np.sum(reference**2) / np.sum((written - reference) ** 2))
    assert report["snr_db"] == pytest.approx(snr, abs=0.01)
    assert report["levels_used"] <= report["levels_available"] == 256
    codes = np.unique(written)
    assert len(codes) == report["levels_used"]
    assert report["clipped_fraction"] == 0.0
    assert report["peak_dbfs"] == pytest.approx(20 * math.log10(np.abs(written).max()), abs=1e-3)
    assert report["dc_offset"] == pytest.approx(float(written.mean()), abs=1e-6)
    # Never over the input, never over an existing file without --force.
    again = run_cli("quantize-preview", source, "--quantizer", "mu-law", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    over_input = run_cli("quantize-preview", source, "-o", source, "--force", cwd=tmp_path)
    assert over_input.returncode == 2 and "is the input file" in over_input.stderr
    assert soundfile.info(source).subtype == "FLOAT"


def test_resume_after_ctrl_c_matches_a_straight_run(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    soundfile.write(source, tone_mix(1.0, RATE), RATE)
    process = subprocess.Popen(
        [*SAMPLERNN, "train", str(source), "-o", "run", *TINY_FLAGS, "--quiet"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    losses = tmp_path / "outputs" / "run" / "run_losses.csv"
    wait_for_loss_lines(losses, 5, process, every=0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    checkpoint = tmp_path / stdout.strip()
    stopped_at = torch.load(checkpoint, weights_only=True)["progress"]["iteration"]
    total = stopped_at + 17

    resumed = run_cli("resume", checkpoint, "--max-iterations", total, "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    final = tmp_path / resumed.stdout.strip()
    assert final.name == f"run_epoch_1_iter_{total}_model.pt"

    straight = run_cli("train", source, "-o", "straight", *TINY_FLAGS, "--max-iterations", total,
                       "--quiet", cwd=tmp_path)  # fmt: skip
    assert straight.returncode == 0, straight.stderr
    expected = torch.load(tmp_path / straight.stdout.strip(), weights_only=True)
    got = torch.load(final, weights_only=True)
    for key, value in expected["model"].items():
        assert torch.equal(value, got["model"][key]), key
    rows = read_losses(losses)
    straight_rows = read_losses(tmp_path / "outputs" / "straight" / "straight_losses.csv")
    assert [r["iter"] for r in rows] == [str(i) for i in range(1, total + 1)]
    assert [r["loss"] for r in rows] == [r["loss"] for r in straight_rows]


def test_resume_refuses_architecture_options(
    trained: Path, tmp_path: Path, run_app: RunApp
) -> None:
    for option in (["--hidden_size", "32"], ["--batch-size", "2"], ["--quantizer", "mu-law"],
                   ["--val-split", "files"], ["--seed", "3"]):  # fmt: skip
        result = run_app("resume", trained, *option, cwd=tmp_path)
        assert result.returncode == 2
        assert "stored in the checkpoint and cannot change when resuming" in result.stderr


def test_evaluate_reproduces_validation_and_scores_files(trained: Path, tmp_path: Path) -> None:
    run_dir = trained.parent.parent / "run"
    source = trained.parent.parent / "in.wav"
    last_val = [r for r in read_losses(run_dir / "run_losses.csv") if r["val_loss"]][-1]
    result = run_cli("evaluate", trained, source, "--held-out", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["iteration"] == int(last_val["iter"]) == 200
    assert f"{report['bits_per_sample']:.6f}" == last_val["val_loss"]

    other = tmp_path / "other.wav"
    soundfile.write(other, tone_mix(0.5, 22050, seed=9), 22050)
    both = json.loads(run_cli("evaluate", trained, source, other, "--json", cwd=tmp_path).stdout)
    assert [f["samples"] for f in both["files"]] == [8000, 4000]
    weighted = sum(f["bits_per_sample"] * f["samples"] for f in both["files"]) / 12000
    assert both["bits_per_sample"] == pytest.approx(weighted)
    table = run_cli("evaluate", trained, other, cwd=tmp_path, env={"COLUMNS": "120"})
    assert table.returncode == 0 and "bits per sample" in table.stdout
