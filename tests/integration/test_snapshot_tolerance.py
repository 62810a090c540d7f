"""The snapshot tolerance: hardware noise passes; a changed step size, a dropped latent and another
seed are caught, and a different thread count is not."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from synthact.core.cache import ResultCache
from synthact.judge import stats
from synthact.method import constructions, targets
from synthact.method.config import RunConfig, run_configs
from synthact.method.experiments import Lab
from synthact.outputs import snapshots
from tests.readme import (
    C16_ONLY_SUBJECTS,
    PLATFORMS_SELECTION,
    PLATFORMS_SUBJECTS,
    ROOT,
    readme_test_command,
    readme_test_options,
)
from tests.subprocesses import nested_env

SNAPSHOTS = Path(__file__).resolve().parents[2] / "claims" / "test_snapshots"
SMALL = {"n": 50, "n_gaussian": 400}


def _snapshot(steps: dict[str, np.ndarray]) -> dict:
    """A snapshot of MS steps by type (real first), as `snapshots.take` writes it."""
    out: dict = {"run": {"n": len(steps["real"])}}
    for kind, values in steps.items():
        row = stats.summary_row(values, steps["real"])
        out[kind] = {"ms": {**row, "steps": " ".join(map(str, values))}}
    return out


@pytest.fixture
def base() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"real": rng.integers(20, 60, 100), "random": rng.integers(30, 80, 100)}


def _failed(old: dict, new: dict) -> list[snapshots.Moved]:
    return [m for m in snapshots.compare(old, new) if not m.ok]


@pytest.mark.parametrize(("rows", "by", "caught"), [(2, 1, False), (3, 1, True), (1, 2, True)])
def test_at_most_two_percent_of_rows_move_by_one_step(base, rows, by, caught):
    moved = {**base, "random": base["random"].copy()}
    moved["random"][:rows] += by
    failed = _failed(_snapshot(base), _snapshot(moved))
    assert bool(failed) == caught
    if caught:
        (m,) = failed
        assert (m.kind, m.metric, m.rows_moved, m.largest_move) == ("random", "ms", rows, by)
        text = str(m)
        assert f"{rows} of 100 rows moved" in text and f"by up to {by} step" in text
        assert "mean" in text and "std" in text and "ks" in text


def _tied(snapshot: dict, kind: str, tied: dict[int, list[int]]) -> dict:
    """``snapshot`` with ``tied`` recorded for ``kind``'s MS rows."""
    entry = {**snapshot[kind]["ms"], "tied": snapshots.format_tied(tied)}
    return {**snapshot, kind: {"ms": entry}}


def test_rows_may_move_anywhere_within_their_ties_and_nowhere_else(base):
    """A straight-line curve (planted-null) ties every step: 50 rows moving by 30 steps within
    their ties pass; one more row moving by 2 steps outside them is caught."""
    moved = {**base, "random": base["random"].copy()}
    moved["random"][:50] += 30
    tied = {row: list(range(200)) for row in range(50)}
    old = _tied(_snapshot(base), "random", tied)
    (m,) = [m for m in snapshots.compare(old, _snapshot(moved)) if m.kind == "random"]
    assert m.ok and (m.within_ties, m.rows_moved) == (50, 0) and m.checked == ()
    moved["random"][60] += 2
    (m,) = _failed(old, _snapshot(moved))
    assert (m.rows_moved, m.largest_move, m.within_ties) == (1, 2, 50)
    assert "1 of 100 rows moved" in str(m) and "50 more within their ties" in str(m)


def test_a_tie_recorded_by_either_run_counts(base):
    """The new step in the snapshot's ties, or the snapshot's step in this run's ties."""
    moved = {**base, "random": base["random"].copy()}
    moved["random"][:5] += 3
    old_ties = {row: [int(base["random"][row]), int(base["random"][row]) + 3] for row in range(5)}
    new_ties = {row: [int(base["random"][row]), int(moved["random"][row])] for row in range(5)}
    assert not _failed(_tied(_snapshot(base), "random", old_ties), _snapshot(moved))
    assert not _failed(_snapshot(base), _tied(_snapshot(moved), "random", new_ties))
    assert _failed(_snapshot(base), _snapshot(moved))


def test_ks_is_not_held_where_real_moved_within_its_ties(base):
    moved = {**base, "real": base["real"].copy()}
    moved["real"][:40] += 20
    tied = {row: list(range(100)) for row in range(40)}
    found = snapshots.compare(_tied(_snapshot(base), "real", tied), _snapshot(moved))
    assert all(m.ok for m in found)
    assert {m.kind: m.checked for m in found} == {"real": (), "random": ("mean", "std")}


