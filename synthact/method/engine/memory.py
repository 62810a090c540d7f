"""How many (prompt, step) rows a chunk holds and how many prompts' prefixes are kept at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from synthact.core.validate import check_positive_int

if TYPE_CHECKING:
    from transformer_lens import HookedTransformerConfig

CPU_ROWS = 256
"""Rows per chunk on CPU: 2 prompts x 101 steps, the fastest measured at GPT-2 size on one core."""

CPU_LOGITS_BYTES = 64 * 2**20
"""On CPU with KL, a chunk's logits take at most this."""

CUDA_MEMORY_FRACTION = 0.5
"""On CUDA a chunk may take this fraction of the free device memory (of the caller's share)."""

CUDA_PREFIX_FRACTION = 0.25
"""On CUDA a group of prompts' prefixes may take this fraction of the free memory (of the share)."""

CUDA_MAX_ROWS = 32768
"""Rows per chunk on CUDA at most (H200, GPT-2 size: 5.4 vs 4.7 us per row at 8192 vs 32768)."""

PREFIX_PROMPTS = 256
"""Prompts whose prefix keys and values are held at once on CPU (about 150 MB at GPT-2 size)."""

KL_ROWS = 16
"""Rows per block of the vocabulary-wide KL on CPU (cache-sized; a GPU takes a chunk at once)."""


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
    """(prompt, step) rows per chunk: `CPU_ROWS` off CUDA (fewer with KL, see `CPU_LOGITS_BYTES`);
    on CUDA what `CUDA_MEMORY_FRACTION` of ``free_bytes`` / ``share`` holds, at most
    `CUDA_MAX_ROWS`. ``positions``: positions a row holds (1; the prompt length for the naive
    reference); ``override``: an explicit row count, returned as it is."""
    if override is not None:
        return check_positive_int("batch_size", override)
    if torch.device(device).type != "cuda":
        if not kl:
            return CPU_ROWS
        logits_row_bytes = positions * cfg.d_vocab_out * max(4, cfg.dtype.itemsize)
        return max(1, min(CPU_ROWS, CPU_LOGITS_BYTES // logits_row_bytes))
    free = free_cuda_bytes(device) if free_bytes is None else free_bytes
    budget = int(CUDA_MEMORY_FRACTION * free) // share
    return max(1, min(CUDA_MAX_ROWS, budget // (positions * _row_bytes(cfg, kl))))


def prefix_group(
    cfg: HookedTransformerConfig, prompt_len: int, free_bytes: int | None, share: int
) -> int:
    """Prompts whose prefixes are held at once: `PREFIX_PROMPTS` off CUDA (``free_bytes`` None),
    else what `CUDA_PREFIX_FRACTION` of the free memory holds (activations and, twice, keys and
    values)."""
    if free_bytes is None:
        return PREFIX_PROMPTS
    n_kv = cfg.n_key_value_heads or cfg.n_heads
    kv_bytes = 2 * 2 * cfg.n_layers * n_kv * cfg.d_head * cfg.dtype.itemsize
    per_prompt = prompt_len * (_row_bytes(cfg, False) + kv_bytes)
    return max(1, int(CUDA_PREFIX_FRACTION * free_bytes) // share // per_prompt)


def _row_bytes(cfg: HookedTransformerConfig, kl: bool) -> int:
    """CUDA bytes of one row at its peak, generously: one block's activations and, with KL, its
    logits, their float32 copy and float32 log-probabilities."""
    n_kv = cfg.n_key_value_heads or cfg.n_heads
    width = 3 * (cfg.d_mlp or 0) + 8 * cfg.d_model + 2 * (cfg.n_heads + 2 * n_kv) * cfg.d_head
    logits = cfg.d_vocab_out * (cfg.dtype.itemsize + 8) if kl else 0
    return width * cfg.dtype.itemsize + logits


def free_cuda_bytes(device: torch.device | str) -> int:
    """Free memory of a CUDA device, plus what this process reserved but does not use."""
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
