"""Training in-process: artifacts, determinism, learning, and numerical faults."""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import replace
from pathlib import Path

import pytest
import soundfile
import torch
import torch.nn.functional as F

from samplernn_cli.checkpoint import load_checkpoint
from samplernn_cli.config import AudioConfig, StopConditions
from samplernn_cli.errors import AudioError, RunFolderError, TrainingError
from samplernn_cli.run.folder import RunFolder
from samplernn_cli.training.requests import ResumeRequest, TrainRequest, TrainStatus
from samplernn_cli.training.session import resume, train
from samplernn_cli.training.step import MAX_BAD_STEPS

from .conftest import (
    RATE,
    TINY_LIVE,
    TINY_MODEL,
    TINY_TRAIN,
    WriteAudio,
    read_losses,
    tiny_request,
    tone_mix,
)


def request_for(
    input_path: Path, tmp_path: Path, name: str = "run", **changes: object
) -> TrainRequest:
    """The tiny model's request, its run in ``tmp_path/outputs/name``."""
    return tiny_request(input_path, tmp_path / "outputs" / name, rate=RATE, **changes)


def test_run_folder_holds_every_artifact(tmp_path: Path, write_audio: WriteAudio) -> None:
    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    live = replace(TINY_LIVE, generate_every=5, checkpoint_every=5, length=0.05, num_generated=3)
    statuses: list[TrainStatus] = []
    result = train(request_for(source, tmp_path, live=live), progress=statuses.append)

    folder = tmp_path / "outputs" / "run"
    names = sorted(p.name for p in folder.iterdir())
    expected = {
        "run_args.json", "run_losses.csv", "run_ground_truth.wav", "run_input_example.wav",
        "run_target_example.wav", "run_overlap_example.wav",
        "run_epoch_1_iter_5_model.pt", "run_epoch_1_iter_10_model.pt",
        "run_epoch_1_iter_12_model.pt", "run_best_model.pt",
    } | {f"run_epoch_1_iter_{i}_{n}.wav" for i in (5, 10) for n in (1, 2, 3)} | {
        "run_epoch_1_iter_5.png", "run_epoch_1_iter_10.png",  # one picture per round
    }  # fmt: skip
    assert set(names) == expected
    assert result.iteration == 12 and result.stopped_by == "max_iterations"
    assert result.checkpoint == folder / "run_epoch_1_iter_12_model.pt"

    for n in (1, 2, 3):
        info = soundfile.info(folder / f"run_epoch_1_iter_10_{n}.wav")
        assert info.samplerate == RATE and info.frames == round(0.05 * RATE)
    truth = soundfile.info(folder / "run_ground_truth.wav")
    assert truth.frames == RATE and truth.samplerate == RATE
    assert soundfile.info(folder / "run_overlap_example.wav").channels == 2

    rows = read_losses(folder / "run_losses.csv")
    assert list(rows[0])[:2] == ["iter", "loss"]
    assert [int(r["iter"]) for r in rows] == list(range(1, 13))
    assert [r["val_loss"] != "" for r in rows] == [i % 5 == 0 for i in range(1, 13)]
    assert all(float(r["samples_per_s"]) > 0 for r in rows)
    assert json.loads((folder / "run_args.json").read_text())["generate_every"] == 5

    payload = torch.load(folder / "run_epoch_1_iter_12_model.pt", weights_only=True)
    assert payload["format"] == "samplernn-cli checkpoint"
    assert payload["sample_rate"] == RATE
    assert payload["progress"]["iteration"] == 12
    assert len(payload["history"]["loss"]) == 12
    checkpoint = load_checkpoint(folder / "run_epoch_1_iter_12_model.pt")
    assert checkpoint.model_config == TINY_MODEL
    checkpoint.build_model()

    assert [s.iteration for s in statuses] == list(range(1, 13))
    assert statuses[-1].total_iterations == 12