def test_a_snapshot_of_another_configuration_or_size_is_not_compared(base):
    other = _snapshot(base)
    other["run"] = {"n": 100, "seed": 1}
    with pytest.raises(ValueError, match="another configuration"):
        snapshots.compare(_snapshot(base), other)
    short = _snapshot({k: v[:50] for k, v in base.items()})
    short["run"] = {"n": 100}
    with pytest.raises(ValueError, match="50 rows, the snapshot has 100"):
        snapshots.compare(_snapshot(base), short)


def test_every_committed_snapshot_is_compared_by_the_readme_test_command():
    """A snapshot of another configuration, or of a subject the command does not run, is
    skipped, not compared: this fails first. The configuration is the README command's own;
    `PLATFORMS_SUBJECTS` have theirs compared with ``--platforms`` (which snapshots each run
    selects: the test below)."""
    options = {**readme_test_options(), "device": "cpu"}
    configs = run_configs(options)
    extra = run_configs({**options, "subject": ",".join(PLATFORMS_SUBJECTS)})
    names = {snapshots.file_stem(c.subject): snapshots.run_fields(c) for c in [*configs, *extra]}
    files = sorted(SNAPSHOTS.glob("*.yml"))
    assert files
    for path in files:
        subject = max((s for s in names if path.name.startswith(f"{s}-")), key=len, default=None)
        assert subject is not None, f"{path.name}: no subject of the README's test command"
        changes = snapshots.config_changes(yaml.safe_load(path.read_text())["run"], names[subject])
        assert not changes, f"{path.name} would be skipped: {changes}"


def test_the_c16_only_subjects_are_the_readme_test_command_s_and_have_no_snapshot():
    subjects = readme_test_command()[0]
    for subject in C16_ONLY_SUBJECTS:
        assert subject in subjects, f"{subject}: not a subject of the README's test command"
        assert not list(SNAPSHOTS.glob(f"{subject}-*.yml")), f"{subject} has snapshots"


