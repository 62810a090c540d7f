"""Digests of Python code that ignore its docstrings and comments.

A module's digest is the SHA-256 of its syntax tree without docstrings (comments are not in the
tree, and neither are line numbers), so editing prose keeps the digest and any change to what the
code does (a constant, a statement, a name) changes it.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import pkgutil
from collections.abc import Iterable


def source_digest(source: str) -> str:
    """SHA-256 hex digest of the code of ``source``, docstrings and comments left out."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                block[:] = [statement for statement in block if not _is_docstring(statement)]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def modules_digest(names: Iterable[str]) -> str:
    """SHA-256 hex digest of the code of the named modules (a package: each of its modules)."""
    h = hashlib.sha256()
    for name in names:
        for module in _with_submodules(name):
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None:
                raise ModuleNotFoundError(f"no module {module!r} to take the digest of")
            with open(spec.origin, encoding="utf-8") as f:
                h.update(f"{module}:{source_digest(f.read())}\n".encode())
    return h.hexdigest()


def _with_submodules(name: str) -> list[str]:
    """``name``, then the modules of the package ``name`` (sorted, nested ones too)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return [name]
    found = pkgutil.walk_packages(spec.submodule_search_locations, prefix=f"{name}.")
    return [name, *sorted(info.name for info in found)]


def _is_docstring(statement: ast.stmt) -> bool:
    """A bare string statement: a docstring, or the string after an assignment documenting it."""
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )
