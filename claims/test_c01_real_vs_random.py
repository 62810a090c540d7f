"""The test of C1: its statement and cases are `synthact.judge.claims`' record of it."""

import pytest

from synthact.judge.claims import claim

C1 = claim("C1")


@pytest.mark.claim(C1.id)
def test_c01_real_blows_up_before_random(sensitivity, evidence):
    """Real targets blow up earlier than Gaussian ones; their MS distributions differ (KS > 0.3).

    Section 5.1 / Table A.1: mean MS 41.2 vs 52.5 (KS 0.44) with absolute steps, 51.7 vs 64.9
    (KS 0.62) with relative steps. On a control the effect must be absent: real earlier by less
    than half the paper's gap in pooled standard deviations (paper: 1.09 absolute, 1.46
    relative). KS measures any difference of the distributions, not this effect, so it decides
    the claim but not the absence (an untrained GPT-2 shows KS about 0.15-0.25 at n = 100).
    """
    evidence.judge(C1.case("C1[{variant}]"), sensitivity)
