"""Run folder naming, the output root, and the loss log."""

from __future__ import annotations

from pathlib import Path

import pytest

from samplernn_cli.errors import ConfigError, RunFolderError
from samplernn_cli.run.folder import RunFolder, resolve_output_root
from samplernn_cli.training.reporting import LossLog

from .conftest import read_losses


def test_output_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    monkeypatch.setenv("SAMPLERNN_CONFIG", str(config))
    monkeypatch.delenv("SAMPLERNN_OUTPUT_ROOT", raising=False)
    assert resolve_output_root(None) == Path("outputs")
    config.write_text('output_root = "~/runs"\n')
    assert resolve_output_root(None) == Path("~/runs").expanduser()
    monkeypatch.setenv("SAMPLERNN_OUTPUT_ROOT", str(tmp_path / "env"))
    assert resolve_output_root(None) == tmp_path / "env"
    assert resolve_output_root(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("SAMPLERNN_OUTPUT_ROOT")
    config.write_text("output_root = 3\n")
    with pytest.raises(ConfigError, match="must be a folder path"):
        resolve_output_root(None)


def test_run_names_and_paths(tmp_path: Path) -> None:
    run = RunFolder.locate("piano", tmp_path)
    assert run.path == tmp_path / "piano"
    assert run.checkpoint(2, 500).name == "piano_epoch_2_iter_500_model.pt"
    assert run.clip(2, 500, 3).name == "piano_epoch_2_iter_500_3.wav"
    assert run.args_json.name == "piano_args.json"
    direct = RunFolder.locate(str(tmp_path / "elsewhere" / "take2"), tmp_path)
    assert direct.path == tmp_path / "elsewhere" / "take2" and direct.name == "take2"
    for bad in ["", " x", "..", "a/.."]:
        with pytest.raises(ConfigError):
            RunFolder.locate(bad, tmp_path)


def test_existing_run_detection(tmp_path: Path) -> None:
    run = RunFolder.locate("a[1]", tmp_path)
    run.check_available(force=False)  # nothing there yet
    run.create()
    (run.path / "unrelated.txt").write_text("x")
    run.check_available(force=False)  # other files do not make it a run
    (run.path / "a[1]_losses.csv").write_text("iter,loss\n")
    with pytest.raises(RunFolderError, match="already holds a run"):
        run.check_available(force=False)
    run.check_available(force=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="not a folder"):
        RunFolder.locate("file", tmp_path).check_available(force=True)


def test_loss_log_starts_from_given_rows_and_replaces_a_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "r_losses.csv"
    log = LossLog(path)
    log.open()
    for i in range(1, 6):
        log.append((i, 3.0 - i * 0.1, 1, float(i), 2.5 if i == 4 else None, 1000.0))
    log.close()
    with open(path, "a") as handle:
        handle.write("6,2.4,1")  # a crash mid-row
    log.open([(1, 2.9, 1, 1.0, None, 1000.0), (2, 2.8, 1, 2.0, 2.5, 1000.0)])
    log.append((3, 1.0, 2, 3.0, None, 1000.0))
    log.close()
    rows = read_losses(path)
    assert [r["iter"] for r in rows] == ["1", "2", "3"]
    assert rows[1]["val_loss"] == "2.500000" and rows[2]["loss"] == "1.000000"
    assert path.read_text().endswith("\n")


def test_later_artifacts_and_the_folder_lock(tmp_path: Path) -> None:
    run = RunFolder.locate("r", tmp_path)
    run.create()
    for name in [
        "r_epoch_1_iter_5_model.pt",
        "r_epoch_1_iter_10_model.pt",
        "r_epoch_2_iter_12_3.wav",
        "r_epoch_2_iter_12.png",
        "r_epoch_1_iter_5.png",
        "r_losses.csv",
        "other_epoch_1_iter_99_model.pt",
    ]:
        (run.path / name).write_text("x")  # fmt: skip
    assert sorted(p.name for p in run.artifacts_after(5)) == [
        "r_epoch_1_iter_10_model.pt", "r_epoch_2_iter_12.png", "r_epoch_2_iter_12_3.wav",
    ]  # fmt: skip
    assert run.owns(run.path / "r_epoch_2_iter_12.png")
    assert not run.owns(run.path / "r_epoch_2_iter_12_x.png")
    assert run.artifacts_after(12) == []
    with (
        run.lock(),
        pytest.raises(RunFolderError, match="another samplernn process"),
        run.lock(),
    ):
        pass
    with run.lock():  # released
        pass
