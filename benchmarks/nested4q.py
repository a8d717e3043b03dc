"""What the #14 experiment scripts share: the 4Q dev clips as ``benchmarks/nested_4q.yaml`` sees
them, and one markdown row per repeated nested estimate (5 outer x 4 inner artist-grouped
folds, 5 split seeds; the grid point chosen inside), so every experiment is scored exactly as
the shipped default was, beside it.

Used by ``mood_words.py``, ``augment_4q.py``, ``tonal_4q.py``, ``heads_4q.py``,
``robust_4q.py``, ``fusion_4q.py`` and ``finetune_4q.py`` (the loader only). Run them from
the repository root as modules (``python -m benchmarks.NAME --data ../shared/data``); they need
the train extra and the data root (``--data``, default ``$MER_DATA`` or ``../shared/data``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks._data import default_root

CONFIG = Path(__file__).resolve().with_name("nested_4q.yaml")
LEVEL = 0.139  # the default's loudness normalisation (RMS)
REFERENCE = "reference: LR on mean+sd embedding of loudness-normalised audio (shipped)"
C_GRID = [0.003, 0.01, 0.03, 0.1, 0.3]  # the shipped candidate's grid


def load(source: str = "msd", data: Path | None = None):  # noqa: ANN201  (mer.train.probe.ProbeData; lazy)
    """The 600 4Q dev clips with their quadrants, artists and cached musicnn features
    (``source``: the musicnn weights, "msd" as the default's or "mtt"; ``data``: the data root,
    ``benchmarks._data.default_root()`` when None; the YAML's own ``../shared/data`` paths are replaced)."""
    from mer.train.config import read_yaml
    from mer.train.probe import ProbeData

    data = Path(data) if data is not None else default_root()
    doc = read_yaml(CONFIG)
    doc["backbone"] = {"model": "musicnn", "model_args": {"source": source}}
    doc["root"] = str(data / "4q-dev")
    doc["dataset_options"] = {"lexicon": str(data / "lexicons" / "Ratings_Warriner_et_al.csv")}
    return ProbeData(doc, progress=False)


class ProbabilityClassifier:
    """Base of the scripts' own models: ``predict`` is the most probable of ``classes_``
    (subclasses set ``classes_`` in ``fit`` and define ``predict_proba``)."""

    classes_: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def header(title: str, first: str, clips: int, note: str = "") -> None:
    """The table's title, a ``note`` under it, and its header; ``first`` names its first column."""
    print(f"### {title}: {clips} clips, nested 5 x 4 folds, 5 seeds\n")
    if note:
        print(note + "\n")
    print(f"| {first} | nested macro-F1 (mean ± sd over repeats) | sd over folds | accuracy | most chosen | time (s) |")
    print("|---|---|---|---|---|---|")


def row(label: str, X: np.ndarray, data: Any, factory: Callable[..., Any], points: list[dict],
        fit_y: np.ndarray | None = None) -> dict[str, Any]:
    """Score ``factory`` over ``points`` with the default's nested protocol, print one row, return the
    summary (with ``confusion``: rows true Q1..Q4, columns predicted, summed over the 5 repeats)."""
    from mer.metrics import confusion_matrix
    from mer.train.nested import nested_cv

    t0 = time.perf_counter()
    res = nested_cv(X, data.y, data.groups, factory, points, 5, 4, [0, 1, 2, 3, 4], fit_y)
    s = res.summary()
    labels = tuple(res.classes)
    s["confusion"] = sum(confusion_matrix(res.y, p, labels) for p in res.pred).tolist()
    top = max(s["choices"].items(), key=lambda kv: kv[1])[0]
    print(f"| {label} | {s['f1']:.3f} ± {s['f1_sd_repeats']:.3f} | {s['f1_sd_folds']:.3f} | {s['accuracy']:.3f} | "
          f"{top} | {time.perf_counter() - t0:.0f} |", flush=True)
    return s
