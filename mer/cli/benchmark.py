"""``mer benchmark CONFIG.yaml``: train a grid of models x datasets and print one table."""

from __future__ import annotations

import argparse
import time

from ._args import add_quiet


def _benchmark(args: argparse.Namespace) -> int:
    from ..train.benchmark import run_grid

    t0 = time.perf_counter()
    table = run_grid(args.config, args.out, progress=not args.quiet)
    print(table)
    print(f"wall time: {(time.perf_counter() - t0) / 60:.1f} min")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="run a models x datasets grid and write a markdown table",
                       description="Runs every model on every dataset of CONFIG.yaml (resumable) and writes "
                                   "OUT/benchmark.md. See benchmarks/seed_zoo.yaml.")
    p.add_argument("config", help="the grid's YAML file (out, defaults, datasets, models)")
    p.add_argument("--out", help="override the YAML's out folder")
    add_quiet(p)
    p.set_defaults(handler=_benchmark)
