"""Size of the single-mean checks (`checks.mean_above`, `checks.mean_below`, C16): at a true mean
on the threshold, each passes at most 5 % of the time (beyond Monte-Carlo error: the one-sided 95 %
Clopper-Pearson lower bound of the observed rate must not exceed 5 %), on a share-like law with a
point mass at 0 (a row without a blowup) and a skewed body, at n = 30 and 100."""

from __future__ import annotations

import numpy as np
import pytest

from synthact.judge import checks
from tools.power_table import Rate

THRESHOLD = 0.1
REPS = 600


def _shares(rng: np.random.Generator, n: int, zeros: float) -> np.ndarray:
    """``n`` values: 0 with probability ``zeros``, else exponential; mean exactly ``THRESHOLD``."""
    body = rng.exponential(THRESHOLD / (1 - zeros), n)
    return np.where(rng.random(n) < zeros, 0.0, body)


@pytest.mark.parametrize("n", [30, 100])
@pytest.mark.parametrize("zeros", [0.0, 0.7])
@pytest.mark.parametrize("check", [checks.mean_above, checks.mean_below])
def test_a_mean_check_holds_its_size_on_the_threshold(check, zeros, n):
    rng = np.random.default_rng(3)
    hits = sum(check(_shares(rng, n, zeros), THRESHOLD, "share").passed for _ in range(REPS))
    rate = Rate(hits, REPS)
    assert rate.interval(1 - 2 * checks.ALPHA)[0] <= checks.ALPHA, f"passes {rate}"
