"""The test of C7: its statement and cases are `synthact.judge.claims`' record of it."""

import pytest

from synthact.judge.claims import claim

C7 = claim("C7")


@pytest.mark.claim(C7.id)
def test_c07_auc_keeps_ordering(sensitivity, evidence):
    """AUC steps: distance from real grows from structured to baseline to random.

    Table B.1, absolute: KS 0.09 < 0.25 < 0.43. Relative steps: structured and baseline "perform
    similarly" (0.21, 0.22), both far closer than random (0.59); only that part is asserted there.
    """
    evidence.judge(C7.case("C7[{variant}]"), sensitivity)
