"""The library's layers, enforced: a module imports only from its own layer and those below.

From the bottom: ``core`` (plumbing that knows nothing of the paper), ``subjects`` (models, SAEs,
prompt sources and how they load), ``method`` (the computation the cache's method digest covers),
``judge`` (statistics, checks, hypotheses, the verdict policy), then ``outputs`` (tables, figures,
the matrix, snapshots) and ``build`` (subject builders, coverage) side by side, and ``runs`` (the
command line, the cluster) on top. ``method`` and ``judge`` draw nothing: matplotlib is not theirs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "synthact"
RANK = {"core": 0, "subjects": 1, "method": 2, "judge": 3, "outputs": 4, "build": 4, "runs": 5}
"""A layer may import from a layer of lower rank, or its own; `outputs` and `build` not each
other."""
NO_DRAWING = ("method", "judge", "subjects", "core")
"""Layers that compute or decide: no matplotlib."""


def _layer(module: str) -> str | None:
    """The layer of ``synthact.<layer>...`` (None for the package root or another package)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "synthact" and len(parts) > 1 and parts[1] in RANK else None


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports, at any depth (function-level imports too)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(module.split(".")[: -node.level] + ([base] if base else []))
            found += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer() -> None:
    loose = [p.name for p in MODULES if p.parent == PACKAGE and p.name != "__init__.py"]
    assert not loose, f"modules outside the layers: {loose}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers(path: Path) -> None:
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    mine = _layer(module)
    if mine is None:
        return
    upward = sorted(
        {
            name
            for name in _imports(path)
            if (theirs := _layer(name)) is not None
            and theirs != mine
            and RANK[theirs] >= RANK[mine]
        }
    )
    assert not upward, f"{module} ({mine}) imports from a layer above or beside it: {upward}"
    if mine in NO_DRAWING:
        drawing = [name for name in _imports(path) if name.split(".")[0] == "matplotlib"]
        assert not drawing, f"{module} ({mine}) imports {drawing}"
