"""``mer index --ray``: prediction on a local Ray instance (``ray.init(num_cpus=2)``) gives the
same library as a single-machine run, an interrupted run's shards are merged instead of
redone, stale shard rows are dropped, failures are recorded, and a missing extra is one line."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mer.errors import ConfigError
from mer.library import Library
from mer.library import cluster
from mer.library.store import SONG_COLUMNS

pytestmark = pytest.mark.slow
COMPARED = [c for c in SONG_COLUMNS if c != "indexed_at"]


@pytest.fixture(scope="module")
def ray_local():  # noqa: ANN201
    import ray  # the test extra installs it: a missing ray fails here rather than skipping
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight real 30 s 4Q clips (two per quadrant), copied so their mtimes are ours."""
    src = Path(__file__).resolve().parents[2] / "shared" / "data" / "4q-dev"
    if not src.is_dir():
        pytest.skip(f"real data not present at {src} (it lives beside the repo in ../shared/data)")
    out = tmp_path_factory.mktemp("clips")
    for q in ("Q1", "Q2", "Q3", "Q4"):
        for p in sorted((src / q).glob("*.mp3"))[:2]:
            shutil.copy2(p, out / p.name)
    return out


@pytest.fixture(scope="module")
def single(clips: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """The single-machine library of the clips: path -> the compared columns."""
    db = tmp_path_factory.mktemp("single") / "single.sqlite"
    with Library(db) as lib:
        stats = lib.index(clips, workers=2, progress=False)
    assert stats.predicted == 8 and stats.failed == 0
    return rows(db)


def rows(db: Path) -> dict[str, tuple]:
    with sqlite3.connect(db) as conn:
        return {r[0]: r for r in conn.execute(f"SELECT {', '.join(COMPARED)} FROM songs")}


def test_ray_index_equals_single_machine_and_reruns_incrementally(ray_local, clips: Path, single: dict,
                                                                  tmp_path: Path):
    db = tmp_path / "ray.sqlite"
    with Library(db) as lib:
        stats = lib.index(clips, ray="auto", workers=2, shard_files=3, progress=False)
        assert (stats.predicted, stats.failed, stats.resumed) == (8, 0, 0)
        assert stats.audio_seconds > 8 * 25
        again = lib.index(clips, ray="auto", progress=False)
        assert (again.predicted, again.unchanged) == (0, 8)
    assert rows(db) == single  # every column, bit for bit: curves, embeddings, probabilities
    assert not (tmp_path / "ray.sqlite.shards").exists(), "merged shards are deleted, then their folder"


def test_interrupted_run_shards_are_merged_not_redone(ray_local, clips: Path, single: dict, tmp_path: Path):
    """A run killed after its workers wrote shards, before the driver merged them: the rerun
    merges those shards (their files are not predicted again) and predicts the rest."""
    db = tmp_path / "lib.sqlite"
    folder = cluster.shard_dir(db)
    first = sorted(single)[:3]
    cluster.write_shard(folder, [dict(zip(COMPARED, single[p]), indexed_at="2026-01-01T00:00:00+00:00")
                                 for p in first])
    stale = sorted(single)[3]  # a shard row whose file changed since: dropped, predicted again
    cluster.write_shard(folder, [{**dict(zip(COMPARED, single[stale])), "mtime_ns": 1}])
    temp = folder / ".tmp-123-shard-x.parquet"
    temp.write_bytes(b"half a shard")  # a killed worker's temporary, two hours old
    os.utime(temp, (time.time() - 7200, time.time() - 7200))
    with Library(db) as lib:
        stats = lib.index(clips, ray="auto", workers=2, shard_files=4, progress=False)
    assert (stats.resumed, stats.resumed_failed, stats.unchanged, stats.predicted, stats.failed) == (3, 0, 3, 5, 0)
    assert rows(db) == single
    assert not folder.exists(), "merged shards and the old temporary are gone, then their folder"


def test_an_old_shard_never_replaces_newer_work_and_plain_runs_merge_shards(clips: Path, single: dict,
                                                                          tmp_path: Path):
    """Shards left by an interrupted Ray run are merged by the next run, with or without --ray;
    a shard row older than the library's own result for that file (here an old failure against
    a good row made since) is dropped."""
    db = tmp_path / "lib.sqlite"
    folder = cluster.shard_dir(db)
    paths = sorted(single)
    with Library(db) as lib:
        lib.index([paths[0]], workers=1, progress=False)  # a good row for the first file, made now
        old = cluster.write_shard(folder, [{"path": paths[0], "size": single[paths[0]][1],
                                            "mtime_ns": single[paths[0]][2], "error": f"{paths[0]}: old failure"}])
        os.utime(old, (time.time() - 3600, time.time() - 3600))  # written an hour ago
        cluster.write_shard(folder, [dict(zip(COMPARED, single[p]), indexed_at="2026-01-01T00:00:00+00:00")
                                     for p in paths[1:3]])
        stats = lib.index(clips, workers=2, progress=False)  # a plain run
        assert (stats.resumed, stats.resumed_failed, stats.unchanged, stats.predicted) == (2, 0, 3, 5)
        assert lib.failures() == [] and stats.errors == []
    assert rows(db) == single and not folder.exists()


def test_shard_folder_problems_are_one_line(ray_local, clips: Path, tmp_path: Path):
    from mer.errors import MERError
    from mer.io import run_lock

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with Library(tmp_path / "a.sqlite") as lib:
        with pytest.raises(ConfigError, match=r"a-file/shards: cannot write shards there .*--shards DIR"):
            lib.index(clips, ray="auto", shards=blocker / "shards", progress=False)
        shared_folder = tmp_path / "shared-shards"
        with run_lock(shared_folder, "shard"):  # another library's run using the same --shards folder
            with pytest.raises(MERError, match="another process is using this shard folder"):
                lib.index(clips, ray="auto", shards=shared_folder, progress=False)
        assert len(lib) == 0


def test_failed_files_are_recorded_with_their_error(ray_local, clips: Path, tmp_path: Path):
    music = tmp_path / "music"
    music.mkdir()
    shutil.copy2(sorted(clips.glob("*.mp3"))[0], music / "good.mp3")
    (music / "broken.mp3").write_bytes(b"ID3" + b"\0" * 2000)
    with Library(tmp_path / "lib.sqlite") as lib:
        stats = lib.index(music, ray="auto", progress=False)
        assert (stats.predicted, stats.failed) == (2, 1)
        [failure] = lib.failures()
        assert failure["path"].endswith("broken.mp3") and "broken.mp3" in failure["error"]
        assert "\n" not in failure["error"]
        assert [s["path"].endswith("good.mp3") for s in lib.songs()] == [True]
        again = lib.index(music, ray="auto", progress=False)
        assert (again.predicted, again.skipped_failed) == (0, 1)


def test_missing_ray_extra_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'mer-toolkit\[ray\]'"):
        cluster.connect("local")


def test_cli_ray_flag(ray_local, clips: Path, tmp_path: Path):
    """`mer index --ray local|auto` in its own process: starts Ray, indexes, shuts Ray down."""
    db = tmp_path / "cli.sqlite"
    one = sorted(clips.glob("*.mp3"))[:2]
    music = tmp_path / "music"
    music.mkdir()
    for p in one:
        shutil.copy2(p, music / p.name)
    out = subprocess.run([sys.executable, "-m", "mer", "index", str(music), "--db", str(db), "--ray", "local",
                          "-j", "1", "-q"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "index: 2 files, 2 predicted (2 new)" in out.stderr
    # auto with a recorded cluster that is gone (a dead RAY_ADDRESS): a local Ray, at once
    music.joinpath("third.mp3").write_bytes(sorted(clips.glob("*.mp3"))[2].read_bytes())
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "mer", "index", str(music), "--db", str(db), "--ray", "auto",
                          "-j", "1", "-q"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "RAY_ADDRESS": f"127.0.0.1:{free_port()}"})
    assert out.returncode == 0 and "1 predicted (1 new), 2 unchanged" in out.stderr, out.stderr[-2000:]
    assert time.monotonic() - t0 < 90  # Ray's own "auto" retried the dead address for minutes
    with Library(db) as lib:
        assert len(lib) == 3


def test_kill_9_of_the_driver_then_rerun(clips: Path, tmp_path: Path):
    """kill -9 of `mer index --ray` once its first shard is merged: the rerun merges the shards
    the workers had written (none is predicted twice), predicts the rest, and the database
    holds every file once."""
    music = tmp_path / "music"
    music.mkdir()
    for i in range(3):  # 24 files: three copies of the 8 clips, each a distinct file
        for p in clips.glob("*.mp3"):
            shutil.copy2(p, music / f"{i}-{p.name}")
            (music / f"{i}-{p.name}").write_bytes((music / f"{i}-{p.name}").read_bytes() + bytes([i]))
    db = tmp_path / "kill.sqlite"
    argv = [sys.executable, "-m", "mer", "index", str(music), "--db", str(db), "--ray", "local", "-j", "2",
            "--shard-files", "2", "-q"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None and count(db) == 0:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    proc.kill()
    proc.wait()
    kept = count(db)
    assert 0 < kept < 24
    time.sleep(2)  # let the dead run's in-flight shards land
    waiting = sum(len(cluster.read_shard(p)) for p in cluster.pending_shards(cluster.shard_dir(db)))
    with Library(db) as lib:
        stats = lib.index(music, ray="local", workers=2, progress=False)
        # every row of the shards the dead run's workers wrote is merged, none predicted again;
        # their files then count as unchanged too
        assert stats.resumed == waiting and stats.resumed_failed == 0 and stats.failed == 0
        assert stats.unchanged == kept + waiting and stats.predicted + stats.unchanged == 24
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        paths = [r[0] for r in conn.execute("SELECT path FROM songs")]
    assert sorted(paths) == sorted(str(p.resolve()) for p in music.glob("*.mp3"))


def count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM songs").fetchone()[0])
    except sqlite3.Error:
        return 0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_joining_a_running_cluster_by_address_and_through_ray_client(clips: Path, single: dict, tmp_path: Path):
    """A head started apart (`ray start --head --block`, as on a cluster's head node), joined by
    its GCS address and through Ray Client (ray://, where the pipeline runs in a task on the
    cluster); both libraries equal the single-machine one. Token authentication is off on this
    test cluster (RAY_AUTH_MODE=disabled on both sides); real clusters pass RAY_AUTH_TOKEN."""
    gcs, client = free_port(), free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    ray_cli = str(Path(sys.executable).with_name("ray"))
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", f"--port={gcs}", f"--ray-client-server-port={client}",
                             "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for address in (f"127.0.0.1:{gcs}", f"ray://127.0.0.1:{client}"):
            db = tmp_path / f"{address.split(':')[0]}.sqlite"
            deadline = time.monotonic() + 120
            while True:  # the head takes a few seconds to listen, its client server longer on a busy machine
                out = subprocess.run([sys.executable, "-m", "mer", "index", str(clips), "--db", str(db), "--ray", address,
                                      "--shard-files", "3", "-q"], capture_output=True, text=True, env=env, timeout=300)
                starting = "nothing answers" in out.stderr or "Initialization failure from server" in out.stderr
                if out.returncode == 0 or not starting or time.monotonic() > deadline:
                    break
                time.sleep(2)
            assert out.returncode == 0, out.stderr[-3000:]
            assert "index: 8 files, 8 predicted (8 new)" in out.stderr, out.stderr[-2000:]
            assert rows(db) == single, address
    finally:
        os.killpg(head.pid, 15)  # --block: stopping it stops the head's Ray processes
        head.wait(timeout=60)


def test_a_file_that_kills_its_worker_ends_the_run_in_one_line_and_is_recorded(clips: Path, tmp_path: Path,
                                                                                kill_on):
    """A worker process dying on a file (out of memory, a decoder crash; here os._exit through
    the conftest.kill_on stand-in) is not retried for ever: the run stops with one error line that
    names the file, which is recorded as failed; the rerun merges what the workers wrote and
    finishes the rest."""
    db = tmp_path / "kill.sqlite"
    victim = str(sorted(clips.glob("*.mp3"))[5].resolve())
    argv = [sys.executable, "-m", "mer", "index", str(clips), "--db", str(db), "--ray", "local", "-j", "2",
            "--shard-files", "2", "-q"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=kill_on(victim))
    assert out.returncode == 1, out.stderr[-2000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("mer: error:")]
    assert len(errors) == 1 and f"recorded as failed: {victim}" in errors[0], out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    kill_on.stop()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "1 skipped (failed before; --retry-failed)" in again.stderr
    with Library(db) as lib:
        assert len(lib) == 7 and [f["path"] for f in lib.failures()] == [victim]
        assert "the Ray worker predicting it died" in lib.failures()[0]["error"]
    assert not cluster.shard_dir(db).exists()
