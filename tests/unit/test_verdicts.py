"""Only statistical checks give a verdict: crashes are errors, controls fail on the effect's size.

`Evidence.verdict` is tested directly on hand-made checks; the pytest side (the xfail marks of
claims/expectations.toml, one message when a subject cannot load) end to end in subprocesses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from synthact.fixtures.evidence import Evidence, _feature
from synthact.fixtures.verdicts import Outcome, summary_lines
from synthact.judge import power
from synthact.judge.checks import Check, ClaimNotSupported, ControlInconclusive
from synthact.judge.hypotheses import Hypothesis
from synthact.judge.policy import Observation
from tests.subprocesses import nested_env

ROOT = Path(__file__).resolve().parents[2]


def check(passed: bool, statement: str = "x > 0") -> Check:
    return Check(statement, estimate=1.0, bound=0.5, threshold=0.0, passed=passed)


def claim(*checks: Check, absent: tuple[Check, ...] = (), case: str = "C0") -> Hypothesis:
    return Hypothesis(case, checks, absent)


def evidence(expected: str, n: int = 10, subject: str = "planted") -> Evidence:
    lab = SimpleNamespace(config=SimpleNamespace(subject=subject, n=n, seed=0))
    item = SimpleNamespace(user_properties=[("expected", expected)])
    return Evidence(lab, item, "C0: a claim")


def observed(ev: Evidence) -> dict:
    return dict(ev.item.user_properties)["observed"]


@pytest.mark.parametrize("expected", ["holds", "fails"])
def test_a_claim_whose_checks_pass_holds(expected):
    ev = evidence(expected)
    ev.verdict(
        claim(check(True), absent=(check(False),))
    )  # returns: the strict xfail reports XPASS
    assert observed(ev)["outcome"] == "holds"


def test_a_claim_not_judged_that_holds_is_no_pass():
    """No verdict: an xfail that says what was observed, not a green pass (nor an XPASS)."""
    ev = evidence("not judged")
    with pytest.raises(pytest.xfail.Exception, match="is not judged on planted; observed holds"):
        ev.verdict(claim(check(True)))
    assert observed(ev)["outcome"] == "holds"


@pytest.mark.parametrize("expected", ["holds", "not judged"])
def test_a_failed_check_is_the_verdict(expected):
    ev = evidence(expected)
    with pytest.raises(ClaimNotSupported, match="y > 0"):
        ev.verdict(claim(check(True), check(False, "y > 0")))
    assert observed(ev)["outcome"] == "does not hold"
    assert observed(ev)["statistic"] == "y > 0"  # the key statistic is the first failed check


def test_a_control_fails_only_with_the_effect_shown_absent():
    ev = evidence("fails")
    with pytest.raises(ClaimNotSupported, match="effect is absent"):
        ev.verdict(claim(check(False), absent=(check(True), check(True))))
    assert observed(ev)["absence_shown"]
    with pytest.raises(ControlInconclusive, match="absence was not shown") as raised:
        evidence("fails").verdict(
            claim(check(False), absent=(check(True), check(False, "gap < 5")))
        )
    first_line = str(raised.value).splitlines()[0]  # what pytest's short summary shows
    assert "neither holds nor shows the effect absent" in first_line and "threshold" in first_line
    assert not issubclass(ControlInconclusive, ClaimNotSupported)


def test_an_inconclusive_control_says_why_in_the_summary_and_the_matrix():
    """Not only Allure: the terminal line and the matrix cell name the absence not shown, with
    its bound and threshold."""
    ev = evidence("fails")
    with pytest.raises(ControlInconclusive):
        ev.verdict(claim(check(False), absent=(check(False, "gap < 5"),)))
    seen = Observation.from_dict(observed(ev))
    outcome = Outcome("C1", "test_c01", "planted", "", "fails", seen, "failed", "")
    why = "inconclusive: effect's absence not shown (bound 0.5, threshold 0)"
    assert why in summary_lines([outcome])[0]
    assert why in outcome.cell().markdown()


def test_a_controls_verdict_is_the_absence_not_the_direction():
    """A significant direction far below the paper's size is still the control's expected
    failure; the direction with the absence not shown is the control failing (returns: XPASS)."""
    ev = evidence("fails")
    with pytest.raises(ClaimNotSupported, match="direction holds, but far below"):
        ev.verdict(claim(check(True), absent=(check(True, "gap < 0.5 sd"),)))
    assert observed(ev)["outcome"] == "holds"
    assert observed(ev)["absence_shown"]
    evidence("fails").verdict(claim(check(True), absent=(check(False, "gap < 0.5 sd"),)))


def test_a_claim_without_absence_checks_cannot_be_expected_to_fail():
    with pytest.raises(RuntimeError, match="cannot be a control's expected failure"):
        evidence("fails").verdict(claim(check(False)))


PAPER_EFFECT_EXPECTED = [
    ("holds", "gpt2-small"),
    ("not judged", "planted"),
    ("holds", "path:/data/my-model"),  # the user's own subject: no section in the expectations
]


@pytest.mark.parametrize(("expected", "subject"), PAPER_EFFECT_EXPECTED)
def test_a_claim_that_fails_below_its_needed_n_is_underpowered_not_judged(expected, subject):
    """Where the paper's effect is what is expected: on the paper's subject or a subject of the
    user's own, or not judged."""
    case = "C14[absolute, synthetic-baseline]"
    needed = power.needed_n(case, 0.0)
    ev = evidence(expected, n=needed - 1, subject=subject)
    with pytest.raises(pytest.xfail.Exception, match=f"underpowered at n = {needed - 1}"):
        ev.verdict(claim(check(False, "KS < 0.1"), case=case))
    seen = observed(ev)
    assert (seen["outcome"], seen["note"]) == (
        "underpowered",
        f"at n = {needed - 1}: needs n >= {needed}",
    )
    at_needed = evidence(expected, n=needed, subject=subject)
    with pytest.raises(ClaimNotSupported):  # at the n it needs, a failure is the verdict
        at_needed.verdict(claim(check(False, "KS < 0.1"), case=case))


