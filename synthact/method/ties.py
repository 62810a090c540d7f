"""Ties: every step a metric could give when float rounding moves the curve's values a little.

A step metric is an argmax or a first crossing, so where two slopes (or ratios) are equal up to
rounding, or a value sits on a threshold, the step is decided by the last bits of the curve, and
those differ between CPU kernels (AVX2, AVX-512, AMX), thread counts, CUDA and library versions.
``possible_<metric>(curves, lengths, ...)`` returns, per curve, the steps that the metric gives on
*some* curve within ``±delta`` of it, pointwise, with ``delta = rtol · max|v|`` over the curve's
used points: a bool mask ``[B, S]`` (``mask[b, s]``: step ``s`` is possible for curve ``b``) that
always holds the metric's own step. A row is *tied* when more than one step is possible.

The bound is worst case (interval arithmetic on each metric's formula), so the mask holds the
step of every curve within ``delta``; ``TIE_RTOL`` is 10 times the largest difference measured
between CPU kernel paths (docs/method.md, "Ties"). Arguments are those of `synthact.method.metrics`.
"""

from __future__ import annotations

import numpy as np

from synthact.method.metrics import (
    AP_NEVER,
    MS_FLAT,
    ArrayLike,
    _auc_terms,
    _nl_line,
    _prepare,
    _slopes,
)

TIE_RTOL = 1e-5
"""Relative to a curve's largest value: how far rounding may move any of its values."""


def _mask(n_rows: int, *widths: int) -> np.ndarray:
    return np.zeros((n_rows, max(widths) + 1), dtype=bool)


def _deltas(values: np.ndarray, lengths: np.ndarray, rtol: float) -> np.ndarray:
    """``[B, 1]``: rtol times each curve's largest absolute value over its used points."""
    used = np.arange(values.shape[1]) < lengths[:, None]
    return rtol * np.where(used, np.abs(values), 0.0).max(axis=1, keepdims=True)


def _first_crossings(definite: np.ndarray, maybe: np.ndarray) -> np.ndarray:
    """Possible first crossings ``[B, k + 1]``: index i where a crossing may happen with none
    certain before it; column k where no crossing is certain (the metric's fallback)."""
    k = definite.shape[1]
    first_certain = np.where(definite.any(axis=1), definite.argmax(axis=1), k)
    possible = maybe & (np.arange(k) <= first_certain[:, None])
    return np.concatenate([possible, (first_certain == k)[:, None]], axis=1)


def possible_ms(
    curves: ArrayLike,
    lengths: ArrayLike | int | None = None,
    *,
    flat_slope: float = 0.02,
    flat_value: int = MS_FLAT,
    rtol: float = TIE_RTOL,
) -> np.ndarray:
    """MS steps within rounding: slopes move by at most ``2·delta``, so any slope within
    ``4·delta`` of the largest may win, and ``flat_value`` where the largest is within ``2·delta``
    of ``flat_slope``."""
    values, lengths = _prepare(curves, lengths)
    n_rows, k = values.shape
    delta = _deltas(values, lengths, rtol)
    slopes = _slopes(values, lengths)
    top = slopes.max(axis=1, keepdims=True)
    winners = (slopes >= top - 4 * delta) & (slopes + 2 * delta > flat_slope)
    mask = _mask(n_rows, k - 1, flat_value)
    mask[:, :k] = winners
    mask[:, flat_value] |= (top - 2 * delta <= flat_slope)[:, 0]
    return mask


