"""Unit tests of synthact.method.targets on a tiny transformer and hand-built SAEs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sae_lens import StandardSAE, StandardSAEConfig
from transformer_lens import HookedTransformer, HookedTransformerConfig

from synthact.method import constructions, synthetic
from synthact.method.constructions import synthetic_targets
from synthact.method.targets import (
    Gaussian,
    check_targets,
    decode,
    encode,
    fit_gaussian,
    other_indices,
    real_pairs,
    reconstruct,
)
from synthact.subjects.activations import collect_activations


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def model() -> HookedTransformer:
    cfg = HookedTransformerConfig(
        n_layers=3,
        d_model=16,
        n_ctx=10,
        d_head=4,
        n_heads=4,
        d_mlp=32,
        d_vocab=50,
        act_fn="gelu_new",
        normalization_type="LN",
        seed=0,
    )
    return HookedTransformer(cfg).eval()


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    return torch.randint(50, (7, 10), generator=gen(1))


def make_sae(W_enc, b_enc, W_dec, b_dec, **cfg) -> StandardSAE:
    """A StandardSAE with the given weights ([d_in, d_sae], [d_sae], [d_sae, d_in], [d_in])."""
    W_enc, W_dec = torch.as_tensor(W_enc).float(), torch.as_tensor(W_dec).float()
    sae = StandardSAE(StandardSAEConfig(d_in=W_enc.shape[0], d_sae=W_enc.shape[1], **cfg))
    with torch.no_grad():
        sae.W_enc.copy_(W_enc)
        sae.b_enc.copy_(torch.as_tensor(b_enc).float())
        sae.W_dec.copy_(W_dec)
        sae.b_dec.copy_(torch.as_tensor(b_dec).float())
    return sae


D_IDENTITY = 128
"""Enough latents for the constructions' neighbourhoods (100 candidates, 10 neighbours)."""


def identity_sae() -> StandardSAE:
    """encode(x) = relu(x - b_dec), decode(z) = z + b_dec, with a nonzero b_dec."""
    b_dec = torch.linspace(-1.0, 1.0, D_IDENTITY)
    return make_sae(torch.eye(D_IDENTITY), torch.zeros(D_IDENTITY), torch.eye(D_IDENTITY), b_dec)


def sparse_acts(sae: StandardSAE, n: int, n_active: int, seed: int) -> torch.Tensor:
    """``[n, d]`` activations whose latents under ``identity_sae`` have ``n_active`` nonzeros."""
    g = gen(seed)
    latents = torch.zeros(n, D_IDENTITY)
    for row in latents:
        row[torch.randperm(D_IDENTITY, generator=g)[:n_active]] = torch.rand(n_active, generator=g)
    return latents - (latents == 0).float() + sae.b_dec.detach()


def log_sparsity_ramp() -> torch.Tensor:
    return torch.linspace(-5.0, -1.0, D_IDENTITY)


# --- collect_activations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "hook", ["blocks.1.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.2.hook_resid_mid"]
)
def test_collect_activations_equals_full_run(model, tokens, hook):
    _, cache = model.run_with_cache(tokens)
    got = collect_activations(model, tokens, hook, batch_size=3)
    assert got.dtype == torch.float32 and got.device.type == "cpu"
    torch.testing.assert_close(got, cache[hook][:, -1], rtol=0, atol=1e-6)


def test_collect_activations_runs_nothing_after_the_hook(model, tokens):
    called: list[str] = []
    watched = ["blocks.0.hook_resid_post", "blocks.1.ln1.hook_scale", "blocks.2.hook_resid_pre"]
    for name in watched:
        model.add_hook(name, lambda act, hook: called.append(hook.name))
    try:
        collect_activations(model, tokens, "blocks.1.hook_resid_pre")
    finally:
        model.reset_hooks()
    assert set(called) == {"blocks.0.hook_resid_post"}


def test_collect_activations_leaves_no_hook_behind(model, tokens):
    collect_activations(model, tokens, "blocks.1.hook_resid_pre")
    assert all(not hp.fwd_hooks for hp in model.hook_dict.values())


@pytest.mark.parametrize(
    ("hook", "toks", "batch_size"),
    [
        ("blocks.9.hook_resid_pre", None, 4),
        ("blocks.1.hook_resid_pre", torch.zeros(3, 10), 4),
        ("blocks.1.hook_resid_pre", torch.zeros(10, dtype=torch.long), 4),
        ("blocks.1.hook_resid_pre", None, 0),
    ],
)
def test_collect_activations_rejects_bad_input(model, tokens, hook, toks, batch_size):
    with pytest.raises(ValueError):
        collect_activations(model, tokens if toks is None else toks, hook, batch_size=batch_size)


