"""The command line: subject listing, folders per subject, and the claims run behind the matrix."""

from __future__ import annotations

import errno
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthact import __version__
from synthact.build import coverage
from synthact.runs import cli
from tests.subprocesses import nested_env


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
    assert "--coverage counts every release" in usage_error(
        ["subjects", "gpt2-small-res-jb", "--coverage"], capsys
    )


def test_bad_release_is_a_one_line_error(capsys: pytest.CaptureFixture) -> None:
    assert usage_error(["subjects", "gpt2-small-res"], capsys).startswith(
        "synthact: unknown SAELens release 'gpt2-small-res'"
    )
    words = ["replicate", "--subject", "planted,gpt2-small-res-jb/blocks.99.hook_resid_pre"]
    assert "has no SAE id 'blocks.99.hook_resid_pre'" in usage_error(words, capsys)


@pytest.mark.parametrize(
    "words",
    [
        ["--subject", "gpt2-small-res-jb/blocks.99.hook_resid_pre"],
        ["--subject", "no-such-release/x"],
        ["--subject", "planted", "--device", "cpu", "--tf32"],
    ],
    ids=["sae-id", "release", "tf32"],
)
def test_refusals_import_neither_saelens_nor_torch(words: list[str]) -> None:
    """A bad release, SAE id or ``--tf32`` off CUDA is refused from SAELens' directory file and
    the options alone: neither library (seconds to import) is loaded first."""
    code = (
        "import sys\n"
        "from synthact.runs import cli\n"
        "try:\n"
        f"    cli.main(['replicate', *{words!r}])\n"
        "except SystemExit as stop:\n"
        "    print(stop.code, *sorted({'sae_lens', 'torch'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=nested_env(), timeout=60
    )
    assert done.stdout.split() == ["2"], done.stdout + done.stderr


def usage_error(words: list[str], capsys: pytest.CaptureFixture) -> str:
    """The one line ``synthact WORDS`` prints before it exits with status 2."""
    with pytest.raises(SystemExit) as stop:
        cli.main(words)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1, err
    return err.strip()


