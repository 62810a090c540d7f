"""The test of C5: its statement and cases are `synthact.judge.claims`' record of it."""

import pytest

from synthact.judge.claims import claim

C5 = claim("C5")


@pytest.mark.claim(C5.id)
def test_c05_real_blowups_mid_path(sensitivity_relative, evidence):
    """Relative steps: real MS steps concentrate in steps 30-70 and peak near 50.

    Appendix A / Figure A.1: mean 51.65, std 7.42. Asserted: at least 90 % of the steps lie in
    [30, 70] and the median lies in [45, 55].
    """
    evidence.judge(C5.case("C5 mid-path"), sensitivity_relative)


@pytest.mark.claim(C5.id)
def test_c05_structured_baseline_gap_shrinks(sensitivity_absolute, sensitivity_relative, evidence):
    """The KS gap between baseline and structured is smaller with relative than absolute steps.

    Table A.1: KS(baseline) - KS(structured) is 0.31 - 0.11 = 0.20 (absolute) but
    0.27 - 0.22 = 0.05 (relative). Both modes share base prompts and targets, so rows are paired.
    """
    case = C5.case("C5 gap shrinks")
    runs = [
        evidence.distributions(result, case.types(), table=table)
        for result, (table, _) in zip(
            (sensitivity_absolute, sensitivity_relative), case.runs, strict=True
        )
    ]
    evidence.verdict(case.hypothesis(*runs))
