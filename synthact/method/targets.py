"""Activations that perturbations start from (bases) and head towards (targets).

Real activations at a hook, the Gaussian fitted to them, SAE encoding, decoding and
reconstructions (docs/method.md, "Target and base types"); synthetic activations are
`synthact.method.constructions`. Results are float32
CPU tensors; every random draw comes from an explicit ``torch.Generator``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import torch

from synthact.core.validate import check_generator, check_positive_int, check_rows

if TYPE_CHECKING:
    from sae_lens import SAE

# --- real activations -----------------------------------------------------------------------


def real_pairs(
    n_prompts: int, n: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` (base, target) pairs of distinct prompts from a pool of ``n_prompts``.

    Bases are the first ``n`` entries of a random permutation (so no base repeats); each target
    is uniformly random among the ``n_prompts - 1`` other prompts.

    Returns:
        ``(base_idx [n], target_idx [n])``, int64 indices into the pool.
    """
    check_generator(generator)
    if n_prompts < 2:
        raise ValueError(f"need at least 2 prompts to form pairs, got {n_prompts}")
    if not 1 <= n <= n_prompts:
        raise ValueError(f"n must be between 1 and n_prompts={n_prompts} (distinct bases), got {n}")
    base_idx = torch.randperm(n_prompts, generator=generator)[:n]
    offset = torch.randint(n_prompts - 1, (n,), generator=generator)
    target_idx = offset + (offset >= base_idx).long()
    return base_idx, target_idx


def other_indices(
    n_prompts: int, exclude: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator
) -> torch.Tensor:
    """Per row, a pool index uniform among the ``n_prompts - 2`` that are not the row's two
    (distinct) indices in ``exclude`` (e.g. the ``(base_idx, target_idx)`` of `real_pairs`).

    Returns:
        ``[n]`` int64 indices into the pool.
    """
    check_generator(generator)
    first, second = exclude
    if n_prompts < 3:
        raise ValueError(f"need at least 3 prompts to pick a third one, got {n_prompts}")
    if (first == second).any():
        raise ValueError("the two excluded indices of a row must differ")
    low, high = torch.minimum(first, second), torch.maximum(first, second)
    index = torch.randint(n_prompts - 2, first.shape, generator=generator)
    index = index + (index >= low).long()
    return index + (index >= high).long()


