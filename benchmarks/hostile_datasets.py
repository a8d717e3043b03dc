"""Hostile dataset releases against the real `mer` commands: MERGE, RAVDESS and AMG1608.

Builds small fake releases in a temporary folder (the release's own file and column names,
1 s generated clips), breaks each in one way, runs ``python -m mer`` on it as a subprocess
and prints ``case | expected | got | PASS/FAIL`` (got: the exit status and the first line
of stderr, or of the problems ``validate`` lists); exits 1 when any case fails.

    .venv/bin/python -m benchmarks.hostile_datasets      # about 30 s on 2 cores

Cases: MERGE split files whose parts share songs (train/test, validate/test, train/validate;
``mer train --split`` must refuse, ``mer datasets validate`` must list it), RAVDESS file names
outside the naming convention (actor 99, intensity 05, neutral at strong intensity) and
track files that are empty or text, AMG1608 ``.mat`` files that are text or empty. The
untouched releases are validated first: "problems: none", so a check that always complains
would show.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.cases import Cases
from mer import synth

REPO = Path(__file__).resolve().parents[1]
CASES = Cases()
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
SR = 16000
SPLIT = "tvt_70_15_15"
TINY = ["--model", "crnn", "--model-arg", "channels=[8,16,16,16]", "--model-arg", "hidden=16", "--epochs", "1",
        "--device", "cpu", "-j", "1", "--quiet"]


def mer(*args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``python -m mer ARGS``."""
    res = subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, text=True, timeout=120, env=ENV)
    return res.returncode, res.stdout, res.stderr.strip()


def short(text: str) -> str:
    """``text`` with every absolute path cut to its file name, so the table shows the message."""
    return re.sub(r"(?<![\w:/])(/[^/\s:]+)+/", "", text)


def _clip(path: Path, seed: int, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, synth.clip(0.3, 0.3, seconds=1.0, sr=SR, seed=seed), SR, format=fmt)


# -- fake releases ------------------------------------------------------------------------

def merge_release(root: Path) -> Path:
    """MERGE_Audio_Complete: 12 songs (3 per quadrant), metadata, AV values, the two published splits."""
    folder = root / "MERGE_Audio_Complete"
    songs = [(f"A{i + 1:03d}", f"Q{i // 3 + 1}") for i in range(12)]
    for i, (sid, q) in enumerate(songs):
        _clip(folder / q / f"{sid}.mp3", i, "MP3")
    (folder / "merge_audio_complete_metadata.csv").write_text(
        "Song,Quadrant,Artist,Title\n" + "".join(f"{s},{q},Artist {s},Title {s}\n" for s, q in songs))
    (folder / "merge_audio_complete_av_values.csv").write_text(
        "Song,Arousal,Valence\n" + "".join(f"{s},0.6,0.6\n" for s, _ in songs))
    parts = {"train": songs[0::3] + songs[1::3], "validate": songs[2::6], "test": songs[5::6]}
    for name in (SPLIT, "tvt_40_30_30"):
        d = folder / "tvt_dataframes" / name
        d.mkdir(parents=True)
        for part, rows in parts.items():
            (d / f"{name}_{part}_audio_complete.csv").write_text("Song,Quadrant\n" + "".join(f"{s},{q}\n" for s, q in rows))
    return root


def split_file(root: Path, part: str) -> Path:
    return root / "MERGE_Audio_Complete" / "tvt_dataframes" / SPLIT / f"{SPLIT}_{part}_audio_complete.csv"


def overlap(root: Path, src: str, dst: str) -> None:
    """Copy the first two songs of part ``src`` into part ``dst``."""
    rows = split_file(root, src).read_text().splitlines()[1:3]
    with open(split_file(root, dst), "a") as fh:
        fh.write("".join(r + "\n" for r in rows))


def ravdess_release(root: Path) -> Path:
    """Song files 03-02-EE-01-01-01-AA.wav for five emotions and two actors."""
    for a in (1, 2):
        for e in ("02", "03", "04", "05", "06"):
            _clip(root / f"Actor_{a:02d}" / f"03-02-{e}-01-01-01-{a:02d}.wav", a * 10 + int(e))
    return root


def amg1608_release(root: Path) -> Path:
    """AMG1608.mat (song_label: 6 songs x 4 raters x (valence, arousal)), 1608_song_id.mat, amg1608_wav/."""
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    savemat(root / "AMG1608.mat", {"song_label": rng.uniform(-0.5, 0.5, size=(6, 4, 2))})
    savemat(root / "1608_song_id.mat", {"mat_id2song_id": np.arange(100, 106, dtype=np.float64)[:, None]})
    for i in range(6):
        _clip(root / "amg1608_wav" / f"{100 + i}.wav", i)
    return root


# -- checks -------------------------------------------------------------------------------

def first_problem(out: str) -> str:
    """The first listed problem of ``mer datasets validate`` (or its problems line)."""
    lines = out.splitlines()
    listed = [line.strip() for line in lines if line.strip().startswith("- [")]
    summary = next((line.strip() for line in lines if "problems" in line), "")
    return listed[0] if listed else summary


