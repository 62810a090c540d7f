"""The perturbation engine: paths from a base activation towards a target, and the resulting curves.

A perturbed vector ``x_n`` replaces the base prompt's residual stream at ``hook_in``, last position
only. With causal attention the earlier positions are untouched, so only the last position changes
downstream. ``perturbation_curves`` exploits this: it runs every prompt's prefix once, keeps the
prefix keys and values, and then recomputes only the last position, block by block, for many
(prompt, step) rows at a time. ``naive_perturbation_curves`` is the plain reference (a full forward
pass with a hook for every row); both return the same `Curves`.

Curves (REPLICATION.md, "Perturbation"), measured at the last position:

- ``l2[b, n] = ||resid_out(x_n) - resid_out(x_0)||`` at ``hook_out``;
- ``kl[b, n] = KL(p(x_0) || p(x_n))`` of the next-token distributions, summed over the vocabulary.

The reference point is step 0 (``x_0 = A``, or ``base`` when given), computed the same way as
the other steps, so ``l2[:, 0] == 0`` and ``kl[:, 0] == 0`` exactly. Absolute-mode truncation
(the first ``floor(||T - A|| / step)`` points) is left to the metrics, which read ``distance``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer
from transformer_lens.components.mlps.mlp import MLP
from transformer_lens.utilities.activation_functions import (
    apply_softcap,
    gelu_pytorch_tanh,
    softcap_enabled,
)

MODES = ("absolute", "relative")
HOOK_IN_FORMS = ("blocks.L.hook_resid_pre", "blocks.L.hook_resid_post")
HOOK_OUT_FORMS = ("blocks.M.hook_resid_post",)
NORMALIZATION_TYPES = ("LN", "LNPre", "RMS", "RMSPre", None)

DEFAULT_ROWS = 256
"""(prompt, step) rows per chunk without KL. With 101 steps this is 2 prompts x 101 steps, the
fastest chunk measured at GPT-2 size on one CPU core (matrix products of 202 rows run near peak
while a chunk's MLP activations still fit in cache)."""

LOGITS_BYTES = 64 * 2**20
"""With KL, rows per chunk are also bounded so that one chunk's logits take at most this much."""

FUSED_ACTIVATIONS = {"gelu_new": gelu_pytorch_tanh}
"""Activations whose TransformerLens implementation is a chain of elementwise ops, mapped to one
fused kernel of the same formula (GPT-2's ``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``).
The engine's MLPs use it; it agrees with the original to float rounding and makes the engine
5-10 % faster on CPU."""

PREFIX_PROMPTS = 256
"""Prompts whose prefix keys and values are held at once (about 150 MB at GPT-2 size with
10-token prompts); larger requests run in groups of this many prompts."""

KL_ROWS = 16
"""Rows per block of the vocabulary-wide KL computation."""

_HOOK_RE = re.compile(r"blocks\.(\d+)\.hook_resid_(pre|post)")

_UNSUPPORTED_CFG = (
    ("positional_embedding_type", lambda v: v != "standard", "positions other than 'standard'"),
    ("n_key_value_heads", lambda v: v is not None, "grouped-query attention"),
    ("parallel_attn_mlp", bool, "parallel attention and MLP"),
    ("attn_scores_soft_cap", softcap_enabled, "attention score soft cap"),
    ("use_local_attn", bool, "local attention"),
    ("attention_dir", lambda v: v != "causal", "non-causal attention"),
    ("use_qk_norm", bool, "query/key normalization"),
    ("clip_qkv", lambda v: v is not None, "query/key/value clipping"),
    ("use_logn_attn", bool, "log-n query scaling"),
    ("use_attention_sinks", bool, "attention sinks"),
    ("use_normalization_before_and_after", bool, "normalization after attention and MLP"),
    ("original_architecture", lambda v: v is not None and "Olmo" in v, "OLMo-style norms"),
    ("load_in_4bit", bool, "4-bit weights"),
    ("n_devices", lambda v: v != 1, "a model split over devices"),
    ("normalization_type", lambda v: v not in NORMALIZATION_TYPES, "this normalization type"),
)


@dataclass
class Curves:
    """Perturbation curves of B prompts over n_steps steps (CPU, float32).

    Attributes:
        l2: ``[B, n_steps]`` ``||resid_out(x_n) - resid_out(x_0)||`` at the last position.
        kl: ``[B, n_steps]`` ``KL(p(x_0) || p(x_n))`` of next-token distributions, last position,
            or None when not requested.
        distance: ``[B]`` ``||T - x_0||``.
    """

    l2: torch.Tensor
    kl: torch.Tensor | None
    distance: torch.Tensor


@dataclass
class _Setup:
    """Validated inputs of one curves request, on the model's device."""

    tokens: torch.Tensor  # [B, P] int64
    target: torch.Tensor  # [B, d] path dtype
    base: torch.Tensor | None  # [B, d] path dtype
    mode: str
    step: float
    n_steps: int
    hook_in: str
    first_block: int  # first block run on the perturbed vector
    out_block: int  # hook_out is this block's hook_resid_post
    kl: bool
    soft_cap: float | None  # the model's output_logits_soft_cap
    rows: int  # (prompt, step) rows per chunk


def perturbation_path(
    base: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "absolute",
    step: float = 0.5,
    n_steps: int = 101,
) -> torch.Tensor:
    """Points x_0..x_{n_steps-1} from ``base`` (A) towards ``target`` (T).

    absolute: ``x_n = A + step·n·D`` with ``D = (T - A) / ||T - A||`` (the path may pass T);
    relative: ``x_n = (1 - n/(n_steps-1))·A + n/(n_steps-1)·T`` (ends exactly at T).

    Args:
        base: ``[B, d]`` float.
        target: ``[B, d]`` float.

    Returns:
        ``[B, n_steps, d]`` in the promoted dtype of the inputs and float32.
    """
    _check_path_args(mode, step, n_steps)
    _check_vectors("base", base, None, None)
    _check_vectors("target", target, base.shape[0], base.shape[1])
    dtype = torch.promote_types(torch.promote_types(base.dtype, target.dtype), torch.float32)
    base, target = base.to(dtype), target.to(device=base.device, dtype=dtype)
    if mode == "absolute":
        _check_distinct(base, target)
    return _path_points(
        base, target, torch.arange(n_steps, device=base.device), mode, step, n_steps
    )


def perturbation_curves(
    model: HookedTransformer,
    tokens: torch.Tensor,
    target: torch.Tensor,
    *,
    base: torch.Tensor | None = None,
    mode: str = "absolute",
    step: float = 0.5,
    n_steps: int = 101,
    hook_in: str = "blocks.1.hook_resid_pre",
    hook_out: str | None = None,
    kl: bool = False,
    batch_size: int | None = None,
    progress: bool = False,
) -> Curves:
    """L2 (and optionally KL) curves along perturbation paths, recomputing only the last position.

    Each prompt's prefix runs once; the prefix keys and values of every block from the input block
    on are kept, and the last position alone is recomputed for chunks of (prompt, step) rows, its
    attention reading the shared prefix keys and values (broadcast over steps, never copied).

    Args:
        model: a TransformerLens ``HookedTransformer`` without hooks attached.
        tokens: ``[B, P]`` base prompts; position ``P - 1`` is perturbed.
        target: ``[B, d_model]`` targets T.
        base: ``[B, d_model]`` start points that replace the prompt's own activation (plateau
            experiment); None starts at the prompt's own activation A at ``hook_in``.
        mode: ``"absolute"`` or ``"relative"`` (see `perturbation_path`).
        step: absolute step length.
        n_steps: points per path, including step 0.
        hook_in: ``blocks.L.hook_resid_pre`` or ``blocks.L.hook_resid_post``.
        hook_out: ``blocks.M.hook_resid_post`` (default: the last block's).
        kl: also compute the KL curve (runs to the logits).
        batch_size: (prompt, step) rows per chunk; default bounded by memory (see
            ``DEFAULT_ROWS`` and ``LOGITS_BYTES``).
        progress: show a progress bar over chunks.

    Returns:
        `Curves` with CPU float32 tensors.
    """
    setup = _prepare(
        model, tokens, target, base, mode, step, n_steps, hook_in, hook_out, kl, batch_size
    )
    _check_supported(model)
    with torch.inference_mode():
        return _curves(model, setup, _CachedPrefixRunner, progress)


def naive_perturbation_curves(
    model: HookedTransformer,
    tokens: torch.Tensor,
    target: torch.Tensor,
    *,
    base: torch.Tensor | None = None,
    mode: str = "absolute",
    step: float = 0.5,
    n_steps: int = 101,
    hook_in: str = "blocks.1.hook_resid_pre",
    hook_out: str | None = None,
    kl: bool = False,
    batch_size: int | None = None,
    progress: bool = False,
) -> Curves:
    """Reference implementation of `perturbation_curves` (same arguments, same result).

    For every (prompt, step) it runs a full forward pass of the prompt (``batch_size`` rows at a
    time) with a hook replacing ``hook_in`` at the last position, stopping after ``hook_out``'s
    block when no KL is needed.
    """
    setup = _prepare(
        model, tokens, target, base, mode, step, n_steps, hook_in, hook_out, kl, batch_size
    )
    with torch.inference_mode():
        return _curves(model, setup, _NaiveRunner, progress)


# ---------------------------------------------------------------------------- validation


def _prepare(
    model: HookedTransformer,
    tokens: torch.Tensor,
    target: torch.Tensor,
    base: torch.Tensor | None,
    mode: str,
    step: float,
    n_steps: int,
    hook_in: str,
    hook_out: str | None,
    kl: bool,
    batch_size: int | None,
) -> _Setup:
    """Validates a curves request (all checks before any work) and moves it to the model."""
    if not isinstance(model, HookedTransformer):
        raise TypeError(f"model must be a transformer_lens HookedTransformer, got {type(model)}")
    _check_no_hooks(model)
    cfg = model.cfg
    _check_path_args(mode, step, n_steps)
    _check_tokens(tokens, cfg.d_vocab, cfg.n_ctx)
    n_prompts = tokens.shape[0]
    _check_vectors("target", target, n_prompts, cfg.d_model)
    if base is not None:
        _check_vectors("base", base, n_prompts, cfg.d_model)
    first_block = _first_block(hook_in, cfg.n_layers)
    out_block = _out_block(hook_out, cfg.n_layers, first_block)
    if not isinstance(kl, bool):
        raise TypeError(f"kl must be a bool, got {type(kl)}")
    device = model.W_E.device
    path_dtype = torch.promote_types(cfg.dtype, torch.float32)
    return _Setup(
        tokens=tokens.to(device=device, dtype=torch.long),
        target=target.to(device=device, dtype=path_dtype),
        base=None if base is None else base.to(device=device, dtype=path_dtype),
        mode=mode,
        step=float(step),
        n_steps=n_steps,
        hook_in=hook_in,
        first_block=first_block,
        out_block=out_block,
        kl=kl,
        soft_cap=cfg.output_logits_soft_cap,
        rows=_rows_per_chunk(batch_size, kl, cfg.d_vocab_out * max(4, cfg.dtype.itemsize)),
    )


def _check_supported(model: HookedTransformer) -> None:
    """Raises NotImplementedError for architectures the last-position runner does not cover."""
    for field, unsupported, what in _UNSUPPORTED_CFG:
        value = getattr(model.cfg, field, None)
        if unsupported(value):
            raise NotImplementedError(
                f"perturbation_curves does not support {what} (cfg.{field}={value!r}); "
                "use naive_perturbation_curves for this model"
            )


def _check_no_hooks(model: HookedTransformer) -> None:
    """Raises RuntimeError if hooks are attached: the engine would not run them."""
    hooked = [name for name, hp in model.hook_dict.items() if hp.fwd_hooks or hp.bwd_hooks]
    if hooked:
        raise RuntimeError(
            f"model has hooks attached at {hooked[:5]}; the curves would ignore or mix them. "
            "Call model.reset_hooks(including_permanent=True) first"
        )


def _check_path_args(mode: str, step: float, n_steps: int) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        raise TypeError(f"step must be a number, got {type(step)}")
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be finite and > 0, got {step}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int):
        raise TypeError(f"n_steps must be an int, got {type(n_steps)}")
    if n_steps < 2:
        raise ValueError(f"n_steps must be >= 2 (step 0 plus at least one step), got {n_steps}")


