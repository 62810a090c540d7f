"""The command line: subject listing, folders per subject, and the claims run behind the matrix."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from synthact import cli, coverage


def test_subjects_lists_names_and_a_release_s_ids(capsys: pytest.CaptureFixture) -> None:
    cli.main(["subjects"])
    listing = capsys.readouterr().out
    assert "null-gpt2" in listing and "RELEASE/SAE_ID" in listing
    cli.main(["subjects", "gpt2-small-res-jb"])
    assert "gpt2-small-res-jb/blocks.6.hook_resid_pre" in capsys.readouterr().out.splitlines()


def test_subjects_coverage_prints_the_directory_s_paths(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [coverage.ModelCoverage("some-model", 7, 2, "fast", "", coverage.TRANSFORMER_LENS)]
    monkeypatch.setattr(coverage, "directory_coverage", lambda: rows)
    cli.main(["subjects", "--coverage"])
    assert capsys.readouterr().out == coverage.coverage_report(rows) + "\n"
    with pytest.raises(SystemExit, match="--coverage counts every release"):
        cli.main(["subjects", "gpt2-small-res-jb", "--coverage"])


def test_bad_release_is_a_one_line_error() -> None:
    with pytest.raises(SystemExit, match="synthact: unknown SAELens release 'gpt2-small-res'"):
        cli.main(["subjects", "gpt2-small-res"])
    with pytest.raises(SystemExit, match=r"has no SAE id 'blocks\.99\.hook_resid_pre'"):
        cli.main(["replicate", "--subject", "planted,gpt2-small-res-jb/blocks.99.hook_resid_pre"])


@pytest.mark.parametrize(
    ("subject", "folder"),
    [
        ("gpt2-small", "gpt2-small"),
        (
            "null:gpt2-small-res-jb/blocks.6.hook_resid_pre",
            "null_gpt2-small-res-jb_blocks.6.hook_resid_pre",
        ),
    ],
)
def test_one_folder_per_subject(subject: str, folder: str) -> None:
    assert cli._folder(subject) == folder


def test_matrix_runs_the_claims_with_the_run_s_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = []

    def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        calls.append((command, kwargs))
        return subprocess.CompletedProcess(command, 1)  # 1: some claims failed; still a matrix

    monkeypatch.setattr(subprocess, "run", run)
    words = ["replicate", "--subject", "planted,planted-null", "--n", "50", "--prompt-len", "12"]
    words += ["--synthact-cache", str(tmp_path / "c"), "--matrix-dir", str(tmp_path / "out")]
    args = cli.parser().parse_args(words)
    cli._claims_matrix(args)
    ((command, kwargs),) = calls
    assert command[1:4] == ["-m", "pytest", "claims"] and kwargs["cwd"] == cli.CHECKOUT
    options = {
        option: value
        for option, value in itertools.pairwise(command)
        if option.startswith("--") and "=" not in option
    }
    assert options["--subject"] == "planted,planted-null"
    assert (options["--n"], options["--prompt-len"]) == ("50", "12")
    assert options["--matrix-dir"] == str(tmp_path / "out")
    assert options["--synthact-cache"] == str(tmp_path / "c")
    assert options["--alluredir"] == str(tmp_path / "out" / "allure-results")
    monkeypatch.setattr(subprocess, "run", lambda c, **k: subprocess.CompletedProcess(c, 4))
    with pytest.raises(RuntimeError, match="did not run"):
        cli._claims_matrix(args)
