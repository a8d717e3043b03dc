"""The training engine behind ``mer train`` / ``mer benchmark``: folds, epochs, resume, DDP.

Run folder layout (``OUT``)::

    config.yaml                 the resolved TrainConfig
    split.json                  the folds (track ids), as mer.splits writes them
    fold0/ best.safetensors + best.json   best epoch on the validation set (a mer checkpoint)
           state.pt             resumable state after the last finished epoch
           log.csv, curves.png  per-epoch losses and validation metrics
           test.json            scores of best on the fold's test clips, and of the constant predictor
    summary.json, summary.md    per-fold and mean +/- sd test scores

Determinism: weights are initialised from ``seed``; every epoch reseeds torch with
(seed, epoch), and the crop offsets and batch order depend only on (seed, epoch), so a run
resumed from ``state.pt`` (after Ctrl-C or kill -9) ends with the same weights as one that
never stopped. The interrupted epoch is run again from its start.

Distributed (``torchrun --nproc_per_node=N -m mer train ...``): the global batch
``batch_size`` is split over ranks by ``DistributedSampler`` (a single process uses the same
sampler with one replica, so both see the same global batches), DDP averages gradients, and
only rank 0 writes files. Backend: NCCL on CUDA, gloo otherwise.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig, parse_loss, parse_schedule
from .data import CropSet, Item, embed_items, load_items
from .errors import ConfigError
from .evaluation import DIMS, constant_baseline, score
from .features import FeatureConfig
from .grid import GRID_SECONDS
from .io import atomic_path, write_json_atomic, write_text_atomic
from .models import create_model
from .splits import Split


# ------------------------------------------------------------------ environment
@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Dist:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda requested but no CUDA GPU is visible; use --device cpu")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device mps requested but not available; use --device cpu")
    return torch.device(name)


def _seed_all(*parts: int) -> None:
    torch.manual_seed(int(np.random.SeedSequence(list(parts)).generate_state(1)[0]))


# ------------------------------------------------------------------ losses
def ccc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - concordance correlation, per column, averaged (pred/target ``(N, D)``)."""
    pm, tm = pred.mean(0), target.mean(0)
    cov = ((pred - pm) * (target - tm)).mean(0)
    ccc = 2 * cov / (pred.var(0, unbiased=False) + target.var(0, unbiased=False) + (pm - tm) ** 2 + 1e-8)
    return (1 - ccc).mean()


def make_loss(spec: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    terms = parse_loss(spec)
    fns = {"mae": F.l1_loss, "mse": F.mse_loss, "ccc": ccc_loss}

    def loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ok = torch.isfinite(target).all(dim=-1)
        if not ok.any():
            return pred.sum() * 0.0
        p, t = pred[ok], target[ok]
        return sum(w * fns[name](p, t) for name, w in terms.items())

    return loss


def batch_loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], task: str,
               loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], weak_dynamic: bool = True) -> torch.Tensor:
    # every output joins the graph (with weight 0 when unused), so DDP sees a gradient for every parameter
    total = (out["static"].sum() + out["dynamic"].sum()) * 0.0
    if task in ("static", "both"):
        total = total + loss(out["static"], batch["static"])
    if task == "static" and weak_dynamic:  # weak labels: every step is trained toward the clip's label,
        steps = out["dynamic"].shape[1]  # so the 2 Hz curve of a static-trained model is trained too
        total = total + loss(out["dynamic"].reshape(-1, 2), batch["static"].repeat_interleave(steps, dim=0))
    if task in ("dynamic", "both"):
        n = min(out["dynamic"].shape[1], batch["dynamic"].shape[1])
        total = total + loss(out["dynamic"][:, :n].reshape(-1, 2), batch["dynamic"][:, :n].reshape(-1, 2))
    return total


# ------------------------------------------------------------------ prediction
def predict_items(model: torch.nn.Module, items: Sequence[Item], device: torch.device, embedded: bool = False,
                  batch: int = 16) -> tuple[np.ndarray, list[np.ndarray]]:
    """Whole-clip predictions: static ``(N, 2)`` and one dynamic curve per clip.

    Clips of equal length are batched together (4Q's 30 s clips almost all are)."""
    model.eval()
    forward = model.head if embedded else model
    static = np.zeros((len(items), 2), dtype=np.float32)
    dynamic: list[np.ndarray] = [np.zeros((0, 2))] * len(items)
    by_len: dict[tuple, list[int]] = {}
    for i, it in enumerate(items):
        by_len.setdefault(it.x.shape, []).append(i)
    with torch.inference_mode():
        for idx in by_len.values():
            for s in range(0, len(idx), batch):
                part = idx[s:s + batch]
                x = torch.from_numpy(np.stack([items[i].x for i in part])).to(device)
                out = forward(x)
                st, dy = out["static"].float().cpu().numpy(), out["dynamic"].float().cpu().numpy()
                for j, i in enumerate(part):
                    static[i], dynamic[i] = st[j], dy[j]
    return static, dynamic


