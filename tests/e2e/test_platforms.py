"""The same verdicts and passing snapshots under other CPU kernels and thread counts.

Each setting runs the README's test command on one of its subjects (subjects and ``-k`` read
from the README) in a fresh process with a fresh result cache, under the environment variables
that pick MKL's, oneDNN's and ATen's kernels or the thread count. Exit 0 means every judged claim
concluded as `claims/expectations.toml` says and every snapshot passed; each snapshot must have
been compared, not skipped. `MKL_CBWR=COMPATIBLE` (MKL's code path for any x86 CPU) moves float
rounding on every machine, AVX2 ones included, so it runs by default, on planted-null's C1 and
absolute-step sensitivity snapshot (every MS row tied); ``--platforms`` runs every setting on
every subject with the whole selection and `PLATFORMS_SELECTION`, `PLATFORMS_SUBJECTS` included.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.readme import PLATFORMS_SELECTION, PLATFORMS_SUBJECTS, ROOT, readme_test_command
from tests.subprocesses import nested_env

SETTINGS = {
    "mkl-compatible": {"MKL_CBWR": "COMPATIBLE"},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "mkl-onednn-avx2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "one-thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    "two-threads": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"},
}
"""Environment of each setting, on top of the test run's."""


SUBJECTS, SELECTION = readme_test_command()
DEFAULT = ("mkl-compatible", "planted-null")
DEFAULT_SELECTION = "(test_c01 and absolute-) or sensitivity-absolute"
"""The default case's part of the README's selection: C1 and the sensitivity snapshot in absolute
steps (every MS row tied); relative steps and the plateau paths are left to ``--platforms``."""


def _cases() -> list:
    cases = []
    for setting in SETTINGS:
        for subject in (*SUBJECTS, *PLATFORMS_SUBJECTS):
            marks = () if (setting, subject) == DEFAULT else (pytest.mark.platforms,)
            cases.append(pytest.param(setting, subject, marks=marks, id=f"{setting}-{subject}"))
    return cases


def _selection(setting: str, subject: str) -> str:
    if (setting, subject) == DEFAULT:
        return f"({SELECTION}) and ({DEFAULT_SELECTION})"
    return f"({SELECTION}) or ({PLATFORMS_SELECTION})"


@pytest.mark.slow
@pytest.mark.parametrize(("setting", "subject"), _cases())
def test_verdicts_and_snapshots_hold_under_other_kernels(setting, subject, tmp_path):
    env = nested_env(**SETTINGS[setting], SYNTHACT_CACHE=str(tmp_path / "cache"))
    command = [
        *(sys.executable, "-m", "pytest", "claims", "-n", "0", "-p", "no:cacheprovider"),
        *("--subject", subject, "--n", "100", "--n-gaussian", "4000", "-q", "-rs"),
        *("-k", _selection(setting, subject), f"--matrix-dir={tmp_path / 'reports'}"),
        f"--alluredir={tmp_path / 'allure'}",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{setting} {subject}: exit {done.returncode}\n{output[-6000:]}"
    skipped = re.findall(r"SKIPPED .*test_snapshot.*", output)
    assert not skipped, f"{setting} {subject}: snapshots not compared:\n" + "\n".join(skipped)
    assert re.search(r"\d+ passed", output), output[-2000:]
