"""The gain applied to audio a model scores (``evaluate``) or continues (``--prime``).

Training peak-normalises each input file on its own, so the model learns the training
audio at that loudness. A piece cut from a training recording, normalised on its own, is
louder than training heard it (a quiet passage by tens of dB) and scores badly for that
reason alone; so by default such audio gets the training files' gain:

* ``training`` (the default): the gain training applied to the input file of the same name,
  or, for another file, the median of the training files' gains, unless that would clip the
  audio (a louder recording than training's), which then falls back to ``peak``;
* ``peak``: peak-normalised on its own, as training treated each of its files;
* ``none``: the samples as they are in the file.

A run trained without normalisation applied no gain, so ``training`` is ``none`` there.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GAIN_MODES = ("training", "peak", "none")


@dataclass(frozen=True)
class Gain:
    """The factor applied to a file's samples and why."""

    mode: str  # the mode asked for
    factor: float
    reason: str  # e.g. "the training gain of quartet.wav"

    @property
    def db(self) -> float:
        return 20 * math.log10(self.factor)

    def describe(self) -> str:
        """'+12.3 dB (the training gain of quartet.wav)'."""
        return f"{self.db:+.1f} dB ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "db": self.db, "reason": self.reason}


def choose_gain(
    mode: str, path: Path, peak: float, normalized: bool, training_files: Sequence[dict[str, Any]]
) -> Gain:
    """The gain for a file whose peak (after mixing and resampling) is ``peak``.

    Args:
        mode: one of :data:`GAIN_MODES`.
        normalized: whether training peak-normalised its inputs.
        training_files: the checkpoint's input files (``name`` and ``gain`` of each).
    """
    if mode not in GAIN_MODES:
        raise ValueError(f"unknown gain mode {mode!r}")
    own = Gain(mode, 1.0 / peak, "peak-normalised on its own")
    if mode == "none":
        return Gain(mode, 1.0, "the file's own level")
    if mode == "peak":
        return own
    if not normalized:
        return Gain(mode, 1.0, "training applied no gain")
    gains = {entry.get("name"): float(entry["gain"]) for entry in training_files if "gain" in entry}
    if path.name in gains:
        return Gain(mode, gains[path.name], f"the training gain of {path.name}")
    if not gains:  # a file without the record (an export of an old run, say)
        return own
    factor = statistics.median(gains.values())
    what = (
        f"the training gain of {next(iter(gains))}"
        if len(gains) == 1
        else f"the median training gain of {len(gains)} files"
    )
    if peak * factor > 1.0:
        return Gain(mode, 1.0 / peak, f"peak-normalised: {what} would clip it")
    return Gain(mode, factor, what)
