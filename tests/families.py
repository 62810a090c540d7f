"""The model families SAELens releases are for, as random TransformerLens models (no hub access).

`ARCHITECTURES` holds what TransformerLens's ``loading_from_pretrained`` sets for the real models,
positional setup included (rotary bases, dimensions and pairing, local window, soft caps):
GPT-2 small with folded layer norms (as SAELens loads it), Pythia-70m (GPT-NeoX), Gemma-2-2B,
Llama-3.1-8B, Gemma-3-1B and Qwen3-0.6B. `REAL_SIZES` holds their widths and depths;
``size="small"`` keeps an architecture and shrinks the widths for exactness tests.
"""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

ARCHITECTURES = {
    "gpt2": dict(act_fn="gelu_new", normalization_type="LNPre"),
    "pythia": dict(
        act_fn="gelu",
        normalization_type="LN",
        positional_embedding_type="rotary",
        rotary_adjacent_pairs=False,
        rotary_base=10000,
        parallel_attn_mlp=True,
    ),
    "gemma2": dict(
        act_fn="gelu_pytorch_tanh",
        normalization_type="RMS",
        eps=1e-6,
        positional_embedding_type="rotary",
        rotary_base=10000.0,
        use_local_attn=True,
        window_size=4096,
        attn_scores_soft_cap=50.0,
        output_logits_soft_cap=30.0,
        gated_mlp=True,
        final_rms=True,
        use_normalization_before_and_after=True,
    ),
    "llama": dict(
        act_fn="silu",
        normalization_type="RMS",
        positional_embedding_type="rotary",
        rotary_adjacent_pairs=False,
        rotary_base=500000.0,
        use_NTK_by_parts_rope=True,
        NTK_by_parts_factor=8.0,
        NTK_by_parts_low_freq_factor=1.0,
        NTK_by_parts_high_freq_factor=4.0,
        NTK_original_ctx_len=8192,
        gated_mlp=True,
        final_rms=True,
    ),
    "gemma3": dict(
        act_fn="gelu_pytorch_tanh",
        normalization_type="RMS",
        eps=1e-6,
        positional_embedding_type="rotary",
        rotary_base=1000000,
        rotary_base_local=10000,
        use_local_attn=True,
        window_size=512,
        gated_mlp=True,
        final_rms=True,
        use_normalization_before_and_after=True,
        use_qk_norm=True,
    ),
    "qwen3": dict(
        act_fn="silu",
        normalization_type="RMS",
        eps=1e-6,
        positional_embedding_type="rotary",
        rotary_base=1000000,
        rotary_adjacent_pairs=False,
        gated_mlp=True,
        final_rms=True,
        use_qk_norm=True,
    ),
}

REAL_SIZES = {
    "gpt2": dict(
        n_layers=12, d_model=768, n_heads=12, d_head=64, d_mlp=3072, d_vocab=50257, n_ctx=1024
    ),
    "pythia": dict(
        n_layers=6,
        d_model=512,
        n_heads=8,
        d_head=64,
        d_mlp=2048,
        d_vocab=50304,
        n_ctx=2048,
        rotary_dim=16,
    ),
    "gemma2": dict(
        n_layers=26,
        d_model=2304,
        n_heads=8,
        d_head=256,
        n_key_value_heads=4,
        d_mlp=9216,
        d_vocab=256000,
        n_ctx=8192,
    ),
    "llama": dict(
        n_layers=32,
        d_model=4096,
        n_heads=32,
        d_head=128,
        n_key_value_heads=8,
        d_mlp=14336,
        d_vocab=128256,
        n_ctx=2048,
    ),
    "gemma3": dict(
        n_layers=26,
        d_model=1152,
        n_heads=4,
        d_head=256,
        n_key_value_heads=1,
        d_mlp=6912,
        d_vocab=262144,
        n_ctx=8192,
    ),
    "qwen3": dict(
        n_layers=28,
        d_model=1024,
        n_heads=16,
        d_head=128,
        n_key_value_heads=8,
        d_mlp=3072,
        d_vocab=151936,
        n_ctx=2048,
    ),
}
GLOBAL_EVERY = {"gemma2": 2, "gemma3": 6}
"""Families with local attention: every k-th layer is global, the others local (Gemma-2:
alternate layers; Gemma-3: five local layers, then a global one)."""

SMALL_SIZE = dict(n_layers=4, d_model=64, n_heads=4, d_head=16, d_mlp=128, d_vocab=97)
SMALL_KV_HEADS = 2
"""Key/value heads of the small grouped-query families (2 query heads per key/value head; one,
shared by all heads, where the real model has one)."""
SMALL_OVERRIDES = {"gemma3": dict(n_layers=6, d_head=32), "qwen3": dict(d_head=32)}
"""Small Gemma-3 and Qwen-3 heads are wider than d_model / n_heads, as the real ones are; the small
Gemma-3 holds its five local layers and a global one."""

GEMMA2_TIGHT = dict(window_size=3, attn_scores_soft_cap=0.5, output_logits_soft_cap=1.0)
"""Gemma-2 settings that bind in a small model and a short prompt: the window shorter than the
prompt, soft caps below the typical attention scores and logits."""
GEMMA3_TIGHT = dict(window_size=3, rotary_scaling_factor=8.0)
"""Gemma-3 with the window shorter than a short prompt, and the global layers' rotary frequencies
scaled down 8-fold (Gemma-3-4B, 12B and 27B)."""


def family_config(family: str, size: str = "small", **overrides) -> HookedTransformerConfig:
    """The config of a family's model, ``size`` "small" or "real", with ``overrides``."""
    settings = {**ARCHITECTURES[family], "n_ctx": 32, "seed": 0}
    if size == "real":
        settings.update(REAL_SIZES[family])
    else:
        settings.update(SMALL_SIZE)
        if "n_key_value_heads" in REAL_SIZES[family]:
            settings["n_key_value_heads"] = min(
                SMALL_KV_HEADS, REAL_SIZES[family]["n_key_value_heads"]
            )
        if "rotary_dim" in REAL_SIZES[family]:  # partial rotary: a quarter of each head
            settings["rotary_dim"] = SMALL_SIZE["d_head"] // 4
        settings.update(SMALL_OVERRIDES.get(family, {}))
    settings.update(overrides)
    if settings.get("use_local_attn"):
        every = GLOBAL_EVERY[family]
        layers = range(settings["n_layers"])
        settings["attn_types"] = ["global" if (i + 1) % every == 0 else "local" for i in layers]
    return HookedTransformerConfig(**settings)


def random_model(cfg: HookedTransformerConfig, noise: float = 0.02) -> HookedTransformer:
    """A model of ``cfg`` with TransformerLens's seeded initialisation plus seeded ``noise`` on
    every parameter, so that biases and norm weights are not at their trivial values too."""
    model = HookedTransformer(cfg).eval()
    if noise:
        generator = torch.Generator().manual_seed(cfg.seed)
        with torch.no_grad():
            for param in model.parameters():
                draw = torch.randn(param.shape, generator=generator, dtype=torch.float64)
                param.add_(noise * draw.to(param.dtype))
    return model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small models run fastest on one thread, and far slower when threads contend for cores.
    Autouse in every test module that imports it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
