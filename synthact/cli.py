"""``synthact`` command line: replicate the paper's tables and figures, list subjects, build hubs.

synthact replicate --subject gpt2-small          # tables.md + PNG figures under reports/gpt2-small/
synthact subjects                                # the registry
synthact hub                                     # build (once) the offline null-gpt2 hub cache
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from synthact import configure_hub_access


def _replicate(args: argparse.Namespace) -> None:
    import time

    from synthact.cache import ResultCache
    from synthact.experiments import Lab, RunConfig, Stage, stage_table
    from synthact.report import replicate
    from synthact.subjects import resolve_device

    config = RunConfig(
        subject=args.subject,
        n=args.n,
        seed=args.seed,
        n_gaussian=args.n_gaussian,
        grid=args.grid,
        latent_moves=args.latent_moves,
        device=resolve_device(args.device),
        dtype=args.dtype,
    )
    lab = Lab(config, ResultCache(args.cache))
    start = time.perf_counter()
    for path in replicate(lab, Path(args.out) / args.subject):
        print(path)
    total = time.perf_counter() - start
    computed = sum(stage.seconds for stage in lab.stages if stage.depth == 0)
    print("\nstage timings (wall seconds; nested stages indented under their parent):")
    print(
        stage_table(
            [*lab.stages, Stage("report: tables, figures, cache reads", total - computed, 0)]
        )
    )
    print(f"total {total:.1f} s")


def _subjects(args: argparse.Namespace) -> None:
    from synthact.subjects import SUBJECTS

    for name, spec in SUBJECTS.items():
        print(f"{name:14s} {spec.description}")


def _hub(args: argparse.Namespace) -> None:
    from synthact.hub import build_null_hub

    print(build_null_hub())


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="synthact", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)

    rep = commands.add_parser(
        "replicate", help="compute every experiment; write tables and figures"
    )
    rep.add_argument("--subject", default="gpt2-small")
    rep.add_argument("--n", type=int, default=1000, help="perturbations per type (paper: 1000)")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--n-gaussian", type=int, default=32_000)
    rep.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    rep.add_argument("--dtype", default="float32")
    rep.add_argument("--grid", default="code", choices=("code", "text"))
    rep.add_argument("--latent-moves", default="in-place", choices=("in-place", "distinct"))
    rep.add_argument("--out", default="reports", help="output folder (default reports/)")
    rep.add_argument("--cache", default=None, help="result cache (default ~/.cache/synthact)")
    rep.set_defaults(run=_replicate)

    commands.add_parser("subjects", help="list the registered subjects").set_defaults(run=_subjects)
    commands.add_parser("hub", help="build the offline null-gpt2 hub cache").set_defaults(run=_hub)
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
