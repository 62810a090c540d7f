"""The latent-ablation scores against the planted ground truth, in closed form.

On the planted network ``out(x) = x + gain * sum_i r_i(x) f_i`` at ``hook_out`` (block 1's ramps;
no attention, no layer norm), so the L2 curve of any removal path, its blowup excess and the
latents whose removal moves a ramp off its plateau (the true contributors) follow from the
planted features, offset and ramp constants (`synthact.subjects.planted_network`).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from sae_lens import SAE

from synthact.core.seeding import generator
from synthact.method.ablation import N_STEPS, TOP_K, AblationResult, ablation_arrays, blowup_excess
from synthact.method.engine import perturbation_curves
from synthact.subjects import Constants
from synthact.subjects.activations import collect_activations
from synthact.subjects.planted import COOCCUR, RAISED, planted_subject
from synthact.subjects.planted_network import PlantedConfig

pytestmark = pytest.mark.slow

N = 16
"""Rows (prompts)."""


def _ablation(name: str, **construction) -> tuple[AblationResult, torch.Tensor, PlantedConfig, SAE]:
    """The ablation result of ``N`` planted prompts, their activations ``[N, d]``, the planted
    config and SAE."""
    subject = planted_subject(name=name, **construction)
    tokens = subject.sample_prompts(N, generator(0, "prompts"), 8)
    base = collect_activations(subject.model, tokens, subject.hook_in)
    run = functools.partial(
        perturbation_curves,
        subject.model,
        mode="relative",
        n_steps=N_STEPS,
        hook_in=subject.hook_in,
        hook_out=subject.hook_out,
    )
    arrays = ablation_arrays(
        lambda tokens, target, start, kl: run(tokens, target, base=start, kl=kl),
        subject.sae,
        tokens,
        base,
        generator(0, "ablation"),
    )
    constants = Constants(step=0.5, flat_slope=0.02, ap_threshold=20.0, source="test")
    result = AblationResult(name, constants, arrays, subject.log_sparsity.numpy())
    return result, base, PlantedConfig(**construction), subject.sae


def _output(x: torch.Tensor, features: torch.Tensor, offset: torch.Tensor, cfg: PlantedConfig):
    """The planted network's output at ``hook_out`` for inputs ``x [..., d]`` (float64)."""
    width = (cfg.ramp_end - cfg.ramp_start) * cfg.magnitude
    r = (((x - offset) @ features.T - cfg.ramp_start * cfg.magnitude) / width).clamp(0, 1)
    return x + cfg.gain * r @ features


def _closed_form(result: AblationResult, base: torch.Tensor, cfg: PlantedConfig, sae):
    """Per (row, slot): the blowup excess of its single path and the norm of the ramps' output
    change on removing the latent, both ``[n, K]`` (NaN pad), from the planted weights."""
    features, offset = sae.W_dec.detach().double(), sae.b_dec.detach().double()
    latents, values = result.latents, result.arrays["activations"]
    excess = np.full(latents.shape, np.nan)
    ramps = np.full(latents.shape, np.nan)
    t = torch.linspace(0, 1, N_STEPS, dtype=torch.float64)[:, None]
    for row, slot in zip(*np.nonzero(latents >= 0), strict=True):
        a = base[row].double()
        removal = float(values[row, slot]) * features[latents[row, slot]]
        out = _output(a - t * removal, features, offset, cfg)
        curve = (out - out[0]).norm(dim=1).numpy()
        excess[row, slot] = blowup_excess(curve)
        ramps[row, slot] = float((out[-1] - out[0] + removal).norm())
    return excess, ramps


@pytest.mark.parametrize("construction", [{}, RAISED], ids=["planted", "planted-raised"])
def test_scores_match_the_closed_form_and_find_the_true_contributors(construction):
    result, base, cfg, sae = _ablation("planted", gain=30.0, **construction)
    excess, ramps = _closed_form(result, base, cfg, sae)
    scores, active = result.scores(), result.active
    np.testing.assert_allclose(scores[active], excess[active], rtol=1e-3, atol=1e-2 * cfg.gain)
    truth = [set(result.latents[r][active[r] & (ramps[r] > cfg.gain / 2)]) for r in range(N)]
    if not construction:  # every active latent sits on its ramp's plateau
        assert all(len(t) == active[r].sum() for r, t in enumerate(truth))
    else:
        assert 0.2 < sum(map(len, truth)) / active.sum() < 0.8
    precision, recall = _at_top(result, truth, TOP_K)
    assert precision >= 0.9 and recall >= 0.9 * _at_top(result, truth, TOP_K, ideal=True)[1]
    assert _at_top(result, truth, None) >= (0.9, 0.9)  # at k = each row's number of true ones


def _at_top(
    result: AblationResult, truth: list[set[int]], k: int | None, *, ideal: bool = False
) -> tuple[float, float]:
    """Precision and recall of each row's top ``k`` latents (None: as many as it has true
    contributors) against ``truth``, averaged over the rows with some; ``ideal``: of a ranking
    that puts the true ones first."""
    found = []
    for row, true in enumerate(truth):
        if true:
            size = len(true) if k is None else k
            top = [j for j in result.top(result.latents.shape[1])[row][:size] if j >= 0]
            hits = min(len(top), len(true)) if ideal else len(true.intersection(top))
            found.append((hits / len(top), hits / len(true)))
    return tuple(np.mean(found, axis=0))


def test_without_a_readout_every_score_is_at_the_noise_floor():
    result, *_ = _ablation("planted-null", gain=0.0)
    own_change = result.curves("single")[..., -1][result.active]
    assert np.abs(result.scores()[result.active]).max() < 1e-4 * own_change.max()
    assert not result.driving().any()


def test_a_groups_members_are_found_together():
    """planted-cooccur: one group of three per token, read jointly; each row's top three latents
    are its group, each member's removal blowing up by more than a feature ramp's gain."""
    result, _, cfg, _ = _ablation("planted-cooccur", gain=30.0, **COOCCUR)
    top = result.top(TOP_K)
    whole = (top >= 0).all(axis=1)
    assert whole.mean() > 0.9
    groups = top[whole] // cfg.group_size
    assert (groups == groups[:, :1]).all()
    assert (
        np.take_along_axis(result.scores(), result.arrays["order"][:, :TOP_K].clip(0), 1)[whole]
        > cfg.gain
    ).all()