# --- Gaussian ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _one_thread(device: torch.device) -> Iterator[None]:
    """Run float64 linear algebra on the CPU on one thread (a GPU runs as it is).

    BLAS/LAPACK split these products and the eigendecomposition differently with more threads,
    which changes the last bits of every sample: the same seed would give other numbers with
    ``-n 1`` and ``-n 4``.
    """
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True, eq=False)
class Gaussian:
    """A multivariate normal; ``mean [d]`` and ``cov [d, d]`` in float64 on one device."""

    mean: torch.Tensor
    cov: torch.Tensor

    def __post_init__(self) -> None:
        d = self.mean.shape[-1] if self.mean.ndim == 1 else -1
        if d < 1 or self.cov.shape != (d, d):
            raise ValueError("Gaussian needs mean [d] and cov [d, d]")
        if self.mean.dtype != torch.float64 or self.cov.dtype != torch.float64:
            raise ValueError("Gaussian needs float64 mean and cov (fit_gaussian makes them)")
        if self.mean.device != self.cov.device:
            raise ValueError(f"mean on {self.mean.device} but cov on {self.cov.device}")

    @cached_property
    def scale(self) -> torch.Tensor:
        """``[d, d]`` factor ``S = V sqrt(L)`` with ``S S^T = cov`` (symmetric eigendecomposition).

        Negative round-off eigenvalues are clipped to 0, so it exists for any PSD covariance; each
        eigenvector's sign is fixed (largest entry positive), so every device gives the same factor.
        """
        with _one_thread(self.cov.device):
            eigenvalues, eigenvectors = torch.linalg.eigh(self.cov)
            largest = eigenvectors.abs().argmax(dim=0, keepdim=True)
            signs = eigenvectors.gather(0, largest).sign()
            return eigenvectors * signs * eigenvalues.clamp(min=0).sqrt()

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``[n, d]`` float32 CPU samples ``mean + S z``, ``z ~ N(0, I)`` drawn from ``generator``
        on its device (the authors used a Cholesky factor: the same distribution, another stream).
        """
        check_generator(generator)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        z = torch.randn(
            n, len(self.mean), generator=generator, dtype=torch.float64, device=generator.device
        )
        scale = self.scale
        with _one_thread(scale.device):
            return (self.mean + z.to(scale.device) @ scale.T).float().cpu()


def fit_gaussian(acts: torch.Tensor, device: str | torch.device = "cpu") -> Gaussian:
    """Mean and unbiased covariance (``np.cov``, ddof 1) of ``acts [N, d]``, float64 on device."""
    check_rows(acts, "acts")
    if len(acts) < 2:
        raise ValueError(f"need at least 2 activations to fit a covariance, got {len(acts)}")
    x = acts.detach().to(device, torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError("acts contain NaN or infinite values")
    with _one_thread(x.device):
        return Gaussian(mean=x.mean(0), cov=torch.cov(x.T, correction=1))


# --- SAE encode / decode ----------------------------------------------------------------------


def _batched(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    batch_size: int,
    *,
    host: bool = True,
) -> torch.Tensor:
    """``fn`` over row blocks of ``x``, without grad; rows concatenated as float32 CPU (each block
    moved as it is done), or as ``fn`` returns them when ``host`` is False."""
    check_positive_int("batch_size", batch_size)
    with torch.no_grad():
        blocks = (fn(block) for block in x.split(batch_size))
        return torch.cat([b.float().cpu() for b in blocks] if host else list(blocks))


def encode(
    sae: SAE, acts: torch.Tensor, *, batch_size: int = 1000, host: bool = True
) -> torch.Tensor:
    """``sae.encode`` of ``acts [B, d_in]`` -> latent activations ``[B, d_sae]`` (float32 CPU, or
    on the SAE's device in its dtype when ``host`` is False)."""
    check_rows(acts, "acts", sae.cfg.d_in)
    return _batched(lambda x: sae.encode(x.to(sae.device)), acts, batch_size, host=host)


def decode(sae: SAE, latents: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """``sae.decode`` (adds ``b_dec``) of ``latents [B, d_sae]`` -> ``[B, d_in]`` (float32 CPU)."""
    check_rows(latents, "latents", sae.cfg.d_sae)
    return _batched(lambda z: sae.decode(z.to(sae.device, sae.dtype)), latents, batch_size)


def reconstruct(sae: SAE, acts: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
    """The SAE reconstruction ``decode(encode(acts))``, ``[B, d_in]`` float32 CPU."""
    check_rows(acts, "acts", sae.cfg.d_in)
    return _batched(lambda x: sae.decode(sae.encode(x.to(sae.device))), acts, batch_size)


# --- targets ---------------------------------------------------------------------------------


def check_targets(kind: str, start: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``targets [n, d]``, after checking that each row is finite and differs from its
    ``start [n, d]`` (a path to its own start has no direction); ValueError naming the rows.
    """
    if targets.shape != start.shape:
        raise ValueError(f"{kind}: targets {list(targets.shape)} vs starts {list(start.shape)}")
    for problem, bad in (
        ("contain NaN or inf", ~torch.isfinite(targets).all(dim=1)),
        ("equal their start point", (targets == start.to(targets)).all(dim=1)),
    ):
        rows = bad.nonzero().flatten().tolist()
        if rows:
            raise ValueError(
                f"{kind}: {len(rows)} of {len(targets)} targets {problem} (rows {rows[:10]}); "
                "every perturbation needs a finite target away from its start"
            )
    return targets
