"""Latent ablations (the paper's section 7): which latents of a real activation's SAE code drive
its blowup, and whether a few of them carry it (docs/method.md, "Latent ablations").

Removing a set S of a base activation A's active latents moves A to its ablation
``A - (decode(z) - decode(z without S))``, z = ``encode(A)``; the engine measures L2 and KL
curves along the relative-mode path of `N_STEPS` points from A to it. Per base (the sensitivity
experiment's rows):

- ``single``: S = {j} for every active latent j (the latents in descending activation; the
  `MAX_LATENTS` largest);
- ``progressive``: S = the first m latents in descending score, m = 1 .. ``PROGRESSIVE``;
- ``whole``: S = every active latent;
- ``random``: S = ``TOP_K`` latents drawn uniformly from the single paths' (all when fewer).

A latent's score is the blowup excess of its single path (`blowup_excess`): the output change at
the ablation beyond what the path's flattest stretch gives over its length. A linear response
scores 0. Single paths record KL curves too; the others L2 only (C16 and the report read L2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from synthact.core.cache import Arrays
from synthact.method import metrics
from synthact.method.results import PATH_STEPS
from synthact.method.targets import decode, encode
from synthact.subjects import Constants

if TYPE_CHECKING:
    from sae_lens import SAE

    from synthact.method.engine import Curves

N_STEPS = 21
"""Points of each removal path (every 5 % of the way): the score needs the path's slopes, not the
sensitivity experiment's 101 points, and a row has about as many paths as active latents."""
TOP_K = 3
"""How many top latents C16 removes together (and how many random ones it compares)."""
MAX_LATENTS = 64
"""Latents of a row ablated one at a time: its 64 largest (all of them where L0 is at most 64, as on
the planted subjects and trained-tiny); the whole-code path removes every active one."""
PROGRESSIVE = 8
"""Longest progressive removal: the top 1 .. 8 latents (the whole code is its own path)."""
DRIVING_SHARE = 0.1
"""A latent drives a row's blowup when it is among the row's top `TOP_K` and its removal's blowup
excess is at least this share of its removal's output change (C16's margin, per latent)."""
PATHS = ("single", "progressive", "whole", "random")
"""The removal paths, in the order of the module docstring."""

Run = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, bool], "Curves"]
"""The engine on a subject: ``(tokens [P, T], targets [P, d], bases [P, d], kl) -> Curves`` along
the relative-mode paths of `N_STEPS` points (with KL curves when ``kl``)."""


def blowup_excess(curves: np.ndarray) -> np.ndarray:
    """The output change at each path's end beyond its flattest stretch:
    ``v[-1] - v[0] - (k - 1) * max(0, min_i (v[i+1] - v[i]))``.

    ``curves [..., k]`` (k >= 2) -> ``[...]`` float64 (NaN curves give NaN). A curve linear in
    the step scores 0 (a linear response, whatever its slope); a stretch steeper than the
    flattest one, early or late on the path, scores what it adds. At least 0 on a rising curve.
    """
    v = np.asarray(curves, dtype=np.float64)
    if v.shape[-1] < 2:
        raise ValueError(f"curves need at least 2 points, got {v.shape[-1]}")
    flattest = np.diff(v, axis=-1).min(axis=-1).clip(min=0)
    return v[..., -1] - v[..., 0] - (v.shape[-1] - 1) * flattest


