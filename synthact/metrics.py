"""Step metrics: where along a perturbation curve the model "blows up" or leaves its plateau.

Every metric takes one curve ``[k]`` (returns an ``int``) or a batch ``[B, k]`` (returns an
``np.ndarray`` of int64, shape ``[B]``), as numpy or torch, and an optional ``lengths`` (``[B]``
ints, or one int for one curve): curve ``b`` then uses only its first ``lengths[b]`` points, the
rest (padding, NaN allowed) is ignored. Absolute-step curves are cut this way at their target,
see `absolute_lengths`. All work is vectorised over rows with masks, in float64.

Definitions follow the authors' code, which produced the paper's tables; where the paper's text
differs, the text's variant is a keyword (named in each docstring). Scale-dependent constants
(``flat_slope``, the AP ``threshold``, the absolute ``step``) are GPT-2's defaults; other subjects
pass their own.

Which metrics read cut curves (`CUT_METRICS`): with absolute steps the authors cut the L2 and KL
curves at ``floor(||T - A|| / step)`` points for MS (``l2s[:target_step]``) and, in the plateau
notebook, for AP; AUC and NL were computed on the full, uncut curves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor

CUT_METRICS = ("ms", "ap")
"""Metrics computed on absolute-step curves cut at their target (see the module docstring)."""


def _prepare(curves: ArrayLike, lengths: ArrayLike | int | None) -> tuple[np.ndarray, np.ndarray]:
    """Curves as float64 ``[B, k]`` (0 past each length), lengths as int64 ``[B]`` in [1, k]."""
    if isinstance(curves, torch.Tensor):
        curves = curves.detach().cpu().numpy()
    values = np.asarray(curves)
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise TypeError(f"curves must be numeric (numpy or torch), got dtype {values.dtype}")
    if values.ndim not in (1, 2):
        raise ValueError(f"curves must be one curve [k] or a batch [B, k], got {values.shape}")
    values = np.atleast_2d(values).astype(np.float64)
    n_rows, k = values.shape
    if k == 0:
        raise ValueError("curves have no points (k = 0)")
    lengths = _lengths(lengths, n_rows, k)
    used = np.arange(k) < lengths[:, None]
    bad = used & ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ValueError(
            f"curve {row} has NaN or inf within its first {lengths[row]} points; "
            "fix the curves or shorten lengths"
        )
    return np.where(used, values, 0.0), lengths


def _lengths(lengths: ArrayLike | int | None, n_rows: int, k: int) -> np.ndarray:
    if lengths is None:
        return np.full(n_rows, k, dtype=np.int64)
    if isinstance(lengths, torch.Tensor):
        lengths = lengths.detach().cpu().numpy()
    lengths = np.asarray(lengths)
    if not np.issubdtype(lengths.dtype, np.integer):
        raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
    lengths = np.broadcast_to(lengths, (n_rows,)) if lengths.ndim == 0 else lengths
    if lengths.shape != (n_rows,):
        raise ValueError(f"lengths must have shape [{n_rows}] (one per curve), got {lengths.shape}")
    if n_rows and (lengths.min() < 1 or lengths.max() > k):
        raise ValueError(
            f"lengths must lie in [1, {k}] (points per curve), got {lengths.min()}..{lengths.max()}"
        )
    return lengths.astype(np.int64)


def _output(steps: np.ndarray, curves: ArrayLike) -> int | np.ndarray:
    """``int`` for one curve, ``int64 [B]`` for a batch."""
    steps = steps.astype(np.int64)
    return int(steps[0]) if np.ndim(curves) == 1 else steps


def _first_true(hit: np.ndarray, otherwise: np.ndarray | int) -> np.ndarray:
    """Per row, the index of the first True in ``hit [B, k]``, else ``otherwise``."""
    return np.where(hit.any(axis=1), hit.argmax(axis=1), otherwise)


def ms_step(
    curves: ArrayLike,
    lengths: ArrayLike | int | None = None,
    *,
    flat_slope: float = 0.02,
    flat_value: int = 99,
) -> int | np.ndarray:
    """Max-slope (MS) step: the index of the steepest rise.

    slopes = first differences ``v_i - v_{i-1}`` (i >= 1) with ``slopes[0] = v_1 - v_0`` repeated in
    front, so ``slopes`` has one entry per point. If no slope is ``> flat_slope`` the curve is flat
    and the result is ``flat_value``; otherwise it is the index of the largest slope, the first one
    on ties (a maximal first difference therefore gives 0; the authors' ``np.argsort(slopes)[::-1]``
    leaves exact ties to the sort, which only matters for that repeated first slope). A curve of one
    point has no slope and is flat.

    Args:
        curves: ``[k]`` or ``[B, k]``.
        lengths: ``[B]`` points used per curve (default: all ``k``).
        flat_slope: GPT-2's L2 scale (0.02); scale it with the subject.
        flat_value: result for a flat curve (99 in the authors' code, its last step index).
    """
    values, lengths = _prepare(curves, lengths)
    k = values.shape[1]
    slopes = np.diff(values, axis=1, prepend=values[:, :1])
    slopes[:, 0] = slopes[:, min(1, k - 1)]
    valid = (np.arange(k) < lengths[:, None]) & (lengths[:, None] >= 2)
    slopes = np.where(valid, slopes, -np.inf)
    flat = ~(slopes.max(axis=1) > flat_slope)
    return _output(np.where(flat, flat_value, slopes.argmax(axis=1)), curves)


def auc_step(
    curves: ArrayLike,
    lengths: ArrayLike | int | None = None,
    *,
    start: int = 5,
    triangle: Literal["points", "span"] = "points",
    include_last: bool = False,
) -> int | np.ndarray:
    """Area-under-curve (AUC) step: where a triangle most outgrows the area under the curve.

    For each candidate ``s``: ``ratio_s = (v_s * w_s / 2) / trapz(v_0..v_s)`` (unit spacing), or 0
    where that area is 0; the result is the ``s`` of the largest ratio (first on ties). As in the
    authors' code, the candidates are ``s = start .. L - 2``: the last point is never considered
    (``include_last=True`` adds it). The triangle's width ``w_s`` is ``s + 1``
    (``triangle="points"``, the authors' code, default) or ``s`` (``triangle="span"``, the
    paper's text: the triangle (0, 0), (x, 0), (x, f(x))). A curve that is 0 throughout has only
    zero ratios and gives ``start``.

    Args:
        curves: ``[k]`` or ``[B, k]``; the tables use the full, uncut curves.
        lengths: ``[B]`` points used per curve (default: all ``k``); each needs a candidate, i.e.
            at least ``start + 2`` points (``start + 1`` with ``include_last``).
        start: first candidate step.
        triangle: ``"points"`` (code) or ``"span"`` (paper text).
        include_last: also consider the last point ``s = L - 1``.
    """
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    widths = {"points": 1, "span": 0}
    if triangle not in widths:
        raise ValueError(f"triangle must be one of {sorted(widths)}, got {triangle!r}")
    values, lengths = _prepare(curves, lengths)
    needed = start + (1 if include_last else 2)
    if (lengths < needed).any():
        raise ValueError(
            f"auc_step needs curves of at least {needed} points (candidates from step {start}), "
            f"got one of {int(lengths.min())}"
        )
    last = lengths - (needed - start)  # the last candidate of each curve
    n_rows, k = values.shape
    s = np.arange(k)
    trapezoids = (values[:, 1:] + values[:, :-1]) / 2
    area = np.concatenate([np.zeros((n_rows, 1)), np.cumsum(trapezoids, axis=1)], axis=1)
    triangle_area = values * (s + widths[triangle]) / 2
    ratio = np.divide(triangle_area, area, out=np.zeros_like(area), where=area != 0)
    candidate = (s >= start) & (s <= last[:, None])
    return _output(np.where(candidate, ratio, -np.inf).argmax(axis=1), curves)


def nl_step(
    curves: ArrayLike,
    lengths: ArrayLike | int | None = None,
    *,
    tol: float = 0.20,
    fit_end: int = 9,
) -> int | np.ndarray:
    """Non-linearity (NL) step: the last step before the curve leaves its initial line.

    ``line_i`` passes through ``(0, v_0)`` and ``(fit_end, v_fit_end)``. The first
    ``i >= fit_end + 1`` with ``|v_i - line_i| / line_i > tol`` gives ``i - 1``; if there is none,
    the result is the curve length ``L``. ``tol=0.20`` is what produced the tables (authors' code);
    the paper's text says 10 % (``tol=0.10``).

    ``line_i <= 0``: the test is evaluated as ``|v_i - line_i| > tol * |line_i|``, identical to the
    code's rule for ``line_i > 0``. Where ``line_i == 0`` (a curve still 0 at ``fit_end``) any
    departure from the line counts as non-linear; a negative line (impossible for L2 and KL curves,
    which start at 0 and are >= 0) is measured relative to ``|line_i|``. A curve of at most
    ``fit_end + 1`` points has nothing to test and returns ``L``.

    Args:
        curves: ``[k]`` or ``[B, k]``.
        lengths: ``[B]`` points used per curve (default: all ``k``).
        tol: relative deviation from the line that counts as non-linear.
        fit_end: the second point of the line.
    """
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    if fit_end < 1:
        raise ValueError(f"fit_end must be >= 1, got {fit_end}")
    values, lengths = _prepare(curves, lengths)
    k = values.shape[1]
    if k <= fit_end + 1:
        return _output(lengths, curves)
    i = np.arange(k)
    v0, v_end = values[:, :1], values[:, fit_end : fit_end + 1]
    line = v0 + (v_end - v0) * i / fit_end
    tested = (i > fit_end) & (i < lengths[:, None])
    departs = np.abs(values - line) > tol * np.abs(line)
    return _output(_first_true(departs & tested, lengths + 1) - 1, curves)


def ap_step(
    curves: ArrayLike,
    lengths: ArrayLike | int | None = None,
    *,
    threshold: float = 20.0,
    never: int = 100,
) -> int | np.ndarray:
    """Activation-plateau (AP) step: the first index with ``v_i >= threshold``, else ``never``.

    Args:
        curves: ``[k]`` or ``[B, k]``.
        lengths: ``[B]`` points used per curve (default: all ``k``).
        threshold: GPT-2's L2 scale (20); scale it with the subject.
        never: result when the curve never reaches the threshold.
    """
    values, lengths = _prepare(curves, lengths)
    used = np.arange(values.shape[1]) < lengths[:, None]
    reached = (values >= threshold) & used
    return _output(_first_true(reached, never), curves)


def absolute_lengths(
    distance: ArrayLike | float, step: float = 0.5, n_steps: int = 101
) -> int | np.ndarray:
    """Points kept of each absolute-step curve: ``floor(distance / step)``, clipped to [1, n_steps].

    An absolute-step path ``A + step * n * D`` runs past its target once ``step * n`` exceeds
    ``||T - A||``; the curve is cut to its first ``floor(||T - A|| / step)`` points before any
    metric, as in the authors' code (so the point landing exactly on the target is dropped). At
    least one point is always kept; a target beyond the last step keeps all ``n_steps``.

    Args:
        distance: ``||T - A||``, a float or ``[B]``.
        step: absolute step size (GPT-2: 0.5).
        n_steps: points per curve.

    Returns:
        ``int`` for a float, int64 ``[B]`` for an array.
    """
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if isinstance(distance, torch.Tensor):
        distance = distance.detach().cpu().numpy()
    d = np.asarray(distance, dtype=np.float64)
    if not np.isfinite(d).all() or (d < 0).any():
        raise ValueError("distance must be finite and >= 0")
    lengths = np.clip(np.floor(d / step), 1, n_steps).astype(np.int64)
    return int(lengths) if lengths.ndim == 0 else lengths


METRICS: dict[str, Callable[..., int | np.ndarray]] = {
    "ms": ms_step,
    "auc": auc_step,
    "nl": nl_step,
    "ap": ap_step,
}
"""The step metrics by short name."""
