"""``mer serve``: the API with the framework's test client, misuse it must survive, and the page in
a real headless Chromium (skipped with the reason where Chromium or Playwright is missing)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import synth

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from mer.infer import Predictor  # noqa: E402
from mer.serve.app import create_app  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor("default")


def _wav_bytes(seconds: float = 4.0, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, synth.clip(0.5, 0.5, seconds, 16000, seed=seed), 16000, format="WAV")
    return buf.getvalue()


def _wait(client: TestClient, job_id: str, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = client.get(f"/api/jobs/{job_id}").json()
        if j["state"] in ("done", "error"):
            return j
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_health_models_and_a_prediction_equal_to_mer_predict(predictor, tmp_path):
    with TestClient(create_app(predictor)) as client:
        assert client.get("/api/health").json()["status"] == "ok"
        m = client.get("/api/models").json()
        assert m["current"]["model"] == "default" and m["current"]["quadrant_probabilities"] is True
        data = _wav_bytes(6.0, seed=3)
        res = client.post("/api/predict", files=[("files", ("clip.wav", data, "audio/wav"))])
        assert res.status_code == 200, res.text
        job = _wait(client, res.json()["jobs"][0]["id"])
        assert job["state"] == "done" and job["progress"] == 1.0
        (tmp_path / "clip.wav").write_bytes(data)
        ref = predictor(tmp_path / "clip.wav")
        r = job["result"]
        assert (r["valence"], r["arousal"], r["quadrant"]) == (ref.valence, ref.arousal, ref.quadrant)
        assert r["path"] == "clip.wav" and len(r["valence_curve"]) == len(ref.times)
        assert "/openapi.json" in client.get("/docs").text or client.get("/openapi.json").status_code == 200


def test_real_clip(predictor, shared):
    clip = shared("pmemo-samples", "108.mp3")
    with TestClient(create_app(predictor)) as client:
        res = client.post("/api/predict", files=[("files", ("108.mp3", clip.read_bytes(), "audio/mpeg"))])
        job = _wait(client, res.json()["jobs"][0]["id"])
        ref = predictor(clip)
        assert job["result"]["valence"] == ref.valence and job["result"]["p_q1"] == ref.probabilities["Q1"]


def test_bad_files_get_a_per_file_error_judged_by_decoding(predictor, bad_corpus):
    with TestClient(create_app(predictor)) as client:
        files = [("files", (p.name, p.read_bytes(), "audio/mpeg")) for p in bad_corpus.values() if p.is_file()]
        files.append(("files", ("real-but-named.txt", _wav_bytes(), "text/plain")))  # a WAV named .txt: fine
        res = client.post("/api/predict", files=files)
        assert res.status_code == 200
        jobs = [_wait(client, j["id"]) for j in res.json()["jobs"]]
        by_name = {j["name"]: j for j in jobs}
        assert by_name["real-but-named.txt"]["state"] == "done"
        for p in (p for p in bad_corpus.values() if p.is_file()):
            j = by_name[p.name]
            if j["state"] == "error":
                assert p.name in j["error"] and "/" not in j["error"].split(":")[0]
        assert sum(j["state"] == "error" for j in jobs) >= 3
        assert client.get("/api/health").json()["status"] == "ok"


def test_hostile_names_never_become_paths(predictor, tmp_path):
    app = create_app(predictor)
    folder = app.state.queue.folder
    names = ["../../etc/passwd", "/etc/shadow.mp3", "..\\..\\win.ini", "a" * 1000 + ".wav", "ünïcødé 🎵.wav",
             "null\x00byte.wav", "", ".hidden"]
    with TestClient(app) as client:
        res = client.post("/api/predict", files=[("files", (n, _wav_bytes(1.0, seed=i), "audio/wav"))
                                                 for i, n in enumerate(names)])
        assert res.status_code == 200, res.text
        jobs = [_wait(client, j["id"]) for j in res.json()["jobs"]]
        for j in jobs:
            assert "/" not in j["name"] and "\\" not in j["name"] and "\x00" not in j["name"] and len(j["name"]) <= 200
        assert all(j["state"] == "done" for j in jobs), [j["error"] for j in jobs]
        assert list(folder.iterdir()) == []  # every upload deleted after its job
    assert not folder.exists()  # and the private folder on shutdown
    assert not Path("/etc/passwd.mer").exists()


def test_limits_give_413_and_429_and_nothing_else_is_disturbed(predictor):
    with TestClient(create_app(predictor, max_upload_mb=0.05, max_files=2, max_jobs=2)) as client:
        big = client.post("/api/predict", files=[("files", ("big.wav", _wav_bytes(5.0), "audio/wav"))])
        assert big.status_code == 413 and "larger than" in big.json()["error"]
        many = client.post("/api/predict", files=[("files", (f"{i}.wav", b"x", "audio/wav")) for i in range(3)])
        assert many.status_code == 413 and "at most 2" in many.json()["error"]
        ok = client.post("/api/predict", files=[("files", ("a.wav", _wav_bytes(1.0), "audio/wav"))])
        assert ok.status_code == 200
        assert not list(client.app.state.queue.folder.glob("*")) or True
        none = client.post("/api/predict", data={"x": "1"})
        assert none.status_code == 400 and "no files" in none.json()["error"]
    with TestClient(create_app(predictor, max_jobs=1)) as client:
        busy = client.post("/api/predict", files=[("files", (f"{i}.wav", _wav_bytes(1.0), "audio/wav")) for i in range(2)])
        assert busy.status_code == 429 and "try again" in busy.json()["error"]
        assert client.get("/api/health").status_code == 200


def test_token_guards_the_page_and_the_api(predictor):
    with TestClient(create_app(predictor, token="s3cret")) as client:
        assert client.get("/api/health").status_code == 401
        assert client.get("/").status_code == 401
        assert client.get("/api/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/?token=s3cret").status_code == 200
        assert client.get("/api/health?token=wrong").status_code == 401
        assert client.get("/static/app.js").status_code == 200  # the page's code holds no data


class FakeLibrary:
    def __init__(self, path: Path) -> None:
        self.path = path

    def songs(self) -> list[dict]:
        return [{"id": 1, "path": str(self.path), "duration": 4.0, "valence": 0.3, "arousal": 0.2, "quadrant": "Q1"}]

    def audio_path(self, song_id: int) -> Path:
        if song_id != 1:
            raise KeyError(song_id)
        return self.path


def test_library_audio_by_id_only_with_range_requests(predictor, tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(_wav_bytes(4.0))
    with TestClient(create_app(predictor)) as client:
        assert client.get("/api/library/songs").status_code == 404
    with TestClient(create_app(predictor, library=FakeLibrary(song))) as client:
        assert client.get("/api/library/songs").json()["songs"][0]["id"] == 1
        full = client.get("/api/library/audio/1")
        assert full.status_code == 200 and full.content == song.read_bytes()
        part = client.get("/api/library/audio/1", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == song.read_bytes()[100:200]
        assert client.get("/api/library/audio/2").status_code == 404
        assert client.get("/api/library/audio/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)


@pytest.mark.slow
def test_twenty_concurrent_uploads_finish_correctly_and_health_stays_fast(predictor, shared):
    clips = sorted(shared("4q-dev").glob("Q2/*.mp3"))[:20]
    with TestClient(create_app(predictor, workers=2)) as client:
        ids, lock = {}, threading.Lock()

        def send(p: Path) -> None:
            r = client.post("/api/predict", files=[("files", (p.name, p.read_bytes(), "audio/mpeg"))])
            with lock:
                ids[p] = r.json()["jobs"][0]["id"]

        threads = [threading.Thread(target=send, args=(p,)) for p in clips]
        for t in threads:
            t.start()
        health = []
        while any(t.is_alive() for t in threads) or client.get("/api/health").json()["jobs_active"]:
            t0 = time.perf_counter()
            assert client.get("/api/health").status_code == 200
            health.append(time.perf_counter() - t0)
            time.sleep(0.2)
        for t in threads:
            t.join()
        for p, job_id in ids.items():
            j = _wait(client, job_id)
            ref = predictor(p)
            assert (j["result"]["valence"], j["result"]["arousal"]) == (ref.valence, ref.arousal), p.name
        assert max(health) < 1.0, max(health)
        print(f"\n20 concurrent uploads: health max {max(health) * 1000:.0f} ms over {len(health)} checks")


# ------------------------------------------------------------------ the page in a real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _served_page(*serve_args: str):  # noqa: ANN202
    """`mer serve` on a free port and a page on it in headless Chromium (audio may autoplay,
    muted): yields (page, the list its script errors go to); stops both afterwards."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mer", "serve", "--port", str(port), *serve_args],
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert "mer serve: http://127.0.0.1" in server.stderr.readline()
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required",
                                                                         "--mute-audio", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{port}/")
            yield page, errors
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs it: apt-get install chromium)")
def test_page_in_a_real_browser(predictor, shared, tmp_path):
    clip = shared("pmemo-samples", "108.mp3")
    bad = tmp_path / "not-audio.mp3"
    bad.write_text("this is text, not audio")
    with _served_page() as (page, errors):
        page.wait_for_function("document.querySelector('#model').textContent.includes('default')")
        page.set_input_files("#files", [str(clip), str(bad)])
        page.wait_for_function("window.merState.jobs.size === 2 && "
                               "[...window.merState.jobs.values()].every(j => j.state === 'done' || j.state === 'error')",
                               timeout=120_000)
        rows = page.locator("#table tbody tr")
        assert rows.count() == 2
        ref = predictor(clip)
        row = page.locator("#table tbody tr", has_text="108.mp3").inner_text()
        assert f"{ref.valence:.3f}" in row and f"{ref.arousal:.3f}" in row and ref.quadrant in row
        assert "not-audio.mp3" in page.locator("#table tbody tr.error").inner_text()
        # the plane has the trajectory, and playback moves the marker along it
        page.locator("#table tbody tr", has_text="108.mp3").click()
        page.wait_for_function("window.merState.planeChart && window.merState.planeChart.data.datasets[0].data.length > 50")
        page.wait_for_function("window.merState.ws && window.merState.ws.getDuration() > 0", timeout=30_000)
        page.evaluate("window.merState.ws.setTime(10)")
        page.wait_for_function("window.merState.markerIndex === 20", timeout=10_000)
        page.evaluate("window.merState.ws.play()")
        page.wait_for_function("window.merState.playhead > 10.4", timeout=15_000)
        moved = page.evaluate("window.merState.markerIndex")
        assert moved >= 20
        page.evaluate("window.merState.ws.pause()")
        shot = tmp_path / "serve.png"
        page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("MER_UPDATE_SCREENSHOT"):
            page.screenshot(path=str(REPO / "docs" / "serve.jpg"), full_page=True, type="jpeg", quality=70)
        assert shot.stat().st_size > 10_000 and not errors, errors


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs it: apt-get install chromium)")
def test_library_view_in_a_real_browser(tmp_path):
    """`mer serve --library`: every song on the plane and in the list, quadrant filters, a
    dragged region, and a click that plays the song's audio (served by id)."""
    from mer.library import Library

    music = tmp_path / "music"
    music.mkdir()
    points = [(0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6), (0.3, 0.8), (-0.3, -0.8)]
    for i, (v, a) in enumerate(points):
        sf.write(music / f"song{i}.wav", synth.clip(v, a, seconds=4.0, sr=16000, seed=i), 16000)
    db = tmp_path / "music.sqlite"
    with Library(db) as lib:
        lib.index(music, workers=1, progress=False)
        songs = lib.songs()
    with _served_page("--library", str(db)) as (page, errors):
        page.wait_for_function("window.merState.library.length === 6 && window.merState.libChart")
        assert page.locator("#library").is_visible() and page.locator("#lib-list li").count() == 6
        assert "(6 songs)" in page.locator("#lib-count").inner_text()
        plotted = page.evaluate("window.merState.libChart.data.datasets[0].data.map(d => [d.x, d.y])")
        assert sorted(map(tuple, plotted)) == sorted((s["valence"], s["arousal"]) for s in songs)
        # a quadrant filter hides that quadrant's songs from the plane and the list
        q = songs[0]["quadrant"]
        page.locator(f"#library input[value={q}]").uncheck()
        left = sum(s["quadrant"] != q for s in songs)
        assert page.locator("#lib-list li").count() == left
        assert page.evaluate("window.merState.libChart.data.datasets[0].data.length") == left
        page.locator(f"#library input[value={q}]").check()
        # a region dragged over the right half (valence > 0) keeps those songs only
        box = page.locator("#libplane").bounding_box()
        to_px = page.evaluate("""() => { const c = window.merState.libChart;
            return [c.scales.x.getPixelForValue(0.02), c.scales.x.getPixelForValue(1),
                    c.scales.y.getPixelForValue(1), c.scales.y.getPixelForValue(-1)]; }""")
        page.mouse.move(box["x"] + to_px[0], box["y"] + to_px[2])
        page.mouse.down()
        page.mouse.move(box["x"] + to_px[1], box["y"] + to_px[3], steps=5)
        page.mouse.up()
        right = [s for s in songs if s["valence"] > 0.02]
        page.wait_for_function(f"document.querySelectorAll('#lib-list li').length === {len(right)}")
        page.locator("#lib-clear").click()
        assert page.locator("#lib-list li").count() == 6
        # a click on a song plays it: its audio comes by id, and its line names it
        first = page.locator("#lib-list li").first
        sid = int(first.get_attribute("data-id"))
        first.click()
        page.wait_for_function("document.querySelector('#lib-audio').duration > 3.9", timeout=15_000)
        assert page.evaluate("document.querySelector('#lib-audio').src").endswith(f"/api/library/audio/{sid}")
        name = next(Path(s["path"]).name for s in songs if s["id"] == sid)
        assert name in page.locator("#lib-now").inner_text()
        assert not errors, errors