# ------------------------------------------------------------------ one fold
class _Head(torch.nn.Module):
    """The heads of a frozen-backbone model as a module of their own (what DDP wraps)."""

    def __init__(self, model: torch.nn.Module) -> None:
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

    def build(self) -> torch.nn.Module:
        _seed_all(self.cfg.seed, 0)
        return create_model(self.cfg.model, feature=self.cfg.feature or None, **self.cfg.model_args)

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

    def fit(self, model: torch.nn.Module, train: list[Item], val: list[Item], embedded: bool) -> dict[str, Any]:
        from tqdm import tqdm

        c, env = self.cfg, self.env
        model.to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = self._optimizer(params)
        state_file = self.dir / "state.pt"
        start, best, best_epoch, bad, history = 0, math.inf, -1, 0, []
        if state_file.exists():
            st = torch.load(state_file, map_location=self.device, weights_only=False)
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["optimizer"])
            start, best, best_epoch, bad, history = st["epoch"], st["best"], st["best_epoch"], st["bad"], st["history"]
        frames_per_step = 1.0 if embedded else model.feature.frames_per_second * GRID_SECONDS
        crop_steps = max(1, int(round(c.crop_seconds / GRID_SECONDS)))
        data = CropSet(train, crop_steps, frames_per_step, c.seed)
        if c.batch_size % env.world:
            raise ConfigError(f"batch_size {c.batch_size} must be divisible by the {env.world} processes")
        sampler = torch.utils.data.DistributedSampler(data, num_replicas=env.world, rank=env.rank, shuffle=True,
                                                      seed=c.seed, drop_last=False)
        loader = torch.utils.data.DataLoader(data, batch_size=c.batch_size // env.world, sampler=sampler)
        forward: torch.nn.Module = _Head(model) if embedded else model
        if env.world > 1:
            forward = torch.nn.parallel.DistributedDataParallel(
                forward, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        writer = self._tensorboard()
        epochs = tqdm(range(start, c.epochs), initial=start, total=c.epochs, desc=f"{self.dir.name} epochs",
                      unit="epoch", disable=not (self.progress and env.main))
        for epoch in epochs:
            _seed_all(c.seed, epoch + 1)
            sampler.set_epoch(epoch)
            data.set_epoch(epoch)
            for g in opt.param_groups:
                g["lr"] = self.lr_at(epoch)
            model.train()
            t0, total, count = time.perf_counter(), 0.0, 0
            for batch in tqdm(loader, desc="batches", unit="batch", leave=False,
                              disable=not (self.progress and env.main)):
                batch = {k: v.to(self.device) for k, v in batch.items()}
                out = forward(batch["x"])
                loss = batch_loss(out, batch, c.task, self.loss, c.weak_dynamic)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(batch["x"])
                count += len(batch["x"])
            val_loss, val_scores = self.validate(model, val, embedded)
            row = {"epoch": epoch + 1, "lr": self.lr_at(epoch), "train_loss": total / max(1, count),
                   "val_loss": val_loss, "seconds": time.perf_counter() - t0, **_flat(val_scores)}
            history.append(row)
            improved = val_loss < best - 1e-6
            if improved:
                best, best_epoch, bad = val_loss, epoch + 1, 0
                if env.main:
                    save_checkpoint(model, self.dir / "best", **self.meta, epoch=epoch + 1,
                                    validation={"loss": val_loss, **val_scores})
            else:
                bad += 1
            if env.main:
                self._log(history, writer)
                with atomic_path(state_file) as tmp:
                    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                                "best": best, "best_epoch": best_epoch, "bad": bad, "history": history}, tmp)
            epochs.set_postfix(train=f"{row['train_loss']:.4f}", val=f"{val_loss:.4f}", best=best_epoch)
            if c.patience and bad >= c.patience:
                break
        if env.world > 1:
            dist.barrier()
        if env.main:
            self._plot(history)
        return {"best_epoch": best_epoch, "best_val_loss": best, "epochs_run": len(history),
                "epoch_seconds": sum(h["seconds"] for h in history)}  # survives resumes (history is in state.pt)

    def validate(self, model: torch.nn.Module, val: list[Item], embedded: bool) -> tuple[float, dict]:
        if not val:
            return math.nan, {}
        static, dynamic = predict_items(model, val, self.device, embedded)
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
        s = score(val, static, dynamic)
        return float(sum(losses)), _headline(s)

    # -------------------------------------------------------------- outputs
    def _tensorboard(self):  # noqa: ANN202
        if not (self.cfg.tensorboard and self.env.main):
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.dir / "tensorboard"))

    def _log(self, history: list[dict], writer) -> None:  # noqa: ANN001
        keys = list(dict.fromkeys(k for row in history for k in row))
        with atomic_path(self.dir / "log.csv") as tmp:
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

    def _plot(self, history: list[dict]) -> None:
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
        axes[0].set(xlabel="epoch", ylabel=f"loss ({self.cfg.loss})", title="loss per epoch")
        axes[0].legend()
        for k in metric_keys:
            axes[1].plot(ep, [h.get(k, math.nan) for h in history], label=k)
        axes[1].set(xlabel="epoch", title="validation metrics")
        if metric_keys:
            axes[1].legend(fontsize=8)
        fig.tight_layout()
        with atomic_path(self.dir / "curves.png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)


def _headline(s: dict) -> dict[str, float]:
    """The few numbers worth a column: r and CCC per dimension, quadrant macro-F1, dynamic r."""
    out: dict[str, float] = {}
    for d in DIMS:
        if "static" in s:
            out[f"{d}_r"] = s["static"][d]["pearson"]
            out[f"{d}_ccc"] = s["static"][d]["ccc"]
            out[f"{d}_rmse"] = s["static"][d]["rmse"]
        if "dynamic" in s and d in s["dynamic"]:
            out[f"{d}_dyn_r"] = s["dynamic"][d]["r_mean"]
            out[f"{d}_dyn_rmse"] = s["dynamic"][d]["rmse_mean"]
    if "quadrant" in s:
        out["quadrant_f1"] = s["quadrant"]["macro_f1"]
        out["quadrant_acc"] = s["quadrant"]["accuracy"]
    return out


def _flat(d: dict[str, float]) -> dict[str, float]:
    return {f"val_{k}": v for k, v in d.items()}


# ------------------------------------------------------------------ the whole run
def make_split(cfg: TrainConfig, ds) -> Split:  # noqa: ANN001
    from .splits import dataset_kfold, mediaeval2013, mediaeval2015

    if cfg.split == "mediaeval2015":
        return mediaeval2015(ds)
    if cfg.split == "mediaeval2013":
        return mediaeval2013(ds)
    if cfg.split:
        return Split.from_json(cfg.split)
    if cfg.folds == 1:
        return Split("all", [([t.track_id for t in ds.tracks(with_audio=True)], [])], cfg.seed, {"dataset": ds.name})
    return dataset_kfold(ds, cfg.folds, seed=cfg.seed)


def inner_validation(train: list[Item], fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Hold out ~``fraction`` of the training clips, whole artists at a time, for early stopping."""
    from .splits import kfold

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


def run(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train (and test) every fold of ``cfg``; return the summary (also written to ``out``)."""
    from .datasets import load_dataset

    cfg.check()
    out = Path(out)
    device = resolve_device(cfg.device)
    env = setup_distributed(device)
    if cfg.tensorboard:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError("tensorboard: true needs the tensorboard package (pip install tensorboard)") from None
    ds = load_dataset(cfg.dataset, cfg.root, **cfg.dataset_options)
    split = make_split(cfg, ds)
    tracks = {t.track_id: t for t in ds.tracks(with_audio=True)}
    if not tracks:
        raise ConfigError(f"{cfg.dataset} at {cfg.root}: no tracks with audio and labels; run "
                          f"`mer datasets validate {cfg.dataset} --root {cfg.root}`")
    needed = [i for tr, te in split.folds for i in tr + te]
    missing = sorted(set(needed) - set(tracks))
    if missing:
        raise ConfigError(f"split {split.name}: {len(missing)} track(s) have no audio here, e.g. {missing[0]}")
    _check_labels(cfg, [tracks[i] for i in dict.fromkeys(needed)])
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "config.yaml")
        split.to_json(out / "split.json")
    feature = FeatureConfig.from_dict(cfg.feature) if cfg.feature else FeatureConfig()
    if env.world > 1 and not env.main:
        dist.barrier()  # rank 0 fills the feature cache first
    all_items = load_items([tracks[i] for i in dict.fromkeys(needed)], feature, cfg.cache_dir, cfg.workers,
                           progress and env.main, cfg.quadrant_weight)
    if env.world > 1 and env.main:
        dist.barrier()
    by_id = {it.track_id: it for it in all_items}
    probe = create_model(cfg.model, feature=feature, **cfg.model_args)
    embedded = bool(getattr(probe, "freeze", False)) and hasattr(probe, "embed")
    if embedded:  # frozen backbone: compute its embeddings once, train the heads on them
        by_id = {it.track_id: it for it in embed_items(probe, all_items, cfg.cache_dir, progress and env.main)}
    meta = {"dataset": cfg.dataset, "dataset_root": str(cfg.root), "split": split.name, "task": cfg.task,
            "train_config": cfg.to_dict()}
    folds = []
    for k, (train_ids, test_ids) in enumerate(split.folds):
        fold_dir = out / f"fold{k}"
        if env.main:
            fold_dir.mkdir(parents=True, exist_ok=True)
        if (fold_dir / "test.json").exists() and resume:  # finished before the interruption
            folds.append(json.loads((fold_dir / "test.json").read_text()))
            continue
        train_items = [by_id[i] for i in train_ids]
        fit_items, val_items = inner_validation(train_items, cfg.val_fraction, cfg.seed + k)
        trainer = FoldTrainer(cfg, fold_dir, device, env, progress, {**meta, "fold": k})
        if not resume and (fold_dir / "state.pt").exists() and env.main:
            (fold_dir / "state.pt").unlink()
        if env.world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        model = trainer.build()
        info = trainer.fit(model, fit_items, val_items, embedded)
        best, _ = load_checkpoint(fold_dir / "best") if (fold_dir / "best.json").exists() else (model, None)
        best.to(device)
        result = {"fold": k, **info, "train_seconds": time.perf_counter() - t0, "n_train": len(fit_items),
                  "n_val": len(val_items), "n_test": len(test_ids)}
        if test_ids:
            test_items = [by_id[i] for i in test_ids]
            static, dynamic = predict_items(best, test_items, device, embedded)
            result["test"] = score(test_items, static, dynamic)
            result["constant"] = constant_baseline(train_items, test_items)
        if env.main:
            write_json_atomic(fold_dir / "test.json", result)
        folds.append(result)
    # training time: the folds' epochs, whichever invocation ran them (a resumed run counts them all)
    seconds = sum(f.get("epoch_seconds", f.get("train_seconds", 0.0)) for f in folds)
    summary = summarize(cfg, folds, probe, seconds)
    if env.main:
        write_json_atomic(out / "summary.json", summary)
        write_text_atomic(out / "summary.md", format_summary(summary) + "\n")
    return summary


def _check_labels(cfg: TrainConfig, tracks: list) -> None:  # noqa: ANN001
    has_static = sum(t.static is not None or bool(t.quadrant) for t in tracks)
    has_dynamic = sum(t.dynamic is not None for t in tracks)
    if cfg.task in ("static", "both") and not has_static:
        raise ConfigError(f"task {cfg.task}: no track of {cfg.dataset} has static labels (for 4q pass "
                          "--dataset-option lexicon=PATH or rely on quadrant labels)")
    if cfg.task in ("dynamic", "both") and not has_dynamic:
        raise ConfigError(f"task {cfg.task}: no track of {cfg.dataset} has dynamic labels; use --task static")


def summarize(cfg: TrainConfig, folds: list[dict], model: torch.nn.Module, seconds: float) -> dict[str, Any]:
    from .models.profile import n_params

    tested = [f for f in folds if "test" in f]
    agg: dict[str, dict[str, float]] = {}
    for which in ("test", "constant"):
        rows = [_headline(f[which]) for f in tested if which in f]
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
            h = _headline(f["test"])
            lines.append(f"| {f['fold']} | " + " | ".join(f"{h.get(k, math.nan):.3f}" for k in keys) + " |")
    for label, which in (("mean", "mean"), ("constant", "constant")):
        if s[which]:
            lines.append(f"| {label} | " + " | ".join(
                f"{s[which].get(k, math.nan):.3f} +/- {s[which].get(k + '_sd', math.nan):.3f}" for k in keys) + " |")
    return "\n".join(lines)
