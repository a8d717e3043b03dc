"""``make demo``: the main job, ``mer predict``, on real music when it is there.

With the project's data beside the repository (``../shared/data``, or a folder named by
``$MER_DEMO_MUSIC``), it predicts the four PMEmo choruses (one per quadrant, rated by
listeners; music the default model never trained on) and a Creative Commons track, prints the
table and each clip's listener-rated quadrant beside the model's, and writes one
valence-arousal plot per file. Without that data it renders two synthetic clips instead and
says so: their numbers only show the pipeline working, not what the model does on music.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import soundfile as sf

from . import synth
from .cli import main as cli_main
from .io import atomic_path
from .scales import quadrant

SYNTHETIC = {"synthetic-bright.wav": (0.7, 0.6), "synthetic-dark.wav": (-0.6, -0.6)}


def shared_data() -> Path | None:
    """``$MER_DEMO_MUSIC``, else ``../shared/data`` beside the working directory or the repository."""
    candidates = [os.environ.get("MER_DEMO_MUSIC", ""), "../shared/data",
                  str(Path(__file__).resolve().parents[2] / "shared" / "data")]
    for c in candidates:
        if c and (Path(c) / "pmemo-samples").is_dir():
            return Path(c)
    return None


def listener_labels(folder: Path) -> dict[str, str]:
    """{file name: "Q1 (listeners: valence 0.86, arousal 0.86 on 0-1)"} from PMEmo's JSON."""
    out = {}
    for meta in sorted(folder.glob("*.json")):
        try:
            d = json.loads(meta.read_text(encoding="utf-8"))
            v, a = float(d["valence_mean"]), float(d["arousal_mean"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        q = quadrant(2 * v - 1, 2 * a - 1)
        out[f"{meta.stem}.mp3"] = f"{q.name} {q.words} ({d.get('artist', '?')} - {d.get('title', '?')})"
    return out


def _synthetic(out: Path) -> list[str]:
    for name, (v, a) in SYNTHETIC.items():
        with atomic_path(out / name) as tmp:
            sf.write(str(tmp), synth.clip(v, a, seconds=30.0, sr=44100), 44100, subtype="PCM_16", format="WAV")
    print(f"No real music found (../shared/data or $MER_DEMO_MUSIC): rendered {len(SYNTHETIC)} SYNTHETIC 30 s "
          f"clips in {out}/ instead.\nThey are tones, not music: the numbers below only show the pipeline running.\n")
    return [str(out)]


def main(out_dir: str = "demo-output") -> int:
    out = Path(out_dir)
    data = shared_data()
    if data is None:
        inputs, labels = _synthetic(out), {}
    else:
        pmemo = data / "pmemo-samples"
        inputs = [str(pmemo)] + [str(p) for p in sorted((data / "misc-audio").glob("*.ogg"))]
        labels = listener_labels(pmemo)
        print(f"Real music from {data}: 4 PMEmo choruses (one per quadrant by listeners' ratings) and a "
              "Creative Commons track; the default model never trained on any of them.\n")
    plots = out / "plots"
    print(f"$ mer predict {' '.join(inputs)} --plot-dir {plots}")
    code = cli_main(["predict", *inputs, "--plot-dir", str(plots), "--quiet"])
    if labels:
        print("\nwhat listeners said (PMEmo static ratings):")
        for name, label in labels.items():
            print(f"  {name:<10} {label}")
    if code == 0:
        print(f"\nplots (valence-arousal plane and the curve over time, a 10.5 s moving mean) in {plots}/")
        print("next: mer predict YOUR_MUSIC_FOLDER --format csv   (see README)")
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
