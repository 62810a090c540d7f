"""C6: structured w/o cos sim is the best synthetic type with relative steps, not with absolute."""

import pytest

from synthact import checks

OTHERS = ("synthetic-baseline", "synthetic-structured", "synthetic-random")
NON_INFERIORITY = 0.05
"""Relative mode: Table A.1 has no-cos at KS 0.17 against 0.19 for synthetic-random, a gap n = 1000
cannot resolve; the test asserts "best within 0.05 of KS" against every other synthetic type."""


@pytest.mark.claim("C6")
def test_c06_no_cos_best_relative_worse_absolute(sensitivity, evidence):
    """Relative steps: no-cos is the closest synthetic type to real (within 0.05 KS of each other).
    Absolute steps: it is further from real than synthetic-structured.

    Table A.1: relative KS 0.17 (no-cos) vs 0.19/0.22/0.27; absolute 0.31 vs 0.11 (structured).
    """
    steps = evidence.distributions(sensitivity, ["real", "structured-no-cos", *OTHERS], table="A.1")
    if sensitivity.mode == "relative":
        found = [
            checks.closer(steps, "structured-no-cos", other, slack=NON_INFERIORITY)
            for other in OTHERS
        ]
    else:
        found = [checks.closer(steps, "synthetic-structured", "structured-no-cos")]
    evidence.verdict(*found)
