"""Statistics of step distributions: KS distances, bootstrap bounds, table rows, tolerances.

- `ks`: the two-sample KS statistic.
- `bootstrap_ci`: percentile bootstrap intervals of smooth statistics (means, standardized gaps).
- `ks_lower_bound`: the lower bound of one KS distance ("KS above a threshold"), from the
  bootstrap errors of the ECDF difference at the points that may be its argmax.
- `ks_contrast_bound`: one-sided bounds of KS distances and of their sums and differences, valid
  where a percentile interval of KS is not.
- `ks_upper_bound`: the upper bound of one KS distance that equivalence is decided by, from
  pointwise score bounds of the paired ECDF difference (no bootstrap).
- `mean_bound`: studentized (bootstrap-t) bound of a mean, valid for skewed samples;
  `sign_flip_bound`: the exact bound of the centre of a symmetric sample.
- `summary_row`, `row_tolerances`: our table row against the paper's.

Pairing: types perturbed from the same base prompts (row i of every sample shares base i), and
the L2 and KL steps of the same curves, are paired samples, resampled with the same row indices.
Bootstrap statistics are *batched*: ``stat(*samples)`` reduces the last axis, so it returns a
scalar for 1-D samples and ``[n_boot]`` for resamples ``[n_boot, n]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Literal

import numpy as np
import torch
from scipy import special, stats

ArrayLike = np.ndarray | torch.Tensor
Statistic = Callable[..., np.ndarray | float]


def _sample(x: ArrayLike | Sequence[float], name: str = "sample") -> np.ndarray:
    """A 1-D, non-empty, finite numeric numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {x.dtype}")
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return x


def ks(a: ArrayLike, b: ArrayLike) -> float:
    """Two-sample Kolmogorov-Smirnov statistic ``sup |F_a - F_b|`` (``scipy.stats.ks_2samp``)."""
    return float(stats.ks_2samp(_sample(a, "a"), _sample(b, "b")).statistic)


INTEGER_RANGE = 4096
"""Integer samples spanning up to this many values (steps span at most 101) are binned by value,
without a search."""


