"""``mer predict PATH...``: valence, arousal, quadrant and the 2 Hz curve of audio files.

Files and folders (searched recursively, natural order: 2, 3, 10) are processed in input
order; ``-`` reads one file from standard input. Batches run in worker processes
(:mod:`mer.infer.batch`) and results are printed as they arrive, in order: in a terminal each
row is printed through the progress bar, never glued to it. A file that cannot be read prints
one ``mer: error:`` line on stderr (``--debug`` adds its traceback) and the batch goes on;
the exit status is 1 at the end if any file failed. ``-o FILE`` writes the output atomically
(an interruption leaves the previous file, never half of one).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from ..errors import ConfigError, MERError, require
from ..infer import rows, schema
from ._args import add_model, add_quiet, add_workers, resolve_model

SCALES = ("canonical", "1-9", "0-1")


def natural_key(path: Path) -> list:
    """Sort key that orders ``2, 3, 10`` as numbers, not as text."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def _expand(paths: list[str]) -> tuple[list[Path], list[str]]:
    from ..audio import find_audio

    files, errors = [], []
    for p in paths:
        if p == "-":
            files.append(Path("-"))
            continue
        try:
            found = find_audio([p])
        except MERError as exc:
            errors.append(str(exc))
            continue
        if not found:
            errors.append(f"{p}: no audio files in this folder")
        files += sorted(found, key=natural_key) if Path(p).is_dir() else found
    return files, errors


@contextlib.contextmanager
def _stdin_file(files: list[Path]) -> Iterator[dict[str, str]]:
    """Copy standard input (``-``) to a private temporary file, streamed; removed afterwards."""
    if Path("-") not in files:
        yield {}
        return
    if files.count(Path("-")) > 1:
        raise ConfigError("'-' (standard input) can be given once")
    with tempfile.TemporaryDirectory(prefix="mer-stdin-") as d:
        tmp = Path(d) / "stdin.audio"
        try:
            with open(tmp, "wb") as fh:
                shutil.copyfileobj(sys.stdin.buffer, fh, 1 << 20)
        except OSError as exc:
            raise ConfigError(f"standard input ('-') could not be stored in {d} ({exc.strerror}); free some space "
                              "in the temporary folder (TMPDIR) or pass the file by name") from None
        if tmp.stat().st_size == 0:
            raise ConfigError("standard input ('-') is empty; pipe an audio file, e.g. `cat song.mp3 | mer predict -`")
        yield {str(tmp): "-"}


#: the table's layout: columns are joined by GAP; valence and arousal take NUMBER characters,
#: the quadrant QUADRANT (its longest: "Q3 sad/depressed (100%)"); the file column gets what
#: the terminal leaves (at least FILE_MIN, room for a segment's "  9990.0-10000.0 s"); the
#: tags column, last, is shown when at least TAGS_MIN is left for it, and takes what is left
GAP, NUMBER, QUADRANT, FILE_MIN, TAGS_MIN = "  ", 7, 23, 18, 20


