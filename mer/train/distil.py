"""Distillation: a student learns to reproduce a teacher's per-step outputs (``mer train --distil TEACHER``).

The teacher is any mer model with per-step embeddings (the bundled ``default``: musicnn with
its probes; a checkpoint; a run folder). Labels are not used: any audio the teacher hears is
training data. Per clip the targets are the teacher's per-step embeddings ``(n, D)``, computed
once and cached as a frozen backbone's are (:func:`mer.train.data.embed_items`); its tag
logits and head outputs are functions of them. The student (``--model student``,
:mod:`mer.models.student`, or any model with ``embed``/``head`` whose arguments take ``dim``,
``tag_names`` and the heads' arguments) gets the teacher's tag layer and heads copied and
frozen: it learns the embedding, and a distilled checkpoint predicts as the teacher does.

Training sees crops of ``crop_seconds`` whose offsets depend only on (seed, epoch, clip), as
:class:`mer.train.data.CropSet`'s. The loss counts only the steps whose teacher window the
crop holds (``MARGIN_SECONDS`` from a cut edge; a clip's own edges count): per step,

- ``embedding``: mean squared error of (student - teacher) / sd, the sd per dimension over the
  training steps (so every dimension counts alike);
- ``tags``: the KL divergence between the teacher's and the student's Bernoulli per tag,
  through the (shared) tag layer;
- ``quadrant``: the KL divergence of the heads' quadrant probabilities, and ``va``: the squared
  error of their static valence/arousal, from each crop's counted steps.

``--augment N`` adds N augmented copies of every training clip (:mod:`mer.train.augment`),
each labelled by the teacher once (cached). Early stopping watches the same loss on whole
validation clips. A fold's ``test.json`` holds the student's agreement with the teacher on
the test clips (embedding R2 and cosine, top-5 tag overlap, quadrant agreement, valence and
arousal error) and, where the clips have labels, both models' scores; those use the teacher's
heads, fit on the teacher's own training data (for 4Q: every clip), so for a held-out estimate
refit a probe on the student's embeddings (``python -m benchmarks.distil_4q``).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..datasets.items import Item, load_items
from ..errors import ConfigError, ModelError
from ..evaluation.scores import constant_baseline, headline, score
from ..features import FeatureConfig
from ..grid import GRID_SECONDS, n_steps
from ..infer.inference import Inference, stack
from ..io import write_json_atomic, write_text_atomic
from ..models import create_model
from ..models.checkpoint import load_checkpoint
from .augment import augment
from .config import TrainConfig
from .data import embed_items
from .distributed import seed_all
from .fold import FoldTrainer, inner_validation
from .reports import format_summary, summarize

WEIGHTS = {"embedding": 1.0, "tags": 1.0, "quadrant": 1.0, "va": 1.0}
#: seconds from a cut crop edge before a step counts (the teacher's 3 s window and its convolutions)
MARGIN_SECONDS = 3.0
#: the teacher's arguments a student takes to build the same heads
HEAD_ARGS = ("head_hidden", "head_dropout", "head_stats", "quadrant", "mood_words")


# ------------------------------------------------------------------ teacher and student
def load_teacher(spec: str, trust_remote_code: bool = False) -> tuple[Any, dict[str, Any]]:
    """The teacher (a name, checkpoint or run folder) in eval mode, and where it came from."""
    from ..bundle import Bundle

    bundle = Bundle.resolve(spec, trust_remote_code=trust_remote_code)
    model, meta = load_checkpoint(bundle)
    if not model.capabilities.step_embeddings:
        raise ConfigError(f"--distil {spec}: {meta.model} has no per-step embeddings to distil; use a model "
                          "such as default (musicnn)")
    return model.eval(), {"teacher": spec, "teacher_checkpoint": str(bundle.stem), "teacher_weights_sha1": bundle.digest,
                          "teacher_version": meta.model_version}


def make_student(cfg: TrainConfig, teacher: Any) -> Any:
    """The student of ``cfg.model`` for ``teacher``: its feature config, embedding size, tag
    names and heads' arguments (the user's ``model_args`` for the rest), the teacher's tag layer
    and heads copied in and frozen. Built from ``seed`` like every model mer trains."""
    with torch.no_grad():
        dim = teacher.embed(torch.zeros(1, teacher.feature.channels, teacher.feature.n_bins, 64)).shape[-1]
    targs = teacher.spec["args"]
    kw: dict[str, Any] = {"dim": dim, "tag_names": list(getattr(teacher, "tag_names", [])),
                          **{k: targs[k] for k in HEAD_ARGS if k in targs}, **cfg.model_args}
    seed_all(cfg.seed, 0)
    try:
        student = create_model(cfg.model, feature=teacher.feature, **kw)
    except ModelError as exc:
        raise ConfigError(f"--distil: {cfg.model} cannot be the student ({exc}); use --model student") from None
    if not student.capabilities.step_embeddings:
        raise ConfigError(f"--distil: {cfg.model} has no per-step embeddings to learn the teacher's; use --model student")
    student.heads.load_state_dict(teacher.heads.state_dict())
    student.heads.requires_grad_(False)
    mine, theirs = getattr(student, "tag_layer", None), getattr(teacher, "tag_layer", None)
    if mine is not None and theirs is not None:
        mine.load_state_dict(theirs.state_dict())
        mine.requires_grad_(False)
    return student


# ------------------------------------------------------------------ data
class DistilSet(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Crops of (features, the teacher's per-step embeddings) with a mask of the steps that count.

    ``pairs``: (features ``(C, F, T)``, embeddings ``(n, D)``). Offsets from (seed, epoch, index);
    a clip shorter than the crop is padded with silence and its missing steps masked."""

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]], crop_steps: int, feature: FeatureConfig,
                 seed: int) -> None:
        self.pairs, self.crop_steps, self.seed, self.epoch = pairs, crop_steps, seed, 0
        self.fps_step = feature.frames_per_second * GRID_SECONDS
        self.crop_frames = int(np.ceil(crop_steps * self.fps_step - 1e-9))
        self.margin = int(round(MARGIN_SECONDS / GRID_SECONDS))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, e = self.pairs[i]
        n, L = len(e), self.crop_steps
        rng = np.random.default_rng([self.seed, self.epoch, i])
        s0 = int(rng.integers(0, max(0, n - L) + 1))
        f0 = int(round(s0 * self.fps_step))
        crop = x[..., f0:f0 + self.crop_frames]
        if crop.shape[-1] < self.crop_frames:  # silence is 0 after log10(1 + 10000 x)
            crop = np.pad(crop, ((0, 0), (0, 0), (0, self.crop_frames - crop.shape[-1])))
        target = np.zeros((L, e.shape[1]), np.float32)
        part = e[s0:s0 + L]
        target[:len(part)] = part
        j = np.arange(L)
        mask = (j < len(part)) & ((s0 == 0) | (j >= self.margin)) & ((s0 + L >= n) | (j < L - self.margin))
        return {"x": torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32)),
                "target": torch.from_numpy(target), "mask": torch.from_numpy(mask)}


