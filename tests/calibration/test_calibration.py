"""Error rates of every check the claims use, measured by simulation (`synthact.judge.power`).

Default run (n = 100): each check at the edge of its hypothesis passes at most 5 % of the time
(beyond the Monte-Carlo error: the one-sided 95 % Clopper-Pearson lower bound of the observed
rate must not exceed 5 %), for MS-like and AP-like laws and laws with a sentinel mass (MS 99, NL
100), rows paired at rho 0 and 0.5 (perfectly, for the two-point law); and a few claim cases
reproduce the committed power table (synthact/data/power.json) exactly. ``--calibration`` adds
the sentinel laws at rho 0.9 and 0.99, n = 300 and 1000 at every boundary's pairings, every claim
case of the table at both sizes, and the equivalence margin's power where the paper says the
distributions are the same.
"""

from __future__ import annotations

import pytest

from synthact.judge import power
from synthact.judge.checks import ALPHA
from tools import power_table as simulation

KS_CHECKS = ("ks_above", "ks_below", "closer", "closer, slack 0.05", "KS gap of gaps (C5, C9)")
"""Slower checks (a KS bound per dataset): fewer datasets, enough to see a size above 5 %."""


def _reps(boundary: simulation.Boundary) -> int:
    return 200 if boundary.check in KS_CHECKS else 800


def _assert_size(boundary: simulation.Boundary, n: int, rho: float) -> None:
    found = simulation.rate(
        boundary.judge, boundary.laws, n=n, reps=_reps(boundary), rho=rho, seed=1
    )
    lower = found.interval(1 - 2 * ALPHA)[0]
    assert lower <= ALPHA, f"{boundary.key} at n = {n}, rho {rho}: passes {found}"


def _pairings(which: slice) -> list:
    """``(boundary, rho)`` for the boundaries' pairings selected by ``which``."""
    return [
        pytest.param(b, rho, id=f"{b.key}-rho{rho:g}")
        for b in simulation.BOUNDARIES
        for rho in b.rhos[which]
    ]


@pytest.mark.parametrize(("boundary", "rho"), _pairings(slice(2)))
def test_each_check_holds_its_size_at_n_100(boundary, rho):
    _assert_size(boundary, 100, rho)


@pytest.mark.calibration
@pytest.mark.parametrize(("boundary", "rho"), _pairings(slice(2, None)))
def test_each_check_holds_its_size_at_n_100_at_strong_pairing(boundary, rho):
    _assert_size(boundary, 100, rho)


@pytest.mark.calibration
@pytest.mark.parametrize("n", [300, 1000])
@pytest.mark.parametrize(("boundary", "rho"), _pairings(slice(None)))
def test_each_check_holds_its_size_at_n_300_and_1000(boundary, rho, n):
    _assert_size(boundary, n, rho)


def _reproduces_the_table(case: simulation.Case, rho: float, n: int) -> None:
    recorded = power.power_table()["cases"][case.name]["by_rho"][f"{rho:g}"]
    hits, reps = recorded["power"][str(n)]
    found = simulation.rate(case.judge, case.laws, n=n, reps=reps, rho=rho, seed=n)
    assert (found.hits, found.reps) == (hits, reps), (
        f"{case.name} at n = {n}, rho {rho}: power {found} now, {simulation.Rate(hits, reps)} in "
        "synthact/data/power.json; regenerate it with `python -m tools.power_table`"
    )


REPRESENTATIVE = ("C1[absolute]", "C3[absolute]", "C10[absolute]", "C11[random]", "C5 mid-path")


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_the_power_table_is_current(name):
    """The checks still decide as they did when the table was simulated (same seeds)."""
    _reproduces_the_table(next(c for c in simulation.CASES if c.name == name), 0.5, 100)


@pytest.mark.calibration
@pytest.mark.parametrize("n", simulation.SIZE_NS)
@pytest.mark.parametrize("rho", power.RHOS)
@pytest.mark.parametrize("case", simulation.CASES, ids=lambda c: c.name)
def test_every_claim_case_reproduces_the_power_table(case, rho, n):
    _reproduces_the_table(case, rho, n)


@pytest.mark.calibration
@pytest.mark.parametrize("rho", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("truth", simulation.EQUIVALENCE, ids=lambda b: b.setting)
def test_equivalence_passes_at_the_papers_n_when_the_paper_is_right(truth, rho):
    found = simulation.rate(truth.judge, truth.laws, n=1000, reps=300, rho=rho, seed=2)
    assert found.value >= power.TARGET_POWER, f"{truth.setting}, rho {rho}: passes {found}"


def test_every_claim_case_is_in_the_power_table():
    table = power.power_table()
    assert set(table["cases"]) == {case.name for case in simulation.CASES}
    for name, entry in table["cases"].items():
        assert set(entry["by_rho"]) == {f"{rho:g}" for rho in power.RHOS}, name
