"""Which SAE latents fire together on the pool of real activations: sparse pair counts.

`count_cooccurrence` encodes the pool once and counts, per latent, how often it fires (and the sum
of its values) and, per unordered pair of latents, how often both fire on the same activation.
Only pairs that co-fire are stored (about ``N * L0**2 / 2`` at most, never ``d_sae**2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse
import torch

from synthact.core.cache import Arrays
from synthact.core.validate import check_positive_int, check_rows
from synthact.method.targets import encode

if TYPE_CHECKING:
    from sae_lens import SAE


@dataclass(frozen=True, eq=False)
class Cooccurrence:
    """Firing statistics of ``n_rows`` pool activations (numpy, CPU).

    Attributes:
        n_rows: activations counted.
        firing: ``[d_sae]`` int64, how many activations each latent fires on (value > 0).
        value_sum: ``[d_sae]`` float64, the sum of each latent's values where it fires.
        pairs: ``[P, 2]`` int64 latent pairs ``(i, j)``, ``i < j``, that fire together at least
            once, in increasing order of ``i * d_sae + j``.
        counts: ``[P]`` int64, on how many activations each pair fires together.
    """

    n_rows: int
    firing: np.ndarray
    value_sum: np.ndarray
    pairs: np.ndarray
    counts: np.ndarray

    @property
    def d_sae(self) -> int:
        return len(self.firing)

    @property
    def mean_values(self) -> torch.Tensor:
        """``[d_sae]`` float64: each latent's mean value where it fires (0 if it never does)."""
        return torch.from_numpy(self.value_sum / np.maximum(self.firing, 1))

    @cached_property
    def matrix(self) -> scipy.sparse.csr_array:
        """``[d_sae, d_sae]`` symmetric sparse co-firing counts, ``firing`` on the diagonal."""
        i, j = self.pairs.T
        diagonal = np.arange(self.d_sae)
        rows = np.concatenate([i, j, diagonal])
        cols = np.concatenate([j, i, diagonal])
        values = np.concatenate([self.counts, self.counts, self.firing])
        shape = (self.d_sae, self.d_sae)
        return scipy.sparse.csr_array((values, (rows, cols)), shape=shape)

    def conditional(self, given: torch.Tensor) -> torch.Tensor:
        """``[len(given), d_sae]`` float64 CPU: ``P(j fires | given[r] fires)`` over the pool,
        1 at ``given[r]`` itself (0 everywhere for a latent that never fired)."""
        index = given.detach().cpu().numpy()
        if index.ndim != 1 or (index < 0).any() or (index >= self.d_sae).any():
            raise ValueError(f"given must be [R] latent ids in [0, {self.d_sae}), got {index!r}")
        together = self.matrix[index].toarray().astype(np.float64)
        return torch.from_numpy(together / np.maximum(self.firing[index], 1)[:, None])

    def arrays(self) -> Arrays:
        """The arrays to cache (`from_arrays` reads them back)."""
        return {
            "n_rows": np.array(self.n_rows),
            "firing": self.firing,
            "value_sum": self.value_sum,
            "pairs": self.pairs,
            "counts": self.counts,
        }

    @classmethod
    def from_arrays(cls, arrays: Arrays) -> Cooccurrence:
        return cls(
            int(arrays["n_rows"]),
            *(arrays[k] for k in ("firing", "value_sum", "pairs", "counts")),
        )


def count_cooccurrence(sae: SAE, acts: torch.Tensor, *, batch_size: int = 500) -> Cooccurrence:
    """Count firing and pairwise co-firing of ``sae``'s latents on ``acts [N, d_in]``.

    Exact integer counts, independent of ``batch_size`` (which bounds memory: one batch holds
    its latents ``[batch, d_sae]`` and its pairs ``[batch, L0_max**2 / 2]``).
    """
    check_rows(acts, "acts", sae.cfg.d_in)
    check_positive_int("batch_size", batch_size)
    d_sae = sae.cfg.d_sae
    firing = torch.zeros(d_sae, dtype=torch.int64)
    value_sum = torch.zeros(d_sae, dtype=torch.float64)
    keys = torch.zeros(0, dtype=torch.int64)
    counts = torch.zeros(0, dtype=torch.int64)
    for batch in acts.split(batch_size):
        latents = encode(sae, batch).double()  # [b, d_sae]
        fires = latents > 0
        firing += fires.sum(dim=0)
        value_sum += latents.sum(dim=0)
        batch_keys = _pair_keys(fires, d_sae)
        keys, inverse = torch.unique(torch.cat([keys, batch_keys]), return_inverse=True)
        merged = torch.zeros(len(keys), dtype=torch.int64)
        merged.scatter_add_(0, inverse[: len(counts)], counts)
        merged.scatter_add_(0, inverse[len(counts) :], torch.ones_like(batch_keys))
        counts = merged
    pairs = torch.stack([keys // d_sae, keys % d_sae], dim=1)
    return Cooccurrence(len(acts), firing.numpy(), value_sum.numpy(), pairs.numpy(), counts.numpy())


def _pair_keys(fires: torch.Tensor, d_sae: int) -> torch.Tensor:
    """``i * d_sae + j`` of every pair ``i < j`` firing together in a row of ``fires [b, d_sae]``,
    one key per row and pair (repeats across rows)."""
    row, col = fires.nonzero(as_tuple=True)  # columns ascend within a row
    per_row = torch.bincount(row, minlength=len(fires))
    n_max = int(per_row.max()) if len(per_row) else 0
    if n_max < 2:
        return torch.zeros(0, dtype=torch.int64)
    slot = torch.arange(len(row)) - (per_row.cumsum(0) - per_row)[row]
    latents = torch.full((len(fires), n_max), -1, dtype=torch.int64)
    latents[row, slot] = col
    first, second = torch.triu_indices(n_max, n_max, offset=1)
    i, j = latents[:, first], latents[:, second]  # [b, n_max (n_max - 1) / 2]
    both = j >= 0  # padding is last, so j >= 0 implies i >= 0 and i < j
    return i[both] * d_sae + j[both]