def augmented_pairs(items: list[Item], embeds: dict[str, np.ndarray], copies: int, teacher: Any, seed: int,
                    fold: int, cache_dir: str, progress: bool) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict]:
    """``copies`` augmented copies of each of ``items`` (partners drawn from ``items``), each with
    the teacher's embeddings of the copy (cached); and how often each transform was used."""
    pairs = [(it.x, embeds[it.track_id]) for it in items]
    if not copies:
        return pairs, {}
    made: list[Item] = []
    used: dict[str, int] = {}
    for c in range(copies):
        for k, it in enumerate(items):
            rng = np.random.default_rng([seed, fold, c, k])
            j = int(rng.integers(max(1, len(items) - 1)))
            partner = items[j + (j >= k) if len(items) > 1 else 0]  # another clip (itself when alone)
            x, done = augment(it.x, partner.x, rng, teacher.feature)
            for name in done:
                used[name] = used.get(name, 0) + 1
            made.append(Item(f"{it.track_id}#aug{c}", x, None, None, 0, it.artist))
    labelled = embed_items(teacher, made, cache_dir, progress)
    return pairs + [(it.x, e.x) for it, e in zip(made, labelled)], used


# ------------------------------------------------------------------ loss
def distil_loss(student: Any, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor,
                parts: dict[str, float] | None = None) -> torch.Tensor:
    """The weighted loss of the module docstring for a batch; ``parts`` gets each term's value."""
    seq = student.embed(x)  # (B, L, D)
    m = mask.float()
    count = m.sum().clamp(min=1.0)
    terms = {"embedding": ((((seq - target) / scale) ** 2).mean(dim=-1) * m).sum() / count}
    layer = getattr(student, "tag_layer", None)
    if layer is not None:
        ls, lt = layer(seq), layer(target)
        pt = torch.sigmoid(lt)
        kl = pt * (F.logsigmoid(lt) - F.logsigmoid(ls)) + (1 - pt) * (F.logsigmoid(-lt) - F.logsigmoid(-ls))
        terms["tags"] = (kl.mean(dim=-1) * m).sum() / count
    q, va = [], []
    for b in range(len(seq)):
        keep = mask[b]
        if not bool(keep.any()):
            continue
        hs, ht = student.head(seq[b:b + 1, keep]), student.head(target[b:b + 1, keep])
        va.append(F.mse_loss(hs["static"], ht["static"]))
        if "quadrant" in hs:
            q.append(F.kl_div(F.log_softmax(hs["quadrant"], -1), F.log_softmax(ht["quadrant"], -1), log_target=True,
                              reduction="batchmean"))
    if va:
        terms["va"] = torch.stack(va).mean()
    if q:
        terms["quadrant"] = torch.stack(q).mean()
    if parts is not None:
        for k, v in terms.items():
            parts[k] = parts.get(k, 0.0) + float(v.detach()) * len(seq)
    return sum(WEIGHTS[k] * v for k, v in terms.items())  # type: ignore[return-value]


