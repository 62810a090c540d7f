"""On CUDA the experiments give the CPU's step for at least 98 % of curves, per type and metric.

The same seed draws the same prompts, targets and latent choices on both devices (every random
draw is made on a CPU generator); what differs is float rounding in the model and the Gaussian.
Skipped without CUDA: run it on a GPU box with ``pytest tests/test_cuda_agreement.py``.
"""

from __future__ import annotations

import pytest
import torch

from synthact.cache import ResultCache
from synthact.config import RunConfig
from synthact.experiments import Lab

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SIZES = {"n": 100, "n_gaussian": 4000}
SAME_STEP = 0.98


def _steps(lab: Lab) -> dict[str, object]:
    """Every step distribution of the sensitivity and plateau experiments, by name."""
    found = {}
    for mode in ("absolute", "relative"):
        result = lab.result("sensitivity", mode)
        for kind in result.types:
            for metric in ("ms", "auc", "nl"):
                found[f"{mode} {kind} {metric}"] = result.steps(kind, metric)
            if f"{kind}/kl" in result.arrays:
                found[f"{mode} {kind} kl-ms"] = result.steps(kind, "ms", "kl")
    plateau = lab.result("plateau")
    for kind in plateau.types:
        found[f"plateau {kind} ap"] = plateau.steps(kind, "ap")
    return found


@pytest.mark.parametrize("subject", ["planted", "null-gpt2"])
def test_cuda_gives_the_cpu_steps(subject, tmp_path):
    cpu_config = RunConfig(subject, device="cpu", **SIZES)
    cpu = _steps(Lab(cpu_config, ResultCache(tmp_path), progress=False))
    cuda_config = RunConfig(subject, device="cuda", **SIZES)
    cuda = _steps(Lab(cuda_config, ResultCache(tmp_path), progress=False))
    agreement = {name: float((cpu[name] == cuda[name]).mean()) for name in cpu}
    low = {name: share for name, share in agreement.items() if share < SAME_STEP}
    assert not low, f"fewer than {SAME_STEP:.0%} of curves give the CPU's step: {low}"
