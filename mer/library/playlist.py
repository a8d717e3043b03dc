"""Playlists that travel across the valence-arousal plane, and their files (M3U8, CSV, JSON).

:func:`plan` walks the straight line from a start point to an end point of the plane
(canonical scale [-1, 1]). Before each song it places a waypoint on that line at the
fraction of the asked duration the playlist will have reached at the *middle* of the next
song (estimated with the library's median duration), and takes the nearest unused song to
it (Euclidean distance). It stops when the next song would overshoot the asked duration by
more than stopping short of it, so the total lands within about half a song of the target;
no song is used twice. When the library runs out, the playlist is simply shorter.

:func:`write` picks the format from the file's suffix: ``.m3u8``/``.m3u`` (``#EXTM3U``, then
per song ``#EXTINF:SECONDS,Artist - Title`` or the file name, and the path: relative to the
playlist's folder unless ``absolute``), ``.csv`` (one row per song) or ``.json`` (the
request and the songs); always written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..io import csv_text, write_text_atomic
from .store import LibraryError

FORMATS = {".m3u8": "m3u8", ".m3u": "m3u8", ".csv": "csv", ".json": "json"}
CSV_COLUMNS = ("position", "id", "path", "artist", "title", "duration", "valence", "arousal", "quadrant",
               "target_valence", "target_arousal", "start")


def plan(va: np.ndarray, durations: np.ndarray, start: Sequence[float], end: Sequence[float],
         minutes: float) -> tuple[list[int], np.ndarray]:
    """Row positions of the playlist in order, and ``(n, 2)`` the waypoint each was chosen for.

    ``va``: ``(N, 2)`` (valence, arousal) of every song; ``durations``: ``(N,)`` seconds;
    ``start``, ``end``: (valence, arousal) points."""
    if minutes <= 0:
        raise LibraryError(f"--minutes must be more than 0 (got {minutes:g})")
    n = len(va)
    if n == 0:
        return [], np.zeros((0, 2), np.float32)
    a, b = np.asarray(start, np.float32), np.asarray(end, np.float32)
    target = minutes * 60.0
    typical = float(np.median(durations)) if n else 0.0
    cost = np.zeros(n, np.float32)
    used = np.zeros(n, bool)
    order: list[int] = []
    points: list[np.ndarray] = []
    total = 0.0
    while total < target and len(order) < n:
        frac = min(1.0, (total + typical / 2) / target)
        point = a + frac * (b - a)
        d = va - point
        np.einsum("ij,ij->i", d, d, out=cost)
        cost[used] = np.inf
        pick = int(np.argmin(cost))
        dur = float(durations[pick])
        if order and total + dur - target > target - total:  # overshooting more than stopping short
            break
        order.append(pick)
        points.append(point)
        used[pick] = True
        total += dur
    return order, np.array(points, np.float32).reshape(-1, 2)


def display_name(song: dict[str, Any]) -> str:
    """"Artist - Title" from the tags, the title alone, or the file name without its suffix."""
    artist, title = song.get("artist"), song.get("title")
    if artist and title:
        return f"{artist} - {title}"
    return title or Path(song["path"]).stem


def _entry_path(path: str, folder: Path, absolute: bool) -> str:
    if absolute:
        return path
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive (Windows): only an absolute path can reach it
        return path


def render(songs: list[dict[str, Any]], fmt: str, folder: Path, absolute: bool = False,
           request: dict[str, Any] | None = None) -> str:
    """The playlist as text in ``fmt`` (m3u8, csv, json); paths relative to ``folder`` unless ``absolute``."""
    if fmt == "m3u8":
        lines = ["#EXTM3U"]
        for s in songs:
            name = " ".join(display_name(s).split())  # one line, whatever the tags hold
            lines += [f"#EXTINF:{int(round(s['duration']))},{name}", _entry_path(s["path"], folder, absolute)]
        return "\n".join(lines) + "\n"
    rows = [{**s, "path": _entry_path(s["path"], folder, absolute)} for s in songs]
    if fmt == "csv":
        return csv_text(rows, CSV_COLUMNS)
    if fmt == "json":
        return json.dumps({**(request or {}), "songs": rows}, indent=2, default=str) + "\n"
    raise LibraryError(f"unknown playlist format {fmt!r}; use one of m3u8, csv, json")


def write(songs: list[dict[str, Any]], target: str | os.PathLike, absolute: bool = False,
          request: dict[str, Any] | None = None) -> str:
    """Write the playlist to ``target`` atomically, in the format its suffix names; return the format."""
    target = Path(target)
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise LibraryError(f"{target}: unknown playlist format; name it .m3u8, .m3u, .csv or .json")
    write_text_atomic(target, render(songs, fmt, target.resolve().parent, absolute, request))
    return fmt
