"""``synthact`` command line: replicate the paper's tables and figures, list subjects, build hubs.

synthact replicate --subject gpt2-small          # tables.md + PNG figures under reports/gpt2-small/
synthact replicate --subject a,b,c               # ... per subject, and reports/matrix.{md,png}
synthact subjects [RELEASE]                      # the subject names, or a release's SAE ids
synthact hub                                     # build (once) the offline null hub cache
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

from synthact import configure_hub_access
from synthact.config import add_options, option_words, run_configs

CHECKOUT = Path(__file__).resolve().parents[1]
"""The repository a development install runs from; its claims/ give the matrix."""


def _replicate(args: argparse.Namespace) -> None:
    import time

    from synthact.cache import ResultCache
    from synthact.experiments import Lab
    from synthact.report import replicate
    from synthact.stages import Stage, stage_table

    configs = run_configs(vars(args))
    out = _reports_dir(args)
    if args.ray:
        from synthact.cluster import sweep

        print(sweep(configs, args.ray, ResultCache(args.synthact_cache)).summary())
    for config in configs:
        lab = Lab(config, ResultCache(args.synthact_cache))
        start = time.perf_counter()
        for path in replicate(lab, out / _folder(config.subject)):
            print(path)
        total = time.perf_counter() - start
        computed = sum(stage.seconds for stage in lab.stages if stage.depth == 0)
        report = Stage("report: tables, figures, cache reads", total - computed, 0)
        print(f"\nstage timings on {config.subject} (wall seconds; nested stages indented):")
        print(stage_table([*lab.stages, report]) + f"total {total:.1f} s\n")
    _claims_matrix(args)


def _reports_dir(args: argparse.Namespace) -> Path:
    return Path(args.matrix_dir or "reports").resolve()


def _folder(subject: str) -> str:
    """A subject's folder name under reports/ (``/`` and ``:`` become ``_``)."""
    return re.sub(r"[^\w.-]+", "_", subject)


def _claims_matrix(args: argparse.Namespace) -> None:
    """Run the claim tests on the cached results, with the same options; their session writes
    the matrix into the reports folder."""
    if not (CHECKOUT / "claims").is_dir():
        print(f"no claims/ in {CHECKOUT}: the claims × subjects matrix needs a synthact checkout")
        return
    out = _reports_dir(args)
    values = {**vars(args), "matrix_dir": out, "ray": None}  # every result is in the cache
    if args.synthact_cache:
        values["synthact_cache"] = Path(args.synthact_cache).resolve()
    command = [sys.executable, "-m", "pytest", "claims", "-q", "--tb=no", "-rN"]
    command += ["-p", "no:cacheprovider", "--alluredir", str(out / "allure-results")]
    command += option_words(values)
    done = subprocess.run(command, cwd=CHECKOUT, check=False)
    if done.returncode not in (0, 1):  # 1: some claim tests failed, which the matrix shows
        raise RuntimeError(f"the claim tests did not run (pytest exit status {done.returncode})")


def _subjects(args: argparse.Namespace) -> None:
    from synthact.subjects import describe_subjects

    print(describe_subjects(args.release))


def _hub(args: argparse.Namespace) -> None:
    from synthact.subjects.null_hub import ensure_null_hub

    print(ensure_null_hub())


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="synthact", description=__doc__.splitlines()[0], allow_abbrev=False
    )
    commands = top.add_subparsers(dest="command", required=True)

    rep = commands.add_parser(
        "replicate",
        help="compute every experiment; write tables, figures and the matrix",
        allow_abbrev=False,
    )
    add_options(rep.add_argument)
    rep.set_defaults(run=_replicate)

    listing = commands.add_parser("subjects", help="list the subject names, or a release's SAE ids")
    listing.add_argument("release", nargs="?", help="a SAELens release: list its SAE ids")
    listing.set_defaults(run=_subjects)
    commands.add_parser("hub", help="build the offline null hub cache").set_defaults(run=_hub)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    configure_hub_access()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args.run(args)
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        sys.exit(f"synthact: {err}")


if __name__ == "__main__":
    main()
