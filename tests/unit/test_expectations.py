"""claims/expectations.toml: valid verdicts, lookup order, and coverage of every claim test."""

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from synthact.fixtures.expectations import (
    EXPECTATIONS_FILE,
    VERDICTS,
    _group,
    _variant,
    expectation,
    load_expectations,
    subject_role,
)
from synthact.method.experiments import EXPERIMENTS, Experiment, towards_targets
from synthact.subjects import subject_spec

CLAIMS = Path(__file__).resolve().parents[2] / "claims"


def claim_ids() -> set[str]:
    """Every id in a @pytest.mark.claim("...") decorator under claims/."""
    ids = set()
    for path in CLAIMS.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "claim":
                ids.add(node.args[0].value)
    return ids


def test_every_paper_claim_has_a_test():
    """C1..C14 are the paper's; a claim beyond them (C15, ...) needs no change here."""
    ids = claim_ids()
    assert {f"C{i}" for i in range(1, 15)} | {"tables", "precision"} <= ids
    assert all(re.fullmatch(r"C\d+|tables|precision", claim) for claim in ids), ids


def test_file_names_known_subjects_and_verdicts():
    table = load_expectations()
    for subject in table["subjects"]:
        subject_spec(subject)  # raises for an unknown name
    for section in table["subjects"].values():
        for key, value in section.items():
            if key not in ("why", "role"):
                assert value in VERDICTS, (key, value)


def test_every_subject_has_a_role_for_the_report():
    table = load_expectations()
    assert subject_role("gpt2-small") == "the paper"
    assert subject_role("planted") == "positive control"
    assert subject_role("gpt2-small-res-jb/blocks.6.hook_resid_pre") == table["default"]["role"]


NOT_IN_PAPER = {"C15", "C16"}
"""Claims the paper does not state: computed and shown on gpt2-small, not judged."""


@pytest.mark.parametrize("claim", sorted(claim_ids()))
def test_gpt2_small_asserts_every_claim_of_the_paper(claim):
    verdict = "not judged" if claim in NOT_IN_PAPER else "holds"
    assert expectation("gpt2-small", claim, "absolute")[0] == verdict


@pytest.mark.parametrize("subject", ["gpt2-small-res-jb/blocks.6.hook_resid_pre", "planted-null"])
def test_claims_not_in_the_paper_are_not_judged_where_no_subject_says_so(subject):
    assert expectation(subject, "C15", "absolute")[0] == "not judged"


NULL_RELEASES = [
    "null:gpt2-small-res-jb/blocks.6.hook_resid_pre",
    "null:pythia-70m-deduped-res-sm/blocks.0.hook_resid_post",
    "null:gemma-scope-2-270m-pt-res/layer_12_width_16k_l0_small",
]


CONTROL_CASES = [("C1", "absolute"), ("C1", "relative"), ("C11", "random")]
NOT_A_C11_CONTROL = NULL_RELEASES[1:]  # Pythia: a measured gain gap; Gemma-3: C1 measured only


@pytest.mark.parametrize(
    ("subject", "claim", "variant"),
    [
        (subject, *case)
        for subject in ["null-gpt2", "planted-null", *NULL_RELEASES]
        for case in CONTROL_CASES
        if not (subject in NOT_A_C11_CONTROL and case[0] == "C11")
    ],
)
def test_negative_controls_must_fail_c1_and_c11(subject, claim, variant):
    verdict, why = expectation(subject, claim, variant)
    assert verdict == "fails" and why


def test_the_reason_is_the_most_specific_whichever_key_gives_the_verdict():
    verdict, why = expectation(NULL_RELEASES[1], "C11", "random")
    assert verdict == "not judged" and "gain gap" in why  # verdict from default, why from C11
    assert "AP step" in expectation("null-gpt2", "C11", "synthetic-baseline")[1]


@pytest.mark.parametrize(
    ("claim", "variant"), [("C1", "absolute"), ("C1", "relative"), ("C11", "random")]
)
def test_positive_control_asserts_c1_and_c11(claim, variant):
    assert expectation("planted", claim, variant)[0] == "holds"


def test_lookup_order():
    assert expectation("null-gpt2", "C5", "relative")[0] == "not judged"
    assert expectation("null-gpt2", "C11", "synthetic-baseline")[0] == "not judged"
    assert expectation("planted", "C11", "random")[0] == "holds"
    assert expectation("planted", "C11", "synthetic-baseline")[0] == "not judged"
    assert expectation("unlisted-subject", "C3", None)[0] == "holds"
    assert expectation("unlisted-subject", "tables", None)[0] == "not judged"


@pytest.mark.parametrize(
    ("worker", "gpus", "expected"),
    [
        ("gw0", 8, ("cuda:0", 2)),  # workers 0 and 8 share cuda:0
        ("gw9", 8, ("cuda:1", 2)),
        ("gw7", 8, ("cuda:7", 1)),
        ("gw3", 1, ("cuda", 10)),
        ("", 8, ("cuda", 10)),
    ],
)
def test_xdist_workers_spread_over_the_gpus(monkeypatch, worker, gpus, expected):
    import torch

    from synthact.fixtures.experiments import worker_device

    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "10")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    assert worker_device("cuda") == expected
    assert worker_device("cpu") == ("cpu", 10)


def _item(params: dict, fixtures: list[str]) -> SimpleNamespace:
    """What the expectations read of a collected test: its parameters and fixture names."""
    return SimpleNamespace(callspec=SimpleNamespace(params=params), fixturenames=fixtures)


@pytest.mark.parametrize(
    ("params", "fixtures", "group", "variant"),
    [
        ({"sensitivity": "relative"}, ["sensitivity", "lab"], "s:sensitivity:relative", "relative"),
        ({"kl": "absolute"}, ["kl"], "s:sensitivity:absolute", "absolute"),
        (
            {},
            ["sensitivity_absolute", "sensitivity_relative"],
            "s:sensitivity:relative",
            "relative",
        ),
        ({"variant": "random"}, ["plateau"], "s:plateau:absolute", "random"),
        ({}, ["latent_statistics"], "s:latent-statistics", None),
        ({"table": "1", "mode": "absolute"}, ["lab"], None, None),
        ({"towards_real": "relative"}, ["towards_real"], "s:towards-real:relative", "relative"),
    ],
)
def test_groups_and_expectation_keys_follow_the_experiments_table(
    monkeypatch, params, fixtures, group, variant
):
    """A new experiment (the last case) gets its group and C15[relative]-style keys by itself."""
    new = Experiment("towards-real", ("real",), reads=towards_targets("base"))
    monkeypatch.setitem(EXPERIMENTS, new.name, new)
    item = _item(params, fixtures)
    assert _group(item, "s") == group
    assert _variant(item) == variant


def test_every_verdict_has_its_own_one_line_reason():
    """A subject's verdict keys each have a ``why`` of the key or its claim (the default's reason
    is for the claims it covers, not for one named on its own); the measurements behind them are
    in docs/expectations.md, not in the file."""
    table = load_expectations()
    for subject, section in table["subjects"].items():
        why = section.get("why", {})
        for key in section:
            if key in ("role", "why"):
                continue
            reason = why.get(key) or why.get(key.split("[")[0])
            assert reason, f"[subjects.{subject}] {key} has no why"
            assert "\n" not in reason, f"[subjects.{subject}] why.{key} is more than one line"
    lines = EXPECTATIONS_FILE.read_text().splitlines()
    sections = lines[next(i for i, line in enumerate(lines) if line.startswith("[")) :]
    assert not [line for line in sections if line.startswith("#")], "notes go to docs/"
