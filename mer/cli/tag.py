"""``mer tag PATH...``: write the emotion into each audio file's own tags (:mod:`mer.tags`).

Three sources: a prediction (default: files already tagged by the same model, version and
weights are skipped without predicting, ``--force`` predicts them again), the library
(``--db music.sqlite``: what ``mer index`` predicted, nothing predicted again; without PATH,
every song of the library), or nothing (``--remove`` takes mer's fields and MOOD value out).
``--dry-run`` prints what would change and writes nothing.

One line per file that changes goes to standard output; a file left alone gets one
``mer: skipped: FILE: reason`` line (read-only, no tag format mer writes, ...), a file that
cannot be predicted or written one ``mer: error:`` line (exit status 1 then); a summary ends
the run on stderr. Only the given files, and files inside the given folders, are written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from typing import Any, Callable

from ..errors import ConfigError, MERError
from ._args import add_model, add_quiet, add_workers, resolve_model

_SONG = ("SELECT path, size, mtime_ns, valence, arousal, quadrant, p_q1, p_q2, p_q3, p_q4, model, model_version, "
         "weights_sha1 FROM songs")


class _Run:
    """Counts and one-line reports of a run, printed through the progress bar."""

    def __init__(self, args: argparse.Namespace, total: int) -> None:
        from tqdm import tqdm

        self.args, self.t0 = args, time.perf_counter()
        self.counts: Counter[str] = Counter()
        self.bar = tqdm(total=total, unit="file", desc="tag", file=sys.stderr, leave=False,
                        disable=True if args.quiet or total < 2 else None)

    def note(self, kind: str, message: str) -> None:
        """Count a file as ``kind`` (skipped, error, unchanged); print its line unless unchanged."""
        self.counts[kind] += 1
        self.bar.update(1)
        if kind != "unchanged":
            self.bar.write(f"mer: {kind}: {message}", file=sys.stderr)

    def write(self, path: str, emotion: Any, roots: list[str], guard: Callable[[], str | None] | None = None) -> None:
        """Tag ``path`` with ``emotion`` (None: remove), reporting the outcome. ``guard()``: a reason
        to skip the file when it would change (a library row older than the file)."""
        from ..tags import TagSkip, describe, write

        a = self.args
        try:
            if guard is not None and (why := guard()) and write(path, emotion, dry_run=True, roots=roots):
                raise TagSkip(f"{path}: {why}")
            changes = write(path, emotion, touch=a.touch, dry_run=a.dry_run, roots=roots)
        except TagSkip as exc:
            return self.note("skipped", str(exc))
        except MERError as exc:
            return self.note("error", str(exc))
        if not changes:
            return self.note("unchanged", path)
        verb = "removed" if emotion is None else "tagged"
        self.counts[verb] += 1
        self.bar.update(1)
        if a.dry_run:
            line = f"would be {verb}: {path}: {describe(changes)}"
        elif emotion is None:
            line = f"removed: {path} ({len(changes)} fields)"
        else:
            v = emotion.values()
            line = f"tagged: {path} ({emotion.mood}, valence {v['VALENCE']:.3f}, arousal {v['AROUSAL']:.3f} on 0-1)"
        self.bar.write(line, file=sys.stdout)

    def close(self, found: int) -> int:
        """Print the summary line; the exit status (1 when a file failed)."""
        self.bar.close()
        c, would = self.counts, "would be " if self.args.dry_run else ""
        parts = [f"{c[k]} {would}{k}" for k in ("tagged", "removed") if c[k]]
        parts += [f"{c[k]} {label}" for k, label in (("unchanged", "unchanged"), ("skipped", "skipped"),
                                                      ("error", "failed")) if c[k]]
        print(f"tag: {found} files: {', '.join(parts) or 'nothing to do'}; {time.perf_counter() - self.t0:.1f} s",
              file=sys.stderr)
        return 1 if c["error"] else 0


def _files(paths: list[str]) -> tuple[list[str], list[str]]:
    """(audio files under ``paths``, in ``mer predict``'s order, each once; errors for paths that
    hold none, and for ``-``: tags live in files, not in standard input)."""
    from .predict import _expand

    found, errors = _expand([p for p in paths if p != "-"])
    if "-" in paths:
        errors.append("-: mer tag writes into files; give their paths, not standard input")
    files, seen = [], set()
    for f in map(str, found):
        if os.path.realpath(f) not in seen:  # a file given twice (or by two names) is tagged once
            seen.add(os.path.realpath(f))
            files.append(f)
    return files, errors


def _library_rows(db: str) -> dict[str, dict[str, Any]]:
    """{absolute path: songs row} of the library ``db`` (read only)."""
    from ..library.store import connect

    conn = connect(db, create=False)
    try:
        return {r["path"]: dict(r) for r in conn.execute(_SONG)}
    finally:
        conn.close()


def _stale(row: dict[str, Any], real: str) -> Callable[[], str | None]:
    """A guard: why the library's prediction may not be this file's (it changed since)."""
    def why() -> str | None:
        st = os.stat(real)
        if (st.st_size, st.st_mtime_ns) != (row["size"], row["mtime_ns"]):
            return "changed since `mer index` predicted it; run `mer index` on it again first"
        return None
    return why


def _tag(args: argparse.Namespace) -> int:
    import mutagen  # noqa: F401  (the tags extra: when missing, say so before any file is read)

    from ..io import clean_stale_temps
    from ..tags import Emotion, check, read, same_model

    if not args.paths and not args.db:
        raise ConfigError("give the files or folders to tag, or --db LIBRARY to tag what `mer index` predicted")
    if args.remove and args.db:
        raise ConfigError("--remove takes mer's tags out and needs no --db; give the files or folders")
    bundle = None
    if not (args.remove or args.db):  # a wrong --model/--device/--backend: one line, before any file is read
        from ..infer.backends import choose_backend

        bundle = resolve_model(args.model, args.trust_remote_code)
        choose_backend(bundle, args.device, args.backend)
    rows = _library_rows(args.db) if args.db else {}
    files, errors = _files(args.paths) if args.paths else (sorted(rows), [])
    roots = [os.path.realpath(p) for p in (args.paths or files)]
    if not args.dry_run:
        for folder in sorted({os.path.dirname(os.path.realpath(f)) for f in files}):
            clean_stale_temps(folder)  # what a killed mer tag left beside the files (journalled, said)
    for e in errors:
        print(f"mer: error: {e}", file=sys.stderr)
    run = _Run(args, len(files))
    try:
        if args.remove or args.db:
            for f in files:
                row = rows.get(os.path.realpath(f))
                if args.remove:
                    run.write(f, None, roots)
                elif not os.path.exists(f):
                    run.note("skipped", f"{f}: gone since `mer index` saw it (`mer index --prune` forgets it)")
                elif row is None:
                    run.note("skipped", f"{f}: not in {args.db}; index it first with `mer index {f} --db {args.db}`")
                else:
                    run.write(f, Emotion.from_row(row), roots, guard=_stale(row, os.path.realpath(f)))
        else:
            from ..infer.predictor import run_batch
            from ..tags import TagSkip

            assert bundle is not None  # resolved above, before the run started
            todo = []
            for f in files:
                try:
                    current = read(check(f, roots))
                except TagSkip as exc:
                    run.note("skipped", str(exc))
                    continue
                except MERError as exc:
                    run.note("error", str(exc))
                    continue
                if not args.force and same_model(current, bundle.name, bundle.version, bundle.digest):
                    run.note("unchanged", f)
                else:
                    todo.append(f)
            for res in run_batch(bundle, todo, args.device, args.backend, args.workers):
                for w in res.warnings:
                    run.bar.write(f"mer: warning: {w}", file=sys.stderr)
                if res.prediction is None:
                    run.note("error", res.error or f"{res.path}: failed")
                else:
                    run.write(res.path, Emotion.from_prediction(res.prediction), roots)
    finally:
        status = run.close(len(files))
    return 1 if errors else status


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tag", help="write the emotion into the audio files' own tags (mutagen)",
                       description="Write valence, arousal (0-1), the quadrant's mood and its probabilities "
                                   "(MOOD_HAPPY, MOOD_AGGRESSIVE, MOOD_SAD, MOOD_RELAXED) and the model into each "
                                   "file's tags: ID3v2.4 (MP3, WAV, AIFF), Vorbis comments (FLAC, Ogg, Opus), MP4 "
                                   "atoms (M4A). The audio is not touched; each file is rewritten as a copy that "
                                   "replaces it, keeping its owner, mode and modification time.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="audio files or folders (searched recursively); with "
                                                             "--db and no PATH, every song of the library")
    p.add_argument("--db", metavar="FILE", help="write what `mer index --db FILE` predicted (nothing is predicted)")
    p.add_argument("--remove", action="store_true", help="take mer's tags (and its MOOD value) out")
    p.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    p.add_argument("--force", action="store_true", help="predict again files already tagged by this model")
    p.add_argument("--touch", action="store_true", help="let tagged files' modification time be now "
                                                        "(default: keep it)")
    add_model(p)
    add_workers(p)
    add_quiet(p)
    p.set_defaults(handler=_tag)
