"""Allure's run files: each outcome lands in its category, and a report made with the previous
report's history shows the previous run in its trend (with `.ci/allure-report`, as CI does)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from synthact.fixtures.allure_files import (
    GROUP_MESSAGES,
    _category,
    group_messages,
    pytest_configure,
    write_run_files,
)
from synthact.fixtures.leaderboard import ALLURE_MESSAGE

ROOT = Path(__file__).resolve().parents[2]

MESSAGES = {
    "regression": "synthact.outputs.snapshots.SnapshotRegression: planted sensitivity: moved",
    "control inconclusive": "synthact.judge.checks.ControlInconclusive: not supported:\n  - x",
    "claim not supported": "synthact.judge.checks.ClaimNotSupported: claim not supported:\n  - x",
    "control failed as expected": (
        "XFAIL C1 must NOT hold on planted-null: no readout\n\n"
        "synthact.judge.checks.ClaimNotSupported: claim not supported:\n  - x"
    ),
    "effect too small": (
        "XFAIL the paper's effect cannot be shown at n = 1000: needs n >= 2474 (any valid check)"
        "; not judged:\n  - x"
    ),
    "not judged": "XFAIL C3 is not judged on planted: no planted mechanism\n\nClaimNotSupported",
}
STATUS = {
    name: "skipped" for name in ("control failed as expected", "effect too small", "not judged")
}


@pytest.mark.parametrize("name", MESSAGES)
def test_each_outcome_lands_in_its_category(name):
    assert _category(STATUS.get(name, "failed"), MESSAGES[name]) == name


def test_underpowered_and_the_leaderboard_are_not_judged_a_crash_an_error_a_real_skip_neither():
    underpowered = "XFAIL underpowered at n = 100: needs n >= 400; not judged:\n  - x"
    assert _category("skipped", underpowered) == "not judged"
    assert _category("skipped", ALLURE_MESSAGE) == "not judged"
    assert _category("broken", "RuntimeError: the SAE did not load") == "error"
    assert _category("skipped", "Skipped: needs a CUDA device") is None
    assert _category("failed", "AssertionError: regression: wording alone") is None


def _result(out: Path, name: str, status: str, message: str) -> None:
    body = {
        "uuid": f"{name}-{os.urandom(4).hex()}",
        "historyId": name,
        "name": name,
        "fullName": f"claims.{name}",
        "status": status,
        "statusDetails": {"message": message},
        "start": 1,
        "stop": 2,
    }
    (out / f"{body['uuid']}-result.json").write_text(json.dumps(body))


def test_each_category_is_one_group_with_the_specifics_in_the_trace(tmp_path):
    """Allure groups a category's results by message: one message per category."""
    varied = {
        name: [message, message.replace("planted", "planted-null")]
        for name, message in MESSAGES.items()
    }
    varied["not judged"].append(ALLURE_MESSAGE)
    for name, messages in varied.items():
        for i, message in enumerate(messages):
            _result(tmp_path, f"{name}-{i}", STATUS.get(name, "failed"), message)
    _result(tmp_path, "crash", "broken", "RuntimeError: the SAE did not load")
    group_messages(tmp_path)
    for path in tmp_path.glob("*-result.json"):
        result = json.loads(path.read_text())
        details, name = result["statusDetails"], result["name"].rpartition("-")[0]
        if result["name"] == "crash":
            assert details == {"message": "RuntimeError: the SAE did not load"}
            continue
        assert details["message"] == GROUP_MESSAGES[name]
        assert _category(result["status"], details["message"]) == name
        assert details["trace"] in varied[name]


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("npx") and shutil.which("java")), reason="needs npx, java")
def test_a_second_report_has_the_first_in_its_history(tmp_path):
    history, report = tmp_path / "history", tmp_path / "report"
    for run in (1, 2):
        results = tmp_path / f"results-{run}"
        results.mkdir()
        write_run_files(results, {"n": "100", "subject planted": "positive control"})
        _result(results, "test_regression", "failed", MESSAGES["regression"])
        _result(results, "test_control", "skipped", MESSAGES["control failed as expected"])
        env = {**os.environ, "ALLURE_RESULTS": str(results), "ALLURE_REPORT": str(report)}
        subprocess.run([ROOT / ".ci" / "allure-report", history], env=env, check=True)
    trend = json.loads((report / "history" / "history-trend.json").read_text())
    assert len(trend) == 2, trend
    categories = json.loads((report / "widgets" / "categories.json").read_text())
    assert {c["name"] for c in categories["items"]} == {"regression", "control failed as expected"}
    environment = json.loads((report / "widgets" / "environment.json").read_text())
    assert {"name": "subject planted", "values": ["positive control"]} in environment


@pytest.mark.parametrize("flag", ["help", "version"])
def test_help_and_version_write_no_allure_results(flag):
    """So ``--clean-alluredir`` (in addopts) deletes nothing of the last run's."""
    option = SimpleNamespace(help=flag == "help", version=flag == "version")
    option.allure_report_dir = "reports/allure-results"
    pytest_configure(SimpleNamespace(option=option))
    assert option.allure_report_dir is None