class Writer:
    """Formats results (table, csv, json, jsonl) and hands each line to ``emit``.

    Nothing is written before the first result (:meth:`add`): a run in which every input
    fails prints no header (json: ``[]`` at :meth:`end`).

    The table fits ``columns`` characters (default: the terminal's width, ``$COLUMNS`` first,
    80 without a terminal), one layout for every row: the widths are fixed at the first
    result from ``columns`` and ``longest`` (the longest name to be shown, known before any
    file is predicted), never from the rows, so a streamed table stays aligned. Columns: file,
    valence, arousal, quadrant and, when the model gives tags and the terminal leaves room
    (about 100 columns), ``tags``: as many of the top tags, best first, as fit (all five are in
    json/jsonl). A name too long for the file column is cut from the left (:func:`shorten`).
    Below about 60 columns the fixed columns alone do not fit and lines run longer; widths
    count characters, not terminal cells (a CJK name may run wider).
    """

    COLUMNS = schema.FILE_COLUMNS  # the fields are defined once, in mer.infer.schema
    SEGMENT_COLUMNS = schema.SEGMENT_COLUMNS

    def __init__(self, fmt: str, scale: str, segments: bool, emit: Callable[[str], None],
                 columns: int | None = None, longest: int = 0, moods: list[str] | None = None) -> None:
        self.fmt, self.scale, self.segments, self.emit, self.n = fmt, scale, segments, emit, 0
        self.moods = list(moods or ())  # csv: one column per mood word (``--mood-columns``), after the schema's
        self.last = "tags"  # the table's last column: "moods" for mood-word models (set by the first result)
        self.columns = columns or shutil.get_terminal_size().columns
        self.longest = longest
        self.file_width, self.tags_width = 0, 0
        self.started = self.marked = False


    def start(self, tags: bool = False) -> None:
        """The header (csv, table) or the opening bracket (json), written with the first result;
        ``tags``: whether the results carry tags (they all come from one model)."""
        self.started = True
        if self.fmt == "csv":
            self.emit(rows.csv_line(rows.columns(self.segments, self.moods)))
        elif self.fmt == "table":
            self.file_width, self.tags_width = self._layout(tags)
            self._line("file", "valence", "arousal", "quadrant", self.last if self.tags_width else "")
        elif self.fmt == "json":
            self.emit("[")

    def _layout(self, tags: bool) -> tuple[int, int]:
        """(file, tags) column widths for ``self.columns``; tags 0 when not shown."""
        room = self.columns - 3 * len(GAP) - 2 * NUMBER - QUADRANT
        file = max(FILE_MIN, min(self.longest or room, room))
        if not tags or room - FILE_MIN - len(GAP) < TAGS_MIN:
            return file, 0
        tags_width = max(TAGS_MIN, room - file - len(GAP))
        return min(file, room - len(GAP) - tags_width), tags_width

    def add(self, pred: Any, shown: str) -> None:
        d = pred.on_scale(self.scale)
        if not self.started:
            self.last = "moods" if "moods" in d else "tags"  # the table's last column: mood words, else tags
            self.start(tags=self.last in d)
        d["path"] = shown
        made_by = {"model": d.get("model", ""), "weights_sha1": d.get("weights_sha1", "")}  # on every row
        if self.fmt == "csv" and self.segments:
            for row in rows.segment_rows(pred, self.scale, shown, self.moods):
                self.emit(rows.csv_line(row.values()))
        elif self.fmt == "csv":
            self.emit(rows.csv_line(rows.file_row(pred, self.scale, shown, self.moods).values()))
        elif self.fmt == "jsonl" and self.segments:
            for s in d.get("segments", []):
                self.emit(json.dumps({"path": shown, **s, **made_by}))
        elif self.fmt == "jsonl":
            self.emit(json.dumps(d))
        elif self.fmt == "json":
            self.emit(("," if self.n else "") + readable_json(d))
        else:
            self._line(shown, f"{d['valence']:.3f}", f"{d['arousal']:.3f}",
                       f"{d['quadrant']} {d['quadrant_words']}{_percent(d.get('confidence'))}{self._mark(d)}",
                       _fit_words(list(d.get(self.last, ())), self.tags_width))
            for s in d.get("segments", []):
                confidence = s.get("p_" + s["quadrant"].lower())
                self._line(f"  {s['start']:.1f}-{s['end']:.1f} s", f"{s['valence']:.3f}", f"{s['arousal']:.3f}",
                           s["quadrant"] + _percent(confidence) + self._mark(s),
                           _fit_words(list(s.get("moods", ())), self.tags_width))
        self.n += 1

    def _line(self, name: str, valence: str, arousal: str, quadrant: str, tags: str = "") -> None:
        """One table line (the header too) in the layout :meth:`start` fixed."""
        cells = [f"{shorten(name, self.file_width):<{self.file_width}}", f"{valence:>{NUMBER}}",
                 f"{arousal:>{NUMBER}}", f"{quadrant[:QUADRANT]:<{QUADRANT}}", tags]
        self.emit(GAP.join(cells).rstrip())

    def _mark(self, row: dict[str, Any]) -> str:
        """"*" when the (valence, arousal) point lies in another quadrant than the reported one."""
        if row.get("point_quadrant", row["quadrant"]) == row["quadrant"]:
            return ""
        self.marked = True
        return "*"

    def end(self) -> None:
        if self.fmt == "json":
            self.emit("]" if self.started else "[]")
        elif self.fmt == "table" and self.marked:
            import textwrap

            for line in textwrap.wrap("* the valence/arousal point lies in another quadrant (near an axis, where the "
                                      "model's quadrant classifier and its regression disagree; the quadrant shown "
                                      "is the classifier's)", max(40, self.columns)):
                self.emit(line)