def test_collect_activations_rejects_hook_without_positions(model, tokens):
    with pytest.raises(ValueError, match=r"\[b, pos, d\]"):
        collect_activations(model, tokens, "blocks.0.attn.hook_pattern")


# --- Gaussian ----------------------------------------------------------------------------------


def test_fit_gaussian_is_np_mean_and_unbiased_cov():
    acts = torch.randn(50, 4, generator=gen(0)) * torch.tensor([1.0, 2.0, 3.0, 4.0])
    g = fit_gaussian(acts)
    assert g.mean.dtype == torch.float64 and g.cov.dtype == torch.float64
    np.testing.assert_allclose(g.mean.numpy(), acts.double().numpy().mean(0), rtol=1e-12)
    np.testing.assert_allclose(g.cov.numpy(), np.cov(acts.double().numpy().T), rtol=1e-12)


def test_gaussian_recovers_a_known_distribution():
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    root = torch.tensor([[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [-1.0, 0.3, 0.7]], dtype=torch.float64)
    cov = root @ root.T
    acts = mean + torch.randn(40_000, 3, generator=gen(2), dtype=torch.float64) @ root.T
    fitted = fit_gaussian(acts.float())
    torch.testing.assert_close(fitted.mean, mean, atol=0.05, rtol=0)
    torch.testing.assert_close(fitted.cov, cov, atol=0.08, rtol=0)
    samples = fitted.sample(40_000, gen(3))
    assert samples.shape == (40_000, 3) and samples.dtype == torch.float32
    torch.testing.assert_close(samples.double().mean(0), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(samples.double().T), cov, atol=0.1, rtol=0)


def test_gaussian_sample_is_deterministic_per_generator():
    g = fit_gaussian(torch.randn(30, 5, generator=gen(0)))
    torch.testing.assert_close(g.sample(8, gen(7)), g.sample(8, gen(7)), rtol=0, atol=0)
    assert not torch.equal(g.sample(8, gen(7)), g.sample(8, gen(8)))


@pytest.mark.parametrize("case", ["fewer rows than dims", "collinear features"])
def test_gaussian_samples_a_semidefinite_covariance_within_its_range(case):
    if case == "fewer rows than dims":
        acts = torch.randn(5, 12, generator=gen(0), dtype=torch.float64)
    else:
        base = torch.randn(200, 3, generator=gen(0), dtype=torch.float64)
        acts = torch.cat([base, base[:, :1] - 2 * base[:, 1:2], 3 * base[:, 2:]], dim=1)
    g = fit_gaussian(acts)
    assert torch.linalg.eigvalsh(g.cov).min() < 1e-10 * g.cov.diagonal().max()
    samples = g.sample(20_000, gen(1)).double()
    assert torch.isfinite(samples).all()
    centred = (acts - acts.mean(0)).T  # [d, N]: its column span is the covariance's range
    range_basis, _ = torch.linalg.qr(centred)
    offsets = samples - g.mean
    outside = offsets - offsets @ range_basis @ range_basis.T
    assert outside.norm() / offsets.norm() < 1e-5
    torch.testing.assert_close(
        torch.cov(samples.T), g.cov, atol=0.05 * float(g.cov.diagonal().max()), rtol=0
    )


@pytest.mark.parametrize(
    "acts",
    [torch.randn(1, 4), torch.tensor([[0.0, 1.0], [float("nan"), 2.0]]), torch.randn(5)],
    ids=["one row", "nan", "1-d"],
)
def test_fit_gaussian_rejects_bad_input(acts):
    with pytest.raises(ValueError):
        fit_gaussian(acts)


def test_gaussian_sample_needs_a_generator_and_a_count():
    g = fit_gaussian(torch.randn(10, 2))
    with pytest.raises(TypeError, match=r"torch\.Generator"):
        g.sample(3, 0)
    with pytest.raises(ValueError, match="positive int"):
        g.sample(0, gen(0))


def test_gaussian_rejects_inconsistent_parameters():
    with pytest.raises(ValueError, match=r"cov \[d, d\]"):
        Gaussian(torch.zeros(3, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="float64"):
        Gaussian(torch.zeros(2), torch.eye(2))


# --- real pairs -------------------------------------------------------------------------------


def test_real_pairs_are_distinct_and_bases_unique():
    base, target = real_pairs(50, 40, gen(0))
    assert base.shape == target.shape == (40,)
    assert (base != target).all()
    assert len(set(base.tolist())) == 40
    assert ((base >= 0) & (base < 50) & (target >= 0) & (target < 50)).all()
    again = real_pairs(50, 40, gen(0))
    assert torch.equal(base, again[0]) and torch.equal(target, again[1])


def test_real_pairs_target_is_uniform_over_the_other_prompts():
    g = gen(3)
    counts = torch.zeros(4, 4)
    for _ in range(2000):
        base, target = real_pairs(4, 4, g)
        counts[base, target] += 1
    assert counts.diagonal().sum() == 0
    off_diagonal = counts[~torch.eye(4, dtype=torch.bool)]
    expected = 2000 / 3
    assert ((off_diagonal - expected).abs() < 5 * expected**0.5).all()


@pytest.mark.parametrize(("n_prompts", "n"), [(1, 1), (10, 11), (10, 0)])
def test_real_pairs_rejects_bad_sizes(n_prompts, n):
    with pytest.raises(ValueError):
        real_pairs(n_prompts, n, gen(0))


# --- SAE encode / decode ----------------------------------------------------------------------

W_ENC = [[1.0, 0.0, 2.0, -1.0], [0.0, 1.0, 1.0, 0.0], [1.0, -1.0, 0.0, 1.0]]  # [d_in=3, d_sae=4]
B_ENC = [0.0, -0.5, 0.1, 0.0]
W_DEC = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.5, 0.5, 0.5], [0.0, 0.0, -1.0]]
B_DEC = [0.3, -0.2, 0.1]


