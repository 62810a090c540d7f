"""Unit tests of synthact.method.latents on a hand-built SAE whose statistics are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sae_lens import StandardSAE, StandardSAEConfig

from synthact.method.latents import SHARES, latent_statistics, scale_facts

R = 1 / math.sqrt(2)
B_DEC = torch.tensor([0.5, -0.5, 1.0, 0.0, 0.25, -1.0])
# Decoder rows: cos(0,1) = R, cos(2,3) = R, cos(0,5) = -1, every other pair 0; row 2 has norm 2.
W_DEC = torch.tensor(
    [
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [R, R, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 2.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, R, R, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        [-1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    ]
)
# Latents of three activations (encode(x) = relu(x - b_dec) with W_enc = I, b_enc = 0).
LATENTS = torch.tensor(
    [
        [3.0, 1.0, 0.0, 2.0, 0.0, 0.0],  # ranks: latent 0, 3, 1
        [1.0, 0.0, 0.0, 0.0, 0.0, 5.0],  # ranks: latent 5, 0
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # nothing active
    ]
)


@pytest.fixture(scope="module")
def sae() -> StandardSAE:
    sae = StandardSAE(StandardSAEConfig(d_in=6, d_sae=6))
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(6))
        sae.b_enc.zero_()
        sae.W_dec.copy_(W_DEC)
        sae.b_dec.copy_(B_DEC)
    return sae


@pytest.fixture(scope="module")
def acts() -> torch.Tensor:
    """Inputs whose latents are LATENTS: x - b_dec = latents where active, -1 elsewhere."""
    return torch.where(LATENTS > 0, LATENTS, -1.0) + B_DEC


def test_counts_and_cosines(sae, acts):
    stats = latent_statistics(sae, acts, n_ranks=4)
    np.testing.assert_array_equal(stats.l0, [3, 2, 0])
    np.testing.assert_allclose(stats.pairwise_cos, [0.0, R, 0.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(stats.top_cos, [0.0, R, -1.0], atol=1e-6)
    assert stats.kept.all() and stats.share == "l1"


@pytest.mark.parametrize(
    ("share", "first", "second"),
    [
        ("l1", [3 / 6, 2 / 6, 1 / 6, 0.0], [5 / 6, 1 / 6, 0.0, 0.0]),
        ("l2sq", [9 / 14, 4 / 14, 1 / 14, 0.0], [25 / 26, 1 / 26, 0.0, 0.0]),
        ("l2", np.array([3, 2, 1, 0]) / math.sqrt(14), np.array([5, 1, 0, 0]) / math.sqrt(26)),
    ],
)
def test_norm_share_by_rank(sae, acts, share, first, second):
    stats = latent_statistics(sae, acts, share=share, n_ranks=4)
    np.testing.assert_allclose(stats.norm_share, [first, second, [0.0] * 4], atol=1e-6)


def test_reconstruction_error_and_filter(sae, acts):
    x_hat = LATENTS @ W_DEC + B_DEC
    expected = ((acts - x_hat).norm(dim=1) / acts.norm(dim=1)).numpy()
    everything = latent_statistics(sae, acts)
    np.testing.assert_allclose(everything.rel_error, expected, rtol=1e-6)
    cutoff = float(np.median(expected))
    filtered = latent_statistics(sae, acts, max_rel_error=cutoff, n_ranks=4)
    np.testing.assert_array_equal(filtered.kept, expected <= cutoff)
    np.testing.assert_array_equal(filtered.l0, np.array([3, 2, 0])[expected <= cutoff])
    assert len(filtered.norm_share) == int((expected <= cutoff).sum())


@pytest.mark.parametrize("cutoff", [None, 0.0], ids=["no active latent", "all filtered out"])
def test_nothing_to_count(sae, acts, cutoff):
    stats = latent_statistics(sae, acts[2:], max_rel_error=cutoff, n_ranks=3)
    assert len(stats.rel_error) == 1 and stats.kept.tolist() == [cutoff is None]
    assert stats.norm_share.shape == (int(stats.kept.sum()), 3) and not stats.norm_share.any()
    assert stats.pairwise_cos.size == 0 and stats.top_cos.size == 0


def test_batching_does_not_change_the_statistics(sae):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g) + B_DEC
    one = latent_statistics(sae, x, batch_size=1, n_ranks=3)
    all_at_once = latent_statistics(sae, x, batch_size=256, n_ranks=3)
    for name in ("rel_error", "kept", "l0", "norm_share", "pairwise_cos", "top_cos"):
        np.testing.assert_allclose(getattr(one, name), getattr(all_at_once, name), atol=1e-6)


@pytest.mark.parametrize("share", ["l1", "l2sq"])
def test_shares_that_add_up_sum_to_one(sae, share):
    x = torch.randn(30, 6, generator=torch.Generator().manual_seed(1)) + B_DEC
    stats = latent_statistics(sae, x, share=share, n_ranks=6)
    active = stats.l0 > 0
    assert active.sum() > 20
    np.testing.assert_allclose(stats.norm_share[active].sum(axis=1), 1.0, rtol=1e-5)


def test_scale_facts(sae):
    x = torch.tensor([[3.0, 4.0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1.0], [1.0, 1.0, 1.0, 1.0, 0, 0]])
    base, target = torch.tensor([0, 2]), torch.tensor([1, 0])
    facts = scale_facts(sae, x, base, target)
    np.testing.assert_allclose(facts.act_norm, [5.0, 1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(facts.distance, [(x[1] - x[0]).norm(), (x[0] - x[2]).norm()])
    a, t = x[base] - B_DEC, x[target] - B_DEC
    cos = (a * t).sum(1) / (a.norm(dim=1) * t.norm(dim=1))
    np.testing.assert_allclose(facts.cos_b_dec, cos, rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"share": "l3"}, "l1, l2sq, l2"),
        ({"n_ranks": 0}, "n_ranks"),
        ({"max_rel_error": -0.1}, "max_rel_error"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_latent_statistics_rejects_bad_options(sae, acts, kwargs, match):
    with pytest.raises(ValueError, match=match):
        latent_statistics(sae, acts, **kwargs)


@pytest.mark.parametrize(
    "bad",
    [torch.zeros(3, 5), torch.full((2, 6), float("nan")), torch.zeros(6), torch.zeros(0, 6)],
    ids=["wrong width", "nan", "1-d", "empty"],
)
def test_bad_activations_are_rejected(sae, bad):
    with pytest.raises(ValueError):
        latent_statistics(sae, bad)
    with pytest.raises(ValueError):
        scale_facts(sae, bad, torch.tensor([0]), torch.tensor([0]))


def test_share_names():
    assert set(SHARES) == {"l1", "l2sq", "l2"}
