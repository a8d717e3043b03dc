"""Hostile outputs against the real `mer` commands: nothing a user owns is ever overwritten.

Runs each command of the probe's findings as a subprocess in a temporary folder and checks
what is left on disk afterwards: inputs byte-identical, special files still special, one line
on stderr and the exit status. Prints ``case | expected | got | PASS/FAIL``; exits 1 when any
case fails.

    .venv/bin/python -m benchmarks.hostile_files     # about 40 s; device-node cases need root

Cases: an output that is an input (``-o``, ``--plot``, ``--embeddings``; by name, ``./``, a hard
link, a symlink), two outputs on one file, convert/index/playlist/evaluate/train/export onto
their inputs, the null and full devices and a FIFO as outputs (as root: nodes of those devices
made in a temporary folder, never the machine's own), a symlinked output, standard output on a full disk or closed early,
garbage on standard input, a run in which every input fails, a 1 Hz file, a CSV quote.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import soundfile as sf

from benchmarks.cases import Cases
from mer import synth

REPO = Path(__file__).resolve().parents[1]

CASES = Cases()
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def mer(*args: str, stdin: bytes | None = None, stdout: int | None = None) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``mer ARGS``."""
    res = subprocess.run([sys.executable, "-m", "mer", *args], input=stdin, timeout=600, env=ENV,
                         stdout=stdout if stdout is not None else subprocess.PIPE, stderr=subprocess.PIPE)
    out = res.stdout.decode(errors="replace") if res.stdout else ""
    return res.returncode, out, res.stderr.decode(errors="replace").strip()


def digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def refused(case: str, args: list[str], kept: list[Path], needle: str = "") -> None:
    """``mer ARGS`` must exit 2 with one error line (holding ``needle``) and leave ``kept`` as they were."""
    before = [digest(p) for p in kept]
    rc, _, err = mer(*args)
    same = [digest(p) for p in kept] == before
    one_line = err.count("\n") == 0 and err.startswith("mer: error:")
    CASES.check(case, "exit 2, one line, input intact", f"{rc}, {'intact' if same else 'CHANGED'}: {err}",
                rc == 2 and one_line and same and needle in err)


def collisions(tmp: Path, song: Path) -> None:
    os.link(song, tmp / "hard.wav")
    (tmp / "soft.wav").symlink_to(song)
    for flag in ("-o", "--plot", "--embeddings"):
        refused(f"predict in.wav {flag} in.wav", ["predict", "-q", str(song), flag, str(song)], [song])
    for name in ("hard.wav", "soft.wav", "./in.wav"):
        refused(f"predict in.wav -o {name}", ["predict", "-q", str(song), "-o", str(tmp / name)], [song])
    (tmp / "x.png").write_bytes(b"a picture")
    refused("predict -o x.png --plot x.png", ["predict", "-q", str(song), "-o", str(tmp / "x.png"), "--plot",
                                              str(tmp / "x.png")], [tmp / "x.png"])
    refused("convert in.wav in.wav", ["convert", str(song), str(song)], [song])
    music = tmp / "music"
    (music / "sub").mkdir(parents=True)
    sf.write(music / "a.wav", synth.clip(0.1, 0.1, 1.0, 16000), 16000)
    sf.write(music / "sub" / "a.wav", synth.clip(0.2, 0.1, 1.0, 16000), 16000)
    refused("convert music music/sub --overwrite (a.wav -> sub/a.wav)",
            ["convert", str(music), str(music / "sub"), "--overwrite", "-q"], [music / "sub" / "a.wav"])
    refused("index in.wav --db in.wav", ["index", str(song), "--db", str(song), "-q"], [song])
    db = tmp / "music.sqlite"
    db.write_bytes(b"")
    (tmp / "db.json").symlink_to(db)
    refused("playlist db.json -o db.json (a link to the db)",
            ["playlist", str(tmp / "db.json"), "--from", "sad", "--to", "happy", "-o", str(tmp / "db.json")], [db])
    from mer.bundle import Bundle

    meta = Bundle.resolve("default").stem.with_suffix(".json")
    refused("evaluate --json onto the model's own JSON",
            ["evaluate", "default", "--dataset", "folder", "--root", str(music), "--json", str(meta)], [meta])
    config = tmp / "run" / "config.yaml"
    config.parent.mkdir()
    config.write_text(f"dataset: folder\nroot: {music}\nmodel: cnn\n# my notes\n")
    refused("train --config run/config.yaml --out run", ["train", "--config", str(config), "--out",
                                                         str(config.parent), "-q"], [config])


def device(tmp: Path, name: str, minor: int) -> str:
    """``/dev/NAME``, or as root a node of our own (the same device) in ``tmp``: a regression run
    as root must never be able to replace the machine's device nodes."""
    if os.geteuid() == 0 and hasattr(os, "mknod"):
        node = tmp / name
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
        return str(node)
    return f"/dev/{name}"


