"""Ties: the possible steps hold the metric's own step and the step of every curve within rounding,
and only rows that rounding can decide are tied."""

from __future__ import annotations

import numpy as np
import pytest

from synthact.method import metrics, ties

ROWS, POINTS = 500, 100


def _families(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Curves ``[ROWS, POINTS]``: straight lines (every slope tied), random walks, sigmoids of
    random centre and width, a ramp through the AP threshold, quarter-quantized walks (exact
    ties), and a line bent exactly onto NL's 20 % band."""
    x = np.arange(POINTS)
    centre, width = rng.uniform(20, 80, (ROWS, 1)), rng.uniform(1, 10, (ROWS, 1))
    bend = np.concatenate([x[:10], x[10:] * 1.2]).astype(np.float64)
    return {
        "line": np.tile(np.float32(0.505) * x.astype(np.float32), (ROWS, 1)).astype(np.float64),
        "walk": rng.random((ROWS, POINTS)).cumsum(axis=1),
        "sigmoid": 50 / (1 + np.exp(-(x - centre) / width)),
        "ramp": np.tile(np.linspace(0, 40, POINTS), (ROWS, 1)),
        "quantized": np.round(rng.random((ROWS, POINTS)).cumsum(axis=1) * 4) / 4,
        "nl-band": np.tile(bend, (ROWS, 1)),
    }


FAMILIES = ("line", "walk", "sigmoid", "ramp", "quantized", "nl-band")


def _lengths(metric: str, rng: np.random.Generator) -> np.ndarray | None:
    return rng.integers(12, POINTS + 1, ROWS) if metric in metrics.CUT_METRICS else None


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("metric", sorted(metrics.METRICS))
def test_every_curve_within_rounding_gives_a_possible_step(family, metric):
    rng = np.random.default_rng(0)
    curves, lengths = _families(rng)[family], _lengths(metric, rng)
    possible = ties.POSSIBLE[metric](curves, lengths)
    rows = np.arange(ROWS)
    assert possible[rows, metrics.METRICS[metric](curves, lengths)].all()
    used = np.arange(POINTS) < (POINTS if lengths is None else lengths[:, None])
    delta = ties.TIE_RTOL * np.abs(np.where(used, curves, 0)).max(axis=1, keepdims=True)
    for _ in range(4):
        moved = curves + rng.uniform(-1, 1, curves.shape) * delta
        assert possible[rows, metrics.METRICS[metric](moved, lengths)].all()


def test_a_straight_line_ties_every_slope_and_nothing_else():
    line = np.arange(50, dtype=np.float32) * np.float32(0.505)
    assert np.flatnonzero(ties.possible_ms(line)[0]).tolist() == list(range(50))
    for metric in ("auc", "nl", "ap"):
        assert ties.POSSIBLE[metric](line).sum() == 1


def test_clear_winners_and_crossings_are_not_tied():
    x = np.arange(100.0)
    curve = 0.3 * x + 50 / (1 + np.exp(-(x - 40.3) / 3))  # one steepest slope, no plateau at 0
    for metric, step in metrics.METRICS.items():
        assert np.flatnonzero(ties.POSSIBLE[metric](curve)[0]).tolist() == [step(curve)], metric


def test_a_slope_at_the_flat_slope_may_be_flat_or_not():
    curve = np.arange(100) * 0.02
    possible = np.flatnonzero(ties.possible_ms(curve)[0])
    assert metrics.MS_FLAT in possible and 0 in possible


def test_a_value_at_the_threshold_may_reach_it_there_or_later():
    curve = np.array([0.0, 10.0, 20.0, 20.0 + 1e-6, 30.0])
    assert np.flatnonzero(ties.possible_ap(curve)[0]).tolist() == [2, 3, 4]


@pytest.mark.parametrize("steps", [[3], [3, 4, 5, 9], [0, 2, 4], list(range(100))])
def test_steps_as_runs_round_trip(steps):
    assert ties.parse_steps(ties.format_steps(steps)) == steps
