"""Reports and the command line, end to end on a small planted run."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from synthact.core.cache import ResultCache
from synthact.method import metrics
from synthact.method.config import RunConfig
from synthact.method.experiments import Lab
from synthact.outputs import report
from synthact.runs.cli import main

SMALL = {"n": 20, "n_gaussian": 600, "n_latent_stats": 100, "device": "cpu"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    cache = ResultCache(tmp_path_factory.mktemp("cache"))
    return Lab(RunConfig("planted", **SMALL), cache, progress=False)


def test_summary_csv_puts_ours_beside_the_paper():
    steps = {"real": np.array([1, 2, 3, 4]), "random": np.array([3, 4, 5, 6])}
    lines = report.summary_csv(steps, report.paper_rows("1", "absolute")).splitlines()
    assert lines[0] == "type,n,mean,std,ks,paper_mean,paper_std,paper_ks"
    assert lines[2].startswith("random,4,4.50,") and lines[2].endswith(",52.49,10.21,0.45")


def test_agreement_flags_numbers_outside_the_tolerance():
    rng = np.random.default_rng(0)
    paper = report.paper_rows("1", "absolute")
    steps = {kind: rng.normal(mean, std, 1000).round() for kind, (mean, std, _) in paper.items()}
    steps["random"] = rng.normal(70, 10, 1000).round()
    rows = {(r.kind, r.quantity): r for r in report.agreement(steps, paper)}
    assert rows[("real", "mean")].ok and rows[("real", "std")].ok
    assert not rows[("random", "mean")].ok
    assert ("real", "ks") not in rows


def test_agreement_of_a_constant_sample_is_defined():
    paper = report.paper_rows("1", "absolute")
    steps = {kind: np.full(100, 5) for kind in paper}
    rows = report.agreement(steps, paper)
    assert all(np.isfinite(r.tolerance) for r in rows)
    assert not any(r.ok for r in rows if r.quantity == "mean")


def test_experiments_do_not_depend_on_the_thread_count(tmp_path):
    """The same seed gives bit-identical curves with 1 and 2 torch threads (-n 4 vs -n 1)."""
    results, before = [], torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            fresh = Lab(RunConfig("planted", **SMALL), ResultCache(tmp_path / str(threads)))
            sensitivity, plateau = fresh.result("sensitivity", "relative"), fresh.result("plateau")
            results.append([sensitivity.arrays, plateau.arrays])
    finally:
        torch.set_num_threads(before)
    for one_thread, two_threads in zip(*results, strict=True):
        assert one_thread.keys() == two_threads.keys()
        for key in one_thread:
            np.testing.assert_array_equal(one_thread[key], two_threads[key], err_msg=key)


def test_cli_lists_subjects(capsys):
    main(["subjects"])
    out = capsys.readouterr().out
    assert "gpt2-small" in out and "null-gpt2" in out and "planted" in out


def test_cli_rejects_an_unknown_subject():
    run = subprocess.run(
        [sys.executable, "-m", "synthact.runs.cli", "replicate", "--subject", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "unknown subject" in run.stderr.lower() and "gpt2-small" in run.stderr


def test_a_table_is_compared_only_with_a_run_of_its_variant():
    assert report.run_mismatch("A.1", RunConfig("planted")) is None
    reason = report.run_mismatch("A.1", RunConfig("planted", grid="text"))
    assert reason == "table A.1 was printed by a run with grid 'code' (this run: 'text')"
    assert "latent_moves 'in-place'" in report.run_mismatch(
        "1", RunConfig("planted", latent_moves="distinct")
    )
    assert report.run_mismatch("D.1", RunConfig("planted", latent_moves="distinct")) is None


def test_the_ap_table_reads_the_towards_a_plateau_run(lab):
    assert report.table_result(lab, "AP", "absolute").experiment == "plateau-towards-base"
    assert lab.result("plateau").experiment == "plateau"  # the paper's experiment, for C11


def _steps(top: int, size: int = 200) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        kind: rng.integers(0, top + 1, size) for kind in ("real", "random", "synthetic-baseline")
    }


def _notes(fig) -> list[str]:
    return [text.get_text() for text in fig.texts if text is not fig._suptitle]


def test_step_figures_show_the_steps_that_occur_as_outlines():
    fig = report.step_figure(_steps(40), title="Figure 3", xlabel="AP", metric="ap")
    hist, cdf = fig.axes
    assert 40 < hist.get_xlim()[1] <= 45 and cdf.get_xlim() == hist.get_xlim()
    assert hist.patches and not any(patch.get_fill() for patch in hist.patches)
    assert not _notes(fig)  # no value at the cap, nothing to explain


def test_a_step_figure_names_its_metric_s_cap_where_it_occurs():
    steps = _steps(40) | {"random": np.full(200, metrics.AP_NEVER)}
    fig = report.step_figure(steps, title="Figure 3", xlabel="AP", metric="ap")
    assert _notes(fig) == ["AP = 100: the AP threshold never reached on the path"]


def test_histograms_of_every_subject_share_their_bin_width():
    narrow, wide = (report.step_figure(_steps(top), title="t", xlabel="MS") for top in (12, 90))
    titles = [fig.axes[0].get_title() for fig in (narrow, wide)]
    assert titles == [f"histogram (bins of {report.BIN_WIDTH})"] * 2


def test_figure_1_has_l2_and_kl_panels_with_the_ms_steps_as_dots():
    curves = np.cumsum(np.random.default_rng(0).random((2, 12, 100)), axis=2)
    by_signal = {s: {"real": curves[0], "random": curves[1]} for s in report.SIGNALS}
    steps = {s: {k: np.full(12, 50) for k in ("real", "random")} for s in report.SIGNALS}
    fig = report.curves_figure(by_signal, steps, title="Figure 1 on planted (n = 12)")
    l2, kl = fig.axes
    assert (l2.get_ylabel(), kl.get_ylabel()) == ("L2 distance", "KL divergence")
    dots = [line for line in kl.lines if line.get_marker() == "o" and len(line.get_xdata())]
    assert len(dots) == 2 and all(list(line.get_xdata()) == [50] * 10 for line in dots)
    legend = [t.get_text() for t in l2.get_legend().get_texts()]
    assert "model-generated (real): mean of 12; 10 thin lines" in legend


def test_the_appendix_e_figure_has_a_title_and_whole_l0_ticks():
    rng = np.random.default_rng(0)
    latent_stats = SimpleNamespace(
        l0=rng.integers(1, 7, 300),
        norm_share=rng.dirichlet(np.ones(6), 300),
        pairwise_cos=rng.uniform(-0.2, 0.4, 300),
        top_cos=rng.uniform(0, 0.5, 300),
    )
    fig = report.latent_figure(SimpleNamespace(stats=latent_stats))
    assert fig._suptitle.get_text().startswith("Appendix E: SAE latents of 300 real activations")
    l0 = fig.axes[0]
    ticks = [t for t in l0.get_xticks() if l0.get_xlim()[0] <= t <= l0.get_xlim()[1]]
    assert len(ticks) >= 3 and all(float(t).is_integer() for t in ticks), ticks


def test_a_report_folder_is_replaced_whole_or_not_at_all(lab, tmp_path, monkeypatch):
    out = tmp_path / "planted"
    out.mkdir()
    (out / "tables.md").write_text("the previous run's")

    def stopped(lab):
        raise RuntimeError("stopped after the figures")

    monkeypatch.setattr(report, "_construction_source_section", stopped)
    with pytest.raises(RuntimeError, match="stopped after the figures"):
        report.replicate(lab, out)
    assert [p.name for p in tmp_path.iterdir()] == ["planted"]
    assert [p.name for p in out.iterdir()] == ["tables.md"]
    assert (out / "tables.md").read_text() == "the previous run's"
    monkeypatch.undo()
    written = report.replicate(lab, out)
    assert [p.name for p in tmp_path.iterdir()] == ["planted"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    tables = (out / "tables.md").read_text()
    assert tables.startswith("# Replication on planted")
    joined = report.type_label("synthetic-cooccurrence")  # not the paper's, joins sensitivity
    sections = tables.split("\n## ")
    sensitivity = [
        s for s in sections if s.startswith(("Table 1", "Table A.1", "Table B", "Table C"))
    ]
    assert len(sensitivity) == 9 and all(f"| {joined} |" in s for s in sensitivity)


def test_importing_and_drawing_leave_matplotlib_s_backend_alone():
    """The figures draw through matplotlib's object API: a session's pyplot backend stays."""
    script = """
import matplotlib
matplotlib.use("svg")
import numpy as np
from synthact.judge import hypotheses
from synthact.outputs import leaderboard, matrix, report
report.png(report.step_figure({"real": np.array([1, 2, 3])}, title="t", xlabel="MS"))
print(matplotlib.get_backend())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "svg", done.stderr[-2000:]
