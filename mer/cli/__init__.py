"""The ``mer`` command line: parses arguments, calls library functions, formats output.

One module per sub-command (``mer/cli/<name>.py`` with ``add_parser``), the flags they share
in :mod:`mer.cli._args`. Commands import the library lazily, inside their handlers, so
``mer --help`` and the torch-free ``mer predict`` stay fast.

``parse_args(argv)`` is testable without running anything; ``main(argv)`` returns the exit
status. Any :class:`MERError` becomes one line on stderr and its ``exit_status`` (1; 2 for
usage errors such as an output that is also an input; 130 for Ctrl-C); ``--debug`` shows the
full traceback instead. Standard output closed by its reader (``mer predict DIR | head -3``)
ends the run quietly with status 0; standard output on a full disk says "disk full".
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import traceback
import warnings
from typing import Sequence

from .._version import __version__
from ..errors import MERError, missing_extra

#: Sub-commands in ``mer --help`` order; ``mer.cli.<name>`` has ``add_parser(subparsers)``.
COMMANDS = ("predict", "index", "search", "playlist", "tag", "serve", "train", "evaluate", "benchmark", "models", "export", "datasets", "convert")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of ``mer``. Given the arguments, it holds only the sub-command they name
    (importing one command module, not twelve: most of ``mer predict``'s start-up was the
    others' imports); without, or when they name none (``mer --help``, a typo), all of them."""
    parser = argparse.ArgumentParser(prog="mer", description="Music emotion recognition: valence and arousal from audio.")
    parser.add_argument("--version", action="version", version=f"mer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    named = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name in (named,) if named in COMMANDS else COMMANDS:
        importlib.import_module(f"{__package__}.{name}").add_parser(sub)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else list(argv)
    return build_parser(argv).parse_args(argv)


def _one_line_warnings(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"mer: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # also during start-up, before a command runs
        print("mer: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    if not args.debug:
        warnings.showwarning = _one_line_warnings
    try:
        try:
            return args.handler(args)
        except ModuleNotFoundError as exc:  # an optional extra that is not installed: say which
            hint = missing_extra(exc, args.command)
            if hint is None:
                raise
            raise hint from exc
    except MERError as exc:
        if args.debug:
            traceback.print_exc()
        else:
            print(f"mer: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        _silence_stdout()  # the reader (`| head -3`) has what it wanted: end quietly, like cat does
        return 0
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not _writes_stdout(exc):
            raise
        _silence_stdout()
        print("mer: error: disk full: standard output; free some space or write elsewhere (-o FILE)", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line unless --debug
        if args.debug:
            traceback.print_exc()
        else:
            print(f"mer: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return 1


def _stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone (POLLERR on its write end)."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows) or no real stdout: assume it is
        return True


def _writes_stdout(exc: OSError) -> bool:
    """Whether a disk-full error came from standard output (file errors name their file)."""
    return exc.filename is None


def _silence_stdout() -> None:
    """Point standard output at the null device, so Python's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
