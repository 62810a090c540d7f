"""Step metrics: known answers by construction, and the vectorised batch against per-curve loops."""

import numpy as np
import pytest
import torch

from synthact.method.metrics import METRICS, absolute_lengths, ap_step, auc_step, ms_step, nl_step

K = 101
RAMP = np.arange(K, dtype=float)


def step_curve(at: int, height: float = 10.0, k: int = K) -> np.ndarray:
    """0 before ``at``, ``height`` from ``at`` on."""
    return np.where(np.arange(k) >= at, height, 0.0)


# --- literal per-curve transcriptions of the definitions (the reference) -------------------------


def reference_ms(v, flat_slope=0.02, flat_value=99):
    if len(v) < 2:
        return flat_value
    diffs = [v[i] - v[i - 1] for i in range(1, len(v))]
    slopes = [diffs[0], *diffs]
    if max(slopes) <= flat_slope:
        return flat_value
    return slopes.index(max(slopes))


def reference_auc(v, start=5, triangle="points", include_last=False):
    """The authors' loop: ratio of the first i points, i = 1 .. len - 1 (the last point unseen)."""
    ratios = []
    for i in range(1, len(v) + include_last):
        area = np.trapezoid(v[:i])
        width = i if triangle == "points" else i - 1
        ratios.append(0 if area == 0 else v[i - 1] * width / 2 / area)
    return int(np.argmax(ratios[start:])) + start


def reference_nl(v, tol=0.20, fit_end=9):
    for i in range(fit_end + 1, len(v)):
        line = v[0] + (v[fit_end] - v[0]) * i / fit_end
        if abs(v[i] - line) / line > tol:  # the tables' rule; these curves have line > 0
            return i - 1
    return len(v)


def reference_ap(v, threshold=20.0, never=100):
    return next((i for i, x in enumerate(v) if x >= threshold), never)


def random_curves(n: int, seed: int) -> np.ndarray:
    """Increasing curves from 0: a linear plateau plus a sigmoid blowup plus positive noise."""
    rng = np.random.default_rng(seed)
    x = np.arange(K)
    centre, width = rng.uniform(10, 90, (n, 1)), rng.uniform(1, 10, (n, 1))
    amp, slope = rng.uniform(2, 60, (n, 1)), rng.uniform(0.005, 0.4, (n, 1))
    rise = np.diff(amp / (1 + np.exp(-(x - centre) / width)), axis=1)
    increments = slope + rise + rng.exponential(0.03, (n, K - 1))
    return np.concatenate([np.zeros((n, 1)), np.cumsum(increments, axis=1)], axis=1)


CASES = [
    (ms_step, reference_ms, {}),
    (ms_step, reference_ms, {"flat_slope": 0.3, "flat_value": 7}),
    (auc_step, reference_auc, {}),
    (auc_step, reference_auc, {"start": 12, "triangle": "span"}),
    (auc_step, reference_auc, {"include_last": True}),
    (nl_step, reference_nl, {}),
    (nl_step, reference_nl, {"tol": 0.10, "fit_end": 5}),
    (ap_step, reference_ap, {}),
    (ap_step, reference_ap, {"threshold": 7.5, "never": -1}),
]


def random_walks(n: int, seed: int) -> np.ndarray:
    """Curves that also fall and go negative."""
    return np.cumsum(np.random.default_rng(seed).normal(0, 1, (n, K)), axis=1)


@pytest.mark.parametrize(("metric", "reference", "kwargs"), CASES)
def test_batch_matches_per_curve_reference(metric, reference, kwargs):
    curves = random_curves(300, seed=1)
    if metric is not nl_step:  # the tables' NL rule assumes a positive line
        curves[::3] = random_walks(100, seed=10)
    shortest = 14 if metric is auc_step else 1  # AUC needs a candidate after its start
    lengths = np.random.default_rng(2).integers(shortest, K + 1, 300)
    lengths[:20] = K
    padded = np.where(np.arange(K) < lengths[:, None], curves, np.nan)
    expected = [reference(c[:n], **kwargs) for c, n in zip(curves, lengths, strict=True)]

    batch = metric(padded, lengths, **kwargs)
    assert batch.dtype == np.int64 and batch.shape == (300,)
    np.testing.assert_array_equal(batch, expected)
    single = [metric(c, int(n), **kwargs) for c, n in zip(padded[:40], lengths[:40], strict=True)]
    assert single == expected[:40]
    assert len(set(expected)) > 10  # the curves exercise the metric


@pytest.mark.parametrize("metric", METRICS.values())
def test_torch_input_equals_numpy(metric):
    curves = random_curves(50, seed=3).astype(np.float32)
    lengths = np.random.default_rng(4).integers(7, K + 1, 50)
    expected = metric(curves, lengths)
    np.testing.assert_array_equal(
        metric(torch.from_numpy(curves), torch.from_numpy(lengths)), expected
    )


@pytest.mark.parametrize("metric", METRICS.values())
def test_single_curve_returns_int(metric):
    result = metric(random_curves(1, seed=5)[0])
    assert type(result) is int


# --- MS ------------------------------------------------------------------------------------------


def test_ms_finds_the_jump():
    assert ms_step(step_curve(37)) == 37
    assert ms_step(0.01 * RAMP + step_curve(60)) == 60


def test_ms_ties_take_the_first_and_slope0_is_repeated():
    assert ms_step(2 * RAMP) == 0  # all slopes equal: the repeated slopes[0] wins
    assert ms_step(np.r_[0.0, 5.0, 5.1, 5.2]) == 0  # largest at the first difference
    assert ms_step(step_curve(20) + step_curve(50)) == 20


