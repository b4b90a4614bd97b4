"""The settings of a run that starts from another's weights (``--init-from``): one rule, for
the command line and for Python callers of :func:`samplernn_cli.training.session.train`."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from samplernn_cli.config import AudioConfig, ModelConfig, TrainConfig
from samplernn_cli.config.rules import declarations, flag
from samplernn_cli.errors import ConfigError

if TYPE_CHECKING:
    from samplernn_cli.checkpoint import Checkpoint


def fine_tune_settings(
    parent: Checkpoint,
    model: ModelConfig,
    audio: AudioConfig,
    train: TrainConfig,
    chosen: Collection[str] | None = None,
    *,
    preset: str | None = None,
) -> tuple[ModelConfig, AudioConfig, TrainConfig]:
    """The model, audio and train settings of a run fine-tuned from ``parent``: the parent's
    architecture and sample rate, and of the train settings those chosen, else (for those
    declared ``inherited``) the parent's.

    ``chosen`` names the model, audio and train settings the caller chose (on the command
    line: the options given); the others are defaults, which the parent's replace. None: all
    of them were chosen.

    Raises:
        ConfigError: ``preset`` is set (a preset chooses an architecture), or a chosen model
            setting or sample rate differs from the parent's.
    """
    if preset is not None:
        raise ConfigError(
            f"--preset sets the architecture, which --init-from takes from {parent.path.name}; "
            "drop --preset"
        )

    def is_chosen(name: str) -> bool:
        return chosen is None or name in chosen

    for field in fields(ModelConfig):
        value, kept = getattr(model, field.name), getattr(parent.model_config, field.name)
        if is_chosen(field.name) and value != kept:
            raise ConfigError(
                f"{flag(ModelConfig, field.name)} {_shown(value)} conflicts with "
                f"{parent.path.name}, whose model has {_shown(kept)}; a fine-tuned model "
                "keeps its parent's architecture (drop the option, or train from scratch "
                "without --init-from)"
            )
    if is_chosen("sample_rate") and audio.sample_rate != parent.sample_rate:
        raise ConfigError(
            f"{parent.path.name} runs at {parent.sample_rate} Hz, and a fine-tuned model keeps "
            "its parent's sample rate; drop --sample-rate/--keep-sample-rate"
        )
    inherited = {
        name: getattr(parent.train, name)
        for name, declared in declarations(TrainConfig).items()
        if declared.inherited and not is_chosen(name)
    }
    return (
        parent.model_config,
        replace(audio, sample_rate=parent.sample_rate),
        replace(train, **inherited),
    )


def _shown(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
