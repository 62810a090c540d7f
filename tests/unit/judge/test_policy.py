"""The verdict policy on its own: `synthact.judge.policy.decide` on hand-made checks."""

from __future__ import annotations

import pytest

from synthact.judge.checks import Check
from synthact.judge.hypotheses import Hypothesis
from synthact.judge.policy import Decision, Observation, decide


def check(passed: bool, statement: str = "x > 0") -> Check:
    return Check(statement, estimate=1.0, bound=0.5, threshold=0.0, passed=passed)


def needs(n: int):
    return lambda case, pairing: n


def never(case: str, pairing: float) -> None:
    return None


def verdict(checks, expected="holds", n=100, paper=False, needed=never, absent=(), oracle=None):
    hypothesis = Hypothesis("C0", tuple(checks), tuple(absent))
    return decide(hypothesis, expected, n, paper, needed, 2000, oracle)


@pytest.mark.parametrize("expected", ["holds", "not judged"])
def test_every_check_passing_holds_and_one_failing_is_not_supported(expected):
    assert verdict([check(True)], expected).decision is Decision.HOLDS
    failed = verdict([check(True), check(False, "y > 0")], expected)
    assert failed.decision is Decision.NOT_SUPPORTED
    assert failed.observation.statistic == "y > 0"
    assert "y > 0" in failed.message


def test_below_the_needed_n_a_failure_is_underpowered_only_where_the_paper_effect_is_expected():
    below = verdict([check(False)], n=99, paper=True, needed=needs(100))
    assert below.decision is Decision.UNDERPOWERED
    assert below.observation.note == "at n = 99: needs n >= 100"
    beyond = verdict([check(False)], n=99, paper=True, needed=needs(2001))
    assert beyond.observation.note == "at n = 99: needs n > 2000"
    at = verdict([check(False)], n=100, paper=True, needed=needs(100))
    assert at.decision is Decision.NOT_SUPPORTED
    control = verdict([check(False)], n=99, paper=False, needed=needs(100))
    assert control.decision is Decision.NOT_SUPPORTED
    unknown = verdict([check(False)], n=99, paper=True, needed=never)
    assert unknown.decision is Decision.NOT_SUPPORTED
    past_the_table = verdict([check(False)], n=4000, paper=True, needed=needs(2001))
    assert past_the_table.decision is Decision.UNDERPOWERED  # no n of the table has the power
    assert past_the_table.observation.note == "at n = 4000: needs n > 2000"


def test_below_the_oracle_s_n_a_failure_is_the_paper_s_effect_too_small_not_the_run_s_n():
    """Even the most powerful test of the paper's laws needs more rows: a finding about the
    paper, distinct from underpowered, and only where the paper's effect is expected."""
    beyond = verdict([check(False)], n=1000, paper=True, needed=needs(2001), oracle=needs(2474))
    assert beyond.decision is Decision.EFFECT_TOO_SMALL
    assert beyond.observation.outcome == "effect too small"
    assert beyond.observation.note == (
        "the paper's effect cannot be shown at n = 1000: needs n >= 2474"
    )
    assert beyond.message.startswith("the paper's effect cannot be shown at n = 1000")
    small_run = verdict([check(False)], n=100, paper=True, needed=needs(2001), oracle=needs(2474))
    assert small_run.observation.note.startswith("the paper's effect cannot be shown at n = 1000")
    below_the_paper = verdict(
        [check(False)], n=100, paper=True, needed=needs(2000), oracle=needs(284)
    )
    assert below_the_paper.decision is Decision.UNDERPOWERED  # the paper's n would do: our n
    within = verdict([check(False)], n=1000, paper=True, needed=needs(1500), oracle=needs(1000))
    assert within.decision is Decision.UNDERPOWERED  # a valid check could, this one cannot
    at = verdict([check(False)], n=1500, paper=True, needed=needs(1500), oracle=needs(1200))
    assert at.decision is Decision.NOT_SUPPORTED
    control = verdict([check(False)], n=1000, paper=False, needed=needs(2001), oracle=needs(2474))
    assert control.decision is Decision.NOT_SUPPORTED
    held = verdict([check(True)], n=1000, paper=True, needed=needs(2001), oracle=needs(2474))
    assert held.decision is Decision.HOLDS  # a claim that holds holds at any n


@pytest.mark.parametrize(
    ("direction", "absent", "decision", "shown"),
    [
        (False, True, Decision.NOT_SUPPORTED, True),  # the expected failure
        (True, True, Decision.NOT_SUPPORTED, True),  # direction, but far below the paper's size
        (True, False, Decision.HOLDS, False),  # the control holds: the strict xfail fails it
        (False, False, Decision.INCONCLUSIVE, False),  # neither shown
    ],
)
def test_a_control_is_decided_by_the_effect_shown_absent(direction, absent, decision, shown):
    found = verdict([check(direction)], "fails", absent=[check(absent, "|gap| < 1")])
    assert found.decision is decision
    assert found.observation.absence_shown is shown
    said = "inconclusive: effect's absence not shown" in found.observation.note
    assert said is (decision is Decision.INCONCLUSIVE)


def test_a_control_without_absence_checks_is_a_configuration_error():
    with pytest.raises(RuntimeError, match="cannot be a control's expected failure"):
        verdict([check(False)], "fails")


def test_an_unknown_expectation_is_refused():
    with pytest.raises(ValueError, match="expected must be one of"):
        verdict([check(True)], "passes")


def test_an_observation_round_trips_through_plain_values():
    seen = verdict([check(False)], n=9, paper=True, needed=needs(10)).observation
    assert Observation.from_dict(seen.to_dict()) == seen
