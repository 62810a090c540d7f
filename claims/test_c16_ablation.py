"""C16: a blowup is carried by few latents: removing a real activation's top SAE latents blows its
output up (section 7's latent ablations; the project's claim, not the paper's)."""

import allure
import pytest

from synthact.judge import hypotheses
from synthact.outputs import report


@pytest.mark.claim("C16")
def test_c16_few_latents_carry_blowups(ablation, evidence):
    """Removing a row's top 3 latents (ranked by the blowup of removing each alone) blows the
    output up by more than `hypotheses.C16_MARGIN` of the output change of removing its whole SAE
    code, on average.

    Not in the paper: section 7 names latent-ablation perturbations as future work. The report
    lists the latents that most often drive a blowup (firing frequency, mean activation,
    Neuronpedia page where the SAE has one) and plots contribution against firing frequency. On a
    control without a mechanism the blowup share must be shown below the margin.
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
    evidence.verdict(
        hypotheses.c16_few_latents_carry_blowups(
            ablation.carried("top"), ablation.carried("random")
        )
    )
