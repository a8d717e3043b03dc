"""The feature cache: features computed once per (audio content, feature config).

Layout: ``$MER_CACHE_DIR`` (default ``~/.cache/mer``, :func:`mer.io.cache_root`)
``/features/<config digest>/config.json`` and ``.../<SHA-1 of the audio file>.npz`` holding
``features`` (C, F, T) and ``source`` (the path it was first made from). An entry is written
atomically; a corrupt or mismatching one (zip CRC, dtype, shape, non-finite values) is
recomputed with a warning. The config saved beside the entries says how they were made
(lhotse's idea); training, the nested benchmark and ``mer evaluate`` share it.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .errors import MERWarning
from .features import FeatureConfig, features_from_file
from .io import atomic_path, cache_root, file_sha1, write_json_atomic


class FeatureCache:
    """Features computed once per (audio content, config) and stored atomically.

    Layout: ``root/features/<config digest>/config.json`` and ``.../<sha1 of audio>.npz``
    holding ``features`` (C, F, T) and ``source`` (the path it was first made from). A
    corrupt or mismatching entry is detected (zip CRC, shape) and recomputed with a warning.
    """

    def __init__(self, config: FeatureConfig | None = None, root: str | os.PathLike | None = None) -> None:
        self.config = config or FeatureConfig()
        self.dir = Path(root or cache_root()) / "features" / self.config.digest()
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg_file = self.dir / "config.json"
        if not cfg_file.exists():
            write_json_atomic(cfg_file, self.config.to_dict())

    def entry(self, path: str | os.PathLike) -> Path:
        return self.dir / f"{file_sha1(path)}.npz"

    def get(self, path: str | os.PathLike) -> np.ndarray:
        """Cached features of ``path`` ``(C, F, T)``; computed and stored on a miss."""
        entry = self.entry(path)
        if entry.exists():
            feats = self._read(entry)
            if feats is not None:
                return feats
            warnings.warn(f"{entry}: corrupt feature cache entry for {path}; recomputing", MERWarning, stacklevel=2)
        feats = features_from_file(path, self.config)
        with atomic_path(entry) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, features=feats, source=np.array(str(path)))
        return feats

    def _read(self, entry: Path) -> np.ndarray | None:
        try:
            with np.load(entry, allow_pickle=False) as z:
                feats = z["features"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        c = self.config
        if feats.dtype != np.float32 or feats.ndim != 3 or feats.shape[:2] != (c.channels, c.n_bins) \
                or not np.all(np.isfinite(feats)):
            return None
        return feats
