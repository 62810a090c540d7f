"""The test of C13: its statement and cases are `synthact.judge.claims`' record of it."""

import allure
import pytest

from synthact.judge.claims import claim
from synthact.outputs import report

C13 = claim("C13")


@pytest.mark.claim(C13.id)
def test_c13_scale_facts(latent_statistics, lab, evidence):
    """Activation norm about 56, base-target distance about 40 (step 80), mean cosine between real
    activations w.r.t. the SAE decoder bias about 0.42 (sections 4.1-4.3).

    Asserted: each bootstrap interval of the mean lies within 10 % of the paper's value (0.05 for
    the cosine). The norm and the distance are GPT-2's numbers times the subject's scale factor,
    the one its step constants use (1 on gpt2-small, which declares the paper's; the norm rule
    elsewhere: mean activation norm / 56, to one significant figure); the cosine has no scale.
    """
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
    evidence.verdict(C13.case("C13").hypothesis(latent_statistics.scale_facts, factor))
