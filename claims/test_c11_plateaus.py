"""The test of C11: its statement and cases are `synthact.judge.claims`' record of it."""

import pytest

from synthact.judge.claims import claim

C11 = claim("C11")
CASE = C11.case("C11[{variant}]")


@pytest.mark.claim(C11.id)
@pytest.mark.parametrize("variant", CASE.variants)
def test_c11_real_bases_have_larger_plateaus(plateau, variant, evidence):
    """From real bases, L2 takes more steps towards a random direction to reach the AP threshold
    than from bases of the other type.

    Section 5.2 / Figure 3 (the paper gives no AP numbers; the authors' recorded run, which
    stepped towards A instead, had mean AP 15.12 for real bases vs 8.33 random, 7.76 structured,
    6.18 baseline, KS 0.57, 0.63, 0.75). Real vs random is the plateau effect of Heimersheim and
    Mendel; real vs synthetic is this paper's finding, so each comparison is its own case. On a
    control the effect must be absent: real later by less than half that run's gap in pooled
    standard deviations (1.02 random, 1.38 baseline, 1.11 structured).
    """
    evidence.judge(CASE, plateau, variant)
