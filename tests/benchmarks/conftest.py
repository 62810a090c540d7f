"""Benchmark plumbing: a per-session record of speeds and a terminal summary of them."""

from __future__ import annotations

import pytest

SPEEDS = pytest.StashKey[dict]()
"""config.stash[SPEEDS]: {group: {implementation: ms per perturbed forward}}, plus "_note"."""


@pytest.fixture(scope="session")
def speed_record(pytestconfig: pytest.Config) -> dict:
    """Where benchmarks put their ms per perturbed forward, for the terminal summary."""
    return pytestconfig.stash.setdefault(SPEEDS, {})


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    speeds = config.stash.get(SPEEDS, {})
    note = speeds.pop("_note", "")
    if not speeds:
        return
    terminalreporter.section("perturbation engine speed")
    if note:
        terminalreporter.write_line(note)
    for group, times in speeds.items():
        line = ", ".join(f"{name} {ms:.3f} ms" for name, ms in times.items())
        if {"naive", "engine"} <= times.keys():
            line += f" -> engine {times['naive'] / times['engine']:.1f}x faster"
        terminalreporter.write_line(f"{group}: {line} per perturbed forward")
