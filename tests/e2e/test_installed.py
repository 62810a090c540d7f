"""synthact as a user installs it: a wheel, in a fresh virtual environment, used from an empty
folder. `synthact replicate` runs the claims shipped in the package, and the README's own claim
(section "Write your own claim") runs under plain pytest through the plugin's entry point."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.subprocesses import nested_env

ROOT = Path(__file__).resolve().parents[2]
TOP_LEFT_OUT = {".git", ".venv", "reports", "build"}
"""Folders of the checkout's top the wheel does not need."""
pytestmark = pytest.mark.installed
SMALL = ["--subject", "planted", "--n", "30", "--n-gaussian", "1000"]


def _readme_claim() -> str:
    """The code block after ``<!-- own-claim -->`` in the README."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("<!-- own-claim -->") :]
    return re.search(r"```python\n(.*?)```", block, re.S).group(1)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with synthact's wheel installed (not editable); its other
    dependencies are this environment's."""
    where = tmp_path_factory.mktemp("installed")
    source = where / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    caches = shutil.ignore_patterns("*.egg-info", "__pycache__", ".*_cache")

    def left_out(folder: str, names: list[str]) -> set[str]:
        top = TOP_LEFT_OUT if Path(folder) == ROOT else set()
        return top | set(caches(folder, names))

    shutil.copytree(ROOT, source, ignore=left_out)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(where), str(source)]
    subprocess.run(build, check=True, env=nested_env())
    (wheel,) = where.glob("synthact-*.whl")
    env = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    own = subprocess.run(
        [python, "-c", "import site, json; print(json.dumps(site.getsitepackages()))"],
        capture_output=True,
        text=True,
        check=True,
    )
    outer = [p for p in sys.path if Path(p).name == "site-packages"]  # dependencies only
    (Path(json.loads(own.stdout)[0]) / "outer.pth").write_text("\n".join(outer))
    install = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(install, check=True, env=nested_env())
    return env


def _run(venv: Path, folder: Path, *words: str) -> subprocess.CompletedProcess:
    env = nested_env(SYNTHACT_CACHE=str(folder / "cache"), HF_HUB_OFFLINE="1")
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(venv / "bin" / words[0]), *words[1:]],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_the_installed_package_runs_its_claims_and_a_users_own(venv: Path, tmp_path: Path):
    found = _run(venv, tmp_path, "python", "-c", "import synthact; print(synthact.__file__)")
    assert str(venv) in found.stdout, "the wheel's synthact, not the checkout's"
    replicate = _run(venv, tmp_path, "synthact", "replicate", *SMALL, "--matrix-dir", "out")
    assert replicate.returncode == 0, replicate.stdout[-3000:] + replicate.stderr[-3000:]
    matrix = (tmp_path / "out" / "matrix.md").read_text()
    assert "C1 [absolute]" in matrix and "C15" in matrix, matrix
    (tmp_path / "test_my_claim.py").write_text(_readme_claim())
    own = _run(venv, tmp_path, "python", "-m", "pytest", "test_my_claim.py", *SMALL, "-q")
    assert own.returncode == 0, own.stdout[-3000:] + own.stderr[-3000:]
    for mode in ("absolute", "relative"):  # planted names no expectation of it: not judged
        assert re.search(
            rf"mine \[{mode}\] +expected not judged +XFAILED +observed holds", own.stdout
        )
