"""The options of ``samplernn train`` that shape what training sees and when: where sequences
start, how they vary (gain, input noise), and what happens when validation stops improving
(the plateau schedule)."""

from __future__ import annotations

from typing import Annotated

from samplernn_cli.cli.options import TRAIN_DEFAULTS, TRAINING
from samplernn_cli.cli.rules import choices, setting_option
from samplernn_cli.config import TrainConfig

SequenceStarts = choices(TrainConfig, "sequence_starts", "SequenceStarts")
DEFAULT_SEQUENCE_STARTS = SequenceStarts(TRAIN_DEFAULTS.sequence_starts)

SequenceStartsOption = Annotated[
    SequenceStarts,
    setting_option(
        TrainConfig, "sequence_starts", "--sequence-starts",
        help="random: every epoch draws anew where each training sequence starts (within "
        "its share of the audio), so chunk boundaries and the RNN state's history move; "
        "fixed: the same evenly spaced starts every epoch.",
        rich_help_panel=TRAINING,
    ),
]  # fmt: skip
PatienceOption = Annotated[
    int,
    setting_option(
        TrainConfig, "patience", "--patience",
        help="Validations in a row without a new best before training returns to the best "
        "model and halves the learning rate (0: never; a constant learning rate).",
        rich_help_panel=TRAINING,
    ),
]  # fmt: skip
MaxHalvingsOption = Annotated[
    int,
    setting_option(
        TrainConfig, "max_halvings", "--max-halvings",
        help="After this many halvings, the next --patience validations without a new best "
        "end the run, with the best model as its final checkpoint.",
        rich_help_panel=TRAINING,
    ),
]  # fmt: skip
MinGainOption = Annotated[
    float,
    setting_option(
        TrainConfig, "min_gain", "--min-gain",
        help="Each training sequence is played at a random gain between this and 1 (drawn "
        "anew every epoch) and quantized again, so the model learns the recording's sound, "
        "not its exact samples. 1: off.",
        rich_help_panel=TRAINING,
    ),
]  # fmt: skip
SpeedSpreadOption = Annotated[
    float,
    setting_option(
        TrainConfig, "speed_spread", "--speed-spread",
        help="Also train on copies of the training audio played at speeds 1-S, 1-S/2, 1+S/2 "
        "and 1+S (resampled once at the start, so pitch moves with speed, as on tape): the "
        "model meets every note and voice at other pitches and memorises less. The copies "
        "take up to 4 times the training audio's memory; a copy too short for one training "
        "sequence is left out. 0: off.",
        rich_help_panel=TRAINING,
    ),
]  # fmt: skip
AverageDecayOption = Annotated[
    float,
    setting_option(
        TrainConfig, "average_decay", "--average-decay",
        help="Validate, make clips from and save an exponential moving average of the "
        "weights, with decay D per step (an average over about the last 1/(1-D) steps; "
        "training goes on from the weights as trained, which each checkpoint keeps too): "
        "it scores better on held-out audio than the weights of any one step. 0: off.",
        rich_help_panel=TRAINING,
    ),
]  # fmt: skip
InputNoiseOption = Annotated[
    float,
    setting_option(
        TrainConfig, "input_noise", "--input-noise",
        help="Probability that a sample the model sees as input (never a target) is moved "
        "one quantization level up or down. 0: off.",
        rich_help_panel=TRAINING,
    ),
]  # fmt: skip
