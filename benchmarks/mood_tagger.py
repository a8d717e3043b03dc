"""The mood-word tagger against its baselines, nested and artist-grouped (#40).

On the 600 4Q dev clips: the default's clip vector (musicnn MSD mean+sd embedding of
loudness-normalised audio, what ``mer predict`` computes anyway), the AllMusic mood words of
each song (``MoodsStr``), the words given to at least ``mer.train.moods.MIN_CLIPS`` clips.
Methods (:func:`mer.train.moods.nested`): the prior, the lexicon distance (the approach of
``mer search --mood`` today, with out-of-fold valence/arousal), the quadrant mixture
``sum_q P(q|clip) P(word|q)``, the tagger alone (ridge + Platt) and the blend that ships.
Outer: 5 artist-grouped folds x 3 split seeds; inner: 4 artist-grouped folds (alpha, Platt,
blend weights). Prints the macro table, then one row per word.

    python -m benchmarks.mood_tagger --data ../shared/data            # 5-9 minutes on 2 cores
    python -m benchmarks.mood_tagger --data ../shared/data --json OUT.json
    python -m benchmarks.mood_tagger --data ../shared/data --ship mer/pretrained/default --version 3 \
        --nested OUT.json                                              # fit on all 600 clips, attach

``--ship STEM``: fit the tagger on every clip (the same inner procedure) and write it as the
mood-word head of checkpoint STEM (replaced atomically; every other weight kept), recording the
vocabulary's support and the nested scores of ``--nested`` (this script's ``--json``) in its JSON.
Then ``mer export --model STEM --runtime`` writes its ONNX graphs.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from benchmarks._data import data_parser, data_root
from benchmarks.nested4q import LEVEL, load

LABELS = {"blend": "**blend (ships)**", "tagger": "tagger alone (ridge + Platt)", "mixture": "quadrant mixture",
          "lexicon": "lexicon distance (today's `search --mood`)", "prior": "prior"}


def lexicon(path: Path) -> dict[str, tuple[float, float]]:
    """Warriner et al. norms: {word: (valence, arousal)} on the canonical [-1, 1] scale."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out[row["Word"].strip().lower()] = ((float(row["V.Mean.Sum"]) - 5) / 4, (float(row["A.Mean.Sum"]) - 5) / 4)
    return out


def main(argv: list[str] | None = None) -> dict:
    from mer.train import moods

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[data_parser()])
    p.add_argument("--json", help="also write the per-word table as JSON here")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--ship", metavar="STEM", help="fit on all clips and attach as STEM's mood-word head")
    p.add_argument("--version", default="3", help="--ship: the model version it becomes (default 3)")
    p.add_argument("--nested", metavar="JSON", help="--ship: the nested scores to record (this script's --json)")
    args = p.parse_args(argv)
    root = data_root(args)
    t0 = time.perf_counter()
    data = load("msd", root)
    x = data.features("meanstd", LEVEL)
    lists = [moods.words_of(t.metadata.get("allmusic", "")) for t in data.tracks]
    words = moods.vocabulary(lists)
    y = moods.indicators(lists, words)
    if args.ship:
        return ship(args, x, y, data, words)
    points = moods.lexicon_points(words, lexicon(root / "lexicons" / "Ratings_Warriner_et_al.csv"))
    res = moods.nested(x, y, data.y, data.groups, data.va, points, words, seeds=tuple(range(args.seeds)))
    support = y.sum(axis=0).astype(int)
    print(f"### Mood words: {len(data.tracks)} clips, {len(words)} words with >= {moods.MIN_CLIPS} clips "
          f"(prior {y.mean():.3f}); nested 5 outer x 4 inner artist-grouped folds, {args.seeds} seeds; "
          f"{time.perf_counter() - t0:.0f} s\n")
    print("| method | macro ROC-AUC | macro PR-AUC | macro Brier | ECE | words where it has the best PR-AUC |")
    print("|---|---|---|---|---|---|")
    best = np.argmax(np.stack([res[m]["pr_auc"] for m in LABELS]), axis=0)
    for i, m in enumerate(LABELS):
        brier = "—" if m == "lexicon" else f"{res[m]['brier'].mean():.4f}"
        cal = "—" if m == "lexicon" else f"{res[m]['ece'][0]:.4f}"
        print(f"| {LABELS[m]} | {res[m]['roc_auc'].mean():.3f} | {res[m]['pr_auc'].mean():.3f} | {brier} | {cal} | "
              f"{int((best == i).sum())} |")
    print("\n| word | clips | ROC-AUC blend | mixture | lexicon | PR-AUC blend | mixture | prior | Brier blend |")
    print("|---|---|---|---|---|---|---|---|---|")
    for j, w in enumerate(words):
        print(f"| {w} | {support[j]} | {res['blend']['roc_auc'][j]:.3f} | {res['mixture']['roc_auc'][j]:.3f} | "
              f"{res['lexicon']['roc_auc'][j]:.3f} | {res['blend']['pr_auc'][j]:.3f} | "
              f"{res['mixture']['pr_auc'][j]:.3f} | {res['prior']['pr_auc'][j]:.3f} | {res['blend']['brier'][j]:.4f} |")
    doc = {"words": words, "support": support.tolist(), "clips": len(data.tracks), "seeds": args.seeds,
           "methods": {m: {k: v.tolist() for k, v in r.items()} for m, r in res.items()}}
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


def ship(args: argparse.Namespace, x: np.ndarray, y: np.ndarray, data, words: list[str]) -> dict:  # noqa: ANN001
    from mer.train import moods

    tagger = moods.fit_tagger(x, y, data.y, data.groups, words)
    nested = json.loads(Path(args.nested).read_text()) if args.nested else None
    if nested is not None and nested["words"] != words:
        raise SystemExit(f"{args.nested}: scored another vocabulary; run the nested benchmark again")
    record = {"words": words, "support": y.sum(axis=0).astype(int).tolist(), "clips": len(y), "alpha": tagger.alpha,
              "blend": tagger.blend.tolist(), "source": "4Q dev clips' AllMusic moods (MoodsStr), words on >= "
              f"{moods.MIN_CLIPS} clips", "command": "python -m benchmarks.mood_tagger --data DATA --ship STEM",
              **({"nested": {m: {k: float(np.mean(v)) for k, v in r.items()} for m, r in nested["methods"].items()},
                  "per_word": {m: nested["methods"][m] for m in ("blend", "mixture", "lexicon", "prior")}}
                 if nested else {})}
    out = moods.attach(args.ship, tagger, args.ship, args.version, {"moods": record})
    print(f"wrote {out}: {len(words)} mood words (alpha {tagger.alpha:g}, mean blend {tagger.blend.mean():.2f}); "
          f"now: mer export --model {args.ship} --runtime")
    return record


if __name__ == "__main__":
    main()
