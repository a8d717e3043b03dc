"""``mer benchmark CONFIG.yaml``: train a grid of models x datasets and print one table;
``mer benchmark --train NAME=DIR --test NAME=DIR``: the cross-dataset protocol."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ._args import add_quiet, add_workers, parse_pairs
from ..errors import ConfigError


def _per_dataset(pairs: list[str] | None) -> dict[str, dict]:
    """``["4q:lexicon=x.csv"]`` -> ``{"4q": {"lexicon": "x.csv"}}``."""
    out: dict[str, dict] = {}
    for p in pairs or []:
        name, sep, rest = p.partition(":")
        if not sep or "=" not in rest:
            raise ConfigError(f"--dataset-option {p!r}: write NAME:KEY=VALUE, e.g. 4q:lexicon=PATH")
        out.setdefault(name.strip().lower(), {}).update(parse_pairs([rest], "--dataset-option"))
    return out


def _cross(args: argparse.Namespace) -> str:
    from ..train.benchmark import parse_specs, run_cross
    from ..train.config import TrainConfig

    roots = {k.lower(): str(v) for k, v in parse_pairs(args.root, "--root").items()}
    options = _per_dataset(args.dataset_option)
    train = parse_specs(args.train or [], roots, options)
    test = parse_specs(args.test or [], roots, options)
    values = {**parse_pairs(args.set, "--set"), "model": args.model, "epochs": args.epochs,
              "model_args": parse_pairs(args.model_arg, "--model-arg") or None, "device": args.device,
              "cache_dir": args.cache_dir, "workers": args.workers or None,
              "trust_remote_code": args.trust_remote_code or None}
    base = TrainConfig.resolve(args.defaults, values)
    return run_cross(train, test, base, args.out or "runs/cross", cv_folds=args.folds, workers=args.workers,
                     progress=not args.quiet)


def _probe_backbone(args: argparse.Namespace, doc: dict) -> dict | None:
    """The backbone ``--model``/``--model-arg``/``--trust-remote-code`` give a probe YAML (None:
    the YAML's own), checked as building it will need (an ``hf:`` name: transformers, the local
    cache, the trust flag) before the first clip's features are extracted."""
    from ..hf_hub import is_hf
    from ..train.config import check_backbone

    own: dict[str, Any] = doc["backbone"] if isinstance(doc.get("backbone"), dict) else {"model": "musicnn"}
    backbone: dict[str, Any] | None = None
    if args.model:
        backbone = {"model": args.model, "model_args": parse_pairs(args.model_arg, "--model-arg")}
    if args.trust_remote_code:
        backbone = backbone or {**own, "model_args": dict(own.get("model_args") or {})}
        if not is_hf(backbone.get("model", "")):
            raise ConfigError(f"--trust-remote-code is for hf: backbones (--model hf:...); {backbone.get('model')} "
                              "runs no code of its own")
        backbone["model_args"]["trust_remote_code"] = True
    chosen = backbone or own
    margs: dict[str, Any] = chosen.get("model_args") or {}
    check_backbone(str(chosen.get("model", "")), bool(margs.get("trust_remote_code")), margs.get("revision"))
    return backbone


def _benchmark(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if args.train or args.test:
        if args.config:
            raise ConfigError("give either a grid CONFIG.yaml or --train/--test (the cross-dataset protocol), not both")
        table = _cross(args)
    elif not args.config:
        raise ConfigError("give a grid CONFIG.yaml, or --train NAME=DIR --test NAME=DIR for the cross-dataset protocol")
    else:
        from ..train.config import read_yaml

        doc = read_yaml(args.config)
        if "candidates" in doc:  # a nested probe benchmark (mer.train.probe)
            from ..train.probe import run_probes

            backbone = _probe_backbone(args, doc)
            table = run_probes(args.config, args.out, workers=args.workers, progress=not args.quiet, backbone=backbone)
        else:
            from ..train.benchmark import run_grid

            if args.model or args.model_arg or args.trust_remote_code:
                raise ConfigError(f"{args.config}: a grid YAML names its own models; --model, --model-arg and "
                                  "--trust-remote-code are for the cross-dataset protocol and for probe YAMLs "
                                  "(benchmarks/nested_4q.yaml); in a grid write trust_remote_code: true on its hf: "
                                  "model entries")

            table = run_grid(args.config, args.out, progress=not args.quiet)
    print(table)
    print(f"wall time: {(time.perf_counter() - t0) / 60:.1f} min")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="run a models x datasets grid, or train on some datasets and test on others",
                       description="Runs every model on every dataset of CONFIG.yaml (resumable) and writes "
                                   "OUT/benchmark.md (benchmarks/seed_zoo.yaml), or, when the YAML lists "
                                   "'candidates', the nested cross-validation of linear probes with baselines "
                                   "(benchmarks/nested_4q.yaml, mer.train.probe). With --train/--test instead: the "
                                   "cross-dataset protocol: one model trained on the --train set(s) (several are "
                                   "joined, ids kept apart), scored on each --test set, beside the training set's "
                                   "own k-fold CV; labels on the canonical scale, quadrant-only sets scored on "
                                   "quadrants. Writes OUT/cross.md and OUT/cross.json.")
    p.add_argument("config", nargs="?", help="the grid's YAML file (out, defaults, datasets, models)")
    p.add_argument("--out", help="override the YAML's out folder (cross protocol: default runs/cross)")
    g = p.add_argument_group("cross-dataset protocol")
    g.add_argument("--train", action="append", metavar="NAME[=DIR]", help="a training dataset (repeatable)")
    g.add_argument("--test", action="append", metavar="NAME[=DIR]", help="a test dataset (repeatable)")
    g.add_argument("--root", action="append", metavar="NAME=DIR", help="a dataset's folder, for NAME given alone")
    g.add_argument("--dataset-option", action="append", metavar="NAME:KEY=VALUE",
                   help="a loader option of one dataset, e.g. 4q:lexicon=PATH (repeatable)")
    g.add_argument("--defaults", metavar="YAML", help="TrainConfig keys for the runs (flags override them)")
    g.add_argument("--model", help="model to train (default: TrainConfig's, mobile_crnn); with a probe YAML "
                                   "(benchmarks/nested_4q.yaml): the backbone whose embeddings are probed, e.g. hf:DIR")
    g.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="model argument (repeatable)")
    g.add_argument("--trust-remote-code", action="store_true",
                   help="hf: backbones only: let the model run Python code that its own folder ships (MERT); only "
                        "for code you trust")
    g.add_argument("--epochs", type=int, help="maximum epochs per run")
    g.add_argument("--folds", type=int, default=5, help="folds of the in-dataset CV beside it (0 = skip; default 5)")
    g.add_argument("--device", help="auto, cpu, cuda or mps")
    g.add_argument("--cache-dir", help="feature cache folder")
    g.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other TrainConfig key (repeatable)")
    add_workers(p, "audio decoding processes")
    add_quiet(p)
    p.set_defaults(handler=_benchmark)
