"""Reading the releases' CSV files: cells, columns, static and dynamic label tables.

Every reader takes the dataset's list of problems and appends what it finds wrong; it raises
:class:`~mer.errors.DatasetError` only when a whole file is unusable (not a regular file, not
text, no header, a required column missing). Files may start with a UTF-8 byte-order mark
(Excel writes one). Label values are range-checked on their source scale and duplicate ids
reported (:mod:`mer.datasets.problems`); values are returned on the canonical scale by the
dynamic readers and on the source scale by the static ones (the loaders convert).
"""

from __future__ import annotations

import codecs
import csv
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DatasetError
from ..scales import get_scale, to_canonical
from .problems import TOL, Entry, LabelScale, Problem, ScaleCheck, unique

CANONICAL = LabelScale("canonical")


def is_regular_file(path: Path) -> bool:
    """True for a regular file (or a link to one); False for folders, pipes, devices, bad names."""
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, say
        return False


def clean(cell: str | None) -> str:
    """Strip spaces, tabs and quotes that the releases pad their cells with."""
    return (cell or "").strip().strip('"').strip()


def norm_header(name: str) -> str:
    """Header key: lower case, no spaces (fixes DEAM's ``valence_ max_mean`` typo)."""
    return clean(name).replace(" ", "").lower()


