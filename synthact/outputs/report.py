"""Figures and tables in the paper's layout, from experiment results.

Used by the claim tests (Allure attachments) and by ``synthact replicate`` (files under reports/).
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import scipy.stats
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from synthact.core.choices import NOMINAL_STEPS
from synthact.judge import stats
from synthact.judge.paper import paper_numbers, paper_rows
from synthact.method import metrics

PALETTE = {
    "real": "#E69F00",
    "random": "#0072B2",
    "synthetic-baseline": "#CC79A7",
    "synthetic-structured": "#009E73",
    "synthetic-random": "#56B4E9",
    "structured-no-cos": "#D55E00",
    "synthetic-cooccurrence": "#000000",
    "reconstruction": "#8C564B",
}
"""A colour per type in every figure: the paper's hues (model-generated orange, random blue,
baseline purple, structured green, reconstruction brown) from the colour-blind-safe Okabe-Ito
palette, which also gives the types the paper shows only in tables theirs. It comes before a
registered construction's own colour, which a construction of the user's keeps."""

REFERENCE_LABELS = {
    "real": "model-generated (real)",
    "random": "random (Gaussian)",
    "reconstruction": "SAE reconstruction",
}


def type_color(kind: str) -> str | None:
    """A type's colour (None: matplotlib's next one)."""
    from synthact.method.constructions import CONSTRUCTIONS

    if kind in PALETTE:
        return PALETTE[kind]
    return CONSTRUCTIONS[kind].color if kind in CONSTRUCTIONS else None


def type_label(kind: str) -> str:
    """A type's name in figures and tables."""
    from synthact.method.constructions import CONSTRUCTIONS

    if kind in CONSTRUCTIONS:
        return CONSTRUCTIONS[kind].title
    return REFERENCE_LABELS.get(kind, kind)


RUN_CONFIG_CHOICES = ("grid", "latent_moves")
"""The keys of a table's ``run``: the `RunConfig` fields of the run that printed it."""


def run_mismatch(table: str, config) -> str | None:
    """Why a run of ``config`` (a `RunConfig`) cannot be compared with ``table``, or None.

    Each table names the variant of the run that printed it (``run`` in paper_numbers.json);
    numbers from another grid or another way of moving latents are not the same quantity.
    """
    run = paper_numbers()["tables"][table]["run"]
    differ = [
        f"{key} {run[key]!r} (this run: {getattr(config, key)!r})"
        for key in RUN_CONFIG_CHOICES
        if key in run and run[key] != getattr(config, key)
    ]
    if not differ:
        return None
    return f"table {table} was printed by a run with " + ", ".join(differ)


def table_result(lab, table: str, mode: str):
    """The `Result` of ``lab`` that ``table`` in ``mode`` is compared with (its run's variant)."""
    return lab.result(paper_numbers()["tables"][table]["experiment"], mode)


def summary(steps: Mapping[str, np.ndarray], reference: str = "real") -> dict[str, dict]:
    """Mean, std (ddof 0) and KS against ``reference`` of each type's step distribution."""
    return {kind: stats.summary_row(values, steps[reference]) for kind, values in steps.items()}


def summary_csv(
    steps: Mapping[str, np.ndarray],
    paper: Mapping[str, list] | None = None,
    reference: str = "real",
) -> str:
    """CSV of ours (mean, std, KS, n) beside the paper's row for each type."""
    paper = paper or {}
    lines = ["type,n,mean,std,ks,paper_mean,paper_std,paper_ks"]
    for kind, row in summary(steps, reference).items():
        ref = paper.get(kind, [None, None, None])
        cells = [kind, len(steps[kind]), row["mean"], row["std"], row["ks"], *ref]
        lines.append(",".join(_fmt(c) for c in cells))
    return "\n".join(lines) + "\n"


def summary_markdown(
    steps: Mapping[str, np.ndarray],
    paper: Mapping[str, list] | None = None,
    reference: str = "real",
) -> str:
    """The same as `summary_csv`, as a markdown table: ours | paper for mean, std and KS."""
    paper = paper or {}
    lines = [
        "| type | mean | std | KS | paper mean | paper std | paper KS |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, row in summary(steps, reference).items():
        ref = paper.get(kind, [None, None, None])
        cells = [type_label(kind), row["mean"], row["std"], row["ks"], *ref]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


CAPS = {
    "ms": (metrics.MS_FLAT, "flat curve, no slope above the MS flat slope"),
    "nl": (NOMINAL_STEPS, "no departure from the initial line on the whole path"),
    "ap": (metrics.AP_NEVER, "the AP threshold never reached on the path"),
}
"""Per metric, the step given to a curve without one, and why (shown where it occurs)."""
BIN_WIDTH = 4
"""Steps per histogram bin, the same on every subject so that their figures compare."""


def step_figure(
    steps: Mapping[str, np.ndarray], *, title: str, xlabel: str, metric: str | None = None
) -> Figure:
    """Histogram outlines (left) and cumulative frequency (right) of step distributions, as
    Figures 2/3, over the steps that occur; a ``metric``'s cap (`CAPS`) is named when present."""
    return modes_figure({"": steps}, title=title, xlabel=xlabel, metric=metric)


def modes_figure(
    by_mode: Mapping[str, Mapping[str, np.ndarray]],
    *,
    title: str,
    xlabel: str,
    metric: str | None = None,
) -> Figure:
    """`step_figure`'s panels, a row per step mode (``by_mode``: steps ``[n]`` by type, by mode;
    absolute on top and relative below, as Figures B.1, B.2, C.1, D.1); bins of `BIN_WIDTH`."""
    fig = Figure(figsize=(11, 0.6 + 3.6 * len(by_mode)))
    axes = fig.subplots(len(by_mode), 2, squeeze=False)
    values = [v for steps in by_mode.values() for v in steps.values()]
    top = max(int(np.max(v)) for v in values)
    bins = np.arange(0, top + 2 * BIN_WIDTH, BIN_WIDTH)
    for (mode, steps), (hist, cdf) in zip(by_mode.items(), axes, strict=True):
        for kind, x in steps.items():
            color, label = type_color(kind), type_label(kind)
            hist.hist(x, bins=bins, histtype="step", linewidth=1.6, color=color, label=label)
            xs = np.sort(x)
            cdf.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post", color=color)
        where = f"{mode} step: " if mode else ""
        hist.set(xlabel=xlabel, ylabel="count", title=f"{where}histogram (bins of {BIN_WIDTH})")
        cdf.set(xlabel=xlabel, ylabel="cumulative frequency", title=f"{where}cumulative")
        cdf.set_ylim(0, 1.01)
        for ax in (hist, cdf):
            ax.set_xlim(0, bins[-1])
    axes[0][0].legend(fontsize=8)
    cap, why = CAPS.get(metric, (None, ""))
    if cap is not None and top >= cap:
        fig.text(0.5, 0.01, f"{xlabel} = {cap}: {why}", ha="center", fontsize=8)
    fig.suptitle(title)
    _fixed_margins(fig, rows=len(by_mode))
    return fig


def _fixed_margins(fig: Figure, rows: int) -> None:
    """`modes_figure`'s margins, set in inches: room for a two-line title, the axes' titles and
    labels and the cap's note. Drawn once per claim test, where fitting them to the text
    (``tight_layout``) would take most of the figure's time."""
    width, height = fig.get_size_inches()
    top, bottom, between_rows = 0.95, 0.75, 0.95  # inches
    axes_height = (height - top - bottom - between_rows * (rows - 1)) / rows
    fig.subplots_adjust(
        left=0.7 / width,
        right=1 - 0.25 / width,
        top=1 - top / height,
        bottom=bottom / height,
        wspace=0.2,
        hspace=between_rows / axes_height,
    )


SIGNALS = {"l2": "L2 distance", "kl": "KL divergence"}
"""The two output signals of Figure 1, in its panel order."""


def curves_figure(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    steps: Mapping[str, Mapping[str, np.ndarray]],
    *,
    title: str,
    n_examples: int = 10,
) -> Figure:
    """Figure 1: a panel per signal (`SIGNALS`) with ``n_examples`` curves per type (thin), each
    with its MS step as a dot, and the type's mean over all its curves (dashed). ``curves``:
    ``[n, n_steps]`` by signal, then type; ``steps``: MS steps ``[n]``, likewise. Real is drawn
    last, so that it shows where it lies on random."""
    fig = Figure(figsize=(12, 4.6))
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (signal, by_kind) in zip(axes, curves.items(), strict=True):
        for kind, values in sorted(by_kind.items(), key=lambda item: item[0] == "real"):
            color, n = type_color(kind), len(values)
            rows = np.arange(min(n_examples, n))
            for row in rows:
                ax.plot(values[row], color=color, alpha=0.3, linewidth=0.8)
            at = steps[signal][kind][rows]
            ax.plot(at, values[rows, at], "o", color=color, markersize=4)
            ax.plot(
                values.mean(axis=0),
                color=color,
                linestyle="--",
                linewidth=2,
                label=f"{type_label(kind)}: mean of {n}; {len(rows)} thin lines",
            )
        ax.plot([], [], "o", color="0.3", label="MS step of a thin line")
        ax.set(xlabel="perturbation step", ylabel=SIGNALS[signal], title=SIGNALS[signal])
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes."""
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)  # the figure's canvas: Agg, whatever pyplot's backend is
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def latent_rows(latents) -> list[tuple[str, float, float]]:
    """(quantity, ours, paper) for Appendix E and the scale facts of a `LatentResult`."""
    paper, scale = paper_numbers()["appendix_e"], paper_numbers()["scale"]
    s, f = latents.stats, latents.scale_facts
    return [
        ("mean active latents (L0)", float(s.l0.mean()), paper["mean_active_latents"]),
        ("top latent share of latent norm", float(s.norm_share[:, 0].mean()), paper["top_share"]),
        ("second latent share", float(s.norm_share[:, 1].mean()), paper["second_share"]),
        ("mean pairwise cosine", float(s.pairwise_cos.mean()), paper["mean_pairwise_cosine"]),
        ("mean cosine with top latent", float(s.top_cos.mean()), paper["mean_cosine_with_top"]),
        ("activation norm", float(f.act_norm.mean()), scale["activation_norm"]),
        ("base-target distance", float(f.distance.mean()), scale["base_target_distance"]),
        ("cosine w.r.t. b_dec", float(f.cos_b_dec.mean()), scale["mean_cosine_wrt_b_dec"]),
    ]


def latent_markdown(latents) -> str:
    """Appendix E and scale facts, ours beside the paper, as a markdown table."""
    lines = ["| quantity | ours | paper |", "|---|---|---|"]
    lines += [f"| {name} | {ours:.3f} | {paper:g} |" for name, ours, paper in latent_rows(latents)]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Agreement:
    """One of our table numbers beside the paper's, with the tolerance its sample sizes allow."""

    kind: str
    quantity: str
    ours: float
    paper: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return abs(self.ours - self.paper) <= self.tolerance

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.quantity}: ours {self.ours:.2f}, "
            f"paper {self.paper:.2f} ± {self.tolerance:.2f}"
        )


def agreement(
    steps: Mapping[str, np.ndarray], paper: Mapping[str, list], reference: str = "real"
) -> list[Agreement]:
    """Mean, std and KS of each type in ``paper`` against the paper's (`stats.row_tolerances`).

    The std tolerance uses our sample's kurtosis (step distributions have sentinel spikes).
    """
    n_paper = paper_numbers()["n"]
    rows = []
    for kind, (mean, std, ks) in paper.items():
        ours = stats.summary_row(steps[kind], steps[reference])
        kurtosis = _kurtosis(steps[kind])
        tolerance = stats.row_tolerances(
            ours,
            {"std": ours["std"] if std is None else std},
            n_ours=ours["n"],
            n_paper=n_paper,
            kurtosis=kurtosis,
        )
        for quantity, value in (("mean", mean), ("std", std), ("ks", ks)):
            if value is not None and not (quantity == "ks" and kind == reference):
                rows.append(Agreement(kind, quantity, ours[quantity], value, tolerance[quantity]))
    return rows


def _kurtosis(x: np.ndarray) -> float:
    """Pearson kurtosis of ``x``; 3 (a normal's) for a constant sample, where it is undefined."""
    if np.ptp(x) == 0:
        return 3.0
    return max(float(scipy.stats.kurtosis(x, fisher=False)), 1.0)


