"""Error rates of the claim checks, simulated on paired integer steps whose laws are known exactly.

A `Law` is a discretised distribution of steps (normal like MS, AUC and NL steps; gamma like AP
steps); `paired_steps` draws rows of several laws correlated through a Gaussian copula (rows share
a base prompt); `rate` runs a judge on many such datasets. `CASES` holds every claim case with the
paper's effect as laws, built from the claim records (`synthact.judge.claims`) and judged by the
claim's own `synthact.judge.hypotheses` function.

``python -m tools.power_table`` (from the checkout) simulates every case and writes
``synthact/data/power.json`` (read at run time by `synthact.judge.power.needed_n`: a claim that
does not hold at an n below its needed n is reported as underpowered, not as failed) and
``docs/power.md``. The simulation is a maintainer's tool, outside the installed library.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import astuple, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy import optimize, special
from scipy.stats import beta

from synthact.judge import checks, claims, hypotheses
from synthact.judge.paper import paper_rows
from synthact.judge.power import N_GRID, PAPER_N, POWER_FILE, RHOS, TARGET_POWER

ROOT = Path(__file__).resolve().parents[1]
"""The checkout: the table and docs/power.md are written into it."""
Steps = Mapping[str, np.ndarray]
Judge = Callable[[Steps], bool]

RHO = 0.5
"""Pairing correlation of the simulated rows: the lower end of what the claims' types show."""


@dataclass(frozen=True)
class Law:
    """A distribution on the integer steps 0..cap, given by its CDF ``cdf[k] = P(X <= k)``."""

    cdf: np.ndarray

    @classmethod
    def normal(cls, mean: float, sd: float, cap: int = 99) -> Law:
        """``floor(N(mean + 0.5, sd))`` clipped to [0, cap]: about ``mean``, spread ``sd``."""
        cdf = special.ndtr((np.arange(cap + 1) + 0.5 - mean) / sd)
        cdf[-1] = 1.0
        return cls(cdf)

    @classmethod
    def gamma(cls, mean: float, sd: float, cap: int = 100) -> Law:
        """A gamma law of ``mean`` and ``sd`` rounded to integers and capped: AP-like steps."""
        shape, scale = (mean / sd) ** 2, sd**2 / mean
        cdf = special.gammainc(shape, (np.arange(cap + 1) + 0.5) / scale)
        cdf[-1] = 1.0
        return cls(cdf)

    @classmethod
    def sentinel(cls, body: Law, mass: float, at: int) -> Law:
        """``body`` with probability ``mass`` moved to the step ``at`` (>= body's cap): a sentinel
        such as MS 99 ("flat") or NL 100 ("never")."""
        if not 0 < mass < 1 or at < body.cdf.size - 1:
            raise ValueError(f"need 0 < mass < 1 and a sentinel at or above the body's cap: {at}")
        cdf = np.full(at + 1, 1 - mass)
        cdf[: body.cdf.size] *= body.cdf
        cdf[-1] = 1.0
        return cls(cdf)

    @property
    def pmf(self) -> np.ndarray:
        return np.diff(self.cdf, prepend=0.0)

    @property
    def mean(self) -> float:
        return float(self.pmf @ np.arange(self.cdf.size))

    @property
    def var(self) -> float:
        k = np.arange(self.cdf.size)
        return float(self.pmf @ k**2 - self.mean**2)

    def ks(self, other: Law) -> float:
        """The population KS distance ``max_k |F(k) - G(k)|``."""
        return float(np.abs(self.cdf - other.cdf).max())

    def gap(self, later: Law) -> float:
        """Population `checks.standardized_gap` of ``later`` after this law."""
        return (later.mean - self.mean) / math.sqrt((self.var + later.var) / 2)

    def draw(self, uniforms: np.ndarray) -> np.ndarray:
        """The steps at the given probabilities (inverse CDF): ``[n]`` -> ``[n]`` integers."""
        return np.minimum(np.searchsorted(self.cdf, uniforms), self.cdf.size - 1)


def solve(
    make: Callable[[float], Law],
    measure: Callable[[Law], float],
    target: float,
    low: float,
    high: float,
) -> Law:
    """The law ``make(x)`` with ``measure(law) == target`` for x in [low, high] (a root)."""
    x = optimize.brentq(lambda v: measure(make(v)) - target, low, high, xtol=1e-10)
    return make(x)


def paired_steps(laws: Mapping[str, Law], rho: float, n: int, rng: np.random.Generator) -> Steps:
    """n rows, one step per law, every pair of columns correlated ``rho`` (Gaussian copula)."""
    shared = rng.standard_normal((n, 1))
    own = rng.standard_normal((n, len(laws)))
    u = special.ndtr(math.sqrt(rho) * shared + math.sqrt(1 - rho) * own)
    return {name: law.draw(u[:, i]) for i, (name, law) in enumerate(laws.items())}


@dataclass(frozen=True)
class Rate:
    """How often a judge passed: ``hits`` of ``reps`` simulated datasets."""

    hits: int
    reps: int

    @property
    def value(self) -> float:
        return self.hits / self.reps

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Two-sided Clopper-Pearson interval of the rate."""
        a = (1 - confidence) / 2
        low = beta.ppf(a, self.hits, self.reps - self.hits + 1) if self.hits else 0.0
        high = (
            beta.ppf(1 - a, self.hits + 1, self.reps - self.hits) if self.hits < self.reps else 1.0
        )
        return float(low), float(high)

    def __str__(self) -> str:
        low, high = self.interval()
        return f"{self.value:.1%} [{low:.1%}, {high:.1%}]"


def rate(
    judge: Judge, laws: Mapping[str, Law], *, n: int, reps: int, rho: float = RHO, seed: int = 0
) -> Rate:
    """How often ``judge`` passes on ``reps`` datasets of ``n`` paired rows drawn from ``laws``."""
    rng = np.random.default_rng(seed)
    return Rate(sum(bool(judge(paired_steps(laws, rho, n, rng))) for _ in range(reps)), reps)


@dataclass(frozen=True)
class Case:
    """A claim case with the paper's effect: its laws and the claim's own judge."""

    name: str
    laws: Mapping[str, Law]
    judge: Judge
    effect: str


def _ks_note(laws: Mapping[str, Law], table: str, mode: str) -> str:
    rows = paper_rows(table, mode)
    real = laws["real"]
    parts = [
        f"{kind} {real.ks(law):.2f} ({rows[kind][2]:.2f})"
        for kind, law in laws.items()
        if kind != "real" and kind in rows
    ]
    return f"Table {table} {mode}, KS vs real: " + ", ".join(parts)


LAWS = {"normal": Law.normal, "gamma": Law.gamma}
"""The simulated laws of a claim case's rows (`synthact.judge.claims.Row.law`)."""


