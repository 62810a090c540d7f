"""The claims × subjects matrix: cells, files, the pytest plugin, and one session under xdist."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from synthact.fixtures.verdicts import Outcome
from synthact.judge.policy import Observation
from synthact.outputs.matrix import (
    JUDGEMENTS,
    Cell,
    matrix_figure,
    matrix_markdown,
    row_labels,
    write_matrix,
)
from tests.subprocesses import nested_env, session_cache

REPO_ROOT = Path(__file__).resolve().parents[3]
WHERE = {"claim": "C1", "test": "test_c01_real", "subject": "planted", "case": "absolute"}
OBSERVED = {
    "outcome": "does not hold",
    "statistic": "mean MS(real) < mean MS(random)",
    "estimate": 1.5,
    "bound": 3.25,
    "threshold": 0.0,
}


def cell(subject: str = "planted", **changes: object) -> Cell:
    return Cell(**{**WHERE, "subject": subject, "outcome": "holds", **changes})


def test_cell_rejects_unknown_outcomes() -> None:
    with pytest.raises(ValueError, match="outcome must be one of"):
        cell(outcome="passed")


@pytest.mark.parametrize(
    ("expected", "outcome", "met"),
    [
        ("holds", "holds", True),
        ("holds", "does not hold", False),
        ("fails", "holds", False),
        ("fails", "does not hold", False),
        ("not judged", "holds", None),
        ("holds", "underpowered", None),
        ("holds", "effect too small", None),
        (None, "error", None),
    ],
)
def test_expected_verdict_met(expected: str | None, outcome: str, met: bool | None) -> None:
    assert cell(expected=expected, outcome=outcome).met is met


def test_rows_follow_claim_numbers_and_name_tests_only_when_a_claim_has_several() -> None:
    cells = [
        cell(claim="C10", test="test_c10_x", case="relative"),
        cell(claim="C5", test="test_c05_real_blowups_mid_path", case=""),
        cell(claim="C5", test="test_c05_gap_shrinks", case=""),
        cell(claim="C1", case="relative"),
        cell(claim="C1", case="absolute", subject="other"),
    ]
    assert list(row_labels(cells).values()) == [
        "C1 [absolute]",
        "C1 [relative]",
        "C5 gap shrinks",
        "C5 real blowups mid path",
        "C10 [relative]",
    ]


def test_markdown_shows_outcome_statistic_bound_and_expectation() -> None:
    cells = [
        cell(**OBSERVED, expected="fails", absence_shown=True),
        cell("null", outcome="error", statistic="RuntimeError: no | model\nhere"),
    ]
    text = matrix_markdown(cells, ["planted", "null", "absent"])
    assert "| claim | `planted` | `null` | `absent` |" in text
    row = next(line for line in text.splitlines() if line.startswith("| C1 [absolute]"))
    assert "**does not hold** · mean MS(real) < mean MS(random): 1.5 (bound 3.25 vs 0)" in row
    assert "expected fails ✓" in row
    assert "**error** · RuntimeError: no / model here" in row
    assert row.endswith("| — |")


def test_write_matrix_writes_markdown_and_png(tmp_path: Path) -> None:
    paths = write_matrix([cell(**OBSERVED, expected="fails")], ["planted"], tmp_path / "out")
    assert [p.name for p in paths] == ["matrix.md", "matrix.png"]
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no claim test outcomes"):
        write_matrix([], ["planted"], tmp_path)


def outcome(observed: Observation | None, crash: str = "") -> Outcome:
    return Outcome(
        **WHERE, expected="fails", observed=observed, pytest_outcome="failed", crash=crash
    )


def test_a_cell_without_a_verdict_is_an_error() -> None:
    """Verdicts always record an observation: a test that ends without one crashed."""
    found = outcome(None, crash="RuntimeError: offline").cell()
    assert (found.outcome, found.statistic, found.expected) == (
        "error",
        "RuntimeError: offline",
        "fails",
    )
    assert not found.met


def test_an_expected_failure_is_met_only_with_the_effect_absent() -> None:
    shown = outcome(Observation(**OBSERVED, absence_shown=True)).cell()
    assert shown == Cell(**WHERE, **OBSERVED, expected="fails", absence_shown=True)
    assert shown.met
    assert not outcome(Observation(**OBSERVED, absence_shown=False)).cell().met
    tiny = cell(expected="fails", outcome="holds", absence_shown=True)
    assert tiny.met  # the direction alone, far below the paper's size, is still a control's failure
    assert "**holds**" in tiny.markdown() and "effect absent · expected fails ✓" in tiny.markdown()


@pytest.mark.slow
def test_session_under_xdist_writes_one_matrix_on_the_controller(request, tmp_path: Path) -> None:
    """Two subjects, two workers: every cell reaches the controller, which alone writes, and
    writes the constructions leaderboard beside it, into the files and Allure.

    At the README's n, in the test run's cache (nothing recomputed when the claims ran first):
    planted-null's MS steps are float rounding (straight curves, every slope tied), and below
    n = 100 its C1 absence is not shown on every CPU kernel (n = 50 under MKL_CBWR=COMPATIBLE:
    inconclusive)."""
    cache = session_cache(request.config)
    command = [
        *(sys.executable, "-m", "pytest", "claims/test_c01_real_vs_random.py", "-p"),
        *("no:cacheprovider", "-q", "-n", "2", "--subject", "planted,planted-null"),
        *("--n", "100", "--n-gaussian", "4000", "--matrix-dir", str(tmp_path / "out")),
        *("--alluredir", str(tmp_path / "allure"), f"--synthact-cache={cache}"),
    ]
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=nested_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("claims × subjects matrix:") == 1
    text = (tmp_path / "out" / "matrix.md").read_text()
    assert "| claim | `planted` | `planted-null` |" in text
    for mode in ("absolute", "relative"):
        row = next(line for line in text.splitlines() if line.startswith(f"| C1 [{mode}]"))
        assert row.count("expected holds ✓") == 1 and row.count("expected fails ✓") == 1
    assert done.stdout.count("constructions leaderboard:") == 1
    board = (tmp_path / "out" / "constructions.md").read_text()
    header = "| rank | type | MS absolute | MS relative | KL-MS |"  # C1's; AP where cached
    assert board.count(header) == 2, board
    results = [json.loads(p.read_text()) for p in (tmp_path / "allure").glob("*-result.json")]
    boards = [r for r in results if r["name"].startswith("Leaderboard of constructions")]
    assert sorted(r["name"].rpartition(" ")[2] for r in boards) == ["planted", "planted-null"]
    assert all(len(r["attachments"]) == 2 and r["status"] == "skipped" for r in boards)


def test_the_heat_map_colours_the_expectation_and_fits_every_word() -> None:
    """Colour: expected verdict met, not met, not judged; text: the whole observed outcome and
    the deciding statistic, inside its cell; legend and title inside the figure."""
    long = "null:gpt2-small-res-jb/blocks.6.hook_resid_pre"
    cells = [
        cell(**OBSERVED, expected="fails", absence_shown=True),
        cell(long, **OBSERVED, expected="holds"),
        cell(
            claim="C5",
            test="test_c05_x",
            outcome="underpowered",
            statistic="median MS(real) in [20, 80]",
            estimate=12.0,
            bound=8.0,
            threshold=20.0,
            expected="holds",
            note="at n = 30: needs n >= 100",
        ),
        cell(
            long,
            claim="C5",
            test="test_c05_x",
            outcome="error",
            statistic="RuntimeError: the engine crashed " * 4,
            expected="not judged",
        ),
    ]
    fig = matrix_figure(cells, ["planted", long])
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    (ax,) = fig.axes
    codes = ax.images[0].get_array()
    judged = [JUDGEMENTS[codes[i, j] - 1] for i, j in ((0, 0), (0, 1), (1, 0), (1, 1))]
    assert judged == ["met", "not met", "not judged", "not met"]
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    assert "does not hold" in texts[0, 0].get_text() and "mean MS(real)" in texts[0, 0].get_text()
    assert texts[1, 0].get_text().startswith("underpowered at n = 30")
    for (i, j), text in texts.items():
        (x0, y0), (x1, y1) = ax.transData.transform([(j - 0.5, i + 0.5), (j + 0.5, i - 0.5)])
        box = text.get_window_extent(renderer)
        assert x0 <= box.x0 and box.x1 <= x1 and y0 <= box.y0 and box.y1 <= y1, text.get_text()
    page = fig.bbox
    for artist in (*fig.legends, fig._suptitle, *ax.get_xticklabels(), *ax.get_yticklabels()):
        box = artist.get_window_extent(renderer)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["expected verdict met", "expected verdict not met", "not judged"]


def test_the_heat_map_reads_on_a_screen() -> None:
    """Text of 12 px or more, the legend above the first row, a long ``path:`` subject in at
    most 3 lines, and an estimate and bound that round alike shown with the digits that differ."""
    subject = "path:/home/user/my-sae-folder/checkpoints/final"
    close = {**OBSERVED, "estimate": -0.2312, "bound": -0.2298}
    cells = [cell(subject, **close), *(cell(claim=f"C{i}") for i in range(2, 30))]
    fig = matrix_figure(cells, [subject, "planted"])
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    (ax,) = fig.axes
    texts = [*ax.texts, *ax.get_xticklabels(), *ax.get_yticklabels(), fig._suptitle]
    texts += fig.legends[0].get_texts()
    dpi = 110  # synthact.outputs.report.png's
    assert min(t.get_fontsize() for t in texts) * dpi / 72 >= 12
    assert fig.legends[0].get_window_extent(renderer).y0 > ax.get_window_extent(renderer).y1
    assert ax.get_xticklabels()[0].get_text().count("\n") <= 2
    assert "-0.231 (bound -0.23)" in ax.texts[0].get_text().replace("\n", " ")