def _bins(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Both samples' values as indices of bins ``0..m-1`` in the order of the values, and m."""
    low, high = min(x.min(), y.min()), max(x.max(), y.max())
    integer = np.array_equal(x, np.round(x)) and np.array_equal(y, np.round(y))
    if integer and high - low < INTEGER_RANGE:
        return (x - low).astype(np.intp), (y - low).astype(np.intp), int(high - low) + 1
    support = np.unique(np.concatenate([x, y]))
    return np.searchsorted(support, x), np.searchsorted(support, y), support.size


def _ecdf_counts(bins: np.ndarray, m: int) -> np.ndarray:
    """``#{i: bins_i <= k}`` for each bin ``k < m``, last axis: ``[..., n] -> [..., m]``."""
    rows = bins.reshape(-1, bins.shape[-1])
    offsets = (np.arange(rows.shape[0]) * m)[:, None]
    counts = np.bincount((rows + offsets).ravel(), minlength=rows.shape[0] * m)
    return counts.reshape(*bins.shape[:-1], m).cumsum(axis=-1)


class _SignedDifference:
    """The paired ECDF difference ``Delta = F_x - F_y`` of one pair of samples at its signed
    points ``(k, s)`` (``s Delta(k)``, s = +1 then -1 over the pooled support: ``[2m]``), with its
    paired bootstrap.

    ``x``, ``y`` are ``[n]`` samples of equal size, ``rows [n_boot, n]`` resampled row indices
    shared by every pair of a contrast. Both ECDFs jump only at the pooled sample's values, so the
    maximum of ``s Delta(k)`` over the signed points is ``sup |Delta|``, the KS distance.
    ``Delta(k)`` is the mean of the rows' ``D_i(k) = 1{x_i <= k} - 1{y_i <= k}`` in {-1, 0, 1}:
    ``plus``/``minus`` count the rows with D = 1 / -1 at each k (``[m]``).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> None:
        bx, by, m = _bins(x, y)
        self.n = x.size
        below_x, below_y = _ecdf_counts(bx, m), _ecdf_counts(by, m)
        below_both = _ecdf_counts(np.maximum(bx, by), m)
        self.plus, self.minus = below_x - below_both, below_y - below_both
        delta = (below_x - below_y) / self.n
        resampled = (_ecdf_counts(bx[rows], m) - _ecdf_counts(by[rows], m)) / self.n
        self.value = np.concatenate([delta, -delta])
        deviations = resampled - delta
        self.deviations = np.concatenate([deviations, -deviations], axis=1)

    @property
    def estimate(self) -> float:
        return float(self.value.max())

    def contact_set(self) -> np.ndarray:
        """The signed points that may be the population's argmax, ``[2m]`` booleans.

        A point is kept unless its upper bound lies below the lower bound of another, both at
        ``z = sqrt(log n)`` (generalized moment selection's BIC tuning, Andrews & Soares 2010): the
        population's argmax is dropped only when a bound fails by ``sqrt(log n)`` standard
        errors, a chance that vanishes as n grows. The sample's argmax is always kept.
        """
        z = math.sqrt(math.log(self.n))
        up = _paired_difference_upper(self.plus, self.minus, self.n, z)
        down = _paired_difference_upper(self.minus, self.plus, self.n, z)
        return np.concatenate([up, down]) >= -np.minimum(up, down).min()


def _paired_difference_upper(plus: np.ndarray, minus: np.ndarray, n: int, z: float) -> np.ndarray:
    """Upper ``Phi(z)`` score bounds of ``E[D]``, D in {-1, 0, 1}, from ``plus`` rows with D = 1
    and ``minus`` with D = -1 of ``n`` (arrays of the same shape, bounds elementwise).

    The bound is the largest ``d`` that Tango's (1998) score test of ``E[D] = d`` with a continuity
    correction of half a count does not reject: ``(plus - minus - n d + 1/2) / sqrt(n V(d)) >=
    -z``, ``V(d) = 2 q + d - d^2`` the variance of D at the restricted maximum-likelihood ``q =
    P(D = -1)`` given ``E[D] = d`` (a root of ``2 n q^2 - B q - C``). Found by bisection on
    [estimate, 1]; the statistic decreases in d there.
    """
    low = (plus - minus + 0.5) / n
    high = np.ones_like(low)
    low = np.minimum(low, high)
    for _ in range(50):
        d = (low + high) / 2
        b_coef = (plus + minus) * (1 - d) - 2 * d * (n - plus)
        c_coef = minus * d * (1 - d)
        q = (b_coef + np.sqrt(b_coef**2 + 8 * n * c_coef)) / (4 * n)
        spread = np.sqrt(n * np.maximum(2 * q + d - d * d, 0.0))
        numerator = plus - minus - n * d + 0.5
        rejected = numerator < -z * spread
        low, high = np.where(rejected, low, d), np.where(rejected, d, high)
    return low


def ks_upper_bound(x: ArrayLike, y: ArrayLike, *, alpha: float = 0.05) -> tuple[float, float]:
    """``KS(x, y)`` and its one-sided ``1 - alpha`` upper bound for paired samples of n rows.

    At every point k of the pooled support, ``Delta(k) = F_x(k) - F_y(k)`` is the mean of the
    rows' ``D_i(k) = 1{x_i <= k} - 1{y_i <= k}`` in {-1, 0, 1}: a paired difference of
    proportions. Its pointwise bounds ``L(k) <= Delta(k) <= U(k)`` are score bounds
    (`_paired_difference_upper`), each one-sided at ``alpha``, and the bound of KS is ``max_k
    max(U(k), -L(k))``. It holds at level ``alpha``: at the population's argmax k* (with sign s)
    the one bound of ``s Delta(k*)`` covers with probability ``1 - alpha``, and the pointwise
    statistics between support points equal those at the support point below. So
    "KS < m" passes only if every ``|Delta(k)| < m`` passes its own test at level alpha: the
    intersection-union test of Berger (1982), with no supremum quantile.

    The bounds are exact-conservative rather than bootstrapped: the least favourable law at a
    point is two-point (D in {0, 1}, a proportion of exactly m; e.g. a sentinel mass, rows
    perfectly paired), where a percentile bootstrap, a bootstrap-t or an uncorrected score bound
    lets 5.5-6.0 % of samples through at n = 100-500 (lattice effects). The continuity-corrected
    score bound keeps at most 4.8 % there and at every (P(D = 1), P(D = -1)) with ``E[D] = 0.1``
    or 0.05 for n = 100-4000, by exact enumeration (docs/power.md).
    """
    _check_alpha(alpha)
    x, y = _sample(x, "x"), _sample(y, "y")
    if x.size != y.size:
        raise ValueError(f"paired samples must have equal sizes, got {x.size} and {y.size}")
    bx, by, m = _bins(x, y)
    n = x.size
    below_x, below_y = _ecdf_counts(bx, m), _ecdf_counts(by, m)
    below_both = _ecdf_counts(np.maximum(bx, by), m)
    plus, minus = below_x - below_both, below_y - below_both
    z = float(special.ndtri(1 - alpha))
    upper = _paired_difference_upper(plus, minus, n, z)
    lower = -_paired_difference_upper(minus, plus, n, z)
    estimate = float(np.abs(plus - minus).max() / n)
    return estimate, float(np.maximum(upper, -lower).max())


def ks_lower_bound(
    x: ArrayLike,
    y: ArrayLike,
    *,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float]:
    """``KS(x, y)`` and its one-sided ``1 - alpha`` lower bound for paired samples of n rows.

    ``KS = max s Delta(k)`` over the signed points (`_SignedDifference`) is at least the value at
    the sample's argmax (k^, s^): ``KS >= KS^ - s^ (Delta^ - Delta)(k^)``. That point is chosen
    for a large ``Delta^``, so its error is bounded by the supremum of the errors over the contact
    set, the points that may be the population's argmax (`_SignedDifference.contact_set`, which
    always holds the sample's argmax), whose ``1 - alpha`` quantile is the paired bootstrap's
    (``s (Delta* - Delta^)``). A uniform band over every point (`ks_contrast_bound`) pays for
    points far below the maximum; the quantile at the sample's argmax alone ignores the selection
    and lets about twice the level through. The bound is lowered by half a count (``0.5 / n``), a
    continuity correction: on a two-point law with rows perfectly paired (P 0.3) the bootstrap's
    quantile alone lets 5.3-5.5 % through at n = 500-1000 (the binomial's exact quantile), with
    it at most 4.6 % for n = 100-2000 (4.4 % at n = 1000 with 2000 replicates). It is the
    one-term `ks_contrast_bound`.
    """
    return ks_contrast_bound([(1, x, y)], "lower", alpha=alpha, n_boot=n_boot, seed=seed)


KSTerm = tuple[float, ArrayLike, ArrayLike]
"""``(coefficient, x, y)``: one term ``coefficient * KS(x, y)`` of a KS contrast."""


def ks_contrast_bound(
    terms: Sequence[KSTerm],
    side: Literal["lower", "upper"],
    *,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float]:
    """Estimate and one-sided ``1 - alpha`` bound of ``sum_i c_i KS(x_i, y_i)`` for paired samples.

    Every sample has the same n rows, resampled jointly. The bound holds its level for any
    distributions, ties included, because it bounds the error of each KS by errors of the ECDF
    difference ``Delta = F_x - F_y`` at its signed points (`_SignedDifference`; the sample KS is
    biased upward, so a percentile interval of KS itself is not valid), and only at the points
    that may be the population's argmax (each term's contact set, as in `ks_lower_bound`):

    - a lower bound of ``KS = max s Delta(k)`` bounds the error at the sample's argmax, which
      moves with the data: ``KS >= KS^ - max s (Delta^ - Delta)`` over the contact set;
    - an upper bound only needs the error at the population's fixed argmax (k*, s*): ``KS <= KS^
      + s (Delta - Delta^)(k*)``; (k*, s*) is unknown, so the bound takes the largest quantile
      over the contact set's points. One term of a contrast gets this; any further term that
      needs an upper bound uses the contact set's band (valid at any of its points, wider).

    The terms' errors are summed replicate by replicate: their joint distribution is the paired
    bootstrap's (``Delta^* - Delta^``), so errors of terms that move together (two KS distances
    from the same real sample) partly cancel instead of each paying its own band. The bound is
    the estimate minus (lower) or plus (upper) the ``1 - alpha`` quantile of their weighted sum,
    widened by half a count per term (``0.5 / n`` each, the continuity correction of
    `ks_lower_bound`). Where every term's error is a count of perfectly paired rows (steps at a
    few values, a sentinel), the bound is a percentile bootstrap of a sum of counts, which half a
    count in all does not cover: 5.3 % of simulated sums passed at a skewed boundary (20000 at
    n = 100 and at 1000), at most 4.6 % with half a count per term (symmetric and skewed sums, n
    = 100-1000); docs/power.md has the check's own sizes on such laws.
    """
    _check_side(side)
    _check_alpha(alpha)
    if not terms:
        raise ValueError("a KS contrast needs at least one (coefficient, x, y) term")
    samples = [(c, _sample(x, "x"), _sample(y, "y")) for c, x, y in terms]
    sizes = {s.size for _, x, y in samples for s in (x, y)}
    if len(sizes) != 1:
        raise ValueError(f"paired samples must have equal sizes, got {sorted(sizes)}")
    n = sizes.pop()
    rows = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    estimate, band_error, point = 0.0, np.zeros(n_boot), None
    for c, x, y in samples:
        difference = _SignedDifference(x, y, rows)
        estimate += c * difference.estimate
        deviations = difference.deviations[:, difference.contact_set()]
        if (c > 0) != (side == "upper"):  # this KS needs a lower bound
            band_error += abs(c) * deviations.max(axis=1)
        elif point is None:
            point = -abs(c) * deviations
        else:
            band_error += abs(c) * (-deviations).max(axis=1)
    total = band_error[:, None] + (point if point is not None else 0.0)
    margin = float(np.quantile(total, 1 - alpha, axis=0).max()) + 0.5 * len(samples) / n
    return estimate, estimate - margin if side == "lower" else estimate + margin


def mean_bound(
    d: ArrayLike,
    side: Literal["lower", "upper"],
    *,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float]:
    """``mean(d)`` and its one-sided ``1 - alpha`` bound by the studentized bootstrap (bootstrap-t).

    ``d`` is ``[n]`` (a paired difference: one value per row). The bound is ``mean -
    q(t*) se`` with ``se = sd(d) / sqrt(n)`` and ``q`` the ``alpha`` (upper bound) or ``1 -
    alpha`` (lower) quantile of ``t* = (mean* - mean) / se*`` over resamples. Studentizing
    corrects the skewness of the mean to second order (coverage error O(1/n), Hall 1988); a
    percentile bound of a skewed mean (a sentinel mass on one side: MS 99, NL 100) undercovers,
    by 1-2.5 points at n = 100-300. A resample of one repeated value has ``t* = +-inf`` (the
    bound is infinite when these reach the quantile; a constant ``d`` is its own bound).
    """
    _check_side(side)
    _check_alpha(alpha)
    d = _sample(d, "d").astype(np.float64)
    n = d.size
    if n < 2:
        raise ValueError(f"a studentized bound needs at least 2 values, got {n}")
    rows = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    resampled = d[rows]
    mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(n))
    shift = resampled.mean(axis=-1) - mean
    spread = resampled.std(axis=-1, ddof=1) / math.sqrt(n)
    fallback = np.where(shift == 0, 0.0, np.copysign(np.inf, shift))
    t = np.divide(shift, spread, out=fallback, where=spread > 0)
    q = float(np.quantile(t, alpha if side == "upper" else 1 - alpha, method="inverted_cdf"))
    return mean, mean - q * se


def sign_flip_bound(
    d: ArrayLike,
    side: Literal["lower", "upper"],
    *,
    alpha: float = 0.05,
    n_flips: int = 2000,
    seed: int | np.random.Generator = 0,
) -> float:
    """One-sided ``1 - alpha`` bound of the centre of ``d [n]``, exact when ``d`` is symmetric.

    Inverts the sign-flip permutation test of "``d - c`` is symmetric about 0" with the mean as
    statistic and ``n_flips`` random sign vectors: a flip of the rows S moves the statistic below
    the observed one exactly when ``c`` is at most the mean of ``d`` over S, so the upper bound is
    the ``(floor(alpha (n_flips + 1)))``-th largest mean of ``d`` over the flipped subsets
    (Hartigan's typical values). The difference of two exchangeable rows (equal laws, pairing
    symmetric in the two) is symmetric, however few its large values.
    """
    _check_side(side)
    d = _sample(d, "d").astype(np.float64)
    if side == "lower":
        return -sign_flip_bound(-d, "upper", alpha=alpha, n_flips=n_flips, seed=seed)
    flipped = np.random.default_rng(seed).random((n_flips, d.size)) < 0.5
    sizes = flipped.sum(axis=-1)
    subset_means = (flipped @ d)[sizes > 0] / sizes[sizes > 0]
    rank = math.floor(alpha * (n_flips + 1)) - 1 - int((sizes == 0).sum())
    if rank < 0:
        return math.inf
    return float(np.sort(subset_means)[::-1][rank])


def _resample_indices(
    sizes: Sequence[int],
    pairing: Literal["all"] | Sequence[Hashable] | None,
    n_boot: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """One ``[n_boot, n_i]`` index array per sample; samples of one pairing group share theirs."""
    if pairing is None:
        groups: Sequence[Hashable] = range(len(sizes))
    elif pairing == "all":
        groups = [0] * len(sizes)
    else:
        groups = list(pairing)
        if len(groups) != len(sizes):
            raise ValueError(
                f"pairing needs one label per sample ({len(sizes)}), got {len(groups)}"
            )
    shared: dict[Hashable, np.ndarray] = {}
    for group, size in zip(groups, sizes, strict=True):
        if group not in shared:
            shared[group] = rng.integers(0, size, size=(n_boot, size))
        elif shared[group].shape[1] != size:
            raise ValueError(f"paired samples must have equal sizes, got {sizes} for {groups}")
    return [shared[group] for group in groups]


def bootstrap_distribution(
    stat: Statistic,
    *samples: ArrayLike,
    n_boot: int = 2000,
    seed: int | np.random.Generator = 0,
    pairing: Literal["all"] | Sequence[Hashable] | None = None,
) -> np.ndarray:
    """``stat`` on ``n_boot`` resamples (with replacement) of the samples, ``[n_boot]``.

    Args:
        stat: batched statistic (see module docstring): resamples ``[n_boot, n_i]`` -> ``[n_boot]``.
        samples: 1-D samples (numpy or torch).
        n_boot: bootstrap replicates. Memory is ``n_boot * n_i`` values per sample.
        seed: seed or numpy generator; the same seed gives the same replicates.
        pairing: ``None``: every sample resampled independently. ``"all"``: one index set for all
            samples (paired design; equal sizes). A sequence of labels, one per sample: samples with
            equal labels share their indices.
    """
    if not samples:
        raise ValueError("bootstrap needs at least one sample")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    arrays = [_sample(x, f"sample {i}") for i, x in enumerate(samples)]
    rng = np.random.default_rng(seed)
    indices = _resample_indices([len(x) for x in arrays], pairing, n_boot, rng)
    replicates = np.asarray(stat(*(x[idx] for x, idx in zip(arrays, indices, strict=True))))
    if replicates.shape != (n_boot,):
        raise ValueError(
            f"stat returned shape {replicates.shape} for resamples [n_boot={n_boot}, n]; it must "
            "reduce the last axis, e.g. lambda x: x.mean(axis=-1)"
        )
    return replicates.astype(np.float64)


def bootstrap_ci(
    stat: Statistic,
    *samples: ArrayLike,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
    pairing: Literal["all"] | Sequence[Hashable] | None = None,
) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` expanded percentile bootstrap interval ``(low, high)``.

    For a one-sided bound at level ``a`` use ``alpha = 2 a`` and one end. The quantiles are taken
    at ``Phi(sqrt(n / (n - 1)) t_{alpha/2, n-1})`` instead of ``alpha / 2`` (Hesterberg's expanded
    percentile interval, n the smallest sample's size): the plain percentile interval of a mean is
    too narrow in small samples. Valid for smooth statistics such as means; not for KS (see
    `ks_contrast_bound`). Arguments as in `bootstrap_distribution`.
    """
    _check_alpha(alpha)
    replicates = bootstrap_distribution(stat, *samples, n_boot=n_boot, seed=seed, pairing=pairing)
    n = min(len(_sample(x)) for x in samples)
    tail = special.ndtr(math.sqrt(n / (n - 1)) * stats.t.ppf(alpha / 2, n - 1)) if n > 1 else 0.0
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return float(low), float(high)