def _selected_snapshots(subjects: list[str], selection: str) -> set[str]:
    """File stems of the snapshot tests that ``pytest claims -k SELECTION`` collects."""
    command = [sys.executable, "-m", "pytest", "claims", "--collect-only", "-q"]
    command += ["-p", "no:cacheprovider", "--subject", ",".join(subjects), "-k", selection]
    done = subprocess.run(command, cwd=ROOT, env=nested_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ids = re.findall(r"::test_snapshot\[(.+)\]$", done.stdout, flags=re.MULTILINE)
    return {snapshots.file_stem(case) for case in ids}


@pytest.mark.slow
def test_every_committed_snapshot_is_selected_by_default_or_with_platforms():
    """The README's ``-k`` compares each subject's C1 snapshot in absolute steps at least;
    ``--platforms`` (`PLATFORMS_SELECTION`, `PLATFORMS_SUBJECTS`) compares every committed one.
    A selected snapshot test without its file would write one instead of comparing."""
    subjects, selection = readme_test_command()
    files = {path.stem for path in SNAPSHOTS.glob("*.yml")}
    default = _selected_snapshots(subjects, selection)
    everything = _selected_snapshots(
        [*subjects, *PLATFORMS_SUBJECTS], f"({selection}) or ({PLATFORMS_SELECTION})"
    )
    assert default <= files and everything == files, sorted(files ^ everything)
    with_files = {s for s in subjects if any(f.startswith(snapshots.file_stem(s)) for f in files)}
    for subject in with_files:
        stem = snapshots.file_stem(subject, "sensitivity", "absolute")
        assert stem in default, f"{subject}: the README's test command compares no C1 snapshot"


def test_an_option_added_since_the_snapshot_reads_as_its_default():
    fields = snapshots.run_fields(RunConfig(subject="planted", device="cpu"))
    older = {k: v for k, v in fields.items() if k != "tf32"}
    assert snapshots.config_changes(older, fields) == {}
    assert snapshots.config_changes(older, {**fields, "tf32": True}) == {"tf32": "False -> True"}


def _take(lab: Lab, mode: str, kinds: tuple[str, ...]) -> dict:
    result = lab.result("sensitivity", mode)
    return snapshots.take(lab.config, result, result, kinds)


def _lab(tmp_path: Path, **fields) -> Lab:
    config = RunConfig(subject="planted", device="cpu", **{**SMALL, **fields})
    return Lab(config, ResultCache(tmp_path / str(sorted(fields.items()))), progress=False)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    """Snapshots of planted's sensitivity (absolute: real, random, synthetic-baseline) at n = 50."""
    lab = _lab(tmp_path_factory.mktemp("planted"))
    return _take(lab, "absolute", ("real", "random", "synthetic-baseline"))


@pytest.mark.slow
def test_a_one_percent_longer_step_is_caught(planted, tmp_path):
    lab = _lab(tmp_path)
    lab.constants = dataclasses.replace(lab.constants, step=lab.constants.step * 1.01)
    old = {k: planted[k] for k in ("run", "real", "random")}
    failed = _failed(old, _take(lab, "absolute", ("real", "random")))
    assert {m.kind for m in failed} == {"real", "random"}


@pytest.mark.slow
def test_one_latent_dropped_from_each_synthetic_target_is_caught(planted, tmp_path, monkeypatch):
    def without_smallest(sae, latents, **kwargs):
        """The synthetic latents ``[B, d_sae]`` less each row's smallest active latent."""
        active = torch.where(latents > 0, latents, torch.inf)
        dropped = latents.scatter(1, active.argmin(dim=1, keepdim=True), 0.0)
        return decode(sae, dropped, **kwargs)

    decode = targets.decode
    monkeypatch.setattr(constructions, "decode", without_smallest)
    new = _take(_lab(tmp_path), "absolute", ("real", "random", "synthetic-baseline"))
    assert {m.kind for m in _failed(planted, new)} == {"synthetic-baseline"}


@pytest.mark.slow
def test_another_seed_is_caught(planted, tmp_path):
    new = _take(_lab(tmp_path, seed=1), "absolute", ("real", "random", "synthetic-baseline"))
    assert {m.kind for m in _failed(planted, {**new, "run": planted["run"]})} == {
        "real",
        "random",
        "synthetic-baseline",
    }


@pytest.mark.slow
def test_another_thread_count_is_not_caught(planted, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        new = _take(_lab(tmp_path), "absolute", ("real", "random", "synthetic-baseline"))
    finally:
        torch.set_num_threads(threads)
    assert snapshots.compare(planted, new) and not _failed(planted, new)


@pytest.mark.slow
def test_the_committed_planted_snapshot_catches_a_one_percent_longer_step(tmp_path):
    """End to end: the README run's planted snapshot against that run with a 1 % longer step."""
    stored = yaml.safe_load((SNAPSHOTS / "planted-sensitivity-absolute.yml").read_text())
    config = RunConfig(subject="planted", device="cpu", **stored["run"])
    lab = Lab(config, ResultCache(tmp_path), progress=False)
    lab.constants = dataclasses.replace(lab.constants, step=lab.constants.step * 1.01)
    old = {k: stored[k] for k in ("run", "real", "random")}
    failed = _failed(old, _take(lab, "absolute", ("real", "random")))
    assert {m.kind for m in failed} == {"real", "random"}


def _readme_subjects() -> list:
    """The README test command's subjects with snapshots (not `C16_ONLY_SUBJECTS`): planted-null
    (every MS row tied) by default, the others with ``--platforms`` (planted's committed snapshot
    is checked by default above)."""
    subjects = [
        s for s in (*readme_test_command()[0], *PLATFORMS_SUBJECTS) if s not in C16_ONLY_SUBJECTS
    ]
    marks = {s: () if s == "planted-null" else (pytest.mark.platforms,) for s in subjects}
    return [pytest.param(s, marks=marks[s], id=s) for s in subjects]


@pytest.mark.slow
@pytest.mark.parametrize("subject", _readme_subjects())
def test_a_one_percent_longer_step_is_caught_on_every_subject(subject, tmp_path):
    """Against the committed snapshots of the README's run: on planted-null every MS row is
    tied, and the AP steps of the plateau paths catch it."""
    config = RunConfig(subject=subject, device="cpu", n=100, n_gaussian=4000)
    lab = Lab(config, ResultCache(tmp_path), progress=False)
    lab.constants = dataclasses.replace(lab.constants, step=lab.constants.step * 1.01)
    caught = []
    for experiment, mode in (("sensitivity", "absolute"), ("plateau", "absolute")):
        name = snapshots.file_stem(subject, experiment, mode)
        stored = yaml.safe_load((SNAPSHOTS / f"{name}.yml").read_text())
        kinds = tuple(k for k in ("real", "random") if k in stored)  # C15-only: no random
        old = {k: stored[k] for k in ("run", *kinds)}
        result = lab.result(experiment, mode)
        reference = result if experiment == "sensitivity" else lab.result("sensitivity", mode)
        new = snapshots.take(config, result, reference, kinds)
        caught += [f"{experiment} {m}" for m in _failed(old, new)]
    assert caught, f"{subject}: a 1 % longer step moved no step beyond the tolerance"
