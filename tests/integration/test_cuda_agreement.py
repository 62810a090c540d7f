"""On CUDA the experiments give the CPU's step for at least 98 % of curves, per type and metric,
and pass the committed (CPU) regression snapshots.

The same seed draws the same prompts, targets and latent choices on both devices (every random
draw is made on a CPU generator); what differs is float rounding in the model and the Gaussian.
Skipped without CUDA: run it on a GPU box with ``pytest tests/integration/test_cuda_agreement.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from synthact.core.cache import ResultCache
from synthact.method.config import RunConfig
from synthact.method.experiments import Lab
from synthact.outputs import platforms, snapshots

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

SIZES = {"n": 100, "n_gaussian": 4000}
SNAPSHOTS = Path(__file__).resolve().parents[2] / "claims" / "test_snapshots"
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


def snapshot_failures(subject: str, device: str, cache: ResultCache) -> list[str]:
    """Every committed snapshot of ``subject`` (the README's run) against this device's run,
    as `claims/test_snapshots.py` compares them: ties may move, other rows within tolerance."""
    config = RunConfig(subject, device=device, **SIZES)
    lab = Lab(config, cache, progress=False)
    failures = []
    for path in sorted(SNAPSHOTS.glob(f"{subject}-*.yml")):
        old = yaml.safe_load(path.read_text())
        experiment, mode = path.stem.removeprefix(f"{subject}-").rsplit("-", 1)
        result = lab.result(experiment, mode)
        reference = result if "real" in result.types else lab.result("sensitivity", mode)
        kinds = [k for k in old if k not in snapshots.HEADER]
        new = snapshots.take(config, result, reference, kinds, platforms.describe(device))
        failures += [f"{path.stem}: {m}" for m in snapshots.compare(old, new) if not m.ok]
    return failures


@pytest.mark.parametrize("subject", ["planted", "planted-null", "trained-tiny"])
def test_cuda_passes_the_cpu_snapshots(subject, tmp_path):
    failures = snapshot_failures(subject, "cuda", ResultCache(tmp_path))
    assert not failures, "\n".join(failures)