def _case(simulated: claims.Simulated) -> Case:
    """A claim record's power case: each column's law from its paper row, judged by the claim's
    hypothesis; the effect in words, else each run's KS against real beside the paper's."""
    rows = simulated.columns
    laws = {
        key: LAWS[row.law](*paper_rows(row.table, row.mode)[row.kind][:2])
        for key, row in rows.items()
    }
    judge = lambda s: simulated.hypothesis(s).holds  # noqa: E731
    if simulated.effect is not None:
        return Case(simulated.name, laws, judge, simulated.effect)
    notes = []
    for prefix in simulated.runs:
        run = {k.removeprefix(prefix): law for k, law in laws.items() if k.startswith(prefix)}
        first = rows[next(k for k in rows if k.startswith(prefix))]
        notes.append(_ks_note(run, first.table, first.mode))
    return Case(simulated.name, laws, judge, "; ".join(notes))


def _cases() -> list[Case]:
    """Every power case of the claim records (`synthact.judge.claims.CLAIMS`)."""
    cases = [
        _case(simulated)
        for claim in claims.CLAIMS
        for case in claim.cases
        for simulated in case.simulated()
    ]
    return sorted(cases, key=lambda c: _case_order(c.name))


def _case_order(name: str) -> tuple:
    claim = name.split("[")[0].split(" ")[0]
    number = int(claim[1:]) if claim[1:].isdigit() else 99
    return (number, name)


CASES = _cases()


# --- the checks at their boundaries ---------------------------------------------------------


@dataclass(frozen=True)
class Boundary:
    """Laws at which a check's hypothesis is exactly false (its null's edge): it should pass
    there at most `checks.ALPHA` of the time."""

    check: str
    setting: str
    laws: Mapping[str, Law]
    judge: Judge
    rhos: tuple[float, ...] = (0.0, 0.5)
    """Pairing correlations it is simulated at (1: rows perfectly paired, comonotone)."""

    @property
    def key(self) -> str:
        return f"{self.check}: {self.setting}"


MS = Law.normal(45, 10)
"""An MS-like law; AP-like laws are gamma (`AP`)."""
AP = Law.gamma(15.12, 8.62)


def _normal_at(law: Law, measure: Callable[[Law], float], target: float, *, shift: bool) -> Law:
    """A normal law with ``law``'s mean and sd, shifted or rescaled to ``measure == target``."""
    mean, sd = law.mean + 0.0, math.sqrt(law.var)
    if shift:
        return solve(lambda x: Law.normal(mean + x, sd), measure, target, 0.0, 4 * sd)
    return solve(lambda x: Law.normal(mean, sd * x), measure, target, 1.0, 8.0)


def _gamma_at(law: Law, measure: Callable[[Law], float], target: float) -> Law:
    """A gamma law with ``law``'s sd and a mean moved up to ``measure == target``."""
    mean, sd = law.mean, math.sqrt(law.var)
    return solve(lambda x: Law.gamma(mean + x, sd), measure, target, 0.0, 4 * sd)


SENTINEL_RHOS = (0.0, 0.5, 0.9, 0.99)


def _with_sentinel(mean: float, sd: float, mass: float, at: int) -> Law:
    """A law with ``mass`` at the sentinel ``at`` and a normal body of ``sd`` placed earlier, so
    that its mean is ``mean``."""
    return solve(
        lambda x: Law.sentinel(Law.normal(x, sd, cap=at - 1), mass, at),
        lambda law: law.mean - mean,
        0.0,
        -50.0,
        mean,
    )


MS_FLAT = _with_sentinel(MS.mean, 10.0, 0.15, 99)
"""MS-like steps, 15 % of them "flat" (99), the rest earlier: the mean of `MS`."""
NL = Law.normal(30, 10, cap=100)
NL_NEVER = _with_sentinel(NL.mean, 9.0, 0.1, 100)
"""NL-like steps, 10 % "never" (100), the rest earlier: the mean of `NL`."""


def _points(masses: Mapping[int, float], cap: int = 99) -> Law:
    """The law with ``masses`` (step -> probability) on the steps 0..cap."""
    pmf = np.zeros(cap + 1)
    for step, mass in masses.items():
        pmf[step] = mass
    return Law(np.append(np.cumsum(pmf)[:-1], 1.0))


def _two_point(low: int, high: int, p_high: float) -> Law:
    return _points({low: 1 - p_high, high: p_high}, cap=high)


