"""``mer export``: a model as ONNX, for deployment (``--onnx FILE``) or for ``mer predict``
itself (``--runtime``); see :mod:`mer.infer.export`.

PyTorch's exporter talks about itself while it works (deprecations, tracer and registry
notes); that is not the user's to act on, so it is hidden (:func:`_only_mer_warnings`) unless
``--debug``. mer's own warnings (:class:`mer.errors.MERWarning`) still show.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import warnings
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def _only_mer_warnings(debug: bool) -> Iterator[None]:
    """Within the block, ignore every warning that is not a :class:`MERWarning` and keep
    ``torch.onnx``'s log to errors; ``debug`` shows everything, as it was."""
    if debug:
        yield
        return
    from ..errors import MERWarning

    log = logging.getLogger("torch.onnx")
    level = log.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("default", MERWarning)
        log.setLevel(logging.ERROR)
        try:
            yield
        finally:
            log.setLevel(level)


def _export(args: argparse.Namespace) -> int:
    from ..bundle import Bundle
    from ..infer.export import export_onnx, export_runtime
    from ..models.checkpoint import load_checkpoint

    if args.onnx and not 0.5 <= args.seconds <= 3600:
        from ..errors import ConfigError

        raise ConfigError(f"--seconds {args.seconds:g}: the fixed input window must be 0.5 to 3600 seconds")
    bundle = Bundle.resolve(args.model, args.trust_remote_code)
    if args.onnx:
        from ..bundle import checkpoint_paths
        from ..io import refuse_collisions

        onnx = Path(args.onnx)
        refuse_collisions([*checkpoint_paths(bundle.stem), *(bundle.graphs or ())],
                          [("--onnx", onnx), ("--onnx's description", onnx.with_suffix(".json"))],
                          "a file of the model")
    if args.runtime:
        with _only_mer_warnings(args.debug):
            embed, head = export_runtime(bundle)
        print(f"wrote {embed} and {head}; `mer predict --model {args.model}` now runs them with onnxruntime")
        return 0
    model, _ = load_checkpoint(bundle)
    with _only_mer_warnings(args.debug):
        path = export_onnx(model, bundle, args.onnx, args.seconds)
    print(f"wrote {path} and {path.with_suffix('.json')} (input: {args.seconds:g} s of features; see the JSON)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX",
                       description="Export a bundled model or checkpoint to ONNX (features in, valence/arousal out).")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--onnx", metavar="FILE.onnx", help="one graph for a fixed window, for your own deployment")
    what.add_argument("--runtime", action="store_true",
                      help="write CHECKPOINT.embed.onnx and .head.onnx beside the checkpoint, which `mer predict` "
                           "then runs without PyTorch (models with per-step embeddings, e.g. musicnn)")
    p.add_argument("--model", default="default",
                   help="a bundled model, a checkpoint or a run folder (default: default)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="hf: backbones only: let the model run Python code that its own folder ships (MERT)")
    p.add_argument("--seconds", type=float, default=30.0, help="--onnx: fixed input window (default 30 s)")
    p.set_defaults(handler=_export)
