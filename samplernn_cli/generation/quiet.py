"""The quiet boost (``samplernn generate --quiet-boost``, the live voice's ``quiet_boost``):
the rule (:class:`QuietGuard`) and its watch over the takes as they are made
(:class:`QuietWatch`, state in buffers), one for both samplers, endless streams and the
live voice.

No ``from __future__ import annotations`` here: TorchScript reads the annotations of
:class:`QuietWatch`, which the live voice carries.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from samplernn_cli.distance import Reference


@dataclass(frozen=True)
class QuietGuard:
    """Keeps takes from falling silent for good: while a clip's last quarter second lies
    under ``floor`` (20 dB below the training audio's level, or 10 dB below the quietest
    of the recording's own pieces where they get quieter than 10 dB down), or its last
    second under ``slow_floor`` (10 dB below the quietest of the recording's 4 s pieces),
    the clip is sampled at ``boost`` times its temperature, back to its own as soon as it
    sounds again.

    A model that has learned a recording with hard attacks and silence between them (a
    drum kit) can sample its way into a silence it then finds likelier and likelier to go
    on: at temperature 1, every take of rock drums fell silent after a few hits. A higher
    temperature everywhere cures that but takes the other recordings' takes away from
    them; raised only in such silences it costs them nothing they would miss (see
    docs/what-to-expect.md). The second rule is for recordings of events over a quiet
    background (birds at night): a model early in training makes the background and too
    few of the events, each stretch as quiet as the recording's own gaps (so the first
    rule keeps out), but the take as a whole far quieter than any 4 s of the recording.
    The level is judged every ``BLOCK`` samples, on the clip's own samples alone, so a clip
    stays independent of the others in its batch.
    """

    BLOCK = 256  # samples between judgements

    floor: float  # mean square (of samples in [-1, 1]) under which a window is quiet
    boost: float
    blocks: int  # the window, in blocks
    slow_floor: float = 0.0  # the same for the slow window (0: no slow rule)
    slow_blocks: int = 1

    WINDOW_SECONDS = 0.25
    # How far below the training audio's level a window is quiet: measured with 20 and
    # 30 dB on seven recordings (docs/what-to-expect.md), 20 caught the jazz kit's quiet
    # takes that 30 let through. A recording whose own pieces get quieter (sparse sounds
    # in silence) keeps its silences: the floor is then MARGIN_DB below its quietest
    # pieces (their 10th percentile, as the quiet trap of generation/ranking.py judges).
    BELOW_DB = 20.0
    MARGIN_DB = 10.0
    # The slow rule: a second of the take under the level at which the quiet trap
    # (generation/ranking.py) catches a whole 4 s take. Measured with the first rule alone
    # and the slow one alone on eight recordings (docs/what-to-expect.md): the slow one
    # alone brings the night birds back but is too late for the drums' silences.
    SLOW_WINDOW_SECONDS = 1.0
    SLOW_PIECE_SECONDS = 4.0

    @classmethod
    def for_recording(
        cls,
        level_dbfs: float | None,
        sample_rate: int,
        boost: float,
        reference: "Reference | None" = None,
    ) -> "QuietGuard | None":
        """The guard for a model whose training audio was at ``level_dbfs`` (the
        recording's statistics ``reference`` take its place where given; neither: not
        recorded, no guard), at ``sample_rate``; None where ``boost`` is 1 (off)."""
        below = -cls.BELOW_DB
        slow_floor = 0.0
        if reference is not None:
            level_dbfs = reference.level_dbfs
            quietest = reference.piece_limits(cls.WINDOW_SECONDS)[0]
            below = min(below, quietest - cls.MARGIN_DB)
            slow_below = reference.piece_limits(cls.SLOW_PIECE_SECONDS)[0] - cls.MARGIN_DB
            slow_floor = 10.0 ** ((level_dbfs + slow_below) / 10.0)
        if level_dbfs is None or boost == 1.0:
            return None
        floor = 10.0 ** ((level_dbfs + below) / 10.0)
        return cls(
            floor=floor, boost=boost, blocks=cls.window_blocks(sample_rate),
            slow_floor=slow_floor, slow_blocks=cls.window_blocks(sample_rate, slow=True),
        )  # fmt: skip

    @classmethod
    def window_blocks(cls, sample_rate: int, *, slow: bool = False) -> int:
        """The quarter second (``slow``: the second) at ``sample_rate``, in blocks."""
        seconds = cls.SLOW_WINDOW_SECONDS if slow else cls.WINDOW_SECONDS
        return max(1, round(seconds * sample_rate / cls.BLOCK))


class QuietWatch(nn.Module):
    """A :class:`QuietGuard` at work on a batch of takes: each row's mean square over its
    last ``blocks`` blocks of ``BLOCK`` samples (in float64), judged when a block completes,
    and whether it lies under the floor; the state lives in buffers, carried from call to
    call. A new take (:meth:`reset`) is judged on its own samples from when they fill the
    window, so a take that never falls quiet is the take made without the guard."""

    def __init__(self, guard: QuietGuard, decode_table: Tensor):
        super().__init__()
        self.floor = float(guard.floor)
        self.slow_floor = float(guard.slow_floor)
        self.block = int(guard.BLOCK)
        # Each code's sample, squared.
        self.register_buffer("squares", decode_table.detach().double().square())
        # The last blocks' mean squares, each window's in a ring of its own (inf: not yet
        # made, so a window is judged once the take fills it).
        self.register_buffer(
            "energy", torch.full((1, guard.blocks), float("inf"), dtype=torch.float64)
        )
        self.register_buffer(
            "slow_energy", torch.full((1, guard.slow_blocks), float("inf"), dtype=torch.float64)
        )
        self.register_buffer("partial", torch.zeros(1, dtype=torch.float64))  # block in progress
        self.register_buffer("filled", torch.zeros(1, dtype=torch.long))  # its samples so far
        self.register_buffer("slot", torch.zeros(1, dtype=torch.long))  # blocks made
        self.register_buffer("quiet", torch.zeros(1, dtype=torch.bool))

    def reset(self, batch: int) -> None:
        """A new take in each of ``batch`` rows (tensors of the caller's mode)."""
        self.energy = torch.full((batch, self.energy.shape[1]), float("inf"), dtype=torch.float64)
        self.slow_energy = torch.full(
            (batch, self.slow_energy.shape[1]), float("inf"), dtype=torch.float64
        )
        self.partial = torch.zeros(batch, dtype=torch.float64)
        self.filled = torch.zeros(1, dtype=torch.long)
        self.slot = torch.zeros(1, dtype=torch.long)
        self.quiet = torch.zeros(batch, dtype=torch.bool)

    def adopt(self) -> None:
        """The state copied into tensors of this call's mode (see the voice's ``_adopt``)."""
        self.energy = self.energy.clone()
        self.slow_energy = self.slow_energy.clone()
        self.partial = self.partial.clone()
        self.filled = self.filled.clone()
        self.slot = self.slot.clone()
        self.quiet = self.quiet.clone()

    def needed(self) -> int:
        """Samples still to come before the block in progress completes."""
        return self.block - int(self.filled[0])

    def add(self, codes: Tensor) -> bool:
        """Count the (B, n) codes made since the last call, judging the rows at each block
        they complete; True when they completed one (or more)."""
        judged = False
        done = 0
        while done < codes.shape[1]:
            piece = min(codes.shape[1] - done, self.needed())
            judged = self._count(codes.narrow(1, done, piece)) or judged
            done += piece
        return judged

    def _count(self, codes: Tensor) -> bool:
        """:meth:`add` for at most :meth:`needed` codes."""
        self.partial.add_(self.squares[codes].sum(1))
        self.filled.add_(codes.shape[1])
        count = int(self.filled[0])
        if count < self.block:
            return False
        made = int(self.slot[0])  # blocks made in this take (they fill both rings in turn)
        self.energy.select(1, made % self.energy.shape[1]).copy_(self.partial / count)
        self.slow_energy.select(1, made % self.slow_energy.shape[1]).copy_(self.partial / count)
        self.slot.add_(1)
        self.partial.zero_()
        self.filled.zero_()
        self.quiet.copy_(
            (self.energy.mean(1) < self.floor) | (self.slow_energy.mean(1) < self.slow_floor)
        )
        return True

    def boosted(self, temperature: Tensor, boost: float) -> Tensor:
        """(B, 1, 1): the (B,) ``temperature``, times ``boost`` in the rows quiet now."""
        return torch.where(self.quiet, temperature * boost, temperature).view(-1, 1, 1)
