"""``mer benchmark``: a grid of models x datasets, one markdown table of CV results.

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
from pathlib import Path
from typing import Any

from .config import TrainConfig, read_yaml
from ..errors import ConfigError
from ..io import write_text_atomic


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
    from .run import run

    base, runs = load_grid(path)
    base = Path(out) if out else base
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
