"""``mer evaluate``: score a model (bundled name, checkpoint or run folder) on a dataset."""

from __future__ import annotations

import argparse
import json

from ._args import add_dataset, add_model, add_quiet, add_workers, parse_pairs


def _evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.evaluate import evaluate
    from ..evaluation.scores import format_report

    options = parse_pairs(args.dataset_option, "--dataset-option")
    if args.json:
        from ..bundle import Bundle, checkpoint_paths
        from ..io import refuse_collisions

        bundle = Bundle.resolve(args.model_path or args.model, args.trust_remote_code)
        refuse_collisions([*checkpoint_paths(bundle.stem), args.root], [("--json", args.json)],
                          "a file of the model or the dataset")
    result, ceiling = evaluate(args.model_path or args.model, args.dataset, args.root, options, device=args.device,
                               backend=args.backend, workers=args.workers, progress=not args.quiet,
                               allow_train_overlap=args.allow_train_overlap,
                               trust_remote_code=args.trust_remote_code)
    doc = {**result, "annotation_ceiling": ceiling}
    if args.json:
        from ..io import write_json_atomic

        write_json_atomic(args.json, doc)
    if args.format == "json":
        print(json.dumps(doc, indent=2, default=str))
    else:
        models = ", ".join(f"{m['model']} ({m['weights_sha1'][:12]}, {m['clips']} clips)" for m in result["models"])
        print(f"model: {models}")
        if result["train_overlap"]:
            print(f"warning: {result['train_overlap']} clip(s) were in the model's training data "
                  "(--allow-train-overlap); their scores overstate accuracy")
        print(format_report(result, ceiling))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a model or run folder on a dataset",
                       description="Static (RMSE, r, R2, CCC), dynamic (per-song mean +/- sd and pooled) and "
                                   "quadrant metrics of what `mer predict` outputs. A run folder scores each clip "
                                   "with a fold model that did not train on it (out-of-fold on its own dataset); a "
                                   "model is never scored on clips it trained on unless --allow-train-overlap.")
    p.add_argument("model_path", nargs="?", metavar="MODEL",
                   help="a bundled model (default, fast), a .safetensors checkpoint or a run folder "
                        "(or use --model)")
    add_dataset(p)
    add_model(p)
    p.add_argument("--allow-train-overlap", action="store_true",
                   help="score clips the model was trained on anyway (their scores overstate accuracy)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--json", metavar="FILE", help="also write the scores to FILE")
    add_workers(p, "audio decoding processes")
    add_quiet(p)
    p.set_defaults(handler=_evaluate)
