"""Seeds derived from a run's seed, so that every random choice is reproducible."""

from __future__ import annotations


def mix_seed(seed: int, salt: int) -> int:
    """A 63-bit seed for a (run seed, salt) pair, e.g. (seed, epoch) or (seed, iteration);
    nearby pairs give unrelated seeds."""
    return (seed * 6364136223846793005 + (salt + 1) * 1442695040888963407) % (2**63)
