"""Step metrics: where along a perturbation curve the model blows up or leaves its plateau.

Each metric takes one curve ``[k]`` (-> int) or a batch ``[B, k]`` (-> int64 ``[B]``), numpy or
torch, and optional ``lengths`` (``[B]``, or one int): curve b then uses its first ``lengths[b]``
points only. Definitions follow the authors' code, with the paper text's variants as keywords;
docs/method.md ("Step metrics") states them. ``flat_slope`` and the AP ``threshold`` are in
GPT-2's units; other subjects pass theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor

CUT_METRICS = ("ms", "ap")
"""Metrics read on absolute-step curves cut at their target; AUC and NL read whole curves."""


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


MS_FLAT = 99
"""The MS step of a flat curve (no slope above the flat slope)."""
AP_NEVER = 100
"""The AP step of a curve that never reaches the threshold."""


def _slopes(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """MS's slopes ``[B, k]``: first differences, the first one repeated in front; -inf past each
    length and on curves of one point."""
    k = values.shape[1]
    slopes = np.diff(values, axis=1, prepend=values[:, :1])
    slopes[:, 0] = slopes[:, min(1, k - 1)]
    valid = (np.arange(k) < lengths[:, None]) & (lengths[:, None] >= 2)
    return np.where(valid, slopes, -np.inf)


def ms_step(
    curves: ArrayLike,
    lengths: ArrayLike | int | None = None,
    *,
    flat_slope: float = 0.02,
    flat_value: int = MS_FLAT,
) -> int | np.ndarray:
    """Max-slope (MS) step: the index of the largest first difference (the first one repeated in
    front, first index on ties), or ``flat_value`` (99) when no slope exceeds ``flat_slope``.
    """
    values, lengths = _prepare(curves, lengths)
    slopes = _slopes(values, lengths)
    flat = ~(slopes.max(axis=1) > flat_slope)
    return _output(np.where(flat, flat_value, slopes.argmax(axis=1)), curves)


def _auc_terms(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUC's terms at each point s: the triangle ``v_s · w_s / 2`` and the trapezoid area under
    ``v_0..v_s`` (both ``[B, k]``), and ``w_s = s + width`` (``[k]``)."""
    n_rows, k = values.shape
    widths = np.arange(k) + width
    trapezoids = (values[:, 1:] + values[:, :-1]) / 2
    area = np.concatenate([np.zeros((n_rows, 1)), np.cumsum(trapezoids, axis=1)], axis=1)
    return values * widths / 2, area, widths


def auc_step(
    curves: ArrayLike,
    lengths: ArrayLike | int | None = None,
    *,
    start: int = 5,
    triangle: Literal["points", "span"] = "points",
    include_last: bool = False,
) -> int | np.ndarray:
    """Area-under-curve (AUC) step: the first ``s`` of the largest ratio of the triangle
    ``v_s · w_s / 2`` to the trapezoid area under ``v_0..v_s`` (0 where that area is 0).

    Candidates ``s = start .. L-2`` (the last point only with ``include_last``); ``w_s = s + 1``
    (``triangle="points"``, the code) or ``s`` (``"span"``, the text). A curve needs at least
    ``start + 2`` points.
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
    s = np.arange(values.shape[1])
    triangle_area, area, _ = _auc_terms(values, widths[triangle])
    ratio = np.divide(triangle_area, area, out=np.zeros_like(area), where=area != 0)
    candidate = (s >= start) & (s <= last[:, None])
    return _output(np.where(candidate, ratio, -np.inf).argmax(axis=1), curves)


def _nl_line(values: np.ndarray, fit_end: int) -> np.ndarray:
    """NL's line ``[B, k]`` through ``(0, v_0)`` and ``(fit_end, v_fit_end)``."""
    v0, v_end = values[:, :1], values[:, fit_end : fit_end + 1]
    return v0 + (v_end - v0) * np.arange(values.shape[1]) / fit_end


def nl_step(
    curves: ArrayLike,
    lengths: ArrayLike | int | None = None,
    *,
    tol: float = 0.20,
    fit_end: int = 9,
) -> int | np.ndarray:
    """Non-linearity (NL) step: ``i - 1`` for the first ``i > fit_end`` where the curve departs from
    the line through ``(0, v_0)`` and ``(fit_end, v_fit_end)`` by more than ``tol`` of the line
    (20 %, the code; the text says 10 %), else the curve length. A line at 0 counts any departure.
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
    line = _nl_line(values, fit_end)
    tested = (i > fit_end) & (i < lengths[:, None])
    departs = np.abs(values - line) > tol * np.abs(line)
    return _output(_first_true(departs & tested, lengths + 1) - 1, curves)


def ap_step(
    curves: ArrayLike,
    lengths: ArrayLike | int | None = None,
    *,
    threshold: float = 20.0,
    never: int = AP_NEVER,
) -> int | np.ndarray:
    """Activation-plateau (AP) step: the first index with ``v_i >= threshold``, else ``never``."""
    values, lengths = _prepare(curves, lengths)
    used = np.arange(values.shape[1]) < lengths[:, None]
    reached = (values >= threshold) & used
    return _output(_first_true(reached, never), curves)


def absolute_lengths(
    distance: ArrayLike | float, step: float = 0.5, n_steps: int = 101
) -> int | np.ndarray:
    """Points kept of each absolute-step curve: ``floor(distance / step)`` clipped to
    ``[1, n_steps]`` (the point on the target is dropped, as the authors cut). ``distance``
    ``||T - A||``, a float (-> int) or ``[B]`` (-> int64 ``[B]``).
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