def active_latents(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's active latents in descending activation, at most `MAX_LATENTS`.

    ``codes [n, d_sae]`` -> ``(latents [n, K] int64, activations [n, K] float32)``, K the largest
    number of them in a row, padded with -1 and 0.
    """
    k = min(MAX_LATENTS, max(1, int((codes > 0).sum(dim=1).max())))
    values, latents = codes.topk(k, dim=1)
    active = values > 0
    return torch.where(active, latents, -1), torch.where(active, values, 0.0)


def _removals(
    sae: SAE,
    codes: torch.Tensor,
    latents: torch.Tensor,
    rows: torch.Tensor,
    slots: torch.Tensor | None,
    chunk: int = 1024,
) -> torch.Tensor:
    """``decode(z) - decode(z without the removed latents)`` of each path, ``[P, d]`` float32.

    Path p removes, from the code ``codes[rows[p]]`` (``codes [n, d_sae]``), the latents of its
    row's slots ``slots[p]`` (``[P, K]`` bool over ``latents [n, K]``), or (``slots`` None) every
    active one."""
    spare = sae.cfg.d_sae  # a column for the padding, dropped
    parts = [torch.zeros(0, sae.cfg.d_in)]
    for start in range(0, len(rows), chunk):
        part = slice(start, start + chunk)
        z = codes[rows[part]]
        if slots is None:
            removed = z > 0
        else:
            index = torch.where(slots[part], latents[rows[part]], spare)
            removed = torch.zeros(len(z), spare + 1, dtype=torch.bool).scatter_(1, index, True)
            removed = removed[:, :spare]
        parts.append(decode(sae, z) - decode(sae, torch.where(removed, 0.0, z)))
    return torch.cat(parts)


def ablation_arrays(
    run: Run,
    sae: SAE,
    tokens: torch.Tensor,
    base: torch.Tensor,
    generator: torch.Generator,
) -> Arrays:
    """The ablation experiment's arrays (see the module docstring) for ``tokens [n, T]`` whose
    activations are ``base [n, d]``; ``generator`` draws the random sets.

    Arrays: ``latents``, ``activations`` ``[n, K]`` (`active_latents`: the row's single paths,
    at most `MAX_LATENTS`); ``order [n, K]`` the slots
    in descending score (-1 past a row's active latents); ``random/slots [n, TOP_K]`` (-1 pad);
    L2 curves ``<path>/l2``: ``single`` ``[n, K, S]``, ``progressive`` ``[n, M, S]`` (column
    m - 1 removes the top m, M = min(K, PROGRESSIVE)), ``whole`` and ``random`` ``[n, S]``; KL
    curves ``single/kl`` ``[n, K, S]``; NaN where a row has no such path. The engine runs each
    path once: progressive removals of 1 latent and of a row's whole code are its single and
    whole paths.
    """
    codes = encode(sae, base)
    latents, values = active_latents(codes)
    n, k = latents.shape
    active = latents >= 0

    rows, slot = active.nonzero(as_tuple=True)
    one_hot = torch.nn.functional.one_hot(slot, k).bool()
    targets = base[rows] - _removals(sae, codes, latents, rows, one_hot)
    single = run(tokens[rows], targets, base[rows], True)
    arrays = {f"single/{s}": _scatter(getattr(single, s), (n, k), rows, slot) for s in ("l2", "kl")}
    scores = torch.from_numpy(blowup_excess(arrays["single/l2"]))
    perm = torch.where(active, scores, -torch.inf).argsort(dim=1, descending=True, stable=True)
    ranks = perm.argsort(dim=1)  # each slot's place in descending score
    pick = torch.where(active, torch.rand(n, k, generator=generator), torch.inf).argsort(dim=1)
    random_slots = torch.where(active.gather(1, pick), pick, -1)[:, :TOP_K]
    counts, m = active.sum(dim=1), min(k, PROGRESSIVE)
    everyone = (counts > 0).nonzero().flatten()
    plans = [  # (path, its rows, their removed slots [n, K] (None: all), its column)
        ("whole", everyone, None, None),
        ("random", everyone, _slot_mask(random_slots, k), None),
        *(
            ("progressive", (counts > i + 1).nonzero().flatten(), active & (ranks <= i), i)
            for i in range(1, m)
        ),
    ]
    path_rows = torch.cat([r for _, r, _, _ in plans])
    deltas = [
        _removals(sae, codes, latents, r, None if slots is None else slots[r])
        for _, r, slots, _ in plans
    ]
    found = run(tokens[path_rows], base[path_rows] - torch.cat(deltas), base[path_rows], False)
    found = found.l2.numpy()
    steps = found.shape[1]
    arrays |= {
        f"{path}/l2": np.full((*shape, steps), np.nan, np.float32)
        for path, shape in (("progressive", (n, m)), ("whole", (n,)), ("random", (n,)))
    }
    start = 0
    for path, r, _, column in plans:
        where = r.numpy() if column is None else (r.numpy(), column)
        arrays[f"{path}/l2"][where] = found[start : start + len(r)]
        start += len(r)
    progressive, every = arrays["progressive/l2"], np.arange(n)
    progressive[:, 0] = arrays["single/l2"][every, perm[:, 0].numpy()]
    whole_fits = (counts > 0) & (counts <= m)
    progressive[whole_fits.numpy(), (counts - 1)[whole_fits].numpy()] = arrays["whole/l2"][
        whole_fits.numpy()
    ]
    return {
        "latents": latents.numpy(),
        "activations": values.numpy(),
        "order": torch.where(active.gather(1, perm), perm, -1).numpy(),
        "random/slots": random_slots.numpy(),
        **arrays,
    }


def _slot_mask(slots: torch.Tensor, k: int) -> torch.Tensor:
    """``[n, k]`` bool: the slots listed in ``slots [n, j]`` (-1: none)."""
    mask = torch.zeros(len(slots), k + 1, dtype=torch.bool)
    return mask.scatter_(1, torch.where(slots >= 0, slots, k), True)[:, :k]


def _scatter(
    values: torch.Tensor | None, shape: tuple[int, int], rows: torch.Tensor, slots: torch.Tensor
) -> np.ndarray:
    """``values [P, S]`` of paths (row, slot) into a NaN-padded ``[*shape, S]`` array."""
    if values is None:
        raise RuntimeError("the ablation paths need KL curves: run the engine with kl=True")
    out = np.full((*shape, values.shape[1]), np.nan, np.float32)
    out[rows.numpy(), slots.numpy()] = values.numpy()
    return out


@dataclass(frozen=True)
class AblationResult:
    """The ablation experiment of one subject (`ablation_arrays`' arrays).

    ``log_sparsity [d_sae]``: the SAE's log10 firing frequencies; ``neuronpedia``: the SAE's
    Neuronpedia id from its metadata (None when it has none); ``random_weights``: the subject is a
    null control, random weights under that id's release (`SubjectSpec.random_weights`), whose
    latents are not the ones Neuronpedia shows.
    """

    subject: str
    constants: Constants
    arrays: Mapping[str, np.ndarray]
    log_sparsity: np.ndarray
    neuronpedia: str | None = None
    random_weights: bool = False
    step_metrics: tuple[tuple[str, str], ...] = PATH_STEPS

    @property
    def latents(self) -> np.ndarray:
        """``[n, K]`` each row's active latents in descending activation (-1 pad)."""
        return self.arrays["latents"]

    @property
    def active(self) -> np.ndarray:
        """``[n, K]`` bool: the slots that hold an active latent."""
        return self.latents >= 0

    @property
    def rows(self) -> np.ndarray:
        """``[n]`` bool: the rows with at least one active latent (the others have no path)."""
        return self.active.any(axis=1)

    def curves(self, path: str, signal: str = "l2") -> np.ndarray:
        """Curves of one removal path (`PATHS`): ``l2``, or ``kl`` of ``single`` paths."""
        key = f"{path}/{signal}"
        if key not in self.arrays:
            raise KeyError(f"no {signal} curves of {path!r} paths; paths are {', '.join(PATHS)}")
        return self.arrays[key]

    def scores(self) -> np.ndarray:
        """``[n, K]`` each latent's contribution: the blowup excess of its single path (NaN pad)."""
        return blowup_excess(self.curves("single"))

    def top(self, k: int = TOP_K) -> np.ndarray:
        """``[n, k]`` each row's k highest-scoring latents (-1 where it has fewer)."""
        order = self.arrays["order"][:, :k]
        return np.where(order >= 0, np.take_along_axis(self.latents, order.clip(0), 1), -1)

    def driving(self) -> np.ndarray:
        """``[n, K]`` bool: the slots whose latent drives its row's blowup (`DRIVING_SHARE`)."""
        order = self.arrays["order"]
        ranks = np.full(order.shape, order.shape[1])
        rows = np.nonzero(order >= 0)
        ranks[rows[0], order[rows]] = rows[1]
        own = self.curves("single")[..., -1].astype(np.float64)
        with np.errstate(invalid="ignore"):
            strong = self.scores() >= DRIVING_SHARE * own
        return (ranks < TOP_K) & strong & self.active

    def carried(self, path: str) -> np.ndarray:
        """``[n']`` (rows with active latents): the blowup excess of removing ``top`` (the top
        `TOP_K` latents: the progressive path of `TOP_K`, or the whole code when shorter) or
        ``random`` (`TOP_K` random ones), as a share of the output change of removing the whole
        code (its L2 at the ablation)."""
        if path == "top":
            progressive = self.curves("progressive")
            at_k = progressive[:, min(TOP_K, progressive.shape[1]) - 1]
            counts = self.active.sum(axis=1)
            excess_curves = np.where((counts >= TOP_K)[:, None], at_k, self.curves("whole"))
        elif path == "random":
            excess_curves = self.curves("random")
        else:
            raise ValueError(f"carried reads 'top' or 'random', not {path!r}")
        rows = self.rows
        whole = self.curves("whole")[rows, -1].astype(np.float64)
        return blowup_excess(excess_curves[rows]) / whole

    def steps(self, metric: str = "ms", signal: str = "l2") -> np.ndarray:
        """``[n, K]`` the step metric of each single path (-1 pad): the point (of `N_STEPS`) at
        which removing the latent blows the output up (`synthact.method.metrics`)."""
        curves = self.curves("single", signal)[self.active]
        params = {"ms": {"flat_slope": self.constants.flat_slope if signal == "l2" else 0.02}}
        found = metrics.METRICS[metric](curves, **params.get(metric, {}))
        out = np.full(self.latents.shape, -1, dtype=np.int64)
        out[self.active] = found
        return out

    def firing_frequency(self) -> np.ndarray:
        """``[d_sae]`` each latent's firing frequency (10 ** log-sparsity)."""
        return 10.0 ** self.log_sparsity.astype(np.float64)
