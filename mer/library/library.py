"""``Library(path)``: a music collection indexed by emotion, in one SQLite file.

Usage::

    from mer.library import Library
    with Library("music.sqlite") as lib:
        stats = lib.index(["~/Music"])             # incremental; stats.predicted, .unchanged, .moved...
        lib.search_mood("calm", k=20)             # nearest songs to the mood's (valence, arousal)
        lib.search_va(0.6, -0.4, k=20)             # canonical scale [-1, 1]
        lib.search_like("song.mp3", k=20)         # nearest by sound (cosine of clip embeddings)
        lib.playlist("tense", "relaxed", minutes=40)

Results are lists of song dicts (:meth:`songs` describes the keys) with ``distance``
(Euclidean on the plane, 0..2.83) or ``similarity`` (cosine, -1..1) added. The matrices are
loaded once and reloaded only when the database changed (another process's commit, or an
:meth:`index` call), so many queries cost one load. Several readers may use the file while
``mer index`` writes to it (WAL).
"""

from __future__ import annotations

import json
import os
import sqlite3
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import MERWarning
from ..bundle import Bundle
from ..io import file_sha1
from . import indexer, moods
from .playlist import plan
from .ann import index_factory as index_factory_of
from .search import Embeddings, IndexFactory, Points, load_embeddings, load_points, main_digest
from .store import LibraryError, connect, song_dict

_SONG = ("SELECT id, path, duration, valence, arousal, quadrant, p_q1, p_q2, p_q3, p_q4, tags, moods, artist, title, "
         "model FROM songs")
Mood = str | tuple[float, float]  # a mood word, "V,A", or (valence, arousal)