def validate(case: str, name: str, root: Path, expected: str, needles: tuple[str, ...]) -> None:
    """``mer datasets validate NAME --strict`` must exit 1 and list a problem holding every needle
    (exit 0 and "problems: none" when no needle is given)."""
    rc, out, err = mer("datasets", "validate", name, "--root", str(root), "--show", "50", "--strict")
    if not needles:
        CASES.check(case, expected, short(f"exit {rc}: {err.splitlines()[0] if err else first_problem(out)}"),
                    rc == 0 and "problems           : none" in out and not err)
        return
    listed = [line for line in out.splitlines() if line.strip().startswith("- [")]
    hit = next((line.strip() for line in listed if all(n in line for n in needles)), None)
    got = f"exit {rc}: {err.splitlines()[0] if err else hit or first_problem(out)}"
    CASES.check(case, expected, short(got), rc == 1 and hit is not None and not err)


def refused(case: str, args: list[str], expected: str, needles: tuple[str, ...]) -> None:
    """``mer ARGS`` must exit 1 with one line on stderr holding every needle, and no traceback."""
    rc, _, err = mer(*args)
    one_line = err.count("\n") == 0 and err.startswith("mer: error: ") and "internal error" not in err
    CASES.check(case, expected, short(f"exit {rc}: {err.splitlines()[0] if err else '(nothing on stderr)'}"),
                rc == 1 and one_line and all(n in err for n in needles))


def merge_cases(tmp: Path) -> None:
    clean = merge_release(tmp / "merge_clean")
    validate("MERGE untouched", "merge", clean, "exit 0, problems: none", ())
    for src, dst in (("train", "test"), ("validate", "test"), ("train", "validate")):
        root = tmp / f"merge_{src}_{dst}"
        shutil.copytree(clean, root)
        overlap(root, src, dst)
        ids = tuple(repr(line.split(",")[0]) for line in split_file(root, src).read_text().splitlines()[1:3])
        refused(f"MERGE {src}+{dst} share songs: train --split", ["train", "--dataset", "merge", "--root", str(root),
                                                                   "--split", SPLIT, *TINY, "--out", str(root / "run"),
                                                                   "--cache-dir", str(tmp / "cache")],
                "exit 1, one line: the split file and the ids", (split_file(root, dst).name, *ids))
        validate(f"MERGE {src}+{dst} share songs: validate", "merge", root, "--strict exit 1, split_overlap listed",
                 ("[split_overlap]", split_file(root, dst).name, *ids))


def ravdess_cases(tmp: Path) -> None:
    clean = ravdess_release(tmp / "ravdess_clean")
    validate("RAVDESS untouched", "ravdess", clean, "exit 0, problems: none", ())
    good = clean / "Actor_01" / "03-02-03-01-01-01-01.wav"
    for stem, what in (("03-02-03-01-01-01-99", "actor 99"), ("03-02-03-05-01-01-01", "intensity 05"),
                       ("03-02-01-02-01-01-01", "neutral at strong intensity")):
        root = tmp / f"ravdess_{stem}"
        shutil.copytree(clean, root)
        shutil.copy(good, root / "Actor_01" / f"{stem}.wav")
        validate(f"RAVDESS {what} ({stem}.wav)", "ravdess", root, "--strict exit 1, bad_name names the file",
                 ("[bad_name]", f"{stem}.wav"))
    for kind, content in (("empty", b""), ("text", b"this is not a wav file\n")):
        root = tmp / f"ravdess_{kind}"
        shutil.copytree(clean, root)
        (root / "Actor_02" / "03-02-04-01-01-01-02.wav").write_bytes(content)
        validate(f"RAVDESS {kind} .wav", "ravdess", root, "--strict exit 1, bad_audio names the file",
                 ("[bad_audio]", "03-02-04-01-01-01-02.wav", "empty" if kind == "empty" else "text"))


def amg1608_cases(tmp: Path) -> None:
    clean = amg1608_release(tmp / "amg_clean")
    validate("AMG1608 untouched", "amg1608", clean, "exit 0, problems: none", ())
    for which in ("AMG1608.mat", "1608_song_id.mat"):
        for kind, content in (("text", b"song_label = [0.1 0.2]\n"), ("empty", b"")):
            root = tmp / f"amg_{which}_{kind}"
            shutil.copytree(clean, root)
            (root / which).write_bytes(content)
            refused(f"AMG1608 {kind} {which}: validate", ["datasets", "validate", "amg1608", "--root", str(root)],
                    "exit 1, one line: the file, re-download", (str(root / which), "re-download"))


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mer-hostile-datasets-") as t:
        tmp = Path(t)
        merge_cases(tmp)
        ravdess_cases(tmp)
        amg1608_cases(tmp)
    return CASES.report()


if __name__ == "__main__":
    sys.exit(main())