def test_a_claim_beyond_the_oracle_s_n_says_the_paper_s_effect_is_too_small():
    """C9's gap: even the most powerful test of the paper's laws needs more than n = 1000."""
    case = "C9 gap"
    beyond = power.oracle_needed_n(case, 0.5)
    assert beyond is not None and beyond > 1000
    ev = evidence("holds", n=1000, subject="gpt2-small")
    with pytest.raises(pytest.xfail.Exception, match="the paper's effect cannot be shown at n = "):
        ev.verdict(claim(check(False, "gap > -0.05"), case=case))
    seen = observed(ev)
    assert seen["outcome"] == "effect too small"
    assert seen["note"].endswith(f"needs n >= {power.oracle_needed_n(case, 0.0)}")  # pairing 0


def test_a_positive_control_that_fails_fails_at_any_n():
    """Its expected "holds" was measured on its own effect, not the paper's."""
    case = "C14[absolute, synthetic-baseline]"
    ev = evidence("holds", n=power.needed_n(case, 0.0) - 1, subject="planted")
    with pytest.raises(ClaimNotSupported):
        ev.verdict(claim(check(False, "KS < 0.1"), case=case))
    assert observed(ev)["outcome"] == "does not hold"


def test_a_claim_that_holds_holds_at_any_n():
    ev = evidence("holds", n=2)
    ev.verdict(claim(check(True), case="C14[absolute, synthetic-baseline]"))
    assert observed(ev)["outcome"] == "holds"


def test_a_claim_s_feature_is_its_first_sentence_whole():
    doc = (ROOT / "claims" / "test_c15_cooccurrence.py").read_text().split('"""')[1]
    assert _feature(doc).startswith("C15: synthetic activations")
    assert _feature(doc).endswith("(the question the paper leaves open, section 7).")
    assert _feature("C1: one.\nTwo.") == "C01: one."


# --- end to end: pytest's outcomes -----------------------------------------------------------

CRASHING_ENGINE = """
import synthact.method.experiments

def crash(*args, **kwargs):
    raise RuntimeError("the engine crashed")

synthact.method.experiments.Lab._run = crash
"""


def run_pytest(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m pytest`` in the project root with its own caches and report folders (never the
    project's reports/)."""
    environment = nested_env(
        SYNTHACT_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(tmp_path), **(env or {})
    )
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args]
    command += ["--alluredir", str(tmp_path / "allure"), "--matrix-dir", str(tmp_path / "reports")]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, env=environment, timeout=600
    )


