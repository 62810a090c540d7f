"""One declaration per option: RunConfig, the pytest options and `synthact replicate` agree."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
import torch

from synthact.fixtures.options import pytest_addoption
from synthact.method.config import (
    Outputs,
    RunConfig,
    flag,
    option_fields,
    option_words,
    run_configs,
)
from synthact.runs import cli

README = Path(__file__).resolve().parents[3] / "README.md"
OTHERS = [
    "--subject=planted,null-gpt2",
    "--n=50",
    "--seed=3",
    "--n-gaussian=400",
    "--grid=text",
    "--latent-moves=distinct",
    "--prompt-len=12",
    "--device=cpu",
    "--dtype=bfloat16",
    "--matrix-dir=out",
    "--synthact-cache=cache",
]
"""A value other than the default for every option (tf32 needs CUDA; its flag is tested alone)."""


class _Recorder:
    """Stands in for pytest's parser: what `pytest_addoption` declares, as an argparse parser."""

    def __init__(self) -> None:
        self.parser = argparse.ArgumentParser(allow_abbrev=False)

    def getgroup(self, name: str, description: str = "") -> _Recorder:
        return self

    def addoption(self, *flags: str, **attrs: object) -> None:
        self.parser.add_argument(*flags, **attrs)


def pytest_parser() -> argparse.ArgumentParser:
    recorder = _Recorder()
    pytest_addoption(recorder)
    return recorder.parser


def replicate_parser() -> argparse.ArgumentParser:
    commands = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["replicate"]


def parsed(parser: argparse.ArgumentParser, words: list[str]) -> dict[str, object]:
    """The option values (by dest) ``parser`` reads from ``words``."""
    values = vars(parser.parse_args(words))
    return {spec.name: values[spec.name] for spec, _, _ in option_fields()}


def declared(parser: argparse.ArgumentParser) -> dict[str, tuple]:
    """(flags, type, default, choices, help) of each option by dest."""
    return {
        a.dest: (tuple(a.option_strings), a.type, a.default, a.choices, a.help)
        for a in parser._actions
        if a.dest != "help"
    }


def test_pytest_and_replicate_declare_the_same_options_as_the_config():
    from_pytest, from_cli = declared(pytest_parser()), declared(replicate_parser())
    assert from_pytest == from_cli
    fields = {spec.name: spec for spec, _, _ in option_fields()}
    assert set(from_pytest) == set(fields)
    for name, (flags, _, default, choices, help) in from_pytest.items():
        assert flags == (flag(name),) and default == fields[name].default
        assert help.startswith(fields[name].metadata["option"].help)
        assert choices == fields[name].metadata["option"].choices
    not_options = {f.name for f in dataclasses.fields(RunConfig) if f.name not in fields}
    assert not_options == {"n_latent_stats"}
    assert {f.name for f in dataclasses.fields(Outputs)} <= set(fields)


@pytest.mark.parametrize("words", [[], OTHERS, ["--subject=planted", "--tf32"]], ids=str)
def test_both_command_lines_give_the_same_run_configs(words):
    from_pytest = parsed(pytest_parser(), words)
    from_cli = parsed(replicate_parser(), words)
    assert from_pytest == from_cli
    if "--tf32" in words:
        assert from_pytest["tf32"] is True
        return  # a RunConfig with tf32 needs CUDA
    configs = run_configs(from_pytest)
    assert [c.subject for c in configs] == from_pytest["subject"].split(",")
    for config in configs:
        for spec, _, _ in option_fields():
            if spec.name in vars(config) and spec.name not in ("subject", "device"):
                assert getattr(config, spec.name) == from_pytest[spec.name]
    if not words:
        assert configs == [RunConfig()]


@pytest.mark.parametrize("words", [[], OTHERS, ["--tf32"]], ids=str)
def test_replicate_hands_every_option_on_to_the_claim_tests(words):
    """The words `synthact replicate` runs the claims with give pytest the same values."""
    values = parsed(replicate_parser(), words)
    assert parsed(pytest_parser(), option_words(values)) == values


def test_the_running_session_has_each_option_under_its_own_dest(request):
    """No other plugin declares one of our flags or dests (``_opt2dest``: pytest's flag table)."""
    flags_by_dest = {}
    for option_flag, dest in request.config._parser._opt2dest.items():
        flags_by_dest.setdefault(dest, []).append(option_flag)
    for spec, _, _ in option_fields():
        assert flags_by_dest[spec.name] == [flag(spec.name)]
        request.config.getoption(spec.name)


def test_the_readme_option_table_lists_every_option_with_its_default():
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `--")]
    by_flag = {row.split("`")[1]: row for row in rows}
    for spec, _, _ in option_fields():
        row = by_flag[flag(spec.name)]
        shown = "off" if spec.default is False else spec.default
        if shown is not None:
            assert f"| `{shown}` |" in row or f"| {shown} |" in row, row


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("--subject=", "--subject '' names no subject"),
        ("--subject=,", "--subject ',' names no subject"),
        ("--n=0", "n (--n) must be at least 2, got 0"),
        ("--device=cuda", "CUDA is not available here"),
        ("--matrix-dir=/proc/x", "--matrix-dir /proc/x: cannot write there (/proc takes no"),
        ("--synthact-cache=README.md/cache", "README.md is a file, not a folder"),
    ],
)
def test_a_bad_option_is_one_usage_error_before_collection(
    option: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch
) -> None:
    if option == "--device=cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    monkeypatch.chdir(README.parent)
    words = ["claims/test_c01_real_vs_random.py", option, "--collect-only", "-q"]
    code = pytest.main([*words, "-p", "no:cacheprovider", "--alluredir", str(tmp_path)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == pytest.ExitCode.USAGE_ERROR, lines
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and says in lines[0], lines


def test_a_run_config_is_pure_until_resolved():
    """Constructing a `RunConfig` checks each value alone; what it names is checked, registered
    and probed by `RunConfig.resolved`."""
    config = RunConfig(subject="no-such-subject", device="cuda", construction="no_such_module:x")
    with pytest.raises(ValueError, match="unknown subject 'no-such-subject'"):
        config.resolved()
    with pytest.raises(ValueError, match="cannot import no_such_module"):
        RunConfig(subject="planted", device="cpu", construction="no_such_module:x").resolved()
    resolved = RunConfig(subject="planted", device="auto").resolved()
    assert resolved.device != "auto" and resolved.resolved() == resolved