def specials(tmp: Path, song: Path) -> None:
    for dev in (device(tmp, "null", 3), device(tmp, "full", 7)):
        if not os.path.exists(dev):
            continue
        before = os.stat(dev)
        rc, _, err = mer("predict", "-q", str(song), "-o", dev)
        after = os.stat(dev)
        still = stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
        want = 0 if dev.endswith("null") else 1
        CASES.check(f"predict -o {Path(dev).name} device", f"exit {want}, still a device" + (", 'disk full'" if want else ""),
                    f"{rc}, {'device' if still else 'REPLACED'}: {err}",
                    rc == want and still and (want == 0 or "disk full" in err))
    fifo = tmp / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    rc, _, err = mer("predict", "-q", str(song), "-o", str(fifo), "--format", "csv")
    reader.join(30)
    CASES.check("predict -o FIFO", "exit 0, rows through the pipe, still a FIFO",
                f"{rc}, {len(got[0].splitlines()) if got else 0} lines, fifo={stat.S_ISFIFO(os.stat(fifo).st_mode)}",
                rc == 0 and got and got[0].startswith(b"path,") and stat.S_ISFIFO(os.stat(fifo).st_mode))
    real = tmp / "real.csv"
    real.write_text("old")
    link = tmp / "link.csv"
    link.symlink_to(real)
    rc, _, err = mer("predict", "-q", str(song), "-o", str(link), "--format", "csv")
    CASES.check("predict -o a symlink", "exit 0, link kept, target written",
                f"{rc}, link={link.is_symlink()}, target starts {real.read_text()[:5]!r}",
                rc == 0 and link.is_symlink() and real.read_text().startswith("path,"))


def streams(tmp: Path, song: Path) -> None:
    full_dev = device(tmp, "full-out", 7)
    if os.path.exists(full_dev):
        with open(full_dev, "wb") as full:
            rc, _, err = mer("predict", "-q", str(song), stdout=full.fileno())
        CASES.check("predict > a full device", "exit 1, 'disk full: standard output'", f"{rc}: {err}",
                    rc == 1 and "disk full: standard output" in err and err.count("\n") == 0)
    many = tmp / "many"
    many.mkdir()
    for i in range(12):
        sf.write(many / f"{i}.wav", synth.clip(0.1, 0.1, 1.5, 16000, seed=i), 16000)
    res = subprocess.run(["bash", "-c", f"{sys.executable} -m mer predict -q -j 1 {many} | head -3; "
                          "echo rc=${PIPESTATUS[0]}"], capture_output=True, text=True, timeout=600, env=ENV)
    rc_line = res.stdout.strip().splitlines()[-1]
    CASES.check("predict DIR | head -3", "rc=0, nothing on stderr", f"{rc_line}, stderr {res.stderr.strip()!r}",
                rc_line == "rc=0" and not res.stderr.strip())
    rc, out, err = mer("predict", "-", stdin=os.urandom(4000))
    CASES.check("random bytes | predict -", "named 'standard input', no temp path, no header",
                f"{rc}: {err.splitlines()[0] if err else ''}",
                rc == 1 and "standard input:" in err and "stdin.audio" not in err and out == "")
    bad = tmp / "bad.wav"
    bad.write_bytes(b"no audio here")
    out_csv = tmp / "kept.csv"
    out_csv.write_text("yesterday\n")
    rc, _, err = mer("predict", str(bad), "-o", str(out_csv))
    CASES.check("every input fails, -o kept.csv", "exit 1, kept.csv as it was", f"{rc}, {out_csv.read_text()!r}",
                rc == 1 and out_csv.read_text() == "yesterday\n")


def smaller(tmp: Path) -> None:
    import numpy as np

    ten = tmp / "ten.wav"
    sf.write(ten, 0.1 * np.sin(np.arange(441000) * 2 * np.pi * 440 / 44100).astype(np.float32), 44100)
    rc, out, _ = mer("predict", "--format", "csv", str(ten))
    import csv

    duration = next(csv.DictReader(out.splitlines()))["duration"] if rc == 0 else "?"  # by name, not position
    CASES.check("duration of an exact 10 s file", "10.0", duration, duration in ("10.0", "10.000"))
    one = tmp / "one_hz.wav"
    sf.write(one, np.random.default_rng(0).normal(0, 0.1, 100).astype(np.float32), 1)
    rc, _, err = mer("predict", str(one))
    CASES.check("a 1 Hz, 100-sample file", "refused: sample rate too low", f"{rc}: {err.splitlines()[0]}",
                rc == 1 and "sample rate 1 Hz is too low" in err)
    root = tmp / "quotes"
    root.mkdir()
    lines = ["file,valence,arousal"] + [f"c{i}.wav,0.1,0.1" for i in range(40)]
    lines[3] = 'c2.wav,"0.1,0.1'
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    rc, out, err = mer("datasets", "validate", "folder", "--root", str(root))
    msg = (err or out).strip().splitlines()[-1] if (err or out).strip() else ""
    CASES.check("unclosed quote on line 4 of a labels.csv", "blamed on line 4", f"{rc}: {msg}", "line 4" in msg)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mer-hostile-files-") as t:
        tmp = Path(t)
        song = tmp / "in.wav"
        sf.write(song, synth.clip(0.3, 0.3, 3.0, 16000, seed=3), 16000)
        collisions(tmp, song)
        specials(tmp, song)
        streams(tmp, song)
        smaller(tmp)
    return CASES.report()


if __name__ == "__main__":
    sys.exit(main())