@pytest.mark.parametrize("apply_b_dec_to_input", [True, False])
def test_encode_decode_reconstruct_use_the_sae_formulas(apply_b_dec_to_input):
    sae = make_sae(W_ENC, B_ENC, W_DEC, B_DEC, apply_b_dec_to_input=apply_b_dec_to_input)
    x = torch.randn(9, 3, generator=gen(0))
    shift = torch.tensor(B_DEC) if apply_b_dec_to_input else torch.zeros(3)
    z = torch.relu((x - shift) @ torch.tensor(W_ENC) + torch.tensor(B_ENC))
    assert (z > 0).any() and (z == 0).any()
    x_hat = z @ torch.tensor(W_DEC) + torch.tensor(B_DEC)
    torch.testing.assert_close(encode(sae, x, batch_size=2), z)
    torch.testing.assert_close(decode(sae, z, batch_size=4), x_hat)
    torch.testing.assert_close(reconstruct(sae, x, batch_size=1000), x_hat)


def test_encode_decode_check_shapes():
    sae = make_sae(W_ENC, B_ENC, W_DEC, B_DEC)
    with pytest.raises(ValueError, match="SAE expects 3"):
        encode(sae, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="SAE expects 4"):
        decode(sae, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="2-D"):
        reconstruct(sae, torch.zeros(3))
    with pytest.raises(ValueError, match="at least one row"):
        encode(sae, torch.zeros(0, 3))


# --- synthetic targets ------------------------------------------------------------------------


EXPECTED_OPTIONS = {
    ("synthetic-random", "in-place"): {"distinct": False},
    ("synthetic-random", "distinct"): {"distinct": True},
    ("synthetic-baseline", "in-place"): {"skip_chosen": False},
    ("synthetic-baseline", "distinct"): {"skip_chosen": True},
    ("synthetic-structured", "in-place"): {},
    ("synthetic-structured", "distinct"): {},
    ("structured-no-cos", "in-place"): {"match_top_cos": False},
    ("structured-no-cos", "distinct"): {"match_top_cos": False},
}


@pytest.mark.parametrize(("kind", "latent_moves"), list(EXPECTED_OPTIONS))
def test_synthetic_targets_decode_the_construction_with_b_dec(kind, latent_moves, monkeypatch):
    sae = make_sae(W_ENC, B_ENC, W_DEC, B_DEC)
    x = torch.randn(5, 3, generator=gen(4))
    log_sparsity = torch.tensor([-1.0, -2.0, -3.0, -4.0])
    made = torch.rand(5, 4, generator=gen(5))
    seen = {}

    def construction(acts, ls, *rest, **kwargs):
        seen.update(acts=acts, ls=ls, rest=rest, kwargs=kwargs)
        return made

    monkeypatch.setattr(synthetic, "synthetic_random", construction)
    monkeypatch.setattr(synthetic, "synthetic_baseline", construction)
    monkeypatch.setattr(synthetic, "synthetic_structured", construction)
    g = gen(6)
    got = synthetic_targets(sae, x, kind, log_sparsity, g, latent_moves=latent_moves)
    torch.testing.assert_close(got, made @ torch.tensor(W_DEC) + torch.tensor(B_DEC))
    torch.testing.assert_close(seen["acts"], encode(sae, x))
    assert torch.equal(seen["ls"], log_sparsity)
    assert seen["rest"][-1] is g
    if kind in ("synthetic-structured", "structured-no-cos"):
        torch.testing.assert_close(seen["rest"][0], torch.tensor(W_DEC))
    assert seen["kwargs"] == EXPECTED_OPTIONS[kind, latent_moves]


