"""The SAE's log-sparsity estimated from its firing, for releases that ship no sparsity file."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from sae_lens import SAE


def estimate_log_sparsity(sae: SAE, acts: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """``log10(fraction of acts [N, d_in] on which each latent is positive + 1e-10)``, ``[d_sae]``
    float32 CPU."""
    import torch

    with torch.no_grad():
        if acts.ndim != 2 or len(acts) == 0:
            raise ValueError(f"acts must be [N, d_in] with N >= 1, got shape {tuple(acts.shape)}")
        fired = torch.zeros(sae.cfg.d_sae, dtype=torch.float64)
        for chunk in acts.split(batch_size):
            latents = sae.encode(chunk.to(sae.W_dec.device, sae.W_dec.dtype))
            fired += (latents > 0).sum(dim=0).cpu().double()
        return torch.log10(fired / len(acts) + 1e-10).to(torch.float32)
