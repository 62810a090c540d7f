"""The test of C16: its statement and cases are `synthact.judge.claims`' record of it."""

import allure
import pytest

from synthact.judge.claims import claim
from synthact.outputs import report

C16 = claim("C16")


@pytest.mark.claim(C16.id)
def test_c16_few_latents_carry_blowups(ablation, evidence):
    """Removing a row's top 3 latents (ranked by the blowup of removing each alone) blows the
    output up by more than removing 3 of its active latents drawn at random, by
    `hypotheses.C16_MARGIN` of the output change of removing its whole SAE code, on average over
    the rows (paired by row).

    Not in the paper: section 7 names latent-ablation perturbations as future work. The report
    lists the latents that most often drive a blowup (firing frequency, mean activation,
    Neuronpedia page where the SAE has one) and plots contribution against firing frequency. On a
    control without a mechanism the top latents' share, which bounds the difference, must be
    shown below the margin.
    """
    allure.attach(
        report.png(report.ablation_figure(ablation)),
        "contribution against firing frequency",
        allure.attachment_type.PNG,
    )
    allure.attach(
        report.ablation_markdown(ablation),
        "latents driving blowups",
        allure.attachment_type.TEXT,
    )
    found = C16.case("C16").hypothesis(ablation.carried("top"), ablation.carried("random"))
    evidence.verdict(found)
