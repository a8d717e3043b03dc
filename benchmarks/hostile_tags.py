"""Hostile cases for what mer writes into a user's files and what it loads (#37): nothing lost, nothing run.

Each case runs the real ``mer`` command (a subprocess) in a temporary folder and checks what is
left on disk: the user's files intact, no marker file from a payload, one error line. Prints
``case | expected | got | PASS/FAIL``; exits 1 when any case fails.

    .venv/bin/python -m benchmarks.hostile_tags     # about a minute (one tiny training run)

Cases: files named like mer's temporaries (``.notes.mer-4000000-keep.txt``) under ``mer tag``,
``--dry-run`` and ``--remove``; a writer killed before its rename (its temporary is removed by the
next run, and said); another program saving a COMMENT into a FLAC with a 10 MB cover while mer
copies it (once: both kept; always: mer skips); an MP3 named ``.flac``; an ID3 header claiming
200 MB; an immutable file (root only); a crafted ``state.pt`` under ``mer train --resume``; a run
whose JSON asks for remote code from an ``hf:`` folder that ships Python, under ``mer predict``
(refused, and with ``--trust-remote-code`` the control: the code runs).
"""

from __future__ import annotations

import os
import signal
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


def mer(*args: str) -> tuple[int, str]:
    """(exit status, stderr) of ``mer ARGS``."""
    res = subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, text=True, timeout=600,
                         env=ENV, cwd=REPO)
    return res.returncode, res.stderr.strip()


def py(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600,
                          env=ENV, cwd=REPO)


def clip(path: Path, fmt: str | None = None) -> Path:
    y = synth.clip(0.3, -0.2, seconds=3.0, sr=44100)
    sf.write(path, np.stack([y, 0.5 * y], axis=1), 44100, format=fmt)
    return path


def lookalikes(tmp: Path) -> None:
    music = tmp / "lookalike"
    music.mkdir()
    song = clip(music / "song.flac")
    py("import sys; from mer import tags; tags.write(sys.argv[1], tags.Emotion(0.1, 0.1, 'Q1', {}, 'm', '1', 'x'))",
       str(song))
    theirs = [music / ".notes.mer-4000000-keep.txt", music / ".mix.mp3.mer-77777-final.mp3"]
    for f in theirs:
        f.write_text("the user's own")
    for label, args in (("--dry-run", ["--remove", "--dry-run"]), ("--remove", ["--remove"])):
        rc, err = mer("tag", *args, str(music))
        kept = all(f.exists() and f.read_text() == "the user's own" for f in theirs)
        CASES.check(f"user files named like temporaries, mer tag {label}", "exit 0, both files kept",
                    f"exit {rc}, {'kept' if kept else 'DELETED'}", rc == 0 and kept)


KILLED = """
import os, signal, sys
from mer import tags
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
tags.write(sys.argv[1], tags.Emotion(0.1, 0.1, "Q1", {}, "m", "1", "x"))
"""


def killed(tmp: Path) -> None:
    music = tmp / "killed"
    music.mkdir()
    song = clip(music / "song.flac")
    res = py(KILLED, str(song))
    left = [q for q in music.iterdir() if q.name.startswith(".song.flac.mer-")]
    rc, err = mer("tag", "--remove", "--dry-run", str(music))
    still = all(q.exists() for q in left)
    rc2, err2 = mer("tag", "--remove", str(music))
    gone = left and not any(q.exists() for q in left)
    CASES.check("kill -9 before the rename, then mer tag", "temp kept by --dry-run, removed and said after",
                f"killed {res.returncode == -signal.SIGKILL}, {len(left)} temp, dry-run kept {still}, "
                f"removed {bool(gone)}", bool(left) and still and bool(gone) and "mer: removed" in err2)


CONCURRENT = """
import shutil, subprocess, sys
from mer import tags
times = int(sys.argv[2])
real, calls = shutil.copyfile, []
def copy(src, dst, *a, **k):
    out = real(src, dst, *a, **k)
    calls.append(1)
    if len(calls) <= times:  # another program saves the original while mer holds its copy
        subprocess.run([sys.executable, "-c", "import mutagen, sys; f = mutagen.File(sys.argv[1]); "
                        "f['COMMENT'] = ['saved by another program']; f.save()", src], check=True)
    return out
tags.shutil.copyfile = copy
try:
    tags.write(sys.argv[1], tags.Emotion(0.1, 0.1, "Q1", {}, "m", "1", "x"))
    print("written")
except tags.TagSkip as exc:
    print("skipped:", exc)
"""


