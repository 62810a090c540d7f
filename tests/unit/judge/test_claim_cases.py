"""The names that join a claim's pieces agree: the cases its hypotheses emit, the power table's
keys, and the keys of claims/expectations.toml. A renamed case fails here; it does not quietly
turn off "underpowered" (a case missing from the power table has no needed n) or an expectation.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from synthact.fixtures.expectations import _variant, load_expectations
from synthact.judge import claims, hypotheses, power
from synthact.method.experiments import EXPERIMENTS
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


def test_every_case_a_hypothesis_emits_is_in_the_power_table_unless_its_record_says_none():
    """Each record's power names are rows of the table (so `power.needed_n` finds them), and
    the table has no row that no record names."""
    table = set(power.power_table()["cases"])
    named = set()
    for claim in claims.CLAIMS:
        for case in claim.cases:
            names = case.power_names()
            assert names <= table, f"{claim.id}: {sorted(names - table)} not in power.json"
            named |= names
            if case.shape is None:
                continue
            for name in case.case_names():
                assert power.needed_n(name, 0.5) is not None, name
    assert named == table


def test_the_simulated_effects_are_those_of_the_committed_table():
    """The laws built from the records are those the table was simulated with (their effect
    text gives each law's KS against real, or its rows)."""
    table = power.power_table()["cases"]
    for case in simulation.CASES:
        assert case.effect == table[case.name]["effect"], case.name


class _Cases:
    """Records (claim, variant, fixtures) of every collected claim test, before a float32 run
    deselects the precision claim."""

    def __init__(self) -> None:
        self.found: set[tuple[str, str | None]] = set()
        self.fixtures: dict[str, set[str]] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("claim")
            if marker is not None and getattr(item, "callspec", None) is not None:
                claim = marker.args[0]
                self.found.add((claim, _variant(item)))
                self.fixtures.setdefault(claim, set()).update(item.fixturenames)


@pytest.fixture(scope="module")
def claim_tests() -> _Cases:
    cases = _Cases()
    args = ["claims", "--collect-only", "-q", "--subject", "planted", "-p", "no:cacheprovider"]
    assert pytest.main([*args, "--alluredir", "", "-p", "no:randomly"], plugins=[cases]) == 0
    return cases


def test_every_claim_record_has_a_test_and_every_claim_test_a_record(claim_tests):
    assert {claim for claim, _ in claim_tests.found} == set(claims.BY_ID)


def test_claim_tests_run_in_their_records_variants_and_read_their_experiments(claim_tests):
    """A test's variant (step mode or comparison) is one of its record's, and it reads the
    fixture of each experiment its record's cases name."""
    for claim, variant in claim_tests.found:
        record = claims.claim(claim)
        assert variant is None or variant in record.variants, (claim, variant)
        for experiment in record.experiments:
            fixture = EXPERIMENTS[experiment].fixture
            read = claim_tests.fixtures[claim]
            assert any(name.startswith(fixture) for name in read), (claim, experiment)


KEY = re.compile(r"(?P<claim>[A-Za-z]\w*)(\[(?P<variant>[^\]]+)\])?")


def _key_error(key: str) -> str | None:
    """Why ``key`` names no claim case (None when it names one): ``C9`` a claim with a record,
    ``C9[relative]`` one of its variants."""
    match = KEY.fullmatch(key)
    if not match:
        return "not a claim key like C9 or C9[relative]"
    record = claims.BY_ID.get(match["claim"])
    if record is None:
        return f"no claim {match['claim']} (claims: {sorted(claims.BY_ID)})"
    if match["variant"] is not None and match["variant"] not in record.variants:
        return f"{record.id} has no case {match['variant']!r}; its cases: {sorted(record.variants)}"
    return None


def test_every_expectation_key_names_a_claim_case():
    """A key of a subject's section, or of its ``why``, names a claim case (a typo fails)."""
    table = load_expectations()
    for subject, section in table["subjects"].items():
        keys = [k for k in section if k not in ("role", "why", "default")]
        keys += [k for k in section.get("why", {}) if k != "default"]
        for key in keys:
            error = _key_error(key)
            assert error is None, f"[subjects.{subject}] {key}: {error}"
    for key in table["default"].get("claims_not_in_paper", {}):
        assert _key_error(key) is None, f"[default] claims_not_in_paper.{key}"


@pytest.mark.parametrize("key", ["C9[relativ]", "C99", "c1", "C11[randomm]", "C1 [absolute]"])
def test_a_typo_in_an_expectation_key_is_an_error(key):
    assert _key_error(key) is not None
