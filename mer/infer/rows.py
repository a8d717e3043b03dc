"""A prediction's rows, built once over the fields of :mod:`mer.infer.schema`.

``mer predict --format csv`` (file and segment rows), the Python API (:func:`write_csv`), the
music library (:func:`library_row`, a ``songs`` row) and the Ray shards all take their rows
from here, so a row always has exactly its schema's columns: a field the builder does not
fill is a :class:`SchemaError`, never a silently empty cell. A field that does not apply (the
quadrant probabilities of a model without a quadrant head) is an explicit None, written as an
empty cell. Values are on ``scale`` (default the canonical [-1, 1]); probabilities 0-1.

Adding an output column: one :class:`~mer.infer.schema.Field` in the schema and its value in
the builder here.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence, TextIO

import numpy as np

from ..errors import MERError
from . import schema

if TYPE_CHECKING:
    from .predictor import Prediction


class SchemaError(MERError):
    """A row that is not exactly its schema's columns (a bug in a builder, never user input)."""


def _exactly(row: Mapping[str, Any], columns: Sequence[str], what: str) -> dict[str, Any]:
    missing = [c for c in columns if c not in row]
    if missing:
        raise SchemaError(f"a {what} row lacks {', '.join(missing)}: every column of mer.infer.schema needs a value "
                          "(None for one that does not apply)")
    return {c: row[c] for c in columns}


def mood_column(word: str) -> str:
    """The CSV column of a mood word's probability: ``mood_calm_peaceful`` for "calm/peaceful"."""
    return "mood_" + re.sub(r"[^a-z0-9]+", "_", word.lower()).strip("_")


def _probs(probabilities: Mapping[str, float]) -> dict[str, float | None]:
    return {f"p_q{i}": probabilities.get(f"Q{i}") for i in range(1, 5)}


def file_row(pred: "Prediction", scale: str = "canonical", path: str | None = None,
             moods: Sequence[str] = ()) -> dict[str, Any]:
    """``pred`` as one row over :data:`~mer.infer.schema.FILE_COLUMNS` (``path``: the name to
    show instead of ``pred.path``), plus a :func:`mood_column` per word of ``moods``."""
    d = pred.on_scale(scale)
    row = {"path": pred.path if path is None else path, "valence": d["valence"], "arousal": d["arousal"],
           "quadrant": d["quadrant"], "quadrant_words": d["quadrant_words"], "point_quadrant": d["point_quadrant"],
           "duration": d["duration"], **_probs(pred.probabilities), "confidence": d.get("confidence"),
           "model": pred.model, "weights_sha1": pred.weights_sha1}
    out = _exactly(row, schema.FILE_COLUMNS, "file")
    return {**out, **{mood_column(w): pred.moods.get(w) for w in moods}}


def segment_rows(pred: "Prediction", scale: str = "canonical", path: str | None = None,
                 moods: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One row per segment of ``pred`` (``--segments``) over :data:`~mer.infer.schema.SEGMENT_COLUMNS`."""
    rows = []
    for s in pred.segments:
        d = s.on_scale(scale)
        row = {"path": pred.path if path is None else path, "start": d["start"], "end": d["end"],
               "valence": d["valence"], "arousal": d["arousal"], "quadrant": d["quadrant"],
               "point_quadrant": d["point_quadrant"], **_probs(s.probabilities), "model": pred.model,
               "weights_sha1": pred.weights_sha1}
        rows.append({**_exactly(row, schema.SEGMENT_COLUMNS, "segment"),
                     **{mood_column(w): s.moods.get(w) for w in moods}})
    return rows


def columns(segments: bool = False, moods: Sequence[str] = ()) -> list[str]:
    """The CSV header: the schema's file (or segment) columns, then one per mood word."""
    return [*(schema.SEGMENT_COLUMNS if segments else schema.FILE_COLUMNS), *map(mood_column, moods)]


def csv_line(values: Iterable[Any]) -> str:
    """One CSV line (no newline); None is an empty cell."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(["" if v is None else v for v in values])
    return buf.getvalue()


def write_csv(predictions: Iterable["Prediction"], out: "str | os.PathLike | TextIO", scale: str = "canonical",
              segments: bool = False, moods: Sequence[str] = ()) -> None:
    """Write predictions as ``mer predict --format csv`` does (the same header and cells): one row
    per file, or per segment with ``segments``; ``moods``: words to add a column for (a
    model's ``bundle.mood_words``). ``out``: a path (written atomically) or an open text file."""
    if isinstance(out, (str, os.PathLike)):
        from ..io import atomic_path

        with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
            write_csv(predictions, fh, scale, segments, moods)
        return
    out.write(csv_line(columns(segments, moods)) + "\n")
    for pred in predictions:
        for row in (segment_rows(pred, scale, moods=moods) if segments else [file_row(pred, scale, moods=moods)]):
            out.write(csv_line(row.values()) + "\n")


def now() -> str:
    """The current UTC time, ISO 8601 to the second (``indexed_at``)."""
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def f16_blob(a: np.ndarray | None) -> bytes | None:
    """float16 little-endian bytes of ``a`` (None stays None)."""
    return None if a is None else np.asarray(a, dtype="<f2").tobytes()


def library_row(pred: "Prediction", path: str, size: int, mtime_ns: int, sha1: str,
                artist: str | None = None, title: str | None = None) -> dict[str, Any]:
    """The library's ``songs`` row of ``pred`` over :data:`~mer.infer.schema.LIBRARY_COLUMNS`
    (canonical scale; the curve and the embedding as float16 blobs; tags and moods as JSON)."""
    emb = pred.embedding
    row = {"path": path, "size": size, "mtime_ns": mtime_ns, "sha1": sha1, "duration": float(pred.duration),
           "model": pred.model, "model_version": pred.model_version, "weights_sha1": pred.weights_sha1,
           "valence": float(pred.valence), "arousal": float(pred.arousal), "quadrant": pred.quadrant,
           **_probs(pred.probabilities),
           "curve": f16_blob(np.asarray(pred.curve).reshape(-1, 2)) if len(pred.curve) else None,
           "tags": json.dumps(pred.tags) if pred.tags else None,
           "moods": json.dumps(pred.moods) if pred.moods else None,
           "embedding": f16_blob(emb), "dim": None if emb is None else int(len(emb)),
           "artist": artist, "title": title, "indexed_at": now()}
    return _exactly(row, schema.LIBRARY_COLUMNS, "library")