def test_ms_flat_threshold_is_strict():
    assert ms_step(0.5 * RAMP, flat_slope=0.5) == 99
    assert ms_step(0.5 * RAMP, flat_slope=0.49) == 0
    assert ms_step(0.01 * RAMP) == 99
    assert ms_step(np.zeros(K), flat_value=-1) == -1


def test_ms_lengths_cut_before_the_jump():
    assert ms_step(step_curve(50), 50) == 99
    assert ms_step(step_curve(50), 51) == 50
    assert ms_step(np.r_[0.0, 100.0], 1) == 99  # one point: no slope
    assert ms_step(np.r_[-5.0, -10.0, 3.0], 2) == 99


# --- AUC -----------------------------------------------------------------------------------------


def test_auc_step_function_and_ramp():
    assert auc_step(step_curve(30)) == 30  # ratio (s+1)/2 / (s-29.5), largest at s=30
    assert auc_step(RAMP) == 5  # ratio (s+1)/s, falling: the first candidate
    assert auc_step(RAMP, start=9) == 9
    sigmoid = 1 / (1 + np.exp(-(RAMP - 60) / 2))
    assert 55 <= auc_step(sigmoid) <= 60  # where the blowup starts


def test_auc_triangle_width_code_vs_paper():
    curve = np.array([0.0, 1.0, 2.2, 0.0])
    assert auc_step(curve, start=1, triangle="points") == 1  # ratios 2.0, 1.571
    assert auc_step(curve, start=1, triangle="span") == 2  # ratios 1.0, 1.048


def test_auc_never_considers_the_last_point():
    curve = np.r_[np.ones(20), 1000.0]  # the jump is at the last point
    assert auc_step(curve) == 5  # ratios (s+1)/(2s), falling: the first candidate
    assert auc_step(curve, include_last=True) == 20  # ratio 21000/2/1019.5 = 10.3


def test_auc_zero_area_has_ratio_zero():
    assert auc_step(np.zeros(K)) == 5  # every ratio 0: the first candidate
    assert auc_step(np.r_[np.zeros(20), step_curve(10, 1.0, K - 20)]) == 30  # ratios 0 until 30


def test_auc_needs_a_candidate():
    assert auc_step(RAMP, 7) == 5
    with pytest.raises(ValueError, match="at least 7 points"):
        auc_step(RAMP, 6)
    assert auc_step(RAMP, 6, include_last=True) == 5


# --- NL ------------------------------------------------------------------------------------------


def test_nl_finds_the_bend():
    curve = np.where(RAMP <= 40, RAMP, 2 * RAMP)
    assert nl_step(curve) == 40
    assert nl_step(curve, fit_end=3) == 40


def test_nl_tolerance_paper_vs_tables():
    curve = np.where(RAMP < 50, RAMP, 1.15 * RAMP)  # 15 % above the line from step 50
    assert nl_step(curve, tol=0.20) == K  # tables: never non-linear -> curve length
    assert nl_step(curve, tol=0.10) == 49  # paper text


def test_nl_without_departure_returns_the_length():
    assert nl_step(3 * RAMP) == K
    assert nl_step(np.where(RAMP <= 40, RAMP, 2 * RAMP), 41) == 41
    assert nl_step(RAMP, 10) == 10  # nothing to test after fit_end


def test_nl_zero_line_counts_any_departure():
    assert nl_step(step_curve(20, 1e-6)) == 19
    assert nl_step(np.zeros(K)) == K


# --- AP and truncation -------------------------------------------------------------------------


def test_ap_first_crossing():
    assert ap_step(RAMP) == 20  # v_20 == 20 counts
    assert ap_step(RAMP, threshold=20.5) == 21
    assert ap_step(0.1 * RAMP) == 100
    assert ap_step(RAMP, 20) == 100
    assert ap_step(RAMP, 21) == 20


def test_absolute_lengths():
    distance = np.array([0.0, 0.49, 0.5, 0.99, 1.0, 40.0, 40.2, 50.0, 50.5, 1e9])
    np.testing.assert_array_equal(
        absolute_lengths(distance), [1, 1, 1, 1, 2, 80, 80, 100, 101, 101]
    )
    assert absolute_lengths(10.0, step=0.25, n_steps=30) == 30
    assert absolute_lengths(torch.tensor([4.0]), step=2.0).tolist() == [2]
    assert type(absolute_lengths(3.0)) is int


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("curves", "lengths", "error"),
    [
        (np.zeros((2, 3, 4)), None, ValueError),
        (np.float64(1.0), None, ValueError),
        (np.zeros((2, 0)), None, ValueError),
        (np.array(["a", "b"]), None, TypeError),
        (np.r_[0.0, np.nan, 1.0], None, ValueError),
        (np.zeros((2, 5)), np.array([2.0, 3.0]), TypeError),
        (np.zeros((2, 5)), np.array([0, 3]), ValueError),
        (np.zeros((2, 5)), np.array([2, 6]), ValueError),
        (np.zeros((2, 5)), np.array([2, 3, 4]), ValueError),
    ],
)
@pytest.mark.parametrize("metric", METRICS.values())
def test_bad_curves_raise(metric, curves, lengths, error):
    with pytest.raises(error):
        metric(curves, lengths)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: auc_step(RAMP, start=-1), "start"),
        (lambda: auc_step(RAMP, triangle="area"), "triangle"),
        (lambda: nl_step(RAMP, tol=-0.1), "tol"),
        (lambda: nl_step(RAMP, fit_end=0), "fit_end"),
        (lambda: absolute_lengths(np.array([1.0, -1.0])), "distance"),
        (lambda: absolute_lengths(np.array([np.nan])), "distance"),
        (lambda: absolute_lengths(1.0, step=0.0), "step"),
    ],
)
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_metrics_table():
    assert {"ms": ms_step, "auc": auc_step, "nl": nl_step, "ap": ap_step} == METRICS
