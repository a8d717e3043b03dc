"""A PMEmo2019-layout folder built from the PMEmo sample clips, for ``--dataset pmemo`` and the
cross-dataset protocol (README, "Cross-dataset protocol")::

    python -m benchmarks.pmemo_layout --out /tmp/pmemo-layout [--data ../shared/data] [--copy]
    mer benchmark --train 4q=... --test pmemo=/tmp/pmemo-layout ...

``pmemo-samples/`` holds ``<id>.mp3`` and ``<id>.json`` (``valence_mean``/``arousal_mean`` in
[0, 1]; ``dynamic.t/v/a`` at 2 Hz from 15.5 s); the release that :class:`mer.datasets.PMEmo`
reads has ``chorus/<id>.mp3``, ``annotations/static_annotations.csv`` (musicId, Arousal(mean),
Valence(mean)), ``annotations/dynamic_annotations.csv`` (musicId, frameTime, Arousal(mean),
Valence(mean)) and ``metadata.csv`` (musicId, fileName, title, artist). This writes that layout
into ``--out`` (outside the repository: the data never goes into it), the clips as symbolic
links to the samples (``--copy``: copies), the CSVs from the JSONs with the values as given
(the loader converts [0, 1] to [-1, 1]). Running it again rewrites the same files.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import sys
from pathlib import Path

from benchmarks._data import REPO, add_data_arg, data_root
from mer.io import write_text_atomic


def _csv(rows: list[list[object]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def samples(folder: Path) -> list[dict]:
    """The sample JSONs of ``folder`` (those with labels and their clip beside them), by id."""
    docs = []
    for meta in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{meta}: not a readable sample JSON ({exc})") from None
        if not isinstance(doc, dict) or "valence_mean" not in doc:
            continue  # index.json
        if not (folder / f"{doc['id']}.mp3").is_file():
            raise SystemExit(f"{meta}: its clip {doc['id']}.mp3 is not beside it")
        docs.append(doc)
    if not docs:
        raise SystemExit(f"{folder}: no PMEmo sample JSONs (<id>.json with valence_mean) here; pass --data DIR "
                         "holding pmemo-samples/")
    return sorted(docs, key=lambda d: int(d["id"]))


def build(src: Path, out: Path, copy: bool = False) -> Path:
    """Write the PMEmo2019 layout of the samples in ``src`` into ``out``; return ``out``."""
    out = out.resolve()
    if out == REPO or REPO in out.parents:
        raise SystemExit(f"{out}: inside the repository; the data stays outside it (pick e.g. /tmp/pmemo-layout)")
    docs = samples(src)
    (out / "chorus").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(exist_ok=True)
    static: list[list[object]] = [["musicId", "Arousal(mean)", "Valence(mean)"]]
    dynamic: list[list[object]] = [["musicId", "frameTime", "Arousal(mean)", "Valence(mean)"]]
    meta: list[list[object]] = [["musicId", "fileName", "title", "artist"]]
    for d in docs:
        sid, clip = d["id"], (src / f"{d['id']}.mp3").resolve()
        target = out / "chorus" / f"{sid}.mp3"
        if target.is_symlink() or target.exists():
            target.unlink()
        if copy:
            shutil.copyfile(clip, target)
        else:
            os.symlink(clip, target)
        static.append([sid, d["arousal_mean"], d["valence_mean"]])
        dyn = d.get("dynamic") or {}
        dynamic += [[sid, t, a, v] for t, v, a in zip(dyn.get("t", []), dyn.get("v", []), dyn.get("a", []))]
        meta.append([sid, f"{sid}.mp3", d.get("title", ""), d.get("artist", "")])
    write_text_atomic(out / "annotations" / "static_annotations.csv", _csv(static))
    write_text_atomic(out / "annotations" / "dynamic_annotations.csv", _csv(dynamic))
    write_text_atomic(out / "metadata.csv", _csv(meta))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = add_data_arg(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    ap.add_argument("--out", type=Path, required=True, help="folder to write (outside the repository)")
    ap.add_argument("--copy", action="store_true", help="copy the clips instead of linking them")
    args = ap.parse_args(argv)
    out = build(data_root(args) / "pmemo-samples", args.out, args.copy)
    n = len(list((out / "chorus").glob("*.mp3")))
    print(f"{out}: PMEmo2019 layout, {n} clips ({'copied' if args.copy else 'linked'}); "
          f"check it with `mer datasets validate pmemo --root {out}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
