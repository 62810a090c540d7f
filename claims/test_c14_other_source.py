"""The test of C14: its statement and cases are `synthact.judge.claims`' record of it."""

import pytest

from synthact.judge.claims import claim
from synthact.method import constructions

C14 = claim("C14")
CASE = C14.case("C14[{variant}, {kind}]")


@pytest.mark.claim(C14.id)
@pytest.mark.parametrize("kind", constructions.names("other-source"))
def test_c14_construction_source_does_not_matter(other_source, kind, lab, evidence):
    """Synthetic targets built from a third real activation give the same MS distribution as
    those built from the base activation A (KS between the two < 0.1).

    Section 6: "we have verified that using information from a different model-generated
    activation for the construction does not change our results" (no run of it is in the
    authors' repository). Both constructions start from the same base prompts: rows are paired.
    The margin is `synthact.judge.checks.EQUIVALENCE_MARGIN`; below the n it needs (docs/power.md) a
    failure reads as underpowered, not as a verdict.
    """
    from_base = lab.result("sensitivity", other_source.mode)
    evidence.parameters(from_base)
    evidence.parameters(other_source)
    from_a, from_other = (name.format(kind=kind) for name in CASE.pair)
    steps = {
        "real": from_base.steps("real"),
        from_a: from_base.steps(kind),
        from_other: other_source.steps(kind),
    }
    evidence.show(steps, f"max slope (MS) step of L2, {other_source.mode} step")
    evidence.verdict(CASE.hypothesis(steps, other_source.mode, kind))
