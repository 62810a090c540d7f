"""The power table at run time: the n each claim case needs for `TARGET_POWER` at the paper's
effect, read from ``synthact/data/power.json``. The table is simulated by ``python -m
tools.power_table`` (docs/power.md gives its laws, copulas and sizes)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

TARGET_POWER = 0.8
N_GRID = (100, 150, 200, 300, 400, 500, 700, 1000, 1500, 2000, 3000, 4000)
"""Sizes searched for the smallest n with `TARGET_POWER` at the paper's effect."""
RHOS = (0.0, 0.5, 0.9)
"""Pairing correlations the table is simulated at; a run uses the largest not above its own."""
POWER_FILE = "data/power.json"
PAPER_N = 1000
"""The paper's n: where no valid check reaches `TARGET_POWER` at it, the paper's effect is too
small for the paper's own runs (the oracle's needed n, beyond it)."""
N_NEEDED_CAP = 4000
"""The most rows ``--n-needed`` runs a claim's experiments at."""


def case_key(hypothesis_case: str) -> str:
    """The power-table case of a hypothesis (the precision check is one case for every type)."""
    return "precision" if hypothesis_case.startswith("precision") else hypothesis_case


def _entries(hypothesis_case: str) -> list[dict]:
    """The table's entries for a case. A C14 case of a type the table lacks (an added
    construction) takes every tabulated type of its mode: its truth is two equal laws, and KS
    between equal laws is distribution-free up to ties, so the needed n is the same for every
    type."""
    cases = power_table()["cases"]
    key = case_key(hypothesis_case)
    if key in cases or not key.startswith("C14["):
        return [cases[key]] if key in cases else []
    mode = key.split(",")[0]
    return [entry for case, entry in cases.items() if case.split(",")[0] == mode]


@cache
def power_table() -> dict:
    """The committed simulation results (``synthact/data/power.json``)."""
    return json.loads(resources.files("synthact").joinpath(POWER_FILE).read_text())


def needed_n(hypothesis_case: str, pairing: float) -> int | None:
    """The smallest n at which the case has `TARGET_POWER` at the paper's effect, for rows paired
    as strongly as ``pairing`` (the largest tabulated correlation not above it); None when the
    table has no entry. Beyond the searched sizes it is one more than the largest searched."""
    entries = _entries(hypothesis_case)
    if not entries:
        return None
    return max(entry["by_rho"][_rho(pairing)]["needed_n"] for entry in entries)


def oracle_needed_n(hypothesis_case: str, pairing: float) -> int | None:
    """The smallest n at which even an oracle that knows the laws (the most powerful test of a
    boundary law of the null against the paper's effect) has `TARGET_POWER`: no valid check
    shows the paper's effect below it. None where the table has no oracle entry (it has one
    for the cases whose check is below `TARGET_POWER` at n = 1000 and rho 0.5)."""
    found = [
        entry["oracle"][_rho(pairing)]["needed_n"]
        for entry in _entries(hypothesis_case)
        if "oracle" in entry
    ]
    return max(found) if found else None


def _rho(pairing: float) -> str:
    """The table's key of the largest tabulated correlation not above ``pairing``."""
    return f"{max((r for r in RHOS if r <= pairing), default=RHOS[0]):g}"


def claim_cases(claim: str, mode: str | None) -> list[str]:
    """The table's cases of claim ``claim`` (``C4``, ``precision``) that a test in step ``mode``
    can decide, from its record (`synthact.judge.claims`): the cases of variant ``mode``
    (``C4[absolute]`` in absolute mode) and those whose variants are not step modes
    (``C11[random]``); every case for ``mode`` None; none for a claim without a record (a user's
    own)."""
    from synthact.judge.claims import BY_ID

    if claim not in BY_ID:
        return []
    return sorted({name for case in BY_ID[claim].cases for name in case.power_names(mode)})


def rows_needed(claim: str, mode: str | None, n: int) -> int:
    """The n at which ``--n-needed`` runs the experiments of ``claim``'s tests in ``mode``: the
    largest needed n of its cases (at pairing 0, the least favourable: the run's own pairing is
    known only once its rows are computed), at most `N_NEEDED_CAP`, and never below ``n``. A
    need beyond the table's grid adds no rows: no n is known to decide it, and it is reported
    underpowered at any n."""
    needs = [needed_n(case, 0.0) for case in claim_cases(claim, mode)]
    known = [need for need in needs if need is not None and need <= N_GRID[-1]]
    return max([n, *(min(need, N_NEEDED_CAP) for need in known)])