def read_rows(path: Path, encoding: str = "utf-8") -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(normalised header, [(line number, cleaned cells)]) of a CSV file; empty lines skipped.

    Rows are returned as they are (ragged ones too: see :func:`read_table`); empty header
    names at the end of the header line (a trailing comma) are dropped."""
    if not is_regular_file(path):
        raise DatasetError(f"{path}: not a regular file (a folder, pipe or device?); put the annotation file there")
    try:
        with open(path, "rb") as fh:
            lead = fh.read(4)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read it ({exc.strerror}); check its permissions") from None
    if lead.startswith(codecs.BOM_UTF8):  # Excel's "CSV UTF-8": the mark says UTF-8 whatever was expected
        encoding = "utf-8-sig"
    elif lead.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DatasetError(f"{path}: UTF-16 text; save it as CSV (comma-separated, UTF-8)")
    start = 1  # the line being read (the header first)
    try:
        with open(path, newline="", encoding=encoding) as fh:
            reader = csv.reader(fh)
            header = [norm_header(h) for h in next(reader, [])]
            rows, start = [], reader.line_num + 1
            for row in reader:  # a row's number is the line it starts on (a quoted cell may span lines)
                if any("\n" in c or "\r" in c for c in row):
                    raise DatasetError(f"{path} line {start}: a quote (\") opened on this line runs on to "
                                       f"line {reader.line_num}; fix the quote on line {start}")
                if any(c.strip() for c in row):
                    rows.append((start, [clean(c) for c in row]))
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not {encoding} text ({exc.reason}); is this the original file?") from None
    except csv.Error as exc:
        raise DatasetError(f"{path} line {start}: malformed CSV ({exc}); fix that line") from None
    while header and not header[-1]:
        header.pop()
    if not header:
        raise DatasetError(f"{path}: empty file; re-download the annotations")
    return header, rows


def read_table(path: Path, problems: list[Problem], encoding: str = "utf-8"
               ) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """:func:`read_rows`, keeping only rows with one cell per column (empty cells at the end of
    a row do not count): a short or long row, a missing or unquoted comma that would shift the
    columns, is reported as "malformed_row" and skipped."""
    header, rows = read_rows(path, encoding)
    out = []
    for line, cells in rows:
        while len(cells) > len(header) and not cells[-1]:
            cells.pop()
        if len(cells) != len(header):
            problems.append(Problem("malformed_row", f"{path.name} line {line}: {len(cells)} cells for {len(header)} "
                                    f"columns ({', '.join(header)}); row skipped: fix it (a missing or unquoted "
                                    "comma?)", path=str(path), line=line))
            continue
        out.append((line, cells))
    return header, out


def column(header: list[str], path: Path, *names: str) -> int:
    """Index of the first of ``names`` present in ``header`` (normalised), or DatasetError."""
    for n in names:
        if norm_header(n) in header:
            return header.index(norm_header(n))
    raise DatasetError(f"{path}: no column {names[0]!r} (found: {', '.join(header)}); is this the right file?")


def optional_column(header: list[str], *names: str) -> int | None:
    """Index of the first of ``names`` present in ``header``, or None."""
    return next((header.index(norm_header(n)) for n in names if norm_header(n) in header), None)


def canon(x: float | None, scale: str) -> float | None:
    """A label value on ``scale`` as a canonical float (None stays None)."""
    return None if x is None else float(to_canonical(x, scale))


def canon_std(x: float | None, scale: str) -> float | None:
    """A spread (standard deviation) on ``scale`` in canonical units (None stays None)."""
    return None if x is None else x / get_scale(scale).half_range


def parse_float(cell: str) -> float | None:
    try:
        x = float(cell)
    except ValueError:
        return None
    return x if np.isfinite(x) else None


def parse_floats(cells: Sequence[str]) -> list[float] | None:
    """The cells as finite floats, or None when any of them is not one."""
    values = [x for x in map(parse_float, cells) if x is not None]
    return values if len(values) == len(cells) else None


def cell_float(cells: list[str], i: int) -> float | None:
    """The float in ``cells[i]``, or None when the row is too short or the cell is not a number."""
    return parse_float(cells[i]) if len(cells) > i else None


def malformed(path: Path, line: int, what: str, track_id: str | None = None) -> Problem:
    return Problem("malformed_row", f"{path.name} line {line}: {what}; row skipped", track_id or None, str(path), line)


def read_info(path: Path, problems: list[Problem], key: tuple[str, ...], columns: dict[str, tuple[str, ...]],
              encoding: str = "latin-1", optional: dict[str, tuple[str, ...]] | None = None) -> list[Entry]:
    """Metadata rows as entries ``(id, path, line, {name: cell})`` for :func:`unique`;
    ``columns`` maps each name to its accepted header names (the first one is required);
    ``optional`` names columns taken when the file has them."""
    header, rows = read_table(path, problems, encoding)
    k = column(header, path, *key)
    cols = {name: column(header, path, *names) for name, names in columns.items()}
    cols.update({name: header.index(norm_header(n)) for name, names in (optional or {}).items()
                 for n in names[:1] if norm_header(n) in header})
    entries: list[Entry] = []
    for line, c in rows:
        if c[k]:
            entries.append((c[k], path, line, {name: c[i] for name, i in cols.items()}))
        else:
            problems.append(malformed(path, line, f"no {key[0]}"))
    return entries


def read_static(paths: list[Path], problems: list[Problem], rule: LabelScale,
                key: tuple[str, ...] = ("song_id", "musicId"),
                columns: dict[str, tuple[str, ...]] | None = None) -> dict[str, dict[str, float]]:
    """Static labels on their source scale: ``{id: {valence, arousal[, valence_std, arousal_std]}}``.

    ``columns`` maps valence, arousal and the optional valence_std/arousal_std to their accepted
    header names (default: DEAM's and emoMusic's). Values outside ``rule``'s scale, rows
    without a number and ids listed twice are reported (:mod:`~mer.datasets.problems`)."""
    columns = columns or {"valence": ("valence_mean", "mean_valence"), "arousal": ("arousal_mean", "mean_arousal"),
                          "valence_std": ("valence_std", "std_valence"), "arousal_std": ("arousal_std", "std_arousal")}
    entries: list[Entry] = []
    for path in paths:
        header, rows = read_table(path, problems)
        sid = column(header, path, *key)
        cols = {k: column(header, path, *columns[k]) for k in ("valence", "arousal")}
        cols.update({k: i for k, names in columns.items() if k not in cols
                     and (i := optional_column(header, *names)) is not None})
        with ScaleCheck(path, rule, problems) as check:
            for line, cells in rows:
                vals = {k: parse_float(cells[i]) for k, i in cols.items()}
                if vals["valence"] is None or vals["arousal"] is None or not cells[sid]:
                    problems.append(malformed(path, line, "missing or non-numeric value", cells[sid]))
                    continue
                va = check([vals["valence"], vals["arousal"]], line, cells[sid], ("valence", "arousal"))
                if va is not None:
                    spread_check(vals, rule, path, line, cells[sid], problems)
                    vals["valence"], vals["arousal"] = float(va[0]), float(va[1])
                    entries.append((cells[sid], path, line, vals))
    return unique(entries, problems)


def spread_check(vals: dict[str, float | None], rule: LabelScale, path: Path, line: int, track_id: str,
                 problems: list[Problem]) -> None:
    """Drop a rater spread (``valence_std``/``arousal_std``) that no ratings on the scale can
    have: negative, or above half the scale's range. Reported, not blocking: the mean is kept."""
    half = get_scale(rule.name).half_range
    for name in ("valence_std", "arousal_std"):
        x = vals.get(name)
        if x is not None and not (-TOL <= x <= half + TOL):
            vals[name] = None
            problems.append(Problem("out_of_range", f"{path.name} line {line}: {name} {x:g} is no spread of ratings "
                                    f"on the {rule.name} scale (0 to {half:g}); it is ignored, the track kept: "
                                    "correct the value", track_id, str(path), line, blocking=False))


