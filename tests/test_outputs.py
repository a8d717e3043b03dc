"""Nothing a user owns is overwritten: outputs never land on inputs (compared as files, not as
strings), special files are written in place or refused, never replaced, and output errors
on standard output are named ("disk full", a closed pipe ends quietly)."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import MERError, synth
from mer.errors import UsageError
from mer.io import atomic_path, refuse_collisions, write_text_atomic

REPO = Path(__file__).resolve().parents[1]


def _mer(*args: str, stdin: bytes | None = None, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, input=stdin, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, **kw)
    res.stdout, res.stderr = res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")
    return res


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.fixture
def song(tmp_path: Path) -> Path:
    p = tmp_path / "in.wav"
    sf.write(p, synth.clip(0.3, 0.3, 3.0, 16000, seed=3), 16000)
    return p


@pytest.fixture
def full_device(tmp_path: Path) -> Path:
    """A device that answers every write with ENOSPC. As root, a node of our own in a temporary
    folder: a regression must never be able to replace the machine's /dev/full. Otherwise the
    real one, which a user cannot replace (/dev is not writable)."""
    if os.geteuid() == 0 and hasattr(os, "mknod"):
        node = tmp_path / "full"
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        return node
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    return Path("/dev/full")


# -- the atomic writer and special files ---------------------------------------------------------
def test_a_symlink_stays_a_link_and_its_target_gets_the_content(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "not-yet.txt")
    write_text_atomic(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "not-yet.txt").read_text() == "made"


def test_a_fifo_is_written_in_place_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_text_atomic(fifo, "through the pipe\n")
    reader.join(10)
    assert got == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.skipif(os.geteuid() != 0 or not hasattr(os, "mknod"), reason="mknod of a device needs root")
def test_a_character_device_is_written_in_place_and_stays_a_device(tmp_path):
    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # the null device, in our own folder
    write_text_atomic(node, "gone\n")
    with atomic_path(node) as p, open(p, "wb") as fh:
        np.save(fh, np.zeros(3))
    assert stat.S_ISCHR(os.stat(node).st_mode) and os.stat(node).st_rdev == os.makedev(1, 3)
    assert not [p for p in tmp_path.iterdir() if p.name != "null"]  # no temporary file beside it


def test_a_full_device_says_disk_full_and_stays_a_device(full_device):
    with pytest.raises(MERError, match=f"disk full: {full_device}"):
        write_text_atomic(full_device, "x" * 100000)
    assert stat.S_ISCHR(os.stat(full_device).st_mode)


def test_a_socket_or_folder_is_refused_not_replaced(tmp_path):
    sock_path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(str(sock_path))
        with pytest.raises(MERError, match="is a socket"):
            write_text_atomic(sock_path, "x")
        assert stat.S_ISSOCK(os.stat(sock_path).st_mode)
    finally:
        s.close()
    with pytest.raises(MERError, match="is a folder"):
        write_text_atomic(tmp_path, "x")


# -- collisions ----------------------------------------------------------------------------------
def test_collisions_are_found_by_file_identity(tmp_path, song, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hard = tmp_path / "hard.wav"
    os.link(song, hard)
    soft = tmp_path / "soft.wav"
    soft.symlink_to(song)
    for out in ("in.wav", "./in.wav", str(song), str(hard), str(soft), "sub/../in.wav"):
        with pytest.raises(UsageError, match="is an input of this run"):
            refuse_collisions([song], [("-o", out)])
    with pytest.raises(UsageError, match="are the same file"):
        refuse_collisions([song], [("-o", "new.csv"), ("--plot", "./new.csv")])  # neither exists yet
    refuse_collisions([song], [("-o", "a.csv"), ("--plot", "a.png"), ("--embeddings", None)])
    refuse_collisions([song], [("-o", os.devnull), ("--plot", os.devnull)])  # /dev/null twice is fine
    assert UsageError("x").exit_status == 2


@pytest.mark.parametrize("flags", [["-o", "{in}"], ["--plot", "{in}"], ["--embeddings", "{in}"],
                                   ["-o", "{dir}/x.png", "--plot", "{dir}/x.png"]])
def test_predict_refuses_an_output_that_is_an_input_or_another_output(tmp_path, song, flags):
    (tmp_path / "x.png").write_bytes(b"a picture")
    before, picture = _digest(song), _digest(tmp_path / "x.png")
    res = _mer("predict", "-q", str(song), *[f.format(**{"in": song, "dir": tmp_path}) for f in flags])
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("mer: error: ")
    assert "nothing was written" in res.stderr or "are the same file" in res.stderr
    assert _digest(song) == before and _digest(tmp_path / "x.png") == picture


def test_convert_export_playlist_evaluate_index_train_refuse_their_inputs(tmp_path, song):
    before = _digest(song)
    res = _mer("convert", str(song), str(song))
    assert res.returncode == 2 and "is the input of this run" in res.stderr
    folder = tmp_path / "music"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "a.wav", synth.clip(0.1, 0.1, 1.0, 16000), 16000)
    sf.write(folder / "sub" / "a.wav", synth.clip(0.2, 0.1, 1.0, 16000), 16000)
    kept = _digest(folder / "sub" / "a.wav")
    res = _mer("convert", str(folder), str(folder / "sub"), "--overwrite", "-q")  # a.wav -> sub/a.wav, an input
    assert res.returncode == 2 and "is an input of this run" in res.stderr, res.stderr
    assert _digest(folder / "sub" / "a.wav") == kept
    res = _mer("index", str(song), "--db", str(song), "-q")
    assert res.returncode == 2 and "--db" in res.stderr
    db = tmp_path / "music.sqlite"
    db.write_bytes(b"")
    res = _mer("playlist", str(db), "--from", "sad", "--to", "happy", "-o", str(tmp_path / "music.sqlite.json"))
    assert "same file" not in res.stderr  # a different file: no collision (it fails later for other reasons)
    link = tmp_path / "db.json"
    link.symlink_to(db)
    res = _mer("playlist", str(link), "--from", "sad", "--to", "happy", "-o", str(link))
    assert res.returncode == 2 and "the library database" in res.stderr
    from mer.bundle import Bundle

    meta = Bundle.resolve("default").stem.with_suffix(".json")
    res = _mer("evaluate", "default", "--dataset", "folder", "--root", str(folder), "--json", str(meta))
    assert res.returncode == 2 and "a file of the model" in res.stderr
    config = tmp_path / "run" / "config.yaml"
    config.parent.mkdir()
    config.write_text(f"dataset: folder\nroot: {folder}\nmodel: cnn\n# my notes\n")
    res = _mer("train", "--config", str(config), "--out", str(config.parent), "-q")
    assert res.returncode == 2 and "--config" in res.stderr and "my notes" in config.read_text()
    res = _mer("train", "--config", str(config), "--out", str(folder), "-q")
    assert res.returncode == 2 and "dataset" in res.stderr
    assert _digest(song) == before


def test_export_onnx_refuses_to_write_over_the_checkpoint_description(tmp_path):
    pytest.importorskip("torch")
    from mer.models import create_model
    from mer.models.checkpoint import save_checkpoint

    stem = tmp_path / "tiny"
    save_checkpoint(create_model("cnn", channels=[4, 4, 4, 4, 4]), stem)
    before = _digest(stem.with_suffix(".json"))
    res = _mer("export", "--model", str(stem.with_suffix(".safetensors")), "--onnx", str(stem.with_suffix(".onnx")))
    assert res.returncode == 2 and "a file of the model" in res.stderr, res.stderr
    assert _digest(stem.with_suffix(".json")) == before


# -- standard output and input -------------------------------------------------------------------
def test_stdout_on_a_full_device_says_disk_full(song, full_device):
    with open(full_device, "w") as full:
        res = subprocess.run([sys.executable, "-m", "mer", "predict", "-q", str(song)], stdout=full,
                             stderr=subprocess.PIPE, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        "mer: error: disk full: standard output; free some space or write elsewhere (-o FILE)"]


def test_a_closed_pipe_ends_quietly_with_status_0(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(12):
        sf.write(folder / f"{i}.wav", synth.clip(0.1, 0.1, 1.5, 16000, seed=i), 16000)
    cmd = f"{sys.executable} -m mer predict -q -j 1 --format csv {folder} | head -2; echo \"rc=${{PIPESTATUS[0]}}\""
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    lines = res.stdout.splitlines()
    assert lines[0].startswith("path,") and lines[-1] == "rc=0", res.stdout + res.stderr
    assert "Error" not in res.stderr and "internal error" not in res.stderr, res.stderr


def test_garbage_on_stdin_is_called_standard_input():
    res = _mer("predict", "-", stdin=os.urandom(5000))
    assert res.returncode == 1 and "mer: error: standard input: not a readable audio file" in res.stderr
    assert "mer-stdin" not in res.stderr and "stdin.audio" not in res.stderr
    assert res.stdout == ""  # no header for a run in which nothing was predicted


def test_a_run_that_fails_everywhere_keeps_the_previous_output(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    out = tmp_path / "out.csv"
    out.write_text("yesterday's results\n")
    res = _mer("predict", str(bad), "-o", str(out), "--format", "csv")
    assert res.returncode == 1 and out.read_text() == "yesterday's results\n" and "left as it was" in res.stderr


# -- smaller: duration, sample rate, CSV quotes --------------------------------------------------
def test_duration_is_the_files_not_the_padded_frames(tmp_path):
    import mer

    p = tmp_path / "ten.wav"
    sf.write(p, 0.1 * np.sin(np.arange(441000) * 2 * np.pi * 440 / 44100).astype(np.float32), 44100)
    pred = mer.predict(p)
    assert pred.duration == pytest.approx(10.0, abs=1e-6)
    assert mer.predict(p, offset=2.5, duration=5.0).duration == pytest.approx(5.0, abs=1e-6)
    assert mer.predict(p, offset=7.5).duration == pytest.approx(2.5, abs=1e-6)


def test_an_absurd_sample_rate_is_refused_and_a_low_one_warned(tmp_path):
    import mer
    from mer import AudioError, MERWarning

    p = tmp_path / "one_hz.wav"
    sf.write(p, np.random.default_rng(0).normal(0, 0.1, 100).astype(np.float32), 1)
    with pytest.raises(AudioError, match="sample rate 1 Hz is too low"):
        mer.predict(p)
    low = tmp_path / "four_khz.wav"
    sf.write(low, synth.clip(0.2, 0.2, 3.0, 4000), 4000)
    with pytest.warns(MERWarning, match="sample rate 4000 Hz"):
        mer.predict(low)
    with pytest.raises(AudioError, match="sample rate 10 Hz"):
        mer.predict(np.zeros(1000, dtype=np.float32) + 0.1, sr=10)


def test_an_unclosed_quote_is_blamed_on_its_own_line(tmp_path):
    from mer import DatasetError
    from mer.datasets.tables import read_rows

    lines = ["song_id,valence_mean,arousal_mean"] + [f"{i},5,5" for i in range(1, 50)]
    lines[4] = '4,"5,5'  # line 5 of the file opens a quote that never closes
    p = tmp_path / "labels.csv"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"labels.csv line 5: a quote"):
        read_rows(p)
    lines[4] = '4,5,5'
    lines[20] = '20,"5,5'
    lines[30] = '30,5",5'  # closed ten lines later
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"line 21: a quote .* runs on to line 31"):
        read_rows(p)


def test_a_malformed_header_is_blamed_on_line_1(tmp_path):
    from mer import DatasetError
    from mer.datasets.tables import read_rows

    p = tmp_path / "labels.csv"
    p.write_text("x" * 200_000 + ",valence\n1,5\n")  # a header cell over the csv module's field limit
    with pytest.raises(DatasetError, match=r"labels.csv line 1: malformed CSV"):  # was "line b'xxxx'"
        read_rows(p)
