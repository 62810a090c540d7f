"""Snapshots of a run's step distributions, and the tolerance that tells a regression from noise.

A snapshot of one experiment in one mode holds, per type and step metric, every row's step, the
steps float rounding could give each tied row (`synthact.method.ties`), and the distribution's
mean, std (ddof 0) and KS against real; and the platform that made it. Two snapshots of the same
configuration agree when, per type and metric:

- a row whose step differs is *within its ties* when either run's step is one the other run's
  curve could give (the method decides nothing there: rounding does);
- of the other rows, at most `MAX_MOVED_SHARE` differ at all and none by more than `MAX_STEP_MOVE`
  (a near-tie just outside `synthact.method.ties.TIE_RTOL`; see
  tests/integration/test_cuda_agreement.py);
- mean, std and KS stay within what those moves can change, where no row of the type (or, for KS,
  of real) moved within its ties: such a move may shift them by any amount, row by row allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthact.judge import stats
from synthact.method import ties
from synthact.method.config import RunConfig
from synthact.method.results import Result

MAX_MOVED_SHARE = 0.02
MAX_STEP_MOVE = 1
SUMMARIES = ("mean", "std", "ks")
NOT_COMPARED = ("subject", "device")
"""Config fields a snapshot does not record: it is of one subject, and any device must agree."""
HEADER = ("run", "platform")
"""A snapshot's keys that are not types."""

Snapshot = dict[str, Any]
"""``{"run": config fields, "platform": str, "<type>": {"<metric>": {"mean", "std", "ks",
"steps", "tied"}}}``; steps are the rows' integer steps, space-separated; tied (only where a row
is) is ``"row:steps row:steps"`` with each row's possible steps as runs (``3:40-52,60``)."""


def file_stem(*parts: str) -> str:
    """A snapshot file's name without ``.yml``, from its subject, experiment and mode (or a prefix
    of them) joined by ``-``: characters other than word characters, dots and dashes (a ``null:``
    subject's colon and slashes) become ``_``."""
    return re.sub(r"[^\w.-]", "_", "-".join(parts))


def run_fields(config: RunConfig) -> dict[str, Any]:
    """The configuration a snapshot is of: every field but `NOT_COMPARED`."""
    fields = dataclasses.asdict(config)
    return {k: v for k, v in fields.items() if k not in NOT_COMPARED}


def take(
    config: RunConfig,
    result: Result,
    reference: Result,
    kinds: Iterable[str],
    platform: str = "",
) -> Snapshot:
    """The snapshot of ``kinds`` of ``result`` (one experiment in one mode); KS against
    ``reference``'s real steps (the same result, or the sensitivity one in the same mode);
    ``platform`` says what computed it (`synthact.outputs.platforms.describe`)."""
    snapshot: Snapshot = {"run": run_fields(config), "platform": platform}
    for kind in kinds:
        entries = {}
        for metric, signal in metrics_of(result, kind):
            steps = result.steps(kind, metric, signal)
            real = reference.steps("real", metric, signal)
            row = stats.summary_row(steps, real)
            tied = ties.tied_rows(result.possible_steps(kind, metric, signal))
            entries[entry_name(metric, signal)] = {
                **{k: round(float(row[k]), 6) for k in SUMMARIES},
                "steps": " ".join(map(str, steps.tolist())),
                **({"tied": format_tied(tied)} if tied else {}),
            }
        snapshot[kind] = entries
    return snapshot


def format_tied(tied: Mapping[int, list[int]]) -> str:
    return " ".join(f"{row}:{ties.format_steps(steps)}" for row, steps in tied.items())


def tied_of(entry: Mapping[str, Any]) -> dict[int, set[int]]:
    """``{row: possible steps}`` of an entry's tied rows (none in a snapshot without ties)."""
    found = {}
    for item in entry.get("tied", "").split():
        row, _, steps = item.partition(":")
        found[int(row)] = set(ties.parse_steps(steps))
    return found


def metrics_of(result: Result, kind: str) -> list[tuple[str, str]]:
    """(metric, signal) of the steps the claims read from ``kind``: its experiment's
    `Experiment.step_metrics`, other signals than L2 where ``kind`` recorded them."""
    return [(m, s) for m, s in result.step_metrics if s == "l2" or f"{kind}/{s}" in result.arrays]


