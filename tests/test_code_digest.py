"""The method's digest covers its code, not its prose: docstrings and comments keep it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from synthact import experiments
from synthact.code_digest import modules_digest, source_digest

MODULE = textwrap.dedent(
    '''
    """A module."""

    STEP = 0.5
    """The step."""


    class Path:
        """A path."""

        def point(self, n):
            """The n-th point."""
            return STEP * n  # scaled
    '''
)


@pytest.mark.parametrize(
    "edit",
    [
        ('"""A module."""', '"""A module, reworded at length."""'),
        ('"""The step."""', '"""Absolute step length."""'),
        ('"""The n-th point."""', '"""Point ``n`` of the path, ``[d]``."""'),
        ("# scaled", "# scaled by the step length"),
        ("STEP * n", "(STEP * n)"),  # parentheses
    ],
    ids=["module docstring", "attribute docstring", "method docstring", "comment", "layout"],
)
def test_prose_and_layout_keep_the_digest(edit: tuple[str, str]) -> None:
    assert source_digest(MODULE.replace(*edit)) == source_digest(MODULE)


@pytest.mark.parametrize(
    "edit",
    [("STEP = 0.5", "STEP = 0.25"), ("STEP * n", "n * STEP"), ("def point", "def points")],
    ids=["constant", "expression", "name"],
)
def test_code_changes_change_the_digest(edit: tuple[str, str]) -> None:
    assert source_digest(MODULE.replace(*edit)) != source_digest(MODULE)


def test_a_package_digest_covers_each_of_its_modules(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "digested"
    package.mkdir()
    (package / "__init__.py").write_text('"""A package."""\n')
    (package / "part.py").write_text(MODULE)
    monkeypatch.syspath_prepend(tmp_path)
    before = modules_digest(["digested"])
    (package / "part.py").write_text(MODULE.replace('"""The step."""', '"""Reworded."""'))
    assert modules_digest(["digested"]) == before
    (package / "part.py").write_text(MODULE.replace("STEP = 0.5", "STEP = 0.25"))
    assert modules_digest(["digested"]) != before


def test_method_version_is_the_digest_of_the_method_modules() -> None:
    assert experiments.method_version() == modules_digest(experiments.METHOD_MODULES)[:16]
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        modules_digest(["synthact.no_such_module"])
