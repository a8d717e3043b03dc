"""Distilled students of the default (#41): nested 4Q macro-F1 beside the teacher's, and their cost.

Three steps, from the repository root (``--data``: the data root, default ``../shared/data``)::

    python -m benchmarks.distil_4q split --seed 0 --out runs/distil/split-seed0.json
    mer train --distil default --model student --model-arg width=32 --dataset 4q \\
        --root ../shared/data/4q-dev --split runs/distil/split-seed0.json --out runs/distil/w32 ...
    python -m benchmarks.distil_4q score runs/distil/w32 [more runs] [--speed]

``split`` writes the outer folds of the default's nested protocol for one split seed (5 folds,
artist-grouped, quadrant-stratified: :func:`mer.train.nested.group_kfold` on the clips
``benchmarks/nested_4q.yaml`` sees), so ``mer train --split`` distils one student per outer fold on
that fold's training clips only: a student is never scored on clips it was distilled on.

``score``: for every outer fold, that fold's student embeds the clips and the default's probe is
refit on its embeddings exactly as the nested benchmark fits it (standardise + logistic regression on
the mean and sd over steps, C chosen among the same grid by the same inner 4-fold artist-grouped CV
on the fold's training clips); the out-of-fold predictions are pooled into one macro-F1 per split
seed. The teacher's row is the same on musicnn's embeddings, on the same folds. ECE: the expected
calibration error (top label, 10 bins) of the pooled out-of-fold probabilities, each fold's
scaled by the temperature its inner folds chose (the nested benchmark's ``ece_calibrated``).
Clip mean / sd R2: how well each fold's student reproduces the teacher's per-clip mean and sd of
steps on its test clips (the probe's two halves).
``RUN1+RUN2`` pools runs that hold different outer folds of one student. Agreement with the
teacher (tag top-5 overlap, quadrant agreement, embedding R2) comes from the runs' test folds.
``--speed``: network milliseconds per 30 s clip on one thread in ONNX Runtime (median over
``--clips`` dev clips; each run's fold-0 student exported with ``mer export --runtime`` when its
graphs are missing), beside ``default.embed.onnx``. Batch throughput against the decode floor:
``python -m benchmarks.predict --models default runs/distil/w32/fold0/best``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._data import REPO, data_parser, data_root
from benchmarks.nested4q import C_GRID, LEVEL, load


def write_split(data, seed: int, out: Path, only: list[int] | None = None) -> None:  # noqa: ANN001  (ProbeData)
    from mer.datasets.splits import Split
    from mer.train.nested import group_kfold

    ids = np.array([t.track_id for t in data.tracks])
    folds = [(ids[tr].tolist(), ids[te].tolist()) for tr, te in group_kfold(data.y, data.groups, 5, seed)]
    folds = [folds[k] for k in (only or range(len(folds)))]
    out.parent.mkdir(parents=True, exist_ok=True)
    name = f"4q-nested-outer-seed{seed}" + (f"-folds{''.join(map(str, only))}" if only else "")
    Split(name, folds, seed, {"dataset": "4q", "outer_folds": only or list(range(5)),
                              "protocol": "outer folds of benchmarks/nested_4q.yaml (mer.train.nested.group_kfold)"}
          ).to_json(out)
    print(f"{out}: {len(folds)} folds of {len(ids)} clips (seed {seed})")


def embed_all(checkpoint: Path, items: list) -> list[np.ndarray]:
    """Per-step embeddings of every clip by the student at ``checkpoint`` (PyTorch, as training scores it)."""
    from mer.infer.inference import Inference
    from mer.models.checkpoint import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    inference = Inference.from_module(model.eval())
    return [inference.embed(it.x)[0] for it in items]


def probe_fold(X: np.ndarray, y: np.ndarray, groups: np.ndarray, tr: np.ndarray, te: np.ndarray, seed: int,
               fold: int) -> tuple[np.ndarray, np.ndarray]:
    """The default's probe refit on ``tr`` (C and a temperature chosen inside): its labels and
    temperature-scaled probabilities (classes Q1..Q4) on ``te``."""
    from mer.train.nested import _predict, apply_temperature, fit_temperature, grid, inner_select
    from mer.train.probe import make_model

    classes = np.unique(y)
    params, _, inner = inner_select(X[tr], y[tr], groups[tr], lambda **p: make_model("lr", **p), grid(C=C_GRID), 4,
                                    1000 * seed + fold + 1, classes, y[tr])
    pred, proba = _predict(make_model("lr", **params).fit(X[tr], y[tr]), X[te], classes)
    return pred, apply_temperature(proba, fit_temperature(inner, y[tr], classes))


def n_params(checkpoint: Path) -> int:
    """Parameters of the model at ``checkpoint`` (the copied heads and tag layer included)."""
    from mer.models.checkpoint import load_checkpoint

    return sum(p.numel() for p in load_checkpoint(checkpoint)[0].parameters())


def clip_r2(student: np.ndarray, teacher: np.ndarray) -> dict[str, float]:
    """R2 of the student's per-clip mean and sd of steps (``(n, 2D)``, as the probe reads them)
    against the teacher's, pooled over dimensions."""
    d = teacher.shape[1] // 2
    out = {}
    for name, part in (("clip_mean_r2", slice(0, d)), ("clip_sd_r2", slice(d, 2 * d))):
        s, t = student[:, part], teacher[:, part]
        out[name] = float(1 - ((s - t) ** 2).sum() / ((t - t.mean(0)) ** 2).sum())
    return out


