"""Unit tests of the planted positive-control subject (synthact/subjects/planted_network.py, as a
subject)."""

from __future__ import annotations

import pytest
import torch

from synthact.subjects.planted import planted_subject as load_planted
from synthact.subjects.planted_network import HOOK_IN, HOOK_OUT, PlantedConfig
from synthact.subjects.prompts import PROMPT_LEN

SMALL = {"d_model": 128, "n_features": 256, "d_vocab": 2048, "d_head": 32, "n_heads": 4}
"""A small construction for the tests that do not depend on the default's statistics."""


GROUPED = {
    **SMALL,
    "n_features": 255,
    "group_size": 3,
    "features_per_token": 3,
    "group_gain": 400.0,
}
"""A small construction with groups of three features, read jointly as in ``planted-cooccur``."""


@pytest.fixture(scope="module")
def planted():
    return load_planted()


@pytest.fixture(scope="module")
def small():
    return load_planted(**SMALL)


@pytest.fixture(scope="module")
def small_null():
    return load_planted(gain=0.0, **SMALL)


def resid_at(subject, tokens: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``tokens`` with hook_in's last position replaced by ``x`` [B, d]; (hook_in, hook_out)."""
    seen = {}

    def replace(act, hook):
        act[:, -1] = x
        seen["in"] = act[:, -1].clone()
        return act

    def save(act, hook):
        seen["out"] = act[:, -1].clone()

    with torch.no_grad():
        subject.model.run_with_hooks(
            tokens, fwd_hooks=[(subject.hook_in, replace), (subject.hook_out, save)]
        )
    return seen["in"], seen["out"]


def last_activations(subject, n: int, seed: int) -> torch.Tensor:
    """``[n, d_model]`` activations at hook_in, last position, of the subject's own prompts."""
    tokens = subject.sample_prompts(n, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return subject.model(tokens, stop_at_layer=1)[:, -1]


def test_same_seed_gives_identical_weights(small):
    again = load_planted(**SMALL)
    for (name, a), (_, b) in zip(
        small.model.state_dict().items(), again.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    for (name, a), (_, b) in zip(
        small.sae.state_dict().items(), again.sae.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert torch.equal(small.log_sparsity, again.log_sparsity)


def test_other_seed_gives_other_weights(small):
    other = load_planted(seed=1, **SMALL)
    assert not torch.equal(small.sae.W_dec, other.sae.W_dec)
    assert not torch.equal(small.model.embed.W_E, other.model.embed.W_E)


@pytest.mark.slow
def test_subject_contract(planted):
    cfg = PlantedConfig()
    model, sae = planted.model, planted.sae
    assert planted.name == "planted"
    assert (planted.hook_in, planted.hook_out) == (HOOK_IN, HOOK_OUT)
    assert {HOOK_IN, HOOK_OUT} <= set(model.hook_dict)
    assert model.tokenizer is None
    assert model.cfg.d_model == sae.cfg.d_in == cfg.d_model
    assert sae.cfg.d_sae == cfg.n_features
    assert sae.cfg.metadata.hook_name == HOOK_IN
    assert sae.cfg.architecture() == "jumprelu"
    assert model.embed.W_E.dtype == sae.W_dec.dtype == torch.float32
    assert planted.log_sparsity.shape == (cfg.n_features,)
    assert torch.isfinite(planted.log_sparsity).all()
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(cfg.n_features))


def test_prompts_of_any_length_up_to_the_context(small):
    tokens = small.sample_prompts(4, torch.Generator().manual_seed(0), 37)
    assert tokens.shape == (4, 37)
    assert small.model.cfg.n_ctx == PlantedConfig().n_ctx >= 37
    with torch.no_grad():
        small.model(tokens, stop_at_layer=1)


def test_prompts_are_token_ids_with_distinct_last_tokens(small):
    vocab = SMALL["d_vocab"]
    tokens = small.sample_prompts(vocab + 5, torch.Generator().manual_seed(3))
    assert tokens.shape == (vocab + 5, PROMPT_LEN) and tokens.dtype == torch.int64
    assert tokens.min() >= 0 and tokens.max() < vocab
    assert torch.equal(tokens[:vocab, -1].sort().values, torch.arange(vocab))
    assert torch.equal(tokens, small.sample_prompts(vocab + 5, torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="n must be"):
        small.sample_prompts(-1, torch.Generator())


def test_dtype_and_null_name():
    subject = load_planted(dtype=torch.float64, gain=0.0, **SMALL)
    assert subject.name == "planted-null"
    assert subject.model.embed.W_E.dtype == subject.sae.W_dec.dtype == torch.float64


@pytest.mark.slow
def test_sae_is_accurate_and_sparse_on_own_activations(planted):
    acts = last_activations(planted, 2000, seed=7)
    with torch.no_grad():
        latents = planted.sae.encode(acts)
        recon = planted.sae.decode(latents)
    fvu = ((acts - recon) ** 2).sum() / ((acts - acts.mean(0)) ** 2).sum()
    l0 = (latents > 0).sum(dim=1).double().mean()
    assert fvu < 0.02, f"FVU {fvu:.4f}"
    assert 2.9 < l0 < 3.4, f"L0 {l0:.2f}"


def test_log_sparsity_is_the_firing_frequency_on_own_prompts(small):
    """d_vocab prompts cover every last token once: their firing frequency is log_sparsity's."""
    acts = last_activations(small, SMALL["d_vocab"], seed=11)
    with torch.no_grad():
        measured = (small.sae.encode(acts) > 0).double().mean(dim=0)
    expected = 10 ** small.log_sparsity.double() - 1e-10
    assert (measured - expected).abs().max() <= 1.5 / SMALL["d_vocab"]  # float32 vs float64
    assert (small.log_sparsity > -10).any()


def test_last_position_depends_only_on_last_token(small):
    tokens = small.sample_prompts(32, torch.Generator().manual_seed(5))
    with torch.no_grad():
        full = small.model(tokens, stop_at_layer=1)[:, -1]
        alone = small.model(tokens[:, -1:], stop_at_layer=1)[:, -1]
    assert torch.equal(full, alone)
    assert torch.allclose(full, small.model.embed.W_E[tokens[:, -1]] + small.sae.b_dec, atol=1e-5)


def test_gain_zero_is_an_exact_null(small_null):
    """hook_out == hook_in at the perturbed position, so L2 curves only see the distance moved."""
    tokens = small_null.sample_prompts(16, torch.Generator().manual_seed(2))
    x = 50.0 * torch.randn(16, SMALL["d_model"], generator=torch.Generator().manual_seed(4))
    resid_in, resid_out = resid_at(small_null, tokens, x)
    assert torch.equal(resid_in, resid_out)


def test_unembedding_predicts_the_active_features(small):
    tokens = small.sample_prompts(64, torch.Generator().manual_seed(8))
    with torch.no_grad():
        logits, cache = small.model.run_with_cache(tokens, names_filter=HOOK_IN)
        active = small.sae.encode(cache[HOOK_IN][:, -1]) > 0
    assert logits.shape == (64, PROMPT_LEN, SMALL["n_features"])
    predicted = logits[:, -1].argmax(dim=-1)
    assert active[torch.arange(64), predicted].all()


def test_gain_is_not_a_null(small):
    tokens = small.sample_prompts(16, torch.Generator().manual_seed(2))
    with torch.no_grad():
        acts = small.model(tokens, stop_at_layer=1)[:, -1]
    resid_in, resid_out = resid_at(small, tokens, acts)
    assert (resid_out - resid_in).norm(dim=1).min() > 30.0  # each active feature adds ~gain


def test_readout_ramp_on_a_single_feature(small):
    """Along b + c·f_i the block adds gain·clamp((c - start·m) / ((end - start)·m), 0, 1)·f_i."""
    cfg = PlantedConfig(**SMALL)
    feature = 5
    f, b = small.sae.W_dec[feature].detach(), small.sae.b_dec.detach()
    c = torch.linspace(0.0, 0.6 * cfg.magnitude, 49)
    others = torch.cat([small.sae.W_dec[:feature], small.sae.W_dec[feature + 1 :]]).detach()
    assert (others @ f).abs().max() < 0.5  # no other ramp starts below c = 0.6 m
    tokens = small.sample_prompts(len(c), torch.Generator().manual_seed(0))
    resid_in, resid_out = resid_at(small, tokens, b + c[:, None] * f)
    added = resid_out - resid_in
    ramp = (c - cfg.ramp_start * cfg.magnitude) / ((cfg.ramp_end - cfg.ramp_start) * cfg.magnitude)
    expected = cfg.gain * ramp.clamp(0.0, 1.0)[:, None] * f
    assert torch.allclose(added, expected, atol=1e-3)


def group_ramps(subject, x: torch.Tensor) -> torch.Tensor:
    """``[B, n_groups]`` group ramp values in [0, 1] at hook_in = ``x`` ``[B, d]`` (MLP neurons
    after the ``2 * n_features`` feature-ramp ones, in pairs: ``relu(a) - relu(a - 1)``)."""
    seen = {}
    n_feature_neurons = 2 * subject.sae.cfg.d_sae

    def replace(act, hook):
        act[:, -1] = x

    def save(act, hook):
        seen["post"] = act[:, -1, n_feature_neurons:]

    tokens = subject.sample_prompts(len(x), torch.Generator().manual_seed(0))
    hooks = [(subject.hook_in, replace), ("blocks.1.mlp.hook_post", save)]
    with torch.no_grad():
        subject.model.run_with_hooks(tokens, fwd_hooks=hooks)
    return seen["post"][:, 0::2] - seen["post"][:, 1::2]


def test_group_readout_saturates_on_a_whole_group_only():
    """Group 0's ramp, clamp((u - 0.5m) / 2m, 0, 1) of its summed projection u: 1 on the whole group
    (u ~ 3m) and still 1 with it 10 % weaker (a plateau); about 1/4 on one member (u ~ m) and 1/20
    less with it 10 % weaker (a slope: 20 of output at gain 400); 0 on none."""
    subject = load_planted(**GROUPED)
    m = PlantedConfig(**GROUPED).magnitude
    f, b = subject.sae.W_dec[:3].detach(), subject.sae.b_dec.detach()  # group 0's features
    reads = f.sum(dim=0)
    assert reads @ reads > 2.8  # 0.9 * m * |reads|^2 > 2.5m: the weaker whole group saturates
    x = b + m * torch.stack([reads, 0.9 * reads, f[0], 0.9 * f[0], torch.zeros_like(reads)])
    ramps = group_ramps(subject, x)[:, 0]
    assert ramps[[0, 1, 4]].tolist() == pytest.approx([1.0, 1.0, 0.0], abs=1e-4)
    one_member = ((x[2:4] - b) @ reads - 0.5 * m) / (2 * m)
    assert torch.allclose(ramps[2:4], one_member, atol=1e-4)
    assert ramps[2] == pytest.approx(0.25, abs=0.1)
    assert ramps[2] - ramps[3] == pytest.approx(0.05, abs=0.02)


def test_cooccur_null_keeps_the_groups_and_drops_only_the_group_readout():
    """Group gain 0 (``planted-cooccur-null``): the same embeddings, SAE and firing as the grouped
    construction; block 1's output differs from the grouped one by the group ramps only: about the
    saturated ramp (``400 · |mean feature|``, within crosstalk of other groups) on a whole group,
    nothing on none."""
    grouped, null = load_planted(**GROUPED), load_planted(**(GROUPED | {"group_gain": 0.0}))
    assert torch.equal(grouped.model.embed.W_E, null.model.embed.W_E)
    assert torch.equal(grouped.sae.W_dec, null.sae.W_dec)
    assert torch.equal(grouped.log_sparsity, null.log_sparsity)
    m = PlantedConfig(**GROUPED).magnitude
    f, b = null.sae.W_dec[:3].detach(), null.sae.b_dec.detach()  # group 0's features
    x = b + m * torch.stack([f.sum(dim=0), torch.zeros_like(b)])  # the whole group; none
    tokens = null.sample_prompts(len(x), torch.Generator().manual_seed(0))
    (_, grouped_out), (_, null_out) = resid_at(grouped, tokens, x), resid_at(null, tokens, x)
    group_ramp = (grouped_out - null_out).norm(dim=1)
    saturated = 400.0 * f.mean(dim=0).norm().item()
    assert group_ramp.tolist() == pytest.approx([saturated, 0.0], rel=0.05, abs=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"ramp_start": 0.5, "ramp_end": 0.4}, ValueError),
        ({"gain": -1.0}, ValueError),
        ({"features_per_token": 0}, ValueError),
        ({"d_head": 60}, ValueError),
        ({"no_such_field": 1}, TypeError),
    ],
)
def test_bad_construction_is_rejected_early(kwargs, error):
    with pytest.raises(error):
        load_planted(**kwargs)