def pairing_correlation(samples: Sequence[ArrayLike]) -> float:
    """The Gaussian-copula correlation of paired samples' rows: their mean pairwise Spearman
    correlation ``r`` mapped to ``2 sin(pi r / 6)``; 0 for fewer than two non-constant samples."""
    ranks = [stats.rankdata(_sample(x)) for x in samples]
    ranks = [r for r in ranks if r.std() > 0]
    if len(ranks) < 2:
        return 0.0
    spearman = np.corrcoef(np.stack(ranks))[np.triu_indices(len(ranks), 1)].mean()
    return float(2 * np.sin(np.pi * spearman / 6))


def summary_row(steps: ArrayLike, reference: ArrayLike, *, ddof: int = 0) -> dict[str, float]:
    """One table row: ``n``, ``mean``, ``std`` and ``ks`` (KS against the reference steps).

    ``std`` uses ``ddof=0`` by default: the tables were printed with ``np.std`` (the authors'
    ``print_stats``); ``ddof=1`` gives the unbiased variance.
    """
    steps = _sample(steps, "steps")
    if len(steps) <= ddof:
        raise ValueError(f"std with ddof={ddof} needs more than {ddof} steps, got {len(steps)}")
    return {
        "n": len(steps),
        "mean": float(steps.mean()),
        "std": float(steps.std(ddof=ddof)),
        "ks": ks(steps, reference),
    }


