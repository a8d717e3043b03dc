"""``mer benchmark CONFIG.yaml``: train a grid of models x datasets and print one table."""

from __future__ import annotations

import argparse


def _benchmark(args: argparse.Namespace) -> int:
    import time

    from .benchmark import run_grid

    t0 = time.perf_counter()
    table = run_grid(args.config, args.out, progress=not args.quiet)
    print(table)
    print(f"wall time: {(time.perf_counter() - t0) / 60:.1f} min")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="run a models x datasets grid and write a markdown table",
                       description="Runs every model on every dataset of CONFIG.yaml (resumable) and writes "
                                   "OUT/benchmark.md. See benchmarks/seed_zoo.yaml.")
    p.add_argument("config")
    p.add_argument("--out", help="override the YAML's out folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_benchmark)
