"""C9: KL divergence keeps the L2 ordering; its structured-baseline gap is not smaller."""

import pytest

from synthact import checks, stats

NON_INFERIORITY = 0.05
"""Table C.1 vs Table 1 (absolute): the KS gap baseline - structured is 0.19 with KL and 0.17 with
L2; n = 1000 cannot resolve "larger", so the test asserts "not smaller by more than 0.05"."""

KINDS = ["real", "synthetic-structured", "synthetic-baseline", "random"]


@pytest.mark.claim("C9")
def test_c09_kl_keeps_l2_ordering(kl, evidence):
    """MS steps of the KL curves: structured closer to real than baseline, baseline than random.

    Table C.1 absolute KS: 0.13 < 0.32 < 0.47. Relative: 0.26, 0.32 (not resolvable at n = 1000,
    not asserted), 0.69: random is asserted furthest.
    """
    steps = evidence.distributions(kl, KINDS, signal="kl", table="C.1")
    evidence.verdict(*checks.paper_ordering(steps, kl.mode))


@pytest.mark.claim("C9")
@pytest.mark.parametrize("kl", ["absolute"], indirect=True)
def test_c09_kl_gap_not_smaller_than_l2(kl, evidence):
    """The baseline - structured KS gap with KL is at least the L2 gap (minus 0.05).

    Both signals come from the same perturbations, so the samples are paired.
    """
    by_kl = evidence.distributions(kl, KINDS, signal="kl", table="C.1")
    by_l2 = evidence.distributions(kl, KINDS, signal="l2", table="1")

    def gap_difference(r_kl, b_kl, s_kl, r_l2, b_l2, s_l2):
        gap_kl = stats.ks_batch(b_kl, r_kl) - stats.ks_batch(s_kl, r_kl)
        return gap_kl - (stats.ks_batch(b_l2, r_l2) - stats.ks_batch(s_l2, r_l2))

    kinds = ["real", "synthetic-baseline", "synthetic-structured"]
    evidence.verdict(
        checks.bound_check(
            f"KS gap (baseline - structured): KL - L2 > -{NON_INFERIORITY:g}",
            gap_difference,
            [by_kl[k] for k in kinds] + [by_l2[k] for k in kinds],
            above=-NON_INFERIORITY,
        )
    )
