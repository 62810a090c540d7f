"""Unit-test options: ``--calibration`` runs the slow error-rate simulations (n = 1000)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--calibration",
        action="store_true",
        help="also run the checks' error-rate simulations at n = 1000 and every claim case of "
        "the power table (tests/test_calibration.py; about half an hour on 2 CPU cores)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--calibration"):
        return
    skip = pytest.mark.skip(reason="n = 1000 error-rate simulation: runs with --calibration")
    for item in items:
        if item.get_closest_marker("calibration"):
            item.add_marker(skip)
