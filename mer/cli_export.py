"""``mer export --onnx FILE``: the model as ONNX for deployment (see mer.export)."""

from __future__ import annotations

import argparse


def _export(args: argparse.Namespace) -> int:
    from .export import export_onnx
    from .predict import resolve_model

    model, meta = resolve_model(args.model)
    meta = {**meta, "source": str(args.model)}
    path = export_onnx(model, meta, args.onnx, args.seconds)
    print(f"wrote {path} and {path.with_suffix('.json')} (input: {args.seconds:g} s of features; see the JSON)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX",
                       description="Export a bundled model or checkpoint to ONNX (features in, valence/arousal out).")
    p.add_argument("--onnx", required=True, metavar="FILE.onnx")
    p.add_argument("--model", default="default", help="bundled model name or checkpoint")
    p.add_argument("--seconds", type=float, default=30.0, help="fixed input window (default 30 s)")
    p.set_defaults(handler=_export)
