"""Activations at a hook of a subject's model: the last position of each prompt.

The forward pass stops when the hook fires, so nothing after it is computed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from synthact.core.validate import check_positive_int

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer
    from transformer_lens.hook_points import HookPoint


class _HookReached(Exception):
    """Raised by the capturing hook so that nothing after the hook is computed."""


def collect_activations(
    model: HookedTransformer,
    tokens: torch.Tensor,
    hook: str,
    *,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """The activation ``[n, d]`` (float32 CPU) at ``hook``, last position of ``tokens [n, pos]``;
    ``progress`` is called with the prompts of each batch once it has run.

    The forward pass stops when the hook fires, so nothing after it is computed; the result equals
    ``run_with_cache(tokens)[hook][:, -1]``. No BOS is added.
    """
    if hook not in model.hook_dict:
        raise ValueError(f"{hook!r} is not a hook of this model (see model.hook_dict)")
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.is_floating_point():
        raise ValueError("tokens must be an integer tensor [n_prompts, n_positions]")
    if tokens.numel() == 0:
        raise ValueError("tokens is empty: need at least one prompt of at least one token")
    check_positive_int("batch_size", batch_size)
    captured: list[torch.Tensor] = []

    def capture(act: torch.Tensor, hook: HookPoint) -> None:
        if act.ndim != 3:
            raise ValueError(f"{hook.name} gives activations {list(act.shape)}; need [b, pos, d]")
        captured.append(act[:, -1].float().cpu())
        raise _HookReached

    starts = range(0, len(tokens), batch_size)
    with torch.no_grad(), model.hooks(fwd_hooks=[(hook, capture)]):
        for start in starts:
            n_before = len(captured)
            batch = tokens[start : start + batch_size]
            with contextlib.suppress(_HookReached):
                model(batch.to(model.cfg.device), return_type=None)
            if len(captured) == n_before:
                raise RuntimeError(f"hook {hook!r} never fired during the forward pass")
            if progress is not None:
                progress(len(batch))
    return torch.cat(captured)
