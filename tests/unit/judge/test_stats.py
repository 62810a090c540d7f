"""KS, bootstrap intervals, table rows and the tolerances against the paper's numbers."""

import math
import time

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from synthact.judge import stats
from synthact.judge.stats import (
    bootstrap_ci,
    bootstrap_distribution,
    ks,
    ks_contrast_bound,
    ks_lower_bound,
    ks_tolerance,
    ks_upper_bound,
    mean_bound,
    mean_tolerance,
    pairing_correlation,
    row_tolerances,
    sign_flip_bound,
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
    if len(a) == len(b):  # paired: the KS contrast's estimate is the same statistic
        assert ks_contrast_bound([(1, a, b)], "lower")[0] == pytest.approx(expected)
    assert ks(torch.tensor(a), torch.tensor(b)) == pytest.approx(expected)


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: rng.integers(20, 60, (2, 300)),  # integers: counted on their range
        lambda rng: rng.integers(20, 60, (2, 300)) + 0.5,  # few distinct floats: ranked
        lambda rng: rng.normal(size=(2, 300)),  # continuous: one bin per value
    ],
)
def test_ks_contrast_estimate_equals_scipy(make):
    a, b = make(np.random.default_rng(0))
    expected = scipy_stats.ks_2samp(a, b).statistic
    assert ks_contrast_bound([(1, a, b)], "upper")[0] == pytest.approx(expected, abs=1e-12)