def target_scale(pairs: list[tuple[np.ndarray, np.ndarray]]) -> torch.Tensor:
    """Per-dimension sd of the teacher's embeddings over the training steps (floored at a tenth of their median)."""
    e = np.concatenate([p[1] for p in pairs]).astype(np.float64)
    sd = e.std(axis=0)
    return torch.as_tensor(np.maximum(sd, 0.1 * np.median(sd) + 1e-8), dtype=torch.float32)


# ------------------------------------------------------------------ one fold
class DistilTrainer(FoldTrainer):
    """One fold of distillation (module docstring), resumable from ``fold_dir`` like a fold of
    :class:`~mer.train.fold.FoldTrainer` (same state file, read weights-only; same determinism)."""

    def fit_distil(self, student: Any, fit: list[tuple[np.ndarray, np.ndarray]],
                   val: list[tuple[np.ndarray, np.ndarray]], scale: torch.Tensor) -> dict[str, Any]:
        """Train ``student`` on crops of ``fit`` (features, the teacher's embeddings), early-stopped on ``val``."""
        data = DistilSet(fit, max(1, int(round(self.cfg.crop_seconds / GRID_SECONDS))), student.feature,
                         self.cfg.seed)
        scale = scale.to(self.device)

        def step(batch: dict[str, torch.Tensor], parts: dict[str, float]) -> torch.Tensor:
            return distil_loss(student, batch["x"], batch["target"], batch["mask"], scale, parts)

        def check() -> tuple[float, dict[str, float], dict[str, Any]]:
            val_loss, val_parts = self.validate_distil(student, val, scale)
            return val_loss, {f"val_{k}": v for k, v in val_parts.items()}, val_parts

        return self.epochs(student, data, step, check, "distillation")

    def validate_distil(self, student: Any, val: list[tuple[np.ndarray, np.ndarray]], scale: torch.Tensor
                        ) -> tuple[float, dict[str, float]]:
        """The loss on whole validation clips (every step counts), and its terms."""
        if not val:
            return math.nan, {}
        student.eval()
        total = 0.0
        parts: dict[str, float] = {}
        with torch.no_grad():
            for x, e in val:
                xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].to(self.device)
                n = min(len(e), n_steps(x.shape[-1], student.feature))
                et = torch.from_numpy(np.ascontiguousarray(e[:n], dtype=np.float32))[None].to(self.device)
                mask = torch.ones(1, n, dtype=torch.bool, device=self.device)
                total += float(distil_loss(student, xt, et, mask, scale, parts))
        return total / len(val), {k: v / len(val) for k, v in parts.items()}


