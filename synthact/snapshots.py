"""Snapshots of a run's step distributions, and the tolerance that tells a regression from noise.

A snapshot of one experiment in one mode holds, per type and step metric, every row's step and
the distribution's mean, std (ddof 0) and KS against real. Two snapshots of the same configuration
agree when, per type and metric, at most `MAX_MOVED_SHARE` of rows differ at all and none by more
than `MAX_STEP_MOVE` (float32 on another CPU or on CUDA moves a few curves' step by one; see
tests/test_cuda_agreement.py), and mean, std and KS stay within what those moves can change.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthact import stats
from synthact.config import RunConfig
from synthact.results import Result

MAX_MOVED_SHARE = 0.02
MAX_STEP_MOVE = 1
SUMMARIES = ("mean", "std", "ks")
NOT_COMPARED = ("subject", "device")
"""Config fields a snapshot does not record: it is of one subject, and any device must agree."""

Snapshot = dict[str, Any]
"""``{"run": config fields, "<type>": {"<metric>": {"mean", "std", "ks", "steps"}}}``; steps
are the rows' integer steps, space-separated."""


def run_fields(config: RunConfig) -> dict[str, Any]:
    """The configuration a snapshot is of: every field but `NOT_COMPARED`."""
    fields = dataclasses.asdict(config)
    return {k: v for k, v in fields.items() if k not in NOT_COMPARED}


def take(config: RunConfig, result: Result, reference: Result, kinds: Iterable[str]) -> Snapshot:
    """The snapshot of ``kinds`` of ``result`` (one experiment in one mode); KS against
    ``reference``'s real steps (the same result, or the sensitivity one in the same mode)."""
    snapshot: Snapshot = {"run": run_fields(config)}
    for kind in kinds:
        entries = {}
        for metric, signal in metrics_of(result, kind):
            steps = result.steps(kind, metric, signal)
            real = reference.steps("real", metric, signal)
            row = stats.summary_row(steps, real)
            entries[entry_name(metric, signal)] = {
                **{k: round(float(row[k]), 6) for k in SUMMARIES},
                "steps": " ".join(map(str, steps.tolist())),
            }
        snapshot[kind] = entries
    return snapshot


def metrics_of(result: Result, kind: str) -> list[tuple[str, str]]:
    """(metric, signal) of the steps the claims read from ``kind``: AP on plateau paths, else MS,
    AUC and NL of L2 and MS of KL where KL was recorded."""
    if result.experiment.startswith("plateau"):
        return [("ap", "l2")]
    found = [("ms", "l2"), ("auc", "l2"), ("nl", "l2")]
    return found + ([("ms", "kl")] if f"{kind}/kl" in result.arrays else [])


def entry_name(metric: str, signal: str) -> str:
    return metric if signal == "l2" else f"{signal}-{metric}"


def steps_of(entry: Mapping[str, Any]) -> np.ndarray:
    return np.array(entry["steps"].split(), dtype=np.int64)


@dataclass(frozen=True)
class Moved:
    """How one type's steps of one metric differ between the snapshot and this run."""

    kind: str
    metric: str
    n: int
    rows_moved: int
    largest_move: int
    old: Mapping[str, float]
    new: Mapping[str, float]

    @property
    def ok(self) -> bool:
        """Within the tolerance: few rows moved, by one step at most, summaries accordingly."""
        rows = self.rows_moved <= math.floor(MAX_MOVED_SHARE * self.n + 1e-9)
        summaries = all(abs(self.new[k] - self.old[k]) <= summary_tolerance(k) for k in self.old)
        return rows and self.largest_move <= MAX_STEP_MOVE and summaries

    def __str__(self) -> str:
        share = self.rows_moved / self.n if self.n else 0.0
        numbers = ", ".join(f"{k} {self.old[k]:.4g} -> {self.new[k]:.4g}" for k in self.old)
        return (
            f"{self.kind} {self.metric}: {self.rows_moved} of {self.n} rows moved ({share:.0%}), "
            f"by up to {self.largest_move} step(s); {numbers}"
        )


def summary_tolerance(name: str) -> float:
    """How far mean, std or KS can move when `MAX_MOVED_SHARE` of rows move by one step: mean
    by share·1, std (ddof 0) by sqrt(share), KS by the share of this type plus that of real."""
    bound = {
        "mean": MAX_MOVED_SHARE * MAX_STEP_MOVE,
        "std": math.sqrt(MAX_MOVED_SHARE) * MAX_STEP_MOVE,
        "ks": 2 * MAX_MOVED_SHARE,
    }[name]
    return bound + 1e-6  # the snapshot's 6 decimals


def compare(old: Snapshot, new: Snapshot) -> list[Moved]:
    """Every (type, metric) of ``old`` against ``new``'s; raises `ValueError` if the two are not
    of the same configuration and entries (nothing to compare row by row)."""
    changed = config_changes(old["run"], new["run"])
    if changed:
        raise ValueError(f"the snapshot is of another configuration: {changed}")
    found = []
    for kind, entries in old.items():
        if kind == "run":
            continue
        for metric, before in entries.items():
            after = new.get(kind, {}).get(metric)
            if after is None:
                raise ValueError(f"this run has no {kind} {metric} steps; the snapshot has")
            found.append(_moved(kind, metric, before, after))
    return found


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, str]:
    """``{field: "snapshot's -> this run's"}`` for every config field that differs."""
    return {k: f"{old.get(k)} -> {v}" for k, v in new.items() if old.get(k) != v}


def _moved(kind: str, metric: str, before: Mapping, after: Mapping) -> Moved:
    old, new = steps_of(before), steps_of(after)
    if old.shape != new.shape:
        raise ValueError(f"{kind} {metric}: {len(new)} rows, the snapshot has {len(old)}")
    moves = np.abs(new - old)
    return Moved(
        kind,
        metric,
        len(old),
        int((moves > 0).sum()),
        int(moves.max(initial=0)),
        {k: float(before[k]) for k in SUMMARIES},
        {k: float(after[k]) for k in SUMMARIES},
    )
