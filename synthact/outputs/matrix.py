"""The claims × subjects matrix: what each claim test observed on each subject.

A `Cell` is one claim test case on one subject: the observed outcome (``holds``, ``does not
hold``, ``underpowered``: not judged, as it did not hold at an n below the one it needs for 80 %
power at the paper's effect, ``effect too small``: not judged, as even an oracle that knows the
laws needs more than the paper's n to show the paper's effect, or ``error``), the statistic of
its deciding check (the first failed check, else the first) with the estimate, one-sided bound
and threshold, and the verdict ``claims/expectations.toml`` expects there (``holds`` or ``fails``;
``not judged`` expects nothing). An expected failure is met by the effect shown absent
(``absence_shown``), whichever way the claim's direction came out, as the claim tests decide
it. `write_matrix` writes the cells as ``matrix.md`` and as a heat map ``matrix.png``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from synthact.judge.claims import claim_order
from synthact.outputs.report import png

OUTCOMES = ("holds", "does not hold", "underpowered", "effect too small", "error")
NOT_JUDGED = ("underpowered", "effect too small")
"""Outcomes that judge nothing: the run's n (or the paper's effect) is too small to decide."""
JUDGEMENTS = ("met", "not met", "not judged")
JUDGEMENT_COLORS = {"met": "#a6dba0", "not met": "#f4a582", "not judged": "#d9d9d9"}
"""Heat-map colours of `JUDGEMENTS` (green, red, grey); a cell not run is white."""
CELL_CHARS = 30
"""Characters per line of a heat-map cell's text."""
MEETS = {"holds": "holds", "fails": "does not hold"}
"""The outcome that meets each expected verdict."""
ERROR_CHARS = 90


@dataclass(frozen=True)
class Cell:
    """One claim test case on one subject.

    Attributes:
        claim: the claim id, e.g. ``"C1"``.
        test: the test function, e.g. ``"test_c05_real_blowups_mid_path"``.
        case: the test's parameters other than the subject (step mode, comparison), or ``""``.
        subject: the subject's name.
        outcome: one of `OUTCOMES`.
        statistic: the deciding check's hypothesis, or the error message.
        estimate, bound, threshold: the deciding check's numbers (None for an error).
        expected: the expected verdict (``holds``, ``fails``, ``not judged``), if any.
        absence_shown: the claim's effect was shown absent (what a ``fails`` also needs).
        note: what qualifies the outcome (``at n = 100: needs n >= 400`` when underpowered).
    """

    claim: str
    test: str
    case: str
    subject: str
    outcome: str
    statistic: str | None = None
    estimate: float | None = None
    bound: float | None = None
    threshold: float | None = None
    expected: str | None = None
    absence_shown: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")

    @property
    def row(self) -> tuple[str, str, str]:
        return self.claim, self.test, self.case

    @property
    def met(self) -> bool | None:
        """Whether the expected verdict was met; None when none is expected or the claim was
        underpowered or its effect too small (`NOT_JUDGED`)."""
        if self.expected not in MEETS or self.outcome in NOT_JUDGED:
            return None
        if self.expected == "fails":
            return self.outcome != "error" and self.absence_shown
        return self.outcome == MEETS[self.expected]

    @property
    def judgement(self) -> str:
        """One of `JUDGEMENTS`: an error never meets an expectation; without an expected verdict
        (or underpowered) a cell is not judged."""
        if self.outcome == "error" or self.met is False:
            return "not met"
        return "met" if self.met else "not judged"

    def numbers(self) -> str:
        """``estimate (bound b vs threshold t)``, or ``""`` without numbers."""
        if self.estimate is None:
            return ""
        return f"{_num(self.estimate)} (bound {_num(self.bound)} vs {self.threshold:g})"

    def markdown(self) -> str:
        if self.outcome == "error":
            detail = (self.statistic or "")[:ERROR_CHARS].replace("|", "/").replace("\n", " ")
        else:
            numbers = f": {self.numbers()}" if self.estimate is not None else ""
            detail = f"{self.statistic}{numbers}" if self.statistic else ""
        note = f" {self.note}" if self.note else ""
        text = f"**{self.outcome}**{note}" + (f" · {detail}" if detail else "")
        if self.absence_shown:
            text += " · effect absent"
        if self.met is not None:
            text += f" · expected {self.expected} {'✓' if self.met else '✗'}"
        return text


def row_labels(cells: Sequence[Cell]) -> dict[tuple[str, str, str], str]:
    """A label per row (claim, test, case), in claim order: ``C1 [absolute]``, or with the test's
    name when its claim has several tests (``C5 structured baseline gap shrinks``)."""
    tests: dict[str, set[str]] = {}
    for cell in cells:
        tests.setdefault(cell.claim, set()).add(cell.test)
    rows = sorted({cell.row for cell in cells}, key=_row_order)
    labels = {}
    for claim, test, case in rows:
        label = claim
        if len(tests[claim]) > 1:
            label += " " + re.sub(r"^test_c\d+_", "", test).replace("_", " ")
        labels[(claim, test, case)] = label + (f" [{case}]" if case else "")
    return labels


def _row_order(row: tuple[str, str, str]) -> tuple[int, str, str, str]:
    claim, test, case = row
    return (claim_order(claim), claim, test, case)


def _grid(cells: Sequence[Cell], subjects: Sequence[str]) -> tuple[dict, list[list[Cell | None]]]:
    labels = row_labels(cells)
    by_key = {(cell.row, cell.subject): cell for cell in cells}
    grid = [[by_key.get((row, subject)) for subject in subjects] for row in labels]
    return labels, grid


