"""C13: the scale facts of the setup: activation norm, base-target distance, cosine w.r.t. b_dec."""

import allure
import pytest

from synthact.judge import checks
from synthact.judge.hypotheses import Hypothesis
from synthact.outputs import report

TOLERANCE = 0.10
"""Relative tolerance on the norm and the distance, given as "about 56" and "about 40"."""
COS_TOLERANCE = 0.05


def _mean(x):
    return x.mean(axis=-1)


@pytest.mark.claim("C13")
def test_c13_scale_facts(latent_statistics, lab, evidence):
    """Activation norm about 56, base-target distance about 40 (step 80), mean cosine between real
    activations w.r.t. the SAE decoder bias about 0.42 (sections 4.1-4.3).

    Asserted: each bootstrap interval of the mean lies within 10 % of the paper's value (0.05 for
    the cosine). The norm and the distance are GPT-2's numbers times the subject's scale factor,
    the one its step constants use (1 on gpt2-small, which declares the paper's; the norm rule
    elsewhere: mean activation norm / 56, to one significant figure); the cosine has no scale.
    """
    facts = latent_statistics.scale_facts
    paper = report.paper_numbers()["scale"]
    factor = lab.constants.factor
    allure.attach(
        report.latent_markdown(latent_statistics),
        "scale facts: ours beside the paper",
        allure.attachment_type.TEXT,
    )
    allure.attach(
        f"{lab.constants.source}: norm and distance scaled by {factor:g}",
        "scale factor",
        allure.attachment_type.TEXT,
    )
    found = []
    for name, values, number in (
        ("activation norm", facts.act_norm, paper["activation_norm"]),
        ("base-target distance", facts.distance, paper["base_target_distance"]),
    ):
        target = factor * number
        low, high = (1 - TOLERANCE) * target, (1 + TOLERANCE) * target
        found += checks.within(f"mean {name} ({number} × {factor:g})", _mean, values, low, high)
    cos = paper["mean_cosine_wrt_b_dec"]
    found += checks.within(
        "mean cosine w.r.t. b_dec", _mean, facts.cos_b_dec, cos - COS_TOLERANCE, cos + COS_TOLERANCE
    )
    evidence.verdict(Hypothesis("C13", tuple(found)))