def agreement_markdown(rows: Iterable[Agreement]) -> str:
    lines = ["| type | quantity | ours | paper | tolerance | agrees |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r.kind} | {r.quantity} | {r.ours:.2f} | {r.paper:.2f} | {r.tolerance:.2f} | {r.ok} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def latent_figure(latents) -> Figure:
    """Figures E.1 and E.2: active-latent counts, norm share by rank, cosine histograms."""
    s = latents.stats
    fig = Figure(figsize=(16, 3.8))
    axes = fig.subplots(1, 4)
    l0 = np.asarray(s.l0)
    width = max(1, int(np.ceil((l0.max() - l0.min() + 1) / 40)))
    bins = np.arange(l0.min(), l0.max() + width + 1, width) - 0.5
    axes[0].hist(l0, bins=bins, color=type_color("real"))
    axes[0].set(title="active latents per activation", xlabel="L0", ylabel="count")
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].bar(np.arange(1, s.norm_share.shape[1] + 1), s.norm_share.mean(axis=0))
    axes[1].set(title="mean share of the latent norm", xlabel="rank")
    axes[2].hist(s.pairwise_cos, bins=60, color=type_color("random"))
    axes[2].set(title="pairwise cosine of active latents", xlabel="cosine")
    axes[3].hist(s.top_cos, bins=60, color=type_color("synthetic-structured"))
    axes[3].set(title="cosine with the top latent", xlabel="cosine")
    fig.suptitle(f"Appendix E: SAE latents of {len(l0)} real activations (Figures E.1 and E.2)")
    fig.tight_layout()
    return fig


def table_steps(lab, table: str, mode: str, *, beyond_paper: bool = False) -> dict[str, np.ndarray]:
    """Our step distributions for the types of one paper table; ``beyond_paper``: and every
    construction the paper does not have that joins the table's experiment (with its signal)."""
    spec = paper_numbers()["tables"][table]
    result = table_result(lab, table, mode)
    kinds = list(paper_rows(table, mode))
    if beyond_paper:
        kinds += [
            kind
            for kind in _experiment_types(spec["experiment"])
            if kind not in _paper_types() and f"{kind}/{spec['signal']}" in result.arrays
        ]
    return {k: result.steps(k, spec["metric"], spec["signal"]) for k in kinds}


def _experiment_types(name: str) -> tuple[str, ...]:
    """The types an experiment computes: its references and the constructions joining it."""
    from synthact.method.experiments import EXPERIMENTS

    return EXPERIMENTS.lookup(name).types


@cache
def _paper_types() -> frozenset[str]:
    """Every type some paper table reports."""
    tables = paper_numbers()["tables"].values()
    return frozenset(kind for spec in tables for rows in spec["rows"].values() for kind in rows)