def entry_name(metric: str, signal: str) -> str:
    return metric if signal == "l2" else f"{signal}-{metric}"


def steps_of(entry: Mapping[str, Any]) -> np.ndarray:
    return np.array(entry["steps"].split(), dtype=np.int64)


class SnapshotRegression(AssertionError):
    """A run's steps moved beyond the tolerance from the committed snapshot, or cannot be compared
    with it: a regression, not a verdict on a claim."""


@dataclass(frozen=True)
class Moved:
    """How one type's steps of one metric differ between the snapshot and this run.

    ``rows_moved`` and ``largest_move`` count the rows that moved outside their ties;
    ``within_ties`` the rows that moved to a step rounding could give; ``checked`` names the
    summaries held to `summary_tolerance` (see the module docstring)."""

    kind: str
    metric: str
    n: int
    rows_moved: int
    largest_move: int
    old: Mapping[str, float]
    new: Mapping[str, float]
    within_ties: int = 0
    checked: tuple[str, ...] = SUMMARIES

    @property
    def ok(self) -> bool:
        """Within the tolerance: few rows moved, by one step at most, summaries accordingly."""
        rows = self.rows_moved <= math.floor(MAX_MOVED_SHARE * self.n + 1e-9)
        summaries = all(
            abs(self.new[k] - self.old[k]) <= summary_tolerance(k) for k in self.checked
        )
        return rows and self.largest_move <= MAX_STEP_MOVE and summaries

    def __str__(self) -> str:
        share = self.rows_moved / self.n if self.n else 0.0
        numbers = ", ".join(f"{k} {self.old[k]:.4g} -> {self.new[k]:.4g}" for k in self.old)
        ties_moved = f", {self.within_ties} more within their ties" if self.within_ties else ""
        return (
            f"{self.kind} {self.metric}: {self.rows_moved} of {self.n} rows moved ({share:.0%}), "
            f"by up to {self.largest_move} step(s){ties_moved}; {numbers}"
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
        if kind in HEADER:
            continue
        for metric, before in entries.items():
            after = new.get(kind, {}).get(metric)
            if after is None:
                raise ValueError(f"this run has no {kind} {metric} steps; the snapshot has")
            found.append(_moved(kind, metric, before, after))
    real_tie_moved = {m.metric for m in found if m.kind == "real" and m.within_ties}
    return [_summaries_checked(m, real_tie_moved) for m in found]


def _summaries_checked(moved: Moved, real_tie_moved: set[str]) -> Moved:
    """Mean and std are checked unless a row of the type moved within its ties; KS also unless
    a real row of the metric did."""
    checked = () if moved.within_ties else SUMMARIES
    if moved.metric in real_tie_moved:
        checked = tuple(k for k in checked if k != "ks")
    return dataclasses.replace(moved, checked=checked)


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, str]:
    """``{field: "snapshot's -> this run's"}`` for every config field that differs; a field the
    snapshot lacks (an option added since) counts as its default, so a new option leaves every
    snapshot compared."""
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    recorded = {k: old.get(k, defaults.get(k)) for k in new}
    return {k: f"{recorded[k]} -> {v}" for k, v in new.items() if recorded[k] != v}


def _moved(kind: str, metric: str, before: Mapping, after: Mapping) -> Moved:
    old, new = steps_of(before), steps_of(after)
    if old.shape != new.shape:
        raise ValueError(f"{kind} {metric}: {len(new)} rows, the snapshot has {len(old)}")
    old_tied, new_tied = tied_of(before), tied_of(after)
    within = np.array(
        [
            o != n and (n in old_tied.get(row, ()) or o in new_tied.get(row, ()))
            for row, (o, n) in enumerate(zip(old.tolist(), new.tolist(), strict=True))
        ],
        dtype=bool,
    )
    moves = np.where(within, 0, np.abs(new - old))
    return Moved(
        kind,
        metric,
        len(old),
        int((moves > 0).sum()),
        int(moves.max(initial=0)),
        {k: float(before[k]) for k in SUMMARIES},
        {k: float(after[k]) for k in SUMMARIES},
        within_ties=int(within.sum()),
    )
