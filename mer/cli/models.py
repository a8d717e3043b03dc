"""``mer models``: the zoo as a table (parameters, MFLOPs and CPU time per 30 s of audio)."""

from __future__ import annotations

import argparse


def _models(args: argparse.Namespace) -> int:
    import torch

    from ..features import FeatureConfig
    from ..models import create_model, describe, list_models
    from ..models.profile import count_flops, cpu_time, n_params

    feature = FeatureConfig.seed_stft() if args.features == "stft" else FeatureConfig()
    torch.set_num_threads(args.threads) if args.threads else None
    rows = []
    for name in list_models():
        model = create_model(name, feature=feature).eval()
        ms = "-" if args.no_time else f"{cpu_time(model) * 1000:.0f}"
        rows.append((name, describe(name), f"{n_params(model) / 1e6:.2f}", f"{count_flops(model) / 1e6:,.0f}", ms))
    print(f"front-end: {args.features} ({feature.n_bins} bins x {feature.frames_per_second:g} frames/s, "
          f"{feature.channels} channel(s)); CPU: {torch.get_num_threads()} threads\n")
    print("| model | description | params (M) | MFLOPs / 30 s | CPU ms / 30 s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the model zoo with parameters, MFLOPs and CPU time per 30 s",
                       description="The model zoo. MFLOPs count convolutions, matrix products and recurrent "
                                   "layers (2 FLOPs per multiply-add), without the front-end.")
    p.add_argument("--features", choices=("logmel", "stft"), default="logmel", help="front-end to size the models for")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-time", action="store_true", help="skip the CPU timing")
    p.set_defaults(handler=_models)
