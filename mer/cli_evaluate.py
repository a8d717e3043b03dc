"""``mer evaluate``: score a checkpoint (or a run folder's fold models) on a dataset."""

from __future__ import annotations

import argparse
import json


def _evaluate(args: argparse.Namespace) -> int:
    from .cli_train import parse_pairs
    from .evaluation import format_report
    from .scoring import evaluate_path

    options = parse_pairs(args.dataset_option, "--dataset-option")
    result, ceiling = evaluate_path(args.checkpoint, args.dataset, args.root, options, device=args.device,
                                    workers=args.workers, progress=not args.quiet)
    if args.json:
        from .io import write_json_atomic

        write_json_atomic(args.json, {**result, "annotation_ceiling": ceiling})
    if args.format == "json":
        print(json.dumps({**result, "annotation_ceiling": ceiling}, indent=2, default=str))
    else:
        print(format_report(result, ceiling))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint or run folder on a dataset",
                       description="Static (RMSE, r, R2, CCC), dynamic (per-song mean +/- sd and pooled) and "
                                   "quadrant metrics. A run folder evaluated on its own dataset scores each fold's "
                                   "model on that fold's test clips (out-of-fold predictions).")
    p.add_argument("checkpoint", help="a .safetensors checkpoint (with its .json) or a run folder")
    p.add_argument("--dataset", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--dataset-option", action="append", metavar="KEY=VALUE")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--json", metavar="FILE", help="also write the scores to FILE")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=_evaluate)
