"""KS, bootstrap intervals, table rows and the tolerances against the paper's numbers."""

import math
import time

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from synthact.stats import (
    bootstrap_ci,
    bootstrap_diff_ci,
    bootstrap_distribution,
    ks,
    ks_batch,
    ks_diff_ci,
    ks_tolerance,
    mannwhitney_less,
    mean_tolerance,
    row_tolerances,
    std_tolerance,
    summary_row,
)


def mean(x):
    return x.mean(axis=-1)


# --- KS ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([1, 2, 3], [2, 3, 4], 1 / 3),  # ECDF gaps 1/3, 1/3, 1/3, 0 at 1, 2, 3, 4
        ([1, 2, 3], [4, 5], 1.0),
        ([5, 1, 3], [3, 5, 1], 0.0),
        ([0, 0, 1, 1], [0, 1, 1, 1], 0.25),  # ties: compared only after all equal values
        ([0.5, 2.5], [1, 2, 3, 4], 0.5),
    ],
)
def test_ks_hand_computed(a, b, expected):
    assert ks(np.array(a), np.array(b)) == pytest.approx(expected)
    assert ks_batch(np.array(a), np.array(b)) == pytest.approx(expected)
    assert ks(torch.tensor(a), torch.tensor(b)) == pytest.approx(expected)


def test_ks_batch_equals_scipy_per_row():
    rng = np.random.default_rng(0)
    a = rng.integers(20, 60, (40, 300))  # integer steps: many ties
    b = rng.integers(25, 70, (40, 170))
    x, y = rng.normal(size=(40, 90)), rng.normal(0.3, 1.2, size=(40, 60))
    for p, q in ((a, b), (x, y)):
        expected = [scipy_stats.ks_2samp(r, s).statistic for r, s in zip(p, q, strict=True)]
        np.testing.assert_allclose(ks_batch(p, q), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("a", "b"),
    [(np.zeros((3, 5)), np.zeros((4, 5))), (np.zeros((3, 0)), np.zeros((3, 5))), ([np.nan], [1.0])],
)
def test_ks_batch_rejects_bad_batches(a, b):
    with pytest.raises(ValueError):
        ks_batch(a, b)


@pytest.mark.parametrize("bad", [[], [1.0, np.nan], [[1.0, 2.0]], ["a", "b"]])
def test_ks_rejects_bad_samples(bad):
    with pytest.raises((ValueError, TypeError)):
        ks(np.array(bad), np.array([1.0, 2.0]))


# --- bootstrap -----------------------------------------------------------------------------------


def test_bootstrap_ci_covers_the_true_mean_with_the_right_width():
    sample = np.random.default_rng(1).normal(2.0, 1.0, 400)
    low, high = bootstrap_ci(mean, sample, seed=0)
    assert low < 2.0 < high
    assert (high - low) == pytest.approx(2 * 1.96 / math.sqrt(400), rel=0.15)


def test_bootstrap_ci_coverage_is_nominal():
    rng = np.random.default_rng(2)
    covered = [
        low < 1.0 < high
        for low, high in (
            bootstrap_ci(mean, rng.exponential(1.0, 60), n_boot=500, seed=i) for i in range(300)
        )
    ]
    assert 0.87 <= np.mean(covered) <= 0.99


def test_bootstrap_is_deterministic_per_seed():
    sample = np.random.default_rng(3).normal(size=200)
    assert bootstrap_ci(mean, sample, seed=5) == bootstrap_ci(mean, sample, seed=5)
    assert bootstrap_ci(mean, sample, seed=5) != bootstrap_ci(mean, sample, seed=6)
    from_generator = bootstrap_ci(mean, sample, seed=np.random.default_rng(5))
    assert from_generator == bootstrap_ci(mean, sample, seed=5)


def test_pairing_shares_rows_within_a_group():
    x = np.arange(50.0)

    def spread(a, b, c):  # 0 where a and b were resampled with the same rows
        return np.abs(a - b).max(axis=-1) + 0 * c.sum(axis=-1)

    assert bootstrap_distribution(spread, x, x, x, pairing=[0, 0, 1]).max() == 0
    assert bootstrap_distribution(spread, x, x, x, pairing="all").max() == 0
    assert bootstrap_distribution(spread, x, x, x).min() > 0


def test_paired_difference_of_shifted_samples_is_exact():
    a = np.random.default_rng(4).normal(size=300)
    assert bootstrap_diff_ci(a, a + 1, paired=True) == pytest.approx((-1.0, -1.0))
    low, high = bootstrap_diff_ci(a, a + 1)
    assert low < -1.05 and high > -0.95  # unpaired ignores the pairing: wide


def test_bias_corrected_interval():
    rng = np.random.default_rng(5)
    sample = rng.normal(3.0, 1.0, 500)
    percentile = bootstrap_ci(mean, sample, seed=1)
    corrected = bootstrap_ci(mean, sample, seed=1, method="bc")
    np.testing.assert_allclose(corrected, percentile, atol=0.02)  # unbiased: little change
    a, b = rng.normal(size=300), rng.normal(size=300)  # KS of equal laws, biased upward
    assert (
        bootstrap_ci(ks_batch, a, b, seed=1, method="bc")[1]
        < bootstrap_ci(ks_batch, a, b, seed=1)[1]
    )


def test_ks_diff_ci_orders_distances_to_the_reference():
    rng = np.random.default_rng(6)
    real = rng.normal(size=500)
    close, far = rng.normal(0.1, 1, 500), rng.normal(0.8, 1, 500)
    low, high = ks_diff_ci(close, far, real, n_boot=500)
    assert high < 0
    assert low < ks(close, real) - ks(far, real) < high
    assert ks_diff_ci(close, close, real, n_boot=100, paired=True) == (0.0, 0.0)