def _sentinel_boundaries() -> list[Boundary]:
    """Sizes where steps carry a sentinel mass: skewed paired differences, and the least
    favourable law of a pointwise ECDF bound (two values, rows perfectly paired)."""
    earlier = lambda s: checks.earlier(s, "a", "b").passed  # noqa: E731
    same = lambda s: checks.ks_below(s, "a", "b").passed  # noqa: E731
    margin = checks.EQUIVALENCE_MARGIN
    flat_shifted = solve(
        lambda x: Law.sentinel(Law.normal(35.0 + x, 10.0, cap=98), 0.15, 99),
        MS_FLAT.ks,
        margin,
        0.0,
        20.0,
    )
    return [
        Boundary(
            "earlier",
            "MS 15 % at 99, earlier body vs normal, equal means",
            {"a": MS_FLAT, "b": MS},
            earlier,
            SENTINEL_RHOS,
        ),
        Boundary(
            "earlier",
            "NL 10 % at 100, earlier body vs normal, equal means",
            {"a": NL_NEVER, "b": NL},
            earlier,
            SENTINEL_RHOS,
        ),
        Boundary(
            "earlier",
            "MS 15 % at 99, equal laws",
            {"a": MS_FLAT, "b": MS_FLAT},
            earlier,
            SENTINEL_RHOS,
        ),
        Boundary(
            "ks_below",
            f"MS 15 % at 99, body shifted to KS {margin}",
            {"a": MS_FLAT, "b": flat_shifted},
            same,
            SENTINEL_RHOS,
        ),
        Boundary(
            "ks_below",
            f"two points, 99 with P 0.15 vs {0.15 + margin:g}, comonotone",
            {"a": _two_point(40, 99, 0.15), "b": _two_point(40, 99, 0.15 + margin)},
            same,
            (1.0,),
        ),
    ]


def _sentinel_ks_boundaries() -> list[Boundary]:
    """Sizes of `checks.ks_above` where steps carry sentinel masses: an argmax at the sentinel,
    two values with rows perfectly paired, and a plateau (KS reached at every step below 99, the
    most points a contact set can have to cover)."""
    above = lambda s: checks.ks_above(s, "a", "b", 0.3).passed  # noqa: E731
    flat_shifted = solve(
        lambda x: Law.sentinel(Law.normal(35.0 + x, 10.0, cap=98), 0.15, 99),
        MS_FLAT.ks,
        0.3,
        0.0,
        30.0,
    )
    zeros = Law(np.append(0.3 + 0.7 * MS.cdf[:-1], 1.0))
    flats = Law(np.append(0.7 * MS.cdf[:-1], 1.0))
    return [
        Boundary(
            "ks_above",
            "MS 15 % at 99, body shifted to KS 0.3",
            {"a": MS_FLAT, "b": flat_shifted},
            above,
            SENTINEL_RHOS,
        ),
        Boundary(
            "ks_above",
            "two points, 99 with P 0.15 vs 0.45, comonotone",
            {"a": _two_point(40, 99, 0.15), "b": _two_point(40, 99, 0.45)},
            above,
            (1.0,),
        ),
        Boundary(
            "ks_above",
            "30 % at 0 vs 30 % at 99: KS 0.3 at every step",
            {"a": zeros, "b": flats},
            above,
        ),
    ]


def _gap_of_gaps_holds(s: Steps) -> bool:
    """C5's and C9's contrast on six columns: (KS(b1, r1) - KS(s1, r1)) - (KS(b2, r2) - KS(s2,
    r2)) > 0."""
    terms = [(1, "b1", "r1"), (-1, "s1", "r1"), (-1, "b2", "r2"), (1, "s2", "r2")]
    contrast = [(c, s[x], s[y]) for c, x, y in terms]
    return checks.ks_contrast("gap of gaps", contrast, above=0.0).passed


def _sentinel_contrast_boundaries() -> list[Boundary]:
    """Sizes of the KS contrasts on the least favourable laws of their lattice: steps at 30, 40
    and the sentinel 99, rows perfectly paired, each KS reached on one stretch of steps (below
    40 or between 40 and 99), so that every term's error is a count of rows and the contrast's
    a sum of counts: symmetric for `checks.closer`, skewed for the gap of gaps (rows add -2, -1,
    1, 2 with probabilities 0.3, 0.05, 0.25, 0.2)."""
    real = _two_point(40, 99, 0.15)
    high, low = _two_point(40, 99, 0.45), _points({30: 0.3, 40: 0.55, 99: 0.15})
    orders = {"40 vs 99 against 30 vs 40": (high, low), "30 vs 40 against 40 vs 99": (low, high)}
    return [
        *(
            Boundary(
                "closer",
                f"two stretches at KS 0.3: {words}, comonotone",
                {"real": real, "a": a, "b": b},
                lambda s: checks.closer(s, "a", "b").passed,
                (1.0,),
            )
            for words, (a, b) in orders.items()
        ),
        Boundary(
            "KS gap of gaps (C5, C9)",
            "gaps 0.45 - 0.35 and 0.3 - 0.2 on two stretches, comonotone (skewed)",
            {
                "r1": real,
                "b1": _two_point(40, 99, 0.6),
                "s1": _points({30: 0.35, 40: 0.5, 99: 0.15}),
                "r2": real,
                "b2": low,
                "s2": _two_point(40, 99, 0.35),
            },
            _gap_of_gaps_holds,
            (1.0,),
        ),
    ]


