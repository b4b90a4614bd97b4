"""What a training run is given: the settings fixed for its life (:class:`TrainConfig`), those
that may change while it trains (:class:`LiveSettings`), and when it stops
(:class:`StopConditions`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from samplernn_cli.config.model import ModelConfig
from samplernn_cli.config.rules import MAX_COUNT, MAX_SEED, Settings, parse_duration, setting
from samplernn_cli.errors import ConfigError


def parse_keep(text: str) -> int | None:
    """``--keep-checkpoints``: a number, or ``all`` (None: keep every checkpoint)."""
    if text.strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"keep_checkpoints must be a whole number or all, got {text!r}") from None


@dataclass(frozen=True)
class TrainConfig(Settings):
    """Training settings fixed for the life of a run (the data plan depends on them)."""

    what: ClassVar[str] = "training settings"
    panel: ClassVar[str] = "Training"

    batch_size: int = setting(128, "batch_size", int, 1, 65536,
                              flags=("--batch-size", "--batch_size"),
                              help="Sequences trained on together.", inherited=True)  # fmt: skip
    num_frames: int = setting(
        64, "num_frames", int, 1, 1_000_000, flags=("--num-frames", "--num_frames"),
        help="Frames per truncated-BPTT step (one iteration trains on num_frames x frame_size "
        "samples of each sequence, carrying the RNN state to the next step).",
        inherited=True,
    )  # fmt: skip
    sequence_seconds: float = setting(
        2.0, "sequence length", float, 0.0, 3600.0, low_inclusive=False,
        flags=("--sequence-length",),
        help="Seconds of audio per training sequence; the RNN state is carried across a "
        "sequence and reset between sequences.",
        inherited=True,
    )  # fmt: skip
    grad_clip: float = setting(1.0, "grad clip", float, 0.0, 1e6, low_inclusive=False,
                               flags=("--grad-clip",),
                               help="Clip the gradient's global norm to this value.",
                               inherited=True)  # fmt: skip
    val_fraction: float = setting(
        0.05, "validation fraction", float, 0.0, 0.5, flags=("--val-fraction",),
        help="Share of the input held out for validation (0 to turn validation off): the "
        "end of every file, or whole files with --val-split files.",
        inherited=True,
    )  # fmt: skip
    seed: int = setting(
        0, "seed", int, 0, MAX_SEED, flags=("--seed",),
        help="Random seed: the same seed and settings give the same run.",
    )  # fmt: skip
    val_split: str = setting(
        "tail", "val_split", str, choices=("tail", "files"), flags=("--val-split",),
        help="What validates: the last --val-fraction of every file (tail), or whole files "
        "holding --val-fraction of the audio, drawn with --seed (files; needs 2+ files).",
        inherited=True,
    )  # fmt: skip
    sequence_starts: str = setting(
        "random", "sequence_starts", str, choices=("random", "fixed"),
        flags=("--sequence-starts",),
        help="random: every epoch draws anew where each training sequence starts (within "
        "its share of the audio), so chunk boundaries and the RNN state's history move; "
        "fixed: the same evenly spaced starts every epoch.",
        legacy="fixed", inherited=True,
    )  # fmt: skip
    lr_schedule: str = setting(
        "auto", "lr_schedule", str, choices=("auto", "constant", "plateau"),
        flags=("--lr-schedule",),
        help="How the learning rate moves. constant: it stays at --learning-rate (the weight "
        "average smooths the steps), and the run trains until its stop condition. plateau: "
        "after --patience validations without a new best, training returns to the best model "
        "with half the rate, and after --max-halvings halvings the next such plateau ends the "
        "run. auto: constant when the session has a stop condition (--max-time, "
        "--max-iterations, --max-epochs), so the run uses its whole budget; plateau when not.",
        legacy="plateau",
    )  # fmt: skip
    # Returning to the best model restores its weights and its optimizer state.
    patience: int = setting(
        3, "patience", int, 0, MAX_COUNT, flags=("--patience",),
        help="With the plateau schedule: validations in a row without a new best before "
        "training returns to the best model and halves the learning rate (0: never; a "
        "constant learning rate).",
        legacy=0,
    )  # fmt: skip
    max_halvings: int = setting(
        3, "max_halvings", int, 0, 64, flags=("--max-halvings",),
        help="With the plateau schedule: after this many halvings, the next --patience "
        "validations without a new best end the run, with the best model as its final "
        "checkpoint.",
    )  # fmt: skip
    min_gain: float = setting(
        1.0, "min_gain", float, 0.0, 1.0, low_inclusive=False, flags=("--min-gain",),
        help="Each training sequence is played at a random gain between this and 1 (drawn "
        "anew every epoch) and quantized again, so the model learns the recording's sound, "
        "not its exact samples. 1: off.",
        legacy=1.0, inherited=True,
    )  # fmt: skip
    polarity_flip: float = setting(
        0.25, "polarity_flip", float, 0.0, 1.0, flags=("--polarity-flip",),
        help="Probability that a training sequence plays upside down (its waveform "
        "inverted, which sounds the same) for an epoch, drawn anew every epoch: twice the "
        "waveforms to learn from the same recording, so the model memorises less. 0: off.",
        legacy=0.0, inherited=True,
    )  # fmt: skip
    cold_starts: float = setting(
        0.0, "cold_starts", float, 0.0, 1.0, flags=("--cold-starts",),
        help="Probability that a training sequence starts from silence for an epoch, drawn "
        "anew every epoch: its past is replaced by silence, so it starts as generation does "
        "(the reset state and a silent past) and the model learns to leave that silence. "
        "0: off.",
        legacy=0.0, inherited=True,
    )  # fmt: skip
    input_noise: float = setting(
        0.0, "input_noise", float, 0.0, 1.0, flags=("--input-noise",),
        help="Probability that a sample the model sees as input (never a target) is moved "
        "one quantization level up or down. 0: off.",
        legacy=0.0, inherited=True,
    )  # fmt: skip
    prediction_noise: float = setting(
        0.1, "prediction_noise", float, 0.0, 10.0, flags=("--prediction-noise",),
        help="While training, the linear prediction (--linear-prediction) reads the past with "
        "Gaussian noise added, this times the level (RMS) of the 16,000 samples before: generation "
        "predicts from the model's own samples, and without the noise the network trusts the "
        "prediction so far that its clips fade to silence or blow up into noise. 0: off.",
        legacy=0.0, inherited=True,
    )  # fmt: skip
    frame_dropout: float = setting(
        0.0, "frame_dropout", float, 0.0, 0.9, flags=("--frame-dropout",),
        help="While training, drop each frame tier's per-frame output with this probability "
        "(dropout), so the sample tier cannot rely on any one feature of the frame tier's "
        "memory of the recording. Off by default: with the speed and shifted copies, "
        "polarity flips and the weight average, 0.2 no longer lowered held-out bits, and "
        "the takes came out further from the recording on most recordings. 0: off.",
        legacy=0.0, inherited=True,
    )  # fmt: skip
    speed_spread: float = setting(
        0.08, "speed_spread", float, 0.0, 0.5, flags=("--speed-spread",),
        help="Also train on copies of the training audio played at speeds 1-S, 1-S/2, 1+S/2 "
        "and 1+S (resampled once at the start, so pitch moves with speed, as on tape): the "
        "model meets every note and voice at other pitches and memorises less. The copies "
        "are kept in the code cache on disk (up to 4 times the training audio's codes) and "
        "reused by resume; a copy too short for one training sequence is left out. 0: off.",
        legacy=0.0, inherited=True,
    )  # fmt: skip
    shift_copies: int = setting(
        1, "shift_copies", int, 0, 7, flags=("--shift-copies",),
        help="Also train on K copies of the training audio sampled between its samples "
        "(band-limited, at 1/(K+1), 2/(K+1), ... of a sample later): the same sound as "
        "other waveforms, so the model memorises less. Each copy takes the training "
        "audio's codes again in the code cache on disk. 0: off.",
        legacy=0, inherited=True,
    )  # fmt: skip
    # The average is kept by training/state.py.
    average_decay: float = setting(
        0.999, "average_decay", float, 0.0, 0.99999, flags=("--average-decay",),
        help="Validate, make clips from and save an exponential moving average of the "
        "weights, with decay D per step (an average over about the last 1/(1-D) steps; "
        "training goes on from the weights as trained, which each checkpoint keeps too): "
        "it scores better on held-out audio than the weights of any one step. 0: off.",
        legacy=0.0, inherited=True,
    )  # fmt: skip

    def chunk_length(self, model: ModelConfig) -> int:
        """Target samples per truncated-BPTT step: ``num_frames`` top-tier frames."""
        return self.num_frames * model.tier_frame_samples[-1]

    def check_with(self, model: ModelConfig) -> None:
        """Raise ConfigError unless these settings can train ``model``: with linear
        prediction, each chunk must be whole prediction blocks, so that training, validation
        and `evaluate` refit the predictor where generation does (every block from the
        start)."""
        chunk, predictor = self.chunk_length(model), model.predictor
        if predictor is not None and not predictor.keeps_grid(chunk):
            block = predictor.block
            top = model.tier_frame_samples[-1]
            frames = math.lcm(top, block) // top
            raise ConfigError(
                f"with --linear-prediction, a training step's chunk (--num_frames "
                f"{self.num_frames} x {top} samples = {chunk}) must be a whole number of "
                f"prediction blocks ({block} samples), where generation refits the predictor: "
                f"use --num_frames {frames} or a multiple of it"
            )


@dataclass(frozen=True)
class LiveSettings(Settings):
    """The settings kept in ``NAME_args.json``, which may be edited while training runs: a
    setting is live exactly when it is a field of this class.

    Their options are given_only: ``resume`` keeps the run's own values (its
    ``NAME_args.json``) for those not given.
    """

    what: ClassVar[str] = "live settings"
    panel: ClassVar[str] = "Live settings (also in NAME_args.json, editable while training)"
    given_only: ClassVar[bool] = True

    length: float = setting(
        5.0, "length", float, 0.0, 36000.0, low_inclusive=False, flags=("--length",),
        help="Length in seconds of each clip generated during training (default: {default}).",
    )  # fmt: skip
    num_generated: int = setting(
        4, "num_generated", int, 1, 4096, flags=("--num-generated", "--num_generated"),
        help="Number of clips generated (together, in one batch) each time "
        "(default: {default}).",
    )  # fmt: skip
    generate_every: int = setting(
        1000, "generate_every", int, 1, MAX_COUNT, flags=("--generate-every", "--generate_every"),
        help="Generate num_generated clips every this many iterations (default: {default}).",
    )  # fmt: skip
    checkpoint_every: int = setting(
        1000, "checkpoint_every", int, 1, MAX_COUNT,
        flags=("--checkpoint-every", "--checkpoint_every"),
        help="Write a checkpoint every this many iterations (default: {default}).",
    )  # fmt: skip
    val_every: int = setting(
        250, "val_every", int, 1, MAX_COUNT, flags=("--val-every", "--val_every"),
        help="Measure validation bits per sample every this many iterations "
        "(default: {default}).",
    )  # fmt: skip
    temperature: float = setting(
        1.0, "temperature", float, 0.0, 100.0, low_inclusive=False, flags=("--temperature",),
        help="Sampling temperature of the clips generated during training (default: {default}).",
    )  # fmt: skip
    learning_rate: float = setting(
        1e-3, "learning_rate", float, 0.0, 10.0, low_inclusive=False,
        flags=("--learning-rate", "--learning_rate", "--lr"),
        help="Adam learning rate (default: {default}).",
    )  # fmt: skip
    # None keeps them all (JSON null; "all" on the command line and in NAME_args.json).
    keep_checkpoints: int | None = setting(
        5, "keep_checkpoints", int, 1, MAX_COUNT, optional=True,
        flags=("--keep-checkpoints", "--keep_checkpoints"), parse=parse_keep, legacy=None,
        help="Keep only the newest N periodic checkpoints, deleting older ones once a new one "
        "is completely written; all keeps every one. The best model and the checkpoint a "
        "resume started from are always kept (default: {default}; runs started before this "
        "default keep all, as null in their NAME_args.json says).",
    )  # fmt: skip
    tensorboard: bool = setting(
        False, "tensorboard", bool, flags=("--tensorboard/--no-tensorboard",),
        help="Write TensorBoard event files (losses, learning rate, gradient norm, speed, "
        "clips, spectrograms) to the run folder's tensorboard/; needs pip install "
        '"samplernn-cli\\[tensorboard]". resume keeps the run\'s choice unless given '
        "(default: {default}).",
    )  # fmt: skip


@dataclass(frozen=True)
class StopConditions(Settings):
    """When a training session ends by itself; all None means: train until interrupted.

    ``max_iterations`` and ``max_epochs`` count from the start of the run (a resumed run
    keeps counting); ``max_seconds`` is the wall-clock budget of this session.
    """

    what: ClassVar[str] = "stop conditions"
    panel: ClassVar[str] = "Stop conditions"

    max_iterations: int | None = setting(
        None, "max iterations", int, 1, MAX_COUNT, flags=("--max-iterations", "--max_iterations"),
        help="Stop when the run has done this many iterations in all.",
    )  # fmt: skip
    max_epochs: int | None = setting(
        None, "max epochs", int, 1, MAX_COUNT, flags=("--max-epochs", "--max_epochs"),
        help="Stop when the run has done this many epochs in all.",
    )  # fmt: skip
    max_seconds: float | None = setting(
        None, "max time", float, 0.0, 1e9, low_inclusive=False,
        flags=("--max-time", "--max_time"), parse=parse_duration,
        help="Stop after this much wall-clock time in this session: 90s, 45m, 12h, 2d, 1h30m.",
    )  # fmt: skip

    @property
    def bounded(self) -> bool:
        """Whether the session ends by itself: a stop condition is set."""
        return any(v is not None for v in (self.max_iterations, self.max_epochs, self.max_seconds))

    def total_iterations(self, iterations_per_epoch: int) -> int | None:
        """The iteration the run stops at by itself, if one is known."""
        totals = [] if self.max_iterations is None else [self.max_iterations]
        if self.max_epochs is not None:
            totals.append(self.max_epochs * iterations_per_epoch)
        return min(totals) if totals else None

    def eta(self, iteration: int, per_epoch: int, elapsed: float, done: int) -> float | None:
        """Seconds until the session stops by itself, at the rate so far (``done``
        iterations in ``elapsed`` seconds of this session, now at ``iteration``), if known."""
        candidates = []
        total = self.total_iterations(per_epoch)
        if total is not None and done > 0:
            candidates.append(max(0, total - iteration) * elapsed / done)
        if self.max_seconds is not None:
            candidates.append(max(0.0, self.max_seconds - elapsed))
        return min(candidates) if candidates else None