# ------------------------------------------------------------------ agreement with the teacher
def agreement(student: Any, teacher: Any, items: list[Item], embeds: dict[str, np.ndarray], device: Any
              ) -> tuple[dict[str, float], list, list]:
    """How closely the student reproduces the teacher on ``items`` (module docstring), and both
    models' outputs (the student's through :class:`Inference`, as ``mer predict`` runs it)."""
    inf_s = Inference.from_module(student.eval(), device)
    seq_s, tag_s = zip(*(inf_s.embed(it.x) for it in items))
    seq_t = [embeds[it.track_id][:len(s)] for it, s in zip(items, seq_s)]
    out_s = inf_s.heads(list(seq_s))
    out_t = Inference.from_module(teacher, device).heads(seq_t)
    es, et = np.concatenate(seq_s).astype(np.float64), np.concatenate(seq_t).astype(np.float64)
    cos = (es * et).sum(1) / np.maximum(np.linalg.norm(es, axis=1) * np.linalg.norm(et, axis=1), 1e-12)
    res = {"embedding_r2": float(1 - ((es - et) ** 2).sum() / ((et - et.mean(0)) ** 2).sum()),
           "embedding_cosine": float(cos.mean())}
    layer = getattr(teacher, "tag_layer", None)
    if layer is not None and tag_s[0] is not None:
        with torch.no_grad():
            tag_t = [torch.sigmoid(layer(torch.from_numpy(s).float())).mean(0).numpy() for s in seq_t]
        top = [len(set(np.argsort(-a.mean(0))[:5]) & set(np.argsort(-b)[:5])) / 5 for a, b in zip(tag_s, tag_t)]
        res["tags_top5"] = float(np.mean(top))
    s_static, t_static = np.stack([o["static"] for o in out_s]), np.stack([o["static"] for o in out_t])
    for i, d in enumerate(("valence", "arousal")):
        res[f"{d}_mae"] = float(np.abs(s_static[:, i] - t_static[:, i]).mean())
        res[f"{d}_r"] = float(np.corrcoef(s_static[:, i], t_static[:, i])[0, 1]) if len(items) > 1 else math.nan
    if "quadrant_probs" in out_s[0]:
        ps, pt = np.stack([o["quadrant_probs"] for o in out_s]), np.stack([o["quadrant_probs"] for o in out_t])
        res["quadrant_agree"] = float((ps.argmax(1) == pt.argmax(1)).mean())
        res["quadrant_prob_mae"] = float(np.abs(ps - pt).mean())
    return res, out_s, out_t


