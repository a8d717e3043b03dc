"""The whole run behind ``mer train`` / ``mer benchmark``: split, features, folds, summary.

Run folder layout (``OUT``)::

    config.yaml                 the resolved TrainConfig
    split.json                  the folds (track ids), as mer.datasets.splits writes them
    fold0/ best.safetensors + best.json   best epoch on the validation set (a mer checkpoint;
                                its JSON's ``training`` block lists the clips it trained on)
           state.pt             resumable state after the last finished epoch
           log.csv, curves.png  per-epoch losses and validation metrics
           test.json            scores of best on the fold's test clips, and of the constant predictor
    summary.json, summary.md    per-fold and mean +/- sd test scores

The model is built (and its arguments checked) before any audio is decoded. Test clips are
predicted through :class:`mer.infer.Inference`, as ``mer predict`` would.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch.distributed as dist

from ..datasets import load_dataset, refuse_blocking
from ..datasets.items import load_items
from ..errors import ConfigError, DatasetError
from ..evaluation.scores import constant_baseline, score
from ..features import FeatureConfig
from ..infer.inference import Inference, stack
from ..io import clean_stale_temps, run_lock, write_json_atomic, write_text_atomic
from ..models import create_model
from ..models.checkpoint import load_checkpoint
from .config import TrainConfig
from .data import embed_items
from .distributed import resolve_device, setup_distributed
from .fold import FoldTrainer, inner_validation
from .folds import finished_fold, make_split, saved_split
from .reports import format_summary, summarize


def run(cfg: TrainConfig, out: str | os.PathLike, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train (and test) every fold of ``cfg``; return the summary (also written to ``out``).

    The run folder is locked for the whole run (a second ``mer train --out`` or ``--resume``
    on it fails at once); temporary files a killed run left there are removed first. What the run
    needs (the config, an ``hf:`` backbone, the dataset's layout and audio) is checked before
    the run folder is touched and before any audio is decoded."""
    cfg.check()
    ds = check_dataset(cfg.dataset, cfg.root, cfg.dataset_options)
    out = Path(out)
    device = resolve_device(cfg.device)
    env = setup_distributed(device)
    if not env.main:  # rank 0 holds the lock for every process of a torchrun job
        return _run(cfg, out, resume, progress, device, env, ds)
    with run_lock(out, "run"):
        clean_stale_temps(out, recursive=True)
        return _run(cfg, out, resume, progress, device, env, ds)


def check_dataset(name: str, root: str | os.PathLike, options: dict[str, Any] | None = None) -> Any:
    """Dataset ``name`` at ``root``, checked as far as a run needs it before any audio is decoded:
    its layout (the loader's own check: a missing annotation file is a DatasetError saying what
    to download and what the folder must hold), no blocking label problems, and at least one
    labelled clip whose audio file is there."""
    ds = load_dataset(name, root, **(options or {}))
    refuse_blocking(ds)  # parses the annotations: the loader's layout check
    if next(iter(ds.tracks(with_audio=True)), None) is None:
        raise DatasetError(f"{root}: none of the {len(ds)} labelled {name} clips has its audio file here; {name} "
                           f"expects {ds.layout} (download: {ds.download}); see `mer datasets validate {name} "
                           f"--root {root}`")
    return ds


def _run(cfg: TrainConfig, out: Path, resume: bool, progress: bool, device: Any, env: Any, ds: Any) -> dict[str, Any]:
    if cfg.tensorboard:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError("tensorboard: true needs the tensorboard package (pip install tensorboard)") from None
    if cfg.distil:  # a student learns a teacher's outputs: no labels (mer.train.distil)
        from .distil import distil_run

        return distil_run(cfg, out, resume, progress, device, env, ds)
    feature = FeatureConfig.from_dict(cfg.feature) if cfg.feature else FeatureConfig()
    probe = create_model(cfg.model, feature=feature, **cfg.model_kwargs())  # bad model args fail before any decoding
    feature = probe.feature  # a backbone with its own front-end (hf:) chose it; else the same config
    fingerprint = ds.fingerprint()
    split = (saved_split(out, ds, fingerprint) if resume else None) or make_split(cfg, ds)
    split.info["dataset_fingerprint"] = fingerprint
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
    if env.world > 1 and not env.main:
        dist.barrier()  # rank 0 fills the feature cache first
    all_items = load_items([tracks[i] for i in dict.fromkeys(needed)], feature, cfg.cache_dir, cfg.workers,
                           progress and env.main, cfg.quadrant_weight)
    if env.world > 1 and env.main:
        dist.barrier()
    by_id = {it.track_id: it for it in all_items}
    embedded = probe.capabilities.frozen_backbone and probe.capabilities.step_embeddings
    if embedded:  # frozen backbone: compute its embeddings once, train the heads on them
        by_id = {it.track_id: it for it in embed_items(probe, all_items, cfg.cache_dir, progress and env.main)}
    meta = {"dataset": cfg.dataset, "dataset_root": str(Path(cfg.root).resolve()), "split": split.name,
            "task": cfg.task, "train_config": cfg.to_dict()}
    folds = []
    for k, (train_ids, test_ids) in enumerate(split.folds):
        fold_dir = out / f"fold{k}"
        if env.main:
            fold_dir.mkdir(parents=True, exist_ok=True)
        done = finished_fold(fold_dir) if resume else None  # tested before the interruption
        if done is not None:
            folds.append(done)
            continue
        train_items = [by_id[i] for i in train_ids]
        published = set(split.info.get("validate") or ()) & set(train_ids)
        if published and len(split.folds) == 1:  # the split names its early-stopping set
            fit_items = [it for it in train_items if it.track_id not in published]
            val_items = [it for it in train_items if it.track_id in published]
        else:
            fit_items, val_items = inner_validation(train_items, cfg.val_fraction, cfg.seed + k)
        training = {"dataset": ds.name, "root": meta["dataset_root"], "id_space": ds.space,
                    "fingerprint": fingerprint, "ids": sorted(train_ids)}  # fit + validation clips: all it saw
        trainer = FoldTrainer(cfg, fold_dir, device, env, progress, {**meta, "fold": k, "training": training})
        if not resume and (fold_dir / "state.pt").exists() and env.main:
            (fold_dir / "state.pt").unlink()
        if env.world > 1:
            dist.barrier()
        t0 = time.perf_counter()
        model = trainer.build()
        info = trainer.fit(model, fit_items, val_items, embedded)
        best, _ = (load_checkpoint(fold_dir / "best", trust_remote_code=cfg.trust_remote_code)
                   if (fold_dir / "best.json").exists() else (model, None))
        best.to(device)
        result = {"fold": k, **info, "train_seconds": time.perf_counter() - t0, "n_train": len(fit_items),
                  "n_val": len(val_items), "n_test": len(test_ids)}
        if test_ids:
            test_items = [by_id[i] for i in test_ids]
            inference = Inference.from_module(best.eval(), device)
            xs = [it.x for it in test_items]
            static, dynamic, quads = stack(inference.heads(xs) if embedded else inference.many(xs))
            result["test"] = score(test_items, static, dynamic, quads)
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


