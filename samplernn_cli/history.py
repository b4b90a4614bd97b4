"""A run's loss history: the training figure of every iteration and every validation
figure (the rows of ``NAME_losses.csv``), as checkpoints store it, and its summary (the last
and best of each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class LossSummary:
    """The last and best training and validation figures (bits per sample) with the
    iteration of each; None where there is none."""

    last_loss: float | None = None
    last_loss_iteration: int | None = None
    best_loss: float | None = None
    best_loss_iteration: int | None = None
    last_val_loss: float | None = None
    last_val_iteration: int | None = None
    best_val_loss: float | None = None
    best_val_iteration: int | None = None


@dataclass
class LossHistory:
    """One entry per iteration (the rows of ``NAME_losses.csv``), and every validation."""

    losses: list[float] = field(default_factory=list)  # training NLL, bits per sample
    epochs: list[int] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)  # training seconds, summed
    rates: list[float] = field(default_factory=list)  # target samples per second
    validations: list[tuple[int, float]] = field(default_factory=list)  # (iteration, bits)

    def append(self, loss: float, epoch: int, elapsed: float, rate: float) -> None:
        self.losses.append(loss)
        self.epochs.append(epoch)
        self.elapsed.append(elapsed)
        self.rates.append(rate)

    @property
    def last_val(self) -> tuple[int, float] | None:
        return self.validations[-1] if self.validations else None

    @property
    def best_val(self) -> tuple[int, float] | None:
        return min(self.validations, key=lambda item: item[1]) if self.validations else None

    def finite_losses(self) -> list[tuple[int, float]]:
        """(iteration, bits) of every iteration whose loss was finite."""
        return [(i + 1, v) for i, v in enumerate(self.losses) if math.isfinite(v)]

    def summary(self) -> LossSummary:
        finite = self.finite_losses()
        best_loss = min(finite, key=lambda item: item[1]) if finite else None
        last_val, best_val = self.last_val, self.best_val
        return LossSummary(
            last_loss=finite[-1][1] if finite else None,
            last_loss_iteration=finite[-1][0] if finite else None,
            best_loss=None if best_loss is None else best_loss[1],
            best_loss_iteration=None if best_loss is None else best_loss[0],
            last_val_loss=None if last_val is None else last_val[1],
            last_val_iteration=None if last_val is None else last_val[0],
            best_val_loss=None if best_val is None else best_val[1],
            best_val_iteration=None if best_val is None else best_val[0],
        )

    def rows(self) -> list[tuple[int, float, int, float, float | None, float]]:
        """The ``NAME_losses.csv`` rows so far."""
        vals = dict(self.validations)
        return [
            (i + 1, loss, epoch, elapsed, vals.get(i + 1), rate)
            for i, (loss, epoch, elapsed, rate) in enumerate(
                zip(self.losses, self.epochs, self.elapsed, self.rates, strict=True)
            )
        ]

    def to_dict(self) -> dict[str, torch.Tensor]:
        return {
            "loss": torch.tensor(self.losses, dtype=torch.float64),
            "epoch": torch.tensor(self.epochs, dtype=torch.int64),
            "elapsed_s": torch.tensor(self.elapsed, dtype=torch.float64),
            "samples_per_s": torch.tensor(self.rates, dtype=torch.float64),
            "val_iteration": torch.tensor([i for i, _ in self.validations], dtype=torch.int64),
            "val_loss": torch.tensor([v for _, v in self.validations], dtype=torch.float64),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LossHistory:
        """The history of a checkpoint (empty lists for what it lacks)."""

        def values(key: str) -> list[Any]:
            return data[key].tolist() if key in data else []

        return cls(
            losses=values("loss"),
            epochs=values("epoch"),
            elapsed=values("elapsed_s"),
            rates=values("samples_per_s"),
            validations=list(zip(values("val_iteration"), values("val_loss"), strict=True)),
        )
