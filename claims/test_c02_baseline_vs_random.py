"""The test of C2: its statement and cases are `synthact.judge.claims`' record of it."""

import pytest

from synthact.judge.claims import claim

C2 = claim("C2")


@pytest.mark.claim(C2.id)
def test_c02_baseline_closer_than_random(sensitivity, evidence):
    """KS(baseline, real) < KS(random, real).

    Table A.1: 0.31 vs 0.44 (absolute), 0.27 vs 0.62 (relative).
    """
    evidence.judge(C2.case("C2[{variant}]"), sensitivity)
