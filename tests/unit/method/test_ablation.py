"""Latent-ablation scoring on hand-built inputs: the blowup excess, and the paths' arrays with a
toy response in place of the engine."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from sae_lens import JumpReLUSAE, JumpReLUSAEConfig

from synthact.method import ablation
from synthact.method.ablation import (
    PROGRESSIVE,
    TOP_K,
    AblationResult,
    ablation_arrays,
    blowup_excess,
)
from synthact.method.engine import Curves
from synthact.outputs import report
from synthact.subjects import Constants

STEPS = 21


def test_a_linear_response_scores_zero_and_a_jump_scores_its_height():
    steps = np.arange(STEPS, dtype=float)
    jump = 0.5 * steps + 7.0 * (steps >= 12)
    assert blowup_excess(np.stack([2.0 * steps, jump])) == pytest.approx([0.0, 7.0])


def test_an_early_jump_and_a_saturating_curve_score_what_they_add_to_the_flattest_slope():
    steps = np.arange(STEPS, dtype=float)
    early = steps + 5.0 * (steps >= 1)
    saturating = np.minimum(steps, 10.0)  # flattest slope 0: all of its change is excess
    assert blowup_excess(np.stack([early, saturating])) == pytest.approx([5.0, 10.0])


def test_nan_curves_score_nan_and_one_point_is_an_error():
    assert np.isnan(blowup_excess(np.full((2, STEPS), np.nan))).all()
    with pytest.raises(ValueError, match="at least 2 points"):
        blowup_excess(np.zeros((3, 1)))


def _sae(d: int = 6) -> JumpReLUSAE:
    """Identity SAE: latent i reads and writes coordinate i, firing above 0.5."""
    sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=d, d_sae=d, dtype="float32"))
    with torch.no_grad():
        sae.W_dec.copy_(torch.eye(d))
        sae.W_enc.copy_(torch.eye(d))
        sae.b_dec.zero_()
        sae.b_enc.zero_()
        sae.threshold.fill_(0.5)
    return sae.eval()


def _toy_run(gains: torch.Tensor):
    """The engine's curves for ``out(x) = x + gains * [x > 1]`` (elementwise) along relative
    paths: removing coordinate i jumps the output by ``gains[i]`` along it (when it crosses 1)."""

    def run(tokens, target, base, kl):
        t = torch.linspace(0, 1, STEPS)[None, :, None]
        x = base[:, None] + t * (target - base)[:, None]
        out = x + gains * (x > 1)
        l2 = (out - out[:, :1]).norm(dim=-1)
        return Curves(l2=l2, kl=l2**2 if kl else None, distance=(target - base).norm(dim=-1))

    return run


def _result(base: torch.Tensor, gains: torch.Tensor) -> AblationResult:
    tokens = torch.zeros(len(base), 2, dtype=torch.long)
    arrays = ablation_arrays(
        _toy_run(gains), _sae(base.shape[1]), tokens, base, torch.Generator().manual_seed(0)
    )
    constants = Constants(step=0.5, flat_slope=0.02, ap_threshold=20.0, source="test")
    return AblationResult("toy", constants, arrays, np.full(base.shape[1], -1.0))


def test_scores_rank_the_latents_whose_removal_jumps_the_output():
    """Row 0: latents 0, 1, 2, 3 active, only 2 and 0 jump (gains 9 and 4); row 1: latent 5."""
    base = torch.tensor([[2.0, 3.0, 4.0, 1.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 2.0]])
    gains = torch.tensor([4.0, 0.0, 9.0, 0.0, 0.0, 0.0])
    result = _result(base, gains)
    assert result.latents.tolist() == [[2, 1, 0, 3], [5, -1, -1, -1]]
    scores = result.scores()
    assert scores[0] == pytest.approx([9.0, 0.0, 4.0, 0.0], abs=1e-4)
    assert np.isnan(scores[1, 1:]).all() and scores[1, 0] == pytest.approx(0.0, abs=1e-4)
    assert result.top(2).tolist() == [[2, 0], [5, -1]]
    assert result.driving().tolist() == [[True, False, True, False], [False] * 4]
    assert result.arrays["single/kl"].shape == result.arrays["single/l2"].shape


def test_progressive_whole_and_random_paths_remove_what_they_say():
    base = torch.tensor([[2.0, 3.0, 4.0, 1.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 2.0]])
    gains = torch.tensor([4.0, 0.0, 9.0, 0.0, 0.0, 0.0])
    result = _result(base, gains)
    progressive = result.curves("progressive")[..., -1]
    assert progressive.shape == (2, min(4, PROGRESSIVE))
    # removing coordinates S moves the output by base_i + gains_i along each of them
    expected = np.sqrt(np.cumsum(np.array([4.0 + 9, 2 + 4, 3, 1.5]) ** 2))
    assert progressive[0] == pytest.approx(expected, rel=1e-5)
    assert progressive[1, 0] == pytest.approx(2.0) and np.isnan(progressive[1, 1:]).all()
    assert result.curves("whole")[0, -1] == pytest.approx(expected[-1], rel=1e-5)
    slots = result.arrays["random/slots"]
    assert sorted(slots[0]) == sorted(set(slots[0])) and (slots[0] >= 0).sum() == TOP_K
    assert slots[1].tolist() == [0, -1, -1]
    top = result.carried("top")  # row 0: the top 3 of its 4 latents; row 1: its one latent
    carried_by_top_3 = blowup_excess(result.curves("progressive")[0, TOP_K - 1])
    assert top[0] == pytest.approx(carried_by_top_3 / expected[-1], rel=1e-5) and top[0] > 0.5
    assert top[1] == pytest.approx(0.0, abs=1e-5)


def test_a_row_ablates_its_largest_latents_one_at_a_time_and_its_whole_code_at_once(monkeypatch):
    monkeypatch.setattr(ablation, "MAX_LATENTS", 2)
    base = torch.tensor([[2.0, 3.0, 4.0, 1.5, 0.0, 0.0]])
    result = _result(base, torch.zeros(6))
    assert result.latents.tolist() == [[2, 1]]
    assert result.curves("whole")[0, -1] == pytest.approx(float(base.norm()), rel=1e-5)


def test_the_report_lists_driving_latents_with_their_neuronpedia_pages():
    base = torch.tensor([[2.0, 3.0, 4.0, 1.5, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0, 0.0, 2.0]])
    result = _result(base, torch.tensor([4.0, 0.0, 9.0, 0.0, 0.0, 0.0]))
    result = dataclasses.replace(result, neuronpedia="gpt2-small/6-res-jb")
    rows = report.driving_latents(result)
    assert [(row["latent"], row["rows driven"], row["rows active"]) for row in rows] == [
        (2, 2, 2),
        (0, 1, 1),
    ]
    assert rows[0]["mean activation"] == pytest.approx(3.5)
    assert rows[0]["link"] == (
        "[gpt2-small/6-res-jb/2](https://www.neuronpedia.org/gpt2-small/6-res-jb/2)"
    )
    assert "| 2 | 2 | 2 |" in report.ablation_markdown(result)
    assert report.ablation_figure(result).axes[0].get_title() == "Latent ablations: toy (n = 2)"


def test_a_null_control_links_no_neuronpedia_page_of_the_release_it_stands_in_for():
    base = torch.tensor([[2.0, 3.0, 4.0, 1.5, 0.0, 0.0]])
    result = _result(base, torch.tensor([4.0, 0.0, 9.0, 0.0, 0.0, 0.0]))
    result = dataclasses.replace(result, neuronpedia="gpt2-small/6-res-jb", random_weights=True)
    rows = report.driving_latents(result)
    assert sorted(row["latent"] for row in rows) == [0, 2]
    assert all(row["neuronpedia"] == report.NULL_CONTROL and "link" not in row for row in rows)
    text = report.ablation_markdown(result)
    assert "null control" in text and "neuronpedia.org" not in text
