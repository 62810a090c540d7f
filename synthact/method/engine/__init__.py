"""The perturbation engine: curves along paths from a base activation towards a target.

Its names load with the submodule that defines them, on first use: importing the package (or
`MODES`) does not import TransformerLens, so that the pytest plugin can load before the run
decides whether the Hugging Face hub is reachable (`synthact.configure_hub_access`).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synthact.method.engine.curves import (
        Curves,
        SlowPathWarning,
        engine_path,
        perturbation_curves,
        perturbation_path,
    )
    from synthact.method.engine.memory import chunk_rows
    from synthact.method.engine.request import MODES

_SUBMODULE = {
    "Curves": "curves",
    "SlowPathWarning": "curves",
    "engine_path": "curves",
    "perturbation_curves": "curves",
    "perturbation_path": "curves",
    "chunk_rows": "memory",
    "MODES": "request",
}
"""The submodule that defines each exported name."""

__all__ = [
    "MODES",
    "Curves",
    "SlowPathWarning",
    "chunk_rows",
    "engine_path",
    "perturbation_curves",
    "perturbation_path",
]


def __getattr__(name: str) -> object:
    if name not in _SUBMODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_SUBMODULE[name]}"), name)
