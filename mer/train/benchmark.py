"""``mer benchmark``: a grid of models x datasets, one markdown table of CV results; and the
cross-dataset protocol (train on some datasets, test on others; see :func:`run_cross`).

The YAML file::

    out: runs/seed_zoo                # run folders go to OUT/<dataset>/<label>/
    defaults: {folds: 5, epochs: 20}  # TrainConfig keys shared by every run
    datasets:
      - {dataset: 4q, root: ../shared/data/4q-dev, dataset_options: {lexicon: ...}}
    models:
      - {model: crnn, model_args: {channels: [16, 32, 32, 32]}}
      - {label: musicnn_frozen, model: musicnn}

Each run is resumable: a finished run (summary.json present) is read back, not retrained,
so an interrupted benchmark continues where it stopped. Paths are relative to the folder
the command runs in.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import TrainConfig, read_yaml
from ..errors import ConfigError
from ..io import write_json_atomic, write_text_atomic


def load_grid(path: str | os.PathLike) -> tuple[Path, list[tuple[str, str, TrainConfig]]]:
    doc = read_yaml(path)
    unknown = set(doc) - {"out", "defaults", "datasets", "models"}
    if unknown:
        raise ConfigError(f"{path}: unknown benchmark keys {sorted(unknown)}; use out, defaults, datasets, models")
    if not doc.get("datasets") or not doc.get("models"):
        raise ConfigError(f"{path}: needs a non-empty 'datasets' and 'models' list")
    runs = []
    for d in doc["datasets"]:
        for m in doc["models"]:
            m = dict(m)
            label = str(m.pop("label", m.get("model", "")))
            d_entry = dict(d)
            d_label = str(d_entry.pop("label", d_entry.get("dataset", "")))
            cfg = TrainConfig.from_dict({**(doc.get("defaults") or {}), **d_entry, **m}, source=str(path)).check()
            runs.append((d_label, label, cfg))
    return Path(doc.get("out") or "runs/benchmark"), runs


def run_grid(path: str | os.PathLike, out: str | None = None, progress: bool = True) -> str:
    """Run every model x dataset of the grid YAML ``path``; what every run needs (each config
    with its ``hf:`` backbone, in :func:`load_grid`, and each dataset's layout and audio) is
    checked before the first one trains."""
    from .run import check_dataset, run

    base, runs = load_grid(path)
    base = Path(out) if out else base
    checked: set[str] = set()
    for _, _, cfg in runs:
        key = repr((cfg.dataset, cfg.root, sorted(cfg.dataset_options.items())))
        if key not in checked:
            checked.add(key)
            check_dataset(cfg.dataset, cfg.root, cfg.dataset_options)
    results = []
    for d_label, label, cfg in runs:
        run_dir = base / d_label / label
        if progress:
            print(f"== {d_label} / {label}", flush=True)
        summary = run(cfg, run_dir, resume=True, progress=progress)
        results.append((d_label, label, summary))
    table = format_grid(results)
    write_text_atomic(base / "benchmark.md", table + "\n")
    return table


COLUMNS = (("valence_r", "valence r"), ("arousal_r", "arousal r"), ("valence_ccc", "valence CCC"),
           ("arousal_ccc", "arousal CCC"), ("valence_rmse", "valence RMSE"), ("arousal_rmse", "arousal RMSE"),
           ("quadrant_f1", "quadrant macro-F1"))


def _cell(d: dict[str, float], key: str) -> str:
    v, sd = d.get(key, math.nan), d.get(key + "_sd", math.nan)
    return "n/a" if not math.isfinite(v) else f"{v:.3f} ± {sd:.3f}"


def format_grid(results: list[tuple[str, str, dict[str, Any]]]) -> str:
    """One table per dataset: models, then the constant (training-mean) predictor. Train time
    is the sum of the folds' epoch times (``summary["seconds"]``), so it survives resumes."""
    lines: list[str] = []
    for d_label in dict.fromkeys(r[0] for r in results):
        rows = [r for r in results if r[0] == d_label]
        keys = [(k, n) for k, n in COLUMNS if any(k in r[2]["mean"] for r in rows)]
        s0 = rows[0][2]
        lines += [f"### {d_label}: {s0['folds']}-fold CV, task {s0['task']} (mean ± sd over folds)", "",
                  "| model | params (M) | " + " | ".join(n for _, n in keys) + " | train time (min) |",
                  "|---|---|" + "---|" * len(keys) + "---|"]
        for _, label, s in rows:
            lines.append(f"| {label} | {s['params'] / 1e6:.2f} | " + " | ".join(_cell(s["mean"], k) for k, _ in keys)
                         + f" | {s['seconds'] / 60:.1f} |")
        lines.append("| constant (training mean) | 0 | " + " | ".join(_cell(s0["constant"], k) for k, _ in keys)
                     + " | - |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- cross-dataset protocol
#
# ``mer benchmark --train pmemo=ROOT --test deam=ROOT [--test ...]``: train one model on the
# training set(s) (several are joined by mer.datasets.union), score it on each test set, and
# put the training set's own k-fold CV beside it. Every loader already gives labels on the
# canonical [-1, 1] scale; where a set has only quadrant labels (4Q without a lexicon,
# RAVDESS, MERGE without AV values) training uses the quadrant's centre and scoring uses the
# quadrant only (its r and CCC against quadrant centres would mean nothing); where a test
# set has continuous labels but no quadrants, the quadrant of each label is the sign of its
# valence and arousal, so every pair of datasets shares at least the quadrant metrics.

CROSS_COLUMNS = (("valence_r", "valence r"), ("arousal_r", "arousal r"), ("valence_ccc", "valence CCC"),
                 ("arousal_ccc", "arousal CCC"), ("quadrant_acc", "quadrant acc"),
                 ("quadrant_f1", "quadrant macro-F1"))


@dataclass
class DatasetSpec:
    """One dataset of the protocol: its loader name, folder and loader options."""

    name: str
    root: str
    options: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name


def parse_specs(specs: list[str], roots: dict[str, str], options: dict[str, dict]) -> list[DatasetSpec]:
    """``["pmemo=/data/PMEmo2019", "4q"]`` with ``roots`` for the names given without a folder."""
    from ..datasets import dataset_class

    out = []
    for spec in specs:
        name, _, root = spec.partition("=")
        name = name.strip().lower()
        loader = dataset_class(name)  # the registry's one "unknown dataset" message
        root = root or roots.get(name, "")
        if not root:
            raise ConfigError(f"{spec!r}: no folder for {name}; write {name}=DIR or pass --root {name}=DIR")
        loader.check_root(root)  # the loader's own line: where to download it, what its folder holds
        out.append(DatasetSpec(name, root, dict(options.get(name) or {})))
    return out


def _train_config(train: list[DatasetSpec], base: TrainConfig, folds: int) -> TrainConfig:
    if len({s.name for s in train}) != len(train):
        raise ConfigError("the same dataset given twice with --train")
    if len(train) == 1:
        d = {"dataset": train[0].name, "root": train[0].root, "dataset_options": train[0].options}
    else:
        d = {"dataset": "union", "root": train[0].root,
             "dataset_options": {"parts": {s.name: s.root for s in train},
                                 "options": {s.name: s.options for s in train if s.options}}}
    return TrainConfig.from_dict({**base.to_dict(), **d, "folds": folds, "split": ""}).check()


def _has_static(ds: Any) -> bool:
    return any(t.static is not None for t in ds.tracks())


def _refuse_shared_songs(train: list[DatasetSpec], test: DatasetSpec) -> None:
    """ConfigError when a test set shares songs (same id space, same ids) with a training set."""
    from ..datasets import load_dataset

    tds = load_dataset(test.name, test.root, **test.options)
    for s in train:
        ds = load_dataset(s.name, s.root, **s.options)
        if ds.space == tds.space and set(ds.track_ids) & set(tds.track_ids):
            n = len(set(ds.track_ids) & set(tds.track_ids))
            raise ConfigError(f"{test.name} shares {n} song(s) with the training set {s.name} (id space {ds.space}); "
                              "a cross-dataset score on them would be an in-dataset one: pick another pair (the "
                              "in-dataset CV column is that number)")


def cross_scores(result: dict[str, Any], ds: Any) -> dict[str, float]:
    """Headline numbers of one test set on the common ground: static only where the set has
    continuous labels, quadrants as labelled or, failing that, from the labels' signs."""
    from .. import metrics
    from ..evaluation.scores import headline
    from ..scales import QUADRANTS, quadrant_index

    h = headline(result)
    if not _has_static(ds):
        h = {k: v for k, v in h.items() if k.startswith("quadrant")}
    if "quadrant" not in result:
        pred = {p["id"]: (p["valence"], p["arousal"]) for p in result.get("predictions", [])}
        tracks = [ds.track(i) for i in pred if ds.track(i).static is not None]
        if tracks:
            truth = np.array([QUADRANTS[t.quadrant].number if t.quadrant else
                              int(quadrant_index(t.valence, t.arousal)) for t in tracks])
            p = np.array([pred[t.track_id] for t in tracks])
            guess = quadrant_index(p[:, 0], p[:, 1])
            h["quadrant_acc"] = metrics.accuracy(truth, guess)
            h["quadrant_f1"] = metrics.macro_f1(truth, guess)
            h["quadrant_from_signs"] = 1.0
    return h


def run_cross(train: list[DatasetSpec], test: list[DatasetSpec], base: TrainConfig, out: str | os.PathLike,
              cv_folds: int = 5, workers: int = 0, progress: bool = True) -> str:
    """Train on ``train`` (joined when several), score on each of ``test``, beside the training
    set's own ``cv_folds``-fold CV (0 or 1: skip it). Writes OUT/cross.md and OUT/cross.json; the
    runs (OUT/cv, OUT/train) are resumable like any benchmark run."""
    from ..datasets import load_dataset
    from ..evaluation.evaluate import evaluate
    from .run import check_dataset, run

    if not train or not test:
        raise ConfigError("the cross-dataset protocol needs --train and --test (each repeatable)")
    for s in [*train, *test]:  # every set's layout and audio before the first clip is decoded
        check_dataset(s.name, s.root, s.options)
    cfg = _train_config(train, base, 1)  # and the model (an hf: backbone: resolvable offline, trusted)
    for t in test:
        _refuse_shared_songs(train, t)
    out = Path(out)
    train_ds = load_dataset(cfg.dataset, cfg.root, **cfg.dataset_options)
    n_train = sum(1 for _ in train_ds.tracks())
    rows: list[dict[str, Any]] = []
    if cv_folds >= 2:
        if progress:
            print(f"== in-dataset {cv_folds}-fold CV on {'+'.join(s.name for s in train)}", flush=True)
        cv = run(_train_config(train, base, cv_folds), out / "cv", resume=True, progress=progress)
        mean = cv["mean"] if _has_static(train_ds) else {k: v for k, v in cv["mean"].items()
                                                          if k.startswith("quadrant")}
        rows.append({"test": f"{'+'.join(s.name for s in train)} (in-dataset {cv_folds}-fold CV)", "n": n_train,
                     "labels": _labels(train_ds), "scores": mean, "sd": True})
    if progress:
        print(f"== training on all {n_train} clips of {'+'.join(s.name for s in train)}", flush=True)
    run(cfg, out / "train", resume=True, progress=progress)
    for t in test:
        if progress:
            print(f"== testing on {t.name}", flush=True)
        result, ceiling = evaluate(out / "train", t.name, t.root, t.options, device=base.device, workers=workers,
                                   progress=progress)
        ds = load_dataset(t.name, t.root, **t.options)
        rows.append({"test": t.name, "n": result["n"], "labels": _labels(ds), "scores": cross_scores(result, ds),
                     "ceiling": ceiling, "sd": False})
    doc = {"train": [s.__dict__ for s in train], "test": [s.__dict__ for s in test], "model": cfg.model,
           "n_train": n_train, "rows": rows}
    table = format_cross(doc)
    write_json_atomic(out / "cross.json", doc)
    write_text_atomic(out / "cross.md", table + "\n")
    return table


def _labels(ds: Any) -> str:
    tracks = list(ds.tracks())
    kinds = [k for k, n in (("static", sum(t.static is not None for t in tracks)),
                            ("dynamic", sum(t.dynamic is not None for t in tracks)),
                            ("quadrant", sum(bool(t.quadrant) for t in tracks))) if n]
    return "+".join(kinds) or "none"


def format_cross(doc: dict[str, Any]) -> str:
    """One markdown table: a row per test set, the in-dataset CV first (mean ± sd over folds)."""
    rows = doc["rows"]
    keys = [(k, n) for k, n in CROSS_COLUMNS if any(k in r["scores"] for r in rows)]
    lines = [f"### Cross-dataset: {doc['model']} trained on {'+'.join(s['name'] for s in doc['train'])} "
             f"({doc['n_train']} clips)", "",
             "| test set | clips | labels | " + " | ".join(n for _, n in keys) + " |",
             "|---|---|---|" + "---|" * len(keys)]
    for r in rows:
        s = r["scores"]
        cells = [(_cell(s, k) if r["sd"] else ("n/a" if not math.isfinite(s.get(k, math.nan)) else f"{s[k]:.3f}"))
                 if k in s else "-" for k, _ in keys]
        note = " (quadrants from label signs)" if s.get("quadrant_from_signs") else ""
        lines.append(f"| {r['test']} | {r['n']} | {r['labels']}{note} | " + " | ".join(cells) + " |")
    lines += ["", "Scores are on the canonical [-1, 1] scale; '-' where a set lacks that label. Cross-dataset rows "
              "are one model trained on every training clip; test sets of a few clips give wide error bars."]
    return "\n".join(lines)
