"""The perturbation engine: curves along paths from a base activation towards a target."""

from synthact.method.engine.curves import (
    Curves,
    SlowPathWarning,
    engine_path,
    perturbation_curves,
    perturbation_path,
)
from synthact.method.engine.memory import chunk_rows
from synthact.method.engine.request import MODES

__all__ = [
    "MODES",
    "Curves",
    "SlowPathWarning",
    "chunk_rows",
    "engine_path",
    "perturbation_curves",
    "perturbation_path",
]
