"""One transformer block at the last position of prompts whose prefixes it has cached.

`LastPositionBlock` runs a TransformerLens ``TransformerBlock`` on many rows at once, each row one
input vector at position P-1 of its prompt. Its attention reads the prompt's cached prefix keys
and values (positions 0..P-2, shared by all of a prompt's rows, never copied) and the row's own
key and value. Norms act per position and are the block's own modules; plain and gated MLPs are
recomputed from their weights (one kernel for the activation), any other MLP module runs as it
is. What varies between the model families SAELens releases are for (GPT-2, Pythia/GPT-NeoX,
Gemma-2, Gemma-3, Llama/Mistral, Qwen-3) is a few named pieces, each tested on its own against
TransformerLens:

- position encoding, `rotate`: rotary queries and keys from the attention module's own tables
  (GPT-NeoX's partial rotary, Llama 3's scaled frequencies, Gemma-3's separate local and global
  bases and linearly scaled global frequencies);
- query/key normalisation, `qk_norms`: an RMS norm of each head's query and key before the
  rotation (Gemma-3, Qwen-3);
- attention grouping, `kv_groups` and `kv_weights`: grouped-query attention, each key/value head
  serving ``n_heads // n_key_value_heads`` query heads (Llama, Mistral, Gemma-2, Gemma-3, Qwen-3);
- caps, `attention_scores`: the attention-score soft cap (Gemma-2);
- window, `window_start`: local attention sees the last ``window_size`` positions (Gemma-2's
  alternate layers, Gemma-3's five of six, Mistral);
- normalisation, `sublayer_norms`: norms after the attention and MLP outputs (Gemma-2, Gemma-3);
  with parallel attention and MLP (GPT-NeoX) both read the block's input, see `LastPositionBlock`.

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
    ("clip_qkv", lambda v: v is not None, "query/key/value clipping"),
    ("use_logn_attn", bool, "log-n query scaling"),
    ("use_attention_sinks", bool, "attention sinks"),
    ("original_architecture", lambda v: v is not None and "Olmo" in v, "OLMo-style norms"),
    ("load_in_4bit", bool, "4-bit weights"),
)


def cfg_problem(model: HookedTransformer, rules: tuple) -> str | None:
    """The first of ``rules`` (``(cfg field, predicate of its value, what it means)``) that the
    model's config meets, in words, or None."""
    for field, applies, what in rules:
        value = getattr(model.cfg, field, None)
        if applies(value):
            return f"{what} (cfg.{field}={value!r})"
    return None


def unsupported(model: HookedTransformer) -> str | None:
    """Why `LastPositionBlock` cannot run this model's blocks, or None when it can."""
    problem = cfg_problem(model, _UNSUPPORTED_CFG)
    if problem is not None:
        return problem
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


def qk_norms(attn: Attention) -> tuple[Callable, Callable]:
    """The norms of each query and key head ``[..., d_head]``, applied before the rotation
    (Gemma-3's and Qwen-3's RMS norms, the attention module's own); identities for other models."""
    if attn.cfg.use_qk_norm:
        return attn.q_norm, attn.k_norm
    return _identity, _identity


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


