"""``mer index DIR... --db music.sqlite``: predict a music collection into a library database.

Incremental (unchanged files are skipped, moved files recognised by their SHA-1, files
predicted by other weights redone) and kill-safe (results are committed every 20 files); see
:mod:`mer.library.indexer`. One summary line goes to stderr, and one ``mer: error:`` line
per file that failed in this run (exit status 1 then); failed files are recorded and not
retried on later runs unless ``--retry-failed`` (or the file changed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ._args import add_model, add_quiet, add_workers, resolve_model

if TYPE_CHECKING:
    from ..library.indexer import IndexStats


def summary(stats: "IndexStats") -> str:
    """One line: what an index run did, and how fast (x real time = audio seconds / wall seconds)."""
    s = stats
    parts = [f"{s.found} files", f"{s.predicted} predicted"]
    detail = [f"{n} {k}" for k, n in (("new", s.new), ("changed", s.changed), ("other model", s.remodelled),
                                      ("retried", s.retried)) if n]
    if detail:
        parts[-1] += f" ({', '.join(detail)})"
    if s.failed and s.predicted:  # "6 predicted, 4 failed" alone reads as if all six were added
        parts.append(f"{max(0, s.predicted - s.failed)} indexed")
    parts += [f"{n} {k}" for k, n in (("unchanged", s.unchanged), ("touched", s.touched), ("moved", s.moved),
                                      ("copied", s.copied), ("failed", s.failed),
                                      ("skipped (failed before; --retry-failed)", s.skipped_failed),
                                      ("pruned", s.pruned)) if n]
    if s.resumed or s.resumed_failed:
        parts.append(f"{s.resumed + s.resumed_failed} resumed from an interrupted run's shards"
                     + (f" ({s.resumed_failed} of them failed there)" if s.resumed_failed else ""))
    speed = f", {s.audio_seconds / s.seconds:.0f}x real time" if s.audio_seconds and s.seconds else ""
    return f"index: {', '.join(parts)}; {s.seconds:.1f} s{speed}"


def _index(args: argparse.Namespace) -> int:
    from ..library import Library

    from ..io import refuse_collisions

    refuse_collisions([p for p in args.paths if Path(p).is_file()], [("--db", args.db)], "an audio input")
    bundle = resolve_model(args.model, args.trust_remote_code)
    with Library(args.db) as lib:
        stats = lib.index(args.paths, model=bundle, workers=args.workers, prune=args.prune,
                          retry_failed=args.retry_failed, progress=not args.quiet, device=args.device,
                          backend=args.backend, ray=args.ray, shards=args.shards, shard_files=args.shard_files)
        total = len(lib)
    for e in stats.errors:
        print(f"mer: error: {e}", file=sys.stderr)
    print(summary(stats) + f"; {total} songs in {args.db}", file=sys.stderr)
    return 1 if stats.failed or (stats.resumed_failed and not args.retry_failed) else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="index a music collection by emotion into a SQLite library",
                       description="Predict valence, arousal, quadrant, 2 Hz curve, tags and the sound embedding "
                                   "of every audio file under DIR (recursive) into the SQLite file --db. Reruns "
                                   "only predict what is new or changed; moved files are recognised by content.")
    p.add_argument("paths", nargs="+", metavar="DIR", help="folders (searched recursively) or audio files")
    p.add_argument("--db", required=True, metavar="FILE", help="the library database (created when missing)")
    p.add_argument("--prune", action="store_true", help="forget files under DIR that are gone")
    p.add_argument("--retry-failed", action="store_true", help="try again the files that failed before")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="predict on Ray (the ray extra): 'auto' joins a running cluster or starts one here, "
                        "'local' starts one here, or ray://HEAD:10001; -j is then the number of Ray workers")
    p.add_argument("--shards", metavar="DIR", default=None,
                   help="with --ray: folder for the workers' Parquet shards, reachable from every node "
                        "(default: DB.shards beside the database); an interrupted run's shards are merged first")
    p.add_argument("--shard-files", type=int, default=None, metavar="N",
                   help="with --ray: files per shard (default 32)")
    add_model(p)
    add_workers(p)
    add_quiet(p)
    p.set_defaults(handler=_index)
