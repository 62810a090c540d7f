"""The test of C15: its statement and cases are `synthact.judge.claims`' record of it."""

import pytest

from synthact.judge.claims import claim

C15 = claim("C15")
AP = C15.case("C15[{variant}]", "plateau")


@pytest.mark.claim(C15.id)
def test_c15_cooccurrence_closer_than_frequency_control(sensitivity, evidence):
    """KS(cooccurrence, real) < KS(frequency-matched, real) for MS steps, absolute and relative.

    Not in the paper: section 7 names "accounting for latent co-occurrence" as future work. The
    control makes the same swaps among latents of the same firing frequency, without P(j | k), so a
    pass means co-occurrence itself helps. On a control the effect must be absent: co-occurrence
    not closer than the frequency-matched construction by `hypotheses.C15_MARGIN` KS or more.
    """
    evidence.judge(C15.case("C15[{variant}]", "sensitivity"), sensitivity)


@pytest.mark.claim(C15.id)
@pytest.mark.parametrize("variant", AP.variants)
def test_c15_cooccurrence_bases_plateau_like_real(plateau, variant, evidence):
    """KS(cooccurrence, real) < KS(frequency-matched, real) for the AP steps of plateau bases."""
    evidence.judge(AP, plateau, variant)
