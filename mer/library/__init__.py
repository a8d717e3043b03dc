"""A music collection indexed by emotion: ``mer index``, ``mer search``, ``mer playlist``.

One SQLite file holds one row per audio file (path, size, mtime, SHA-1, model and digest,
static valence/arousal on the canonical scale [-1, 1], quadrant and its probabilities, the
2 Hz curve, top tags, the clip embedding); see :mod:`mer.library.store` for the schema.

- :mod:`~mer.library.store`: schema, ``schema_version`` (``PRAGMA user_version``), migrations;
- :mod:`~mer.library.indexer`: incremental, kill-safe indexing through :func:`mer.infer.predictor.run_batch`;
- :mod:`~mer.library.moods`: mood words -> (valence, arousal), after Russell's circumplex;
- :mod:`~mer.library.search`: exact numpy nearest-neighbour search behind a pluggable interface;
- :mod:`~mer.library.playlist`: mood-to-mood playlists and their M3U8/CSV/JSON files;
- :mod:`~mer.library.cluster`: the same prediction on a Ray cluster (``mer index --ray``),
  through Parquet shards the driver merges;
- :mod:`~mer.library.ann`: an approximate (HNSW, usearch) index for big libraries, kept on disk;
- :mod:`~mer.library.library`: :class:`Library`, the Python face of all of it.
"""

from .indexer import IndexStats
from .library import Library
from .moods import MOODS, mood_point, parse_mood
from .search import ExactIndex, VectorIndex
from .store import SCHEMA_VERSION, LibraryError

__all__ = ["Library", "IndexStats", "LibraryError", "MOODS", "mood_point", "parse_mood", "ExactIndex",
           "VectorIndex", "SCHEMA_VERSION"]
