"""The method's digest covers its code, not its prose: docstrings and comments keep it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from synthact.core.code_digest import modules_digest, source_digest
from synthact.method import config, experiments

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


CODE = textwrap.dedent(
    """
    import logging
    log = logging.getLogger(__name__)
    n: int = option(1000, "perturbations per type", choices=("a", "b"))
    def check(n, mode):
        if n < 2:
            raise ValueError(f"n must be at least 2, got {n}")
        log.warning("small n %d", n)
        parser.add_argument("--n", help="the paper's n")
        return {"absolute": 0.5}[mode]
    """
)


@pytest.mark.parametrize(
    "edit",
    [
        ("n must be at least 2", "--n takes 2 or more"),
        ("small n %d", "n = %d is small"),
        ("the paper's n", "perturbations, as in the paper"),
        ('"perturbations per type"', '"perturbations per target type (the paper\'s n)"'),
    ],
    ids=["error message", "log message", "help=", "option help"],
)
def test_messages_and_help_keep_the_digest(edit: tuple[str, str]) -> None:
    assert source_digest(CODE.replace(*edit)) == source_digest(CODE)


@pytest.mark.parametrize(
    "edit",
    [
        ("option(1000", "option(100"),
        ('"absolute": 0.5', '"relative": 0.5'),
        ('("a", "b")', '("a", "c")'),
        ("ValueError", "TypeError"),
    ],
    ids=["option default", "a string the code reads", "option choices", "exception type"],
)
def test_what_the_code_computes_changes_the_digest(edit: tuple[str, str]) -> None:
    assert source_digest(CODE.replace(*edit)) != source_digest(CODE)


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


def test_method_version_is_the_digest_of_the_method_modules_but_the_builders() -> None:
    method, builders = experiments.METHOD_MODULES, experiments.BUILDERS
    assert experiments.method_version() == modules_digest(method, exclude=builders)[:16]
    assert modules_digest(method, exclude=builders) != modules_digest(method)
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        modules_digest(["synthact.no_such_module"])


def test_the_run_options_help_is_not_part_of_the_method() -> None:
    """Rewording an option of `RunConfig` keeps every cache key; changing its default does not."""
    source = Path(config.__file__).read_text()
    help_text = "master seed of every random draw; same seed, same numbers"
    assert help_text in source
    assert source_digest(source.replace(help_text, "the seed")) == source_digest(source)
    changed = source.replace("seed: int = option(0,", "seed: int = option(1,")
    assert changed != source and source_digest(changed) != source_digest(source)
