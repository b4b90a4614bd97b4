"""Which parts of the input files train and which validate.

``tail`` holds out the end of every file, ``files`` holds out whole files; training and
validation never overlap, and files too short to train on are set aside.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from samplernn_cli.config import TrainConfig
from samplernn_cli.config.rules import rule
from samplernn_cli.errors import AudioError


@dataclass(frozen=True)
class Segment:
    """A stretch of one input file's codes: samples ``start .. start + length``."""

    file: int  # index into the dataset's files
    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class DataSplit:
    """Which parts of the input files train and which validate; they never overlap."""

    train: tuple[Segment, ...]
    val: tuple[Segment, ...]  # empty without validation
    skipped: tuple[int, ...] = ()  # files too short to use

    @property
    def train_samples(self) -> int:
        return sum(s.length for s in self.train)

    @property
    def val_samples(self) -> int:
        return sum(s.length for s in self.val)


def whole_chunks(requested: int, available: int, chunk_length: int) -> int:
    """A sequence length in samples: whole chunks, at most ``available``, at least one chunk."""
    return max(1, min(requested, available) // chunk_length) * chunk_length


def tail_length(total: int, val_fraction: float, chunk_length: int) -> int:
    """Samples held out at the end of a file of ``total`` samples: ``val_fraction`` of it, but
    at least one chunk (none when the fraction is zero)."""
    return max(round(total * val_fraction), chunk_length) if val_fraction > 0 else 0


def split_dataset(
    lengths: Sequence[int],
    names: Sequence[str],
    *,
    val_fraction: float,
    val_split: str = "tail",
    chunk_length: int,
    sample_rate: int,
    seed: int = 0,
) -> DataSplit:
    """Split the input files into training and validation parts.

    ``tail``: the last ``val_fraction`` of every file (at least one chunk) validates and the
    rest trains. ``files``: whole files validate, drawn in an order fixed by ``seed`` until
    they hold ``val_fraction`` of the audio; at least one file trains. Every training part
    must hold a chunk: with several files, shorter files are skipped (and listed in
    ``skipped``); with one, or when none is long enough, it is an error.

    Raises:
        AudioError: no file is long enough to train on (or ``files`` with one file).
    """
    rule(TrainConfig, "val_split").check(val_split)
    count = len(lengths)
    held_out: set[int] = set()
    if val_split == "files" and val_fraction > 0:
        if count < 2:
            raise AudioError(
                "--val-split files holds out whole files and needs at least two input files; "
                "use --val-split tail with one file"
            )
        order = list(range(count))
        random.Random(seed).shuffle(order)
        total = sum(lengths)
        held = 0
        for index in order[:-1]:  # at least one file stays for training
            if held >= val_fraction * total:
                break
            held_out.add(index)
            held += lengths[index]
    train: list[Segment] = []
    val: list[Segment] = []
    skipped: list[int] = []
    for index, total in enumerate(lengths):
        if index in held_out:
            val.append(Segment(index, 0, total))
            continue
        val_length = tail_length(total, val_fraction, chunk_length) if val_split == "tail" else 0
        if total - val_length < chunk_length:
            skipped.append(index)
            continue
        train.append(Segment(index, 0, total - val_length))
        if val_length:
            val.append(Segment(index, total - val_length, val_length))
    if not train:
        with_val = val_fraction > 0 and val_split == "tail"
        needed = chunk_length * (2 if with_val else 1)
        parts = "frame size x num_frames" + (" x 2 with validation" if with_val else "")
        longest = max(range(count), key=lambda i: lengths[i])
        what = names[0] if count == 1 else f"the longest input, {names[longest]},"
        raise AudioError(
            f"{what} is {lengths[longest] / sample_rate:.3g} s long; training needs at least "
            f"{needed / sample_rate:.3g} s ({parts}, at {sample_rate} Hz); "
            "use a longer file or lower --num_frames or --frame_size"
        )
    return DataSplit(train=tuple(train), val=tuple(val), skipped=tuple(skipped))
