"""Precision: lower precision (bfloat16, float16, TF32) keeps the float32 step distributions."""

import pytest

from synthact.judge import hypotheses
from synthact.method.experiments import EXPERIMENTS, Lab


@pytest.mark.claim("precision")
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
    steps = {
        "real": float32.steps("real"),
        f"{kind} ({precision})": sensitivity.steps(kind),
        f"{kind} (float32)": float32.steps(kind),
    }
    evidence.show(steps, f"max slope (MS) step of L2, {sensitivity.mode} step")
    evidence.verdict(hypotheses.precision_keeps_steps(steps, sensitivity.mode, kind, precision))