def _check_sizes(**sizes: int) -> None:
    for name, n in sizes.items():
        if n < 2:
            raise ValueError(f"{name} must be >= 2, got {n}")


def mean_tolerance(
    sd_ours: float, sd_paper: float, n_ours: int, n_paper: int = 1000, *, z: float = 3.0
) -> float:
    """Allowed ``|mean_ours - mean_paper|``: ``z * sqrt(sd_p^2 / n_p + sd_o^2 / n_o)``.

    Two independent sample means of the same distribution differ by about that many standard
    errors at most (central limit theorem; z = 3 is a two-sided 0.27 % false-alarm rate).
    """
    _check_sizes(n_ours=n_ours, n_paper=n_paper)
    return z * math.sqrt(sd_paper**2 / n_paper + sd_ours**2 / n_ours)


def std_tolerance(
    sd_ours: float,
    sd_paper: float,
    n_ours: int,
    n_paper: int = 1000,
    *,
    z: float = 3.0,
    kurtosis: float = 3.0,
) -> float:
    """Allowed ``|std_ours - std_paper|``: ``z * sqrt((kurt - 1) / 4 * (sd_p^2/n_p + sd_o^2/n_o))``.

    The large-sample variance of a sample standard deviation is ``sd^2 (kurtosis - 1) / (4 n)``
    (delta method), ``sd^2 / (2 n)`` for normal data (``kurtosis = 3``, the default, which gives
    the formula ``z * sqrt(sd_p^2/(2 n_p) + sd_o^2/(2 n_o))``). Step distributions with a spike at
    a sentinel (MS 99, AP 100) are heavier-tailed: pass their sample kurtosis
    (``scipy.stats.kurtosis(steps, fisher=False)``), assumed shared by both studies.
    """
    _check_sizes(n_ours=n_ours, n_paper=n_paper)
    if kurtosis < 1:
        raise ValueError(f"kurtosis (Pearson, >= 1) must be >= 1, got {kurtosis}")
    return z * math.sqrt((kurtosis - 1) / 4 * (sd_paper**2 / n_paper + sd_ours**2 / n_ours))


