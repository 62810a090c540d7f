"""A curves request: every argument checked before any work, then moved to the model's device."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from synthact.core.validate import check_positive_int
from synthact.method.engine import memory
from synthact.subjects.hooks import RESID_FORMS, resid_hook

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

MODES = ("absolute", "relative")


@dataclass
class Request:
    """A checked curves request on the model's device."""

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
    rows: int  # (prompt, step) rows per chunk
    group: int  # prompts whose prefixes are held at once
    kl_rows: int  # rows per block of the KL computation


def prepare(
    model: HookedTransformer,
    tokens: torch.Tensor,
    target: torch.Tensor,
    *,
    base: torch.Tensor | None,
    mode: str,
    step: float,
    n_steps: int,
    hook_in: str,
    hook_out: str | None,
    kl: bool,
    batch_size: int | None,
    share: int,
    tf32: bool,
    whole_prompts: bool,
) -> Request:
    """The checked request; ``whole_prompts``: a row holds its whole prompt (the slower runners),
    which sizes the chunks."""
    cfg = model.cfg
    check_path_args(mode, step, n_steps)
    check_tokens(tokens, cfg.d_vocab, cfg.n_ctx)
    n_prompts = tokens.shape[0]
    check_vectors("target", target, n_prompts, cfg.d_model)
    if base is not None:
        check_vectors("base", base, n_prompts, cfg.d_model)
    first_block = _first_block(hook_in, cfg.n_layers)
    out_block = _out_block(hook_out, cfg.n_layers, first_block)
    for name, flag in (("kl", kl), ("tf32", tf32)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag)}")
    share = check_positive_int("share", share)
    device = model.W_E.device
    free_bytes = memory.free_cuda_bytes(device) if device.type == "cuda" else None
    rows = memory.chunk_rows(
        cfg,
        device,
        kl,
        positions=tokens.shape[1] if whole_prompts else 1,
        free_bytes=free_bytes,
        share=share,
        override=batch_size,
    )
    path_dtype = torch.promote_types(cfg.dtype, torch.float32)
    return Request(
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
        rows=rows,
        group=memory.prefix_group(cfg, tokens.shape[1], free_bytes, share),
        kl_rows=memory.KL_ROWS if device.type == "cpu" else rows,
    )


def check_model(model: HookedTransformer) -> None:
    """A TransformerLens model without hooks attached (the engine would not run them)."""
    from transformer_lens import HookedTransformer

    if not isinstance(model, HookedTransformer):
        raise TypeError(f"model must be a transformer_lens HookedTransformer, got {type(model)}")
    hooked = [name for name, hp in model.hook_dict.items() if hp.fwd_hooks or hp.bwd_hooks]
    if hooked:
        raise RuntimeError(
            f"model has hooks attached at {hooked[:5]}; the curves would ignore or mix them. "
            "Call model.reset_hooks(including_permanent=True) first"
        )


def check_path_args(mode: str, step: float, n_steps: int) -> None:
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


def check_tokens(tokens: torch.Tensor, d_vocab: int, n_ctx: int) -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.dtype.is_floating_point:
        raise TypeError("tokens must be an integer torch.Tensor [B, P]")
    if tokens.ndim != 2 or tokens.shape[0] == 0 or tokens.shape[1] == 0:
        raise ValueError(f"tokens must have shape [B, P] with B, P >= 1, got {tuple(tokens.shape)}")
    if tokens.shape[1] > n_ctx:
        raise ValueError(f"prompts have {tokens.shape[1]} tokens, the model's n_ctx is {n_ctx}")
    if tokens.min() < 0 or tokens.max() >= d_vocab:
        raise ValueError(f"token ids must lie in [0, {d_vocab}), the model's vocabulary")


def check_vectors(name: str, x: torch.Tensor, n: int | None, d: int | None) -> None:
    """``x`` is a finite float tensor ``[n, d]`` (None: any size >= 1)."""
    if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point torch.Tensor [B, d_model]")
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape [B, d_model], got {tuple(x.shape)}")
    expected = (x.shape[0] if n is None else n, x.shape[1] if d is None else d)
    if tuple(x.shape) != expected:
        raise ValueError(f"{name} must have shape {list(expected)}, got {list(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")


def check_distinct(start: torch.Tensor, target: torch.Tensor) -> None:
    same = ((target - start).norm(dim=-1) == 0).nonzero().flatten().tolist()
    if same:
        raise ValueError(
            f"target equals the start point for rows {same[:10]}: absolute mode has no direction"
        )


def _first_block(hook_in: str, n_layers: int) -> int:
    parsed = resid_hook(hook_in)
    if parsed is None or parsed[0] >= n_layers:
        raise ValueError(
            f"hook_in must be one of the forms {RESID_FORMS} with L < {n_layers}, got {hook_in!r}"
        )
    layer, where = parsed
    first = layer if where == "pre" else layer + 1
    if first >= n_layers:
        raise ValueError(f"hook_in {hook_in!r} is after the last block; nothing to perturb")
    return first


def _out_block(hook_out: str | None, n_layers: int, first_block: int) -> int:
    if hook_out is None:
        return n_layers - 1
    parsed = resid_hook(hook_out)
    if parsed is None or parsed[1] != "post" or parsed[0] >= n_layers:
        raise ValueError(
            "hook_out must be of the form blocks.M.hook_resid_post with "
            f"M < {n_layers}, got {hook_out!r}"
        )
    if parsed[0] < first_block:
        raise ValueError(
            f"hook_out {hook_out!r} comes before the first perturbed block {first_block}"
        )
    return parsed[0]