def score(args: argparse.Namespace) -> None:
    from mer.datasets.splits import Split
    from mer.train.nested import ece, macro_f1
    from mer.train.probe import pool

    data = load(data=data_root(args))
    items = data.items(LEVEL)
    index = {t.track_id: i for i, t in enumerate(data.tracks)}
    teacher = data.features("meanstd", LEVEL)
    classic = data.features("classic", LEVEL)  # the nested table's classical log-mel statistics baseline
    rows = []
    ref_by_split: dict[str, float] = {}  # the teacher's macro-F1 on the same folds
    fixed: dict[tuple, tuple] = {}  # (seed, outer fold) -> the teacher's and the classical probe's outputs

    def references(tr: np.ndarray, te: np.ndarray, seed: int, fold: int) -> tuple:
        """The teacher's and the classical baseline's probe on one outer fold, fit once for every student."""
        if (seed, fold) not in fixed:
            fixed[seed, fold] = (probe_fold(teacher, data.y, data.groups, tr, te, seed, fold),
                                 probe_fold(classic, data.y, data.groups, tr, te, seed, fold)[0])
        return fixed[seed, fold]
    for group in args.runs:
        runs = [Path(r) for r in group.split("+")]  # runs holding different outer folds of one student
        pred_s, pred_t, pred_c = (np.empty(len(data.y), dtype=object) for _ in range(3))
        proba_s, proba_t = np.zeros((len(data.y), 4)), np.zeros((len(data.y), 4))
        pooled_s = np.zeros_like(teacher)  # each clip's mean and sd of steps, by the student that never heard it
        fold_f1, t0 = [], time.perf_counter()
        covered = np.zeros(len(data.y), dtype=bool)
        agree, minutes, outers, names, seeds = [], 0.0, [], set(), set()
        for run in runs:
            split = Split.from_json(run / "split.json")
            names.add(split.name.split("-folds")[0])
            seeds.add(split.seed or 0)
            outer = split.info.get("outer_folds") or list(range(len(split.folds)))
            for k, (train_ids, test_ids) in enumerate(split.folds):
                done = run / f"fold{k}" / "test.json"
                if not done.exists():  # a fold still training (or never run): scored when it is done
                    print(f"{run.name}: outer fold {outer[k]} has no test.json yet; left out", file=sys.stderr)
                    continue
                result = json.loads(done.read_text())
                agree += [result["agreement"]] if "agreement" in result else []
                minutes += result.get("epoch_seconds", 0.0) / 60
                tr = np.array([index[i] for i in train_ids])
                te = np.array([index[i] for i in test_ids])
                if covered[te].any():
                    raise SystemExit(f"{group}: outer fold {outer[k]} is in more than one run")
                covered[te] = True
                outers.append(outer[k])
                X = pool(embed_all(run / f"fold{k}" / "best", items), "meanstd")
                pooled_s[te] = X[te]
                pred_s[te], proba_s[te] = probe_fold(X, data.y, data.groups, tr, te, split.seed or 0, outer[k])
                (pred_t[te], proba_t[te]), pred_c[te] = references(tr, te, split.seed or 0, outer[k])
                fold_f1.append(macro_f1(data.y[te], pred_s[te].astype(str)))
                print(f"{run.name} outer fold {outer[k]}: student {fold_f1[-1]:.3f}, teacher "
                      f"{macro_f1(data.y[te], pred_t[te].astype(str)):.3f}", file=sys.stderr, flush=True)
        if len(names) > 1 or len(seeds) > 1:
            raise SystemExit(f"{group}: the runs hold folds of different splits ({', '.join(sorted(names))})")
        name = names.pop()
        ref_by_split[name] = macro_f1(data.y[covered], pred_t[covered].astype(str))
        classes = np.unique(data.y)
        ece_t = ece(proba_t[covered], data.y[covered], classes)
        print(f"{name} (outer folds {sorted(outers)}): teacher {ref_by_split[name]:.3f}, classical log-mel "
              f"statistics + LR {macro_f1(data.y[covered], pred_c[covered].astype(str)):.3f} "
              f"({int(covered.sum())} clips)")
        cfg = json.loads((runs[0] / "fold0" / "best.json").read_text())
        rows.append({"run": group, "model_args": {k: v for k, v in cfg["model_args"].items()
                                                  if k not in ("tag_names", "mood_words", "quadrant", "dim")},
                     "params": n_params(runs[0] / "fold0" / "best"),
                     "f1": macro_f1(data.y[covered], pred_s[covered].astype(str)),
                     "ece": ece(proba_s[covered], data.y[covered], classes), "teacher_ece": ece_t,
                     **clip_r2(pooled_s[covered], teacher[covered]),
                     "fold_sd": float(np.std(fold_f1, ddof=1)) if len(fold_f1) > 1 else float("nan"),
                     "clips": int(covered.sum()), "outer_folds": sorted(outers), "teacher_f1": ref_by_split[name],
                     "split": name, "agreement": {k: float(np.mean([a[k] for a in agree])) for k in agree[0]},
                     "train_min": minutes, "score_s": time.perf_counter() - t0})
    if args.speed:
        speeds = network_ms([Path(r["run"].split("+")[0]) / "fold0" / "best" for r in rows], items[:args.clips])
        for r, ms in zip(rows, speeds[1:]):
            r["ms"] = ms
        print(f"\nteacher default.embed.onnx: {speeds[0]:.1f} ms per 30 s clip (one thread)")
    print("\n| student | parameters | network ms / 30 s clip | nested macro-F1 (one split seed) | teacher on the "
          "same folds | gap | ECE (teacher's) | tag top-5 overlap | quadrant agreement | embedding R2 | clip mean / sd "
          "R2 | distil time (min) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a = r["agreement"]
        print(f"| {json.dumps(r['model_args'])} | {r['params'] / 1e3:.0f}k | {r.get('ms', float('nan')):.1f} | "
              f"{r['f1']:.3f} (sd over folds {r['fold_sd']:.3f}) | {r['teacher_f1']:.3f} | "
              f"{r['f1'] - r['teacher_f1']:+.3f} | {r['ece']:.3f} ({r['teacher_ece']:.3f}) | "
              f"{a.get('tags_top5', float('nan')):.3f} | "
              f"{a.get('quadrant_agree', float('nan')):.3f} | {a.get('embedding_r2', float('nan')):.3f} | "
              f"{r['clip_mean_r2']:.3f} / {r['clip_sd_r2']:.3f} | {r['train_min']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def network_ms(checkpoints: list[Path], items: list) -> list[float]:
    """Median ms per clip of each embed graph on one thread (the default's first), on ``items``' features."""
    import onnxruntime as ort

    from mer.bundle import graph_paths

    graphs = [REPO / "mer" / "pretrained" / "default.embed.onnx"]
    for stem in checkpoints:
        embed, _ = graph_paths(stem)
        if not embed.exists():
            subprocess.run([sys.executable, "-m", "mer", "export", "--runtime", "--model", str(stem)], check=True)
        graphs.append(embed)
    out = []
    for g in graphs:
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
        sess = ort.InferenceSession(str(g), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        sess.run(None, {name: items[0].x[None]})
        times = []
        for it in items:
            t0 = time.perf_counter()
            sess.run(None, {name: it.x[None]})
            times.append(time.perf_counter() - t0)
        out.append(1000 * float(np.median(times)))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("split", parents=[data_parser()], help="write the outer folds of one split seed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--folds", type=int, nargs="+", help="only these outer folds (0-4; default all)")
    p = sub.add_parser("score", parents=[data_parser()], help="nested macro-F1 of distilled runs beside the teacher")
    p.add_argument("runs", nargs="+", help="mer train --distil run folders (made with a split of this script); "
                   "RUN1+RUN2 pools runs that hold different outer folds of one student into one row")
    p.add_argument("--speed", action="store_true", help="also time the embed graphs (one thread, ONNX Runtime)")
    p.add_argument("--clips", type=int, default=40, help="clips timed per graph")
    p.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    if args.cmd == "split":
        write_split(load(data=data_root(args)), args.seed, args.out, args.folds)
    else:
        score(args)


if __name__ == "__main__":
    main()
