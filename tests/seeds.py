"""Fresh seeds for generator-driven tests: a new one every run, pinned with BTMON_TEST_SEED.

Generators over realistic ranges only find what fixtures miss when each run draws new cases;
the seed is part of every failure message so that a failure can be replayed.
"""

from __future__ import annotations

import os
import random


def fresh_seed() -> int:
    """BTMON_TEST_SEED when set (to replay a failure), else a new random seed."""
    pinned = os.environ.get("BTMON_TEST_SEED")
    return int(pinned) if pinned else random.SystemRandom().randrange(1 << 31)
