"""``mer search DB --mood calm | --va 0.6,-0.4 | --like song.mp3``: find songs by feeling or sound.

``--mood``: a mood word (54 of them, placed on Russell's circumplex: :mod:`mer.library.moods`)
becomes a (valence, arousal) point; ``--va``: a point given directly (canonical scale [-1, 1]);
both rank songs by Euclidean distance on the plane. ``--like FILE``: songs whose sound (clip
embedding) is closest by cosine similarity; the file need not be in the library (it is then
predicted with the library's model). Output: a table (default), csv, json or jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import ConfigError
from ..io import csv_text
from .predict import shorten

FORMATS = ("table", "csv", "json", "jsonl")
COLUMNS = ("rank", "id", "path", "artist", "title", "duration", "valence", "arousal", "quadrant",
           "p_q1", "p_q2", "p_q3", "p_q4")


def render(songs: list[dict[str, Any]], fmt: str, score: str | None, width: int = 50) -> str:
    """Songs (with ``rank``) as text: table, csv, json or jsonl; ``score``: the key of their score column."""
    cols = COLUMNS + ((score,) if score else ())
    if fmt == "csv":
        return csv_text(songs, cols)
    if fmt == "json":
        return json.dumps(songs, indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(s) + "\n" for s in songs)
    head = f"{'#':>3} {score or '':>10} {'valence':>8} {'arousal':>8} {'quad':>4} {'min':>5}  file"
    lines = [head]
    for s in songs:
        sc = f"{s[score]:>10.4f}" if score else " " * 10
        lines.append(f"{s['rank']:>3} {sc} {s['valence']:>8.3f} {s['arousal']:>8.3f} {s['quadrant']:>4} "
                     f"{s['duration'] / 60:>5.1f}  {shorten(s['path'], width)}")
    return "\n".join(lines) + "\n"


def _search(args: argparse.Namespace) -> int:
    from ..library import Library
    from ..library.moods import parse_va

    if args.k < 1:
        raise ConfigError(f"-k must be 1 or more (got {args.k})")
    with Library(args.db, index=args.index) as lib:
        if args.mood is not None:
            found = lib.search_mood(args.mood, args.k)
            score = "probability" if found and "probability" in found[0] else "distance"
        elif args.va is not None:
            found, score = lib.search_va(*parse_va(args.va), k=args.k), "distance"
        else:
            found, score = lib.search_like(args.like, args.k, model=args.model), "similarity"
    if not found:
        print(f"mer: {args.db}: no songs to search; index a folder first with `mer index DIR --db {args.db}`",
              file=sys.stderr)
    songs = [{"rank": n + 1, **s} for n, s in enumerate(found)]
    sys.stdout.write(render(songs, args.format, score))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="find songs in a library by mood, valence-arousal point or sound",
                       description="Search a library made by `mer index`: by mood word, by a (valence, arousal) "
                                   "point on the canonical scale [-1, 1], or by sound similarity to an audio file.")
    p.add_argument("db", metavar="DB", help="the library database (mer index --db)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--mood", metavar="WORD", help="a mood word: calm, happy, sad, angry, tense, relaxed, ...")
    what.add_argument("--va", metavar="V,A",
                      help="a point: valence,arousal in [-1, 1], e.g. 0.6,-0.4 (negative first: --va=-0.6,0.4)")
    what.add_argument("--like", metavar="FILE", help="songs that sound like FILE (need not be indexed)")
    p.add_argument("-k", type=int, default=20, help="how many songs (default 20)")
    p.add_argument("--format", choices=FORMATS, default="table", help="table (default), csv, json or jsonl")
    p.add_argument("--model", default=None,
                   help="for --like on a file not in the library: the model (default: the library's own)")
    p.add_argument("--index", choices=("auto", "exact", "ann"), default="auto",
                   help="for --like: exact search, or an approximate HNSW graph kept in DB.ann/ (the ann extra); "
                        "auto (default) uses the graph from 100,000 songs when the extra is installed")
    p.set_defaults(handler=_search)