def test_ks_bootstrap_is_fast():
    rng = np.random.default_rng(7)
    a, b = rng.integers(20, 80, 1000), rng.integers(25, 90, 1000)
    start = time.process_time()
    bootstrap_ci(ks_batch, a, b, n_boot=2000)
    assert time.process_time() - start < 4.0  # about 0.4 s when measured


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stat": lambda x, y: x.mean() - y.mean()}, "reduce the last axis"),
        ({"pairing": "all", "samples": (np.ones(3), np.ones(4))}, "equal sizes"),
        ({"pairing": [0]}, "one label per sample"),
        ({"alpha": 1.5}, "alpha"),
        ({"method": "bca"}, "method"),
        ({"n_boot": 0}, "n_boot"),
        ({"samples": ()}, "at least one sample"),
        ({"samples": (np.array([1.0, np.inf]), np.ones(3))}, "NaN or inf"),
    ],
)
def test_bootstrap_bad_arguments(kwargs, message):
    kwargs = {"stat": lambda x, y: mean(x) - mean(y), "samples": (np.ones(3), np.ones(3))} | kwargs
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(kwargs.pop("stat"), *kwargs.pop("samples"), **kwargs)


# --- Mann-Whitney and table rows -----------------------------------------------------------------


def test_mannwhitney_less():
    assert mannwhitney_less([1, 2, 3], [4, 5, 6]) == pytest.approx(1 / 20)  # exact: 1 of C(6, 3)
    rng = np.random.default_rng(8)
    early, late = rng.integers(30, 60, 500), rng.integers(35, 65, 500)
    assert mannwhitney_less(early, late) < 1e-6
    assert mannwhitney_less(late, early) > 0.99


def test_summary_row():
    row = summary_row(np.array([1, 2, 3, 4]), np.array([1, 2, 3, 4]))
    # np.std, ddof 0, as the tables were printed: sum of squares 5 over n = 4
    assert row == pytest.approx({"n": 4, "mean": 2.5, "std": math.sqrt(5 / 4), "ks": 0.0})
    assert summary_row(np.array([1, 2, 3, 4]), [3, 4, 5, 6], ddof=1)["std"] == pytest.approx(
        math.sqrt(5 / 3)
    )
    assert summary_row(np.array([1, 2, 3, 4]), [3, 4, 5, 6])["ks"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="ddof"):
        summary_row(np.array([1]), np.array([1, 2]), ddof=1)


# --- tolerances: the formulas, and their false-alarm rates by simulation -------------------------


def test_tolerance_formulas():
    assert mean_tolerance(10, 10, 1000) == pytest.approx(3 * math.sqrt(0.2))
    assert std_tolerance(10, 10, 1000) == pytest.approx(3 * math.sqrt(0.1))
    assert std_tolerance(10, 10, 1000, kurtosis=5) == pytest.approx(3 * math.sqrt(0.2))
    assert ks_tolerance(1000) == pytest.approx(3 * math.sqrt(0.001))
    assert ks_tolerance(1000, method="dkw") == pytest.approx(0.2527, abs=1e-3)
    ours, paper = {"mean": 40.0, "std": 9.0}, {"mean": 41.11, "std": 10.40}
    assert row_tolerances(ours, paper, n_ours=500, z=2) == {
        "mean": mean_tolerance(9.0, 10.40, 500, z=2),
        "std": std_tolerance(9.0, 10.40, 500, z=2),
        "ks": ks_tolerance(500, z=2),
    }
    for bad in (lambda: mean_tolerance(1, 1, 1), lambda: ks_tolerance(10, method="x")):
        with pytest.raises(ValueError):
            bad()


def two_studies(draw, n_ours, n_paper, sims=3000):
    rng = np.random.default_rng(9)
    return draw(rng, (sims, n_ours)), draw(rng, (sims, n_paper))


def exceed_rate(ours, paper, tolerance):
    return np.mean(np.abs(ours - paper) > tolerance)


def test_mean_and_std_tolerances_have_their_false_alarm_rate():
    exponential = lambda rng, size: rng.exponential(10.0, size)  # noqa: E731 (kurtosis 9)
    ours, paper = two_studies(exponential, 200, 1000)
    mean_tol = mean_tolerance(10, 10, 200, z=1)
    assert 0.27 <= exceed_rate(ours.mean(1), paper.mean(1), mean_tol) <= 0.37  # 2 (1 - Phi(1))
    sd_o, sd_p = ours.std(1, ddof=1), paper.std(1, ddof=1)
    assert 0.25 <= exceed_rate(sd_o, sd_p, std_tolerance(10, 10, 200, z=1, kurtosis=9)) <= 0.40
    assert exceed_rate(sd_o, sd_p, std_tolerance(10, 10, 200, z=1)) > 0.5  # normal theory fails


def test_ks_tolerance_is_conservative():
    def ks_per_study(n):
        rng = np.random.default_rng(n)
        x, r = rng.normal(0.5, 1, (2000, n)), rng.normal(0, 1, (2000, n))
        return ks_batch(x, r)

    ours, paper = ks_per_study(200), ks_per_study(1000)
    rate = exceed_rate(ours, paper, ks_tolerance(200, 1000, z=1))
    assert 0.1 <= rate <= 0.32  # at most the normal rate at z = 1, not absurdly wide either
    assert exceed_rate(ours, paper, ks_tolerance(200, 1000, z=1, method="dkw")) < 0.01