@pytest.mark.slow
def test_snapshot_tests_have_their_allure_feature(tmp_path):
    run = run_pytest(
        tmp_path, "claims/test_snapshots.py", "--subject=planted", "--n=8", "-k", "plateau"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = [json.loads(p.read_text()) for p in (tmp_path / "allure").glob("*-result.json")]
    snapshots = [r for r in results if r["name"].startswith("test_snapshot")]
    assert snapshots, [r["name"] for r in results]
    for result in snapshots:
        features = [label["value"] for label in result["labels"] if label["name"] == "feature"]
        assert features == ["Regression snapshots"], result["labels"]


@pytest.mark.slow
def test_a_crash_is_an_error_whatever_the_expectation(tmp_path):
    """C1 holds on planted and must fail on planted-null; C3 is not judged on planted. With the
    engine crashing, every one of them is an error, none an expected failure."""
    (tmp_path / "crashing_engine.py").write_text(CRASHING_ENGINE)
    run = run_pytest(
        tmp_path,
        "claims/test_c01_real_vs_random.py",
        "claims/test_c03_structured_vs_baseline.py",
        "--subject=planted,planted-null",
        "--n=8",
        "--n-gaussian=200",
        "-p",
        "crashing_engine",
    )
    out = run.stdout
    assert run.returncode == 1, out + run.stderr
    assert "6 failed" in out and "xfailed" not in out and "xpassed" not in out, out
    assert out.count("RuntimeError: the engine crashed") >= 6, out
    for case in ("planted        C1", "planted-null   C1", "planted        C3"):
        assert f"{case}" in out, out
    assert out.count("observed no verdict: RuntimeError: the engine crashed") == 6, out
    for subject in ("planted", "planted-null"):  # progress past pytest's capture, for CI logs
        assert f"synthact {subject}: pool done in " in run.stderr, run.stderr


@pytest.mark.slow
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_offline_without_files_stops_before_any_test_with_one_message(tmp_path, workers):
    run = run_pytest(
        tmp_path,
        "claims/",
        "--subject=gpt2-small",
        *workers,
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")},
    )
    output = run.stdout + run.stderr
    assert run.returncode == 4, output
    assert output.count("these hub files are not in the local cache") == 1, output
    assert "To fix:" in output and "passed" not in output and "failed" not in output


@pytest.mark.slow
def test_unit_tests_alone_do_not_need_the_subject(tmp_path):
    """The preflight runs only when claim tests are selected."""
    run = run_pytest(
        tmp_path,
        "tests/unit/test_expectations.py::test_lookup_order",
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")},
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _outcome(subject: str, claim: str, test: str, case: str) -> Outcome:
    observed = Observation("holds", "x > 0", estimate=1.0, bound=0.5, threshold=0.0)
    return Outcome(claim, test, subject, case, "holds", observed, "passed", "")


def test_the_summary_names_each_claim_case_once_in_aligned_columns():
    """C5 has two tests and C9 a case of each; a release subject is longer than any column."""
    long = "null:gpt2-small-res-jb/blocks.6.hook_resid_pre"
    outcomes = [
        _outcome(subject, claim, test, case)
        for subject in ("planted", long)
        for claim, test, case in [
            ("C5", "test_c05_real_blowups_mid_path", ""),
            ("C5", "test_c05_structured_baseline_gap_shrinks", ""),
            ("C9", "test_c09_kl_follows_l2", "absolute"),
            ("C9", "test_c09_kl_blowups", "absolute"),
        ]
    ]
    lines = summary_lines(outcomes)
    assert len(set(lines)) == len(lines) == 8
    assert any("C5 real blowups mid path " in line for line in lines)
    assert any("C9 kl blowups [absolute] " in line for line in lines)
    assert len({line.index(" expected ") for line in lines}) == 1, "\n".join(lines)


def test_an_added_construction_s_c14_case_takes_the_tabulated_needed_n():
    kinds = ("synthetic-random", "synthetic-baseline", "synthetic-structured", "structured-no-cos")
    tabulated = [power.needed_n(f"C14[relative, {kind}]", 0.5) for kind in kinds]
    assert None not in tabulated
    assert power.needed_n("C14[relative, synthetic-cooccurrence]", 0.5) == max(tabulated)
    assert power.needed_n("C15[absolute]", 0.5) is None  # no paper effect: never underpowered
