"""The verdict policy: from a claim case's checks, its expectation and the run's n to a verdict.

`decide` is the one place that says what a claim test concludes; the ``evidence`` fixture shows
the checks, records the `Observation` and acts on the `Verdict` (pass, raise, xfail). The rules:

- expected ``holds`` or ``not judged``: the claim holds when every check passes; otherwise it is
  not supported, unless the run's n is below the n the case needs for 80 % power at the paper's
  effect (or that n is beyond the power table's grid: no n is known to have the power) where
  that effect is what is expected (the paper's subject or a subject of the user's
  own, or a claim not judged): then it is underpowered (not judged), or, where even an oracle
  knowing the laws (the power table's Neyman-Pearson bound) needs more than the paper's n and
  the run's, the paper's effect is too small to be shown at the paper's n by any valid check
  (not judged: a finding about the paper, not about the run). A control's expected "holds" was
  measured on its own effect, so its failure stays a failure at any n.
- expected ``fails`` (a control): the effect shown absent at the paper's size (every ``absent``
  check passes) is the expected failure, whichever way the direction came out; else the claim
  holding is reported as such (the strict xfail turns it into a failure); else neither was shown,
  and the control is inconclusive (an error, not a verdict). The direction alone decides nothing:
  a one-sided 95 % test passes a true null one time in twenty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from enum import Enum

from synthact.judge.checks import Check
from synthact.judge.hypotheses import Hypothesis
from synthact.judge.power import PAPER_N

EXPECTATIONS = ("holds", "fails", "not judged")
"""What claims/expectations.toml may say of a claim on a subject."""


class Decision(Enum):
    """What the claim test does."""

    HOLDS = "holds"  # return: the test passes (a control's strict xfail reports XPASS)
    NOT_SUPPORTED = "not supported"  # raise ClaimNotSupported: the one verdict that fails
    UNDERPOWERED = "underpowered"  # xfail: not judged at this n
    EFFECT_TOO_SMALL = "effect too small"  # xfail: no valid check shows the paper's effect here
    INCONCLUSIVE = "inconclusive"  # raise ControlInconclusive: an error, not a verdict


@dataclass(frozen=True)
class Observation:
    """What a claim test observed, for the terminal summary, the matrix and Allure: the outcome
    (``holds``, ``does not hold``, ``underpowered``, ``effect too small``), the key check (the
    first failed one, else the first) and whether the effect was shown absent; ``note``
    qualifies the outcome."""

    outcome: str
    statistic: str
    estimate: float
    bound: float
    threshold: float
    absence_shown: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        """Plain values, to travel in a pytest report's user properties across processes."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, object]) -> Observation:
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Verdict:
    """`decide`'s answer: the decision, what was observed, and the message the test reports."""

    decision: Decision
    observation: Observation
    message: str = ""


NOT_SHOWABLE_WHY = "an oracle knowing the laws has under 80 % power, docs/power.md"
"""Why the paper's effect cannot be shown below the oracle's needed n."""

NeededN = Callable[[str, float], "int | None"]
"""``(hypothesis case, pairing correlation) -> n`` the case needs
(`synthact.judge.power.needed_n`)."""


def decide(
    hypothesis: Hypothesis,
    expected: str,
    n: int,
    paper_effect_expected: bool,
    needed_n: NeededN,
    largest_n: int,
    oracle_needed_n: NeededN | None = None,
) -> Verdict:
    """The verdict on ``hypothesis`` expected to be ``expected`` at this run's ``n``.

    ``paper_effect_expected``: the paper's effect is what is expected here (the paper's subject
    expected to hold, or a claim not judged), so the power table applies; ``largest_n`` is the
    power table's largest searched n (a need beyond it reads "n > largest_n");
    ``oracle_needed_n``: the n any valid check needs (`synthact.judge.power.oracle_needed_n`)."""
    if expected not in EXPECTATIONS:
        raise ValueError(f"expected must be one of {EXPECTATIONS}, got {expected!r}")
    checks, absent, holds = hypothesis.checks, hypothesis.absent, hypothesis.holds
    shown = bool(absent) and all(c.passed for c in absent)
    key = next((c for c in checks if not c.passed), checks[0])
    if expected == "fails":
        return _control(checks, absent, holds, shown, key)
    if holds:
        return Verdict(Decision.HOLDS, _observed("holds", key, shown))
    failed = _bullets(c for c in checks if not c.passed)
    needs = needed_n(hypothesis.case, hypothesis.pairing) if paper_effect_expected else None
    bound = oracle_needed_n if paper_effect_expected and oracle_needed_n else None
    beyond = bound(hypothesis.case, hypothesis.pairing) if bound else None
    if beyond is not None and beyond > max(n, PAPER_N):  # beyond the paper's own n, and ours
        note = f"the paper's effect cannot be shown at n = {max(n, PAPER_N)}: needs n >= {beyond}"
        message = f"{note} (any valid check; {NOT_SHOWABLE_WHY}); not judged:\n{failed}"
        observed = _observed("effect too small", key, shown, note)
        return Verdict(Decision.EFFECT_TOO_SMALL, observed, message)
    if needs is not None and (needs > n or needs > largest_n):  # beyond the table: unknown
        at_least = f"n > {largest_n}" if needs > largest_n else f"n >= {needs}"
        note = f"at n = {n}: needs {at_least}"
        message = f"underpowered {note}; not judged:\n{failed}"
        return Verdict(Decision.UNDERPOWERED, _observed("underpowered", key, shown, note), message)
    message = "claim not supported:\n" + failed
    return Verdict(Decision.NOT_SUPPORTED, _observed("does not hold", key, shown), message)


def _control(
    checks: tuple[Check, ...], absent: tuple[Check, ...], holds: bool, shown: bool, key: Check
) -> Verdict:
    """A control's verdict (see the module docstring)."""
    observed = _observed("holds" if holds else "does not hold", key, shown)
    if not absent:
        raise RuntimeError(
            "this claim has no checks of its effect's absence, so it cannot be a control's "
            "expected failure: expect 'holds' or 'not judged' in claims/expectations.toml"
        )
    if shown:
        said = (
            "the claim's direction holds, but far below the paper's size"
            if holds
            else "claim not supported:\n" + _bullets(c for c in checks if not c.passed)
        )
        message = f"{said}\nand the effect is absent:\n" + _bullets(absent)
        return Verdict(Decision.NOT_SUPPORTED, observed, message)
    if holds:
        return Verdict(Decision.HOLDS, observed)
    unshown = [c for c in absent if not c.passed]
    bounds = "; ".join(f"{c.bound:.3g}, threshold {c.threshold:.3g}" for c in unshown)
    note = f"but inconclusive: effect's absence not shown (bound {bounds})"
    message = (
        f"the control neither holds nor shows the effect absent at this n (absence bound {bounds})"
        + "\nclaim not supported:\n"
        + _bullets(c for c in checks if not c.passed)
        + "\nbut the effect's absence was not shown either:\n"
        + _bullets(unshown)
    )
    return Verdict(Decision.INCONCLUSIVE, replace(observed, note=note), message)


def _observed(outcome: str, key: Check, shown: bool, note: str = "") -> Observation:
    return Observation(
        outcome,
        key.statement,
        float(key.estimate),
        float(key.bound),
        float(key.threshold),
        shown,
        note,
    )


def _bullets(checks: Iterable[Check]) -> str:
    return "\n".join(f"  - {c}" for c in checks)
