"""Seeds derived from a run's seed, so that every random choice is reproducible."""

from __future__ import annotations

# The random streams of training, each drawn from mix_seed(mix_seed(seed, epoch or
# iteration), its salt): where sequences start (per epoch), their gains (per epoch), the
# input noise (per iteration), frame dropout's masks (per iteration, then per frame tier),
# which sequences play upside down (per epoch), which start from silence (per epoch).
STARTS_SALT, GAIN_SALT, NOISE_SALT, DROPOUT_SALT, FLIP_SALT, COLD_SALT = 0, 1, 2, 3, 4, 5


def mix_seed(seed: int, salt: int) -> int:
    """A 63-bit seed for a (run seed, salt) pair, e.g. (seed, epoch) or (seed, iteration);
    nearby pairs give unrelated seeds."""
    return (seed * 6364136223846793005 + (salt + 1) * 1442695040888963407) % (2**63)
