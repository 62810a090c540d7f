"""Appendix E statistics of the SAE latents of real activations, and the paper's scale facts
(docs/method.md, claims C12 and C13).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from synthact.core.validate import check_positive_int, check_rows
from synthact.method.targets import decode, encode

if TYPE_CHECKING:
    from sae_lens import SAE

SHARES = ("l1", "l2sq", "l2")
"""Definitions of a latent's share of the latent-activation norm; see `latent_statistics`."""


@dataclass(frozen=True, eq=False)
class LatentStats:
    """Appendix E statistics; ``K`` = activations kept by the reconstruction-error filter.

    Attributes:
        rel_error: ``[N]`` relative reconstruction error ``||A - SAE(A)|| / ||A||`` of every input.
        kept: ``[N]`` bool, the inputs the statistics below are computed on.
        l0: ``[K]`` number of active latents (activation > 0) per activation.
        norm_share: ``[K, n_ranks]`` share of the latent-activation norm held by the latent of
            each rank (rank 0 = largest activation); 0 where fewer latents are active.
        pairwise_cos: ``[P]`` cosine between the decoder rows of every unordered pair of active
            latents of an activation, all activations concatenated.
        top_cos: ``[Q]`` cosine between the decoder row of each active latent other than the top
            one and the top latent's row, all activations concatenated.
        share: the share definition used (one of ``SHARES``).
    """

    rel_error: np.ndarray
    kept: np.ndarray
    l0: np.ndarray
    norm_share: np.ndarray
    pairwise_cos: np.ndarray
    top_cos: np.ndarray
    share: str


def latent_statistics(
    sae: SAE,
    acts: torch.Tensor,
    *,
    share: str = "l1",
    n_ranks: int = 10,
    max_rel_error: float | None = None,
    batch_size: int = 256,
) -> LatentStats:
    """Appendix E statistics of real activations ``acts [N, d_in]`` (paper: N = 2000).

    A latent's share of the norm, for the sorted active values ``a_1 >= a_2 >= ...``: ``"l1"``
    ``a_r / sum(a)`` (default), ``"l2sq"`` ``a_r**2 / ||a||**2`` or ``"l2"`` ``a_r / ||a||``;
    docs/method.md says why the paper's numbers read as ``"l1"``. ``max_rel_error`` keeps only the
    activations reconstructed within that relative error (default: all; ``rel_error`` is reported).
    """
    if share not in SHARES:
        raise ValueError(f"unknown share {share!r}; expected one of {', '.join(SHARES)}")
    if isinstance(n_ranks, bool) or not isinstance(n_ranks, int) or n_ranks < 1:
        raise ValueError(f"n_ranks must be a positive int, got {n_ranks!r}")
    if max_rel_error is not None and not max_rel_error >= 0:
        raise ValueError(f"max_rel_error must be >= 0 or None, got {max_rel_error}")
    check_positive_int("batch_size", batch_size)
    check_rows(acts, "acts", sae.cfg.d_in, finite=True)
    unit_rows = F.normalize(sae.W_dec.detach().float().cpu(), dim=1)
    chunks = [
        _chunk_statistics(sae, acts[i : i + batch_size], unit_rows, share, n_ranks, max_rel_error)
        for i in range(0, len(acts), batch_size)
    ]
    fields = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return LatentStats(**fields, share=share)


def _chunk_statistics(
    sae: SAE,
    acts: torch.Tensor,
    unit_rows: torch.Tensor,
    share: str,
    n_ranks: int,
    max_rel_error: float | None,
) -> dict[str, np.ndarray]:
    """`latent_statistics` of one block of activations ``[b, d_in]``, as numpy arrays."""
    x = acts.detach().float().cpu()
    latents = encode(sae, x)  # [b, d_sae]
    rel_error = (x - decode(sae, latents)).norm(dim=1) / x.norm(dim=1)
    kept = torch.ones_like(rel_error, dtype=torch.bool)
    if max_rel_error is not None:
        kept = rel_error <= max_rel_error
    latents = latents[kept]
    l0 = (latents > 0).sum(dim=1)
    k = int(l0.max()) if len(l0) else 0
    values, idx = latents.topk(k, dim=1)  # [b', k]: active values in descending order, then 0s
    active = values > 0
    rows = unit_rows[idx]  # [b', k, d_in]
    gram = rows @ rows.transpose(1, 2)  # [b', k, k] cosines between decoder rows
    upper = torch.ones(k, k, dtype=torch.bool).triu(diagonal=1)
    pairs = active[:, :, None] & active[:, None, :] & upper
    return {
        "rel_error": rel_error.numpy(),
        "kept": kept.numpy(),
        "l0": l0.numpy(),
        # pad with zero shares (k < n_ranks) or crop (k > n_ranks, negative padding) to n_ranks
        "norm_share": F.pad(_norm_share(values, latents, share), (0, n_ranks - k)).numpy(),
        "pairwise_cos": gram[pairs].numpy(),
        "top_cos": gram[:, :1, 1:].flatten(1)[active[:, 1:]].numpy(),  # row of rank 0
    }


def _norm_share(values: torch.Tensor, latents: torch.Tensor, share: str) -> torch.Tensor:
    """Share of each sorted value ``values [b, k]`` in the norm of ``latents [b, d_sae]``."""
    if share == "l1":
        part, total = values, latents.sum(dim=1)
    elif share == "l2sq":
        part, total = values**2, (latents**2).sum(dim=1)
    else:
        part, total = values, latents.norm(dim=1)
    return part / total.clamp(min=torch.finfo(total.dtype).tiny)[:, None]


@dataclass(frozen=True, eq=False)
class ScaleFacts:
    """The paper's scale facts as distributions.

    Attributes:
        act_norm: ``[N]`` norm of each real activation (paper mean about 56).
        distance: ``[n]`` base-target distance ``||T - A||`` of each real pair (about 40).
        cos_b_dec: ``[n]`` ``cos(A - b_dec, T - b_dec)`` of each real pair (about 0.42).
    """

    act_norm: np.ndarray
    distance: np.ndarray
    cos_b_dec: np.ndarray


def scale_facts(
    sae: SAE, acts: torch.Tensor, base_idx: torch.Tensor, target_idx: torch.Tensor
) -> ScaleFacts:
    """Scale facts of real activations ``acts [N, d_in]`` and real pairs (see ``real_pairs``)."""
    check_rows(acts, "acts", sae.cfg.d_in, finite=True)
    if base_idx.shape != target_idx.shape or base_idx.ndim != 1:
        raise ValueError("base_idx and target_idx must be index tensors of the same shape [n]")
    x = acts.detach().float().cpu()
    base, target = x[base_idx], x[target_idx]
    b_dec = sae.b_dec.detach().float().cpu()
    return ScaleFacts(
        act_norm=x.norm(dim=1).numpy(),
        distance=(target - base).norm(dim=1).numpy(),
        cos_b_dec=F.cosine_similarity(base - b_dec, target - b_dec, dim=1).numpy(),
    )
