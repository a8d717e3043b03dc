"""The ``mer`` command line: parses arguments, calls library functions, formats output.

``parse_args(argv)`` is testable without running anything; ``main(argv)`` returns the exit
status. Any :class:`MERError` becomes one line on stderr and exit status 1 (2 for usage
errors, 130 for Ctrl-C); ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from typing import Callable, Sequence

from . import __version__
from .errors import MERError

Handler = Callable[[argparse.Namespace], int]


def _cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert

    report = convert(args.src, args.dst, sr=args.sr, channels=args.channels, overwrite=args.overwrite,
                     jobs=args.jobs, progress=not args.quiet)
    print(f"converted {len(report.converted)}, skipped {len(report.skipped)} (already there; --overwrite to redo), "
          f"failed {len(report.failed)}")
    return 1 if report.failed else 0


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert audio files (mp3, ogg, flac, ...) to 16-bit WAV, mirroring folders",
                       description="Convert every audio file under SRC to 16-bit PCM WAV under DST "
                                   "(same relative paths). Existing outputs are skipped unless --overwrite.")
    p.add_argument("src", help="an audio file or a folder searched recursively")
    p.add_argument("dst", help="output folder (or a .wav path when SRC is one file)")
    p.add_argument("--sr", type=int, default=44100, help="output sample rate in Hz (default 44100)")
    p.add_argument("--channels", type=int, choices=(1, 2), default=None, help="1 = mono, 2 = stereo (default: as source)")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    p.add_argument("-j", "--jobs", type=int, default=None, help="parallel processes (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_convert)


#: Each entry adds one sub-command; keep them in the order shown by ``mer --help``.
def _add_datasets(sub: argparse._SubParsersAction) -> None:
    from .cli_datasets import add_parser

    add_parser(sub)


def _add_models(sub: argparse._SubParsersAction) -> None:
    from .cli_models import add_parser

    add_parser(sub)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_convert, _add_datasets, _add_models]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mer", description="Music emotion recognition: valence and arousal from audio.")
    parser.add_argument("--version", action="version", version=f"mer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _one_line_warnings(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"mer: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # also during start-up, before a command runs
        print("mer: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    if not args.debug:
        warnings.showwarning = _one_line_warnings
    try:
        return args.handler(args)
    except MERError as exc:
        if args.debug:
            traceback.print_exc()
        else:
            print(f"mer: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line unless --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(f"mer: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
