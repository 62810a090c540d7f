"""No claim test that cannot fail: at its needed n every claim case of the power table can pass
(at least 80 % power at the paper's effect, read from synthact/data/power.json) and can fail (at
most 5 % of datasets pass on a boundary law of its null, `tools.power_table.null_laws`,
simulated). A case whose needed n is beyond the table's grid is never failed: the run reports it
as underpowered, or as the paper's effect too small where the oracle bound says so.

Default run: every case's table entries, and the boundary simulation at rho 0.5 for one case of
each kind of check; ``--calibration`` simulates every case at every tabulated rho.
"""

from __future__ import annotations

import pytest

from synthact.judge import power
from synthact.judge.checks import ALPHA, Check
from synthact.judge.hypotheses import Hypothesis
from synthact.judge.policy import Decision, decide
from tools import power_table as simulation

ENTRIES = [
    pytest.param(name, rho, id=f"{name}-rho{rho}")
    for name, entry in power.power_table()["cases"].items()
    for rho in entry["by_rho"]
]
LARGEST = power.N_GRID[-1]


def can_pass(table: dict, name: str, rho: str) -> int | None:
    """The case's needed n, checked against the table's own power there: at least the target at
    the needed n, below it at the grid's n just under it (the needed n is the smallest). None
    when the needed n is beyond the grid."""
    found = table["cases"][name]["by_rho"][rho]
    needed, rates = found["needed_n"], found["power"]
    if needed > LARGEST:
        hits, reps = rates[str(LARGEST)]
        assert hits / reps < power.TARGET_POWER, f"{name}, rho {rho}: {hits}/{reps} at {LARGEST}"
        return None
    hits, reps = rates[str(needed)]
    assert hits / reps >= power.TARGET_POWER, f"{name}, rho {rho}: {hits}/{reps} at n = {needed}"
    smaller = [n for n in power.N_GRID if n < needed and str(n) in rates]
    if smaller:
        hits, reps = rates[str(smaller[-1])]
        assert hits / reps < power.TARGET_POWER, f"{name}, rho {rho}: enough at n = {smaller[-1]}"
    return needed


@pytest.mark.parametrize(("name", "rho"), ENTRIES)
def test_at_its_needed_n_a_claim_case_can_pass(name, rho):
    needed = can_pass(power.power_table(), name, rho)
    if needed is None:  # beyond the grid: a failure at any tabulated n is not a verdict
        failed = Hypothesis(name, (Check("x", 0.0, 0.0, 0.0, False),))
        verdict = decide(
            failed, "holds", LARGEST, True, power.needed_n, LARGEST, power.oracle_needed_n
        )
        assert verdict.decision in (Decision.UNDERPOWERED, Decision.EFFECT_TOO_SMALL), name


def test_a_doctored_needed_n_is_caught():
    """The check above can fail: a needed n lowered to where the table's power is 63.5 %."""
    table = power.power_table()
    entry = table["cases"]["C4[absolute]"]["by_rho"]["0.5"]
    doctored = {"cases": {"C4[absolute]": {"by_rho": {"0.5": entry | {"needed_n": 700}}}}}
    with pytest.raises(AssertionError, match=r"127/200 at n = 700"):
        can_pass(doctored, "C4[absolute]", "0.5")


def can_fail(name: str, rho: float, reps: int) -> None:
    """At most `ALPHA` of datasets (the Clopper-Pearson lower bound) pass at the case's needed n
    on a boundary law of its null; at the paper's n where the needed n is beyond the grid (no
    tabulated n decides the case)."""
    case = next(c for c in simulation.CASES if c.name == name)
    needed = power.needed_n(name, rho)
    n = needed if needed <= LARGEST else power.PAPER_N
    laws = simulation.null_laws(case)
    found = simulation.rate(case.judge, laws, n=n, reps=reps, rho=rho, seed=3)
    assert found.interval(1 - 2 * ALPHA)[0] <= ALPHA, f"{name} at n = {n}, rho {rho}: {found}"


ONE_OF_EACH = ("C1[absolute]", "C5 mid-path", "C9 gap", "C10[absolute]", "precision")
"""A case of each kind of boundary law: equal laws, a median, a one-step tilt (with a KS
contrast, with an equivalence), KS at the equivalence margin."""


@pytest.mark.parametrize("name", ONE_OF_EACH)
def test_at_its_needed_n_a_claim_case_can_fail(name):
    can_fail(name, 0.5, 40)


@pytest.mark.calibration
@pytest.mark.parametrize("rho", power.RHOS)
@pytest.mark.parametrize("case", simulation.CASES, ids=lambda c: c.name)
def test_at_its_needed_n_every_claim_case_can_fail(case, rho):
    can_fail(case.name, rho, 100)


def test_a_claim_that_passes_on_its_boundary_is_caught(monkeypatch):
    """The simulation above can fail: a judge that always passes."""
    case = next(c for c in simulation.CASES if c.name == "C1[absolute]")
    monkeypatch.setattr(simulation, "CASES", [simulation.Case(case.name, case.laws, bool, "")])
    with pytest.raises(AssertionError, match=r"C1\[absolute\] at n = "):
        can_fail(case.name, 0.5, 20)


def test_the_oracle_of_a_mean_statement_moves_the_later_mean_onto_the_earlier():
    """C10[absolute]'s `earlier` statement: every one-step boundary law gives reconstruction
    real's mean, and no valid check shows the paper's 0.38-step difference at n = 1000."""
    case = next(c for c in simulation.CASES if c.name == "C10[absolute]")
    null = simulation.EarlierNull("real", "reconstruction")
    bounds = null.bounds(case.laws, 0.5)
    assert len(bounds) > 10
    real = case.laws["real"].mean
    for bound in bounds:
        assert bound.law(case.laws["reconstruction"]).mean == pytest.approx(real, abs=1e-9)
    worst = max(bounds, key=simulation.OracleBound.needed_n)
    assert worst.power(power.PAPER_N) < power.TARGET_POWER < worst.power(worst.needed_n())
