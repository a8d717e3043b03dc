"""``mer train``: train (and cross-validate) a model from a config, YAML file and flags.

The flags are generated from :class:`mer.train.config.TrainConfig`'s fields (their help and
choices live there), so a new config key is a new flag without touching this module.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

from ..errors import ConfigError, MERWarning
from ..train.config import TrainConfig
from ._args import add_quiet, parse_pairs

#: dict fields take repeatable KEY=VALUE flags; these may be changed when resuming a run
RESUMABLE = ("device", "workers", "cache_dir", "trust_remote_code")
#: what a run writes at the top of its folder
RUN_FILES = ("config.yaml", "split.json", "summary.json", "summary.md")


def _flag(f: dataclasses.Field) -> str:
    return "--" + f.metadata.get("flag", f.name.replace("_", "-"))


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (plus --config)."""
    p.add_argument("--config", help="YAML file of TrainConfig keys (flags override it)")
    for f in dataclasses.fields(TrainConfig):
        names = [_flag(f)] + ([f.metadata["short"]] if "short" in f.metadata else [])
        kw: dict[str, Any] = {"dest": f.name, "help": f.metadata.get("help"), "default": None}
        choices = f.metadata.get("choices")
        if isinstance(choices, tuple):
            kw["choices"] = choices
        if f.type in ("bool", bool):
            kw["action"] = argparse.BooleanOptionalAction
        elif f.type in ("dict", dict):
            kw.update(action="append", metavar="KEY=VALUE")
        else:
            kw["type"] = {"int": int, "float": float}.get(str(f.type), str)
        p.add_argument(*names, **kw)
    add_quiet(p)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    over: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name)
        if value is not None:
            over[f.name] = parse_pairs(value, _flag(f)) if f.type in ("dict", dict) else value
    if args.resume:
        saved = Path(args.resume) / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"{args.resume}: not a run folder (no config.yaml); check --resume")
        ignored = sorted(k for k in over if k not in RESUMABLE) + (["--config"] if args.config else [])
        if ignored:
            warnings.warn(f"--resume continues with {saved} as saved; ignoring "
                          f"{', '.join(k if k.startswith('--') else _flag(_field(k)) for k in ignored)} "
                          "(start a new --out to change them)", MERWarning, stacklevel=2)
        cfg = TrainConfig.resolve(saved, {k: v for k, v in over.items() if k in RESUMABLE})
        # the run's saved config may record that its backbone needs remote code; only the user's flag grants it
        return dataclasses.replace(cfg, trust_remote_code=bool(over.get("trust_remote_code")))
    return TrainConfig.resolve(args.config, over)


def _field(name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(TrainConfig) if f.name == name)


def _train(args: argparse.Namespace) -> int:
    from ..train.reports import format_summary
    from ..train.run import run

    cfg = config_from_args(args).check()
    out = args.resume or args.out
    if not out:
        raise ConfigError("no run folder: pass --out RUN_DIR (or --resume RUN_DIR)")
    if not args.resume and Path(out, "summary.json").exists():
        raise ConfigError(f"{out} already holds a finished run; choose another --out or --resume it")
    if not args.resume:  # a run writes these into --out: none of them may be the config or the dataset
        from ..io import refuse_collisions

        refuse_collisions([p for p in (args.config, cfg.root) if p],
                          [("--out", out)] + [(f"--out {out}:", Path(out, n)) for n in RUN_FILES],
                          "an input (the --config file or the dataset's --root)")
    summary = run(cfg, out, resume=bool(args.resume), progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        if summary.get("task") == "distil":  # agreement with the teacher first (mer.train.distil)
            from ..train.distil import format_distil

            print(format_distil(summary))
        else:
            print(format_summary(summary))
        print(f"\nrun folder: {out} (checkpoints fold*/best.safetensors, curves fold*/curves.png, summary.md)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train and cross-validate a model",
                       description="Train a model. Config precedence: defaults < --config YAML < flags. "
                                   "Multi-GPU/multi-node: torchrun --nproc_per_node=N -m mer train ...")
    add_train_flags(p)
    p.add_argument("--out", help="run folder to create")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its folder")
    p.set_defaults(handler=_train)
