"""The test of C4: its statement and cases are `synthact.judge.claims`' record of it."""

import pytest

from synthact.judge.claims import claim

C4 = claim("C4")
CASE = C4.case("C4[{variant}]")


@pytest.mark.claim(C4.id)
@pytest.mark.parametrize("sensitivity", CASE.variants, indirect=True)
def test_c04_synthetic_random_further_than_baseline(sensitivity, evidence):
    """KS(synthetic-random, real) > KS(baseline, real) with absolute steps.

    Table A.1: 0.39 vs 0.31, which validates synthetic-baseline as the stronger baseline.
    """
    evidence.judge(CASE, sensitivity)
