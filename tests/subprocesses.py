"""For tests that run pytest or the CLI in a subprocess."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synthact.core.cache import ResultCache


def nested_env(**extra: str) -> dict[str, str]:
    """This run's environment without pytest's and xdist's ``PYTEST_*`` variables (a nested run
    must not take itself for an xdist worker), plus ``extra``."""
    outer = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    return {**outer, **extra}


def session_cache(config: pytest.Config) -> Path:
    """The result cache of this test run (``--synthact-cache``, else the default)."""
    return ResultCache(config.getoption("synthact_cache")).root
