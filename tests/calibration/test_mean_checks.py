"""Size of the single-mean checks (`checks.mean_above`, `checks.mean_below`: C12, C13, C16): at a
true mean on the threshold, each passes at most 5 % of the time (beyond Monte-Carlo error: the
one-sided 95 % Clopper-Pearson lower bound of the observed rate must not exceed 5 %), at n = 30
and 100, on a share-like law with a point mass at 0 (a row without a blowup) and a skewed body,
and (the lower bound, C16's check) on the paired difference of two shares: a point mass at 0 (a
row whose random latents are its top ones) and a skewed body of both signs."""

from __future__ import annotations

import numpy as np
import pytest

from synthact.judge import checks
from tools.power_table import Rate

THRESHOLD = 0.1
REPS = 600
RANDOM_SHARE = 0.3
"""Mean share of the subtracted law: that of C16's random latents on planted-raised (0.28-0.32,
seeds 0-4, n = 100)."""


def _shares(rng: np.random.Generator, n: int, zeros: float) -> np.ndarray:
    """``n`` values: 0 with probability ``zeros``, else exponential; mean exactly ``THRESHOLD``."""
    body = rng.exponential(THRESHOLD / (1 - zeros), n)
    return np.where(rng.random(n) < zeros, 0.0, body)


def _differences(rng: np.random.Generator, n: int, zeros: float) -> np.ndarray:
    """``n`` values: 0 with probability ``zeros``, else the difference of two exponential shares
    (both signs, skewed), the subtracted one of mean `RANDOM_SHARE`; mean exactly ``THRESHOLD``."""
    top = rng.exponential(RANDOM_SHARE + THRESHOLD / (1 - zeros), n)
    body = top - rng.exponential(RANDOM_SHARE, n)
    return np.where(rng.random(n) < zeros, 0.0, body)


CASES = [
    *((check, _shares) for check in (checks.mean_above, checks.mean_below)),
    (checks.mean_above, _differences),
]


@pytest.mark.parametrize("n", [30, 100])
@pytest.mark.parametrize("zeros", [0.0, 0.7])
@pytest.mark.parametrize(("check", "law"), CASES)
def test_a_mean_check_holds_its_size_on_the_threshold(check, law, zeros, n):
    rng = np.random.default_rng(3)
    hits = sum(check(law(rng, n, zeros), THRESHOLD, "mean").passed for _ in range(REPS))
    rate = Rate(hits, REPS)
    assert rate.interval(1 - 2 * checks.ALPHA)[0] <= checks.ALPHA, f"passes {rate}"