def ks_tolerance(
    n_ours: int,
    n_paper: int = 1000,
    *,
    z: float = 3.0,
    method: Literal["normal", "dkw"] = "normal",
) -> float:
    """Allowed ``|KS_ours - KS_paper|`` when each study compares two samples of its size n.

    ``"normal"`` (default): where the population distance ``D = sup |F_X - F_R|`` is attained at a
    point x*, ``KS - D`` is asymptotically the ECDF errors at x*, of variance
    ``p_X (1 - p_X) / n + p_R (1 - p_R) / n <= 1 / (2 n)``. Two independent studies then differ by
    at most ``z * sqrt(1 / (2 n_o) + 1 / (2 n_p))`` (0.095 at n = 1000 for both, z = 3). It is
    conservative (p (1 - p) <= 1/4; paired samples fluctuate less). Near D = 0, KS is biased upward
    by about ``0.87 sqrt(2 / n)`` (0.039 at n = 1000); the studies' biases cancel at equal n and
    differ by less than 0.6 of this tolerance (z = 3) at any sizes.

    ``"dkw"``: distribution-free, finite-sample guarantee. Each of the four ECDFs is within
    ``eps_i = sqrt(ln(8 / alpha) / (2 n_i))`` of its population CDF with probability
    ``1 - alpha / 4`` (Dvoretzky-Kiefer-Wolfowitz-Massart), so
    ``|KS_o - KS_p| <= 2 eps_o + 2 eps_p`` with probability ``>= 1 - alpha``, where ``alpha`` is
    the two-sided normal tail of ``z`` (0.0027 for z = 3). About 2.7 times wider (0.25 at n = 1000).
    """
    _check_sizes(n_ours=n_ours, n_paper=n_paper)
    if method == "normal":
        return z * math.sqrt(1 / (2 * n_ours) + 1 / (2 * n_paper))
    if method == "dkw":
        alpha = 2 * special.ndtr(-z)
        return sum(2 * math.sqrt(math.log(8 / alpha) / (2 * n)) for n in (n_ours, n_paper))
    raise ValueError(f"method must be 'normal' or 'dkw', got {method!r}")


def row_tolerances(
    ours: Mapping[str, float],
    paper: Mapping[str, float],
    *,
    n_ours: int,
    n_paper: int = 1000,
    z: float = 3.0,
    kurtosis: float = 3.0,
) -> dict[str, float]:
    """Tolerances for comparing a `summary_row` with the paper's row (keys ``mean``, ``std``).

    Returns ``{"mean", "std", "ks"}`` from `mean_tolerance`, `std_tolerance` and `ks_tolerance`
    (``"normal"``). The paper rounds to 0.01, negligible next to these.
    """
    sd_o, sd_p = ours["std"], paper["std"]
    return {
        "mean": mean_tolerance(sd_o, sd_p, n_ours, n_paper, z=z),
        "std": std_tolerance(sd_o, sd_p, n_ours, n_paper, z=z, kurtosis=kurtosis),
        "ks": ks_tolerance(n_ours, n_paper, z=z),
    }


def _check_side(side: str) -> None:
    if side not in ("lower", "upper"):
        raise ValueError(f"side must be 'lower' or 'upper', got {side!r}")


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