def visible_keys(attn: Attention, n: int, device: torch.device) -> torch.Tensor:
    """``[n, n]``: whether the query at position i (row) sees the key at position j (column):
    j <= i, and j >= `window_start` for local attention."""
    positions = torch.arange(n, device=device)
    starts = torch.tensor([window_start(attn, i) for i in range(n)], device=device)
    return (positions <= positions[:, None]) & (positions >= starts[:, None])


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

    `run_prefix` runs a group of prompts' prefixes and holds their keys and values; calling the
    block then runs rows ``[bp, bs, d_model]`` (bs rows of each of bp prompts of the group) at
    position P-1. Both attend with the same pieces; the prefix causally among its positions.

    ``fused_qkv``: compute queries, keys and values as one product with a ``[d_model, (H +
    2·Hkv)·d_head]`` copy of their weights (default on CUDA, where one wide product beats
    per-head ones); else as per-head products of the weights as they are (as fast on CPU, where
    copying the weights for every call would cost more).
    """

    def __init__(self, block: TransformerBlock, fused_qkv: bool | None = None):
        attn = block.attn
        self.block, self.attn = block, attn
        self.groups = kv_groups(attn)
        self.n_heads, self.d_head = attn.W_Q.shape[0], attn.W_Q.shape[-1]
        self.n_kv = self.n_heads // self.groups
        self.q_norm, self.k_norm = qk_norms(attn)
        w_k, b_k, w_v, b_v = kv_weights(attn)
        self.qkv_weights = ((attn.W_Q, attn.b_Q), (w_k, b_k), (w_v, b_v))
        self.w_qkv = self.b_qkv = None
        if attn.W_Q.is_cuda if fused_qkv is None else fused_qkv:
            self.w_qkv = torch.cat([_heads_to_columns(w) for w, _ in self.qkv_weights], dim=1)
            self.b_qkv = torch.cat([b.flatten() for _, b in self.qkv_weights])
        self.w_o = attn.W_O.reshape(-1, attn.W_O.shape[-1])  # [H·d_head, d_model], a view
        self.attn_out_norm, self.mlp_out_norm = sublayer_norms(block)
        self.mlp = mlp_function(block)
        self.position = 0  # P - 1, the last position
        self.prefix_k_t: torch.Tensor | None = None  # [g, Hkv, d_head, keys], rotated
        self.prefix_v: torch.Tensor | None = None  # [g, Hkv, keys, d_head]

    def run_prefix(self, resid: torch.Tensor) -> torch.Tensor:
        """resid_pre ``[g, P-1, d_model]`` of prefixes -> their resid_post; holds their keys and
        values (those the last position's window sees)."""
        return self.add_sublayers(resid, self.attend_prefix(self.block.ln1(resid)))

    def __call__(self, resid: torch.Tensor, prompts: slice) -> torch.Tensor:
        """resid_pre ``[bp, bs, d_model]`` of rows of the group's ``prompts`` -> resid_post."""
        return self.add_sublayers(resid, self.attend(self.block.ln1(resid), prompts))

    def add_sublayers(self, resid: torch.Tensor, attn_out: torch.Tensor) -> torch.Tensor:
        """resid_post from resid_pre and the attention output ``[..., d_model]``: output norms,
        and the MLP on the attention's residual (or, in parallel, on resid_pre)."""
        attn_out = self.attn_out_norm(attn_out)
        if self.mlp is None:
            return resid + attn_out
        if self.block.cfg.parallel_attn_mlp:
            return resid + attn_out + self.mlp_out(resid)
        resid = resid + attn_out
        return resid + self.mlp_out(resid)

    def mlp_out(self, resid: torch.Tensor) -> torch.Tensor:
        """What the MLP adds to the residual stream ``[..., d_model]`` (norms included)."""
        mlp_out = self.mlp(self.block.ln2(resid).flatten(0, -2)).view(resid.shape)
        return self.mlp_out_norm(mlp_out)

    def attend_prefix(self, x: torch.Tensor) -> torch.Tensor:
        """Attention among the positions of normalised prefixes ``x`` ``[g, n, d_model]`` (each
        sees itself and the earlier positions in its window) -> ``[g, n, d_model]``."""
        g, n, _ = x.shape
        q, k, v = self.qkv(x, None)  # [g, Hkv, G, n, d], [g, Hkv, 1, n, d] (twice)
        start = window_start(self.attn, n)
        self.position = n
        self.prefix_k_t = k[:, :, 0, start:].transpose(-1, -2).contiguous()
        self.prefix_v = v[:, :, 0, start:].contiguous()
        dots = q.reshape(g, self.n_kv, self.groups * n, self.d_head) @ k[:, :, 0].transpose(-1, -2)
        hidden = ~visible_keys(self.attn, n, x.device).repeat(self.groups, 1)  # [G·n, n]
        pattern = attention_scores(self.attn, dots).masked_fill(hidden, -torch.inf).softmax(-1)
        return self.output((pattern @ v[:, :, 0]).view(q.shape))

    def attend(self, x: torch.Tensor, prompts: slice) -> torch.Tensor:
        """The attention output of normalised rows ``x`` ``[bp, bs, d_model]`` at the last
        position -> ``[bp, bs, d_model]``, each row scoring its prompt's prefix keys and its own
        key."""
        bp, bs, _ = x.shape
        q, k, v = self.qkv(x, self.position)  # each row: a query, a key and a value
        rows = self.groups * bs  # queries sharing a key/value head
        prefix_dots = q.reshape(bp, self.n_kv, rows, self.d_head) @ self.prefix_k_t[prompts]
        own_dot = (q * k).sum(dim=-1).view(bp, self.n_kv, rows, 1)
        pattern = attention_scores(self.attn, torch.cat([prefix_dots, own_dot], -1)).softmax(-1)
        z = pattern[..., :-1] @ self.prefix_v[prompts]  # [bp, Hkv, G·bs, d]
        own_weight = pattern[..., -1:].view(bp, self.n_kv, self.groups, bs, 1)
        return self.output(z.view(q.shape) + own_weight * v)

    def qkv(self, x: torch.Tensor, position: int | None) -> list[torch.Tensor]:
        """Normalised and rotated queries ``[b, Hkv, G, n, d_head]``, keys (likewise) and values
        ``[b, Hkv, 1, n, d_head]`` of ``x`` ``[b, n, d_model]``, grouped by key/value head.
        ``x[:, i]`` is at position i (``position`` None: prefixes) or every row at ``position``."""
        b, n, d_model = x.shape
        x = x.reshape(b * n, d_model)
        if self.w_qkv is None:
            q, k, v = [(x @ w + bias[:, None]).transpose(0, 1) for w, bias in self.qkv_weights]
        else:
            columns = [w.shape[0] * self.d_head for w, _ in self.qkv_weights]
            q, k, v = torch.addmm(self.b_qkv, x, self.w_qkv).split(columns, dim=1)
        q = self.rotate_rows(self.q_norm(q.reshape(b, n, self.n_heads, self.d_head)), position)
        k = self.rotate_rows(self.k_norm(k.reshape(b, n, self.n_kv, self.d_head)), position)
        q = q.view(b, n, self.n_kv, self.groups, self.d_head)
        k, v = k.view(b, n, self.n_kv, 1, self.d_head), v.reshape(b, n, self.n_kv, 1, self.d_head)
        return [t.permute(0, 2, 3, 1, 4) for t in (q, k, v)]

    def rotate_rows(self, x: torch.Tensor, position: int | None) -> torch.Tensor:
        """`rotate` of ``x`` ``[b, n, heads, d_head]`` at positions 0..n-1 along dim 1 (None) or
        with every row at ``position``."""
        if position is None:
            return rotate(self.attn, x, 0)
        return rotate(self.attn, x.flatten(0, 1)[:, None], position).view(x.shape)

    def output(self, z: torch.Tensor) -> torch.Tensor:
        """The attention output ``[b, n, d_model]`` of heads' results ``z`` ``[b, Hkv, G, n,
        d_head]``."""
        b, n = z.shape[0], z.shape[-2]
        z = z.permute(0, 3, 1, 2, 4).reshape(b * n, self.n_heads * self.d_head)
        return torch.addmm(self.attn.b_O, z, self.w_o).view(b, n, self.w_o.shape[1])