def _check_tokens(tokens: torch.Tensor, d_vocab: int, n_ctx: int) -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.dtype.is_floating_point:
        raise TypeError("tokens must be an integer torch.Tensor [B, P]")
    if tokens.ndim != 2 or tokens.shape[0] == 0 or tokens.shape[1] == 0:
        raise ValueError(f"tokens must have shape [B, P] with B, P >= 1, got {tuple(tokens.shape)}")
    if tokens.shape[1] > n_ctx:
        raise ValueError(f"prompts have {tokens.shape[1]} tokens, the model's n_ctx is {n_ctx}")
    if tokens.min() < 0 or tokens.max() >= d_vocab:
        raise ValueError(f"token ids must lie in [0, {d_vocab}), the model's vocabulary")


def _check_vectors(name: str, x: torch.Tensor, n: int | None, d: int | None) -> None:
    """Checks ``x`` is a finite float tensor ``[n, d]`` (None: any size >= 1)."""
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point torch.Tensor [B, d_model]")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape [B, d_model], got {tuple(x.shape)}")
    expected = (x.shape[0] if n is None else n, x.shape[1] if d is None else d)
    if tuple(x.shape) != expected:
        raise ValueError(f"{name} must have shape {list(expected)}, got {list(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")


def _check_distinct(start: torch.Tensor, target: torch.Tensor) -> None:
    same = ((target - start).norm(dim=-1) == 0).nonzero().flatten().tolist()
    if same:
        raise ValueError(
            f"target equals the start point for rows {same[:10]}: absolute mode has no direction"
        )


