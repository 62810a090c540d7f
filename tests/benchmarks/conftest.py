"""Benchmark plumbing: where benchmarks run, a record of their speeds and a summary of them."""

from __future__ import annotations

import pytest
import torch

SPEEDS = pytest.StashKey[dict]()
"""config.stash[SPEEDS]: {group: {implementation: seconds per perturbed forward}}, plus "_notes"
(a list of lines)."""

UNITS = {"cpu": ("ms", 1e3), "cuda": ("us", 1e6)}
"""How each device's groups (named "<device>-...") print their times."""


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Accepts the configured ``--dist`` when pytest-xdist is not loaded (``-p no:xdist``), so
    that benchmarks can run without it (pytest-benchmark disables itself under xdist)."""
    if not pluginmanager.has_plugin("xdist"):
        parser.addoption("--dist", dest="dist_without_xdist", help="ignored without pytest-xdist")


@pytest.fixture(scope="session")
def bench_device(pytestconfig: pytest.Config) -> str:
    """ "cuda" or "cpu": the suite's ``--device`` ("auto": cuda when available)."""
    device = pytestconfig.getoption("--device")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@pytest.fixture(scope="session")
def speed_record(pytestconfig: pytest.Config) -> dict:
    """Where benchmarks put their seconds per perturbed forward, for the terminal summary."""
    return pytestconfig.stash.setdefault(SPEEDS, {})


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    speeds = dict(config.stash.get(SPEEDS, {}))
    notes = speeds.pop("_notes", [])
    if not speeds:
        return
    terminalreporter.section("perturbation engine speed (per perturbed forward)")
    for note in notes:
        terminalreporter.write_line(note)
    for group, times in speeds.items():
        unit, scale = UNITS[group.split("-")[0]]
        line = ", ".join(f"{name} {scale * seconds:.3g} {unit}" for name, seconds in times.items())
        naive = min((s for name, s in times.items() if name.startswith("naive")), default=None)
        engine = min((s for name, s in times.items() if name.startswith("engine")), default=None)
        if naive and engine:
            line += f" -> engine {naive / engine:.1f}x faster than naive"
        terminalreporter.write_line(f"{group}: {line}")
