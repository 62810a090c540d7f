"""Perturbation paths from a base activation towards a target, and the curves measured along them.

A path point replaces the prompt's residual stream at ``hook_in``, last position only; with causal
attention nothing before it changes, so the prefix runs once and only the last position is
recomputed (`synthact.method.engine.last_position`). Curves, at the last position, against step 0:
``l2[b, n] = ||resid_out(x_n) - resid_out(x_0)||`` at ``hook_out`` and
``kl[b, n] = KL(p(x_0) || p(x_n))`` of the next-token distributions. See docs/method.md.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from transformer_lens import HookedTransformer

from synthact.method.engine import last_position
from synthact.method.engine.request import (
    Request,
    check_distinct,
    check_model,
    check_path_args,
    check_vectors,
    prepare,
)
from synthact.method.engine.runners import BlockCacheRunner, FastRunner, NaiveRunner, Runner

_NO_CACHED_PREFIX = (
    (
        "attention_dir",
        lambda v: v != "causal",
        "non-causal attention (a perturbed last position changes the earlier ones)",
    ),
    ("n_devices", lambda v: v != 1, "a model split over devices"),
    ("positional_embedding_type", lambda v: v == "shortformer", "shortformer positions"),
)
"""What rules out running the prefix once: such models run the naive reference."""

_RUNNERS = {"fast": FastRunner, "generic": BlockCacheRunner, "naive": NaiveRunner}
"""The runner of each `engine_path`."""
_SLOW_PATHS = {
    "generic": "TransformerLens's own blocks on the cached prefix (exact, slower)",
    "naive": "the naive full-forward reference",
}


class SlowPathWarning(UserWarning):
    """`perturbation_curves` runs a slower exact path for a model the fast runner does not cover."""


@dataclass
class Curves:
    """Curves of B prompts over n_steps points (CPU float32): ``l2`` ``[B, n_steps]``, ``kl``
    ``[B, n_steps]`` or None, ``distance`` ``[B]`` = ``||T - x_0||``."""

    l2: torch.Tensor
    kl: torch.Tensor | None
    distance: torch.Tensor


def perturbation_path(
    base: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "absolute",
    step: float = 0.5,
    n_steps: int = 101,
) -> torch.Tensor:
    """Points ``[B, n_steps, d]`` from ``base`` A ``[B, d]`` towards ``target`` T ``[B, d]``.

    absolute: ``x_n = A + step·n·(T - A)/||T - A||`` (may pass T); relative:
    ``x_n = (1 - n/(n_steps-1))·A + n/(n_steps-1)·T``. In the inputs' dtype, at least float32.
    """
    check_path_args(mode, step, n_steps)
    check_vectors("base", base, None, None)
    check_vectors("target", target, base.shape[0], base.shape[1])
    dtype = torch.promote_types(torch.promote_types(base.dtype, target.dtype), torch.float32)
    base, target = base.to(dtype), target.to(device=base.device, dtype=dtype)
    if mode == "absolute":
        check_distinct(base, target)
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
    progress: Callable[[int], None] | None = None,
    share: int = 1,
    tf32: bool = False,
    naive: bool = False,
) -> Curves:
    """L2 (and with ``kl`` KL) curves along the paths from each prompt's activation at ``hook_in``
    towards ``target``.

    Args:
        model: a ``HookedTransformer`` without hooks attached.
        tokens: ``[B, P]`` base prompts; position ``P - 1`` is perturbed.
        target: ``[B, d_model]`` targets T.
        base: ``[B, d_model]`` start points replacing the prompt's own activation (plateaus).
        mode, step, n_steps: the path (see `perturbation_path`).
        hook_in: ``blocks.L.hook_resid_pre`` or ``blocks.L.hook_resid_post``.
        hook_out: ``blocks.M.hook_resid_post`` (default: the last block's).
        batch_size: (prompt, step) rows per chunk; None sizes them from the device.
        progress: called after each chunk with the (prompt, step) rows it ran.
        share: processes computing on the same CUDA device at once (each sizes its chunks
            from its share of the free memory).
        tf32: allow TF32 CUDA matrix products during the call.
        naive: run the reference, a full forward pass per path point.

    A model the fast runner does not cover runs an exact slower path, with a `SlowPathWarning`.
    """
    check_model(model)
    runner_type = NaiveRunner if naive else _runner_type(model)
    request = prepare(
        model,
        tokens,
        target,
        base=base,
        mode=mode,
        step=step,
        n_steps=n_steps,
        hook_in=hook_in,
        hook_out=hook_out,
        kl=kl,
        batch_size=batch_size,
        share=share,
        tf32=tf32,
        whole_prompts=runner_type is not FastRunner,
    )
    with torch.inference_mode(), _tf32_matmuls(tf32):
        return _curves(model, request, runner_type(model, request), progress)


def engine_path(model: HookedTransformer) -> tuple[str, str | None]:
    """The path `perturbation_curves` takes for the model: ``"fast"`` (the last-position runner),
    ``"generic"`` (TransformerLens's own blocks on the cached prefix) or ``"naive"`` (the full
    forward reference), and the setting that rules out a faster one (None for ``"fast"``)."""
    problem = last_position.cfg_problem(model, _NO_CACHED_PREFIX)
    if problem is not None:
        return "naive", problem
    problem = last_position.unsupported(model)
    return ("fast", None) if problem is None else ("generic", problem)


def _runner_type(model: HookedTransformer) -> type[Runner]:
    """The fastest exact runner for the model; a slower one comes with a `SlowPathWarning`."""
    path, problem = engine_path(model)
    if problem is not None:
        _warn_slow(problem, _SLOW_PATHS[path])
    return _RUNNERS[path]


def _warn_slow(problem: str, path: str) -> None:
    warnings.warn(
        f"perturbation_curves: the fast last-position runner does not cover {problem}; "
        f"running {path}",
        SlowPathWarning,
        stacklevel=4,  # the caller of perturbation_curves
    )


@contextlib.contextmanager
def _tf32_matmuls(enabled: bool) -> Iterator[None]:
    """Allows TF32 CUDA matrix products inside the block when ``enabled``."""
    if not enabled:
        yield
        return
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


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


def _chunks(n_prompts: int, n_steps: int, rows: int, group: int) -> list[tuple[slice, ...]]:
    """(group, prompts, steps) of every chunk: at most ``group`` prompts held at once, at most
    ``rows`` rows per chunk, each prompt's steps in order from 0."""
    steps_per_chunk = min(n_steps, rows)
    prompts_per_chunk = max(1, rows // steps_per_chunk)
    chunks = []
    for g in range(0, n_prompts, group):
        prompt_group = slice(g, min(g + group, n_prompts))
        for p in range(prompt_group.start, prompt_group.stop, prompts_per_chunk):
            prompts = slice(p, min(p + prompts_per_chunk, prompt_group.stop))
            for s in range(0, n_steps, steps_per_chunk):
                chunks.append((prompt_group, prompts, slice(s, min(s + steps_per_chunk, n_steps))))
    return chunks


def _curves(
    model: HookedTransformer,
    request: Request,
    runner: Runner,
    progress: Callable[[int], None] | None,
) -> Curves:
    """Every (prompt, step) row through ``runner``, compared with the prompt's step 0 (the first
    row of its first chunk). Curves stay on the device until every chunk has run."""
    start = _own_activation(model, request) if request.base is None else request.base
    distance = _distance(start, request)
    n_prompts, device = start.shape[0], start.device
    l2 = torch.zeros(n_prompts, request.n_steps, device=device)
    kl = torch.zeros(n_prompts, request.n_steps, device=device) if request.kl else None
    steps = torch.arange(request.n_steps, device=device)
    loaded = None
    chunks = _chunks(n_prompts, request.n_steps, request.rows, request.group)
    for group, prompts, columns in chunks:
        if group != loaded:
            runner.load(request.tokens[group])
            loaded = group
        ends = (start[prompts], request.target[prompts])
        x = _path_points(*ends, steps[columns], request.mode, request.step, request.n_steps)
        out, logits = runner(x, slice(prompts.start - group.start, prompts.stop - group.start))
        if columns.start == 0:
            ref_out = out[:, :1]
            ref_logp = None if logits is None else _log_probs(logits[:, :1])
        l2[prompts, columns] = _l2(out, ref_out)
        if kl is not None:
            kl[prompts, columns] = _kl(ref_logp, logits, request.kl_rows)
        if progress is not None:
            progress((prompts.stop - prompts.start) * (columns.stop - columns.start))
    return Curves(l2=l2.cpu(), kl=None if kl is None else kl.cpu(), distance=distance)


def _own_activation(model: HookedTransformer, request: Request) -> torch.Tensor:
    """The prompts' activation at hook_in, last position, ``[B, d]``: the residual stream
    entering the first perturbed block."""
    group = request.group
    return torch.cat(
        [
            model(request.tokens[g : g + group], stop_at_layer=request.first_block)[:, -1]
            for g in range(0, request.tokens.shape[0], group)
        ]
    ).to(request.target.dtype)


def _distance(start: torch.Tensor, request: Request) -> torch.Tensor:
    """``||T - x_0||`` ``[B]`` (CPU float32); absolute mode needs it > 0."""
    if request.mode == "absolute":
        check_distinct(start, request.target)
    return (request.target - start).norm(dim=-1).float().cpu()


def _l2(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``||out - ref||``: out ``[bp, bs, d]``, ref ``[bp, 1, d]`` -> ``[bp, bs]`` float32."""
    return (out.float() - ref.float()).norm(dim=-1)


def _kl(ref_logp: torch.Tensor, logits: torch.Tensor, block_rows: int) -> torch.Tensor:
    """``KL(p_ref || softmax(logits))``: ref_logp ``[bp, 1, V]``, logits ``[bp, bs, V]`` ->
    ``[bp, bs]`` float32, in blocks of at most ``block_rows`` rows."""
    bp, bs = logits.shape[:2]
    p_ref = ref_logp.exp().transpose(1, 2)  # [bp, V, 1]
    steps = min(bs, block_rows)
    prompts = max(1, block_rows // steps)
    kl = torch.empty(bp, bs, dtype=torch.float32, device=logits.device)
    for i in range(0, bp, prompts):
        for j in range(0, bs, steps):
            rows = (slice(i, i + prompts), slice(j, j + steps))
            log_ratio = _log_probs(logits[rows])
            torch.sub(ref_logp[rows[0]], log_ratio, out=log_ratio)  # in place: no second copy
            kl[rows] = (log_ratio @ p_ref[rows[0]]).squeeze(-1)
    return kl


def _log_probs(logits: torch.Tensor) -> torch.Tensor:
    """Float32 log-softmax of logits ``[..., V]`` (a new tensor)."""
    return logits.float().log_softmax(dim=-1)
