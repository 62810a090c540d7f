"""Regression: every step distribution of the run against the committed snapshot of its subject.

One test per subject, experiment and mode; it reads the results the claim tests computed. The
snapshots are the run of the README's test command (its n and seed);
`synthact.outputs.snapshots` says what may move (hardware noise) and what may not.
"""

import pytest

from synthact.method.experiments import EXPERIMENTS

CASES = [(e.name, mode) for e in EXPERIMENTS.values() if e.reads is not None for mode in e.modes]


@pytest.mark.parametrize(("experiment", "mode"), CASES, ids=[f"{e}-{m}" for e, m in CASES])
def test_snapshot(subject_name, lab, experiment, mode, replication_regression):
    """Per type and step metric: at most 2 % of rows differ from the snapshot, none by more than
    one step; mean, std and KS against real within what that moves."""
    replication_regression.check(lab, experiment, mode)