def replicate(lab, out: Path) -> list[Path]:
    """Write every paper table and figure under ``out``: ``tables.md`` (ours beside the paper,
    with the agreement checks) and the PNGs it shows.

    The folder is written beside ``out`` (as ``.NAME.partial``) and put in its place once
    complete: a run that fails leaves ``out`` as it was, one that is killed leaves the partial
    folder beside it, never a folder of figures without its tables.
    """
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        written = _write_report(lab, partial)
        _replace_folder(out, partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return [out / path.name for path in written]


def _replace_folder(out: Path, new: Path) -> None:
    """Put the folder ``new`` where ``out`` is (two renames; the old folder removed after)."""
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _write_report(lab, out: Path) -> list[Path]:
    """`replicate`'s files, written into the existing folder ``out``."""
    written: list[Path] = [_save(_example_curves(lab), out / "figure-1.png")]
    sections = [
        f"# Replication on {lab.config.subject}\n",
        _config_markdown(lab),
        "![Figure 1](figure-1.png)\n",
    ]
    for table in paper_numbers()["tables"]:
        sections += _table_sections(lab, table, out, written)
    sections += _figure_3_section(lab, out, written)
    sections += _construction_source_section(lab)
    latents = lab.result("latent-statistics")
    written.append(_save(latent_figure(latents), out / "appendix-e.png"))
    sections += [
        "## Appendix E and scale facts\n",
        latent_markdown(latents),
        "![Appendix E](appendix-e.png)\n",
    ]
    (out / "tables.md").write_text("\n".join(sections))
    return [out / "tables.md", *written]


PAPER_FIGURES = {
    "1": "Figure 2",
    "A.1": "Figure A.1",
    "B.1": "Figure B.1",
    "B.2": "Figure B.2",
    "C.1": "Figure C.1",
    "D.1": "Figure D.1",
}
"""The paper's figure of each table's step distributions (the AP table has none)."""


def _table_sections(lab, table: str, out: Path, written: list[Path]) -> list[str]:
    """A section per step mode of ``table`` (ours beside the paper, the agreement checks), and
    one figure of its modes, named as the paper's figure of it (absolute above relative)."""
    spec = paper_numbers()["tables"][table]
    mismatch = run_mismatch(table, lab.config)
    sections, by_mode = [], {}
    for mode in spec["rows"]:
        sections += [f"## {spec['title']} ({mode} step)\n"]
        sections += [f"Paper numbers: {spec['provenance'][mode]}.\n"]
        if mismatch:
            sections.append(f"Not compared: {mismatch}.\n")
            continue
        steps, paper = table_steps(lab, table, mode, beyond_paper=True), paper_rows(table, mode)
        by_mode[mode] = steps
        sections += [summary_markdown(steps, paper), agreement_markdown(agreement(steps, paper))]
    if not by_mode:
        return sections
    paper_figure = PAPER_FIGURES.get(table)
    figure_name = paper_figure or f"Table {table}'s steps"
    file = (
        "figure-" + paper_figure.split()[1].replace(".", "") if paper_figure else f"table-{table}"
    )
    metric, signal = spec["metric"], spec["signal"]
    xlabel = f"{metric.upper()} step of the {SIGNALS[signal]}"
    title = f"{figure_name} on {_who(lab)}: {xlabel} ({spec['title'].split(': ')[0]})"
    figure = modes_figure(by_mode, title=title, xlabel=xlabel, metric=metric)
    written.append(_save(figure, out / f"{file}.png"))
    return [*sections, f"![{figure_name}]({file}.png)\n"]


def _figure_3_section(lab, out: Path, written: list[Path]) -> list[str]:
    """The paper's plateau experiment (towards a Gaussian sample): no numbers to compare with."""
    result = lab.result("plateau")
    steps = {kind: result.steps(kind, "ap") for kind in result.types}
    title = f"Figure 3 on {_who(lab)}: AP step, absolute steps towards a fresh Gaussian sample"
    figure = step_figure(steps, title=title, xlabel="AP step of the L2 distance", metric="ap")
    written.append(_save(figure, out / "figure-3.png"))
    return [f"## {title}\n", summary_markdown(steps), "![Figure 3](figure-3.png)\n"]


def _construction_source_section(lab) -> list[str]:
    """C14: synthetic targets built from A against built from a third real activation."""
    lines = [
        "## Section 6 (C14): synthetic targets built from another real activation\n",
        "| type | mode | mean MS from A | mean MS from another | KS between them |",
        "|---|---|---|---|---|",
    ]
    for mode in ("absolute", "relative"):
        from_base, from_other = lab.result("sensitivity", mode), lab.result("other-source", mode)
        for kind in from_other.types:
            a, b = from_base.steps(kind), from_other.steps(kind)
            cells = [type_label(kind), mode, a.mean(), b.mean(), stats.ks(a, b)]
            lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return ["\n".join(lines) + "\n"]


def _example_curves(lab) -> Figure:
    result = lab.result("sensitivity", "absolute")
    kinds = ("real", "random")
    curves = {s: {k: result.curves(k, s) for k in kinds} for s in SIGNALS}
    steps = {s: {k: result.steps(k, "ms", s) for k in kinds} for s in SIGNALS}
    title = (
        f"Figure 1 on {_who(lab)}: perturbations towards model-generated and random activations,"
        " absolute steps"
    )
    return curves_figure(curves, steps, title=title)


def _who(lab) -> str:
    """The subject and n, for every figure's title."""
    return f"{lab.config.subject} (n = {lab.config.n})"


def run_parameters(lab) -> dict[str, object]:
    """The run's configuration and every constant it used, with where the constants come from."""
    constants = lab.constants
    return {
        **vars(lab.config),
        "points per curve": lab.config.n_steps,
        "step": constants.step,
        "path spacing": lab.config.spacing(constants.step),
        "MS flat slope": constants.flat_slope,
        "AP threshold": constants.ap_threshold,
        "constants": constants.source,
        "log-sparsity": lab.sparsity_source,
    }


def _config_markdown(lab) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in run_parameters(lab).items()) + "\n"


