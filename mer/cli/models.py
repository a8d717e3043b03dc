"""``mer models``: the zoo as a table (parameters, MFLOPs and CPU time per 30 s of audio)."""

from __future__ import annotations

import argparse


def _bundled() -> None:
    """The ready-to-use models shipped in the package, with their cards' headline figures."""
    import importlib.util

    from ..errors import install_hint
    from ..bundle import Bundle, bundled_models
    from ..infer.backends import onnx_status

    torch = importlib.util.find_spec("torch") is not None
    print("Bundled (`mer predict --model NAME`):\n")
    print("| name | version | architecture | quadrant macro-F1 on 4Q | runs on | weights SHA-1 | card |")
    print("|---|---|---|---|---|---|---|")
    for name in bundled_models():
        b = Bundle.resolve(name)
        nested = b.meta.nested
        figure = (f"{nested.f1:.3f} ± {nested.f1_sd_repeats:.3f} (nested CV)" if nested
                  else (b.meta.headline or "see card"))
        card = b.card.relative_to(b.card.parents[2]) if b.card else "-"
        engine = ("ONNX Runtime (ready)" if onnx_status(b) is None else
                  "PyTorch (ready)" if torch else f"PyTorch, not installed: {install_hint('torch')}")
        print(f"| {name} | {b.version} | {b.architecture} | {figure} | {engine} | {b.digest[:12]} | {card} |")
    print()


def _models(args: argparse.Namespace) -> int:
    import importlib.util

    _bundled()
    if importlib.util.find_spec("torch") is None:
        print("The architecture zoo (untrained; for `mer train --model NAME`) needs PyTorch: "
              "pip install 'mer-toolkit[train]'")
        return 0
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
    print("Architectures (untrained; `mer train --model NAME`):\n")
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
