"""``mer datasets``: list, info, validate, check-swap (sub-commands of the CLI)."""

from __future__ import annotations

import argparse

from ..datasets import DATASETS, compare_datasets, dataset_class, load_dataset
from ._args import add_dataset, parse_pairs


def _list(args: argparse.Namespace) -> int:
    width = max(map(len, DATASETS))
    for name, cls in DATASETS.items():
        print(f"{name:<{width}}  {cls.description}")
    return 0


def _info(args: argparse.Namespace) -> int:
    cls = dataset_class(args.name)
    for label, value in (("name", cls.name), ("what", cls.description), ("citation", cls.citation),
                         ("licence", cls.license), ("download", cls.download), ("layout", cls.layout),
                         ("label scale", "quadrants (trained toward each quadrant's centre)" if cls.source_scale ==
                          "quadrant" else f"{cls.source_scale} (converted to canonical [-1, 1])"),
                         ("options", _options(cls)), ("splits", ", ".join(cls.named_splits))):
        if value:
            print(f"{label:>11}: {value}")
    return 0


def _options(cls: type) -> str:
    """The loader's ``--dataset-option`` names and defaults, from its signature."""
    import inspect

    params = list(inspect.signature(cls).parameters.values())[1:]  # the class's signature: no self; drop root
    return ", ".join(f"{p.name}={p.default}" if p.default is not inspect.Parameter.empty else p.name for p in params)


def _validate(args: argparse.Namespace) -> int:
    ds = load_dataset(args.name, args.root, **parse_pairs(args.dataset_option, "--dataset-option"))
    rep = ds.validate()
    print(f"{rep.dataset} at {rep.root}")
    print(f"  tracks with labels : {rep.n_tracks}")
    print(f"  with audio         : {rep.n_audio}")
    hint = " (pass --dataset-option lexicon=PATH for mood-derived valence/arousal)" if rep.dataset == "4q" and not rep.n_static else ""
    print(f"  static labels      : {rep.n_static}{hint}")
    print(f"  dynamic labels     : {rep.n_dynamic}")
    print(f"  source label scale : {rep.source_scale} (loaded as canonical [-1, 1])")
    tracks = list(ds.tracks())
    quads = [t.quadrant for t in tracks if t.quadrant]
    if quads:
        print("  quadrants          : " + ", ".join(f"{q} {quads.count(q)}" for q in sorted(set(quads))))
    artists = {t.artist for t in tracks if t.artist}
    print(f"  artists known      : {len(artists)} distinct, for {sum(t.artist is not None for t in tracks)} tracks")
    for note in ds.notes():
        print(f"  note               : {note}")
    if rep.ok:
        print("  problems           : none")
        return 0
    print("  problems           : " + ", ".join(f"{n} {k}" for k, n in sorted(rep.counts().items())))
    for p in rep.problems[: args.show]:
        print(f"    - [{p.kind}] {p.track_id + ': ' if p.track_id else ''}{p.message}")
    if len(rep.problems) > args.show:
        print(f"    ... and {len(rep.problems) - args.show} more (--show N to list more)")
    return 0 if not args.strict else 1


def _check_swap(args: argparse.Namespace) -> int:
    rep = compare_datasets(load_dataset("deam", args.deam), load_dataset("emomusic", args.emomusic))
    print(f"shared songs with static labels: {rep.shared}; agree as labelled: {rep.same}; "
          f"agree only when swapped: {rep.swapped}; neither: {rep.neither}")
    print(rep.verdict)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list, describe and validate datasets (DEAM, emoMusic, PMEmo, 4Q, AMG1608, RAVDESS, "
                                        "MERGE, folder)",
                       description="Dataset tools. Datasets: " + ", ".join(DATASETS))
    dsub = p.add_subparsers(dest="datasets_command", metavar="ACTION", required=True)
    dsub.add_parser("list", help="list the known datasets").set_defaults(handler=_list)
    i = dsub.add_parser("info", help="citation, licence, download pointer and expected layout")
    i.add_argument("name")
    i.set_defaults(handler=_info)
    v = dsub.add_parser("validate", help="count tracks and labels, report missing or malformed files")
    v.add_argument("name", help="dataset name (mer datasets list)")
    add_dataset(v, name=False)
    v.add_argument("--show", type=int, default=10, help="list at most N problems (default 10)")
    v.add_argument("--strict", action="store_true", help="exit 1 when any problem is found")
    v.set_defaults(handler=_validate)
    s = dsub.add_parser("check-swap", help="detect the valence/arousal swap between DEAM and emoMusic labels")
    s.add_argument("--deam", required=True, help="DEAM root")
    s.add_argument("--emomusic", required=True, help="emoMusic root")
    s.set_defaults(handler=_check_swap)
