"""The one output schema: every field a prediction row can carry, defined once.

Each :class:`Field` has a name, a kind (``text``, ``real``, ``int``, ``blob``), a unit and a
description, and says where it appears: in the per-file rows that ``mer predict`` writes
(``--format csv`` columns, the table), in the per-segment rows (``--segments``), in the music
library's ``songs`` table (and so in its Parquet shards). The CLI writer, the library store
and the Ray shards take their columns and types from here, so a new output column is one line
here plus the code that computes it.

Values are on the canonical scale [-1, 1] unless a writer is asked for another (and then the
row says which in ``scale``); probabilities are in [0, 1]; times and durations in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text, real, int, blob
    unit: str
    description: str
    file: bool = False  # a column of mer predict's per-file rows
    segment: bool = False  # a column of its per-segment rows (--segments)
    library: bool = False  # a column of the library's songs table and its shards


_P = "probability of {} (quadrant models; empty otherwise)"

FIELDS: tuple[Field, ...] = (
    Field("path", "text", "", "the audio file as given (library: absolute)", file=True, segment=True, library=True),
    Field("size", "int", "bytes", "file size when indexed", library=True),
    Field("mtime_ns", "int", "ns", "file modification time when indexed", library=True),
    Field("sha1", "text", "", "SHA-1 of the file's bytes", library=True),
    Field("start", "real", "s", "segment start, on the file's clock", segment=True),
    Field("end", "real", "s", "segment end, on the file's clock", segment=True),
    Field("valence", "real", "scale", "valence, unpleasant (-1) to pleasant (+1)", file=True, segment=True,
          library=True),
    Field("arousal", "real", "scale", "arousal, calm (-1) to excited (+1)", file=True, segment=True, library=True),
    Field("quadrant", "text", "", "Russell quadrant Q1..Q4: a quadrant head's most probable one, else the point's",
          file=True, segment=True, library=True),
    Field("quadrant_words", "text", "", "the quadrant's mood words", file=True),
    Field("point_quadrant", "text", "", "the quadrant the (valence, arousal) point lies in; differs from quadrant "
          "when the regression and the quadrant classifier disagree (near an axis)", file=True, segment=True),
    Field("duration", "real", "s", "seconds of audio predicted", file=True, library=True),
    *(Field(f"p_q{i}", "real", "probability", _P.format(f"Q{i}"), file=True, segment=True, library=True)
      for i in range(1, 5)),
    Field("confidence", "real", "probability", "probability of the reported quadrant", file=True),
    Field("model", "text", "", "the model's name", file=True, segment=True, library=True),
    Field("model_version", "text", "", "the model's version", library=True),
    Field("weights_sha1", "text", "", "SHA-1 of the model's weights", file=True, segment=True, library=True),
    Field("curve", "blob", "scale", "the 2 Hz (valence, arousal) curve, float16 pairs", library=True),
    Field("tags", "text", "", "the model's top tags as JSON", library=True),
    Field("moods", "text", "probability", "every mood word's probability as JSON {word: p} (mood-word models; "
          "empty otherwise)", library=True),
    Field("embedding", "blob", "", "the clip's mean embedding, float16", library=True),
    Field("dim", "int", "", "length of the embedding", library=True),
    Field("artist", "text", "", "artist from the file's tags", library=True),
    Field("title", "text", "", "title from the file's tags", library=True),
    Field("indexed_at", "text", "UTC", "when the row was written", library=True),
)

FILE_COLUMNS = tuple(f.name for f in FIELDS if f.file)
SEGMENT_COLUMNS = tuple(f.name for f in FIELDS if f.segment)
LIBRARY_COLUMNS = tuple(f.name for f in FIELDS if f.library)
KINDS = {f.name: f.kind for f in FIELDS}
