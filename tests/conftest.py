"""The tests by kind, and their opt-in options.

``unit/`` mirrors the library and runs in seconds; ``integration/`` computes experiments on small
subjects; ``e2e/`` runs the command line and pytest in subprocesses; ``calibration/`` measures the
checks' error rates; ``benchmarks/`` times the engine. Every test outside ``unit/`` is marked
``slow``, as are the unit tests that start a subprocess, so ``pytest tests -m "not slow"`` is the
fast set. Opt-ins: ``--calibration`` runs the error-rate simulations at n = 1000,
``--null-gemma3`` the tests that build the Gemma-3 null hub, ``--cluster`` the Ray cluster tests,
``--platforms`` every CPU kernel setting on every subject, ``--installed`` the wheel installed in
a fresh virtual environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SLOW_KINDS = ("integration", "e2e", "calibration", "benchmarks")
"""Folders of tests/ whose every test is slow."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--calibration",
        action="store_true",
        help="also run the checks' error-rate simulations at n = 1000 and every claim case of "
        "the power table (tests/calibration/; about half an hour on 2 CPU cores)",
    )
    parser.addoption(
        "--null-gemma3",
        action="store_true",
        help="also build the Gemma-3 null hub (0.6 GB, minutes) and test its subject",
    )
    parser.addoption(
        "--platforms",
        action="store_true",
        help="also run the README's claims under every CPU kernel and thread setting on every "
        "subject, and the 1 %% longer step on every subject (tests/e2e/test_platforms.py, "
        "tests/integration/test_snapshot_tolerance.py; about two hours on 2 CPU cores, most of "
        "it the full-size null hubs)",
    )
    parser.addoption(
        "--installed",
        action="store_true",
        help="also build the wheel, install it in a fresh virtual environment and run the claims "
        "and the README's own claim from an empty folder (tests/e2e/test_installed.py; about 3 "
        "minutes)",
    )
    parser.addoption(
        "--cluster",
        action="store_true",
        help="also run the Ray cluster tests: a node, then the driver, killed mid-sweep "
        "(tests/integration/test_cluster.py; pip install -e '.[ray]'; about 3 minutes)",
    )


OPT_IN = {
    "calibration": ("--calibration", "n = 1000 error-rate simulation: runs with --calibration"),
    "null_gemma3": ("--null-gemma3", "builds the Gemma-3 null hub: runs with --null-gemma3"),
    "cluster": ("--cluster", "a Ray cluster sweep (pip install -e '.[ray]'): runs with --cluster"),
    "platforms": ("--platforms", "another CPU kernel setting or subject: runs with --platforms"),
    "installed": ("--installed", "the wheel in a fresh virtual environment: runs with --installed"),
}
"""Markers of tests that run only with their option: (option, why skipped)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(here).parts if item.path.is_relative_to(here) else ()
        if parts and parts[0] in SLOW_KINDS:
            item.add_marker(pytest.mark.slow)
    for marker, (option, why) in OPT_IN.items():
        if config.getoption(option):
            continue
        for item in items:
            if item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=why))
