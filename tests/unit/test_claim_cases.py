"""The names that join a claim's pieces agree: the cases its hypotheses emit, the power table's
keys, and the keys of claims/expectations.toml. A renamed case fails here; it does not quietly
turn off "underpowered" (a case missing from the power table has no needed n) or an expectation.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from synthact.fixtures.expectations import _variant, load_expectations
from synthact.judge import hypotheses, power
from tools import power_table as simulation


def test_every_case_the_power_simulation_judges_is_a_case_its_hypothesis_emits(monkeypatch):
    """Each simulated case's judge builds exactly the hypothesis of the same name, and the
    committed table has a row for every simulated case and no other."""
    emitted: list[str] = []

    class Recorded(hypotheses.Hypothesis):
        def __init__(self, case: str, *args: object, **kwargs: object) -> None:
            super().__init__(case, *args, **kwargs)
            emitted.append(case)

    monkeypatch.setattr(hypotheses, "Hypothesis", Recorded)
    rng = np.random.default_rng(0)
    for case in simulation.CASES:
        emitted.clear()
        case.judge(simulation.paired_steps(case.laws, 0.5, 30, rng))
        assert {power.case_key(name) for name in emitted} == {case.name}, case.name
    assert {case.name for case in simulation.CASES} == set(power.power_table()["cases"])


class _Cases:
    """Records (claim, variant) of every collected claim test."""

    def __init__(self) -> None:
        self.found: set[tuple[str, str | None]] = set()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("claim")
            if marker is not None and getattr(item, "callspec", None) is not None:
                self.found.add((marker.args[0], _variant(item)))


@pytest.fixture(scope="module")
def claim_cases() -> set[tuple[str, str | None]]:
    cases = _Cases()
    args = ["claims", "--collect-only", "-q", "--subject", "planted", "-p", "no:cacheprovider"]
    assert pytest.main([*args, "--alluredir", "", "-p", "no:randomly"], plugins=[cases]) == 0
    return cases.found


KEY = re.compile(r"(?P<claim>C\d+|tables|precision)(\[(?P<variant>[^\]]+)\])?")


def test_every_expectation_key_names_a_claim_case(claim_cases):
    """``C9[relative]`` must be a claim and a variant its tests have; ``C9`` a claim."""
    claims = {claim for claim, _ in claim_cases}
    table = load_expectations()
    for subject, section in table["subjects"].items():
        for key in section:
            if key in ("role", "why", "default"):
                continue
            match = KEY.fullmatch(key)
            assert match, f"[subjects.{subject}] {key}: not a claim key like C9 or C9[relative]"
            claim, variant = match["claim"], match["variant"]
            assert claim in claims, f"[subjects.{subject}] {key}: no test of claim {claim}"
            if variant is not None:
                known = sorted(str(v) for c, v in claim_cases if c == claim)
                assert (claim, variant) in claim_cases, (
                    f"[subjects.{subject}] {key}: {claim} has no case {variant!r}; its cases: "
                    f"{known}"
                )
        for key in section.get("why", {}):
            assert key == "default" or KEY.fullmatch(key), f"[subjects.{subject}] why.{key}"