def test_ks_contrast_estimate_equals_scipy_for_the_pointwise_upper_bound():
    a, b = np.random.default_rng(0).integers(20, 60, (2, 300))
    estimate, bound = ks_upper_bound(a, b)
    assert estimate == pytest.approx(scipy_stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert estimate < bound < estimate + 0.2


def test_ks_upper_bound_is_the_continuity_corrected_wilson_bound_for_one_sided_rows():
    """Rows differing only one way (D in {0, 1}): the score bound is Wilson's with the count
    raised by half, a closed form."""
    n, b, z = 100, 10, scipy_stats.norm.ppf(0.95)
    x, y = np.full(n, 40), np.r_[np.full(n - b, 40), np.full(b, 99)]
    p = (b + 0.5) / n
    wilson = (p + z * z / (2 * n) + z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (
        1 + z * z / n
    )
    assert ks_upper_bound(x, y) == pytest.approx((b / n, wilson), abs=1e-9)


@pytest.mark.parametrize("n", [100, 150, 200])
def test_ks_upper_bound_holds_its_level_on_two_points_perfectly_paired(n):
    """The least favourable law of a pointwise bound: rows (40, 40) or (40, 99), the second with
    probability exactly 0.1 = KS. The bound falls below 0.1 at most 5 % of the time, summed
    exactly over the binomial count of (40, 99) rows (a paired bootstrap's bound: 5.6-6 %)."""
    size = 0.0
    for b in range(n + 1):
        x, y = np.full(n, 40), np.r_[np.full(n - b, 40), np.full(b, 99)]
        if ks_upper_bound(x, y)[1] < 0.1:
            size += scipy_stats.binom.pmf(b, n, 0.1)
    assert 0.02 < size <= 0.05


def test_ks_upper_bound_rejects_unpaired_samples():
    with pytest.raises(ValueError, match="equal sizes"):
        ks_upper_bound(np.arange(5), np.arange(6))


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


def test_mean_bound_corrects_the_skew_that_a_percentile_bound_misses():
    """Upper 95 % bounds of a right-skewed mean (exponential, n = 20): the studentized bound
    misses the true mean 6.5 % of the time here, the percentile interval's upper end 10.5 %."""
    rng = np.random.default_rng(2)
    samples = [rng.exponential(1.0, 20) - 1.0 for _ in range(400)]
    missed = [mean_bound(d, "upper", n_boot=500, seed=i)[1] < 0 for i, d in enumerate(samples)]
    assert np.mean(missed) <= 0.08


def test_mean_bound_of_a_constant_is_the_constant_and_sides_are_checked():
    assert mean_bound(np.full(10, -2.0), "upper") == (-2.0, -2.0)
    with pytest.raises(ValueError, match="side"):
        mean_bound(np.arange(10.0), "above")


def test_sign_flip_bound_inverts_the_sign_flip_test():
    """The bound is below 0 exactly when the sign-flip test of the same sign vectors rejects
    "symmetric about 0" for a smaller mean (p-value with the observed statistic counted)."""
    rng = np.random.default_rng(0)
    for seed in range(60):
        d = rng.normal(rng.normal(), 1.0, int(rng.integers(5, 60))).round(1)
        signs = np.where(np.random.default_rng(seed).random((500, d.size)) < 0.5, -1.0, 1.0)
        p = (np.sum(signs @ d <= d.sum()) + 1) / 501
        upper = sign_flip_bound(d, "upper", n_flips=500, seed=seed)
        assert (p <= 0.05) == (upper < 0), (seed, p, upper)
        assert sign_flip_bound(d, "lower", n_flips=500, seed=seed) <= upper


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


def test_the_expanded_percentile_interval_widens_for_small_samples():
    sample = np.random.default_rng(4).normal(size=10)
    replicates = bootstrap_distribution(mean, sample, seed=0)
    tail = scipy_stats.norm.cdf(math.sqrt(10 / 9) * scipy_stats.t.ppf(0.05, 9))  # 0.036
    expected = np.quantile(replicates, [tail, 1 - tail])
    np.testing.assert_allclose(bootstrap_ci(mean, sample, alpha=0.1, seed=0), expected)
    plain = np.quantile(replicates, [0.05, 0.95])
    assert expected[0] < plain[0] and expected[1] > plain[1]


# --- KS bounds -----------------------------------------------------------------------------------


def test_ks_contrast_estimates_the_weighted_sum_and_brackets_it():
    rng = np.random.default_rng(5)
    real, near, far = rng.integers(30, 60, (3, 400)) + np.array([[0], [2], [8]])
    estimate, low = ks_contrast_bound([(1, far, real)], "lower")
    assert estimate == pytest.approx(ks(far, real)) and low < estimate
    terms = [(1, near, real), (-1, far, real)]
    estimate, high = ks_contrast_bound(terms, "upper")
    assert estimate == pytest.approx(ks(near, real) - ks(far, real)) and high > estimate
    assert high < 0  # near is clearly closer to real than far


def test_ks_bounds_of_identical_paired_samples_are_zero_up_to_the_continuity_correction():
    x = np.random.default_rng(6).integers(0, 50, 300)
    assert ks_contrast_bound([(1, x, x)], "upper") == (0.0, 0.5 / 300)
    assert ks_contrast_bound([(1, x, x), (-1, x, x)], "upper") == (0.0, 1 / 300)
    assert ks_lower_bound(x, x) == (0.0, -0.5 / 300)


def test_ks_upper_bound_is_tighter_than_the_uniform_band():
    """The upper bound needs only the error at the population's argmax (any point, any sign);
    the lower bound the uniform band: its margin is larger."""
    rng = np.random.default_rng(7)
    a, b = rng.integers(30, 70, 1000), rng.integers(32, 72, 1000)
    estimate, high = ks_contrast_bound([(1, a, b)], "upper")
    _, low = ks_contrast_bound([(1, a, b)], "lower")
    assert 0 < high - estimate < estimate - low


def test_a_contrast_pays_only_for_the_points_near_each_argmax(monkeypatch):
    """Two KS distances from the same real sample: bounding each term's error over its contact
    set (the points that may be its argmax), jointly with the other's, is tighter than over every
    point, and each term's error moves with the other's (they share real)."""
    rng = np.random.default_rng(8)
    real = np.floor(rng.normal(45, 10, 1000))
    terms = [(1, real + 4, real), (-1, real + 6, real)]
    estimate, selected = ks_contrast_bound(terms, "upper")
    monkeypatch.setattr(stats._SignedDifference, "contact_set", lambda self: self.value > -2)
    _, everywhere = ks_contrast_bound(terms, "upper")
    assert estimate < selected < everywhere


def _difference(x, y, seed=0, n_boot=500):
    rows = np.random.default_rng(seed).integers(0, x.size, (n_boot, x.size))
    return stats._SignedDifference(x, y, rows)


def test_the_contact_set_keeps_the_points_near_the_argmax_and_no_others():
    """A shift of a normal law: the ECDF difference peaks mid-way and falls off on both sides;
    its negative side never comes near the maximum."""
    x = np.floor(np.random.default_rng(9).normal(45, 10, 1000))
    difference = _difference(x, x + 8)
    kept = difference.contact_set()
    assert kept[np.argmax(difference.value)]
    assert 1 < kept.sum() < 20
    assert difference.value[kept].min() > difference.estimate - 0.1
    assert not kept[difference.value < 0].any()


def test_on_a_plateau_the_contact_set_keeps_every_point_of_it():
    """KS 0.3 at every step below 99 (30 % of rows at 0 in one sample, at 99 in the other)."""
    rng = np.random.default_rng(10)
    body = np.floor(rng.normal(50, 10, 1000)).clip(1, 98)
    shift = rng.random(1000) < 0.3
    difference = _difference(np.where(shift, 0, body), np.where(shift, 99, body))
    plateau = difference.value[:99]  # +Delta at the support points 0..98
    assert np.ptp(plateau) < 1e-12 and difference.contact_set()[:99].all()


def _false_passes(n_datasets: int) -> int:
    """Datasets of 100 rows with KS exactly 0.3108 (floors of N(45, 10) and N(53, 10), rows
    independent) whose lower bound of KS exceeds it."""
    rng = np.random.default_rng(11)
    truth = scipy_stats.norm.cdf(0.4) - scipy_stats.norm.cdf(-0.4)
    found = 0
    for _ in range(n_datasets):
        x, y = np.floor(rng.normal(45, 10, 100)), np.floor(rng.normal(53, 10, 100))
        found += ks_lower_bound(x, y, n_boot=1000)[1] > truth
    return found


def test_a_lower_bound_of_ks_at_the_sample_argmax_alone_fails_its_level(monkeypatch):
    """The sample's argmax is selected for a large ECDF difference: its own error quantile lets
    about twice the level through. The contact set accounts for the selection."""
    assert _false_passes(200) <= 10
    monkeypatch.setattr(
        stats._SignedDifference, "contact_set", lambda self: self.value == self.value.max()
    )
    assert _false_passes(200) > 10


@pytest.mark.parametrize(
    ("x", "y", "alpha", "message"),
    [(np.ones(3), np.ones(4), 0.05, "equal sizes"), (np.ones(3), np.ones(3), 0.0, "alpha")],
)
def test_ks_lower_bound_bad_arguments(x, y, alpha, message):
    with pytest.raises(ValueError, match=message):
        ks_lower_bound(x, y, alpha=alpha)


def test_the_contact_set_bound_is_tighter_than_the_uniform_band():
    """The same bootstrap replicates: the uniform band over every point against the supremum
    over the contact set; the lower bound is the one-term KS contrast's."""
    rng = np.random.default_rng(12)
    x, y = np.floor(rng.normal(45, 10, (2, 300))) + np.array([[0], [9]])
    band = np.abs(_difference(x, y, n_boot=2000).deviations).max(axis=1)
    estimate, low = ks_lower_bound(x, y)
    assert estimate - np.quantile(band, 0.95) < low < estimate
    assert ks_contrast_bound([(1, x, y)], "lower") == (estimate, low)


@pytest.mark.parametrize(
    ("terms", "side", "message"),
    [
        ([], "lower", "at least one"),
        ([(1, np.ones(3), np.ones(4))], "lower", "equal sizes"),
        ([(1, np.ones(3), np.ones(3))], "both", "side"),
        ([(1, np.array([1.0, np.nan]), np.ones(2))], "upper", "NaN"),
    ],
)
def test_ks_contrast_bad_arguments(terms, side, message):
    with pytest.raises(ValueError, match=message):
        ks_contrast_bound(terms, side)


def test_pairing_correlation_is_the_copulas_rho():
    rng = np.random.default_rng(8)
    shared, own = rng.normal(size=(1, 20000)), rng.normal(size=(3, 20000))
    for rho in (0.0, 0.5, 0.9):
        rows = np.sqrt(rho) * shared + np.sqrt(1 - rho) * own
        assert pairing_correlation(list(np.floor(10 * rows))) == pytest.approx(rho, abs=0.03)
    assert pairing_correlation([np.arange(5.0)]) == 0.0
    assert pairing_correlation([np.arange(5.0), np.ones(5)]) == 0.0  # constant: no pairing


def test_ks_bounds_are_fast():
    rng = np.random.default_rng(7)
    a, b, r = rng.integers(20, 80, 1000), rng.integers(25, 90, 1000), rng.integers(20, 85, 1000)
    start = time.process_time()
    ks_contrast_bound([(1, a, r), (-1, b, r)], "upper")
    assert time.process_time() - start < 1.0  # about 0.04 s when measured


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stat": lambda x, y: x.mean() - y.mean()}, "reduce the last axis"),
        ({"pairing": "all", "samples": (np.ones(3), np.ones(4))}, "equal sizes"),
        ({"pairing": [0]}, "one label per sample"),
        ({"alpha": 1.5}, "alpha"),
        ({"n_boot": 0}, "n_boot"),
        ({"samples": ()}, "at least one sample"),
        ({"samples": (np.array([1.0, np.inf]), np.ones(3))}, "NaN or inf"),
    ],
)
def test_bootstrap_bad_arguments(kwargs, message):
    kwargs = {"stat": lambda x, y: mean(x) - mean(y), "samples": (np.ones(3), np.ones(3))} | kwargs
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(kwargs.pop("stat"), *kwargs.pop("samples"), **kwargs)


# --- table rows ---------------------------------------------------------------------------------


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


@pytest.mark.slow
def test_ks_tolerance_is_conservative():
    def ks_per_study(n):
        rng = np.random.default_rng(n)
        x, r = rng.normal(0.5, 1, (2000, n)), rng.normal(0, 1, (2000, n))
        return np.array([ks(a, b) for a, b in zip(x, r, strict=True)])

    ours, paper = ks_per_study(200), ks_per_study(1000)
    rate = exceed_rate(ours, paper, ks_tolerance(200, 1000, z=1))
    assert 0.1 <= rate <= 0.32  # at most the normal rate at z = 1, not absurdly wide either
    assert exceed_rate(ours, paper, ks_tolerance(200, 1000, z=1, method="dkw")) < 0.01
