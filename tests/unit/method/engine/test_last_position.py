"""Each piece of the last-position block runner against TransformerLens's own forward pass."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer

from synthact.method.engine import last_position
from synthact.method.engine.last_position import (
    LastPositionBlock,
    attention_scores,
    kv_groups,
    kv_weights,
    mlp_function,
    qk_norms,
    rotate,
    visible_keys,
    window_start,
)
from tests.families import ARCHITECTURES as FAMILIES
from tests.families import (
    GEMMA2_TIGHT,
    GEMMA3_TIGHT,
    family_config,
    one_thread,  # noqa: F401 (an autouse fixture)
    random_model,
)

VARIANTS = {
    **{family: (family, {}) for family in FAMILIES},
    "gemma2-tight": ("gemma2", GEMMA2_TIGHT),
    "gemma3-tight": ("gemma3", GEMMA3_TIGHT),
    "llama-ungrouped": ("llama", dict(ungroup_grouped_query_attention=True)),
}
N_PROMPTS, PROMPT_LEN = 3, 8
TOL = 1e-5


@pytest.fixture(scope="module", params=list(VARIANTS))
def run(request) -> tuple[HookedTransformer, torch.Tensor, dict]:
    """(model, tokens [3, 8], TransformerLens's activation cache of its forward pass)."""
    family, overrides = VARIANTS[request.param]
    model = random_model(family_config(family, **overrides))
    tokens = torch.randint(0, model.cfg.d_vocab, (N_PROMPTS, PROMPT_LEN))
    with torch.inference_mode():
        _, cache = model.run_with_cache(tokens)
    return model, tokens, cache


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and (a - b).abs().max().item() <= TOL


def test_qk_norms_are_transformer_lens_query_key_norms(run):
    """Normalised, then rotated by TransformerLens, hook_q and hook_k are hook_rot_q and
    hook_rot_k (hook_q and hook_k themselves without query/key norms)."""
    model, _, cache = run
    with torch.inference_mode():
        for layer, block in enumerate(model.blocks):
            name = f"blocks.{layer}.attn"
            q_norm, k_norm = qk_norms(block.attn)
            q, k = cache[f"{name}.hook_q"], cache[f"{name}.hook_k"]
            if not model.cfg.use_qk_norm:
                assert q_norm(q) is q and k_norm(k) is k
                continue
            assert close(block.attn.apply_rotary(q_norm(q), 0), cache[f"{name}.hook_rot_q"])
            assert close(block.attn.apply_rotary(k_norm(k), 0), cache[f"{name}.hook_rot_k"])


def test_rotate_is_transformer_lens_rotary_at_the_last_position(run):
    model, _, cache = run
    with torch.inference_mode():
        for layer, block in enumerate(model.blocks):
            name = f"blocks.{layer}.attn"
            q_norm, k_norm = qk_norms(block.attn)
            q, k = q_norm(cache[f"{name}.hook_q"][:, -1:]), k_norm(cache[f"{name}.hook_k"])
            rotated_q, rotated_k = rotate(block.attn, q, PROMPT_LEN - 1), rotate(block.attn, k, 0)
            if model.cfg.positional_embedding_type != "rotary":
                assert rotated_q is q and rotated_k is k
                continue
            assert close(rotated_q, cache[f"{name}.hook_rot_q"][:, -1:])
            assert close(rotated_k, cache[f"{name}.hook_rot_k"])


def test_kv_weights_project_transformer_lens_keys_and_values(run):
    model, _, cache = run
    with torch.inference_mode():
        for layer, block in enumerate(model.blocks):
            x = block.ln1(cache[f"blocks.{layer}.hook_resid_pre"])
            w_k, b_k, w_v, b_v = kv_weights(block.attn)
            k = torch.einsum("bpm,hmd->bphd", x, w_k) + b_k
            v = torch.einsum("bpm,hmd->bphd", x, w_v) + b_v
            assert close(k, cache[f"blocks.{layer}.attn.hook_k"])
            assert close(v, cache[f"blocks.{layer}.attn.hook_v"])
            assert kv_groups(block.attn) * k.shape[2] == model.cfg.n_heads


def test_window_start_is_the_first_key_transformer_lens_attends_to(run):
    model, _, cache = run
    for layer, block in enumerate(model.blocks):
        last_row = cache[f"blocks.{layer}.attn.hook_attn_scores"][0, 0, -1]  # [keys]
        first_seen = int(torch.isfinite(last_row).nonzero()[0])
        assert window_start(block.attn, PROMPT_LEN - 1) == first_seen


def test_attention_scores_scale_and_cap_like_transformer_lens(run):
    model, _, cache = run
    with torch.inference_mode():
        for layer, block in enumerate(model.blocks):
            name = f"blocks.{layer}.attn"
            q = cache[f"{name}.hook_rot_q" if f"{name}.hook_rot_q" in cache else f"{name}.hook_q"]
            k = cache[f"{name}.hook_rot_k" if f"{name}.hook_rot_k" in cache else f"{name}.hook_k"]
            k = k.repeat_interleave(model.cfg.n_heads // k.shape[2], dim=2)
            dots = torch.einsum("bhd,bkhd->bhk", q[:, -1], k)
            expected = cache[f"{name}.hook_attn_scores"][:, :, -1]
            seen = torch.isfinite(expected)
            assert close(attention_scores(block.attn, dots)[seen], expected[seen])


def test_visible_keys_are_transformer_lens_attention_mask(run):
    model, _, cache = run
    for layer, block in enumerate(model.blocks):
        scores = cache[f"blocks.{layer}.attn.hook_attn_scores"][0, 0]  # [query, key]
        assert torch.equal(visible_keys(block.attn, PROMPT_LEN, "cpu"), torch.isfinite(scores))


@pytest.mark.parametrize("fused_qkv", [False, True], ids=["per-head-qkv", "fused-qkv"])
def test_prefix_run_matches_transformer_lens(run, fused_qkv):
    """The prefix's resid_post, and the keys and values the last position sees (rotated)."""
    model, _, cache = run
    with torch.inference_mode():
        for layer in range(model.cfg.n_layers):
            block = LastPositionBlock(model.blocks[layer], fused_qkv=fused_qkv)
            hook = f"blocks.{layer}.hook_"
            resid_post = block.run_prefix(cache[hook + "resid_pre"][:, :-1])
            assert close(resid_post, cache[hook + "resid_post"][:, :-1])
            name = f"blocks.{layer}.attn.hook_"
            keys = cache[name + ("rot_k" if name + "rot_k" in cache else "k")][:, :-1]
            start = window_start(block.attn, PROMPT_LEN - 1)
            assert close(block.prefix_k_t, keys[:, start:].permute(0, 2, 3, 1))
            assert close(block.prefix_v, cache[name + "v"][:, start:-1].transpose(1, 2))


@pytest.mark.parametrize("fused_qkv", [False, True], ids=["per-head-qkv", "fused-qkv"])
def test_block_pieces_match_transformer_lens(run, fused_qkv):
    """Attention with its output norm, MLP with its output norm, and the whole block, run at the
    last position against TransformerLens's hook_attn_out, hook_mlp_out and hook_resid_post."""
    model, _, cache = run
    prompts = slice(0, N_PROMPTS)
    with torch.inference_mode():
        for layer in range(model.cfg.n_layers):
            block = LastPositionBlock(model.blocks[layer], fused_qkv=fused_qkv)
            hook = f"blocks.{layer}.hook_"
            block.run_prefix(cache[hook + "resid_pre"][:, :-1])
            resid = cache[hook + "resid_pre"][:, -1:]  # [bp, bs=1, d]
            attn_out = block.attn_out_norm(block.attend(block.block.ln1(resid), prompts))
            assert close(attn_out, cache[hook + "attn_out"][:, -1:])
            mlp_in = resid if model.cfg.parallel_attn_mlp else resid + attn_out
            assert close(block.mlp_out(mlp_in), cache[hook + "mlp_out"][:, -1:])
            assert close(block(resid, prompts), cache[hook + "resid_post"][:, -1:])


@pytest.mark.parametrize(
    "settings",
    [
        dict(act_fn="gelu_new"),
        dict(act_fn="relu"),
        dict(act_fn="silu", gated_mlp=True),
        dict(act_fn="gelu_pytorch_tanh", gated_mlp=True),
        dict(act_fn="solu_ln"),  # an activation with a norm inside: the module runs
    ],
    ids=lambda s: s["act_fn"] + ("-gated" if s.get("gated_mlp") else ""),
)
def test_mlp_function_matches_the_module(settings):
    model = random_model(family_config("gpt2", normalization_type="LN", **settings))
    x = torch.randn(5, model.cfg.d_model)
    with torch.inference_mode():
        for block in model.blocks:
            assert close(mlp_function(block)(x), block.mlp(x[:, None])[:, 0])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_families_are_supported(family):
    assert last_position.unsupported(random_model(family_config(family), noise=0)) is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(use_logn_attn=True), "use_logn_attn"),
        (dict(positional_embedding_type="alibi"), "positional_embedding_type"),
        (dict(use_attention_sinks=True), "use_attention_sinks"),
        (dict(clip_qkv=1.0), "clip_qkv"),
    ],
)
def test_unsupported_names_the_setting(overrides, field):
    model = random_model(family_config("gpt2", **overrides), noise=0)
    assert f"cfg.{field}=" in last_position.unsupported(model)