def _first_block(hook_in: str, n_layers: int) -> int:
    match = _HOOK_RE.fullmatch(hook_in) if isinstance(hook_in, str) else None
    if match is None or int(match[1]) >= n_layers:
        raise ValueError(
            f"hook_in must be one of the forms {HOOK_IN_FORMS} with L < {n_layers}, got {hook_in!r}"
        )
    layer = int(match[1])
    first = layer if match[2] == "pre" else layer + 1
    if first >= n_layers:
        raise ValueError(f"hook_in {hook_in!r} is after the last block; nothing to perturb")
    return first


def _out_block(hook_out: str | None, n_layers: int, first_block: int) -> int:
    if hook_out is None:
        return n_layers - 1
    match = _HOOK_RE.fullmatch(hook_out) if isinstance(hook_out, str) else None
    if match is None or match[2] != "post" or int(match[1]) >= n_layers:
        raise ValueError(
            f"hook_out must be of the form {HOOK_OUT_FORMS} with M < {n_layers}, got {hook_out!r}"
        )
    if int(match[1]) < first_block:
        raise ValueError(
            f"hook_out {hook_out!r} comes before the first perturbed block {first_block}"
        )
    return int(match[1])


def _rows_per_chunk(batch_size: int | None, kl: bool, logits_row_bytes: int) -> int:
    if batch_size is None:
        return min(DEFAULT_ROWS, max(1, LOGITS_BYTES // logits_row_bytes)) if kl else DEFAULT_ROWS
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be an int or None, got {type(batch_size)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return batch_size


# ---------------------------------------------------------------------------- paths and curves


def _path_points(
    start: torch.Tensor,
    target: torch.Tensor,
    steps: torch.Tensor,
    mode: str,
    step: float,
    n_steps: int,
) -> torch.Tensor:
    """Path points ``[bp, len(steps), d]`` at step indices ``steps`` from start, target [bp, d]."""
    n = steps.to(device=start.device, dtype=start.dtype)[None, :, None]
    start, target = start[:, None, :], target[:, None, :]
    if mode == "absolute":
        delta = target - start
        return start + (step * n) * (delta / delta.norm(dim=-1, keepdim=True))
    fraction = n / (n_steps - 1)
    return (1 - fraction) * start + fraction * target


def _chunks(n_prompts: int, n_steps: int, rows: int) -> list[tuple[slice, slice, torch.Tensor]]:
    """(group, prompts, steps) of every chunk: a group of at most ``PREFIX_PROMPTS`` prompts, the
    chunk's prompts within it, and their steps (each prompt's in order from 0); a chunk has at most
    ``rows`` rows."""
    steps_per_chunk = min(n_steps, rows)
    prompts_per_chunk = max(1, rows // steps_per_chunk)
    chunks = []
    for g in range(0, n_prompts, PREFIX_PROMPTS):
        group = slice(g, min(g + PREFIX_PROMPTS, n_prompts))
        for p in range(group.start, group.stop, prompts_per_chunk):
            prompts = slice(p, min(p + prompts_per_chunk, group.stop))
            for s in range(0, n_steps, steps_per_chunk):
                chunks.append((group, prompts, torch.arange(s, min(s + steps_per_chunk, n_steps))))
    return chunks


def _curves(
    model: HookedTransformer,
    setup: _Setup,
    runner_type: type[_CachedPrefixRunner] | type[_NaiveRunner],
    progress: bool,
) -> Curves:
    """Runs every (prompt, step) row through a runner and compares it with the prompt's step 0.

    A runner serves one group of prompts. Step 0 is the first row of each prompt's first chunk;
    the later chunks of the prompt reuse it.
    """
    start = _own_activation(model, setup) if setup.base is None else setup.base
    distance = _distance(start, setup)
    l2 = torch.zeros(start.shape[0], setup.n_steps)
    kl = torch.zeros(start.shape[0], setup.n_steps) if setup.kl else None
    runner_group = None
    chunks = _chunks(start.shape[0], setup.n_steps, setup.rows)
    desc = f"{setup.mode} curves" + (" (naive)" if runner_type is _NaiveRunner else "")
    for group, prompts, steps in tqdm(chunks, disable=not progress, desc=desc, unit="chunk"):
        if group != runner_group:
            runner, runner_group = runner_type(model, setup, setup.tokens[group]), group
        x = _path_points(
            start[prompts], setup.target[prompts], steps, setup.mode, setup.step, setup.n_steps
        )
        out, logits = runner(x, slice(prompts.start - group.start, prompts.stop - group.start))
        if steps[0] == 0:
            ref_out = out[:, :1]
            ref_logp = None if logits is None else _log_probs(logits[:, :1], setup.soft_cap)
        columns = slice(int(steps[0]), int(steps[-1]) + 1)
        l2[prompts, columns] = _l2(out, ref_out)
        if kl is not None:
            kl[prompts, columns] = _kl(ref_logp, logits, setup.soft_cap)
    return Curves(l2=l2, kl=kl, distance=distance)


def _own_activation(model: HookedTransformer, setup: _Setup) -> torch.Tensor:
    """The prompts' activation at hook_in, last position: ``[B, d]`` (path dtype).

    The residual stream entering the first perturbed block is the activation at hook_in.
    """
    return torch.cat(
        [
            model(setup.tokens[g : g + PREFIX_PROMPTS], stop_at_layer=setup.first_block)[:, -1]
            for g in range(0, setup.tokens.shape[0], PREFIX_PROMPTS)
        ]
    ).to(setup.target.dtype)


def _distance(start: torch.Tensor, setup: _Setup) -> torch.Tensor:
    """``||T - x_0||`` ``[B]`` (CPU float32); absolute mode needs it > 0."""
    if setup.mode == "absolute":
        _check_distinct(start, setup.target)
    return (setup.target - start).norm(dim=-1).float().cpu()


def _l2(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``||out - ref||``: out ``[bp, bs, d]``, ref ``[bp, 1, d]`` -> ``[bp, bs]`` CPU float32."""
    return (out.float() - ref.float()).norm(dim=-1).cpu()


def _kl(ref_logp: torch.Tensor, logits: torch.Tensor, soft_cap: float | None) -> torch.Tensor:
    """``KL(p_ref || softmax(logits))``: ref_logp ``[bp, 1, V]``, logits ``[bp, bs, V]`` ->
    ``[bp, bs]`` (CPU float32).

    Runs ``KL_ROWS`` rows at a time so that each block's log-probabilities stay in cache (about
    3x faster than whole-chunk passes over a GPT-2-sized vocabulary).
    """
    p_ref = ref_logp.exp()
    kl = torch.empty(logits.shape[:2], dtype=torch.float32, device=logits.device)
    for i in range(logits.shape[0]):
        for j in range(0, logits.shape[1], KL_ROWS):
            logp = _log_probs(logits[i, j : j + KL_ROWS], soft_cap)
            kl[i, j : j + KL_ROWS] = (p_ref[i] * (ref_logp[i] - logp)).sum(dim=-1)
    return kl.cpu()


def _log_probs(logits: torch.Tensor, soft_cap: float | None) -> torch.Tensor:
    """Soft cap (when the model has one) and float32 log-softmax of logits ``[..., V]``."""
    return apply_softcap(logits, soft_cap).float().log_softmax(dim=-1)


# ---------------------------------------------------------------------------- the cached engine


class _BlockRunner:
    """One transformer block run on a few positions at a time, from its own weights.

    The block's ``ln1``, ``ln2`` and ``mlp`` modules act per position and are used as they are
    (see `FUSED_ACTIVATIONS` for the one MLP shortcut); attention is computed here from the
    block's weights. `run_prefix` runs the prompts' prefixes (positions 0..P-2, causal) and keeps
    their keys and values; `run_last` then runs path points at position P-1, scoring each against
    its prompt's prefix keys (shared by all steps, never copied) and its own key.
    """

    def __init__(self, block: torch.nn.Module):
        self.block = block
        self.attn = block.attn
        plain_mlp = type(getattr(block, "mlp", None)) is MLP
        self.fused_act = FUSED_ACTIVATIONS.get(block.cfg.act_fn) if plain_mlp else None
        self.prefix_k_t: torch.Tensor | None = None  # [B, H, d_head, P-1]
        self.prefix_v: torch.Tensor | None = None  # [B, H, P-1, d_head]

    def run_prefix(self, resid: torch.Tensor) -> torch.Tensor:
        """resid_pre ``[B, P-1, d_model]`` of the prefixes -> their resid_post; keeps K and V."""
        q, k, v = self._qkv(resid)
        self.prefix_k_t, self.prefix_v = k.transpose(-1, -2).contiguous(), v.contiguous()
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1 / self.attn.attn_scale)
        return self._finish(resid, z)

    def run_last(self, resid: torch.Tensor, prompts: slice) -> torch.Tensor:
        """resid_pre ``[bp, bs, d_model]`` at the last position of the prompts -> resid_post."""
        q, k, v = self._qkv(resid)
        prefix_scores = q @ self.prefix_k_t[prompts]  # [bp, H, bs, P-1]
        own_score = (q * k).sum(dim=-1, keepdim=True)  # [bp, H, bs, 1]
        scores = torch.cat([prefix_scores, own_score], dim=-1) / self.attn.attn_scale
        pattern = scores.softmax(dim=-1)
        z = pattern[..., :-1] @ self.prefix_v[prompts] + pattern[..., -1:] * v
        return self._finish(resid, z)

    def _qkv(self, resid: torch.Tensor) -> list[torch.Tensor]:
        """resid ``[b, n, d_model]`` -> q, k, v, each ``[b, H, n, d_head]``.

        Each projection is one matrix product broadcast over the heads' weights ``[H, d_model,
        d_head]``: as fast as a fused Q/K/V product here, with no re-laid-out weight copies.
        """
        b, n, d_model = resid.shape
        x = self.block.ln1(resid).reshape(b * n, d_model)
        attn = self.attn
        return [
            (x @ w + bias[:, None, :]).view(w.shape[0], b, n, w.shape[-1]).transpose(0, 1)
            for w, bias in ((attn.W_Q, attn.b_Q), (attn.W_K, attn.b_K), (attn.W_V, attn.b_V))
        ]

    def _finish(self, resid: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Output projection of z ``[b, H, n, d_head]``, residual adds and MLP -> resid_post."""
        b, n, d_model = resid.shape
        w_o = self.attn.W_O.reshape(-1, d_model)  # [H·d_head, d_model], a view
        z = z.transpose(1, 2).reshape(b * n, w_o.shape[0])
        resid = resid + torch.addmm(self.attn.b_O, z, w_o).view(b, n, d_model)
        if self.block.cfg.attn_only:
            return resid
        return resid + self._mlp(self.block.ln2(resid))

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        """The block's MLP on x ``[b, n, d_model]``; a plain MLP with a `FUSED_ACTIVATIONS`
        activation runs here with the fused kernel, any other through the module itself."""
        if self.fused_act is None:
            return self.block.mlp(x)
        mlp = self.block.mlp
        hidden = torch.addmm(mlp.b_in, x.reshape(-1, x.shape[-1]), mlp.W_in)
        return torch.addmm(mlp.b_out, self.fused_act(hidden), mlp.W_out).view(x.shape)


class _CachedPrefixRunner:
    """Runs path points from the input block on, last position only, with cached prefixes."""

    def __init__(self, model: HookedTransformer, setup: _Setup, tokens: torch.Tensor):
        """Runs the prefixes of tokens ``[g, P]`` (a group of the prompts) and keeps them."""
        last_block = model.cfg.n_layers - 1 if setup.kl else setup.out_block
        self.model, self.setup = model, setup
        prefix = model(tokens[:, :-1], stop_at_layer=setup.first_block)  # [g, P-1, d]
        self.blocks = []
        for layer in range(setup.first_block, last_block + 1):
            self.blocks.append(_BlockRunner(model.blocks[layer]))
            prefix = self.blocks[-1].run_prefix(prefix)

    def __call__(self, x: torch.Tensor, prompts: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Path points x ``[bp, bs, d]`` of the prompts -> resid at hook_out ``[bp, bs, d]`` and,
        with KL, next-token logits ``[bp, bs, V]``, else None."""
        model = self.model
        resid = x.to(model.cfg.dtype)
        for layer, block in enumerate(self.blocks, start=self.setup.first_block):
            resid = block.run_last(resid, prompts)
            if layer == self.setup.out_block:
                out = resid
        if not self.setup.kl:
            return out, None
        if model.cfg.normalization_type is not None:
            resid = model.ln_final(resid)
        logits = torch.addmm(model.b_U, resid.reshape(-1, resid.shape[-1]), model.W_U)
        return out, logits.view(*resid.shape[:-1], -1)


# ---------------------------------------------------------------------------- the naive reference


class _NaiveRunner:
    """Runs every path point through a full forward pass of its prompt, hooked at hook_in."""

    def __init__(self, model: HookedTransformer, setup: _Setup, tokens: torch.Tensor):
        """Serves the prompts tokens ``[g, P]`` (a group of the prompts)."""
        self.model, self.setup, self.tokens = model, setup, tokens

    def __call__(self, x: torch.Tensor, prompts: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Same contract as `_CachedPrefixRunner.__call__`."""
        model, setup = self.model, self.setup
        bp, bs, d_model = x.shape
        tokens = self.tokens[prompts].repeat_interleave(bs, dim=0)  # [bp·bs, P]
        rows = x.reshape(bp * bs, d_model).to(model.cfg.dtype)
        captured = {}

        def replace_last(act: torch.Tensor, hook: object) -> torch.Tensor:
            act[:, -1, :] = rows
            return act

        def capture_last(act: torch.Tensor, hook: object) -> None:
            captured["out"] = act[:, -1, :].clone()

        hooks = [
            (setup.hook_in, replace_last),
            (f"blocks.{setup.out_block}.hook_resid_post", capture_last),
        ]
        if not setup.kl:
            model.run_with_hooks(tokens, fwd_hooks=hooks, stop_at_layer=setup.out_block + 1)
            return captured["out"].view(bp, bs, d_model), None
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks, return_type="logits")
        return captured["out"].view(bp, bs, d_model), logits[:, -1, :].view(bp, bs, -1)
