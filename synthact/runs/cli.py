"""``synthact`` command line: replicate the paper's tables and figures, list subjects, build hubs.

synthact replicate --subject gpt2-small          # tables.md + PNG figures under reports/gpt2-small/
synthact replicate --subject a,b,c               # ... per subject, and reports/matrix.{md,png}
                                                 # and reports/constructions.{md,png}
synthact subjects [RELEASE]                      # the subject names, or a release's SAE ids
synthact subjects --coverage                     # SAELens' SAEs by the engine path of their model
synthact subjects NAME                           # what one subject is
synthact hub                                     # build (once) the offline null hub cache
synthact trained-tiny                            # retrain the shipped trained-tiny subject
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from synthact import __version__, configure_hub_access, set_run_environment
from synthact.method.config import (
    RunConfig,
    add_options,
    check_output_dir,
    option_words,
    run_configs,
)

EXIT_CODES = {
    0: "every claim test passed, or failed where it is expected to",
    1: "a claim test failed or errored (each is named)",
    2: "bad input: an option, a subject or an output folder (one line says which)",
    3: "the run stopped: a subject could not load, or the claim tests could not run",
}

HUB_HELP = """\
Build the offline null hub once: a Hugging Face hub cache with full-size GPT-2 and a
Pythia-70m-shaped GPT-NeoX with random weights, the genuine GPT-2 tokenizer, and random SAEs
under the real release names. The null subjects (null-gpt2, null:RELEASE/SAE_ID) load from it
through the same from_pretrained calls as the real ones. It goes under
$SYNTHACT_CACHE/null-hub/ (default ~/.cache/synthact/null-hub/), takes about 1 GB and about
30 s on 2 CPU cores, and is built once per recipe: later runs, and the claim tests, reuse it.
Prints the hub's path."""


class UsageError(ValueError):
    """Bad input, found before any compute (exit code 2, as every ValueError)."""


def _replicate(args: argparse.Namespace) -> int:
    configs = _checked_configs(args)
    import time

    from synthact.core.cache import ResultCache
    from synthact.core.stages import Stage, stage_table
    from synthact.method.experiments import Lab
    from synthact.outputs.report import replicate

    out = _reports_dir(args)
    if args.ray:
        from synthact.runs.cluster import sweep

        print(sweep(configs, args.ray, ResultCache(args.synthact_cache)).summary())
    for config in configs:
        lab = Lab(config, ResultCache(args.synthact_cache))
        start = time.perf_counter()
        for path in replicate(lab, out / _folder(config.subject)):
            print(path)
        lab.progress.close()
        total = time.perf_counter() - start
        computed = sum(stage.seconds for stage in lab.stages if stage.depth == 0)
        report = Stage("report: tables, figures, cache reads", total - computed, 0)
        print(f"\nstage timings on {config.subject} (wall seconds; nested stages indented):")
        print(stage_table([*lab.stages, report]) + f"total {total:.1f} s\n")
    return _claims_matrix(args)


def _checked_configs(args: argparse.Namespace) -> list[RunConfig]:
    """The run's configs checked before any compute: each value, the output folder and the cache
    writable, each subject named, then (importing the libraries) the device, the constructions
    and each subject's files. UsageError for bad input; RuntimeError when a subject cannot load
    here (offline without its hub files) or the device is missing."""
    from synthact.core.cache import ResultCache

    try:
        configs = run_configs(vars(args))
        check_output_dir("--matrix-dir", _reports_dir(args))
        check_output_dir(_cache_flag(args), ResultCache(args.synthact_cache).dir)
    except ValueError as err:
        raise UsageError(str(err)) from None
    _prepare_environment()
    from synthact.subjects import subject_spec

    try:
        for config in configs:
            subject_spec(config.subject).preflight()
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None
    try:
        return [config.resolved() for config in configs]
    except (ValueError, RuntimeError) as err:  # a device missing here is a bad --device
        raise UsageError(str(err)) from None


def _cache_flag(args: argparse.Namespace) -> str:
    """How the user gave the cache folder: ``--synthact-cache``, ``$SYNTHACT_CACHE`` or neither."""
    if args.synthact_cache:
        return "--synthact-cache"
    return "$SYNTHACT_CACHE" if os.environ.get("SYNTHACT_CACHE") else "the default cache"


def _prepare_environment() -> None:
    """The run's environment (`set_run_environment`) and hub access, before the libraries load."""
    set_run_environment()
    configure_hub_access()


def _reports_dir(args: argparse.Namespace) -> Path:
    return Path(args.matrix_dir or "reports").resolve()


def _folder(subject: str) -> str:
    """A subject's folder name under reports/ (``/`` and ``:`` become ``_``)."""
    return re.sub(r"[^\w.-]+", "_", subject)


