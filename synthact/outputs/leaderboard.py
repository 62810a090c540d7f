"""The leaderboard of target constructions: how far each type's steps are from real's.

Per subject and `COLUMNS` entry (a step metric of one experiment and mode), every type is scored by
the KS distance between its steps and real's, with a 95 % interval: the two one-sided 97.5 % bounds
of `synthact.judge.stats.ks_contrast_bound` (a percentile interval of KS is biased, see there),
clipped to [0, 1]. The types' rows share their base prompts, so both samples are resampled with the
same rows. Real's own row is the *floor*: the KS between two random halves of its rows (each of n //
2 rows, so its noise is about √2 times that of a KS of n against n). ``random`` is the *ceiling*.
Types are ranked by their mean KS over the subject's columns; a type missing one (``—``: not
computed in this run, as nothing is computed to fill it, or a construction that does not join the
experiment) is listed unranked below them: a mean over other columns is not comparable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from synthact.judge import stats
from synthact.method.experiments import EXPERIMENTS, Lab
from synthact.outputs.report import png, type_color, type_label

FLOOR, CEILING = "real", "random"
N_BOOT = 2000
ALPHA = 0.05
SEED = 0
FILES = ("constructions.md", "constructions.png")
FLOOR_COLOR = "0.85"


@dataclass(frozen=True)
class Column:
    """One leaderboard column: the ``metric`` steps of ``signal`` curves of an experiment."""

    name: str
    experiment: str
    mode: str
    metric: str = "ms"
    signal: str = "l2"


COLUMNS = (
    Column("MS absolute", "sensitivity", "absolute"),
    Column("MS relative", "sensitivity", "relative"),
    Column("KL-MS", "sensitivity", "absolute", signal="kl"),
    Column("AP", "plateau", "absolute", metric="ap"),
)


@dataclass(frozen=True)
class Interval:
    """A KS estimate and its 95 % interval ``[low, high]``."""

    estimate: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.estimate:.2f} [{self.low:.2f}, {self.high:.2f}]"


@dataclass(frozen=True)
class Row:
    """One type on one subject: its KS against real by column name (missing: not computed)."""

    subject: str
    kind: str
    cells: Mapping[str, Interval] = field(default_factory=dict)

    @property
    def role(self) -> str:
        return {FLOOR: "floor", CEILING: "ceiling"}.get(self.kind, "")

    @property
    def score(self) -> float | None:
        """The mean KS over the columns the row has (None: it has none)."""
        if not self.cells:
            return None
        return float(np.mean([cell.estimate for cell in self.cells.values()]))


Steps = Mapping[str, Mapping[str, np.ndarray]]
"""Steps ``[n]`` by column name, then by type (``real`` among them)."""


def ks_interval(x: np.ndarray, y: np.ndarray, *, seed: int = SEED) -> Interval:
    """KS between paired samples ``x``, ``y`` (``[n]`` each) and its ``1 - ALPHA`` interval."""
    terms = [(1.0, x, y)]
    kwargs = {"alpha": ALPHA / 2, "n_boot": N_BOOT, "seed": seed}
    estimate, low = stats.ks_contrast_bound(terms, "lower", **kwargs)
    _, high = stats.ks_contrast_bound(terms, "upper", **kwargs)
    return Interval(estimate, max(low, 0.0), min(high, 1.0))


def split_half_interval(real: np.ndarray, *, seed: int = SEED) -> Interval:
    """KS between two random halves of ``real`` (``[n]``; n // 2 rows each), the floor."""
    order = np.random.default_rng(seed).permutation(len(real))
    half = len(real) // 2
    return ks_interval(real[order[:half]], real[order[half : 2 * half]], seed=seed)


def subject_rows(subject: str, steps: Steps, kinds: Sequence[str]) -> list[Row]:
    """The floor, then the ``kinds`` with every column ranked by `Row.score`, then the others
    (unranked, in ``kinds``' order)."""
    cells: dict[str, dict[str, Interval]] = {kind: {} for kind in (FLOOR, *kinds)}
    for column, by_kind in steps.items():
        if FLOOR not in by_kind:
            continue
        real = by_kind[FLOOR]
        cells[FLOOR][column] = split_half_interval(real)
        for kind in kinds:
            if kind in by_kind:
                cells[kind][column] = ks_interval(by_kind[kind], real)
    rows = [Row(subject, kind, found) for kind, found in cells.items()]
    complete = sorted(ranked(rows), key=lambda row: row.score or 0.0)
    return [rows[0], *complete, *(row for row in rows[1:] if row not in complete)]


def ranked(rows: Sequence[Row]) -> list[Row]:
    """The rows of one subject (the floor first) that have every column the floor has."""
    floor, *others = rows
    return [row for row in others if row.cells and row.cells.keys() == floor.cells.keys()]


def lab_steps(lab: Lab) -> Steps:
    """The steps of every type the lab's cache holds, per column; computes nothing."""
    steps: dict[str, dict[str, np.ndarray]] = {}
    for column in COLUMNS:
        computed = lab.computed_types(column.experiment, column.mode)
        experiment = EXPERIMENTS.lookup(column.experiment)
        if column.signal == "kl":
            computed = [kind for kind in computed if kind in experiment.kl_types]
        if FLOOR in computed:
            result = lab.result(column.experiment, column.mode)
            steps[column.name] = {
                kind: result.steps(kind, column.metric, column.signal) for kind in computed
            }
    return steps


def leaderboard_kinds() -> list[str]:
    """Every type of the leaderboard's experiments but real, in their order (random first)."""
    kinds = [kind for c in COLUMNS for kind in EXPERIMENTS.lookup(c.experiment).types]
    return [kind for kind in dict.fromkeys(kinds) if kind != FLOOR]


def lab_rows(lab: Lab) -> list[Row]:
    """The leaderboard rows of a lab's subject, from what its cache holds."""
    return subject_rows(lab.config.subject, lab_steps(lab), leaderboard_kinds())


def _columns(rows: Sequence[Row]) -> list[str]:
    """The `COLUMNS` that some row has, in order."""
    return [c.name for c in COLUMNS if any(c.name in row.cells for row in rows)]


def _rank(rows: Sequence[Row], row: Row) -> str:
    if row.role == "floor":
        return "floor"
    order = ranked(rows)
    return str(order.index(row) + 1) if row in order else ""


def subject_markdown(rows: Sequence[Row]) -> str:
    """One subject's table: a row per type, a column per `COLUMNS` entry some row has."""
    columns = _columns(rows)
    lines = [
        f"## `{rows[0].subject}`",
        "",
        "| rank | type | " + " | ".join(columns) + " | mean KS |",
        "|---|---|" + "---|" * (len(columns) + 1),
    ]
    order = ranked(rows)
    for row in rows:
        label = _label(row) + (" (ceiling)" if row.role == "ceiling" else "")
        texts = [str(row.cells[c]) if c in row.cells else "—" for c in columns]
        shown = row.score is not None and (row in order or row.role == "floor")
        score = f"{row.score:.2f}" if shown else "—"
        lines.append(f"| {_rank(rows, row)} | {label} | " + " | ".join(texts) + f" | {score} |")
    unranked = [_label(row) for row in rows[1:] if row not in order]
    if unranked:
        lines += ["", f"Not ranked, as they miss a column (—): {', '.join(unranked)}.", UNRANKED]
    return "\n".join(lines) + "\n"


UNRANKED = (
    "A mean over fewer columns is not comparable with the ranked types' mean over all of them."
)


def _label(row: Row) -> str:
    return "real, split halves" if row.role == "floor" else type_label(row.kind)


def leaderboard_markdown(rows: Sequence[Row]) -> str:
    """The leaderboard of every subject of ``rows``, one table each."""
    intro = (
        "# Constructions leaderboard\n\n"
        "Each cell: the KS distance between the type's steps and real's, with its 95 % interval "
        "(paired bootstrap bounds of `synthact.judge.stats.ks_contrast_bound`). "
        "*floor*: real against "
        "itself (two random halves); *ceiling*: the Gaussian. Ranked by the mean KS over the "
        "subject's columns; —: not computed in this run, or the type does not join that "
        "experiment (a type with a — is listed unranked below the ranked ones).\n"
    )
    return "\n".join([intro, *(subject_markdown(group) for group in _by_subject(rows))])


def _by_subject(rows: Sequence[Row]) -> list[list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.subject, []).append(row)
    return list(groups.values())


def leaderboard_figure(rows: Sequence[Row]) -> Figure:
    """A panel per subject and column: each type's KS with its interval (ranked top-down), the
    floor's interval as a shaded band and the ceiling as a dashed line."""
    groups = [group for group in _by_subject(rows) if _columns(group)]
    width = max(len(_columns(group)) for group in groups)
    heights = [len(group) for group in groups]
    fig = Figure(figsize=(3.2 * width + 2.2, 1.4 + 0.3 * sum(heights) + 0.5 * len(groups)))
    axes = fig.subplots(
        len(groups),
        width,
        squeeze=False,
        sharex=True,
        gridspec_kw={"height_ratios": heights},
    )
    for group, panels in zip(groups, axes, strict=True):
        columns = _columns(group)
        for j, ax in enumerate(panels):
            if j < len(columns):
                _panel(ax, group[1:], group[0], columns[j], labels=j == 0)
            else:
                ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("KS against real", fontsize=8)
    fig.suptitle(
        "KS distance to real's steps (95 % interval), types top-down by their mean over all "
        "columns;\nbelow the ranked ones, unranked: types missing a column (no marker there)",
        fontsize=10,
    )
    handles = [
        Patch(color=FLOOR_COLOR, label="real's split-half floor: its 95 % interval"),
        Line2D([], [], color="0.5", linewidth=0.8, label="the floor's estimate"),
        Line2D([], [], color=type_color(CEILING), linestyle="--", label="the Gaussian's ceiling"),
    ]
    top = 1 - 0.55 / fig.get_figheight()  # below the title's two lines
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, top))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.9 / fig.get_figheight()))
    return fig


