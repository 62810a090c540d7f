"""--dist=loadgroup keeps the tests of one xdist_group on one worker.

The claims rely on it to compute each experiment on one worker while the others compute other
experiments; without it the workers mostly wait on each other's cache locks.
"""

import subprocess
import sys
import textwrap

from tests.subprocesses import nested_env


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path):
    """Eight tests in two modules, grouped by a collection hook as fixtures/expectations.py does."""
    for module in ("a", "b"):
        (tmp_path / f"test_{module}.py").write_text(
            textwrap.dedent(
                """
                import pytest

                @pytest.mark.parametrize("i", range(4))
                def test_grouped(i):
                    pass
                """
            )
        )
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.hookimpl(tryfirst=True)
            def pytest_collection_modifyitems(items):
                for item in items:
                    item.add_marker(pytest.mark.xdist_group("shared"))
            """
        )
    )
    env = nested_env()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "--dist=loadgroup",
            "-v",
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    workers = {line.split()[0] for line in run.stdout.splitlines() if "PASSED" in line}
    assert len(workers) == 1, f"the group ran on {sorted(workers)}:\n{run.stdout}"