def matrix_markdown(cells: Sequence[Cell], subjects: Sequence[str]) -> str:
    """The matrix as a markdown table, one row per claim case, one column per subject."""
    labels, grid = _grid(cells, subjects)
    lines = [
        "# Claims × subjects",
        "",
        "Each cell: the outcome the claim test observed on the subject, its deciding check "
        "(estimate, one-sided 95 % bootstrap bound vs threshold) and, where "
        "`claims/expectations.toml` expects a verdict, whether it was met (✓) or not (✗). "
        "*effect absent*: the effect shown below half the paper's size at 95 %, which is what "
        "a control's expected failure needs, whichever way the direction came out.",
        "",
        "| claim | " + " | ".join(f"`{s}`" for s in subjects) + " |",
        "|---|" + "---|" * len(subjects),
    ]
    for label, row in zip(labels.values(), grid, strict=True):
        texts = [cell.markdown() if cell else "—" for cell in row]
        lines.append(f"| {label} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


FONT = 8.5
"""Points of the heat map's text: 13 px at `synthact.outputs.report.png`'s 110 dpi, readable on a
screen."""


def matrix_figure(cells: Sequence[Cell], subjects: Sequence[str]) -> Figure:
    """A heat map: rows = claim cases, columns = subjects, colour = whether the expected verdict
    was met (`JUDGEMENTS`), text = the observed outcome and its deciding statistic and estimate;
    the title and the legend on top.
    """
    labels, grid = _grid(cells, subjects)
    texts = [[_cell_text(c) if c else "" for c in row] for row in grid]
    lines = max(text.count("\n") + 1 for row in texts for text in row)
    headers = [_wrapped_subject(s) for s in subjects]
    header_lines = max(h.count("\n") + 1 for h in headers)
    height = 0.2 * lines + 0.14
    width = 4.2 + 2.9 * len(subjects)
    top = 1.0 + 0.2 * header_lines  # title, legend and the subjects' names, in inches
    fig = Figure(figsize=(width, top + 0.2 + height * len(labels)))
    ax = fig.subplots()
    codes = [[JUDGEMENTS.index(c.judgement) + 1 if c else 0 for c in row] for row in grid]
    colors = ListedColormap(["white", *JUDGEMENT_COLORS.values()])
    ax.imshow(codes, cmap=colors, vmin=0, vmax=len(JUDGEMENTS), aspect="auto")
    for i, row in enumerate(texts):
        for j, text in enumerate(row):
            ax.text(j, i, text, ha="center", va="center", fontsize=FONT, linespacing=1.15)
    ax.set_xticks(range(len(subjects)), headers, fontsize=FONT + 0.5)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(labels)), list(labels.values()), fontsize=FONT + 0.5)
    ax.set_xticks([x - 0.5 for x in range(1, len(subjects))], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(labels))], minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="both", length=0)
    title = (
        "Claims × subjects: the outcome each claim test observed, its deciding statistic: "
        "estimate (one-sided 95 % bound)"
    )
    fig.suptitle(textwrap.fill(title, int(width * 72 / (FONT + 2) / 0.55)), fontsize=FONT + 2)
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in JUDGEMENT_COLORS.values()]
    names = [f"expected verdict {j}" if j != "not judged" else j for j in JUDGEMENTS]
    below_title = 1 - 0.55 / fig.get_figheight()
    fig.legend(
        handles,
        names,
        loc="upper center",
        bbox_to_anchor=(0.5, below_title),
        ncol=len(JUDGEMENTS),
        fontsize=FONT,
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.85 / fig.get_figheight()))
    return fig


def _cell_text(cell: Cell) -> str:
    """The observed outcome, then the deciding statistic and its numbers, wrapped to a cell."""
    absent = "(effect absent)" if cell.absence_shown else ""
    head = " ".join(part for part in (cell.outcome, cell.note, absent) if part)
    if cell.estimate is None:
        body = textwrap.shorten(cell.statistic or "", 2 * CELL_CHARS, placeholder=" …")
    else:
        estimate, bound = _distinct(cell.estimate, cell.bound)
        body = f"{cell.statistic}: {estimate} (bound {bound})"
    expected = [f"expected: {cell.expected}"] if cell.expected in MEETS else []
    return "\n".join(textwrap.wrap(head, CELL_CHARS) + textwrap.wrap(body, CELL_CHARS) + expected)


SUBJECT_CHARS = 26
"""Characters per line of a subject's name above its column."""


def _wrapped_subject(subject: str) -> str:
    """A subject name in lines of at most `SUBJECT_CHARS`, broken after a ``/`` or ``:`` where
    one is near (a part longer than a line stays whole)."""
    lines = [""]
    for part in re.findall(r"[^/:]*[/:]?", subject):
        if lines[-1] and len(lines[-1]) + len(part) > SUBJECT_CHARS:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def _distinct(estimate: float, bound: float) -> tuple[str, str]:
    """``estimate`` and ``bound`` with 2 significant figures, more where they would read equal
    (up to 6)."""
    for digits in range(2, 7):
        texts = _num(estimate, digits), _num(bound, digits)
        if texts[0] != texts[1]:
            break
    return texts


def _num(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant figures; float noise around 0 shows as 0."""
    return f"{round(x, 9) + 0.0:.{digits}g}"


def write_matrix(cells: Sequence[Cell], subjects: Sequence[str], out_dir: Path) -> list[Path]:
    """Write ``matrix.md`` and ``matrix.png`` into ``out_dir``; returns their paths."""
    if not cells:
        raise ValueError("no claim test outcomes to write a matrix of")
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, figure = out_dir / "matrix.md", out_dir / "matrix.png"
    markdown.write_text(matrix_markdown(cells, subjects))
    figure.write_bytes(png(matrix_figure(cells, subjects)))
    return [markdown, figure]