def _claims_matrix(args: argparse.Namespace) -> int:
    """Run the claim tests on the cached results, with the same options; their session writes
    the matrix and the constructions leaderboard into the reports folder. Returns the exit code
    (`EXIT_CODES`)."""
    out = _reports_dir(args)
    values = {**vars(args), "matrix_dir": out, "ray": None}  # every result is in the cache
    if args.synthact_cache:
        values["synthact_cache"] = Path(args.synthact_cache).resolve()
    allure = out / "allure-results"
    print(f"claim tests: Allure results in {allure} (replacing the previous run's)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "claims.xml"
        command = [sys.executable, "-m", "pytest", "--pyargs", "synthact.claims", "-q"]
        command += ["--tb=no", "-rN"]
        command += ["-p", "no:cacheprovider", "--alluredir", str(allure)]
        command += ["--junitxml", str(junit), *option_words(values)]
        done = subprocess.run(command, env=_user_folder_on_path(), check=False)
        failed = failed_tests(junit) if junit.exists() else []
    if done.returncode not in (0, 1):
        raise RuntimeError(f"the claim tests did not run (pytest exit status {done.returncode})")
    if done.returncode == 1:
        names = "\n  ".join(failed) or "(pytest wrote no report of which)"
        print(
            f"synthact: {len(failed)} claim test(s) failed or errored:\n  {names}", file=sys.stderr
        )
        return 1
    return 0


def _user_folder_on_path() -> dict[str, str]:
    """This environment with the current folder first on ``PYTHONPATH``: the claim tests import
    the user's ``--construction`` modules from where the user is."""
    path = [os.getcwd(), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def failed_tests(junit: Path) -> list[str]:
    """``test[params] (failed|error): message`` of each test a JUnit XML report marks as failed
    or errored (a strict xfail that passed is a failure; an expected failure is skipped)."""
    lines = []
    for case in ElementTree.parse(junit).iter("testcase"):
        for kind in ("failure", "error"):
            found = case.find(kind)
            if found is not None:
                message = (found.get("message") or "").splitlines()[:1]
                name = f"{case.get('classname')}::{case.get('name')}"
                lines.append(f"{name} ({'failed' if kind == 'failure' else 'error'})")
                lines[-1] += f": {message[0]}" if message else ""
    return lines


def _subjects(args: argparse.Namespace) -> None:
    _prepare_environment()
    if args.coverage:
        if args.release is not None:
            raise ValueError("--coverage counts every release's SAEs: drop the release name")
        from synthact.build.coverage import coverage_report, directory_coverage

        print(coverage_report(directory_coverage()))
        return
    from synthact.subjects import describe_subjects

    print(describe_subjects(args.release))


def _hub(args: argparse.Namespace) -> None:
    _prepare_environment()
    from synthact.subjects.null_hub import ensure_null_hub

    print(ensure_null_hub())


def _trained_tiny(args: argparse.Namespace) -> None:
    _prepare_environment()
    from synthact.build.trained_tiny import build, summary

    print(summary(build(args.out)))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="synthact",
        description=__doc__.splitlines()[0],
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = top.add_subparsers(dest="command", required=True)

    rep = commands.add_parser(
        "replicate",
        help="compute every experiment; write tables, figures and the matrix",
        description="Compute every experiment of each subject, write its tables and figures, "
        "then run the claim tests on the cached results: the claims × subjects matrix.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_options(rep.add_argument)
    rep.set_defaults(run=_replicate)

    listing = commands.add_parser(
        "subjects", help="list the subject names, describe one, or list a release's SAE ids"
    )
    listing.add_argument(
        "release",
        nargs="?",
        metavar="NAME",
        help="a subject (e.g. gpt2-small, null:RELEASE/SAE_ID): describe it; "
        "a SAELens release: list its SAE ids",
    )
    listing.add_argument(
        "--coverage",
        action="store_true",
        help="count SAELens' SAEs by the engine path (fast, generic, naive) of their model",
    )
    listing.set_defaults(run=_subjects)
    hub = commands.add_parser(
        "hub",
        help="build the offline null hub (about 1 GB, about 30 s, once)",
        description=HUB_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hub.set_defaults(run=_hub)
    tiny = commands.add_parser(
        "trained-tiny",
        help="retrain the trained-tiny subject from its recipe (minutes)",
        allow_abbrev=False,
    )
    tiny.add_argument("--out", type=Path, default=None, help="default: the shipped folder")
    tiny.set_defaults(run=_trained_tiny)
    return top


def _epilog() -> str:
    return "exit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())


def main(argv: list[str] | None = None) -> None:
    """Run a command; exits with one of `EXIT_CODES` (argparse's own usage errors exit 2)."""
    args = parser().parse_args(argv)
    try:
        code = args.run(args)
    except ValueError as err:
        print(f"synthact: {err}", file=sys.stderr)
        code = 2
    except (RuntimeError, OSError) as err:
        print(f"synthact: {err}", file=sys.stderr)
        code = 3
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