# ------------------------------------------------------------------ the run
def distil_run(cfg: TrainConfig, out: Path, resume: bool, progress: bool, device: Any, env: Any, ds: Any
               ) -> dict[str, Any]:
    """``mer train --distil``: the run of :func:`mer.train.run.run` with a student learning the
    teacher on every fold's training clips (same folder layout, resumable the same way)."""
    from .folds import finished_fold, make_split, saved_split

    if env.world > 1:
        raise ConfigError("--distil runs in one process; start it without torchrun")
    teacher, tmeta = load_teacher(cfg.distil, cfg.trust_remote_code)
    teacher.to(device)
    feature = teacher.feature
    if cfg.feature and FeatureConfig.from_dict(cfg.feature) != feature:
        raise ConfigError("--distil: the student hears what the teacher hears (its feature config); drop --feature")
    probe = make_student(cfg, teacher)  # bad model arguments fail before any audio is decoded
    fingerprint = ds.fingerprint()
    split = (saved_split(out, ds, fingerprint) if resume else None) or make_split(cfg, ds)
    split.info["dataset_fingerprint"] = fingerprint
    tracks = {t.track_id: t for t in ds.tracks(with_audio=True)}
    needed = list(dict.fromkeys(i for tr, te in split.folds for i in tr + te))
    missing = sorted(set(needed) - set(tracks))
    if missing:
        raise ConfigError(f"split {split.name}: {len(missing)} track(s) have no audio here, e.g. {missing[0]}")
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.yaml")
    split.to_json(out / "split.json")
    items = load_items([tracks[i] for i in needed], feature, cfg.cache_dir, cfg.workers, progress, cfg.quadrant_weight)
    embeds = {it.track_id: e.x for it, e in zip(items, embed_items(teacher, items, cfg.cache_dir, progress))}
    by_id = {it.track_id: it for it in items}
    distil = {**tmeta, "weights": WEIGHTS, "margin_seconds": MARGIN_SECONDS, "augment": cfg.augment}
    meta = {"dataset": cfg.dataset, "dataset_root": str(Path(cfg.root).resolve()), "split": split.name,
            "task": "distil", "train_config": cfg.to_dict()}
    folds = []
    for k, (train_ids, test_ids) in enumerate(split.folds):
        fold_dir = out / f"fold{k}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        done = finished_fold(fold_dir) if resume else None  # tested before the interruption
        if done is not None:
            folds.append(done)
            continue
        train_items = [by_id[i] for i in train_ids]
        fit_items, val_items = inner_validation(train_items, cfg.val_fraction, cfg.seed + k)
        fit, used = augmented_pairs(fit_items, embeds, cfg.augment, teacher, cfg.seed, k, cfg.cache_dir, progress)
        training = {"dataset": ds.name, "root": meta["dataset_root"], "id_space": ds.space,
                    "fingerprint": fingerprint, "ids": sorted(train_ids)}  # every clip it heard (no labels used)
        trainer = DistilTrainer(cfg, fold_dir, device, env, progress,
                                {**meta, "fold": k, "training": training, "distil": {**distil, "augment_used": used}})
        if not resume and (fold_dir / "state.pt").exists():
            (fold_dir / "state.pt").unlink()
        t0 = time.perf_counter()
        student = make_student(cfg, teacher)
        info = trainer.fit_distil(student, fit, [(it.x, embeds[it.track_id]) for it in val_items], target_scale(fit))
        best = load_checkpoint(fold_dir / "best")[0] if (fold_dir / "best.json").exists() else student
        result = {"fold": k, **info, "train_seconds": time.perf_counter() - t0, "n_train": len(fit),
                  "n_val": len(val_items), "n_test": len(test_ids)}
        if test_ids:
            test_items = [by_id[i] for i in test_ids]
            result["agreement"], out_s, out_t = agreement(best.to(device), teacher, test_items, embeds, device)
            if any(it.static is not None or it.quadrant for it in test_items):
                result["test"] = score(test_items, *stack(out_s))
                result["teacher"] = score(test_items, *stack(out_t))
                result["constant"] = constant_baseline(train_items, test_items)
        write_json_atomic(fold_dir / "test.json", result)
        folds.append(result)
    seconds = sum(f.get("epoch_seconds", f.get("train_seconds", 0.0)) for f in folds)
    summary = summarize(cfg, folds, probe, seconds)
    summary["task"] = "distil"
    summary["distil"] = distil
    agree = [f["agreement"] for f in folds if "agreement" in f]
    summary["agreement"] = {k: float(np.mean([a[k] for a in agree])) for k in (agree[0] if agree else {})}
    taught = [headline(f["teacher"]) for f in folds if "teacher" in f]
    summary["teacher_mean"] = {k: float(np.nanmean([t[k] for t in taught])) for k in (taught[0] if taught else {})}
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "summary.md", format_distil(summary) + "\n")
    return summary


def format_distil(summary: dict[str, Any]) -> str:
    """summary.md of a distillation run: agreement with the teacher per fold, then the label scores
    (the student's with the teacher's heads; see the module docstring for why not held-out)."""
    lines = [f"student {summary['model']} {json.dumps(summary['model_args'])} distilled from "
             f"{summary['distil']['teacher']} ({summary['params'] / 1e6:.2f} M parameters, "
             f"{summary['seconds'] / 60:.1f} min)", ""]
    keys = list(summary.get("agreement", {}))
    if keys:
        lines += ["Agreement with the teacher on each fold's test clips:", "",
                  "| fold | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        lines += [f"| {f['fold']} | " + " | ".join(f"{f['agreement'][k]:.3f}" for k in keys) + " |"
                  for f in summary["per_fold"] if "agreement" in f]
        lines.append("| mean | " + " | ".join(f"{summary['agreement'][k]:.3f}" for k in keys) + " |")
    if summary["mean"]:
        lines += ["", "Label scores with the teacher's heads (fit on the teacher's data, which may hold these "
                  "clips: not a held-out estimate):", "", format_summary(summary), "",
                  "| teacher (mean) | " + " | ".join(f"{k} {v:.3f}" for k, v in summary["teacher_mean"].items()) + " |"]
    return "\n".join(lines)
