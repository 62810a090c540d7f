"""The perturbation engine: paths from a base activation towards a target, and the resulting curves.

A perturbed vector ``x_n`` replaces the base prompt's residual stream at ``hook_in``, last position
only. With causal attention the earlier positions are untouched, so only the last position changes
downstream. ``perturbation_curves`` exploits this: it runs every prompt's prefix once, keeps the
prefix keys and values, and then recomputes only the last position, block by block
(`synthact.engine.last_position`), for many (prompt, step) rows at a time.
``naive_perturbation_curves`` is the plain reference (a full forward pass with a hook for every
row); both return the same `Curves`.

Curves (REPLICATION.md, "Perturbation"), measured at the last position:

- ``l2[b, n] = ||resid_out(x_n) - resid_out(x_0)||`` at ``hook_out``;
- ``kl[b, n] = KL(p(x_0) || p(x_n))`` of the next-token distributions, summed over the vocabulary.

The reference point is step 0 (``x_0 = A``, or ``base`` when given), computed the same way as
the other steps, so ``l2[:, 0] == 0`` and ``kl[:, 0] == 0`` exactly. Absolute-mode truncation
(the first ``floor(||T - A|| / step)`` points) is left to the metrics, which read ``distance``.

Chunks of rows are sized from the device (`chunk_rows`); curves are assembled on the device and
copied to the host once per call.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.cache.key_value_cache_entry import TransformerLensKeyValueCacheEntry
from transformer_lens.utilities.activation_functions import softcap_enabled

from synthact.engine import last_position

MODES = ("absolute", "relative")
HOOK_IN_FORMS = ("blocks.L.hook_resid_pre", "blocks.L.hook_resid_post")
HOOK_OUT_FORMS = ("blocks.M.hook_resid_post",)

CPU_ROWS = 256
"""(prompt, step) rows per chunk on CPU. With 101 steps this is 2 prompts x 101 steps, the fastest
chunk measured at GPT-2 size on one CPU core (matrix products of 202 rows run near peak while a
chunk's MLP activations still fit in cache)."""

CPU_LOGITS_BYTES = 64 * 2**20
"""On CPU with KL, rows per chunk are also bounded so that one chunk's logits take at most this."""

CUDA_MEMORY_FRACTION = 0.5
"""On CUDA a chunk may take this fraction of the device memory free at the start of a call (of
the caller's share of it, see `chunk_rows`)."""

CUDA_PREFIX_FRACTION = 0.25
"""On CUDA a group of prompts' prefixes may take this fraction of the free memory (of the share)."""

CUDA_MAX_ROWS = 32768
"""Rows per chunk on CUDA at most: larger chunks gain little (measured on an H200 at GPT-2 size:
5.4, 4.7 us per perturbed forward at 8192, 32768 rows)."""

PREFIX_PROMPTS = 256
"""Prompts whose prefix keys and values are held at once on CPU (about 150 MB at GPT-2 size with
10-token prompts); larger requests run in groups of this many prompts."""

KL_ROWS = 16
"""Rows per block of the vocabulary-wide KL computation on CPU, where a block's log-probabilities
stay in cache (about 3x faster than whole-chunk passes over GPT-2's vocabulary). On a GPU a whole
chunk is one block."""

_HOOK_RE = re.compile(r"blocks\.(\d+)\.hook_resid_(pre|post)")

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


class SlowPathWarning(UserWarning):
    """`perturbation_curves` runs a slower exact path for a model the fast runner does not cover."""


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
    rows: int  # (prompt, step) rows per chunk
    group: int  # prompts whose prefixes are held at once
    kl_rows: int  # rows per block of the KL computation


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
    share: int | None = None,
    tf32: bool = False,
) -> Curves:
    """L2 (and optionally KL) curves along perturbation paths, recomputing only the last position.

    Each prompt's prefix runs once; the prefix keys and values of every block from the input block
    on are kept, and the last position alone is recomputed for chunks of (prompt, step) rows, its
    attention reading the shared prefix keys and values (broadcast over steps, never copied).
    A model whose blocks the last-position runner does not cover runs TransformerLens's own
    blocks on the cached prefix instead, and one whose prefix cannot be cached (non-causal
    attention, ...) runs the naive reference; both warn with `SlowPathWarning`.

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
        batch_size: (prompt, step) rows per chunk; None sizes chunks from the device (see
            `chunk_rows`).
        progress: show a progress bar over chunks.
        share: on CUDA, the number of workers sharing the device, each sizing its chunks for its
            share of the free memory; None reads ``PYTEST_XDIST_WORKER_COUNT`` (default 1).
        tf32: allow TF32 matrix products on CUDA during the call (faster, about 1e-3 relative
            precision); the default leaves the global setting as it is.

    Returns:
        `Curves` with CPU float32 tensors.
    """
    _check_model(model)
    request = (tokens, target, base, mode, step, n_steps, hook_in, hook_out, kl, batch_size, share)
    return _run(model, _runner_type(model), request, tf32, progress)


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
    share: int | None = None,
    tf32: bool = False,
) -> Curves:
    """Reference implementation of `perturbation_curves` (same arguments, same result).

    For every (prompt, step) it runs a full forward pass of the prompt (``batch_size`` rows at a
    time) with a hook replacing ``hook_in`` at the last position, stopping after ``hook_out``'s
    block when no KL is needed.
    """
    _check_model(model)
    request = (tokens, target, base, mode, step, n_steps, hook_in, hook_out, kl, batch_size, share)
    return _run(model, _NaiveRunner, request, tf32, progress)


