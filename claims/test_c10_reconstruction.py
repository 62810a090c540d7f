"""The test of C10: its statement and cases are `synthact.judge.claims`' record of it."""

import pytest

from synthact.judge.claims import claim

C10 = claim("C10")


@pytest.mark.claim(C10.id)
def test_c10_reconstruction_like_real(reconstruction, evidence):
    """Towards SAE(T) instead of T: later, and (absolute) the same MS distribution (KS < 0.1).

    Table D.1: KS 0.02 and mean 41.49 vs 41.11 (absolute); KS 0.11 and 53.34 vs 51.60 (relative).
    The margin 0.1 is `synthact.judge.checks.EQUIVALENCE_MARGIN`, the project's choice: the paper
    calls both KS values of Table D.1 "almost identical" and sets no margin; 0.1 is below the
    larger (0.11) and five times the smaller (0.02). Rows are paired: each reconstruction shares
    its real target's base prompt.
    """
    evidence.judge(C10.case("C10[{variant}]"), reconstruction)