def _percent(p: float | None) -> str:
    return f" ({p:.0%})" if p is not None else ""


def _fit_words(words: list[str], width: int) -> str:
    """As many of ``words`` (best first) as fit in ``width``, comma-separated; a first word
    longer than ``width`` is cut; "" when ``width`` is 0."""
    text = ""
    for w in words:
        longer = f"{text}, {w}" if text else w
        if len(longer) > width:
            break
        text = longer
    return text or (words[0][: width - 1] + "…" if words and width else "")


def shorten(path: str, width: int) -> str:
    """``path`` in at most ``width`` characters, cut from the left so that its end (the part
    that tells files apart) shows: at a folder boundary where one fits ("…/album/song.mp3"),
    else inside the file name ("…ng_title.mp3"). A path that fits is returned whole."""
    if len(path) <= width:
        return path
    for i, ch in enumerate(path):
        if ch in (os.sep, os.altsep) and 1 + len(path) - i <= width:
            return "…" + path[i:]
    return "…" + path[len(path) - width + 1:] if width > 0 else ""


def readable_json(obj: Any, indent: int = 2, _depth: int = 0) -> str:
    """``json.dumps(obj, indent=indent)``, except that a list of plain values (numbers,
    strings) stays on one line: ``"valence_curve": [0.1, 0.2, ...]``, so a 4-minute song is
    about 30 lines, not 1,500, while each key still has a line of its own. ``json.loads``
    reads it back to the same values (keys are written as strings)."""
    inner = " " * indent * (_depth + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(str(k))}: {readable_json(v, indent, _depth + 1)}" for k, v in obj.items()]
    elif isinstance(obj, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in obj):
        items = [inner + readable_json(v, indent, _depth + 1) for v in obj]
    else:
        return json.dumps(obj)
    opening, closing = "{}" if isinstance(obj, dict) else "[]"
    return opening + "\n" + ",\n".join(items) + "\n" + " " * indent * _depth + closing


def _plot_path(args: argparse.Namespace, shown: str, used: set[str]) -> Path | None:
    if args.plot:
        return Path(args.plot)
    if args.plot_dir:  # collision-proof: NAME-<hash of the input's full path>.png, stable across runs
        import hashlib

        stem = Path(shown).stem[:100] if shown != "-" else "stdin"
        key = str(Path(shown).resolve()) if shown != "-" else "-"
        name = f"{stem}-{hashlib.sha1(os.fsencode(key)).hexdigest()[:8]}.png"
        used.add(name)
        return Path(args.plot_dir) / name
    return None


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    """Standard output, or ``path`` written atomically (renamed into place at the end; left
    untouched when the body raises :class:`_KeepOutput`)."""
    if not path:
        yield sys.stdout
        return
    from ..io import atomic_path

    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{target}: is a folder; give -o a file name")
    try:
        with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
            yield fh
    except _KeepOutput:  # nothing to write: the temporary file is gone, the old one stays
        print(f"mer: {target} left as it was (no input could be predicted)", file=sys.stderr)