@pytest.mark.parametrize("kind", constructions.names(paper=True))
def test_synthetic_targets_keep_the_latent_values(kind):
    """With distinct latent moves (the paper's text) every value survives."""
    sae = identity_sae()  # decode(z) - b_dec = z, so the target shows the synthetic latents
    x = sparse_acts(sae, 6, n_active=8, seed=7)
    log_sparsity = log_sparsity_ramp()
    got = synthetic_targets(sae, x, kind, log_sparsity, gen(8), latent_moves="distinct")
    assert got.shape == (6, D_IDENTITY) and got.dtype == torch.float32
    moved = got - sae.b_dec.detach()
    base = encode(sae, x)
    for row_moved, row_base in zip(moved, base, strict=True):
        values = row_moved[row_moved.abs() > 1e-6].sort().values
        torch.testing.assert_close(values, row_base[row_base > 0].sort().values)
    again = synthetic_targets(sae, x, kind, log_sparsity, gen(8), latent_moves="distinct")
    torch.testing.assert_close(got, again)


@pytest.mark.parametrize(
    ("kind", "log_sparsity", "generator", "error", "match"),
    [
        ("synthetic-bogus", torch.zeros(4), gen(0), ValueError, "synthetic-baseline"),
        ("real", torch.zeros(4), gen(0), ValueError, "unknown construction"),
        ("synthetic-random", None, gen(0), ValueError, "from_pretrained_with_cfg_and_sparsity"),
        ("synthetic-random", torch.zeros(3), gen(0), ValueError, r"shape \(3,\).*d_sae=4"),
        ("synthetic-random", torch.zeros(4), 0, TypeError, r"torch\.Generator"),
    ],
)
def test_synthetic_targets_reject_bad_input(kind, log_sparsity, generator, error, match):
    sae = make_sae(W_ENC, B_ENC, W_DEC, B_DEC)
    with pytest.raises(error, match=match):
        synthetic_targets(sae, torch.randn(2, 3), kind, log_sparsity, generator)


def test_synthetic_targets_reject_unknown_latent_moves():
    sae = make_sae(W_ENC, B_ENC, W_DEC, B_DEC)
    with pytest.raises(ValueError, match="in-place, distinct"):
        synthetic_targets(
            sae, torch.randn(2, 3), "synthetic-random", torch.zeros(4), gen(0), latent_moves="x"
        )


# --- checked targets, third indices -------------------------------------------------


def test_check_targets_names_rows_equal_to_their_start():
    start = torch.randn(6, 3, generator=gen(1))
    targets = torch.randn(6, 3, generator=gen(2))
    assert check_targets("real", start, targets) is targets
    targets[[1, 4]] = start[[1, 4]]
    with pytest.raises(
        ValueError, match=r"real: 2 of 6 targets equal their start point .*\[1, 4\]"
    ):
        check_targets("real", start, targets)


def test_check_targets_names_non_finite_rows():
    targets = torch.randn(5, 3, generator=gen(3))
    targets[2, 0] = float("nan")
    targets[3, 1] = float("inf")
    with pytest.raises(ValueError, match=r"random: 2 of 5 targets contain NaN or inf .*\[2, 3\]"):
        check_targets("random", torch.zeros(5, 3), targets)


def test_other_indices_avoid_both_excluded_and_cover_the_rest():
    base = torch.tensor([0, 3] * 3000)
    target = torch.tensor([1, 2] * 3000)
    third = other_indices(5, (base, target), gen(4))
    assert not (third == base).any() and not (third == target).any()
    counts = torch.bincount(third[base == 0], minlength=5).tolist()
    assert counts[0] == counts[1] == 0 and min(counts[2:]) > 900  # uniform over {2, 3, 4}
    counts = torch.bincount(third[base == 3], minlength=5).tolist()
    assert counts[2] == counts[3] == 0 and min(counts[0], counts[1], counts[4]) > 900


def test_other_indices_need_a_third_prompt():
    with pytest.raises(ValueError, match="at least 3"):
        other_indices(2, (torch.tensor([0]), torch.tensor([1])), gen(0))
    with pytest.raises(ValueError, match="must differ"):
        other_indices(5, (torch.tensor([2]), torch.tensor([2])), gen(0))
