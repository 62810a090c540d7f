"""Claim checks pass on data built to satisfy the hypothesis and fail on data that does not."""

import numpy as np
import pytest

from synthact.judge import checks


@pytest.fixture
def steps():
    rng = np.random.default_rng(0)
    n = 500
    real = rng.normal(40, 10, n).round()
    return {
        "real": real,
        "near": (real + rng.normal(0, 1, n)).round(),  # almost the real distribution
        "shifted": rng.normal(55, 10, n).round(),  # clearly later and different
        "mid": rng.normal(45, 10, n).round(),
    }


def test_earlier(steps):
    assert checks.earlier(steps, "real", "shifted").passed
    assert not checks.earlier(steps, "shifted", "real").passed
    assert not checks.earlier(steps, "real", "near").passed


def test_ks_thresholds(steps):
    assert checks.ks_above(steps, "real", "shifted", 0.3).passed
    assert not checks.ks_above(steps, "real", "near", 0.3).passed
    assert checks.ks_below(steps, "near", "real", 0.1).passed
    assert not checks.ks_below(steps, "shifted", "real", 0.1).passed


def test_closer_and_non_inferiority(steps):
    assert checks.closer(steps, "mid", "shifted").passed
    assert not checks.closer(steps, "shifted", "mid").passed
    # mid is not closer than near, but within a slack of 0.5 of it
    assert not checks.closer(steps, "mid", "near").passed
    assert checks.closer(steps, "mid", "near", slack=0.5).passed


def test_fraction_between(steps):
    assert checks.fraction_between(steps["real"], 10, 70, 0.9, "real").passed
    assert not checks.fraction_between(steps["real"], 40, 70, 0.9, "real").passed


def test_check_is_deterministic(steps):
    assert checks.closer(steps, "mid", "shifted") == checks.closer(steps, "mid", "shifted")


def test_bound_check_needs_one_side(steps):
    with pytest.raises(ValueError, match="exactly one"):
        checks.bound_check("x", lambda x: x.mean(axis=-1), [steps["real"]])


def test_markdown_lists_every_check(steps):
    found = [checks.earlier(steps, "real", "shifted"), checks.earlier(steps, "shifted", "real")]
    text = checks.checks_markdown(found)
    assert "| pass |" in text and "| FAIL |" in text


def test_paper_ordering_orders_structured_and_baseline_in_absolute_mode_only(steps):
    named = {
        "real": steps["real"],
        "synthetic-structured": steps["near"],
        "synthetic-baseline": steps["mid"],
        "random": steps["shifted"],
    }
    assert len(checks.paper_ordering(named, "relative")) == 2
    absolute = checks.paper_ordering(named, "absolute")
    assert len(absolute) == 3 and all(c.passed for c in absolute)
    swapped = {**named, "synthetic-structured": steps["mid"], "synthetic-baseline": steps["near"]}
    assert not all(c.passed for c in checks.paper_ordering(swapped, "absolute"))


def test_mean_within_checks_both_sides(steps):
    inside = checks.mean_within(steps["real"], 30, 50, "x")
    assert [c.statement for c in inside] == ["mean x > 30", "mean x < 50"]
    assert all(c.passed for c in inside)
    assert [c.passed for c in checks.mean_within(steps["real"], 30, 39, "x")] == [True, False]


def test_median_bounds_are_order_statistics():
    x = np.arange(1.0, 21.0)  # n = 20: P(Binomial(20, 1/2) < 6) = 0.021 <= 5 % < P(... < 7)
    low, high = checks.median_within(x, 5, 16, "x")
    assert (low.estimate, low.bound, high.bound) == (10.5, 6.0, 15.0)
    assert low.passed and high.passed
    assert not checks.median_within(x, 6, 16, "x")[0].passed  # strictly above the threshold
    with pytest.raises(ValueError, match="too few"):
        checks.median_within(np.arange(4.0), 0, 5, "x")


def test_fraction_bound_is_clopper_pearson():
    x = np.array([1] * 95 + [100] * 5)  # 95 of 100 inside
    found = checks.fraction_between(x, 0, 10, 0.9, "x")
    assert found.estimate == 0.95
    assert found.bound == pytest.approx(0.8977, abs=1e-4)  # beta.ppf(0.05, 95, 6)
    assert not found.passed
    assert checks.fraction_between(x, 200, 300, 0.0, "x").bound == 0.0


def test_a_ks_contrast_needs_one_side(steps):
    with pytest.raises(ValueError, match="exactly one"):
        checks.ks_contrast("x", [(1, steps["real"], steps["mid"])])


def test_standardized_gap_is_cohens_d_and_defined_for_constants():
    earlier, later = np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0, 5.0])
    # gap 2, both variances 2/3 (ddof 0): d = 2 / sqrt(2/3) = 2.449
    assert checks.standardized_gap(earlier, later) == pytest.approx(2 / np.sqrt(2 / 3))
    assert checks.standardized_gap(np.full(4, 40.0), np.full(4, 40.0)) == 0.0
    assert checks.standardized_gap(np.full(4, 40.0), np.full(4, 41.0)) == np.inf
    batched = checks.standardized_gap(np.stack([earlier, later]), np.stack([later, earlier]))
    np.testing.assert_allclose(batched, [2.449, -2.449], atol=1e-3)
    assert checks.paper_standardized_gap([41.21, 10.32], [52.49, 10.34]) == pytest.approx(
        1.092, abs=1e-3
    )


def test_gap_below_shows_an_absent_effect():
    rng = np.random.default_rng(0)
    same = {"a": rng.normal(50, 10, 400), "b": rng.normal(50, 10, 400)}
    assert checks.gap_below(same, "a", "b", 0.5).passed
    shifted = {"a": rng.normal(40, 10, 400), "b": rng.normal(50, 10, 400)}  # d = 1
    assert not checks.gap_below(shifted, "a", "b", 0.5).passed
