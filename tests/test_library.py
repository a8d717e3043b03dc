"""The music library (mer index / search / playlist): schema, incremental and kill-safe
indexing, search by mood, point and sound, playlists and their files, the CLI end to end."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import synth
from mer.cli import main
from mer.errors import MERError
from mer.library import MOODS, SCHEMA_VERSION, Library, LibraryError, mood_point
from mer.library.store import connect, f16_blob, now, upsert_songs
from mer.scales import quadrant

REPO = Path(__file__).resolve().parents[1]
SR = 16000
POINTS = [(0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6), (0.2, 0.9), (-0.2, -0.9)]


def write_clips(folder: Path, n: int, seconds: float = 3.0, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        v, a = POINTS[i % len(POINTS)]
        p = folder / f"clip{i:02d}.wav"
        sf.write(p, synth.clip(v, a, seconds=seconds, sr=SR, seed=i), SR)
        out.append(p)
    return out


@pytest.fixture
def music(tmp_path: Path) -> Path:
    write_clips(tmp_path / "music", 6)
    return tmp_path / "music"


@pytest.fixture
def lib(tmp_path: Path, music: Path):  # noqa: ANN201
    with Library(tmp_path / "music.sqlite") as lib:
        stats = lib.index(music, workers=1, progress=False)
        assert stats.predicted == 6 and stats.failed == 0
        yield lib


def cli(*argv: "str | Path") -> int:
    """``mer ARGV`` through the real entry point (``mer.cli.main``): its exit status."""
    return main([str(a) for a in argv])


def fails(capsys: pytest.CaptureFixture, *argv: "str | Path") -> str:
    """``mer ARGV`` must fail with exactly one ``mer: error:`` line on stderr; that line."""
    capsys.readouterr()  # what earlier commands printed
    assert cli(*argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mer: error: "), err
    return err[0]


# -- schema and incremental indexing -----------------------------------------------------------

def test_schema_and_incremental_rerun(lib: Library, music: Path):
    c = lib.conn
    assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = c.execute("SELECT * FROM songs ORDER BY path LIMIT 1").fetchone()
    assert Path(row["path"]).is_absolute() and row["path"].endswith("clip00.wav")
    assert row["size"] == (music / "clip00.wav").stat().st_size and len(row["sha1"]) == 40
    assert row["model"] == "default" and row["weights_sha1"] and row["model_version"]
    assert row["dim"] == 200 and len(row["embedding"]) == 400  # float16
    assert len(row["curve"]) == 4 * int(round(row["duration"] * 2))  # (n, 2) float16 at 2 Hz
    assert abs(sum(row[f"p_q{i}"] for i in range(1, 5)) - 1) < 1e-3
    assert row["quadrant"] == quadrant(row["valence"], row["arousal"]).name
    assert json.loads(row["tags"])
    songs = lib.songs()
    assert len(songs) == 6
    assert {"id", "path", "duration", "valence", "arousal", "quadrant", "p_q1", "tags"} <= set(songs[0])
    assert lib.audio_path(songs[0]["id"]) == Path(songs[0]["path"])
    with pytest.raises(LibraryError, match="no song with id"):
        lib.audio_path(10**6)
    again = lib.index(music, workers=1, progress=False)
    assert again.predicted == 0 and again.unchanged == 6 and len(lib) == 6


def test_rename_recognised_changed_repredicted_and_prune(lib: Library, music: Path):
    before = {s["path"]: s for s in lib.songs()}
    old, new = music / "clip01.wav", music / "sub" / "renamed.wav"
    new.parent.mkdir()
    old.rename(new)
    stats = lib.index(music, workers=1, progress=False)
    assert stats.moved == 1 and stats.predicted == 0
    moved = {s["path"]: s for s in lib.songs()}[str(new.resolve())]
    assert moved["id"] == before[str(old.resolve())]["id"] and moved["valence"] == before[str(old.resolve())]["valence"]
    # same bytes, new mtime: only touched; different bytes: predicted again
    os.utime(music / "clip02.wav", ns=(1, 10**18))
    sf.write(music / "clip03.wav", synth.clip(0.9, 0.9, seconds=4.0, sr=SR, seed=99), SR)
    stats = lib.index(music, workers=1, progress=False)
    assert (stats.touched, stats.changed, stats.predicted) == (1, 1, 1)
    # another model's digest: everything predicted again
    lib.conn.execute("UPDATE songs SET weights_sha1='other'")
    assert lib.index(music, workers=1, progress=False).remodelled == 6
    (music / "clip04.wav").unlink()
    assert lib.index(music, workers=1, progress=False).pruned == 0 and len(lib) == 6  # kept without --prune
    stats = lib.index(music, workers=1, progress=False, prune=True)
    assert stats.pruned == 1 and len(lib) == 5


def test_failing_file_recorded_and_retried_only_on_request(lib: Library, music: Path):
    (music / "broken.mp3").write_text("not audio at all\n")
    stats = lib.index(music, workers=1, progress=False)
    assert stats.failed == 1 and "broken.mp3" in stats.errors[0]
    assert [f["path"] for f in lib.failures()] == [str((music / "broken.mp3").resolve())]
    stats = lib.index(music, workers=1, progress=False)
    assert stats.skipped_failed == 1 and stats.predicted == 0
    stats = lib.index(music, workers=1, progress=False, retry_failed=True)
    assert stats.retried == 1 and stats.failed == 1


def test_not_a_library_and_migration(tmp_path: Path):
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(LibraryError, match="no songs table"):
        Library(other).search_va(0, 0)
    with pytest.raises(LibraryError, match="mer index DIR --db"):
        Library(tmp_path / "missing.sqlite").songs()
    newer = tmp_path / "newer.sqlite"
    connect(newer, create=True).execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(LibraryError, match="upgrade mer"):
        connect(newer)


# -- robustness ----------------------------------------------------------------------------------

_RUN_INDEX = """
import sys
import mer.cli
sys.exit(mer.cli.main(["index", *sys.argv[1:]]))
"""


def _count(db: Path) -> int:
    try:
        c = sqlite3.connect(db, timeout=5)
        try:
            return c.execute("SELECT COUNT(*) FROM songs").fetchone()[0]
        finally:
            c.close()
    except sqlite3.Error:
        return 0


def test_kill_9_during_indexing_then_rerun(tmp_path: Path):
    files = write_clips(tmp_path / "many", 30, seconds=3.0)
    db = tmp_path / "kill.sqlite"
    argv = [sys.executable, "-c", _RUN_INDEX, str(tmp_path / "many"), "--db", str(db), "-q", "-j", "1"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not (db.exists() and _count(db) > 0):
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()[1].decode()
    os.kill(proc.pid, signal.SIGKILL)  # right after the first commit (20 files)
    proc.wait()
    kept = _count(db)
    assert 0 < kept < 30
    assert cli("index", tmp_path / "many", "--db", db, "-q", "-j", "1") == 0
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    paths = [r[0] for r in c.execute("SELECT path FROM songs")]
    assert sorted(paths) == sorted(str(f.resolve()) for f in files)  # each path once, all indexed


def test_second_writer_is_refused_while_one_indexes(tmp_path: Path, music: Path):
    """Two `mer index` runs on one database: the second stops with one line and writes nothing;
    the lock goes with its holder (the kill -9 test above reruns after a killed holder)."""
    from mer.io import file_lock

    db = tmp_path / "two.sqlite"
    with file_lock(str(db) + ".lock", "held by the test"):  # stands in for the first `mer index`
        with pytest.raises(MERError, match=r"another `mer index` is writing this library.*\(process \d+\)"):
            Library(db).index(music, workers=1, progress=False)
        proc = subprocess.run([sys.executable, "-m", "mer", "index", str(music), "--db", str(db), "-q"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and proc.stderr.count("\n") == 1 and "two.sqlite" in proc.stderr
        assert len(Library(db)) == 0
    assert Library(db).index(music, workers=1, progress=False).predicted == 6


def test_reader_works_while_indexing(tmp_path: Path):
    folder = tmp_path / "m"
    write_clips(folder, 12)
    db = tmp_path / "r.sqlite"
    Library(db).index(folder / "clip00.wav", workers=1, progress=False)
    errors, seen = [], []

    def work() -> None:
        try:
            with Library(db) as writer:
                writer.index(folder, workers=1, progress=False, commit_every=2)
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    with Library(db) as reader:
        while t.is_alive():
            found = reader.search_va(0.0, 0.0, k=50)
            seen.append(len(found))
            time.sleep(0.02)
        t.join()
        assert len(reader.search_va(0.0, 0.0, k=50)) == 12
    assert not errors and seen == sorted(seen) and len(seen) > 2


# -- search ----------------------------------------------------------------------------------------

def test_moods_table():
    assert len(MOODS) >= 30
    assert all(-1 <= v <= 1 and -1 <= a <= 1 for v, a in MOODS.values())
    expect = {"happy": "Q1", "excited": "Q1", "angry": "Q2", "tense": "Q2", "sad": "Q3", "depressed": "Q3",
              "calm": "Q4", "relaxed": "Q4"}
    assert all(quadrant(*MOODS[w]).name == q for w, q in expect.items())
    assert mood_point("Calm") == MOODS["calm"]
    with pytest.raises(LibraryError, match="known moods: .*calm"):
        mood_point("flibbertigibbet")


def test_search_by_va_mood_and_sound(lib: Library, tmp_path: Path):
    found = lib.search_va(0.6, -0.4, k=4)
    assert len(found) == 4 and [f["distance"] for f in found] == sorted(f["distance"] for f in found)
    v, a = MOODS["euphoric"]  # a word the mood-word head does not know: the lexicon's point
    assert lib.search_mood("euphoric", k=6) == lib.search_va(v, a, k=6)
    every = {s["id"]: s for s in lib.songs()}
    best = min(every.values(), key=lambda s: np.hypot(s["valence"] - v, s["arousal"] - a))
    assert lib.search_mood("euphoric", k=1)[0]["id"] == best["id"]
    # one of its words ("calm" is half of AllMusic's "calm/peaceful"): the songs by that probability
    assert "calm/peaceful" in lib.mood_words() and len(lib.mood_words()) == len(every[1]["moods"])
    found = lib.search_mood("calm", k=6)
    want = sorted(every.values(), key=lambda s: (-s["moods"]["calm/peaceful"], s["id"]))
    assert [f["id"] for f in found] == [s["id"] for s in want]
    assert [f["probability"] for f in found] == [s["moods"]["calm/peaceful"] for s in want]
    with pytest.raises(LibraryError, match="unknown mood"):
        lib.search_mood("nope")
    query = every[1]["path"]
    like = lib.search_like(query, k=10)
    assert len(like) == 5 and 1 not in [s["id"] for s in like]  # the query's own bytes are left out
    assert [s["similarity"] for s in like] == sorted((s["similarity"] for s in like), reverse=True)
    outside = tmp_path / "outside.wav"  # not indexed: predicted with the library's model
    sf.write(outside, synth.clip(0.3, 0.3, seconds=3.0, sr=SR, seed=123), SR)
    assert len(lib.search_like(outside, k=3)) == 3
    emb = np.frombuffer(lib.conn.execute("SELECT embedding FROM songs WHERE id=2").fetchone()[0], "<f2")
    top = lib.search_like(emb.astype(np.float32), k=1)[0]
    assert top["id"] == 2 and top["similarity"] > 0.999


# -- playlists ----------------------------------------------------------------------------------------

def fake_library(db: Path, n: int, seed: int = 0) -> None:
    """``n`` songs with random (valence, arousal), durations of 2-6 min and embeddings, without audio."""
    rng = np.random.default_rng(seed)
    conn = connect(db, create=True)
    va = rng.uniform(-0.9, 0.9, (n, 2))
    rows = [{"path": f"/music/artist{i % 7}/song{i}.mp3", "size": 1000 + i, "mtime_ns": 1, "sha1": f"{i:040x}",
             "duration": float(rng.uniform(120, 360)), "model": "default", "model_version": "2",
             "weights_sha1": "w", "valence": float(v), "arousal": float(a), "quadrant": quadrant(v, a).name,
             "embedding": f16_blob(rng.standard_normal(200)), "dim": 200,
             "artist": f"Artist {i % 7}" if i % 2 else None,
             "title": f"Song {i}" if i % 2 else None, "indexed_at": now()} for i, (v, a) in enumerate(va)]
    conn.execute("BEGIN")
    upsert_songs(conn, rows)
    conn.execute("COMMIT")
    conn.close()


def test_playlist_goes_from_mood_to_mood(tmp_path: Path):
    db = tmp_path / "fake.sqlite"
    fake_library(db, 500)
    with Library(db) as lib:
        songs = lib.playlist("tense", "relaxed", minutes=40)
    ids = [s["id"] for s in songs]
    assert len(ids) == len(set(ids)) > 5
    total = sum(s["duration"] for s in songs)
    assert abs(total - 2400) <= 180  # within half of the longest song
    a, b = np.array(MOODS["tense"]), np.array(MOODS["relaxed"])
    along = [float(np.dot(np.array([s["valence"], s["arousal"]]) - a, b - a) / np.dot(b - a, b - a)) for s in songs]
    assert np.corrcoef(along, np.arange(len(along)))[0, 1] > 0.95  # monotone-ish from start to end
    assert along[0] < 0.2 and along[-1] > 0.8
    assert all(np.hypot(s["valence"] - s["target_valence"], s["arousal"] - s["target_arousal"]) < 0.25 for s in songs)


def test_playlist_files(tmp_path: Path, capsys):
    db = tmp_path / "fake.sqlite"
    fake_library(db, 200)
    out = tmp_path / "lists" / "set.m3u8"
    assert cli("playlist", db, "--from", "sad", "--to", "happy", "--minutes", "20", "-o", out) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U" and len(lines) % 2 == 1
    for info, path in zip(lines[1::2], lines[2::2]):
        assert info.startswith("#EXTINF:") and int(info[8:].split(",")[0]) > 0
        assert not Path(path).is_absolute() and path.startswith("..")
        assert os.path.normpath(out.parent / path).startswith(os.sep + "music")
    assert any(" - Song " in line for line in lines[1::2])  # tags: "Artist - Title"
    assert any(",song" in line for line in lines[1::2])  # no tags: the file name
    assert cli("playlist", db, "--from", "sad", "--to", "happy", "--minutes", "20", "-o", out, "--absolute") == 0
    assert out.read_text().splitlines()[2].startswith("/music/")
    assert cli("playlist", db, "--from=-0.5,-0.5", "--to", "0.5,0.5", "-o", tmp_path / "set.csv") == 0
    rows = list(csv.DictReader(open(tmp_path / "set.csv")))
    assert rows and rows[0]["position"] == "1" and "target_valence" in rows[0]
    assert cli("playlist", db, "--from", "calm", "--to", "angry", "-o", tmp_path / "set.json") == 0
    data = json.loads((tmp_path / "set.json").read_text())
    assert data["from"] == "calm" and data["songs"][0]["position"] == 1
    assert "unknown playlist format" in fails(capsys, "playlist", db, "--from", "calm", "--to", "angry", "-o",
                                              tmp_path / "set.txt")


# -- the command line -------------------------------------------------------------------------------

def test_cli_end_to_end(tmp_path: Path, music: Path, capsys):
    db = tmp_path / "cli.sqlite"
    (music / "broken.wav").write_text("nope")
    assert cli("index", music, "--db", db, "-q", "-j", "1") == 1  # one file failed
    err = capsys.readouterr().err
    assert "broken.wav" in err and "7 predicted" in err and "1 failed" in err
    assert cli("index", music, "--db", db, "-q", "-j", "1") == 0
    assert "6 unchanged" in capsys.readouterr().err
    assert cli("search", db, "--mood", "calm", "-k", "3", "--format", "json") == 0  # "calm/peaceful"'s probability
    found = json.loads(capsys.readouterr().out)
    assert [f["rank"] for f in found] == [1, 2, 3] and "probability" in found[0]
    assert cli("search", db, "--va=-0.2,0.4", "--format", "csv") == 0
    assert capsys.readouterr().out.startswith("rank,id,path")
    assert cli("search", db, "--like", music / "clip00.wav", "-k", "2", "--format", "jsonl") == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert cli("search", db, "--mood", "happy") == 0  # a word of the default's mood-word head
    assert "probability" in capsys.readouterr().out.splitlines()[0]
    assert cli("search", db, "--mood", "euphoric") == 0  # not one of its words: the lexicon's point
    assert "distance" in capsys.readouterr().out.splitlines()[0]
    assert cli("playlist", db, "--from", "sad", "--to", "happy", "--minutes", "0.2") == 0
    assert "clip" in capsys.readouterr().out
    assert "no such library" in fails(capsys, "search", tmp_path / "none.sqlite", "--mood", "calm")
    assert re.search("valence,arousal|VALENCE,AROUSAL", fails(capsys, "search", db, "--va", "1,2,3"))


# -- real music ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_mood_search_on_4q_dev(shared, tmp_path: Path):
    root = shared("4q-dev")
    with Library(tmp_path / "4q.sqlite") as lib:
        stats = lib.index(root, progress=False)
        assert stats.failed == 0 and stats.predicted >= 600
        shares = {}
        for word, want in (("calm", "Q4"), ("angry", "Q2")):
            found = lib.search_mood(word, k=20)
            shares[word] = sum(Path(s["path"]).parent.name == want for s in found) / len(found)
    print(f"top-20 shares: calm -> Q4 {shares['calm']:.0%}, angry -> Q2 {shares['angry']:.0%}")
    assert shares["calm"] >= 0.6 and shares["angry"] >= 0.6


def test_summary_line_says_how_many_were_indexed_when_some_failed():
    from mer.cli.index import summary
    from mer.library.indexer import IndexStats

    line = summary(IndexStats(found=6, predicted=6, new=6, failed=4, seconds=2.0))
    assert line.startswith("index: 6 files, 6 predicted (6 new), 2 indexed, ") and "4 failed" in line
    assert "indexed" not in summary(IndexStats(found=2, predicted=2, new=2, seconds=1.0))  # all in: no repetition


def test_random_bytes_in_the_middle_of_a_library_are_one_line(tmp_path: Path, music: Path, capsys):
    db = tmp_path / "music.sqlite"
    with Library(db) as lib:
        lib.index(music, workers=1, progress=False)
    data = bytearray(db.read_bytes())
    middle = slice(4096, len(data) - 4096)  # every page but the first and the last: the header still says SQLite
    data[middle] = np.random.default_rng(0).integers(0, 256, middle.stop - middle.start, dtype=np.uint8).tobytes()
    db.write_bytes(bytes(data))
    messages = [fails(capsys, "search", db, "--va", "0,0").removeprefix("mer: error: "),
                fails(capsys, "index", music, "--db", db).removeprefix("mer: error: ")]
    with pytest.raises(LibraryError) as caught:
        Library(db).songs()
    for message in [*messages, str(caught.value)]:
        assert message.startswith(f"{db}: is not a mer library or is corrupt") and "\n" not in message
        assert "restore it" in message and "index again into a new file" in message


def test_a_library_indexed_before_mood_words_says_to_index_again(lib: Library):
    from mer.errors import MERWarning

    with lib.conn:
        lib.conn.execute("UPDATE songs SET moods = NULL")  # as an older mer left it (schema 1 had no column)
    assert lib.mood_words() == []
    with pytest.warns(MERWarning, match="indexed without mood words.*Index again"):
        found = lib.search_mood("happy", k=3)
    assert "distance" in found[0]  # placed by its valence/arousal meanwhile
    assert lib.mood_point("happy") == MOODS["happy"]


def test_a_schema_1_library_gains_the_moods_column_and_keeps_its_songs(tmp_path: Path):
    import sqlite3

    from mer.library.store import MIGRATIONS

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[1])
    conn.execute("INSERT INTO songs (path, size, mtime_ns, sha1, duration, model, model_version, weights_sha1, "
                 "valence, arousal, quadrant, indexed_at) VALUES ('/m/a.wav', 1, 1, 'x', 30, 'default', '2', 'y', "
                 "0.5, 0.5, 'Q1', 'now')")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with Library(path) as lib:
        (song,) = lib.songs()
        assert song["path"] == "/m/a.wav" and song["moods"] == {}
        assert lib.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
