"""Statistics of step distributions: KS distances, bootstrap intervals, table rows, tolerances.

Building blocks for the claims (each claim states its own hypothesis and margin):

- "X blows up earlier than Y": ``bootstrap_diff_ci(x, y)`` (mean(x) - mean(y)) has
  ``high < -margin``, and ``mannwhitney_less(x, y)`` (one-sided) is small.
- "KS(X, real) > c" / "<= c": the interval ``bootstrap_ci(ks_batch, x, real)`` lies above / below c.
- "X is closer to real than Y": ``ks_diff_ci(x, y, real)`` (KS(x, real) - KS(y, real)) has
  ``high < 0``; the real sample is resampled once per replicate and used in both terms.
- Gaps of gaps (C5: the structured-baseline gap shrinks from absolute to relative steps; C9: it
  grows from L2 to KL): ``bootstrap_ci`` with a statistic of all the samples involved.
- Our table row vs the paper's: ``summary_row`` and ``row_tolerances``.

Pairing: types perturbed from the same base prompts (row i of every sample shares base i), and
the L2 and KL steps of the same curves, are paired samples. ``pairing`` resamples such samples
with the same row indices, which keeps their dependence (e.g. an SAE reconstruction next to its
own target) and gives honest, usually narrower, intervals for differences; unpaired samples are
resampled independently.

Bootstrap statistics are *batched*: ``stat(*samples)`` reduces the last axis, so it returns a
scalar for 1-D samples and ``[n_boot]`` for resamples ``[n_boot, n]`` (e.g.
``lambda x: x.mean(axis=-1)``, or `ks_batch`).
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


def ks_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """KS statistic along the last axis: ``a [..., n_a]``, ``b [..., n_b]`` -> ``[...]``.

    The same value as `ks` for every row (exact integer arithmetic on the counts; ties handled
    by evaluating the ECDFs only after the last of equal values), vectorised for the bootstrap.
    Leading axes must match.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 0 or a.shape[:-1] != b.shape[:-1]:
        raise ValueError(
            f"need [..., n_a] and [..., n_b] with equal leading axes: {a.shape}, {b.shape}"
        )
    n_a, n_b = a.shape[-1], b.shape[-1]
    if n_a == 0 or n_b == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("samples must be non-empty and free of NaN and inf")
    pooled = np.concatenate([a, b], axis=-1)
    order = np.argsort(pooled, axis=-1)
    values = np.take_along_axis(pooled, order, axis=-1)
    count_a = np.cumsum(order < n_a, axis=-1)
    count_b = np.arange(1, n_a + n_b + 1) - count_a
    gap = np.abs(count_a * n_b - count_b * n_a)
    last_of_ties = np.concatenate(
        [values[..., 1:] != values[..., :-1], np.ones_like(values[..., :1], dtype=bool)], axis=-1
    )
    return np.where(last_of_ties, gap, 0).max(axis=-1) / (n_a * n_b)


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
    method: Literal["percentile", "bc"] = "percentile",
) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` bootstrap interval ``(low, high)`` of ``stat(*samples)``.

    For a one-sided bound at level ``a`` use ``alpha = 2 a`` and one end. ``method="percentile"``
    takes the ``alpha/2`` and ``1 - alpha/2`` quantiles of the replicates; ``"bc"`` (bias-corrected
    percentile, Efron 1981) shifts both quantiles by the replicates' median bias, worth it for
    statistics biased upward like KS near 0. Arguments as in `bootstrap_distribution`.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    replicates = bootstrap_distribution(stat, *samples, n_boot=n_boot, seed=seed, pairing=pairing)
    levels = np.array([alpha / 2, 1 - alpha / 2])
    if method == "bc":
        estimate = float(stat(*(_sample(x) for x in samples)))
        below = np.mean(replicates < estimate) + 0.5 * np.mean(replicates == estimate)
        z0 = special.ndtri(np.clip(below, 0.5 / n_boot, 1 - 0.5 / n_boot))
        levels = special.ndtr(2 * z0 + special.ndtri(levels))
    elif method != "percentile":
        raise ValueError(f"method must be 'percentile' or 'bc', got {method!r}")
    low, high = np.quantile(replicates, levels)
    return float(low), float(high)


def _mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1)


def bootstrap_diff_ci(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
    paired: bool = False,
) -> tuple[float, float]:
    """Bootstrap interval of ``mean(a) - mean(b)``; ``paired`` resamples rows jointly."""
    return bootstrap_ci(
        lambda x, y: _mean(x) - _mean(y),
        a,
        b,
        n_boot=n_boot,
        alpha=alpha,
        seed=seed,
        pairing="all" if paired else None,
    )


def ks_diff_ci(
    x: ArrayLike,
    y: ArrayLike,
    reference: ArrayLike,
    *,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int | np.random.Generator = 0,
    paired: bool = False,
) -> tuple[float, float]:
    """Bootstrap interval of ``KS(x, reference) - KS(y, reference)``.

    Negative means ``x`` is closer to the reference than ``y``. Each replicate resamples the
    reference once and uses it in both terms; ``paired`` resamples all three samples with the same
    rows (same base prompts across types).
    """
    return bootstrap_ci(
        lambda x_, y_, r: ks_batch(x_, r) - ks_batch(y_, r),
        x,
        y,
        reference,
        n_boot=n_boot,
        alpha=alpha,
        seed=seed,
        pairing="all" if paired else None,
    )


def mannwhitney_less(a: ArrayLike, b: ArrayLike) -> float:
    """One-sided Mann-Whitney U p-value for "a is stochastically less than b" (earlier steps).

    Tests ``P(A < B) + P(A = B) / 2 > 1/2``, a statement about the distributions, not the means
    (``scipy.stats.mannwhitneyu``, alternative ``"less"``, tie-corrected normal approximation
    where ties exist).
    """
    return float(stats.mannwhitneyu(_sample(a, "a"), _sample(b, "b"), alternative="less").pvalue)


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
