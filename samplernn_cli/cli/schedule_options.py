"""The options of ``samplernn train`` that shape the training schedule: where sequences
start, and what happens when validation stops improving (the plateau schedule)."""

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