def read_long_dynamic(path: Path, columns: tuple[str, str, str, str], rule: LabelScale,
                      problems: list[Problem]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a long-format dynamic file, one row per (item, time): ``{id: (times (T,), (T, 2) canonical)}``.

    ``columns`` names the (id, time in s, valence, arousal) columns; values are on ``rule``'s
    scale. Rows are sorted by time per item; a row with a non-numeric value is reported and
    skipped, values off the scale and repeated (id, time) rows are reported (see
    :mod:`~mer.datasets.problems`)."""
    header, rows = read_table(path, problems)
    ic, tc, vc, ac = (column(header, path, name) for name in columns)
    entries: list[Entry] = []
    with ScaleCheck(path, rule, problems) as check:
        for line, c in rows:
            t, va = parse_float(c[tc]), parse_floats([c[vc], c[ac]])
            if not c[ic] or t is None or va is None:
                problems.append(malformed(path, line, "missing id or non-numeric time or value", c[ic]))
                continue
            checked = check(va, line, c[ic], ("valence", "arousal"))
            if checked is not None:
                entries.append(((c[ic], t), path, line, tuple(checked)))
    frames: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for (key, t), (v, a) in unique(entries, problems).items():
        frames[key].append((t, v, a))
    out = {}
    for key, fr in frames.items():
        arr = np.array(sorted(fr))
        out[key] = (arr[:, 0], np.asarray(to_canonical(arr[:, 1:3], rule.name)))
    return out


def read_wide_dynamic(path: Path, problems: list[Problem], rule: LabelScale = CANONICAL
                      ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a DEAM/emoMusic wide dynamic file: ``song_id,sample_15000ms,...``.

    Returns ``{id: (times (T,), values (T,))}`` with values on the canonical scale. Rows may
    be of different lengths (full songs) and end in empty cells; an empty or non-numeric
    cell before the end of a row is reported as malformed and the row cut there. Values off
    ``rule``'s scale and ids listed twice are reported (see :mod:`~mer.datasets.problems`)."""
    header, rows = read_rows(path)
    if header[0] not in ("song_id", "songid", "musicid"):
        raise DatasetError(f"{path}: first column should be song_id (found {header[:1]})")
    try:
        times = np.array([int(h.replace("sample_", "").replace("ms", "")) / 1000.0 for h in header[1:]])
    except ValueError:
        raise DatasetError(f"{path}: columns should be named sample_<ms>ms (found {header[1:3]}...)") from None
    entries: list[Entry] = []
    with ScaleCheck(path, rule, problems) as check:
        for line, cells in rows:
            sid, values = cells[0], cells[1:]
            while values and values[-1] == "":
                values.pop()
            parsed = [parse_float(v) for v in values]
            if None in parsed:
                cut = parsed.index(None)
                at = f" at {times[cut]:.1f} s" if cut < len(times) else ""
                problems.append(Problem("malformed_row", f"{path.name} line {line}: bad value {values[cut]!r}{at}; "
                                        "row cut there", sid or None, str(path), line))
                parsed = parsed[:cut]
            if len(parsed) > len(times):
                problems.append(Problem("malformed_row", f"{path.name} line {line}: more values than columns; extra "
                                        "values ignored", sid or None, str(path), line))
                parsed = parsed[: len(times)]
            if not sid or not parsed:
                problems.append(malformed(path, line, "no song id" if not sid else "no values"))
                continue
            checked = check([x for x in parsed if x is not None], line, sid, times=times)  # (none left after the cut)
            if checked is not None:
                entries.append((sid, path, line, np.asarray(to_canonical(checked, rule.name))))
    return {sid: (times[: len(v)].copy(), v) for sid, v in unique(entries, problems).items()}


def merge_dynamic(valence: dict[str, tuple[np.ndarray, np.ndarray]], arousal: dict[str, tuple[np.ndarray, np.ndarray]],
                  track_id: str, problems: list[Problem]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Align one song's valence and arousal curves on their common frames -> (times, (T, 2))."""
    if track_id not in valence or track_id not in arousal:
        if track_id in valence or track_id in arousal:
            has, lacks = ("valence", "arousal") if track_id in valence else ("arousal", "valence")
            problems.append(Problem("missing_labels", f"a dynamic {has} curve but no {lacks} curve (missing or left "
                                    "out): no dynamic labels", track_id))
        return None, None
    (tv, v), (_, a) = valence[track_id], arousal[track_id]
    n = min(len(v), len(a))
    if len(v) != len(a):
        problems.append(Problem("malformed_row", f"valence has {len(v)} frames but arousal {len(a)}; "
                                f"kept the first {n}", track_id))
    return tv[:n], np.stack([v[:n], a[:n]], axis=1)
