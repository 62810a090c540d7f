"""The power table at run time: which cases a claim test decides, and the n `--n-needed` gives
its experiments."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from synthact.fixtures.experiments import rows
from synthact.judge import power
from synthact.method.experiments import EXPERIMENTS


def test_a_claim_test_in_a_mode_decides_its_mode_s_cases_and_those_without_a_mode():
    assert power.claim_cases("C4", "absolute") == ["C4[absolute]"]
    assert power.claim_cases("C4", "relative") == []
    assert set(power.claim_cases("C9", "absolute")) == {"C9[absolute]", "C9 gap"}
    assert len(power.claim_cases("C11", None)) == 3  # brackets name a variant, not a mode
    assert power.claim_cases("C1", "absolute") == ["C1[absolute]"]  # not C10, C11, C14


@pytest.mark.parametrize(
    ("claim", "mode", "n", "rows"),
    [
        ("C4", "absolute", 100, 1500),  # needs 1500 at pairing 0
        ("C4", "absolute", 3000, 3000),  # never below --n
        ("C1", "absolute", 100, 300),
        ("C10", "absolute", 100, 100),  # beyond the grid: no n known to decide it, none added
        ("C12", None, 100, 100),  # no case in the table
    ],
)
def test_n_needed_runs_a_claim_s_experiments_at_its_cases_largest_needed_n(claim, mode, n, rows):
    assert power.rows_needed(claim, mode, n) == rows


def test_the_needed_n_is_capped(monkeypatch):
    table = power.power_table()
    entry = table["cases"]["C4[absolute]"]["by_rho"]["0"] | {"needed_n": 1500}
    monkeypatch.setattr(power, "N_NEEDED_CAP", 1000)
    monkeypatch.setitem(table["cases"]["C4[absolute]"]["by_rho"], "0", entry)
    assert power.rows_needed("C4", "absolute", 100) == 1000


def _item(claim: str, fixture: str, mode: str | None = None) -> SimpleNamespace:
    marker = SimpleNamespace(args=(claim,))
    params = {fixture: mode} if mode else {}
    return SimpleNamespace(
        fixturenames=[fixture],
        callspec=SimpleNamespace(params=params),
        get_closest_marker=lambda name: marker if name == "claim" else None,
    )


def test_an_experiment_runs_at_the_largest_n_of_the_claims_that_share_its_rows():
    """C4 reads sensitivity (absolute, 1500), C1 its relative mode (100), C14 other-source: the
    sensitivity rows, in both modes and through its kl view, run at 1500; other-source at 700."""
    items = [
        _item("C4", "sensitivity", "absolute"),
        _item("C1", "sensitivity", "relative"),
        _item("C14", "other_source", "relative"),
    ]
    request = SimpleNamespace(session=SimpleNamespace(items=items))
    lab = SimpleNamespace(config=SimpleNamespace(n_needed=True, n=100))
    for name in ("sensitivity", "kl", "reconstruction"):
        assert rows(request, lab, EXPERIMENTS[name]) == 1500, name
    assert rows(request, lab, EXPERIMENTS["other-source"]) == 700
    assert rows(request, lab, EXPERIMENTS["plateau"]) == 100  # no claim of the session reads it
    lab.config.n_needed = False
    assert rows(request, lab, EXPERIMENTS["sensitivity"]) is None  # the run's own n