class Library:
    """One library database: a music collection indexed by emotion (``mer index``).

    Use it as a context manager (or call :meth:`close`). Search results are lists of song dicts
    (:meth:`songs` describes the keys) with ``distance``, ``similarity`` or ``probability``
    added; values on the canonical scale [-1, 1].

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file (created by :meth:`index` when missing; searches need it to exist).
    index : str
        How sound searches (:meth:`search_like`) find neighbours: ``"exact"``, ``"ann"`` (an
        HNSW graph kept in ``<db>.ann/``; the ``ann`` extra) or ``"auto"`` (ann from 100,000
        songs when the extra is installed); see :mod:`mer.library.ann`.
    index_factory : callable, optional
        Any ``index_factory(matrix, metric) -> VectorIndex`` instead.

    Examples
    --------
    >>> with Library("music.sqlite") as lib:  # doctest: +SKIP
    ...     lib.index(["~/Music"])
    ...     calm = lib.search_mood("calm", k=20)
    """

    def __init__(self, path: str | os.PathLike, index: str = "auto",
                 index_factory: IndexFactory | None = None) -> None:
        self.path = Path(path)
        self.factory = index_factory or index_factory_of(index, Path(str(self.path) + ".ann"))
        self._conn: sqlite3.Connection | None = None
        self._version: int | None = None
        self._points: Points | None = None
        self._embeddings: dict[str, Embeddings] = {}
        self._embeddings_digest: dict[str, str | None] = {}

    # -- connection and caches ---------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.path, create=False)
        return self._conn

    def _fresh(self) -> None:
        """Drop the loaded matrices when another connection committed since they were loaded."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._version, self._points, self._embeddings = version, None, {}
            self._embeddings_digest = {}

    def _plane(self) -> Points:
        self._fresh()
        if self._points is None:
            self._points = load_points(self.conn, self.factory)
        return self._points

    def _sound(self, digest: str) -> Embeddings:
        self._fresh()
        if digest not in self._embeddings:
            self._embeddings[digest] = load_embeddings(self.conn, digest, self.factory)
        return self._embeddings[digest]

    def _main_digest(self) -> str | None:
        """The weights digest of most embeddings (cached until the database changes)."""
        self._fresh()
        if "" not in self._embeddings_digest:
            self._embeddings_digest[""] = main_digest(self.conn)
        return self._embeddings_digest[""]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._points, self._embeddings = None, {}

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM songs").fetchone()[0])

    # -- indexing ------------------------------------------------------------------------------
    def index(self, paths: "str | os.PathLike | Iterable[str | os.PathLike]", model: "str | Bundle" = "default",
              workers: int = 0, prune: bool = False, retry_failed: bool = False, progress: bool = True,
              device: str = "auto", backend: str = "auto", commit_every: int = indexer.COMMIT_EVERY,
              ray: str | None = None, shards: "str | os.PathLike | None" = None,
              shard_files: int | None = None) -> indexer.IndexStats:
        """Predict the audio under ``paths`` into the library, incrementally.

        Unchanged files (size and mtime) are not read; moved files are recognised by their
        SHA-1; changed files and files predicted by other weights are predicted again; results
        are committed every ``commit_every`` files, so a killed run loses nothing. One writer
        at a time (a lock file beside the database). See :mod:`mer.library.indexer`.

        Parameters
        ----------
        paths : str, os.PathLike or iterable of them
            Audio files or folders (searched recursively).
        model : str or mer.bundle.Bundle
            The model to predict with (default: the bundled default).
        workers : int
            Worker processes (0: one per core); with ``ray``, Ray workers.
        prune : bool
            Forget songs under ``paths`` whose files are gone.
        retry_failed : bool
            Try the files that failed before again.
        progress : bool
            A progress bar on stderr.
        device, backend : str
            As for :class:`mer.Predictor`.
        commit_every : int
            Files per transaction.
        ray : str, optional
            Predict on a Ray cluster: ``"auto"``, ``"local"``, ``"HOST:PORT"`` or
            ``"ray://head:10001"`` (the ``ray`` extra; :mod:`mer.library.cluster`).
        shards : str or os.PathLike, optional
            With ``ray``: the folder for the workers' Parquet shards, reachable from every node.
        shard_files : int, optional
            With ``ray``: files per shard (default 32).

        Returns
        -------
        IndexStats
            Counts of what happened (``predicted``, ``unchanged``, ``moved``, ``failed``, ...).

        Raises
        ------
        LibraryError
            Another ``mer index`` is writing this library, or it is read-only.
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        from ..io import file_lock

        if self._conn is not None and getattr(self._conn, "readonly", False):
            self.close()  # opened read-only for a search: a writer opens it again (or says it is read-only)
        if self._conn is None:
            self._conn = connect(self.path, create=True)
        busy = (f"{self.path}: another `mer index` is writing this library; wait for it to finish "
                "(searches work meanwhile) or index into another --db")
        try:
            with file_lock(str(self.path.resolve()) + ".lock", busy):
                opts = indexer.IndexOptions(model=model, workers=workers, prune=prune, retry_failed=retry_failed,
                                            progress=progress, device=device, backend=backend,
                                            commit_every=commit_every, ray=ray, shards=shards,
                                            shard_files=shard_files)
                return indexer.index(self._conn, list(paths), opts)
        finally:
            self._version, self._points, self._embeddings, self._embeddings_digest = None, None, {}, {}

    # -- reading -------------------------------------------------------------------------------
    def songs(self) -> list[dict[str, Any]]:
        """Every song: id, path, duration (s), valence, arousal ([-1, 1]), quadrant, p_q1..p_q4
        (None for models without them), tags ({tag: score}), moods ({mood word: probability},
        most probable first; empty for songs indexed without a mood-word model), artist, title, model."""
        return [song_dict(r) for r in self.conn.execute(_SONG + " ORDER BY id")]

    def failures(self) -> list[dict[str, Any]]:
        """Files that could not be indexed: path, error, failed_at."""
        return [dict(r) for r in self.conn.execute("SELECT path, error, failed_at FROM failures ORDER BY path")]

    def _by_ids(self, ids: Sequence[int] | np.ndarray) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        ids = [int(i) for i in ids]
        for at in range(0, len(ids), 500):
            part = ids[at:at + 500]
            q = _SONG + f" WHERE id IN ({','.join('?' * len(part))})"
            out.update({r["id"]: song_dict(r) for r in self.conn.execute(q, part)})
        return out

    def _results(self, ids: np.ndarray, scores: np.ndarray, key: str) -> list[dict[str, Any]]:
        found = self._by_ids(ids)
        return [{**found[int(i)], key: round(float(s), 4)} for i, s in zip(ids, scores) if int(i) in found]

    def audio_path(self, song_id: int) -> Path:
        """The file of song ``song_id`` (the web page serves audio by id only, never by path)."""
        row = self.conn.execute("SELECT path FROM songs WHERE id=?", (int(song_id),)).fetchone()
        if row is None:
            raise LibraryError(f"{self.path}: no song with id {song_id}")
        return Path(row["path"])

    # -- searching -----------------------------------------------------------------------------
    def search_va(self, valence: float, arousal: float, k: int = 20) -> list[dict[str, Any]]:
        """The songs nearest to a point on the valence-arousal plane.

        Parameters
        ----------
        valence, arousal : float
            The point, canonical scale [-1, 1].
        k : int
            How many songs.

        Returns
        -------
        list of dict
            Song dicts (:meth:`songs`), nearest first, each with its Euclidean ``distance``
            on the plane (0 to 2.83).
        """
        pts = self._plane()
        pos, dist = pts.index.search(np.array([valence, arousal], np.float32), k)
        return self._results(pts.ids[pos], dist, "distance")

    def search_mood(self, word: str, k: int = 20) -> list[dict[str, Any]]:
        """The ``k`` songs that best fit a mood word.

        A word of the mood-word tagger's vocabulary (AllMusic's words: :meth:`mood_words`), in a
        library indexed with a model that has one (the default): the songs most probably given
        that word, each with its ``probability``. Otherwise the songs nearest to the word's point
        on the valence-arousal plane (:mod:`mer.library.moods`), with their ``distance``; when
        the library was indexed before mood words existed, a warning says to index it again."""
        vocab = self.mood_words()
        key = _vocab_word(word, vocab)
        if key in vocab:
            return self._by_mood(key, k)
        if not vocab and len(self) and key in Bundle.resolve("default").mood_words:
            warnings.warn(f"{self.path}: indexed without mood words; {word!r} is placed by its valence/arousal "
                          f"instead. Index again to search by mood words: `mer index DIR --db {self.path}`",
                          MERWarning, stacklevel=2)
        return self.search_va(*moods.mood_point(word), k=k)

    def mood_point(self, mood: str) -> tuple[float, float]:
        """(valence, arousal) of a mood word or ``"V,A"``: for a word of this library's mood-word
        vocabulary, the probability-weighted mean of its most probable songs (the top 5%, at least
        5), so the word means what the library's music is; otherwise :func:`moods.parse_mood`."""
        key = _vocab_word(mood, self.mood_words())
        if "," in key or key not in self.mood_words():
            return moods.parse_mood(mood)
        top = self._by_mood(key, max(5, len(self) // 20))
        w = np.array([s["probability"] for s in top])
        va = np.array([[s["valence"], s["arousal"]] for s in top])
        v, a = (w[:, None] * va).sum(axis=0) / w.sum()
        return round(float(v), 4), round(float(a), 4)

    def mood_words(self) -> list[str]:
        """The mood words this library's songs carry probabilities of (empty when none does)."""
        row = self.conn.execute("SELECT moods FROM songs WHERE moods IS NOT NULL LIMIT 1").fetchone()
        return list(json.loads(row["moods"])) if row is not None else []

    def _by_mood(self, word: str, k: int) -> list[dict[str, Any]]:
        """The ``k`` songs with the highest probability of ``word`` (songs without one left out)."""
        rows = self.conn.execute("SELECT id, json_extract(moods, ?) AS p FROM songs WHERE moods IS NOT NULL",
                                 (f'$."{word}"',)).fetchall()
        rows = sorted((r for r in rows if r["p"] is not None), key=lambda r: (-r["p"], r["id"]))[:k]
        return self._results(np.array([r["id"] for r in rows], dtype=np.int64),
                             np.array([r["p"] for r in rows], dtype=np.float64), "probability")

    def search_like(self, query: "str | os.PathLike | np.ndarray", k: int = 20,
                    model: str | None = None) -> list[dict[str, Any]]:
        """The songs that sound most like a file or an embedding.

        Parameters
        ----------
        query : str, os.PathLike or np.ndarray
            An audio file (indexed or not; songs with its own bytes are left out), or a clip
            embedding ``(D,)`` from the library's model (D = 200 for the default).
        k : int
            How many songs.
        model : str, optional
            For a file not in the library: the model to embed it with (default: the
            library's own).

        Returns
        -------
        list of dict
            Song dicts (:meth:`songs`), most similar first, each with its cosine
            ``similarity`` (-1 to 1).

        Raises
        ------
        LibraryError
            No song has an embedding, or the query's embedding is of another model.
        """
        exclude_sha = None
        if isinstance(query, np.ndarray):
            digest, vector = self._main_digest(), query
            if digest is None:
                raise LibraryError(f"{self.path}: no song has an embedding; index with a model that has them "
                                   "(the default does)")
        else:
            digest, vector, exclude_sha = self._embed(Path(query), model)
        emb = self._sound(digest)
        if not emb.dim:
            return []
        if len(vector) != emb.dim:
            raise LibraryError(f"embedding of length {len(vector)} given; this library's are {emb.dim} long")
        exclude = np.flatnonzero(emb.sha1s == exclude_sha) if exclude_sha else None
        pos, sim = emb.index.search(vector, k, exclude)
        return self._results(emb.ids[pos], sim, "similarity")

    def _embed(self, path: Path, model: str | None) -> tuple[str, np.ndarray, str]:
        """(digest, embedding, sha1) of a file: its row's when indexed and unchanged, else predicted."""
        from ..errors import AudioError

        if not path.is_file():
            raise AudioError(f"{path}: no such file; give an audio file for --like")
        sha = file_sha1(path)
        row = self.conn.execute("SELECT weights_sha1, embedding FROM songs WHERE sha1=? AND embedding IS NOT NULL "
                                "ORDER BY id LIMIT 1", (sha,)).fetchone()
        if row is not None and model is None:
            return row["weights_sha1"], np.frombuffer(row["embedding"], "<f2").astype(np.float32), sha
        spec = model or self._meta("model") or "default"
        from ..infer.predictor import Predictor

        pred = Predictor(spec)(path, embeddings=True)
        if self._main_digest() not in (None, pred.weights_sha1):
            raise LibraryError(f"{self.path}: indexed with other weights than {spec}'s; pass the library's model "
                               "(--model) or reindex with `mer index DIR --db DB --model NAME`")
        assert pred.embedding is not None  # embeddings=True: set (Predictor refuses models without them)
        return pred.weights_sha1, pred.embedding, sha

    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    # -- playlists -------------------------------------------------------------------------------
    def playlist(self, start: Mood, end: Mood, minutes: float = 40.0) -> list[dict[str, Any]]:
        """Songs that move smoothly from one mood to another.

        The playlist follows the straight line between the two moods on the plane, the
        nearest unused song per waypoint. A mood word of the library's mood-word vocabulary
        stands at the mean (valence, arousal) of the songs most probably given that word
        (:meth:`mood_point`); other words at their lexicon point.

        Parameters
        ----------
        start, end : str or tuple of float
            A mood word (``"tense"``), ``"V,A"`` or ``(valence, arousal)`` in [-1, 1].
        minutes : float
            About how long, within about half a song.

        Returns
        -------
        list of dict
            Song dicts (:meth:`songs`) in order, each with ``position`` (1-based), ``start``
            (seconds into the playlist) and the waypoint it was chosen for
            (``target_valence``, ``target_arousal``).
        """
        a = self.mood_point(start) if isinstance(start, str) else tuple(start)
        b = self.mood_point(end) if isinstance(end, str) else tuple(end)
        pts = self._plane()
        order, targets = plan(pts.va, pts.durations, a, b, minutes)
        found = self._by_ids(pts.ids[order])
        out, at = [], 0.0
        for n, (pos, t) in enumerate(zip(order, targets)):
            song = found[int(pts.ids[pos])]
            out.append({"position": n + 1, **song, "start": round(at, 3),
                        "target_valence": round(float(t[0]), 4), "target_arousal": round(float(t[1]), 4)})
            at += float(song["duration"])
        return out


def _vocab_word(word: str, vocab: list[str]) -> str:
    """``word`` as a word of ``vocab``: itself, or the one AllMusic pair it is half of ("calm" ->
    "calm/peaceful", "mellow" -> "laid-back/mellow"); else ``word`` normalised."""
    key = " ".join(word.lower().split())
    if key in vocab:
        return key
    halves = [w for w in vocab if key in w.split("/")]
    return halves[0] if len(halves) == 1 else key
