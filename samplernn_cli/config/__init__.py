"""Frozen settings objects shared by the core and the command line, each setting declared
once, on its dataclass field (:func:`setting`, in :mod:`.rules`): its default, its limits
or allowed values, its command-line option (spellings, help, panel), the value older
checkpoints imply, and whether fine-tuning inherits it.

:meth:`Settings.validate` checks the rules (raising :class:`ConfigError` with a message that
names the setting) and the command line builds its options from the same declarations
(``samplernn_cli.cli.settings``), so a value the options accept is one the settings accept.
Each object converts to and from a plain dict of JSON types, which is how it is stored in
checkpoints and in ``NAME_args.json``.

How a setting is declared lives in :mod:`.rules`. The classes: :class:`ModelConfig` and
:class:`AudioConfig` (:mod:`.model`), :class:`TrainConfig`, :class:`LiveSettings` and
:class:`StopConditions` (:mod:`.training`), :class:`GenerateSettings` (:mod:`.generation`).
"""

from samplernn_cli.config.generation import GAIN_HELP, GenerateSettings
from samplernn_cli.config.model import AudioConfig, ModelConfig
from samplernn_cli.config.rules import (
    MAX_COUNT,
    MAX_PARAMETERS,
    MAX_SEED,
    MAX_TOP_FRAME,
    parse_duration,
)
from samplernn_cli.config.training import LiveSettings, StopConditions, TrainConfig

__all__ = [
    "GAIN_HELP",
    "MAX_COUNT",
    "MAX_PARAMETERS",
    "MAX_SEED",
    "MAX_TOP_FRAME",
    "AudioConfig",
    "GenerateSettings",
    "LiveSettings",
    "ModelConfig",
    "StopConditions",
    "TrainConfig",
    "parse_duration",
]
