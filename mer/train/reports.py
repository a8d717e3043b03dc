"""What a run writes for people: the per-epoch log and curves, and the run's summary.

- ``fold*/log.csv`` (and TensorBoard scalars with ``tensorboard: true``), ``fold*/curves.png``;
- ``summary.json`` / ``summary.md``: per fold, mean +/- sd, and the constant predictor.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..evaluation.scores import headline
from ..io import atomic_path
from ..models.profile import n_params
from .config import TrainConfig


def tensorboard_writer(folder: Path):  # noqa: ANN201
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(folder / "tensorboard"))


def write_log(folder: Path, history: list[dict], writer=None) -> None:  # noqa: ANN001
    """``folder/log.csv`` with one row per epoch (atomic), and the last row to TensorBoard."""
    keys = list(dict.fromkeys(k for row in history for k in row))
    with atomic_path(folder / "log.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(history)
    if writer is not None:
        row = history[-1]
        for k, v in row.items():
            if k != "epoch" and isinstance(v, float) and math.isfinite(v):
                writer.add_scalar(k, v, row["epoch"])
        writer.flush()


def plot_curves(out: Path, history: list[dict], loss_name: str) -> None:
    """Loss per epoch (train, validation) and the validation metrics, as a PNG."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    metric_keys = [k for k in history[-1] if k.endswith(("_r", "_f1", "_ccc"))]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].plot(ep, [h["train_loss"] for h in history], label="train")
    axes[0].plot(ep, [h["val_loss"] for h in history], label="validation")
    axes[0].set(xlabel="epoch", ylabel=f"loss ({loss_name})", title="loss per epoch")
    axes[0].legend()
    for k in metric_keys:
        axes[1].plot(ep, [h.get(k, math.nan) for h in history], label=k)
    axes[1].set(xlabel="epoch", title="validation metrics")
    if metric_keys:
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def summarize(cfg: TrainConfig, folds: list[dict], model: torch.nn.Module, seconds: float) -> dict[str, Any]:
    """Per-fold results and their mean +/- sd, beside the constant (training-mean) predictor."""
    tested = [f for f in folds if "test" in f]
    agg: dict[str, dict[str, float]] = {}
    for which in ("test", "constant"):
        rows = [headline(f[which]) for f in tested if which in f]
        keys = rows[0].keys() if rows else []
        agg[which] = {}
        for k in keys:
            vals = np.array([r[k] for r in rows], dtype=float)
            agg[which][k] = float(np.nanmean(vals)) if np.isfinite(vals).any() else math.nan
            agg[which][k + "_sd"] = float(np.nanstd(vals)) if np.isfinite(vals).any() else math.nan
    return {"model": cfg.model, "model_args": cfg.model_args, "dataset": cfg.dataset, "task": cfg.task,
            "folds": len(folds), "params": n_params(model), "seconds": seconds, "mean": agg.get("test", {}),
            "constant": agg.get("constant", {}), "per_fold": folds}


def format_summary(s: dict[str, Any]) -> str:
    """Markdown: per-fold rows, mean +/- sd, and the constant (training-mean) predictor."""
    keys = [k for k in s["mean"] if not k.endswith("_sd")]
    lines = [f"{s['model']} on {s['dataset']} ({s['task']}, {s['folds']} fold(s), "
             f"{s['params'] / 1e6:.2f} M parameters, {s['seconds'] / 60:.1f} min)", "",
             "| fold | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for f in s["per_fold"]:
        if "test" in f:
            h = headline(f["test"])
            lines.append(f"| {f['fold']} | " + " | ".join(f"{h.get(k, math.nan):.3f}" for k in keys) + " |")
    for label, which in (("mean", "mean"), ("constant", "constant")):
        if s[which]:
            lines.append(f"| {label} | " + " | ".join(
                f"{s[which].get(k, math.nan):.3f} +/- {s[which].get(k + '_sd', math.nan):.3f}" for k in keys) + " |")
    return "\n".join(lines)
