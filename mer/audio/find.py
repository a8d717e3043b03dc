"""Audio files under folders: :func:`find_audio` (what ``mer predict DIR``, ``mer index`` and
``mer convert`` search), following symlinked folders once each, hidden entries skipped."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import AudioError, MERWarning
from .sniff import AUDIO_EXTENSIONS

def _walk(root: Path, recursive: bool) -> Iterator[Path]:
    """Audio files under ``root``, following symlinked folders (each real folder once, so a
    link loop ends); hidden files and folders skipped; an unreadable folder is a warning."""
    seen: set[str] = set()

    def unreadable(err: OSError) -> None:
        warnings.warn(f"{err.filename}: folder cannot be read ({err.strerror}); its files were skipped", MERWarning,
                      stacklevel=4)

    for folder, dirs, files in os.walk(root, followlinks=True, onerror=unreadable):
        real = os.path.realpath(folder)
        if real in seen:  # a link back to a folder already searched
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in files:
            f = Path(folder) / name
            if not name.startswith(".") and f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file():
                yield f


def find_audio(paths: Iterable[str | os.PathLike], recursive: bool = True) -> list[Path]:
    """Expand files and folders into a sorted list of audio files (hidden files skipped).

    Files named explicitly are kept whatever their extension, so that a bad file gets an
    error rather than being silently ignored; missing paths raise AudioError.
    """
    found: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            found.extend(sorted(_walk(p, recursive)))
        elif p.exists():
            found.append(p)
        else:
            raise AudioError(f"{p}: no such file or folder; check the path")
    return found
