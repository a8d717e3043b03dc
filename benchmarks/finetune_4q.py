"""Does fine-tuning musicnn's mid-end and dense layer beat the default's frozen probe? Outer CV.

The default is a logistic regression on the frozen musicnn (MSD) embedding (mean and sd over
the 0.5 s steps of the 200-d penultimate layer) of loudness-normalised audio. Here, per outer
training part:

1. that logistic regression is fit (C = 0.01, the value nested CV picks most often) and
   becomes the initial quadrant layer (standardisation folded in);
2. musicnn's 2nd and 3rd mid-end convolutions, the back-end's dense layer and the batch norms'
   affine parameters are trained with it, end to end, on cross-entropy, from the pretrained
   weights (front-end and first mid-end convolution stay frozen: their outputs are cached once
   per clip, which makes this run on 2 CPU cores). Batch norms keep their running statistics.
   Each clip is seen as a random 15 s crop per epoch (augmentation, and half the cost).

The settings (learning rates, epochs, crop) are fixed before any outer fold is scored: no
choice is made on the outer test folds, so with no inner selection the outer estimate is honest
(the nested protocol's inner loop has nothing to choose). The reference, the shipped probe with
C chosen in inner folds, runs on the same folds. Prints one markdown table.

Usage (from the repository root; needs the train extra and the data root, ``--data``)::

    python -m benchmarks.finetune_4q --data ../shared/data [--seeds 0 1 2 3 4] [--epochs 10]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np

from benchmarks._data import data_parser, data_root
from benchmarks.nested4q import C_GRID, LEVEL, load


def cache_trunk(items: list, model) -> list[tuple]:
    """Per clip: (first mid-end block's output ``(64, T)``, the front-end pooled per window ``(n, 1122)``)."""
    import torch
    import torch.nn.functional as F

    from mer.grid import n_steps
    from mer.models.musicnn import pool_windows

    trunk = model.backbone["trunk"].eval()
    fps = model.feature.frames_per_second
    half = int(round(model.context * fps / 2))
    out = []
    with torch.no_grad():
        for it in items:
            x = torch.from_numpy(it.x[None]).float()
            xx = trunk.input_bn(x.transpose(2, 3))
            pads = [(3, 3)] * 2 + [((k - 1) // 2, k // 2) for k in (128, 64, 32)]
            front, mid = trunk.fast(xx, pads)
            h1 = trunk.mid_bn[0](F.relu(mid))
            n = n_steps(x.shape[-1], model.feature)
            centres = torch.round((0.5 * torch.arange(n) + 0.25) * fps).long().clamp(max=x.shape[-1] - 1)
            out.append((h1[0].numpy(), pool_windows(front, centres, half)[0].numpy(), centres.numpy()))
    return out, half


class Tail:
    """Trainable part: mid-end blocks 2-3, back-end, the quadrant layer on mean+sd of the penultimate."""

    def __init__(self, model, W: np.ndarray, b: np.ndarray, half: int) -> None:
        import torch
        from torch import nn

        trunk, backend = model.backbone["trunk"], model.backbone["backend"]
        self.mid = copy.deepcopy(trunk.mid[1:])
        self.bn = copy.deepcopy(trunk.mid_bn[1:])
        self.backend = copy.deepcopy(backend)
        self.head = nn.Linear(W.shape[1], 4)
        with torch.no_grad():
            self.head.weight.copy_(torch.as_tensor(W, dtype=torch.float32))
            self.head.bias.copy_(torch.as_tensor(b, dtype=torch.float32))
        self.modules = nn.ModuleList([self.mid, self.bn, self.backend, self.head]).eval()  # BN: running statistics
        for p in self.backend.tags.parameters():
            p.requires_grad_(False)
        self.half = half

    def __call__(self, h1, front_pooled, centres):
        import torch
        import torch.nn.functional as F

        from mer.models.musicnn import pool_windows

        h, outs = h1, [h1]
        for conv, bn in zip(self.mid, self.bn):
            h = bn(F.relu(conv(h))) + h
            outs.append(h)
        pooled = torch.cat([front_pooled, pool_windows(torch.cat(outs, dim=1), centres, self.half)], dim=-1)
        pen, _ = self.backend(pooled)  # (B, n, 200)
        mean = pen.mean(dim=1)
        sd = ((pen - mean[:, None]).square().mean(dim=1) + 1e-8).sqrt()
        return self.head(torch.cat([mean, sd], dim=-1))


def fold_lr(X: np.ndarray, y: np.ndarray, C: float):
    from mer.train.probe import make_model

    clf = make_model("lr", C=C).fit(X, y)
    s, lr = clf.steps[0][1], clf.steps[-1][1]
    W = lr.coef_ / s.scale_
    b = lr.intercept_ - (lr.coef_ * s.mean_ / s.scale_).sum(axis=1)
    return clf, W, b


def finetune(model, cache, half, idx, y, W, b, epochs: int, crop_steps: int, seed: int, lr: float) -> Tail:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tail = Tail(model, W, b, half)
    body = [p for m in (tail.mid, tail.bn, tail.backend) for p in m.parameters() if p.requires_grad]
    start = [p.detach().clone() for p in body]
    opt = torch.optim.Adam([{"params": body, "lr": lr}, {"params": tail.head.parameters(), "lr": 10 * lr}])
    labels = torch.as_tensor(np.searchsorted(np.array(["Q1", "Q2", "Q3", "Q4"]), y))
    for _ in range(epochs):
        order = rng.permutation(len(idx))
        for k in range(0, len(order), 16):
            batch = order[k:k + 16]
            h1s, fps_, cs = [], [], []
            for j in batch:
                h1, fp, centres = cache[idx[j]]
                s0 = int(rng.integers(0, max(1, len(centres) - crop_steps + 1)))
                c = centres[s0:s0 + crop_steps]
                f0, f1 = max(0, c[0] - half), min(h1.shape[1], c[-1] + half + 1)
                f0, f1 = int(f0), int(f1)
                h1s.append(h1[:, f0:f1])
                fps_.append(fp[s0:s0 + crop_steps])
                cs.append(c - f0)
            width = min(a.shape[1] for a in h1s)
            steps = min(len(c) for c in cs)
            h1b = torch.from_numpy(np.stack([a[:, :width] for a in h1s]))
            fpb = torch.from_numpy(np.stack([a[:steps] for a in fps_]))
            logits = torch.cat([tail(h1b[i:i + 1], fpb[i:i + 1], torch.from_numpy(np.clip(cs[i][:steps], 0, width - 1)).long())
                                for i in range(len(batch))])
            loss = F.cross_entropy(logits, labels[batch])
            loss = loss + 1e-2 * sum(((p - p0) ** 2).sum() for p, p0 in zip(body, start))  # L2-SP
            opt.zero_grad()
            loss.backward()
            opt.step()
    return tail


def predict(tail: Tail, cache, idx) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in idx:
            h1, fp, centres = cache[i]
            logits = tail(torch.from_numpy(h1[None]), torch.from_numpy(fp[None]), torch.from_numpy(centres).long())
            out.append(torch.softmax(logits, dim=-1)[0].numpy())
    return np.array(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--crop", type=float, default=15.0, help="seconds per training crop")
    ap.add_argument("--lr", type=float, default=1e-4, help="learning rate of the musicnn layers (head: 10x)")
    args = ap.parse_args(argv)

    from mer.features import FeatureConfig
    from mer.models import create_model
    from mer.train.nested import grid, group_kfold, inner_select, macro_f1
    from mer.train.probe import make_model

    data = load(data=data_root(args))
    X = data.features("meanstd", LEVEL)
    model = create_model("musicnn", feature=FeatureConfig(level=LEVEL), source="msd").eval()
    t0 = time.perf_counter()
    cache, half = cache_trunk(data.items(LEVEL), model)
    print(f"(trunk cache: {time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    classes = np.array(["Q1", "Q2", "Q3", "Q4"])
    rows = {"reference: shipped probe (C chosen inside)": [], "LR C=0.01 (the fine-tune's start)": [],
            "fine-tuned": []}
    for seed in args.seeds:
        preds = {k: np.empty(len(data.y), dtype=object) for k in rows}
        for f, (tr, te) in enumerate(group_kfold(data.y, data.groups, 5, seed)):
            t1 = time.perf_counter()
            params, _, _ = inner_select(X[tr], data.y[tr], data.groups[tr], lambda **p: make_model("lr", **p),
                                        grid(C=C_GRID), 4, 1000 * seed + f + 1, classes,
                                        data.y[tr])
            preds["reference: shipped probe (C chosen inside)"][te] = make_model("lr", **params).fit(
                X[tr], data.y[tr]).predict(X[te])
            clf, W, b = fold_lr(X[tr], data.y[tr], 0.01)
            preds["LR C=0.01 (the fine-tune's start)"][te] = clf.predict(X[te])
            tail = finetune(model, cache, half, tr, data.y[tr], W, b, args.epochs, int(args.crop * 2), seed, args.lr)
            preds["fine-tuned"][te] = classes[predict(tail, cache, te).argmax(axis=1)]
            print(f"seed {seed} fold {f}: " + ", ".join(f"{k.split(':')[0].split(' (')[0]} "
                                                         f"{macro_f1(data.y[te], p[te].astype(str)):.3f}"
                                                         for k, p in preds.items())
                  + f" ({time.perf_counter() - t1:.0f} s)", file=sys.stderr, flush=True)
        for k in rows:
            rows[k].append(macro_f1(data.y, preds[k].astype(str)))
    print(f"### Fine-tuning musicnn's mid-end and dense layer: {len(data.y)} clips, 5 outer folds, seeds {args.seeds}, "
          f"{args.epochs} epochs, {args.crop:g} s crops, lr {args.lr:g}\n")
    print("| model | macro-F1 (mean ± sd over repeats) | per repeat |")
    print("|---|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {np.mean(v):.3f} ± {np.std(v, ddof=1) if len(v) > 1 else 0:.3f} | "
              f"{', '.join(f'{s:.3f}' for s in v)} |")


if __name__ == "__main__":
    main()
