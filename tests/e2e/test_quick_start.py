"""The README's quick start, run as written (its reports in a temporary folder), exits 0: every
claim concludes as expected and every regression snapshot passes, on this machine's kernels; and
it writes every table and figure of each subject."""

from __future__ import annotations

import subprocess
import sys

import pytest

from synthact.outputs import report
from tests.readme import ROOT, quick_start_command
from tests.subprocesses import nested_env, session_cache


@pytest.mark.slow
def test_the_quick_start_exits_0(request, tmp_path):
    """Reuses the test run's result cache: experiments the claim tests computed are read."""
    words = quick_start_command()
    assert words[:2] == ["synthact", "replicate"]
    cache = session_cache(request.config)
    command = [sys.executable, "-m", "synthact.runs.cli", *words[1:]]
    command += [f"--matrix-dir={tmp_path / 'reports'}", f"--synthact-cache={cache}"]
    done = subprocess.run(
        command, cwd=ROOT, env=nested_env(), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    reports = tmp_path / "reports"
    assert (reports / "matrix.md").is_file() and (reports / "constructions.md").is_file()
    tables = report.paper_numbers()["tables"].values()
    for subject in ("planted", "planted-null"):
        text = (reports / subject / "tables.md").read_text()
        assert all(spec["title"] in text for spec in tables)
        assert "Figure 3" in text and "(C14)" in text
        pngs = sorted((reports / subject).glob("*.png"))
        assert len(pngs) == 3 + len(tables)  # a figure per table (both modes), figures 1, 3, E
        assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)