class _KeepOutput(Exception):
    """Raised inside :func:`_output` to leave ``-o FILE`` untouched."""


def _predict(args: argparse.Namespace) -> int:
    if args.plot and args.plot_dir:
        raise ConfigError("use --plot FILE.png for one file or --plot-dir DIR for many, not both")
    files, errors = _expand(args.paths)
    from ..io import refuse_collisions

    refuse_collisions([f for f in files if str(f) != "-"],
                      [("-o", args.output), ("--plot", args.plot), ("--embeddings", args.embeddings),
                       ("--plot-dir", args.plot_dir)])
    if args.plot and len(files) > 1:
        raise ConfigError(f"--plot writes one picture but the input holds {len(files)} audio files; use --plot-dir DIR")
    if args.plot or args.plot_dir:
        require("matplotlib", "--plot/--plot-dir")
    if args.segments is not None and args.segments <= 0:
        raise ConfigError(f"--segments must be a positive number of seconds (got {args.segments:g})")
    if args.offset < 0 or (args.duration is not None and args.duration <= 0):
        raise ConfigError("--offset must be 0 or more and --duration more than 0 (seconds)")
    from ..infer.backends import choose_backend

    bundle = resolve_model(args.model, args.trust_remote_code)
    engine = choose_backend(bundle, args.device, args.backend)  # a bad --model/--device/--backend fails here,
    if args.mood_columns and not bundle.mood_words:
        raise ConfigError(f"--mood-columns needs a model with mood words (the default has them); {bundle.name} has none")
    if args.embeddings and engine == "onnx" and bundle.graphs is None:  # before any file is read
        raise ConfigError(f"--embeddings needs a model with per-step embeddings; {bundle.name} has none")
    for e in errors:
        print(f"mer: error: {e}", file=sys.stderr)
    from ..io import clean_stale_temps

    for folder in (args.plot_dir, Path(args.output).parent if args.output else None):
        if folder:
            clean_stale_temps(folder)  # what a killed run left half-written
    from ..infer.predictor import run_batch

    options = {"offset": args.offset, "duration": args.duration, "segments": args.segments,
               "embeddings": bool(args.embeddings)}
    failed, kept = len(errors), []
    used: set[str] = set()
    with _stdin_file(files) as stdin_names, _output(args.output) as out:
        paths = [str(f) if str(f) != "-" else next(iter(stdin_names)) for f in files]
        bar = _NoBar() if args.quiet or len(paths) < 2 else _bar(len(paths))
        live = out is sys.stdout and sys.stdout.isatty() and not bar.disable

        def emit(line: str) -> None:
            if live:
                bar.write(line, file=out)  # through the bar, never glued to it
            else:
                print(line, file=out)
            out.flush()

        longest = max((len(stdin_names.get(p, p)) for p in paths), default=0)  # every name, before any row
        writer = Writer(args.format, args.scale, args.segments is not None, emit, longest=longest,
                        moods=bundle.mood_words if args.mood_columns else None)
        try:
            for res in run_batch(bundle, paths, args.device, args.backend, args.workers, options):
                bar.update(1)
                shown = stdin_names.get(res.path, res.path)
                for w in res.warnings:
                    bar.write(f"mer: warning: {_named(w, stdin_names)}", file=sys.stderr)
                if res.prediction is None:
                    failed += 1
                    bar.write(f"mer: error: {_named(res.error, stdin_names)}", file=sys.stderr)
                    if args.debug and res.traceback:
                        bar.write(res.traceback.rstrip(), file=sys.stderr)
                    continue
                writer.add(res.prediction, shown)
                if args.embeddings:
                    kept.append((shown, res.prediction))
                target = _plot_path(args, shown, used)
                if target is not None:
                    from ..plot import plot_prediction

                    plot_prediction(res.prediction, target, args.scale)
                    if args.plot:
                        print(f"plot: {target}", file=sys.stderr)
        finally:
            bar.close()
            writer.end()
        if args.output and not writer.n:
            raise _KeepOutput  # every input failed: the previous -o FILE stays as it was
    if args.embeddings and kept:
        _save_embeddings(args.embeddings, kept, bundle)
        print(f"embeddings: {args.embeddings} ({len(kept)} files)", file=sys.stderr)
    if args.plot_dir and writer.n:
        print(f"plots: {args.plot_dir} ({writer.n} files)", file=sys.stderr)
    if failed:
        print(f"mer: {failed} of {len(files) + len(errors)} input(s) failed", file=sys.stderr)
    return 1 if failed else 0