def _boundaries() -> list[Boundary]:
    c = checks
    found = []
    same_mean = solve(lambda x: Law.gamma(x, 12.0), lambda g: g.mean - MS.mean, 0.0, 20, 70)
    found += [
        Boundary(
            "earlier",
            "MS-like, equal laws",
            {"a": MS, "b": MS},
            lambda s: c.earlier(s, "a", "b").passed,
        ),
        Boundary(
            "earlier",
            "MS-like normal vs gamma, equal means",
            {"a": MS, "b": same_mean},
            lambda s: c.earlier(s, "a", "b").passed,
        ),
        Boundary(
            "earlier",
            "AP-like, equal laws",
            {"a": AP, "b": AP},
            lambda s: c.earlier(s, "a", "b", "AP").passed,
        ),
    ]
    margin = 0.546  # C1's absence margin, absolute steps
    found += [
        Boundary(
            "gap_below",
            "MS-like, gap 0.546 sd",
            {"a": MS, "b": _normal_at(MS, MS.gap, margin, shift=True)},
            lambda s: c.gap_below(s, "a", "b", margin).passed,
        ),
        Boundary(
            "gap_below",
            "AP-like, gap 0.51 sd",
            {"a": AP, "b": _gamma_at(AP, AP.gap, 0.51)},
            lambda s: c.gap_below(s, "a", "b", 0.51, "AP").passed,
        ),
    ]
    for target in (0.3,):
        found += [
            Boundary(
                "ks_above",
                f"MS-like, shifted to KS {target}",
                {"a": MS, "b": _normal_at(MS, MS.ks, target, shift=True)},
                lambda s, t=target: c.ks_above(s, "a", "b", t).passed,
            ),
            Boundary(
                "ks_above",
                f"MS-like, rescaled to KS {target} (two peaks)",
                {"a": MS, "b": _normal_at(MS, MS.ks, target, shift=False)},
                lambda s, t=target: c.ks_above(s, "a", "b", t).passed,
            ),
            Boundary(
                "ks_above",
                f"AP-like, shifted to KS {target}",
                {"a": AP, "b": _gamma_at(AP, AP.ks, target)},
                lambda s, t=target: c.ks_above(s, "a", "b", t).passed,
            ),
        ]
    margin = c.EQUIVALENCE_MARGIN
    found += [
        Boundary(
            "ks_below",
            f"MS-like, shifted to KS {margin}",
            {"a": MS, "b": _normal_at(MS, MS.ks, margin, shift=True)},
            lambda s: c.ks_below(s, "a", "b").passed,
        ),
        Boundary(
            "ks_below",
            f"MS-like, rescaled to KS {margin} (two peaks)",
            {"a": MS, "b": _normal_at(MS, MS.ks, margin, shift=False)},
            lambda s: c.ks_below(s, "a", "b").passed,
        ),
        Boundary(
            "ks_below",
            f"AP-like, shifted to KS {margin}",
            {"a": AP, "b": _gamma_at(AP, AP.ks, margin)},
            lambda s: c.ks_below(s, "a", "b").passed,
        ),
    ]
    shifted, rescaled = (_normal_at(MS, MS.ks, 0.2, shift=v) for v in (True, False))
    wider = _normal_at(MS, MS.ks, 0.25, shift=False)
    found += [
        Boundary(
            "closer",
            "MS-like, shifted vs rescaled at equal KS 0.2",
            {"real": MS, "a": shifted, "b": rescaled},
            lambda s: c.closer(s, "a", "b").passed,
        ),
        Boundary(
            "closer",
            "MS-like, rescaled vs shifted at equal KS 0.2",
            {"real": MS, "a": rescaled, "b": shifted},
            lambda s: c.closer(s, "a", "b").passed,
        ),
        Boundary(
            "closer",
            "AP-like, two shifts at equal KS 0.2",
            {"real": AP, "a": _gamma_at(AP, AP.ks, 0.2), "b": _gamma_at(AP, AP.ks, 0.2)},
            lambda s: c.closer(s, "a", "b").passed,
        ),
        Boundary(
            "closer, slack 0.05",
            "MS-like, KS 0.25 (rescaled) vs 0.2 (shifted)",
            {"real": MS, "a": wider, "b": shifted},
            lambda s: c.closer(s, "a", "b", slack=0.05).passed,
        ),
    ]
    found.append(
        Boundary(
            "KS gap of gaps (C5, C9)",
            "gap 0.1 shifted in one run, 0.1 rescaled in the other",
            {
                "r1": MS,
                "b1": _normal_at(MS, MS.ks, 0.3, shift=True),
                "s1": shifted,
                "r2": MS,
                "b2": _normal_at(MS, MS.ks, 0.3, shift=False),
                "s2": rescaled,
            },
            _gap_of_gaps_holds,
        )
    )
    median_45 = solve(lambda m: Law.normal(m, 7.42), lambda law: law.cdf[45], 0.5, 40, 50)
    in_30_70 = solve(
        lambda sd: Law.normal(51.65, sd), lambda law: law.cdf[70] - law.cdf[29], 0.9, 5, 30
    )
    mean_low = Law.normal(50.4, 5.0)  # C13's norm check: mean exactly 50.4 = 56 - 10 %
    found += [
        Boundary(
            "median_within",
            "median exactly 45, P(X <= 45) = 1/2",
            {"x": median_45},
            lambda s: c.median_within(s["x"], 45, 55, "x")[0].passed,
        ),
        Boundary(
            "fraction_between",
            "exactly 90 % in [30, 70]",
            {"x": in_30_70},
            lambda s: c.fraction_between(s["x"], 30, 70, 0.9, "x").passed,
        ),
        Boundary(
            "mean_within",
            "mean exactly at the lower end",
            {"x": mean_low},
            lambda s: c.mean_within(s["x"], mean_low.mean, 70, "m")[0].passed,
        ),
    ]
    return (
        found + _sentinel_boundaries() + _sentinel_ks_boundaries() + _sentinel_contrast_boundaries()
    )


BOUNDARIES = _boundaries()


def _equivalence_truths() -> list[Boundary]:
    """`checks.ks_below` where the paper says "the same": equal laws, and KS 0.02 (Table D.1)."""
    real = Law.normal(41.11, 10.40)
    near = _normal_at(real, real.ks, 0.02, shift=True)
    judge = lambda s: checks.ks_below(s, "a", "b").passed  # noqa: E731
    return [
        Boundary("ks_below", "equal laws (C14, precision)", {"a": real, "b": real}, judge),
        Boundary("ks_below", "KS 0.02, Table D.1 absolute (C10)", {"a": real, "b": near}, judge),
    ]


EQUIVALENCE = _equivalence_truths()
EQUIVALENCE_RHOS = (0.0, 0.5, 0.9, 0.99)


# --- the oracle: what no valid test can show ------------------------------------------------


