"""The test of C8: its statement and cases are `synthact.judge.claims`' record of it."""

import pytest

from synthact.judge.claims import claim

C8 = claim("C8")


@pytest.mark.claim(C8.id)
def test_c08_nl_ordering(sensitivity, evidence):
    """Mean NL steps: real < structured < random < baseline.

    Table B.2: 24.17 < 26.72 < 29.80 < 32.90 (absolute), 29.98 < 33.69 < 36.33 < 37.91 (relative).
    Baseline curves leave linearity latest: their initial slope is steeper.
    """
    evidence.judge(C8.case("C8[{variant}]"), sensitivity)
