"""Unit-test options: ``--calibration`` runs the slow error-rate simulations (n = 1000),
``--cluster`` the Ray cluster tests beyond the default one."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--calibration",
        action="store_true",
        help="also run the checks' error-rate simulations at n = 1000 and every claim case of "
        "the power table (tests/test_calibration.py; about half an hour on 2 CPU cores)",
    )
    parser.addoption(
        "--cluster",
        action="store_true",
        help="also run the slower Ray cluster tests (tests/test_cluster.py; about 2 minutes)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skips = {
        "calibration": "n = 1000 error-rate simulation: runs with --calibration",
        "cluster": "a second Ray cluster sweep: runs with --cluster",
    }
    for marker, reason in skips.items():
        if config.getoption(f"--{marker}"):
            continue
        for item in items:
            if item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))
