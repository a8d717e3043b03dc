"""``mer benchmark CONFIG.yaml``: train a grid of models x datasets and print one table."""

from __future__ import annotations

import argparse
import time

from ._args import add_quiet, add_workers


def _benchmark(args: argparse.Namespace) -> int:
    from ..train.config import read_yaml

    t0 = time.perf_counter()
    if "candidates" in read_yaml(args.config):  # a nested probe benchmark (mer.train.probe)
        from ..train.probe import run_probes

        table = run_probes(args.config, args.out, workers=args.workers, progress=not args.quiet)
    else:
        from ..train.benchmark import run_grid

        table = run_grid(args.config, args.out, progress=not args.quiet)
    print(table)
    print(f"wall time: {(time.perf_counter() - t0) / 60:.1f} min")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="run a models x datasets grid and write a markdown table",
                       description="Runs every model on every dataset of CONFIG.yaml (resumable) and writes "
                                   "OUT/benchmark.md (benchmarks/seed_zoo.yaml), or, when the YAML lists "
                                   "'candidates', the nested cross-validation of linear probes with baselines "
                                   "(benchmarks/nested_4q.yaml, mer.train.probe).")
    p.add_argument("config", help="the grid's YAML file (out, defaults, datasets, models)")
    p.add_argument("--out", help="override the YAML's out folder")
    add_workers(p, "audio decoding processes")
    add_quiet(p)
    p.set_defaults(handler=_benchmark)
