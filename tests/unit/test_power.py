"""The power table at run time: which cases a claim test decides, and the n `--n-needed` gives
its experiments."""

from __future__ import annotations

import pytest

from synthact.judge import power


def test_a_claim_test_in_a_mode_decides_its_mode_s_cases_and_those_without_a_mode():
    assert power.claim_cases("C4", "absolute") == ["C4[absolute]"]
    assert power.claim_cases("C4", "relative") == []
    assert set(power.claim_cases("C9", "absolute")) == {"C9[absolute]", "C9 gap"}
    assert len(power.claim_cases("C11", None)) == 3  # brackets name a variant, not a mode
    assert power.claim_cases("C1", "absolute") == ["C1[absolute]"]  # not C10, C11, C14


@pytest.mark.parametrize(
    ("claim", "mode", "n", "rows"),
    [
        ("C4", "absolute", 100, 2000),  # needs 2000 at pairing 0
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