@dataclass(frozen=True)
class KsNull:
    """A claim ``sum_i c_i KS(x_i, y_i) < threshold`` on a case's laws (``terms``: ``(c_i, x_i,
    y_i)`` law keys); its null is ``>=``."""

    terms: tuple[tuple[float, str, str], ...]
    threshold: float

    def value(self, laws: Mapping[str, Law]) -> float:
        return sum(c * laws[x].ks(laws[y]) for c, x, y in self.terms)

    def bounds(self, laws: Mapping[str, Law], rho: float) -> list[OracleBound]:
        """Boundary laws moving one column at one step: a column of a single term with a
        positive coefficient (its KS raised, the others kept), at each step k, on either side
        of the reference's CDF."""
        value, found = self.value(laws), []
        for c, x, y in self.terms:
            target = laws[x].ks(laws[y]) + (self.threshold - value) / c
            for moved, reference in ((x, y), (y, x)):
                if c <= 0 or sum(moved in term[1:] for term in self.terms) != 1:
                    continue
                size = min(laws[moved].cdf.size, laws[reference].cdf.size) - 1
                for k in range(size):
                    p1, ref = float(laws[moved].cdf[k]), float(laws[reference].cdf[k])
                    found += [
                        OracleBound(moved, reference, k, p1, p0, rho, len(laws))
                        for p0 in (ref - target, ref + target)
                        if 1e-6 < p0 < 1 - 1e-6 and 1e-9 < p1 < 1 - 1e-9
                    ]
        return found


@dataclass(frozen=True)
class EarlierNull:
    """A claim ``mean(earlier) < mean(later)`` (`checks.earlier`); its null is ``>=``."""

    earlier: str
    later: str
    threshold: float = 0.0

    def value(self, laws: Mapping[str, Law]) -> float:
        return laws[self.earlier].mean - laws[self.later].mean

    def bounds(self, laws: Mapping[str, Law], rho: float) -> list[OracleBound]:
        """Boundary laws moving ``later`` at one step: its mass below and above step k
        reweighted so that its mean is ``earlier``'s (a one-step tilt, as for the KS nulls)."""
        law, target, found = laws[self.later], laws[self.earlier].mean, []
        pmf, steps = law.pmf, np.arange(law.cdf.size)
        for k in range(law.cdf.size - 1):
            p1 = float(law.cdf[k])
            if not 1e-9 < p1 < 1 - 1e-9:
                continue
            below = float(pmf[: k + 1] @ steps[: k + 1]) / p1
            above = float(pmf[k + 1 :] @ steps[k + 1 :]) / (1 - p1)
            p0 = (above - target) / (above - below)
            if 1e-6 < p0 < 1 - 1e-6:
                found.append(OracleBound(self.later, self.earlier, k, p1, p0, rho, len(laws)))
        return found


def _gap_of_gaps(first: str, second: str) -> tuple[tuple[float, str, str], ...]:
    """``gap(first) - gap(second)``, gap = KS(baseline, real) - KS(structured, real) of a run."""
    return tuple(
        (sign * c, f"{run}{kind}", f"{run}real")
        for run, sign in ((first, 1), (second, -1))
        for c, kind in ((1, "synthetic-baseline"), (-1, "synthetic-structured"))
    )


ORACLE_NULLS: dict[str, tuple[KsNull | EarlierNull, ...]] = {
    "C4[absolute]": (
        KsNull(((1, "synthetic-baseline", "real"), (-1, "synthetic-random", "real")), 0.0),
    ),
    # absolute gap - relative gap > 0, i.e. relative (two:) gap - absolute (one:) gap < 0
    "C5 gap shrinks": (KsNull(_gap_of_gaps("two:", "one:"), 0.0),),
    "C6[relative]": tuple(
        KsNull(((1, "structured-no-cos", "real"), (-1, other, "real")), hypotheses.NON_INFERIORITY)
        for other in hypotheses.SYNTHETIC_OTHERS
    ),
    # KL (one:) gap - L2 (two:) gap > -0.05, i.e. L2 gap - KL gap < 0.05
    "C9 gap": (KsNull(_gap_of_gaps("two:", "one:"), hypotheses.NON_INFERIORITY),),
    "C10[absolute]": (
        KsNull(((1, "reconstruction", "real"),), checks.EQUIVALENCE_MARGIN),
        EarlierNull("real", "reconstruction"),
    ),
}
"""The statements of the claim cases hardest to decide at n = 1000 (ρ 0.5): each case fails
when one of its statements fails, so a law on the boundary of any one is in its null."""

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(161)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()
"""Gauss-Hermite rule for expectations over a standard normal."""
_Z_ALPHA = special.ndtri(1 - checks.ALPHA)


