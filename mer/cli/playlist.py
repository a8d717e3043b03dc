"""``mer playlist DB --from tense --to relaxed --minutes 40 -o set.m3u8``: a mood journey.

Songs whose (valence, arousal) path goes smoothly from one mood (word or ``V,A`` point) to
another, about ``--minutes`` long, no song twice (:mod:`mer.library.playlist`). ``-o``
writes M3U8 (``.m3u8``/``.m3u``), CSV or JSON by the file's suffix, atomically, with paths
relative to the playlist's folder unless ``--absolute``; without ``-o`` a table is printed.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError
from .search import render


def _playlist(args: argparse.Namespace) -> int:
    from ..library import Library
    from ..library.playlist import FORMATS, write

    if args.minutes <= 0:
        raise ConfigError(f"--minutes must be more than 0 (got {args.minutes:g})")
    if args.output and not any(args.output.lower().endswith(s) for s in FORMATS):
        raise ConfigError(f"{args.output}: unknown playlist format; name it .m3u8, .m3u, .csv or .json")
    from ..io import refuse_collisions

    refuse_collisions([args.db], [("-o", args.output)], "the library database")
    with Library(args.db) as lib:
        songs = lib.playlist(args.start, args.end, args.minutes)
        total = len(lib)
    if not songs:
        raise ConfigError(f"{args.db}: the library has no songs; index a folder first with "
                          f"`mer index DIR --db {args.db}`")
    minutes = sum(s["duration"] for s in songs) / 60
    if minutes < args.minutes * 0.9 and len(songs) == total:
        print(f"mer: warning: the library holds only {minutes:.1f} min of music (asked {args.minutes:g})",
              file=sys.stderr)
    if args.output:
        request = {"from": args.start, "to": args.end, "minutes": args.minutes, "total_minutes": round(minutes, 2)}
        write(songs, args.output, args.absolute, request)
        print(f"playlist: {args.output} ({len(songs)} songs, {minutes:.1f} min, {args.start} -> {args.end})",
              file=sys.stderr)
    else:
        sys.stdout.write(render([{"rank": s["position"], **s} for s in songs], "table", None))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("playlist", help="a playlist that moves from one mood to another",
                       description="Order songs of a `mer index` library so that their valence and arousal move "
                                   "smoothly from the --from mood to the --to mood, for about --minutes.")
    p.add_argument("db", metavar="DB", help="the library database (mer index --db)")
    p.add_argument("--from", dest="start", required=True, metavar="MOOD",
                   help="start mood: a word or V,A (negative first: --from=-0.6,0.4)")
    p.add_argument("--to", dest="end", required=True, metavar="MOOD", help="end mood: a word or V,A")
    p.add_argument("--minutes", type=float, default=40.0, help="about how long (default 40)")
    p.add_argument("-o", "--output", metavar="FILE", help="write FILE.m3u8, .m3u, .csv or .json (atomically)")
    p.add_argument("--absolute", action="store_true", help="absolute paths (default: relative to the playlist)")
    p.set_defaults(handler=_playlist)
