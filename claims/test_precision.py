"""Precision: lower precision (bfloat16, float16, TF32) keeps the float32 step distributions."""

import pytest

from synthact import checks
from synthact.experiments import SENSITIVITY_TYPES, Lab

KS_BOUND = 0.05
"""Largest KS between a type's MS steps in the run's precision and in float32 that still counts as
the same distribution (the paper's KS differences between types are 0.1 and more)."""


@pytest.mark.claim("precision")
@pytest.mark.parametrize("kind", SENSITIVITY_TYPES)
def test_precision_keeps_the_step_distributions(sensitivity, kind, lab, evidence):
    """The MS steps of each type move by KS < 0.05 from float32 (same seed, same prompts and
    targets; rows are paired). Collected only when --dtype is not float32 or --tf32 is on."""
    config = lab.config
    reference = Lab(config.reference(), lab.cache, device=lab.device, progress=lab.progress)
    precision = f"{config.dtype}" + (" + TF32" if config.tf32 else "")
    ours, exact = f"{kind} ({precision})", f"{kind} (float32)"
    float32 = reference.result("sensitivity", sensitivity.mode)
    evidence.parameters(float32)
    steps = {
        "real": float32.steps("real"),
        ours: sensitivity.steps(kind),
        exact: float32.steps(kind),
    }
    evidence.show(steps, f"max slope (MS) step of L2, {sensitivity.mode} step")
    evidence.verdict(checks.ks_below(steps, ours, exact, KS_BOUND))