def _save(fig: Figure, path: Path) -> Path:
    path.write_bytes(png(fig))
    return path


ABLATION_TOP = 15
"""Latents listed in the ablation report: those driving the most rows' blowups."""
NULL_CONTROL = "none: null control (random weights)"
"""A null control's Neuronpedia column: its latents are random, not the release's it is named as."""


def driving_latents(ablation) -> list[dict[str, object]]:
    """The latents that most often drive a row's blowup (`AblationResult.driving`), most first:
    latent, rows driven, mean score where active, firing frequency, mean activation where active
    and, where the SAE's metadata names a Neuronpedia id, that id and its page (built offline), or
    on a null control (random weights under that id's release) `NULL_CONTROL`, no page."""
    latents, driving = ablation.latents, ablation.driving()
    scores, activations = ablation.scores(), ablation.arrays["activations"]
    frequency = ablation.firing_frequency()
    counts = np.bincount(latents[driving], minlength=len(frequency))
    chosen = [int(j) for j in np.argsort(-counts, kind="stable")[:ABLATION_TOP] if counts[j]]
    rows = []
    for j in chosen:
        where = latents == j
        row: dict[str, object] = {
            "latent": j,
            "rows driven": int(counts[j]),
            "rows active": int(where.sum()),
            "mean score": float(scores[where].mean()),
            "firing frequency": float(frequency[j]),
            "mean activation": float(activations[where].mean()),
        }
        if ablation.neuronpedia and ablation.random_weights:
            row["neuronpedia"] = NULL_CONTROL
        elif ablation.neuronpedia:
            row["neuronpedia"] = f"{ablation.neuronpedia}/{j}"
            row["link"] = (
                f"[{ablation.neuronpedia}/{j}](https://www.neuronpedia.org/{ablation.neuronpedia}/{j})"
            )
        rows.append(row)
    return rows


def ablation_markdown(ablation) -> str:
    """`driving_latents` as a markdown table, with the shares C16 reads."""
    top, random = ablation.carried("top"), ablation.carried("random")
    lines = [
        f"latent ablations on {ablation.subject} (n = {len(ablation.latents)}): the top latents "
        f"carry {top.mean():.3f} of the output change as blowup, as many random ones "
        f"{random.mean():.3f}",
        "",
    ]
    if ablation.neuronpedia and ablation.random_weights:
        lines += [
            f"a null control: random weights under the names of {ablation.neuronpedia}, whose "
            "Neuronpedia pages describe other latents (none linked)",
            "",
        ]
    rows = driving_latents(ablation)
    if not rows:
        return "\n".join([*lines, "no latent drives a blowup"]) + "\n"
    lines += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += [
        "| "
        + " | ".join(f"{v:.2e}" if k == "firing frequency" else _fmt(v) for k, v in row.items())
        + " |"
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def ablation_figure(ablation) -> Figure:
    """Each (row, active latent)'s contribution (`AblationResult.scores`) against the latent's
    firing frequency, the latents driving a blowup marked."""
    active, driving = ablation.active, ablation.driving()
    frequency = ablation.firing_frequency()[ablation.latents[active]]
    scores = ablation.scores()[active]
    marked = driving[active]
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    ax.scatter(
        frequency[~marked],
        scores[~marked],
        s=8,
        alpha=0.5,
        color=PALETTE["random"],
        label="other active latents",
    )
    ax.scatter(
        frequency[marked],
        scores[marked],
        s=8,
        alpha=0.7,
        color=PALETTE["real"],
        label="driving the row's blowup",
    )
    ax.set(xscale="log", xlabel="firing frequency", ylabel="contribution (blowup excess, L2)")
    ax.legend(frameon=False)
    ax.set_title(f"Latent ablations: {ablation.subject} (n = {len(ablation.latents)})")
    fig.tight_layout()
    return fig