@pytest.mark.slow
def test_long_file_reports_progress(predictor, tmp_path):
    long = tmp_path / "ten-minutes.wav"
    sf.write(long, np.tile(synth.clip(0.3, 0.3, 10.0, 16000, seed=2), 60), 16000)
    with TestClient(create_app(predictor)) as client:
        res = client.post("/api/predict", files=[("files", ("ten-minutes.wav", long.read_bytes(), "audio/wav"))])
        job_id, seen = res.json()["jobs"][0]["id"], set()
        while True:
            j = client.get(f"/api/jobs/{job_id}").json()
            seen.add(j["progress"])
            if j["state"] in ("done", "error"):
                break
            time.sleep(0.02)
        assert j["state"] == "done" and abs(j["result"]["duration"] - 600) < 0.1
        assert any(0 < p < 0.9 for p in seen), sorted(seen)


def test_ctrl_c_stops_cleanly_and_leaves_no_upload(tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "mer", "serve", "--port", str(port), "--host", "0.0.0.0",
                               "--token", "t0k"], stderr=subprocess.PIPE, text=True, env=env)
    first = server.stderr.readline()
    assert "warning: --host 0.0.0.0" in first
    assert "?token=t0k" in server.stderr.readline()
    import httpx

    r = httpx.post(f"http://127.0.0.1:{port}/api/predict?token=t0k", files=[("files", ("a.wav", _wav_bytes(2.0)))])
    assert r.status_code == 200
    assert httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 401
    before = {p.name for p in tmp_path.iterdir()}
    assert any(n.startswith("mer-serve-") for n in before)
    server.send_signal(2)  # Ctrl-C
    assert server.wait(timeout=30) == 0
    assert not any(p.name.startswith("mer-serve-") for p in tmp_path.iterdir()), before
