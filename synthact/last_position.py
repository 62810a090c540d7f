"""One transformer block at the last position of prompts whose prefixes it has cached.

`LastPositionBlock` runs a TransformerLens ``TransformerBlock`` on many rows at once, each row one
input vector at position P-1 of its prompt. Its attention reads the prompt's cached prefix keys
and values (positions 0..P-2, shared by all of a prompt's rows, never copied) and the row's own
key and value. Norms act per position and are the block's own modules; plain and gated MLPs are
recomputed from their weights (one kernel for the activation), any other MLP module runs as it
is. What varies between the model families SAELens releases are for (GPT-2, Pythia/GPT-NeoX,
Gemma-2, Llama/Mistral) is a few named pieces, each tested on its own against TransformerLens:

- position encoding, `rotate`: rotary queries and keys from the attention module's own tables
  (GPT-NeoX's partial rotary, Llama 3's scaled frequencies, Gemma-2's local and global bases);
- attention grouping, `kv_groups` and `kv_weights`: grouped-query attention, each key/value head
  serving ``n_heads // n_key_value_heads`` query heads (Llama, Mistral, Gemma-2);
- caps, `attention_scores`: the attention-score soft cap (Gemma-2);
- window, `window_start`: local attention sees the last ``window_size`` positions (Gemma-2's
  alternate layers, Mistral);
- normalisation, `sublayer_norms`: norms after the attention and MLP outputs (Gemma-2); with
  parallel attention and MLP (GPT-NeoX) both read the block's input, see `LastPositionBlock`.

`unsupported` names what a model has that this runner does not cover.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformer_lens import HookedTransformer
from transformer_lens.components import Attention, GroupedQueryAttention, TransformerBlock
from transformer_lens.components.mlps.gated_mlp import GatedMLP
from transformer_lens.components.mlps.mlp import MLP
from transformer_lens.utilities.activation_functions import apply_softcap, gelu_pytorch_tanh

FUSED_ACTIVATIONS = {"gelu_new": gelu_pytorch_tanh}
"""Activations whose TransformerLens implementation is a chain of elementwise ops, mapped to one
fused kernel of the same formula (GPT-2's ``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``).
They agree with the original to float rounding and make the runner 5-10 % faster on CPU."""

_UNSUPPORTED_CFG = (
    (
        "positional_embedding_type",
        lambda v: v not in ("standard", "rotary"),
        "positions other than 'standard' and 'rotary'",
    ),
    ("use_dynamic_ntk_rope", bool, "rotary tables that depend on the prompt length"),
    ("use_qk_norm", bool, "query/key normalization"),
    ("clip_qkv", lambda v: v is not None, "query/key/value clipping"),
    ("use_logn_attn", bool, "log-n query scaling"),
    ("use_attention_sinks", bool, "attention sinks"),
    ("original_architecture", lambda v: v is not None and "Olmo" in v, "OLMo-style norms"),
    ("load_in_4bit", bool, "4-bit weights"),
)


def unsupported(model: HookedTransformer) -> str | None:
    """Why `LastPositionBlock` cannot run this model's blocks, or None when it can."""
    for field, is_unsupported, what in _UNSUPPORTED_CFG:
        value = getattr(model.cfg, field, None)
        if is_unsupported(value):
            return f"{what} (cfg.{field}={value!r})"
    for block in model.blocks:
        if type(block) is not TransformerBlock:
            return f"block type {type(block).__name__}"
        if type(block.attn) not in (Attention, GroupedQueryAttention):
            return f"attention type {type(block.attn).__name__}"
    return None


# ---------------------------------------------------------------------------- the pieces


def rotate(attn: Attention, x: torch.Tensor, first_position: int) -> torch.Tensor:
    """Rotary position encoding of queries or keys ``x`` ``[b, n, heads, d_head]`` at positions
    ``first_position .. first_position + n - 1`` (TransformerLens's own rotation, tables and
    pairing); ``x`` unchanged for models without rotary positions."""
    if attn.cfg.positional_embedding_type != "rotary":
        return x
    return attn.apply_rotary(x, first_position)


def kv_groups(attn: Attention) -> int:
    """Query heads per key/value head: 1 unless the keys and values are grouped."""
    if isinstance(attn, GroupedQueryAttention) and not attn.cfg.ungroup_grouped_query_attention:
        return attn.repeat_kv_heads
    return 1


def kv_weights(attn: Attention) -> tuple[torch.Tensor, ...]:
    """``W_K, b_K, W_V, b_V`` of the key/value heads, ``[Hkv, d_model, d_head]`` and ``[Hkv,
    d_head]``: with grouped keys and values the heads' own weights, not their repeats."""
    if kv_groups(attn) > 1:
        return attn._W_K, attn._b_K, attn._W_V, attn._b_V
    return attn.W_K, attn.b_K, attn.W_V, attn.b_V


def window_start(attn: Attention, position: int) -> int:
    """First key position that the query at ``position`` sees: 0, or with local attention the
    oldest of the last ``window_size`` positions (TransformerLens: key > query - window)."""
    if attn.attn_type != "local":
        return 0
    return max(0, position - attn.cfg.window_size + 1)


def attention_scores(attn: Attention, dots: torch.Tensor) -> torch.Tensor:
    """Scores from query·key dot products ``[..., keys]``: scaled, then soft-capped (Gemma-2)."""
    return apply_softcap(dots / attn.attn_scale, attn.cfg.attn_scores_soft_cap)


def sublayer_norms(block: TransformerBlock) -> tuple[Callable, Callable]:
    """The norms applied to the attention and MLP outputs before they join the residual stream
    (Gemma-2's ``ln1_post`` and ``ln2_post``); identities for other models."""
    if block.cfg.use_normalization_before_and_after:
        return block.ln1_post, block.ln2_post
    return _identity, _identity


def mlp_function(block: TransformerBlock) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The block's MLP as a function of ``[n, d_model]`` rows (None for attention-only blocks).

    Plain and gated MLPs run here from their weights, with the activation as one kernel (see
    `FUSED_ACTIVATIONS`); TransformerLens's gated MLP copies its transposed weights on every call.
    Any other MLP (mixtures of experts, activations with a norm inside) runs as its module.
    """
    if block.cfg.attn_only:
        return None
    mlp = block.mlp
    if block.cfg.is_layer_norm_activation() or type(mlp) not in (MLP, GatedMLP):
        return lambda x: mlp(x[:, None])[:, 0]
    act = FUSED_ACTIVATIONS.get(block.cfg.act_fn, mlp.act_fn)
    if type(mlp) is MLP:
        return lambda x: torch.addmm(mlp.b_out, act(torch.addmm(mlp.b_in, x, mlp.W_in)), mlp.W_out)
    return lambda x: torch.addmm(
        mlp.b_out, act(x @ mlp.W_gate) * (x @ mlp.W_in) + mlp.b_in, mlp.W_out
    )


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _heads_to_columns(w: torch.Tensor) -> torch.Tensor:
    """Per-head weights ``[heads, d_model, d_head]`` as one matrix ``[d_model, heads·d_head]``."""
    return w.permute(1, 0, 2).reshape(w.shape[1], -1)


# ---------------------------------------------------------------------------- the block


class LastPositionBlock:
    """One block at the last position, for rows of prompts whose prefixes it holds.

    `load_prefix` takes a group of prompts' prefix keys and values as TransformerLens's KV cache
    holds them; calling the block then runs rows ``[bp, bs, d_model]`` (bs rows of each of bp
    prompts of the group) at position P-1.

    ``fused_qkv``: compute queries, keys and values as one product with a ``[d_model, (H +
    2·Hkv)·d_head]`` copy of their weights (default on CUDA, where one wide product beats
    per-head ones); else as per-head products of the weights as they are (as fast on CPU, where
    copying the weights for every call would cost more).
    """

    def __init__(self, block: TransformerBlock, fused_qkv: bool | None = None):
        attn = block.attn
        self.block, self.attn = block, attn
        self.groups = kv_groups(attn)
        w_k, b_k, w_v, b_v = kv_weights(attn)
        self.qkv_weights = ((attn.W_Q, attn.b_Q), (w_k, b_k), (w_v, b_v))
        self.w_qkv = self.b_qkv = None
        if attn.W_Q.is_cuda if fused_qkv is None else fused_qkv:
            self.w_qkv = torch.cat([_heads_to_columns(w) for w, _ in self.qkv_weights], dim=1)
            self.b_qkv = torch.cat([b.flatten() for _, b in self.qkv_weights])
        self.w_o = attn.W_O.reshape(-1, attn.W_O.shape[-1])  # [H·d_head, d_model], a view
        self.attn_out_norm, self.mlp_out_norm = sublayer_norms(block)
        self.mlp = mlp_function(block)
        self.position = 0  # P - 1, the query's position
        self.prefix_k_t: torch.Tensor | None = None  # [g, Hkv, d_head, keys], rotated
        self.prefix_v: torch.Tensor | None = None  # [g, Hkv, keys, d_head]

    def load_prefix(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Holds prefix keys and values ``[g, P-1, Hkv, d_head]`` (keys before rotary), only the
        positions the last position's window sees."""
        self.position = keys.shape[1]
        start = window_start(self.attn, self.position)
        keys = rotate(self.attn, keys, 0)[:, start:]
        self.prefix_k_t = keys.permute(0, 2, 3, 1).contiguous()
        self.prefix_v = values[:, start:].transpose(1, 2).contiguous()

    def __call__(self, resid: torch.Tensor, prompts: slice) -> torch.Tensor:
        """resid_pre ``[bp, bs, d_model]`` of rows of the group's ``prompts`` -> resid_post."""
        attn_out = self.attn_out_norm(self.attend(self.block.ln1(resid), prompts))
        if self.mlp is None:
            return resid + attn_out
        if self.block.cfg.parallel_attn_mlp:
            return resid + attn_out + self.mlp_out(resid)
        resid = resid + attn_out
        return resid + self.mlp_out(resid)

    def mlp_out(self, resid: torch.Tensor) -> torch.Tensor:
        """What the MLP adds to the residual stream ``[bp, bs, d_model]`` (norms included)."""
        mlp_out = self.mlp(self.block.ln2(resid).flatten(0, 1)).view(resid.shape)
        return self.mlp_out_norm(mlp_out)

    def attend(self, x: torch.Tensor, prompts: slice) -> torch.Tensor:
        """The attention output of normalised rows ``x`` ``[bp, bs, d_model]`` -> ``[bp, bs,
        d_model]``, each query scoring its prompt's prefix keys and its own key."""
        attn, groups = self.attn, self.groups
        bp, bs, d_model = x.shape
        n_heads, d_head = attn.W_Q.shape[0], attn.W_Q.shape[-1]
        n_kv = n_heads // groups
        q, k, v = self.qkv(x.reshape(bp * bs, d_model))
        q = rotate(attn, q[:, None], self.position)
        k = rotate(attn, k[:, None], self.position)
        q = q.view(bp, bs, n_kv, groups, d_head).permute(0, 2, 3, 1, 4)  # [bp, Hkv, G, bs, d]
        k = k.view(bp, bs, n_kv, 1, d_head).permute(0, 2, 3, 1, 4)  # [bp, Hkv, 1, bs, d]
        v = v.view(bp, bs, n_kv, 1, d_head).permute(0, 2, 3, 1, 4)
        rows = groups * bs  # the queries sharing one key/value head
        prefix_dots = q.reshape(bp, n_kv, rows, d_head) @ self.prefix_k_t[prompts]
        own_dot = (q * k).sum(dim=-1).view(bp, n_kv, rows, 1)
        pattern = attention_scores(attn, torch.cat([prefix_dots, own_dot], dim=-1)).softmax(-1)
        z = pattern[..., :-1] @ self.prefix_v[prompts]  # [bp, Hkv, G·bs, d]
        own_weight = pattern[..., -1:].view(bp, n_kv, groups, bs, 1)
        z = z.view(bp, n_kv, groups, bs, d_head) + own_weight * v
        z = z.permute(0, 3, 1, 2, 4).reshape(bp * bs, n_heads * d_head)
        return torch.addmm(attn.b_O, z, self.w_o).view(bp, bs, d_model)

    def qkv(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Queries ``[n, H, d_head]``, keys and values ``[n, Hkv, d_head]`` of rows ``x`` ``[n,
        d_model]`` (views: with per-head products, of head-major ``[heads, n, d_head]`` results)."""
        if self.w_qkv is None:
            return [(x @ w + b[:, None]).transpose(0, 1) for w, b in self.qkv_weights]
        d_head = self.attn.W_Q.shape[-1]
        qkv = torch.addmm(self.b_qkv, x, self.w_qkv)
        columns = [w.shape[0] * d_head for w, _ in self.qkv_weights]
        return [part.view(x.shape[0], -1, d_head) for part in qkv.split(columns, dim=1)]
