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

CHECKOUT = Path(__file__).resolve().parents[1]
"""The repository a development install runs from; its claims/ give the matrix."""


def _replicate(args: argparse.Namespace) -> None:
    import time

    from synthact.cache import ResultCache
    from synthact.experiments import Lab, RunConfig, Stage, stage_table
    from synthact.report import replicate
    from synthact.subjects import resolve_device

    subjects = [name.strip() for name in args.subject.split(",") if name.strip()]
    configs = [
        RunConfig(
            subject=subject,
            n=args.n,
            seed=args.seed,
            n_gaussian=args.n_gaussian,
            grid=args.grid,
            latent_moves=args.latent_moves,
            prompt_len=args.prompt_len,
            device=resolve_device(args.device),
            dtype=args.dtype,
        )
        for subject in subjects
    ]
    out = Path(args.out).resolve()
    for config in configs:
        lab = Lab(config, ResultCache(args.cache))
        start = time.perf_counter()
        for path in replicate(lab, out / _folder(config.subject)):
            print(path)
        total = time.perf_counter() - start
        computed = sum(stage.seconds for stage in lab.stages if stage.depth == 0)
        report = Stage("report: tables, figures, cache reads", total - computed, 0)
        print(f"\nstage timings on {config.subject} (wall seconds; nested stages indented):")
        print(stage_table([*lab.stages, report]) + f"total {total:.1f} s\n")
    _claims_matrix(subjects, args, out)


def _folder(subject: str) -> str:
    """A subject's folder name under reports/ (``/`` and ``:`` become ``_``)."""
    return re.sub(r"[^\w.-]+", "_", subject)


def _claims_matrix(subjects: list[str], args: argparse.Namespace, out: Path) -> None:
    """Run the claim tests on the cached results; their session writes the matrix into ``out``."""
    if not (CHECKOUT / "claims").is_dir():
        print(f"no claims/ in {CHECKOUT}: the claims × subjects matrix needs a synthact checkout")
        return
    options = {
        "--subject": ",".join(subjects),
        "--n": args.n,
        "--seed": args.seed,
        "--n-gaussian": args.n_gaussian,
        "--grid": args.grid,
        "--latent-moves": args.latent_moves,
        "--prompt-len": args.prompt_len,
        "--device": args.device,
        "--dtype": args.dtype,
        "--matrix-dir": out,
        "--alluredir": out / "allure-results",
    }
    if args.cache:
        options["--synthact-cache"] = Path(args.cache).resolve()
    command = [
        sys.executable,
        "-m",
        "pytest",
        "claims",
        "-q",
        "--tb=no",
        "-rN",
        "-p",
        "no:cacheprovider",
    ]
    command += [str(part) for option in options.items() for part in option]
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
    top = argparse.ArgumentParser(prog="synthact", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)

    rep = commands.add_parser(
        "replicate", help="compute every experiment; write tables, figures and the matrix"
    )
    rep.add_argument(
        "--subject",
        default="gpt2-small",
        help="subject(s), comma-separated: registered names, RELEASE/SAE_ID, null:RELEASE/SAE_ID",
    )
    rep.add_argument("--n", type=int, default=1000, help="perturbations per type (paper: 1000)")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--n-gaussian", type=int, default=32_000)
    rep.add_argument("--prompt-len", type=int, default=10, help="tokens per prompt (paper: 10)")
    rep.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    rep.add_argument("--dtype", default="float32")
    rep.add_argument("--grid", default="code", choices=("code", "text"))
    rep.add_argument("--latent-moves", default="in-place", choices=("in-place", "distinct"))
    rep.add_argument("--out", default="reports", help="output folder (default reports/)")
    rep.add_argument("--cache", default=None, help="result cache (default ~/.cache/synthact)")
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
