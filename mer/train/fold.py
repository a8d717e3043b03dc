"""One fold: train a model with early stopping on a validation set, resumable from its folder.

Determinism: weights are initialised from ``seed``; every epoch reseeds torch with
(seed, epoch), and the crop offsets and batch order depend only on (seed, epoch), so a run
resumed from ``state.pt`` (after Ctrl-C or kill -9) ends with the same weights as one that
never stopped. The interrupted epoch is run again from its start.

Distributed: the global batch ``batch_size`` is split over ranks by ``DistributedSampler`` (a
single process uses the same sampler with one replica, so both see the same global
batches), DDP averages gradients, and only rank 0 writes files.

Validation runs through :class:`mer.infer.Inference`, the same windows ``mer predict`` uses.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

import numpy as np
import torch
import torch.distributed as dist

from ..datasets.items import Item
from ..datasets.splits import kfold
from ..errors import ConfigError
from ..evaluation.scores import headline, score
from ..grid import GRID_SECONDS
from ..infer.inference import Inference, stack
from ..io import atomic_path
from ..models import create_model
from ..models.checkpoint import save_checkpoint
from .config import TrainConfig, parse_schedule
from .data import CropSet
from .distributed import Dist, seed_all
from .losses import batch_loss, make_loss

if TYPE_CHECKING:
    from ..models.base import MERModel, StepModel
from .reports import plot_curves, tensorboard_writer, write_log


class _Head(torch.nn.Module):
    """The heads of a frozen-backbone model as a module of their own (what DDP wraps)."""

    def __init__(self, model: StepModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, seq: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.head(seq)


class FoldTrainer:
    """Trains one model on ``train`` with early stopping on ``val``; resumable from ``fold_dir``."""

    def __init__(self, cfg: TrainConfig, fold_dir: Path, device: torch.device, env: Dist, progress: bool = True,
                 meta: dict | None = None) -> None:
        self.cfg, self.dir, self.device, self.env, self.progress = cfg, fold_dir, device, env, progress
        self.meta = meta or {}
        self.loss = make_loss(cfg.loss)

    def build(self) -> MERModel:
        seed_all(self.cfg.seed, 0)
        return create_model(self.cfg.model, feature=self.cfg.feature or None, **self.cfg.model_kwargs())

    def _optimizer(self, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        c = self.cfg
        if c.optimizer == "sgd":
            return torch.optim.SGD(params, lr=c.lr, momentum=0.9, weight_decay=c.weight_decay)
        cls = torch.optim.AdamW if c.optimizer == "adamw" else torch.optim.Adam
        return cls(params, lr=c.lr, weight_decay=c.weight_decay)

    def lr_at(self, epoch: int) -> float:
        kind, every, factor, times = parse_schedule(self.cfg.schedule, self.cfg.epochs)
        if kind == "step":
            n = int(epoch // every)
            return self.cfg.lr * factor ** (min(n, times) if times else n)
        if kind == "cosine":
            return self.cfg.lr * 0.5 * (1 + math.cos(math.pi * epoch / self.cfg.epochs))
        return self.cfg.lr

    def fit(self, model: MERModel, train: list[Item], val: list[Item], embedded: bool) -> dict[str, Any]:
        """Train ``model`` on crops of ``train`` (``embedded``: the items hold a frozen backbone's
        per-step embeddings and only the heads learn), early-stopped on ``val``."""
        c = self.cfg
        if c.batch_size % self.env.world:
            raise ConfigError(f"batch_size {c.batch_size} must be divisible by the {self.env.world} processes")
        frames_per_step = 1.0 if embedded else model.feature.frames_per_second * GRID_SECONDS
        data = CropSet(train, max(1, int(round(c.crop_seconds / GRID_SECONDS))), frames_per_step, c.seed)
        # embedded: a frozen backbone, whose embeddings are the data (capabilities.step_embeddings)
        forward: torch.nn.Module = _Head(cast("StepModel", model)) if embedded else model
        if self.env.world > 1:
            model.to(self.device)
            forward = torch.nn.parallel.DistributedDataParallel(
                forward, device_ids=[self.device.index] if self.device.type == "cuda" else None)

        def step(batch: dict[str, torch.Tensor], parts: dict[str, float]) -> torch.Tensor:
            return batch_loss(forward(batch["x"]), batch, c.task, self.loss, c.weak_dynamic)

        def check() -> tuple[float, dict[str, float], dict[str, Any]]:
            val_loss, scores = self.validate(model, val, embedded)
            return val_loss, _flat(scores), scores

        return self.epochs(model, data, step, check, c.loss)

    def epochs(self, model: MERModel, data: Any, step: Callable[[dict[str, torch.Tensor], dict[str, float]],
                                                                        torch.Tensor],
               check: Callable[[], tuple[float, dict[str, float], dict[str, Any]]], curves: str) -> dict[str, Any]:
        """The epoch loop every fold runs (supervised training and distillation alike).

        Resumes from ``state.pt`` (read weights-only), sets each epoch's seed, learning rate and
        crop offsets (``data.set_epoch``), runs ``step(batch, parts)`` (the batch's loss; it may add
        named terms to ``parts``, logged per clip as ``train_NAME``) over the global batches of
        ``DistributedSampler``, then ``check()``: (validation loss, columns for the log, what the
        best checkpoint records as its validation). Saves the best model, the log and the state after
        every epoch (rank 0 only) and stops after ``patience`` epochs without improvement."""
        from tqdm import tqdm

        c, env = self.cfg, self.env
        model.to(self.device)
        opt = self._optimizer([p for p in model.parameters() if p.requires_grad])
        state_file = self.dir / "state.pt"
        start, best, best_epoch, bad, history = 0, math.inf, -1, 0, []
        if state_file.exists():
            st = load_state(state_file, self.device)
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            start, best, best_epoch, bad, history = st["epoch"], st["best"], st["best_epoch"], st["bad"], st["history"]
        sampler: torch.utils.data.DistributedSampler[int] = torch.utils.data.DistributedSampler(
            data, num_replicas=env.world, rank=env.rank, shuffle=True, seed=c.seed, drop_last=False)
        loader = torch.utils.data.DataLoader(data, batch_size=c.batch_size // env.world, sampler=sampler)
        writer = tensorboard_writer(self.dir) if (c.tensorboard and env.main) else None
        show = self.progress and env.main
        epochs = tqdm(range(start, c.epochs), initial=start, total=c.epochs, desc=f"{self.dir.name} epochs",
                      unit="epoch", disable=not show)
        for epoch in epochs:
            seed_all(c.seed, epoch + 1)
            sampler.set_epoch(epoch)
            data.set_epoch(epoch)
            for g in opt.param_groups:
                g["lr"] = self.lr_at(epoch)
            model.train()
            t0, total, count = time.perf_counter(), 0.0, 0
            parts: dict[str, float] = {}
            for batch in tqdm(loader, desc="batches", unit="batch", leave=False, disable=not show):
                batch = {k: v.to(self.device) for k, v in batch.items()}
                loss = step(batch, parts)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(batch["x"])
                count += len(batch["x"])
            val_loss, columns, validation = check()
            row = {"epoch": epoch + 1, "lr": self.lr_at(epoch), "train_loss": total / max(1, count),
                   "val_loss": val_loss, "seconds": time.perf_counter() - t0,
                   **{f"train_{k}": v / max(1, count) for k, v in parts.items()}, **columns}
            history.append(row)
            if val_loss < best - 1e-6:
                best, best_epoch, bad = val_loss, epoch + 1, 0
                if env.main:
                    save_checkpoint(model, self.dir / "best", **self.meta, epoch=epoch + 1,
                                    validation={"loss": val_loss, **validation})
            else:
                bad += 1
            if env.main:
                write_log(self.dir, history, writer)
                with atomic_path(state_file) as tmp:
                    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                                "best": float(best), "best_epoch": best_epoch, "bad": bad,
                                "history": _plain(history)}, tmp)
            epochs.set_postfix(train=f"{row['train_loss']:.4f}", val=f"{val_loss:.4f}", best=best_epoch)
            if c.patience and bad >= c.patience:
                break
        if env.world > 1:
            dist.barrier()
        if env.main:
            plot_curves(self.dir / "curves.png", history, curves)
        return {"best_epoch": best_epoch, "best_val_loss": best, "epochs_run": len(history),
                "epoch_seconds": sum(h["seconds"] for h in history)}  # survives resumes (history is in state.pt)

    def validate(self, model: torch.nn.Module, val: list[Item], embedded: bool) -> tuple[float, dict]:
        """(validation loss, headline scores) of ``model`` on ``val``, through the one Inference."""
        if not val:
            return math.nan, {}
        model.eval()
        inference = Inference.from_module(model, self.device)
        outs = inference.heads([it.x for it in val]) if embedded else inference.many([it.x for it in val])
        static, dynamic, _ = stack(outs)
        losses = []
        if self.cfg.task in ("static", "both"):
            y = torch.tensor(np.stack([it.static_target if it.static_target is not None else np.full(2, np.nan)
                                       for it in val]))
            losses.append(float(self.loss(torch.from_numpy(static), y.float())))
        if self.cfg.task in ("dynamic", "both"):
            pairs = [(torch.from_numpy(p[:len(it.dynamic)]), torch.from_numpy(it.dynamic[:len(p)]))
                     for it, p in zip(val, dynamic) if it.dynamic is not None]
            if pairs:
                losses.append(float(self.loss(torch.cat([p for p, _ in pairs]), torch.cat([t for _, t in pairs]))))
        return float(sum(losses)), headline(score(val, static, dynamic))


def load_state(path: Path, device: torch.device) -> dict[str, Any]:
    """A fold's resume state (``state.pt``), read with ``weights_only=True``: tensors, numbers,
    strings, lists and dicts only, so a crafted file cannot run code. Anything else (another
    program's pickle, a truncated file, missing keys) is a one-line :class:`ConfigError`."""
    import pickle

    try:
        st = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" not in str(exc).lower():  # not a refused object: bytes that are no pickle at all
            raise ConfigError(f"{path}: corrupt resume state (not a PyTorch state file); delete it to restart this "
                              "fold from its first epoch (the other folds are kept)") from None
        raise ConfigError(f"{path}: not a resume state mer wrote (it holds Python objects other than tensors and "
                          "numbers, which mer never loads: loading them could run code); delete it to restart this "
                          "fold from its first epoch (the other folds are kept)") from None
    except Exception as exc:  # noqa: BLE001  (zip, EOF and OS errors alike: the file is unusable)
        raise ConfigError(f"{path}: corrupt resume state ({type(exc).__name__}); delete it to restart this fold "
                          "from its first epoch (the other folds are kept)") from None
    keys = ("model", "optimizer", "epoch", "best", "best_epoch", "bad", "history")
    if not isinstance(st, dict) or any(k not in st for k in keys):
        raise ConfigError(f"{path}: not a resume state mer wrote (expected the keys {', '.join(keys)}); delete it "
                          "to restart this fold from its first epoch (the other folds are kept)")
    return st


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers (what a weights-only load accepts)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _flat(d: dict[str, float]) -> dict[str, float]:
    return {f"val_{k}": v for k, v in d.items()}


def inner_validation(train: list[Item], fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Hold out ~``fraction`` of the training clips, whole artists at a time, for early stopping."""
    k = max(2, int(round(1 / fraction)))
    groups = [it.artist for it in train]
    strata = [str(it.quadrant) if it.quadrant else None for it in train]
    n_groups = len({g or it.track_id for g, it in zip(groups, train)})
    if n_groups < k:
        raise ConfigError(f"only {n_groups} artists/songs in a training fold: too few to hold out a validation "
                          "set; use fewer folds or more data")
    sp = kfold([it.track_id for it in train], k, groups=groups, strata=strata if any(strata) else None, seed=seed + 1)
    val_ids = set(sp.folds[0][1])
    return [it for it in train if it.track_id not in val_ids], [it for it in train if it.track_id in val_ids]
