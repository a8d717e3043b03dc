"""Losses over (valence, arousal) columns: MAE, MSE, CCC and weighted sums of them.

Targets may hold NaN where a label is missing (dynamic labels before 15 s in DEAM); those
rows are left out. ``batch_loss`` applies the task: static, dynamic or both, and for a
static task with ``weak_dynamic`` also trains every 2 Hz step toward the clip's label; a
model with a quadrant head also learns the labelled quadrant (cross-entropy).
"""

from __future__ import annotations

from typing import Callable, cast

import torch
import torch.nn.functional as F

from .config import parse_loss


def ccc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - concordance correlation, per column, averaged (pred/target ``(N, D)``)."""
    pm, tm = pred.mean(0), target.mean(0)
    cov = ((pred - pm) * (target - tm)).mean(0)
    ccc = 2 * cov / (pred.var(0, unbiased=False) + target.var(0, unbiased=False) + (pm - tm) ** 2 + 1e-8)
    return (1 - ccc).mean()


def make_loss(spec: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    terms = parse_loss(spec)
    fns: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "mae": F.l1_loss, "mse": F.mse_loss, "ccc": ccc_loss}

    def loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ok = torch.isfinite(target).all(dim=-1)
        if not ok.any():
            return pred.sum() * 0.0
        p, t = pred[ok], target[ok]
        # a tensor: parse_loss never returns an empty sum
        return cast(torch.Tensor, sum(w * fns[name](p, t) for name, w in terms.items()))

    return loss


def batch_loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], task: str,
               loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], weak_dynamic: bool = True) -> torch.Tensor:
    # every output joins the graph (with weight 0 when unused), so DDP sees a gradient for every parameter
    # (a tensor: every model returns "static")
    total = cast(torch.Tensor, sum(out[k].sum() for k in ("static", "dynamic", "quadrant") if k in out) * 0.0)
    if task in ("static", "both"):
        total = total + loss(out["static"], batch["static"])
    if task == "static" and weak_dynamic:  # weak labels: every step is trained toward the clip's label,
        steps = out["dynamic"].shape[1]  # so the 2 Hz curve of a static-trained model is trained too
        total = total + loss(out["dynamic"].reshape(-1, 2), batch["static"].repeat_interleave(steps, dim=0))
    if "quadrant" in out and "quadrant" in batch and (batch["quadrant"] >= 0).any():  # a quadrant head
        total = total + F.cross_entropy(out["quadrant"], batch["quadrant"], ignore_index=-100)
    if task in ("dynamic", "both"):
        n = min(out["dynamic"].shape[1], batch["dynamic"].shape[1])
        total = total + loss(out["dynamic"][:, :n].reshape(-1, 2), batch["dynamic"][:, :n].reshape(-1, 2))
    return total
