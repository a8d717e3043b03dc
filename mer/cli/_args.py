"""What the sub-commands share: one spelling per flag, one source per vocabulary.

Every command that reads a dataset takes ``--dataset NAME --root DIR --dataset-option
KEY=VALUE``; every command that runs a model takes ``--model``, ``--device`` (default
``auto``) and, where it can choose, ``--backend``; parallel commands take ``-j/--workers``;
progress bars go with ``-q/--quiet``. The choices come from the modules that own them.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError, ModelError
from ..infer.backends import BACKENDS, DEVICES


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """``["lexicon=x.csv", "channels=[16,32]"]`` -> dict (values parsed as YAML scalars/lists)."""
    import yaml

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


def add_dataset(p: argparse.ArgumentParser, required: bool = True, name: bool = True) -> None:
    """``--dataset NAME`` (unless the command takes it positionally), ``--root DIR``, ``--dataset-option``."""
    if name:
        p.add_argument("--dataset", required=required, help="dataset name (mer datasets list)")
    p.add_argument("--root", required=required, help="the dataset's folder")
    p.add_argument("--dataset-option", action="append", metavar="KEY=VALUE",
                   help="loader option, e.g. lexicon=PATH for 4q, scale=1-9 for folder (repeatable)")


def add_model(p: argparse.ArgumentParser, backend: bool = True) -> None:
    p.add_argument("--model", default="default",
                   help="a bundled model (default, fast), a checkpoint from `mer train` or a run folder "
                        "(default: default)")
    p.add_argument("--device", default="auto", choices=DEVICES,
                   help="auto (default: the CPU unless a PyTorch engine finds a GPU), cpu, cuda or mps")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="hf: backbones only: let the model run Python code that its own folder ships (MERT); "
                        "a run's files can never switch this on, only this flag")
    if backend:
        p.add_argument("--backend", choices=BACKENDS, default="auto",
                       help="auto (default): ONNX Runtime when the model has its ONNX graphs (the bundled "
                            "default does), else PyTorch")


def add_workers(p: argparse.ArgumentParser, what: str = "parallel processes") -> None:
    p.add_argument("-j", "--workers", type=int, default=0, help=f"{what} (default 0: one per core)")


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def resolve_model(spec: str, trust_remote_code: bool = False):  # noqa: ANN201  (mer.bundle.Bundle)
    """The bundle ``--model`` names, with the user's ``--trust-remote-code`` grant; an
    architecture name gets its own hint (only then is the model zoo, and torch, imported)."""
    from ..bundle import Bundle, bundled_models

    try:
        return Bundle.resolve(spec, trust_remote_code)
    except ModelError:
        from ..models import list_models

        if spec in list_models():
            raise ModelError(f"{spec!r} is an untrained architecture; pass a checkpoint from `mer train --model "
                             f"{spec}` or a bundled model ({', '.join(bundled_models())})") from None
        raise
