"""The test of precision: its statement and cases are `synthact.judge.claims`' record of it."""

import pytest

from synthact.judge.claims import claim
from synthact.method.experiments import EXPERIMENTS, Lab

PRECISION = claim("precision")
CASE = PRECISION.case("precision[{variant}, {kind}]")


@pytest.mark.claim(PRECISION.id)
@pytest.mark.parametrize("kind", EXPERIMENTS["sensitivity"].types)
def test_precision_keeps_the_step_distributions(sensitivity, kind, lab, evidence):
    """The MS steps of each type move by KS < 0.1 from float32 (same seed, same prompts and
    targets; rows are paired). Collected only when --dtype is not float32 or --tf32 is on.

    The margin is `synthact.judge.checks.EQUIVALENCE_MARGIN` (the project's choice; see there).
    """
    config = lab.config
    reference = Lab(config.reference(), lab.cache, device=lab.device, progress=lab.progress)
    precision = f"{config.dtype}" + (" + TF32" if config.tf32 else "")
    float32 = reference.result("sensitivity", sensitivity.mode)
    evidence.parameters(float32)
    lower, full = (name.format(kind=kind, precision=precision) for name in CASE.pair)
    steps = {
        "real": float32.steps("real"),
        lower: sensitivity.steps(kind),
        full: float32.steps(kind),
    }
    evidence.show(steps, f"max slope (MS) step of L2, {sensitivity.mode} step")
    evidence.verdict(CASE.hypothesis(steps, sensitivity.mode, kind, precision))
