"""The README's commands, read where `.ci/run` reads them, for the tests that run them."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

from synthact.method.config import add_options

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS_SUBJECTS = ("null:gpt2-small-res-jb/blocks.6.hook_resid_pre",)
"""Subjects with committed snapshots that run with ``--platforms`` only, not in the README's test
command: the release path's GPT-2 null control (its Pythia-shaped one and the GPT-2 null of the
paper's own loading path run by default), left out to keep the default run near 10 minutes."""
C16_ONLY_SUBJECTS = ("planted-raised",)
"""Subjects the README's test command runs C16 on, and nothing else: its ablation experiment has
no step snapshot, so they have none."""
PLATFORMS_SELECTION = "(test_c01 or test_c11) and not planted-cooccur-null and not planted-raised"
"""What ``--platforms`` runs beyond the README's ``-k``: C1 and C11 in both modes, with their
snapshots, on every subject. The README's command runs only C1 in absolute steps on the full-size
null controls (null-gpt2, the Pythia shape): their relative steps and plateau paths took about five
of its worker-minutes."""


def _readme_test_line() -> str:
    lines = (ROOT / "README.md").read_text().splitlines()
    return lines[lines.index("<!-- ci:test -->") + 2]


def readme_test_command() -> tuple[list[str], str]:
    """The subjects of the README's test command (after ``<!-- ci:test -->``) and its ``-k``."""
    command = _readme_test_line()
    subjects = re.search(r"--subject (\S+)", command).group(1).split(",")
    return subjects, re.search(r'-k "([^"]+)"', command).group(1)


def readme_test_options() -> dict[str, Any]:
    """Every run option's value (by dest) in the README's test command, defaults included."""
    parser = argparse.ArgumentParser(add_help=False)
    add_options(parser.add_argument)
    known, _ = parser.parse_known_args(shlex.split(_readme_test_line()))
    return vars(known)


def quick_start_command() -> list[str]:
    """The first ``synthact replicate`` line of the README's quick start, as words."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Quick start") :]
    line = next(s for s in section.splitlines() if s.startswith("synthact replicate"))
    return shlex.split(line.partition("#")[0])
