"""C8: NL steps: real earliest, structured next; baseline later than random."""

import pytest

from synthact.judge import hypotheses


@pytest.mark.claim("C8")
def test_c08_nl_ordering(sensitivity, evidence):
    """Mean NL steps: real < structured < random < baseline.

    Table B.2: 24.17 < 26.72 < 29.80 < 32.90 (absolute), 29.98 < 33.69 < 36.33 < 37.91 (relative).
    Baseline curves leave linearity latest: their initial slope is steeper.
    """
    kinds = ["real", "synthetic-structured", "random", "synthetic-baseline"]
    steps = evidence.distributions(sensitivity, kinds, metric="nl", table="B.2")
    evidence.verdict(hypotheses.c08_nl_ordering(steps, sensitivity.mode))