def _panel(ax: Axes, rows: Sequence[Row], floor: Row, column: str, *, labels: bool) -> None:
    y = np.arange(len(rows))
    if column in floor.cells:
        band = floor.cells[column]
        ax.axvspan(band.low, band.high, color=FLOOR_COLOR, zorder=0)
        ax.axvline(band.estimate, color="0.5", linewidth=0.8, zorder=0)
    for i, row in enumerate(rows):
        if column not in row.cells:
            continue
        cell = row.cells[column]
        error = [[cell.estimate - cell.low], [cell.high - cell.estimate]]
        color = type_color(row.kind) or "black"
        ax.errorbar(cell.estimate, i, xerr=error, fmt="o", color=color, capsize=3, markersize=4)
        if row.role == "ceiling":
            ax.axvline(cell.estimate, color=color, linestyle="--", linewidth=0.8)
    order = ranked([floor, *rows])
    names = [type_label(row.kind) + ("" if row in order else " (unranked)") for row in rows]
    ax.set_yticks(y, names if labels else [], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(-0.03, 1.03)
    ax.set_title(f"{rows[0].subject}: {column}" if rows else column, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)


def write_leaderboard(rows: Sequence[Row], out_dir: Path) -> list[Path]:
    """Write ``constructions.md`` and ``constructions.png`` into ``out_dir``; their paths."""
    if not any(row.cells for row in rows):
        raise ValueError("no computed steps to write a leaderboard of")
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, figure = (out_dir / name for name in FILES)
    markdown.write_text(leaderboard_markdown(rows))
    figure.write_bytes(png(leaderboard_figure(rows)))
    return [markdown, figure]