def concurrent(tmp: Path) -> None:
    from mutagen.flac import FLAC, Picture

    for times, expect in ((1, "both kept (redone once)"), (2, "skipped, the other program's save kept")):
        song = clip(tmp / f"cover{times}.flac")
        f = FLAC(song)
        pic = Picture()
        pic.type, pic.mime, pic.data = 3, "image/jpeg", os.urandom(10 * 1024 * 1024)
        f.add_picture(pic)
        f.save()
        res = py(CONCURRENT, str(song), str(times))
        got = FLAC(song)
        comment = got.get("COMMENT") == ["saved by another program"]
        ours = "VALENCE" in got
        ok = comment and (ours if times == 1 else not ours and "skipped:" in res.stdout)
        CASES.check(f"another program saves during mer's copy ({times}x)", expect,
                    f"COMMENT kept {comment}, mer's tags {ours}: {res.stdout.strip()[:40]}", ok)


def formats(tmp: Path) -> None:
    lying = tmp / "lying.flac"
    clip(tmp / "real.mp3", "MP3").rename(lying)
    rc, err = mer("tag", str(lying))
    CASES.check("an MP3 named .flac, mer tag", "exit 0, tagged as MP3", f"exit {rc}: {err.splitlines()[-1][:60]}",
                rc == 0 and "1 tagged" in err)
    big = tmp / "id3-200mb.mp3"
    data = clip(tmp / "b.mp3", "MP3").read_bytes()
    size = bytes([(200 << 20 >> s) & 0x7F for s in (21, 14, 7, 0)])
    big.write_bytes(b"ID3\x04\x00\x00" + size + data)
    rc, err = mer("tag", "--remove", str(big))
    CASES.check("ID3 header claiming 200 MB", "exit 1, says the tag is damaged", f"exit {rc}: {err[:80]}",
                rc == 1 and "claims 209.7 MB" in err and "()" not in err)
    frozen = clip(tmp / "frozen.flac")
    if subprocess.run(["chattr", "+i", str(frozen)], capture_output=True).returncode == 0:
        rc, err = mer("tag", "--remove", str(frozen))
        subprocess.run(["chattr", "-i", str(frozen)])
        CASES.check("an immutable file (chattr +i)", "skipped as immutable", f"exit {rc}: {err[:80]}",
                    "immutable" in err and "read-only (mode" not in err)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


def resume(tmp: Path) -> None:
    import torch

    root = synth.write_dataset(tmp / "data", n=12, seconds=3.0, seed=4)
    run = tmp / "run"
    rc, err = mer("train", "--dataset", "folder", "--root", str(root), "--model", "crnn", "--model-arg",
                  "channels=[4,8,8,8]", "--model-arg", "hidden=8", "--folds", "2", "--epochs", "1", "--batch-size",
                  "4", "--crop-seconds", "2", "--val-fraction", "0.34", "--device", "cpu", "--quiet",
                  "--cache-dir", str(tmp / "cache"), "--out", str(run))
    state = run / "fold0" / "state.pt"
    marker = tmp / "STATE-PAYLOAD-RAN"
    good = torch.load(state, weights_only=True)
    torch.save({**good, "history": [_Payload(marker)]}, state)
    (run / "summary.json").unlink()
    (run / "fold0" / "test.json").unlink()
    rc, err = mer("train", "--resume", str(run), "--quiet")
    CASES.check("crafted state.pt, mer train --resume", "exit 1, one line, payload not run",
                f"exit {rc}, ran {marker.exists()}: {err[:70]}",
                rc == 1 and not marker.exists() and err.count("\n") == 0 and "not a resume state" in err)


def remote_code(tmp: Path) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from test_no_code_runs import _evil_run  # the same crafted run folder the tests use

    run, folder, marker = _evil_run(tmp)
    song = clip(tmp / "song.wav")
    for extra in ([], ["--backend", "torch"]):
        rc, err = mer("predict", str(song), "--model", str(run), *extra)
        CASES.check(f"run JSON asks for remote code, predict {' '.join(extra)}".strip(),
                    "exit 1, names the folder, code not run", f"exit {rc}, ran {marker.exists()}: {err[:60]}",
                    rc == 1 and not marker.exists() and str(folder) in err and "--trust-remote-code" in err)
    env = {**ENV, "HF_MODULES_CACHE": str(tmp / "hf-modules")}
    subprocess.run([sys.executable, "-m", "mer", "predict", str(song), "--model", str(run), "--trust-remote-code"],
                   capture_output=True, timeout=600, env=env, cwd=REPO)
    CASES.check("control: the same with the user's --trust-remote-code", "the folder's code runs",
                f"ran {marker.exists()}", marker.exists())


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mer-hostile-tags-") as d:
        tmp = Path(d)
        for case in (lookalikes, killed, concurrent, formats, resume, remote_code):
            sub = tmp / case.__name__
            sub.mkdir()
            case(sub)
    return CASES.report()


if __name__ == "__main__":
    sys.exit(main())