@dataclass(frozen=True)
class OracleBound:
    """The most powerful test of the paper's laws P1 against one boundary law P0 of a case's null.

    P0 keeps every column of P1 but ``moved``, whose steps are reweighted on each side of the
    step ``k`` so that ``P0(moved <= k) = p0`` puts ``KS(moved, reference)`` on the null's
    boundary (the other KS terms keep their values). At pairing ``rho`` the oracle also sees the
    other ``columns - 1`` columns' latent normals (Gaussian copula): the moved column's chance of
    ``<= k`` given them is ``pi1(W) = Phi((zeta - tau W) / s)`` with W standard normal, and P0
    shifts its log-odds by the constant ``shift`` (the least-KL such P0, I-projection). The
    log-likelihood ratio of a row is then a function of ``(1{moved <= k}, W)``."""

    moved: str
    reference: str
    k: int
    p1: float
    p0: float
    rho: float
    columns: int

    @cached_property
    def _latent(self) -> tuple[float, float, float, float]:
        """``tau``, ``s``, ``zeta = Phi^-1(p1)`` and P0's log-odds ``shift``."""
        m, rho = self.columns, self.rho
        tau = math.sqrt((m - 1) * rho**2 / (1 + (m - 2) * rho)) if m > 1 else 0.0
        s, zeta = math.sqrt(max(1 - tau**2, 1e-12)), float(special.ndtri(self.p1))
        logit = special.logit(self._pi1(_NODES, tau, s, zeta))
        shift = optimize.brentq(
            lambda x: _WEIGHTS @ special.expit(logit + x) - self.p0, -60.0, 60.0, xtol=1e-13
        )
        return tau, s, zeta, shift

    @staticmethod
    def _pi1(w: np.ndarray, tau: float, s: float, zeta: float) -> np.ndarray:
        return np.clip(special.ndtr((zeta - tau * w) / s), 1e-15, 1 - 1e-15)

    def _pi(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``pi1`` and ``pi0`` at the values ``w`` of W (any shape)."""
        tau, s, zeta, shift = self._latent
        pi1 = self._pi1(w, tau, s, zeta)
        return pi1, np.clip(special.expit(special.logit(pi1) + shift), 1e-15, 1 - 1e-15)

    def law(self, paper: Law) -> Law:
        """P0's law of the moved column: ``paper`` reweighted so that ``P(<= k) = p0``."""
        below = np.arange(paper.cdf.size) <= self.k
        scaled = 1 - (1 - paper.cdf) * (1 - self.p0) / (1 - self.p1)
        return Law(np.where(below, paper.cdf * self.p0 / self.p1, scaled))

    def moments(self) -> tuple[float, float, float, float]:
        """Mean and sd of a row's log-likelihood ratio log(P1/P0) under P0, then under P1."""
        pi1, pi0 = self._pi(_NODES)
        below, above = np.log(pi1 / pi0), np.log((1 - pi1) / (1 - pi0))
        found = []
        for pi in (pi0, pi1):
            mean = _WEIGHTS @ (pi * below + (1 - pi) * above)
            square = _WEIGHTS @ (pi * below**2 + (1 - pi) * above**2)
            found += [float(mean), math.sqrt(max(square - mean**2, 0.0))]
        return tuple(found)  # type: ignore[return-value]

    def power(self, n: int) -> float:
        """The NP test's power at n rows (normal approximation of the summed log ratio)."""
        mean0, sd0, mean1, sd1 = self.moments()
        return float(special.ndtr((math.sqrt(n) * (mean1 - mean0) - _Z_ALPHA * sd0) / sd1))

    def needed_n(self) -> int:
        """The smallest n at which `power` reaches `TARGET_POWER`."""
        mean0, sd0, mean1, sd1 = self.moments()
        root = (_Z_ALPHA * sd0 + special.ndtri(TARGET_POWER) * sd1) / (mean1 - mean0)
        return math.ceil(root**2)

    def rate(self, n: int, reps: int, seed: int = 0) -> Rate:
        """The NP test's power at n rows by simulation: the critical value from ``reps`` samples
        of P0, the power from ``reps`` of P1 (checks `power`'s normal approximation)."""
        rng = np.random.default_rng(seed)
        sums = []
        for null in (True, False):
            total = np.zeros(reps)
            for start in range(0, reps, 64):
                pi1, pi0 = self._pi(rng.standard_normal((min(64, reps - start), n)))
                below = rng.random(pi1.shape) < (pi0 if null else pi1)
                llr = np.where(below, np.log(pi1 / pi0), np.log((1 - pi1) / (1 - pi0)))
                total[start : start + len(llr)] = llr.sum(axis=1)
            sums.append(total)
        critical = np.quantile(sums[0], 1 - checks.ALPHA)
        return Rate(int((sums[1] > critical).sum()), reps)


def oracle_bounds(case: Case, rho: float) -> list[OracleBound]:
    """Every boundary law of the case's `ORACLE_NULLS` that moves one column at one step."""
    found = []
    for null in ORACLE_NULLS[case.name]:
        value = null.value(case.laws)
        if value >= null.threshold:
            raise ValueError(f"{case.name}: the paper's laws are in the null ({value:.3g})")
        found += null.bounds(case.laws, rho)
    if not found:
        raise ValueError(f"{case.name}: no boundary law moves a single column")
    return found


ORACLE_N = PAPER_N
"""The oracle's power is tabulated at the paper's n."""


def oracle(case: Case, rho: float, reps: int) -> dict:
    """The least favourable of `oracle_bounds` (its most powerful test needs the largest n for
    `TARGET_POWER`): that n, its power at `ORACLE_N` (normal approximation, and simulated), and
    its law."""
    bound = max(oracle_bounds(case, rho), key=OracleBound.needed_n)
    return {
        "power": round(bound.power(ORACLE_N), 4),
        "simulated": list(astuple(bound.rate(ORACLE_N, reps, seed=ORACLE_N))),
        "needed_n": bound.needed_n(),
        "boundary": f"{bound.moved} vs {bound.reference}: P(<= {bound.k}) "
        f"{bound.p1:.3f} -> {bound.p0:.3f}",
    }


def null_laws(case: Case) -> dict[str, Law]:
    """Laws on the boundary of the case's null (the claim is exactly false): where the claim
    orders or compares types, every type with the first type's law (equal means, equal KS); an
    equivalence at KS exactly `checks.EQUIVALENCE_MARGIN`; C5's mid-path median exactly 45; a
    case of `ORACLE_NULLS` at its least favourable one-step boundary law (ρ 0)."""
    laws = dict(case.laws)
    if case.name in ORACLE_NULLS:
        bound = max(oracle_bounds(case, 0.0), key=OracleBound.needed_n)
        return laws | {bound.moved: bound.law(laws[bound.moved])}
    if case.name.startswith(("C14[", "precision")):
        one, two = laws
        margin = checks.EQUIVALENCE_MARGIN
        return {one: laws[one], two: _normal_at(laws[one], laws[one].ks, margin, shift=True)}
    if case.name == "C5 mid-path":
        sd = math.sqrt(laws["real"].var)
        median = solve(lambda m: Law.normal(m, sd), lambda law: law.cdf[45], 0.5, 30, 60)
        return {"real": median}
    first = next(iter(laws.values()))
    return {kind: first for kind in laws}


# --- the committed table ---------------------------------------------------------------------

SIZE_NS = (100, 1000)


def simulate(case: Case, rho: float, reps: int) -> dict:
    """Power at `SIZE_NS` and the smallest n of `N_GRID` with `TARGET_POWER` (bisection)."""
    power: dict[int, Rate] = {}

    def enough(n: int) -> bool:
        if n not in power:
            power[n] = rate(case.judge, case.laws, n=n, reps=reps, rho=rho, seed=n)
        return power[n].value >= TARGET_POWER

    for n in SIZE_NS:
        enough(n)
    grid = [n for n in N_GRID if n <= SIZE_NS[-1]] if enough(SIZE_NS[-1]) else list(N_GRID)
    low, high = 0, len(grid) - 1
    if enough(grid[low]):
        needed = grid[low]
    elif not enough(grid[high]):
        needed = grid[high] + 1
    else:
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if enough(grid[middle]) else (middle + 1, high)
        needed = grid[low]
    return {
        "needed_n": needed,
        "power": {str(n): [r.hits, r.reps] for n, r in sorted(power.items())},
    }


def size(boundary: Boundary, rho: float, reps: int) -> dict:
    """How often the check passes at its boundary, at each of `SIZE_NS`."""
    return {
        str(n): astuple(rate(boundary.judge, boundary.laws, n=n, reps=reps, rho=rho, seed=n))
        for n in SIZE_NS
    }


def _done(table: dict, kind: str, name: str, rho: float) -> bool:
    if kind in ("case", "oracle"):
        part = "by_rho" if kind == "case" else "oracle"
        return f"{rho:g}" in table["cases"].get(name, {}).get(part, {})
    return f"{rho:g}" in table[kind].get(name, {})


def _run(task: tuple) -> tuple:
    kind, name, rho, reps = task
    if kind == "case":
        return task, simulate(next(c for c in CASES if c.name == name), rho, reps)
    if kind == "oracle":
        return task, oracle(next(c for c in CASES if c.name == name), rho, reps)
    scenarios = BOUNDARIES if kind == "sizes" else EQUIVALENCE
    return task, size(next(b for b in scenarios if b.key == name), rho, reps)


KINDS = ("case", "oracle", "sizes", "equivalence")
"""The kinds of entries of the table: claim cases' power, their oracle bounds, sizes at the
checks' boundaries, the equivalence margin's power."""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400, help="datasets per case and size")
    parser.add_argument("--only", default=None, help="simulate only names starting with this")
    parser.add_argument("--jobs", type=int, default=1, help="processes")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite docs/power.md")
    parser.add_argument("--redo", action="store_true", help="simulate entries already in the table")
    parser.add_argument(
        "--kind",
        action="append",
        choices=KINDS,
        help="simulate only these kinds of entries (repeatable; default: every kind)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "synthact" / POWER_FILE)
    args = parser.parse_args(argv)
    table = json.loads(args.out.read_text()) if args.out.exists() else {}
    for kind in ("cases", "sizes", "equivalence"):
        table.setdefault(kind, {})
    if not args.markdown_only:
        table |= {"rhos": list(RHOS), "target_power": TARGET_POWER, "n_grid": list(N_GRID)}
        tasks = [("case", c.name, rho, args.reps) for c in CASES for rho in RHOS]
        tasks += [("oracle", name, rho, args.reps) for name in ORACLE_NULLS for rho in RHOS]
        tasks += [("sizes", b.key, rho, args.reps) for b in BOUNDARIES for rho in b.rhos]
        tasks += [
            ("equivalence", b.key, r, args.reps) for b in EQUIVALENCE for r in EQUIVALENCE_RHOS
        ]
        tasks = [t for t in tasks if not args.only or t[1].startswith(args.only)]
        tasks = [t for t in tasks if t[0] in (args.kind or KINDS)]
        if not args.redo:
            tasks = [t for t in tasks if not _done(table, *t[:3])]
        with ProcessPoolExecutor(args.jobs) as pool:
            for (kind, name, rho, _), result in pool.map(_run, tasks):
                if kind == "case":
                    entry = table["cases"].setdefault(name, {"by_rho": {}})
                    entry["effect"] = next(c.effect for c in CASES if c.name == name)
                    entry["by_rho"][f"{rho:g}"] = result
                elif kind == "oracle":
                    entry = table["cases"].setdefault(name, {"by_rho": {}})
                    entry.setdefault("oracle", {})[f"{rho:g}"] = result
                else:
                    table[kind].setdefault(name, {})[f"{rho:g}"] = result
                print(kind, name, rho, result, flush=True)
                args.out.write_text(json.dumps(table, indent=1) + "\n")
    docs = ROOT / "docs" / "power.md"
    docs.write_text(markdown(table))


def _oracle_markdown(table: dict) -> list[str]:
    """The oracle section of docs/power.md: what no valid test can show at n = 1000."""
    lines = [
        "",
        "## What no valid test can show: the oracle bound",
        "",
        f"For the claim cases hardest to decide at n = {ORACLE_N} and ρ 0.5,",
        "an oracle that knows both laws bounds the power of every valid check. A check of level",
        "5 % passes at most 5 % of the time at *every* law of the claim's null, so in particular",
        "at one boundary law P0; against the paper's laws P1 no test of level 5 % at P0 is more",
        "powerful than the Neyman-Pearson test of P0 against P1 (`tools/power_table.py`,",
        "`OracleBound`). The power of that test is an upper bound on the power of every valid",
        "check of the claim; where it is below the target at n = 1000, the paper's effect is too",
        "small for n = 1000 whatever the check (the run reports *effect too small*), and the",
        "oracle's needed n is a lower bound on the n any valid check needs.",
        "",
        "P0 keeps the paper's laws and pairing except one type's steps, reweighted on each side",
        "of one step k so that one statement of the claim reaches the null's boundary: a KS term",
        "with the other terms unchanged, or (C10[absolute]'s `earlier`) the later type's mean at",
        "the earlier one's; the bound is the least favourable over the statements, the types, the",
        "steps k and the direction. At ρ = 0 the types are independent and the test's",
        "statistic is the sum of the marginal pmfs' log-likelihood ratios (a binomial count at",
        "k). At ρ > 0 the oracle",
        "is also shown the other types' latent normals of the Gaussian copula (more information,",
        "so still an upper bound), and P0 shifts the moved type's log-odds of `<= k` given them",
        "by a constant (the least-KL such law), so the bound covers the joint law of the rows.",
        "Powers are from the normal approximation of the summed log ratio, checked by",
        "simulation (in brackets, with its 95 % interval). A bound above the target does not",
        "show that a check reaching it exists: a check must hold its size at every boundary law",
        "at once, the oracle at one.",
        "",
        "| claim case | ρ | oracle power, n = 1000 | oracle needed n | boundary law P0 |",
        "|---|---|---|---|---|",
    ]
    for name, entry in table["cases"].items():
        for rho, found in entry.get("oracle", {}).items():
            power = f"{found['power']:.1%} ({_rate(found['simulated'])})"
            lines.append(
                f"| {name} | {rho} | {power} | {found['needed_n']} | {found['boundary']} |"
            )
    return lines


def _rate(pair: Sequence[int]) -> str:
    return str(Rate(*pair)) if pair else "—"


def markdown(table: dict) -> str:
    """docs/power.md from the table: sizes at the boundaries, power per claim case."""
    rhos = [f"{r:g}" for r in table["rhos"]]
    lines = [
        "# Error rates of the claim checks",
        "",
        "Generated by `python -m tools.power_table` (simulation: `tools/power_table.py`; numbers:",
        "`synthact/data/power.json`); do not edit by hand.",
        "",
        "Every verdict comes from one-sided 95 % bounds (`synthact/judge/checks.py`). "
        "These tables give",
        "their error rates, simulated by calling the claims' own checks",
        "(`synthact/judge/hypotheses.py`) on paired integer step samples whose laws are known "
        "exactly:",
        "discretised normal laws for MS, AUC and NL steps, discretised gamma laws for AP steps,",
        "rows correlated ρ through a Gaussian copula (every type is perturbed from the same base",
        "prompts). Each rate is the share of simulated datasets on which the check or claim",
        "passed, with its 95 % Clopper-Pearson interval.",
        "",
        'The sizes include laws with a point mass at a sentinel (MS 99 "flat", NL 100',
        '"never") and the rest of the law earlier, at ρ up to 0.99, and two-point laws with',
        "rows perfectly paired (ρ 1), the least favourable law of `ks_below`'s pointwise bounds.",
        "`earlier` bounds the paired mean difference by the studentized bootstrap, which holds",
        "5 % on these skewed differences where a percentile bound does not, and by a sign-flip",
        "bound, exact for the symmetric difference of equal laws; `ks_below` tests each",
        "point of the ECDF difference on its own (intersection-union) with a continuity-corrected",
        "score bound, whose size on the two-point law is at most 4.8 % for n = 100-4000 by exact",
        "enumeration (`tests/test_stats.py` enumerates n = 100, 150, 200).",
        "`ks_above` bounds the error of the ECDF difference at the sample's argmax over the",
        "contact set, the points that may be the population's argmax, not over every point;",
        "its sizes include an argmax at a sentinel, two-point laws with rows perfectly paired,",
        "and a plateau (KS reached at every step: the most points a contact set has to cover).",
        "The KS contrasts (`closer`, the gap of gaps) bound each term's error over its own",
        "contact set, summed with the other terms' errors replicate by replicate, plus half a",
        "count per term; their sizes include laws at three steps (30, 40, the sentinel 99) with",
        "rows perfectly paired, where every term's error is a count of rows and the contrast",
        "a sum of counts, symmetric (`closer`) or skewed (the gap of gaps).",
        "`mean_within` (C12, C13) bounds a mean by the studentized bootstrap.",
        "",
        "## Size: each check at the edge of its hypothesis",
        "",
        "A check should pass at most 5 % of the time where its hypothesis is exactly false.",
        "",
        "| check | setting | ρ | n = 100 | n = 1000 |",
        "|---|---|---|---|---|",
    ]
    for key, by_rho in table["sizes"].items():
        check, setting = key.split(": ", 1)
        for rho, by_n in by_rho.items():
            cells = " | ".join(_rate(by_n.get(str(n))) for n in SIZE_NS)
            lines.append(f"| {check} | {setting} | {rho} | {cells} |")
    lines += [
        "",
        "## Equivalence: where the paper says the distributions are the same",
        "",
        f"`checks.ks_below` with margin {checks.EQUIVALENCE_MARGIN} (C10, C14, precision) passes",
        "at these rates when the truth is the paper's; at KS 0.1 it passes at most the sizes",
        "above.",
        "",
        "| truth | ρ | n = 100 | n = 1000 |",
        "|---|---|---|---|",
    ]
    for key, by_rho in table["equivalence"].items():
        for rho, by_n in by_rho.items():
            cells = " | ".join(_rate(by_n.get(str(n))) for n in SIZE_NS)
            lines.append(f"| {key.split(': ', 1)[1]} | {rho} | {cells} |")
    lines += [
        "",
        "## Power: each claim case at the paper's effect",
        "",
        "The laws take each type's mean and std from the paper's table (their KS against real",
        "beside the paper's in brackets; the AP laws from the authors' recorded run). Power is",
        "the chance that the whole claim holds; *needed n* the smallest n of the grid",
        f"{', '.join(map(str, table['n_grid']))} with {table['target_power']:.0%} power (beyond",
        "it: `> max`). A claim that does not hold at an n below its needed n (at the run's own",
        "pairing correlation, rounded down to a tabulated ρ) is reported as *underpowered*, not",
        "judged; a claim that holds holds at any n. A needed n beyond the grid is underpowered",
        "at any n. `--n-needed` runs each claim's experiments at its cases' needed n at ρ 0 (the",
        "least favourable; the run's pairing is known only after its rows), at most 4000.",
        "",
        "| claim case | ρ | power, n = 100 | power, n = 1000 | needed n |",
        "|---|---|---|---|---|",
    ]
    largest = table["n_grid"][-1]
    for name, entry in table["cases"].items():
        for rho in rhos:
            result = entry["by_rho"].get(rho)
            if result is None:
                continue
            power = result["power"]
            needed = result["needed_n"]
            needed_text = f"> {largest}" if needed > largest else str(needed)
            cells = " | ".join(_rate(power.get(str(n))) for n in SIZE_NS)
            lines.append(f"| {name} | {rho} | {cells} | {needed_text} |")
    lines += _oracle_markdown(table)
    lines += ["", "Effects simulated:", ""]
    lines += [f"- {name}: {entry['effect']}" for name, entry in table["cases"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
