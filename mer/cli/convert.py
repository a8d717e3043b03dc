"""``mer convert``: audio files to 16-bit WAV (sub-command of the CLI)."""

from __future__ import annotations

import argparse

from ._args import add_quiet, add_workers


def _cmd_convert(args: argparse.Namespace) -> int:
    from ..convert import convert

    report = convert(args.src, args.dst, sr=args.sr, channels=args.channels, overwrite=args.overwrite,
                     jobs=args.workers or None, progress=not args.quiet)
    print(f"converted {len(report.converted)}, skipped {len(report.skipped)} (already there; --overwrite to redo), "
          f"failed {len(report.failed)}")
    return 1 if report.failed else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert audio files (mp3, ogg, flac, ...) to 16-bit WAV, mirroring folders",
                       description="Convert every audio file under SRC to 16-bit PCM WAV under DST "
                                   "(same relative paths). Existing outputs are skipped unless --overwrite.")
    p.add_argument("src", help="an audio file or a folder searched recursively")
    p.add_argument("dst", help="output folder (or a .wav path when SRC is one file)")
    p.add_argument("--sr", type=int, default=44100, help="output sample rate in Hz (default 44100)")
    p.add_argument("--channels", type=int, choices=(1, 2), default=None, help="1 = mono, 2 = stereo (default: as source)")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    add_workers(p)
    add_quiet(p)
    p.set_defaults(handler=_cmd_convert)