def possible_auc(
    curves: ArrayLike,
    lengths: ArrayLike | int | None = None,
    *,
    start: int = 5,
    triangle: str = "points",
    include_last: bool = False,
    rtol: float = TIE_RTOL,
) -> np.ndarray:
    """AUC steps within rounding: each candidate's ratio as an interval (its triangle moves by
    ``delta·w_s/2``, its area by ``delta·s``); a candidate whose upper bound reaches the largest
    lower bound may win. An area that may be 0 leaves its ratio unbounded."""
    values, lengths = _prepare(curves, lengths)
    n_rows, k = values.shape
    delta = _deltas(values, lengths, rtol)
    s = np.arange(k)
    tri, area, width = _auc_terms(values, 1 if triangle == "points" else 0)
    tri_lo, tri_hi = tri - delta * width / 2, tri + delta * width / 2
    area_lo, area_hi = area - delta * s, area + delta * s
    with np.errstate(divide="ignore", invalid="ignore"):
        ends = np.stack([tri_lo / area_lo, tri_lo / area_hi, tri_hi / area_lo, tri_hi / area_hi])
        exact = np.where(area != 0, tri / area, 0.0)  # the metric's own ratio, for delta = 0
    lo = np.where(area_lo > 0, ends.min(axis=0), -np.inf)
    hi = np.where(area_lo > 0, ends.max(axis=0), np.inf)
    lo, hi = np.where(delta == 0, exact, lo), np.where(delta == 0, exact, hi)
    last = lengths - (1 if include_last else 2)
    candidate = (s >= start) & (s <= last[:, None])
    lo, hi = np.where(candidate, lo, -np.inf), np.where(candidate, hi, -np.inf)
    mask = _mask(n_rows, k - 1)
    mask[:, :k] = candidate & (hi >= lo.max(axis=1, keepdims=True))
    return mask


def possible_nl(
    curves: ArrayLike,
    lengths: ArrayLike | int | None = None,
    *,
    tol: float = 0.20,
    fit_end: int = 9,
    rtol: float = TIE_RTOL,
) -> np.ndarray:
    """NL steps within rounding: the fitted line moves by ``delta·|2i/fit_end − 1|`` at point i
    (an extrapolation past ``fit_end``), so a point whose departure is within that (plus
    ``delta``) of the 20 % band may or may not depart; each such point is a possible step until
    the first certain departure, and the length while none is certain."""
    values, lengths = _prepare(curves, lengths)
    n_rows, k = values.shape
    mask = _mask(n_rows, k)
    if k <= fit_end + 1:
        mask[np.arange(n_rows), lengths] = True
        return mask
    delta = _deltas(values, lengths, rtol)
    i = np.arange(k)
    line = _nl_line(values, fit_end)
    line_moves = delta * np.maximum(1.0, np.abs(2 * i / fit_end - 1))
    margin = np.abs(values - line) - tol * np.abs(line)
    slack = delta + (1 + tol) * line_moves
    tested = (i > fit_end) & (i < lengths[:, None])
    crossings = _first_crossings(tested & (margin > slack), tested & (margin >= -slack))
    mask[:, : k - 1] = crossings[:, 1:k]  # a departure at i gives step i - 1
    mask[np.arange(n_rows), lengths] |= crossings[:, k]
    return mask


def possible_ap(
    curves: ArrayLike,
    lengths: ArrayLike | int | None = None,
    *,
    threshold: float = 20.0,
    never: int = AP_NEVER,
    rtol: float = TIE_RTOL,
) -> np.ndarray:
    """AP steps within rounding: each index whose value is within ``delta`` of the threshold,
    up to the first that reaches it for certain; ``never`` while none does."""
    values, lengths = _prepare(curves, lengths)
    n_rows, k = values.shape
    delta = _deltas(values, lengths, rtol)
    used = np.arange(k) < lengths[:, None]
    crossings = _first_crossings(
        used & (values - delta >= threshold), used & (values + delta >= threshold)
    )
    mask = _mask(n_rows, k - 1, never)
    mask[:, :k] = crossings[:, :k]
    mask[:, never] |= crossings[:, k]
    return mask


POSSIBLE = {"ms": possible_ms, "auc": possible_auc, "nl": possible_nl, "ap": possible_ap}
"""The possible-step function of each step metric, by short name."""


def tied_rows(mask: np.ndarray) -> dict[int, list[int]]:
    """``{row: its possible steps}`` for the rows with more than one."""
    return {
        int(row): np.flatnonzero(mask[row]).tolist() for row in np.flatnonzero(mask.sum(axis=1) > 1)
    }


def format_steps(steps: list[int]) -> str:
    """Sorted steps as runs: ``[3, 4, 5, 9]`` -> ``"3-5,9"``."""
    runs: list[list[int]] = []
    for step in steps:
        if runs and step == runs[-1][1] + 1:
            runs[-1][1] = step
        else:
            runs.append([step, step])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def parse_steps(text: str) -> list[int]:
    """The inverse of `format_steps`."""
    steps: list[int] = []
    for run in text.split(","):
        a, _, b = run.partition("-")
        steps.extend(range(int(a), int(b or a) + 1))
    return steps