def test_same_seed_same_run(tmp_path: Path, write_audio: WriteAudio) -> None:
    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    train(request_for(source, tmp_path, name="a"))
    train(request_for(source, tmp_path, name="b"))
    losses_a = read_losses(tmp_path / "outputs" / "a" / "a_losses.csv")
    losses_b = read_losses(tmp_path / "outputs" / "b" / "b_losses.csv")
    assert [r["loss"] for r in losses_a] == [r["loss"] for r in losses_b]
    weights_a = load_checkpoint(tmp_path / "outputs/a/a_epoch_1_iter_12_model.pt").payload["model"]
    weights_b = load_checkpoint(tmp_path / "outputs/b/b_epoch_1_iter_12_model.pt").payload["model"]
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_validation_bits_fall_while_training(tmp_path: Path, write_audio: WriteAudio) -> None:
    source = write_audio("in.wav", seconds=2.0, rate=RATE)
    live = replace(TINY_LIVE, val_every=60, learning_rate=3e-3)
    result = train(request_for(source, tmp_path, live=live,
                               stop=StopConditions(max_iterations=240)))  # fmt: skip
    vals = [float(r["val_loss"]) for r in read_losses(result.run_dir / "run_losses.csv")
            if r["val_loss"]]  # fmt: skip
    assert len(vals) == 4
    assert vals[-1] < vals[0] - 0.5, vals
    assert vals[-1] < math.log2(32) - 1


def test_max_epochs_stops_at_an_epoch_boundary(tmp_path: Path, write_audio: WriteAudio) -> None:
    source = write_audio("in.wav", seconds=0.5, rate=RATE)
    # Without the speed and shifted copies an epoch is a sixth as long; the boundary is the same.
    plain = replace(TINY_TRAIN, speed_spread=0.0, shift_copies=0)
    result = train(request_for(source, tmp_path, train=plain, stop=StopConditions(max_epochs=1)))
    checkpoint = load_checkpoint(result.checkpoint)
    per_epoch = checkpoint.payload["progress"]["iterations_per_epoch"]
    assert result.iteration == per_epoch and result.stopped_by == "max_epochs"
    assert checkpoint.payload["progress"]["epoch_index"] == 1


def test_existing_run_is_refused_then_overwritten_with_force(
    tmp_path: Path, write_audio: WriteAudio
) -> None:
    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    train(request_for(source, tmp_path))
    folder = tmp_path / "outputs" / "run"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    with pytest.raises(RunFolderError, match="already holds a run"):
        train(request_for(source, tmp_path))
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    result = train(request_for(source, tmp_path, force=True,
                               stop=StopConditions(max_iterations=3)))  # fmt: skip
    assert result.iteration == 3
    assert len(read_losses(folder / "run_losses.csv")) == 3


def test_too_short_input_is_refused_before_anything_is_written(
    tmp_path: Path, write_audio: WriteAudio
) -> None:
    source = write_audio("short.wav", seconds=0.003, rate=RATE)  # 24 samples < 2 chunks
    with pytest.raises(
        AudioError, match=r"short\.wav is 0\.003 s long; training needs at least 0\.004 s"
    ):
        train(request_for(source, tmp_path))
    assert not (tmp_path / "outputs").exists()


