"""When a session stops: its stop conditions (``--max-iterations``, ``--max-epochs``,
``--max-time``), the plateau schedule's end, a :class:`StopRequest` (a signal, a caller), and
under torchrun the agreement of every rank on it, once per iteration.
"""

from __future__ import annotations

import time
from dataclasses import replace

from samplernn_cli.config import LiveSettings, StopConditions
from samplernn_cli.training.distributed import Distributed
from samplernn_cli.training.requests import StopReason, StopRequest
from samplernn_cli.training.state import RunState

# A stop reason as a number for the ranks' all-reduce (their maximum wins): 0 is "go on".
AGREED_REASONS = (None, *StopReason)
# The live settings that travel with the stop reason, from rank 0 (the one that reads
# NAME_args.json) to the others.
SHARED_LIVE_SETTINGS = ("learning_rate", "val_every", "generate_every", "checkpoint_every")


class Stopping:
    """Decides, before every iteration, whether the session stops, the same way on every
    rank."""

    def __init__(
        self,
        conditions: StopConditions,
        request: StopRequest,
        dist: Distributed | None,
        *,
        started: float,
    ) -> None:
        """``started``: ``time.monotonic()`` when the session's loop began (``--max-time``
        counts from it)."""
        self.conditions = conditions
        self.request = request
        self.dist = dist
        self.started = started

    def reason(self, state: RunState, *, plateau_ended: bool) -> StopReason | str | None:
        """Why this process would stop now (None: go on)."""
        conditions = self.conditions
        if self.request.reason is not None:
            return self.request.reason
        if plateau_ended:
            return StopReason.PLATEAU
        if conditions.max_iterations is not None and state.iteration >= conditions.max_iterations:
            return StopReason.MAX_ITERATIONS
        if conditions.max_epochs is not None and state.epoch_index >= conditions.max_epochs:
            return StopReason.MAX_EPOCHS
        if (
            conditions.max_seconds is not None
            and time.monotonic() - self.started >= conditions.max_seconds
        ):
            return StopReason.MAX_TIME
        return None

    def agree(
        self, state: RunState, live: LiveSettings, *, plateau_ended: bool
    ) -> tuple[StopReason | str | None, LiveSettings]:
        """Why to stop now (None: go on) and the live settings in effect, the same on every
        rank: a stop on any rank (a signal, say) stops all; the live settings are rank 0's
        (only rank 0 reads NAME_args.json). ``live``: this process's settings."""
        reason = self.reason(state, plateau_ended=plateau_ended)
        if self.dist is None:
            return reason, live
        values = [float(AGREED_REASONS.index(reason))]
        values += [
            float(getattr(live, f)) if self.dist.is_main else -1.0 for f in SHARED_LIVE_SETTINGS
        ]
        agreed = self.dist.agree(values)
        reason = AGREED_REASONS[int(agreed[0])]
        if reason in (StopReason.SIGINT, StopReason.SIGTERM) and not self.request.requested:
            self.request.request(reason)
        settings = {
            f: (v if f == "learning_rate" else int(v))
            for f, v in zip(SHARED_LIVE_SETTINGS, agreed[1:], strict=True)
        }
        return reason, replace(live, **settings)

    def interrupted(self) -> bool:
        """Whether a signal stopped the session, on any rank (it may reach some ranks only)."""
        interrupted = self.request.interrupted
        if self.dist is not None:
            interrupted = bool(self.dist.agree([float(interrupted)])[0])
        return interrupted