def _read_only(path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``path`` as on a read-only mount: creating a file there fails with EROFS."""
    import tempfile

    real = tempfile.TemporaryFile

    def temporary_file(*args: object, dir: object = None, **kwargs: object) -> object:
        if dir is not None and Path(dir).is_relative_to(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", temporary_file)
    return path / "out"


@pytest.mark.parametrize("option", ["--matrix-dir", "--synthact-cache"])
@pytest.mark.parametrize("where", ["read-only", "under a file", "proc"])
def test_an_unwritable_output_folder_stops_before_any_compute(
    option: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    (tmp_path / "file").write_text("")
    path = {
        "read-only": _read_only(tmp_path / "ro", monkeypatch),
        "under a file": tmp_path / "file" / "out",
        "proc": Path("/proc/x"),
    }[where]
    monkeypatch.setattr("synthact.outputs.report.replicate", _must_not_compute)
    words = ["replicate", "--subject", "planted", option, str(path)]
    line = usage_error(words, capsys)
    why = {"read-only": "Read-only file system", "under a file": "is a file", "proc": "/proc"}
    checked = path / "results" if option == "--synthact-cache" else path
    assert line.startswith(f"synthact: {option} {checked}: ") and why[where] in line, line


def _must_not_compute(*args: object) -> None:
    raise AssertionError("computed before checking the options")


@pytest.mark.parametrize("subject", ["", ","])
def test_a_subject_list_naming_none_is_one_usage_error(subject: str, capsys) -> None:
    assert "names no subject" in usage_error(["replicate", "--subject", subject], capsys)


FAKE_CLAIMS = """
import pytest

def test_c01_holds():
    pass

def test_c02_crashes():
    raise RuntimeError("the engine crashed")

@pytest.fixture
def broken():
    raise OSError("no such subject")

def test_c03_errors(broken):
    pass

@pytest.mark.xfail(strict=True)
def test_c04_fails_as_expected():
    assert False

@pytest.mark.xfail(strict=True)
def test_c05_passes_where_it_must_fail():
    pass
"""


def test_failed_or_errored_claim_tests_fail_the_command_naming_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    """The claim tests stand in for a file of passing, failing, erroring, expected-to-fail and
    strict-xpassing tests; pytest writes the report the command reads."""
    (tmp_path / "test_claims.py").write_text(FAKE_CLAIMS)
    real_run = subprocess.run

    def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        junit = command[command.index("--junitxml") + 1]
        fake = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist"]
        fake += ["-p", "no:allure_pytest", "-q", str(tmp_path), "--junitxml", junit]
        fake += ["-c", os.devnull, "--rootdir", str(tmp_path)]
        return real_run(fake, capture_output=True, check=False)

    monkeypatch.setattr(subprocess, "run", run)
    args = cli.parser().parse_args(["replicate", "--matrix-dir", str(tmp_path / "out")])
    assert cli._claims_matrix(args) == 1
    err = capsys.readouterr().err
    assert "3 claim test(s) failed or errored" in err, err
    for name in (
        "test_c02_crashes (failed): RuntimeError: the engine crashed",
        "test_c03_errors (error)",
        "test_c05_passes_where_it_must_fail (failed)",
    ):
        assert name in err, err
    assert "test_c01" not in err and "test_c04" not in err


def test_exit_codes_are_documented_in_the_help_and_the_readme(capsys) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for words in (["--help"], ["replicate", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(words)
        help_text = " ".join(capsys.readouterr().out.split())
        for code, meaning in cli.EXIT_CODES.items():
            assert f"{code} {meaning}" in help_text
            assert f"| {code} | {meaning} |" in readme


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"synthact {__version__}"


def test_hub_help_says_what_it_builds_where_how_big_and_how_long(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["hub", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for fact in ("null hub", "random weights", "$SYNTHACT_CACHE/null-hub/", "1 GB", "30 s"):
        assert fact in text, text


def test_a_listed_subject_is_described(capsys) -> None:
    for name, fact in (
        ("gpt2-small", "step 0.5"),
        ("planted", "planted features"),
        ("null-gpt2", "norm rule"),
    ):
        cli.main(["subjects", name])
        text = capsys.readouterr().out
        assert text.startswith(f"{name}: ") and fact in text, text


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
    assert command[1:5] == ["-m", "pytest", "--pyargs", "synthact.claims"]
    assert "cwd" not in kwargs  # the user's folder: their constructions import from there
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
    monkeypatch.setattr(subprocess, "run", lambda c, **k: subprocess.CompletedProcess(c, 0))
    assert cli._claims_matrix(args) == 0
    monkeypatch.setattr(subprocess, "run", lambda c, **k: subprocess.CompletedProcess(c, 4))
    with pytest.raises(RuntimeError, match="did not run"):
        cli._claims_matrix(args)


HEAVY = ("torch", "transformer_lens", "sae_lens", "datasets", "matplotlib")

CHECK_THEN_LIST_IMPORTS = """
import sys
from synthact.runs import cli
try:
    cli.main(sys.argv[1:])
except SystemExit as stop:
    print(stop.code, [name for name in {heavy} if name in sys.modules])
"""


@pytest.mark.parametrize(
    "words",
    [
        ["--n", "-1"],
        ["--prompt-len", "0"],
        ["--subject", "gpt2-smal"],
        ["--subject", "path:/nonexistent"],
        ["--subject", "planted", "--matrix-dir", "/proc/x"],
        ["--help"],
    ],
    ids=str,
)
def test_a_refusal_or_the_help_imports_no_heavy_library(words: list[str]) -> None:
    """Arguments are checked before torch, TransformerLens, SAELens, datasets or matplotlib load,
    so a refusal takes about a second."""
    script = CHECK_THEN_LIST_IMPORTS.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", script, "replicate", *words],
        capture_output=True,
        text=True,
        check=False,
        env=nested_env(),
    )
    assert done.stdout.strip().splitlines()[-1] == f"{0 if words == ['--help'] else 2} []", (
        done.stdout + done.stderr
    )


def test_a_garbage_sae_cfg_is_a_usage_error_naming_the_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "cfg.json").write_text("not json")
    (tmp_path / "sae_weights.safetensors").write_bytes(b"")
    line = usage_error(["replicate", "--subject", f"path:{tmp_path}"], capsys)
    assert line.startswith(f"synthact: {tmp_path / 'cfg.json'} is not valid JSON"), line


@pytest.mark.parametrize("given", ["--synthact-cache", "$SYNTHACT_CACHE"])
@pytest.mark.parametrize("blocked", ["results", "root"])
def test_a_cache_folder_that_is_a_file_is_one_usage_error_naming_how_it_was_given(
    given: str, blocked: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = tmp_path / "cache"
    file = root / "results" if blocked == "results" else root
    file.parent.mkdir(exist_ok=True)
    file.write_text("")
    monkeypatch.delenv("SYNTHACT_CACHE", raising=False)
    words = ["replicate", "--subject", "planted"]
    if given == "--synthact-cache":
        words += ["--synthact-cache", str(root)]
    else:
        monkeypatch.setenv("SYNTHACT_CACHE", str(root))
    line = usage_error(words, capsys)
    assert line.startswith(f"synthact: {given} {root / 'results'}: {file} is a file"), line


def test_importing_synthact_changes_no_environment_variable() -> None:
    script = "import os; before = dict(os.environ); import synthact; print(os.environ == before)"
    env = {k: v for k, v in nested_env().items() if k not in synthact_variables()}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "True", done.stderr


def synthact_variables() -> set[str]:
    from synthact import RUN_ENVIRONMENT

    return {*RUN_ENVIRONMENT, "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"}


def test_a_subject_whose_files_are_missing_stops_before_any_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Offline without gpt2-small's hub files: exit 3 with the list of files, nothing computed
    and no stage reported done first."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr("synthact.outputs.report.replicate", _must_not_compute)
    with pytest.raises(SystemExit) as stop:
        cli.main(["replicate", "--subject", "gpt2-small", "--matrix-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert stop.value.code == 3 and "not in the local cache" in err, err
    assert " done " not in err
