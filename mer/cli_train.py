"""``mer train``: train (and cross-validate) a model from a config, YAML file and flags."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

#: flags that map one-to-one onto TrainConfig fields (dest -> field)
FIELDS = ("dataset", "root", "model", "task", "quadrant_weight", "loss", "optimizer", "lr", "weight_decay", "schedule", "batch_size",
          "epochs", "patience", "crop_seconds", "folds", "split", "val_fraction", "seed", "device", "workers",
          "cache_dir")


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """``["lexicon=x.csv", "channels=[16,32]"]`` -> dict (values parsed as YAML scalars/lists)."""
    out: dict[str, Any] = {}
    for p in pairs or []:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} {p!r}: write KEY=VALUE")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key] = value
    return out


def config_from_args(args: argparse.Namespace):  # noqa: ANN201
    from .config import TrainConfig

    over: dict[str, Any] = {f: getattr(args, f) for f in FIELDS}
    if args.dataset_option:
        over["dataset_options"] = parse_pairs(args.dataset_option, "--dataset-option")
    if args.model_arg:
        over["model_args"] = parse_pairs(args.model_arg, "--model-arg")
    if args.tensorboard:
        over["tensorboard"] = True
    if args.no_weak_dynamic:
        over["weak_dynamic"] = False
    if args.resume:
        saved = Path(args.resume) / "config.yaml"
        if not saved.exists():
            raise ConfigError(f"{args.resume}: not a run folder (no config.yaml); check --resume")
        return TrainConfig.resolve(saved, {k: v for k, v in over.items() if k in ("device", "workers", "cache_dir")})
    return TrainConfig.resolve(args.config, over)


def _train(args: argparse.Namespace) -> int:
    from .engine import format_summary, run

    cfg = config_from_args(args).check()
    out = args.resume or args.out
    if not out:
        raise ConfigError("no run folder: pass --out RUN_DIR (or --resume RUN_DIR)")
    if not args.resume and Path(out, "summary.json").exists():
        raise ConfigError(f"{out} already holds a finished run; choose another --out or --resume it")
    summary = run(cfg, out, resume=bool(args.resume), progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        print(format_summary(summary))
        print(f"\nrun folder: {out} (checkpoints fold*/best.safetensors, curves fold*/curves.png, summary.md)")
    return 0


def add_train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file of TrainConfig keys (flags override it)")
    p.add_argument("--dataset", help="dataset name (mer datasets list)")
    p.add_argument("--root", help="dataset folder")
    p.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                   help="loader option, e.g. lexicon=PATH for 4q (repeatable)")
    p.add_argument("--model", help="model name (mer models)")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="model argument (repeatable)")
    p.add_argument("--task", choices=("static", "dynamic", "both"))
    p.add_argument("--quadrant-weight", type=float,
                   help="blend static targets toward the labelled quadrant's centre (0..1; for 4q)")
    p.add_argument("--no-weak-dynamic", action="store_true",
                   help="task static: leave the 2 Hz output untrained (default: trained toward the clip's label)")
    p.add_argument("--loss", help="mae, mse, ccc or a weighted sum like 0.5*mse+ccc")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"))
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", help="constant, cosine or step:EPOCHS:FACTOR[:TIMES] (notebooks: step:3:0.1:1)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--patience", type=int, help="early-stopping patience in epochs (0 = off)")
    p.add_argument("--crop-seconds", type=float)
    p.add_argument("--folds", type=int, help="artist-grouped k-fold CV (1 = one model on all data)")
    p.add_argument("--split", help="mediaeval2015, mediaeval2013 or a split JSON")
    p.add_argument("--val-fraction", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--workers", type=int, help="audio decoding processes (0 = one per core)")
    p.add_argument("--cache-dir", help="feature cache folder (default $MER_CACHE_DIR or ~/.cache/mer)")
    p.add_argument("--tensorboard", action="store_true", help="also log to RUN_DIR/fold*/tensorboard")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train and cross-validate a model",
                       description="Train a model. Config precedence: defaults < --config YAML < flags. "
                                   "Multi-GPU/multi-node: torchrun --nproc_per_node=N -m mer train ...")
    add_train_flags(p)
    p.add_argument("--out", help="run folder to create")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its folder")
    p.set_defaults(handler=_train)
