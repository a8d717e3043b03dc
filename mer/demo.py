"""``make demo``: the main job, ``mer predict``, on audio the repository generates (offline).

Renders two 30 s synthetic clips (a bright major-key fast one and a dark minor-key slow
one), then runs ``mer predict`` on the folder with the bundled default model, printing the
table and writing one valence-arousal plot per clip. The clips are synthetic, so the
numbers only show the pipeline working end to end; point ``mer predict`` at real music to
see what the model does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import soundfile as sf

from . import synth
from .cli import main as cli_main
from .io import atomic_path

CLIPS = {"demo-bright.wav": (0.7, 0.6), "demo-dark.wav": (-0.6, -0.6)}


def main(out_dir: str = "demo-output") -> int:
    out = Path(out_dir)
    for name, (v, a) in CLIPS.items():
        with atomic_path(out / name) as tmp:
            sf.write(str(tmp), synth.clip(v, a, seconds=30.0, sr=44100), 44100, subtype="PCM_16", format="WAV")
    print(f"wrote {len(CLIPS)} synthetic 30 s clips to {out}/\n")
    print(f"$ mer predict {out} --plot-dir {out / 'plots'}")
    code = cli_main(["predict", str(out), "--plot-dir", str(out / "plots"), "--quiet"])
    if code == 0:
        print(f"\nplots (valence-arousal plane, 2 Hz trajectory): {', '.join(str(p) for p in sorted((out / 'plots').glob('*.png')))}")
        print("next: mer predict YOUR_MUSIC_FOLDER --format csv   (see README)")
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
