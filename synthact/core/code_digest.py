"""Digests of Python code that ignore its prose: docstrings, comments, messages and help.

A module's digest is the SHA-256 of its syntax tree without docstrings (comments are not in the
tree, and neither are line numbers), with the text of what only people read blanked: the strings
of a ``raise`` (error messages), of a logging or ``warn`` call, and an option's help (``help=``, or
``option(default, help)``). Editing prose keeps the digest; any change to what the code computes
(a constant, a statement, a name) changes it.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import pkgutil
from collections.abc import Iterable

MESSAGE_CALLS = frozenset({"warn", "debug", "info", "warning", "error", "exception", "critical"})
"""Calls whose string arguments are messages (``warnings.warn``, a logger's methods)."""
OPTION_CALL = "option"
"""``option(default, help, ...)``: its arguments after the default are help text."""


def source_digest(source: str) -> str:
    """SHA-256 hex digest of the code of ``source``, its prose (see the module) left out."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                block[:] = [statement for statement in block if not _is_docstring(statement)]
    for node in ast.walk(tree):
        for prose in _prose_of(node):
            _blank_strings(prose)
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def _prose_of(node: ast.AST) -> list[ast.AST]:
    """The parts of ``node`` that only people read: a raise's exception, a message call's
    arguments, an option's help."""
    if isinstance(node, ast.Raise) and node.exc is not None:
        return [node.exc]
    if not isinstance(node, ast.Call):
        return []
    name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
    helps = [k.value for k in node.keywords if k.arg == "help"]
    if name in MESSAGE_CALLS:
        return [*node.args, *helps]
    if name == OPTION_CALL:
        return [*node.args[1:], *helps]
    return helps


def _blank_strings(node: ast.AST) -> None:
    """Empty every string constant and f-string text inside ``node`` (in place)."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            inner.value = ""


def modules_digest(names: Iterable[str], exclude: Iterable[str] = ()) -> str:
    """SHA-256 hex digest of the code of the named modules (a package: each of its modules but
    those in ``exclude``)."""
    h = hashlib.sha256()
    left_out = set(exclude)
    for name in names:
        for module in _with_submodules(name):
            if module in left_out:
                continue
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
