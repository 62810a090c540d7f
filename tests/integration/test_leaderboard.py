"""The constructions leaderboard: KS intervals, the floor and ceiling, ranking, files, and that it
reads the cache without computing."""

from __future__ import annotations

import numpy as np
import pytest

from synthact.core.cache import ResultCache
from synthact.method.config import RunConfig
from synthact.method.experiments import Lab
from synthact.outputs import leaderboard
from synthact.outputs.leaderboard import (
    Interval,
    Row,
    ks_interval,
    split_half_interval,
    subject_rows,
)

REAL = np.array([0] * 50 + [1] * 50)
KINDS = ["random", "synthetic-baseline", "synthetic-structured", "synthetic-cooccurrence"]


def _steps() -> dict[str, dict[str, np.ndarray]]:
    """Real half 0s, half 1s; baseline a quarter 1s (KS 0.25); structured all 1s (KS 0.5);
    random all 9s (KS 1); co-occurrence not computed."""
    quarter = np.array([0] * 75 + [1] * 25)
    ms = {"real": REAL, "random": np.full(100, 9), "synthetic-baseline": quarter}
    ms["synthetic-structured"] = np.ones(100, dtype=int)
    ap = {"real": REAL, "random": np.full(100, 9), "synthetic-baseline": REAL}
    return {"MS absolute": ms, "AP": ap}


def test_ks_interval_holds_the_hand_computed_ks():
    interval = ks_interval(np.ones(100, dtype=int), REAL)
    assert interval.estimate == pytest.approx(0.5)
    assert 0 <= interval.low < 0.5 < interval.high <= 1
    assert ks_interval(np.ones(100, dtype=int), REAL) == interval  # seeded


def test_identical_samples_have_ks_zero_and_a_constant_sample_a_zero_floor():
    """Up to the bound's continuity correction of half a count."""
    assert ks_interval(REAL, REAL) == Interval(0.0, 0.0, 0.5 / REAL.size)
    assert split_half_interval(np.full(11, 3)) == Interval(0.0, 0.0, 0.5 / 5)


def test_the_split_half_floor_compares_disjoint_halves():
    """Two halves of a sample of distinct values: each ECDF steps at its own values, KS > 0."""
    floor = split_half_interval(np.arange(100))
    assert 0 < floor.estimate < 0.5 and floor.low <= floor.estimate <= floor.high


def test_only_types_with_every_column_are_ranked_the_others_follow_unranked():
    """Structured's MS alone (0.5) is below random's mean (1) but ranks nothing: it has no AP."""
    rows = subject_rows("toy", _steps(), KINDS)
    assert [row.kind for row in rows] == [
        "real",
        "synthetic-baseline",  # (0.25 + 0) / 2
        "random",  # 1
        "synthetic-structured",  # MS only: unranked
        "synthetic-cooccurrence",  # nothing computed: unranked
    ]
    assert [row.kind for row in leaderboard.ranked(rows)] == ["synthetic-baseline", "random"]
    assert [row.role for row in rows] == ["floor", "", "ceiling", "", ""]
    baseline = rows[1]
    assert baseline.cells["MS absolute"].estimate == pytest.approx(0.25)
    assert baseline.score == pytest.approx(0.125)
    assert "AP" not in rows[3].cells and rows[-1].score is None


def test_a_column_without_real_steps_is_left_out():
    steps = {"MS absolute": {"random": np.zeros(10)}}
    assert all(not row.cells for row in subject_rows("toy", steps, ["random"]))


def test_a_subject_without_any_column_reads_as_dashes():
    """A run that computed no step experiment on a subject (only C16's ablations) has a floor
    with no score: a dash, not a crash."""
    text = leaderboard.subject_markdown(subject_rows("toy", {}, ["random"]))
    floor = next(line for line in text.splitlines() if line.startswith("| floor"))
    assert floor.endswith("| — |")


def test_the_markdown_ranks_and_dashes_missing_columns():
    text = leaderboard.leaderboard_markdown(subject_rows("toy", _steps(), KINDS))
    lines = text.splitlines()
    assert "| rank | type | MS absolute | AP | mean KS |" in lines
    structured = next(line for line in lines if line.startswith("| ") and "structured" in line)
    assert structured.startswith("|  |") and structured.endswith("| — | — |")
    assert next(line for line in lines if "(ceiling)" in line).startswith("| 2 | random")
    assert any(line.startswith("| floor | real, split halves |") for line in lines)
    unranked = next(line for line in lines if line.startswith("Not ranked"))
    assert "synthetic-structured, synthetic-cooccurrence." in unranked


def test_write_leaderboard_writes_the_table_and_figure(tmp_path):
    rows = subject_rows("a", _steps(), KINDS) + subject_rows("b", _steps(), ["random"])
    markdown, figure = leaderboard.write_leaderboard(rows, tmp_path / "out")
    assert markdown.read_text().count("\n## `") == 2
    assert figure.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="no computed steps"):
        leaderboard.write_leaderboard([Row("a", "real")], tmp_path)


def test_the_figure_draws_no_missing_value_and_explains_its_marks():
    fig = leaderboard.leaderboard_figure(subject_rows("toy", _steps(), KINDS))
    assert not [t for ax in fig.axes for t in ax.texts]  # a "—" is no data point
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "split-half floor" in legend and "ceiling" in legend
    assert "types top-down by their mean" in fig._suptitle.get_text()
    names = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert names[-1].endswith("(unranked)") and not names[0].endswith("(unranked)")


def test_a_lab_gives_rows_of_what_its_cache_holds_and_computes_nothing(tmp_path, monkeypatch):
    config = RunConfig(subject="planted", n=8, n_gaussian=200)
    computing = Lab(config, ResultCache(tmp_path), progress=False)
    result = computing.result("sensitivity", "absolute")
    for kind in ("real", "random", "synthetic-baseline"):
        result.curves(kind)

    def no_compute(*args, **kwargs):
        raise AssertionError("the leaderboard computed curves")

    monkeypatch.setattr(Lab, "_run", no_compute)
    reading = Lab(config, ResultCache(tmp_path), progress=False)
    rows = {row.kind: row for row in leaderboard.lab_rows(reading)}
    assert set(rows["synthetic-baseline"].cells) == {"MS absolute", "KL-MS"}
    assert set(rows["real"].cells) == {"MS absolute", "KL-MS"}
    assert not rows["synthetic-structured"].cells
    assert "subject" not in vars(reading)  # the model never loaded