def _run(
    model: HookedTransformer, runner_type: type[_Runner], request: tuple, tf32: bool, progress: bool
) -> Curves:
    """Validates a curves request (the public functions' arguments, in order) and runs it."""
    setup = _prepare(model, *request, tf32, runner_type)
    with torch.inference_mode(), _tf32_matmuls(tf32):
        return _curves(model, setup, runner_type(model, setup), progress)


# ---------------------------------------------------------------------------- chunk sizes


def chunk_rows(
    cfg: HookedTransformerConfig,
    device: torch.device | str,
    kl: bool,
    *,
    positions: int = 1,
    free_bytes: int | None = None,
    share: int = 1,
    override: int | None = None,
) -> int:
    """(prompt, step) rows per chunk of a curves request.

    CPU (and other non-CUDA devices): ``CPU_ROWS``, and with KL at most as many rows as fit their
    logits in ``CPU_LOGITS_BYTES`` (cache-sized chunks run fastest on a few cores). CUDA: as many
    rows as ``CUDA_MEMORY_FRACTION`` of the free memory holds (each of ``share`` workers on the
    device sizing for its share), at most ``CUDA_MAX_ROWS``.

    Args:
        cfg: the model's config.
        device: where the model runs.
        kl: whether rows run to the logits.
        positions: positions each row holds: 1 for the engine, the prompt length for the naive
            reference (which also computes logits at every position).
        free_bytes: free device memory; None measures it (CUDA only).
        share: workers sharing the device.
        override: an explicit number of rows, returned as it is.
    """
    if override is not None:
        return _check_positive_int("batch_size", override)
    if torch.device(device).type != "cuda":
        if not kl:
            return CPU_ROWS
        logits_row_bytes = positions * cfg.d_vocab_out * max(4, cfg.dtype.itemsize)
        return max(1, min(CPU_ROWS, CPU_LOGITS_BYTES // logits_row_bytes))
    free = _free_cuda_bytes(device) if free_bytes is None else free_bytes
    budget = int(CUDA_MEMORY_FRACTION * free) // share
    return max(1, min(CUDA_MAX_ROWS, budget // (positions * _row_bytes(cfg, kl))))


def _prefix_group(
    cfg: HookedTransformerConfig, prompt_len: int, free_bytes: int | None, share: int
) -> int:
    """Prompts whose prefix keys and values are held at once: ``PREFIX_PROMPTS`` off CUDA
    (``free_bytes`` None); on CUDA as many as ``CUDA_PREFIX_FRACTION`` of the free memory holds
    (their prefix run and, twice over, their keys and values)."""
    if free_bytes is None:
        return PREFIX_PROMPTS
    n_kv = cfg.n_key_value_heads or cfg.n_heads
    kv_bytes = 2 * 2 * cfg.n_layers * n_kv * cfg.d_head * cfg.dtype.itemsize
    per_prompt = prompt_len * (_row_bytes(cfg, False) + kv_bytes)
    return max(1, int(CUDA_PREFIX_FRACTION * free_bytes) // share // per_prompt)


def _row_bytes(cfg: HookedTransformerConfig, kl: bool) -> int:
    """CUDA bytes one row of a chunk holds at its peak, generously: one block's activations and,
    with KL, its logits, their float32 copy and float32 log-probabilities."""
    n_kv = cfg.n_key_value_heads or cfg.n_heads
    width = 3 * (cfg.d_mlp or 0) + 8 * cfg.d_model + 2 * (cfg.n_heads + 2 * n_kv) * cfg.d_head
    logits = cfg.d_vocab_out * (cfg.dtype.itemsize + 8) if kl else 0
    return width * cfg.dtype.itemsize + logits


def _free_cuda_bytes(device: torch.device | str) -> int:
    """Free memory of a CUDA device, counting what this process's allocator has reserved but
    not handed out."""
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def _default_share() -> int:
    """Workers sharing a device under pytest-xdist (``PYTEST_XDIST_WORKER_COUNT``), else 1."""
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


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
    share: int | None,
    tf32: bool,
    runner_type: type[_Runner],
) -> _Setup:
    """Validates a curves request (all checks before any work) and moves it to the model.

    The chunk size depends on ``runner_type``: the slower runners' rows hold whole prompts (the
    naive reference's activations, the block-cache runner's copies of the prefix keys/values).
    """
    cfg = model.cfg
    _check_path_args(mode, step, n_steps)
    _check_tokens(tokens, cfg.d_vocab, cfg.n_ctx)
    n_prompts = tokens.shape[0]
    _check_vectors("target", target, n_prompts, cfg.d_model)
    if base is not None:
        _check_vectors("base", base, n_prompts, cfg.d_model)
    first_block = _first_block(hook_in, cfg.n_layers)
    out_block = _out_block(hook_out, cfg.n_layers, first_block)
    for name, flag in (("kl", kl), ("tf32", tf32)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag)}")
    share = _default_share() if share is None else _check_positive_int("share", share)
    device = model.W_E.device
    free_bytes = _free_cuda_bytes(device) if device.type == "cuda" else None
    positions = 1 if runner_type is _FastRunner else tokens.shape[1]
    rows = chunk_rows(
        cfg,
        device,
        kl,
        positions=positions,
        free_bytes=free_bytes,
        share=share,
        override=batch_size,
    )
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
        rows=rows,
        group=_prefix_group(cfg, tokens.shape[1], free_bytes, share),
        kl_rows=KL_ROWS if device.type == "cpu" else rows,
    )


def _check_model(model: HookedTransformer) -> None:
    if not isinstance(model, HookedTransformer):
        raise TypeError(f"model must be a transformer_lens HookedTransformer, got {type(model)}")
    _check_no_hooks(model)


def _runner_type(model: HookedTransformer) -> type[_Runner]:
    """The fastest exact runner for the model; a slower one comes with a `SlowPathWarning`."""
    problem = last_position.cfg_problem(model, _NO_CACHED_PREFIX)
    if problem is not None:
        _warn_slow(problem, "the naive full-forward reference")
        return _NaiveRunner
    problem = last_position.unsupported(model)
    if problem is not None:
        _warn_slow(problem, "TransformerLens's own blocks on the cached prefix (exact, slower)")
        return _BlockCacheRunner
    return _FastRunner


def _warn_slow(problem: str, path: str) -> None:
    warnings.warn(
        f"perturbation_curves: the fast last-position runner does not cover {problem}; "
        f"running {path}",
        SlowPathWarning,
        stacklevel=4,  # the caller of perturbation_curves
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


def _check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, got {type(value)}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


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


def _chunks(n_prompts: int, n_steps: int, rows: int, group: int) -> list[tuple[slice, ...]]:
    """(group, prompts, steps) of every chunk: a group of at most ``group`` prompts, the chunk's
    prompts within it, and their steps (each prompt's in order from 0); a chunk has at most
    ``rows`` rows."""
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


def _curves(model: HookedTransformer, setup: _Setup, runner: _Runner, progress: bool) -> Curves:
    """Runs every (prompt, step) row through a runner and compares it with the prompt's step 0.

    A runner serves one group of prompts at a time. Step 0 is the first row of each prompt's
    first chunk; the later chunks of the prompt reuse it. The curves stay on the device until
    every chunk has run.
    """
    start = _own_activation(model, setup) if setup.base is None else setup.base
    distance = _distance(start, setup)
    n_prompts, device = start.shape[0], start.device
    l2 = torch.zeros(n_prompts, setup.n_steps, device=device)
    kl = torch.zeros(n_prompts, setup.n_steps, device=device) if setup.kl else None
    steps = torch.arange(setup.n_steps, device=device)
    loaded = None
    chunks = _chunks(n_prompts, setup.n_steps, setup.rows, setup.group)
    desc = f"{setup.mode} curves" + (" (naive)" if isinstance(runner, _NaiveRunner) else "")
    for group, prompts, columns in tqdm(chunks, disable=not progress, desc=desc, unit="chunk"):
        if group != loaded:
            runner.load(setup.tokens[group])
            loaded = group
        ends = (start[prompts], setup.target[prompts])
        x = _path_points(*ends, steps[columns], setup.mode, setup.step, setup.n_steps)
        out, logits = runner(x, slice(prompts.start - group.start, prompts.stop - group.start))
        if columns.start == 0:
            ref_out = out[:, :1]
            ref_logp = None if logits is None else _log_probs(logits[:, :1])
        l2[prompts, columns] = _l2(out, ref_out)
        if kl is not None:
            kl[prompts, columns] = _kl(ref_logp, logits, setup.kl_rows)
    return Curves(l2=l2.cpu(), kl=None if kl is None else kl.cpu(), distance=distance)


def _own_activation(model: HookedTransformer, setup: _Setup) -> torch.Tensor:
    """The prompts' activation at hook_in, last position: ``[B, d]`` (path dtype).

    The residual stream entering the first perturbed block is the activation at hook_in.
    """
    return torch.cat(
        [
            model(setup.tokens[g : g + setup.group], stop_at_layer=setup.first_block)[:, -1]
            for g in range(0, setup.tokens.shape[0], setup.group)
        ]
    ).to(setup.target.dtype)


def _distance(start: torch.Tensor, setup: _Setup) -> torch.Tensor:
    """``||T - x_0||`` ``[B]`` (CPU float32); absolute mode needs it > 0 (one check per call)."""
    if setup.mode == "absolute":
        _check_distinct(start, setup.target)
    return (setup.target - start).norm(dim=-1).float().cpu()


def _l2(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``||out - ref||``: out ``[bp, bs, d]``, ref ``[bp, 1, d]`` -> ``[bp, bs]`` float32."""
    return (out.float() - ref.float()).norm(dim=-1)


def _kl(ref_logp: torch.Tensor, logits: torch.Tensor, block_rows: int) -> torch.Tensor:
    """``KL(p_ref || softmax(logits))``: ref_logp ``[bp, 1, V]``, logits ``[bp, bs, V]`` ->
    ``[bp, bs]`` float32, in blocks of at most ``block_rows`` rows (see `KL_ROWS`)."""
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


def _logits(model: HookedTransformer, resid: torch.Tensor) -> torch.Tensor:
    """Next-token logits of the last block's resid_post ``[bp, bs, d]`` -> ``[bp, bs, V]``, as
    the model computes them: final norm, unembedding, output soft cap (Gemma-2)."""
    if model.cfg.normalization_type is not None:
        resid = model.ln_final(resid)
    logits = torch.addmm(model.b_U, resid.reshape(-1, resid.shape[-1]), model.W_U)
    cap = model.cfg.output_logits_soft_cap
    if softcap_enabled(cap):
        logits = logits.div_(cap).tanh_().mul_(cap)  # cap·tanh(logits / cap), in place
    return logits.view(*resid.shape[:-1], -1)


# ---------------------------------------------------------------------------- runners


class _Runner:
    """Runs path points at the last position of a group of prompts.

    `load` takes a group's tokens ``[g, P]``; calling the runner with path points ``[bp, bs, d]``
    of the group's ``prompts`` returns resid at hook_out ``[bp, bs, d]`` and, with KL, next-token
    logits ``[bp, bs, V]`` (else None). Subclasses run one block in `_block`.
    """

    def __init__(self, model: HookedTransformer, setup: _Setup):
        self.model, self.setup = model, setup
        last_block = model.cfg.n_layers - 1 if setup.kl else setup.out_block
        self.layers = range(setup.first_block, last_block + 1)

    def load(self, tokens: torch.Tensor) -> None:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, prompts: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
        resid = x.to(self.model.cfg.dtype)
        for layer in self.layers:
            resid = self._block(layer, resid, prompts)
            if layer == self.setup.out_block:
                out = resid
        return out, _logits(self.model, resid) if self.setup.kl else None

    def _block(self, layer: int, resid: torch.Tensor, prompts: slice) -> torch.Tensor:
        """resid_pre ``[bp, bs, d]`` of block ``layer`` for rows of ``prompts`` -> resid_post."""
        raise NotImplementedError

    def _prefix(self, tokens: torch.Tensor) -> torch.Tensor:
        """The residual stream of the prefixes of tokens ``[g, P]`` (positions 0..P-2) entering
        the first runner block: ``[g, P-1, d]``."""
        return self.model(tokens[:, :-1], stop_at_layer=self.layers[0])


class _FastRunner(_Runner):
    """The blocks' last position from their cached prefix keys and values (`LastPositionBlock`)."""

    def __init__(self, model: HookedTransformer, setup: _Setup):
        super().__init__(model, setup)
        self.blocks = {i: last_position.LastPositionBlock(model.blocks[i]) for i in self.layers}

    def load(self, tokens: torch.Tensor) -> None:
        resid = self._prefix(tokens)
        for layer in self.layers:
            resid = self.blocks[layer].run_prefix(resid)

    def _block(self, layer: int, resid: torch.Tensor, prompts: slice) -> torch.Tensor:
        return self.blocks[layer](resid, prompts)


class _BlockCacheRunner(_Runner):
    """TransformerLens's own blocks run on the last position with the prefix keys and values in
    frozen KV-cache entries (copied for every row): exact for anything TransformerLens caches."""

    def load(self, tokens: torch.Tensor) -> None:
        """Runs the prefixes through the blocks, keeping each one's KV-cache keys and values."""
        resid, self.cache = self._prefix(tokens), {}
        for layer in self.layers:
            entry = TransformerLensKeyValueCacheEntry.init_cache_entry(
                self.model.cfg, resid.device, tokens.shape[0]
            )
            resid = self.model.blocks[layer](resid, past_kv_cache_entry=entry)
            self.cache[layer] = (entry.past_keys, entry.past_values)

    def _block(self, layer: int, resid: torch.Tensor, prompts: slice) -> torch.Tensor:
        keys, values = self.cache[layer]
        bs = resid.shape[1]
        entry = TransformerLensKeyValueCacheEntry(
            past_keys=keys[prompts].repeat_interleave(bs, dim=0),
            past_values=values[prompts].repeat_interleave(bs, dim=0),
            frozen=True,
        )
        rows = resid.flatten(0, 1)[:, None]  # [bp·bs, 1, d]: one position per row
        return self.model.blocks[layer](rows, past_kv_cache_entry=entry).view(resid.shape)


class _NaiveRunner(_Runner):
    """Runs every path point through a full forward pass of its prompt, hooked at hook_in."""

    def load(self, tokens: torch.Tensor) -> None:
        self.tokens = tokens

    def __call__(self, x: torch.Tensor, prompts: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
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
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks, return_type="logits")  # capped
        return captured["out"].view(bp, bs, d_model), logits[:, -1, :].view(bp, bs, -1)
