"""Where the benchmark scripts find the data: one ``--data DIR`` argument for all of them.

The data root holds ``4q-dev/``, ``lexicons/``, ``emomusic-mini/``, ... (as ``../shared/data``
beside the repository does). Its default is ``$MER_DATA`` when set, else ``../shared/data``
resolved against the repository root (not the working directory)::

    ap = argparse.ArgumentParser(parents=[data_parser()])
    args = ap.parse_args()
    clips = data_root(args) / "4q-dev"
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = "MER_DATA"


def default_root() -> Path:
    """``$MER_DATA`` if set (and not empty), else ``<repository>/../shared/data``."""
    env = os.environ.get(ENV)
    return Path(env).expanduser() if env else (REPO.parent / "shared" / "data").resolve()


def add_data_arg(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--data DIR`` (the data root) to ``parser``; returns ``parser``."""
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help=f"data root holding 4q-dev/, lexicons/, ... (default: ${ENV} if set, "
                             f"else ../shared/data beside the repository: {default_root()})")
    return parser


def data_parser() -> argparse.ArgumentParser:
    """A parent parser with only ``--data``, for ``argparse.ArgumentParser(parents=[...])``."""
    return add_data_arg(argparse.ArgumentParser(add_help=False))


def data_root(args: argparse.Namespace | Sequence[str] | None = None) -> Path:
    """The data root from parsed ``args`` (their ``data``), from an argv list (its ``--data``,
    other arguments ignored), or the default when ``args`` is None or gives none."""
    if args is None:
        return default_root()
    if not isinstance(args, argparse.Namespace):
        args, _ = data_parser().parse_known_args(list(args))
    root = getattr(args, "data", None)
    return Path(root) if root is not None else default_root()