def test_non_finite_losses_are_skipped_then_stop_training(
    tmp_path: Path, write_audio: WriteAudio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A NaN in the weights makes every loss NaN: steps are skipped, the weights are not
    touched by the optimizer, and training stops with a clear error after MAX_BAD_STEPS."""
    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    from samplernn_cli.training import loop as train_module

    original = train_module.Trainer.fit

    def poisoned_fit(self: train_module.Trainer) -> object:
        with torch.no_grad():
            self.model.sample_tier.output.bias[0] = float("nan")
        self.snapshot = {k: v.clone() for k, v in self.model.state_dict().items()}
        return original(self)

    monkeypatch.setattr(train_module.Trainer, "fit", poisoned_fit)
    with pytest.raises(TrainingError, match=f"{MAX_BAD_STEPS} iterations in a row"):
        train(request_for(source, tmp_path, stop=StopConditions(max_iterations=100)))
    rows = read_losses(tmp_path / "outputs" / "run" / "run_losses.csv")
    assert len(rows) == MAX_BAD_STEPS - 1  # the failing iteration raises before its row
    assert all(r["loss"] == "nan" for r in rows)


def test_live_edits_take_effect_during_training(tmp_path: Path, write_audio: WriteAudio) -> None:
    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    request = request_for(source, tmp_path, stop=StopConditions(max_iterations=9))
    args = request.run.args_json

    def edit(status: TrainStatus) -> None:
        if status.iteration == 3:
            args.write_text('{"checkpoint_every": 2, "learning_rate": 0.5}')
        if status.iteration == 5:
            args.write_text('{"checkpoint_every": 0}')  # invalid: ignored

    train(request, progress=edit)
    written = sorted(int(p.name.split("_")[4]) for p in request.run.path.glob("*_iter_*_model.pt"))
    assert written == [4, 6, 8, 9]
    payload = load_checkpoint(request.run.checkpoint(1, 9)).payload
    assert payload["live"]["checkpoint_every"] == 2
    assert payload["optimizer"]["param_groups"][0]["lr"] == 0.5


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).payload["model"]


@pytest.mark.parametrize("varied", [False, True], ids=["plain", "gains-flips-and-noise"])
def test_resume_continues_exactly_like_a_straight_run(
    tmp_path: Path, write_audio: WriteAudio, varied: bool
) -> None:
    """N iterations straight == K iterations, stop, resume for N - K: same losses, weights
    (also with random gains, polarity flips, input noise and frame dropout, which are drawn
    from the seed)."""
    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    config = replace(TINY_TRAIN, polarity_flip=0.0)
    if varied:
        config = replace(TINY_TRAIN, min_gain=0.5, polarity_flip=0.5, input_noise=0.1,
                         frame_dropout=0.2)  # fmt: skip
    straight = train(
        request_for(source, tmp_path, name="a", train=config,
                    stop=StopConditions(max_iterations=30))
    )  # fmt: skip
    first = train(request_for(source, tmp_path, name="b", train=config,
                              stop=StopConditions(max_iterations=13)))  # fmt: skip
    assert first.checkpoint is not None
    # An interrupted session wrote rows past the checkpoint: they must be replaced.
    with open(first.run_dir / "b_losses.csv", "a") as handle:
        handle.write("14,9.9,1,0.1,,1.0\n15,9.")
    resumed = resume(ResumeRequest(first.checkpoint, stop=StopConditions(max_iterations=30)))
    assert resumed.iteration == 30
    assert resumed.checkpoint == first.run_dir / "b_epoch_1_iter_30_model.pt"
    rows_a = read_losses(straight.run_dir / "a_losses.csv")
    rows_b = read_losses(first.run_dir / "b_losses.csv")
    assert [r["iter"] for r in rows_b] == [str(i) for i in range(1, 31)]
    assert [r["loss"] for r in rows_b] == [r["loss"] for r in rows_a]
    # Validation figures agree where both measured (the first session also measured at 13,
    # when it stopped).
    for row_a, row_b in zip(rows_a, rows_b, strict=True):
        assert row_a["val_loss"] in ("", row_b["val_loss"])
    assert rows_b[12]["val_loss"] != ""
    weights_a, weights_b = _weights(straight.checkpoint), _weights(resumed.checkpoint)
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    # The weights training goes on from, as well as their average (the model above).
    own_a = load_checkpoint(straight.checkpoint).training_weights
    own_b = load_checkpoint(resumed.checkpoint).training_weights
    assert all(torch.equal(own_a[k], own_b[k]) for k in own_a)
    assert not all(torch.equal(own_a[k], weights_a[k]) for k in own_a)
    history = load_checkpoint(resumed.checkpoint).payload["history"]
    assert history["loss"].numel() == 30
    # The checkpoint resumed from is still there, untouched by the continued run.
    assert (first.run_dir / "b_epoch_1_iter_13_model.pt").is_file()


def test_resume_into_a_new_folder_and_live_settings(
    tmp_path: Path, write_audio: WriteAudio
) -> None:
    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    first = train(request_for(source, tmp_path, stop=StopConditions(max_iterations=4)))
    args = first.run_dir / "run_args.json"
    args.write_text('{"val_every": 3}')  # edited after the checkpoint: it applies on resume
    resumed = resume(ResumeRequest(first.checkpoint, live_overrides={"checkpoint_every": 3},
                                   stop=StopConditions(max_iterations=7)))  # fmt: skip
    payload = load_checkpoint(resumed.checkpoint).payload
    assert payload["live"]["val_every"] == 3 and payload["live"]["checkpoint_every"] == 3
    assert (first.run_dir / "run_epoch_1_iter_6_model.pt").is_file()

    elsewhere = RunFolder(path=tmp_path / "branch", name="branch")
    branched = resume(ResumeRequest(first.checkpoint, run=elsewhere,
                                    stop=StopConditions(max_iterations=6)))  # fmt: skip
    names = {p.name for p in elsewhere.path.iterdir()}
    assert {"branch_args.json", "branch_losses.csv", "branch_ground_truth.wav",
            "branch_epoch_1_iter_6_model.pt"} <= names  # fmt: skip
    assert len(read_losses(elsewhere.losses_csv)) == 6
    assert branched.iteration == 6


def test_resume_refuses_to_overwrite_later_files(tmp_path: Path, write_audio: WriteAudio) -> None:
    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    live = replace(TINY_LIVE, checkpoint_every=4)
    result = train(request_for(source, tmp_path, live=live, stop=StopConditions(max_iterations=8)))
    early = result.run_dir / "run_epoch_1_iter_4_model.pt"
    later = result.run_dir / "run_epoch_1_iter_8_model.pt"
    before = later.read_bytes()
    with pytest.raises(RunFolderError, match="written after iteration 4"):
        resume(ResumeRequest(early, stop=StopConditions(max_iterations=8)))
    assert later.read_bytes() == before
    resume(ResumeRequest(early, force=True, stop=StopConditions(max_iterations=8)))
    # Same trajectory, so the rewritten checkpoint holds the same weights.
    assert all(torch.equal(v, _weights(later)[k]) for k, v in
               torch.load(io.BytesIO(before), weights_only=True)["model"].items())  # fmt: skip


def test_resume_finds_moved_input_and_refuses_other_audio(
    tmp_path: Path, write_audio: WriteAudio
) -> None:
    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    result = train(request_for(source, tmp_path, stop=StopConditions(max_iterations=2)))
    moved = source.rename(tmp_path / "moved.wav")
    with pytest.raises(AudioError, match="is missing; pass -i/--in"):
        resume(ResumeRequest(result.checkpoint, stop=StopConditions(max_iterations=3)))
    other = write_audio("other.wav", seconds=1.0, rate=RATE, data=tone_mix(1.0, RATE, seed=5))
    with pytest.raises(AudioError, match="not the audio this run was trained on"):
        resume(ResumeRequest(result.checkpoint, inputs=(other,),
                             stop=StopConditions(max_iterations=3)))  # fmt: skip
    resumed = resume(ResumeRequest(result.checkpoint, inputs=(moved,),
                                   stop=StopConditions(max_iterations=3)))  # fmt: skip
    assert resumed.iteration == 3


def test_best_model_follows_the_best_validation(tmp_path: Path, write_audio: WriteAudio) -> None:
    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    live = replace(TINY_LIVE, val_every=3, learning_rate=3e-3)
    result = train(request_for(source, tmp_path, live=live, stop=StopConditions(max_iterations=30)))
    rows = read_losses(result.run_dir / "run_losses.csv")
    vals = [(int(r["iter"]), float(r["val_loss"])) for r in rows if r["val_loss"]]
    best_iteration, best_val = min(vals, key=lambda item: item[1])
    best = load_checkpoint(result.run_dir / "run_best_model.pt").payload
    assert best["progress"]["iteration"] == best_iteration
    assert best["summary"]["last_val_loss"] == pytest.approx(best_val, abs=1e-6)

    # Resuming from an early checkpoint (--force) never replaces a better best model.
    early = train(request_for(source, tmp_path, name="early", live=live,
                              stop=StopConditions(max_iterations=3)))  # fmt: skip
    target = RunFolder(path=result.run_dir, name="run")
    resume(ResumeRequest(early.checkpoint, run=target, force=True,
                         stop=StopConditions(max_iterations=6)))  # fmt: skip
    after = load_checkpoint(result.run_dir / "run_best_model.pt").payload
    assert after["progress"]["iteration"] == best_iteration


def test_weight_average_follows_the_weights_after_a_warm_up() -> None:
    """Step n moves the average by 1 - min(decay, (1 + n) / (10 + n)) towards the weights;
    applied() swaps it in for a block (also one that fails), restart() starts it again."""
    from samplernn_cli.training.state import WeightAverage

    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    average = WeightAverage(model, decay=0.3)
    expected = 0.0
    for n, value in enumerate([1.0, 2.0, 4.0, 8.0], start=1):
        torch.nn.init.constant_(model.weight, value)
        average.update()
        decay = min(0.3, (1 + n) / (10 + n))  # 2/11 and 3/12, then 0.3
        expected = decay * expected + (1 - decay) * value
        assert average.average[0].item() == pytest.approx(expected)
    assert average.updates == 4 and average.weights()["weight"].item() == pytest.approx(expected)
    with average.applied():
        assert model.weight.item() == pytest.approx(expected)
    assert model.weight.item() == 8.0
    with pytest.raises(KeyError), average.applied():
        raise KeyError
    assert model.weight.item() == 8.0
    average.restart()
    assert average.average[0].item() == 8.0


def test_weight_average_is_what_validation_and_checkpoints_use(
    tmp_path: Path, write_audio: WriteAudio
) -> None:
    """With --average-decay, a checkpoint's model is the average of the weights: what the
    validation figures score, and what evaluate (like generate and export) loads; the
    weights training goes on from are kept beside it. Without, there is one set."""
    from samplernn_cli.checkpoint import write_payload
    from samplernn_cli.evaluation import EvaluateRequest, evaluate_files

    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    averaged = train(request_for(source, tmp_path, train=replace(TINY_TRAIN, average_decay=0.9)))
    checkpoint = load_checkpoint(averaged.checkpoint)
    assert checkpoint.progress.average_updates == 12
    model, own = checkpoint.weights, checkpoint.training_weights
    assert model.keys() == own.keys() and not all(torch.equal(model[k], own[k]) for k in own)
    last_validation = checkpoint.history.validations[-1]
    assert last_validation[0] == 12
    scored = evaluate_files(EvaluateRequest(averaged.checkpoint, (source,), held_out=True,
                                            device="cpu"))  # fmt: skip
    assert scored["bits_per_sample"] == pytest.approx(last_validation[1], abs=1e-6)
    swapped = tmp_path / "swapped.pt"
    payload = {k: v for k, v in checkpoint.payload.items() if k not in ("format", "format_version")}
    write_payload(swapped, {**payload, "model": own})
    other = evaluate_files(EvaluateRequest(swapped, (source,), held_out=True, device="cpu"))
    assert other["bits_per_sample"] != pytest.approx(last_validation[1], abs=1e-6)

    plain = train(request_for(source, tmp_path, name="plain",
                              train=replace(TINY_TRAIN, average_decay=0.0)))  # fmt: skip
    payload = load_checkpoint(plain.checkpoint).payload
    assert "training_weights" not in payload and payload["progress"]["average_updates"] is None


def test_plateau_schedule_returns_to_the_best_model_then_ends_the_run(tmp_path: Path) -> None:
    """After ``patience`` validations without a new best: the weights and Adam's state of
    the best model come back and the learning rate halves; after ``max_halvings`` halvings
    the next plateau ends the run instead. A new best resets the count."""
    from samplernn_cli.config import TrainConfig
    from samplernn_cli.model import SampleRNN
    from samplernn_cli.training.schedule import PlateauSchedule
    from samplernn_cli.training.state import RunState
    from samplernn_cli.training.step import make_optimizer

    model = SampleRNN(TINY_MODEL)
    optimizer = make_optimizer(model, 1e-3)
    window = torch.randint(0, 32, (2, model.history + 16))

    def train_step() -> None:
        optimizer.zero_grad()
        logits, _ = model(window)
        F.cross_entropy(logits.reshape(-1, 32), window[:, model.history :].reshape(-1)).backward()
        optimizer.step()

    config = TrainConfig(patience=2, max_halvings=1)
    schedule = PlateauSchedule(config, model, optimizer, best_model=tmp_path / "none.pt",
                               shared=False, report=True)  # fmt: skip
    state = RunState()
    # No best model yet: a plateau only halves the learning rate.
    assert not schedule.after_validation(state, improved=False)
    assert not schedule.after_validation(state, improved=False)
    assert state.lr_halvings == 1 and state.lr_scale == 0.5 and not schedule.stopped
    train_step()
    schedule.keep_best()
    best = {k: v.clone() for k, v in model.state_dict().items()}
    best_moments = optimizer.state_dict()["state"][0]["exp_avg"].clone()
    assert not schedule.after_validation(state, improved=True)
    train_step()
    assert not schedule.after_validation(state, improved=False)
    assert not schedule.after_validation(state, improved=True)  # a new best resets the count
    train_step()
    assert not schedule.after_validation(state, improved=False)
    assert schedule.after_validation(state, improved=False)  # back to the best model
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())
    assert torch.equal(optimizer.state_dict()["state"][0]["exp_avg"], best_moments)
    assert schedule.stopped and state.lr_halvings == 1  # max_halvings reached: the run ends
    assert not schedule.after_validation(state, improved=False)


def _rate(checkpoint: Path | None) -> float:
    """The learning rate a checkpoint's optimizer state holds (that of its last step)."""
    assert checkpoint is not None
    optimizer = load_checkpoint(checkpoint).optimizer_state
    assert optimizer is not None
    return optimizer["param_groups"][0]["lr"]


@pytest.mark.parametrize("schedule", ["auto", "constant"])
def test_with_a_stop_condition_the_run_uses_its_whole_budget_at_a_constant_rate(
    tmp_path: Path, write_audio: WriteAudio, schedule: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With a stop condition (auto) or --lr-schedule constant, a learning rate far too high
    still sets validation back again and again, but the run neither halves the rate, nor
    returns to its best model, nor ends before --max-iterations."""
    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    request = request_for(
        source, tmp_path,
        train=replace(TINY_TRAIN, patience=1, max_halvings=1, lr_schedule=schedule),
        live=replace(TINY_LIVE, learning_rate=10.0),
        stop=StopConditions(max_iterations=120),
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="samplernn"):
        result = train(request)
    assert result.stopped_by == "max_iterations" and result.iteration == 120
    final = load_checkpoint(result.checkpoint)
    assert final.progress.lr_halvings == 0 and _rate(result.checkpoint) == 10.0
    figures = [bits for _, bits in final.history.validations]
    assert any(b > min(figures[:i]) for i, b in enumerate(figures) if i)  # plateaus happened
    assert not any("best model (iteration" in m for m in caplog.messages)
    assert "learning rate 10, constant: training until its stop condition" in caplog.messages


def test_a_run_that_stops_improving_ends_with_its_best_model(
    tmp_path: Path, write_audio: WriteAudio
) -> None:
    """With the plateau schedule and a learning rate far too high, validation soon stops
    improving: the run goes back to its best model once (patience 1, one halving), and at the
    next plateau ends early
    (stopped_by "plateau") with the best model's weights in its final checkpoint, validated
    again."""
    source = write_audio("in.wav", seconds=1.0, rate=RATE)
    request = request_for(
        source, tmp_path,
        train=replace(TINY_TRAIN, patience=1, max_halvings=1, lr_schedule="plateau"),
        live=replace(TINY_LIVE, learning_rate=10.0),
        stop=StopConditions(max_iterations=500),
    )  # fmt: skip
    result = train(request)
    assert result.stopped_by == "plateau" and result.iteration < 500
    final = load_checkpoint(result.checkpoint)
    best = load_checkpoint(result.run_dir / "run_best_model.pt")
    *loop, (last_iteration, last_figure) = final.history.validations
    best_iteration, best_figure = min(loop, key=lambda v: v[1])
    # The loop's last validation set no new best (a new best is strictly lower; a step
    # skipped as non-finite can leave the best model's figure): after the one halving, that
    # plateau ended the run.
    assert loop[-1][1] >= best_figure and best_iteration < loop[-1][0]
    assert final.progress.lr_halvings == 1
    assert last_iteration == result.iteration == loop[-1][0]
    assert last_figure == pytest.approx(best_figure, abs=1e-5)
    assert best.iteration == best_iteration
    assert all(torch.equal(best.weights[k], v) for k, v in final.weights.items())


@pytest.mark.parametrize("slow", [True, False])
def test_a_model_too_slow_for_the_cpu_is_named_once(
    write_audio: WriteAudio, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch, slow: bool,
) -> None:  # fmt: skip
    """The first steps are timed; past the bar (lowered here to make the tiny model "slow")
    one line names the time per 1,000 iterations and what to do instead."""
    from samplernn_cli.training import reporting

    if slow:
        monkeypatch.setattr(reporting, "SLOW_CPU_SECONDS_PER_1000", 0.0)
    source = write_audio("in.wav", seconds=1.0, rate=8000)
    with caplog.at_level(logging.WARNING, logger="samplernn"):
        train(
            TrainRequest(
                inputs=(source,), run=RunFolder(path=tmp_path / "run", name="run"),
                model=TINY_MODEL, audio=AudioConfig(sample_rate=8000), train=TINY_TRAIN,
                live=TINY_LIVE, stop=StopConditions(max_iterations=15), device="cpu",
            )
        )  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if "1,000 iterations" in r.getMessage()]
    assert len(lines) == (1 if slow else 0)
    if slow:
        assert "--preset small" in lines[0] and "GPU" in lines[0]