class _NoBar:
    """What ``mer predict`` uses instead of a progress bar for one file or ``--quiet`` (tqdm's
    import is a tenth of a one-file run's start-up)."""

    disable = True

    def update(self, n: int = 1) -> None:
        pass

    def write(self, line: str, file: TextIO | None = None) -> None:
        print(line, file=file or sys.stderr)

    def close(self) -> None:
        pass


def _bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="file", desc="predict", disable=None, file=sys.stderr, leave=False)


def _named(message: str | None, stdin_names: dict[str, str]) -> str:
    """``message`` with the private copy of standard input called "standard input"."""
    message = message or ""
    for tmp in stdin_names:
        message = message.replace(tmp, "standard input")
    return message


def _save_embeddings(path: str, kept: list[tuple[str, Any]], bundle: Any) -> None:
    """One ``.npz``: ``paths`` (N,), ``embedding`` (N, D) clip means, ``step_embeddings`` (M, D)
    all files' per-step rows concatenated, ``step_offsets`` (N + 1,) where each file's rows
    start, ``step_times`` (M,) seconds, and the model's name, version and weights digest."""
    import numpy as np

    from ..io import atomic_path

    steps = [p.step_embeddings for _, p in kept]
    offsets = np.cumsum([0] + [len(s) for s in steps])
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, paths=np.array([name for name, _ in kept]),
                     embedding=np.stack([p.embedding for _, p in kept]),
                     step_embeddings=np.concatenate(steps), step_offsets=offsets,
                     step_times=np.concatenate([p.times for _, p in kept]),
                     model=np.array(bundle.name), model_version=np.array(bundle.version),
                     weights_sha1=np.array(bundle.digest))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="valence, arousal, quadrant and 2 Hz curve of audio files",
                       description="Predict the emotion of audio files and folders (recursive; '-' reads standard "
                                   "input). Values are on the canonical scale [-1, 1] (0 neutral) unless --scale.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders, or - for standard input")
    add_model(p)
    p.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default="table",
                   help="table (default: fits the terminal's width, $COLUMNS; the top mood words, or tags, when "
                        "there is room, about 100 columns), csv (one row per file, or per segment with --segments), "
                        "json or jsonl (with the 2 Hz curve, every mood word's probability and the top tags)")
    p.add_argument("--mood-columns", action="store_true",
                   help="csv: add one column per mood word (mood_WORD: the probability that AllMusic's editors "
                        "would give the song that word)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the results to FILE (atomically) instead of stdout")
    p.add_argument("--scale", choices=SCALES, default="canonical",
                   help="canonical [-1, 1] (default), 1-9 (DEAM, emoMusic) or 0-1 (PMEmo); plots too")
    p.add_argument("--offset", type=float, default=0.0, metavar="SECONDS", help="start this far into each file")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="use at most this much of each file")
    p.add_argument("--segments", type=float, metavar="SECONDS",
                   help="also one result per SECONDS-long segment (csv/jsonl: one row per segment)")
    p.add_argument("--embeddings", metavar="FILE.npz",
                   help="also save the model's clip and per-step embeddings (default model) to FILE.npz")
    p.add_argument("--plot", metavar="FILE.png", help="picture of one file: the valence-arousal plane and time")
    p.add_argument("--plot-dir", metavar="DIR", help="one picture per file into DIR")
    add_workers(p)
    add_quiet(p)
    p.set_defaults(handler=_predict)
