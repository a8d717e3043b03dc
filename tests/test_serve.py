"""``mer serve``: the API with the framework's test client, misuse it must survive, and the page in
a real headless Chromium (skipped with the reason where Chromium or Playwright is missing)."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import CHROMIUM  # one place says whether the browser tests run

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


def _client(app, **kw) -> TestClient:
    """The framework's test client, asking for the server by a name it answers to."""
    return TestClient(app, base_url="http://127.0.0.1:8000", **kw)


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
    with _client(create_app(predictor)) as client:
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
    with _client(create_app(predictor)) as client:
        res = client.post("/api/predict", files=[("files", ("108.mp3", clip.read_bytes(), "audio/mpeg"))])
        job = _wait(client, res.json()["jobs"][0]["id"])
        ref = predictor(clip)
        assert job["result"]["valence"] == ref.valence and job["result"]["p_q1"] == ref.probabilities["Q1"]


def test_bad_files_get_a_per_file_error_judged_by_decoding(predictor, bad_corpus):
    with _client(create_app(predictor)) as client:
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
    with _client(app) as client:
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
    with _client(create_app(predictor, max_upload_mb=0.05, max_files=2, max_jobs=2)) as client:
        big = client.post("/api/predict", files=[("files", ("big.wav", _wav_bytes(5.0), "audio/wav"))])
        assert big.status_code == 413 and "larger than" in big.json()["error"]
        many = client.post("/api/predict", files=[("files", (f"{i}.wav", b"x", "audio/wav")) for i in range(3)])
        assert many.status_code == 413 and "at most 2" in many.json()["error"]
        assert not list(client.app.state.queue.folder.glob("*"))  # nothing of the refused uploads was kept
        ok = client.post("/api/predict", files=[("files", ("a.wav", _wav_bytes(1.0), "audio/wav"))])
        assert ok.status_code == 200
        none = client.post("/api/predict", data={"x": "1"})
        assert none.status_code == 400 and "no files" in none.json()["error"]
    with _client(create_app(predictor, max_jobs=1)) as client:
        busy = client.post("/api/predict", files=[("files", (f"{i}.wav", _wav_bytes(1.0), "audio/wav")) for i in range(2)])
        assert busy.status_code == 429 and "try again" in busy.json()["error"]
        assert client.get("/api/health").status_code == 200


def test_token_guards_the_page_and_the_api(predictor):
    with _client(create_app(predictor, token="s3cret")) as client:
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
    with _client(create_app(predictor)) as client:
        assert client.get("/api/library/songs").status_code == 404
    with _client(create_app(predictor, library=FakeLibrary(song))) as client:
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
    with _client(create_app(predictor, workers=2)) as client:
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(page, expression: str, timeout: float = 30_000) -> None:  # noqa: ANN001
    """Wait until ``expression`` is true in the page. Playwright's ``wait_for_function`` evaluates
    its string with eval inside the page, which the page's Content-Security-Policy forbids (as it
    should); ``page.evaluate`` goes through the DevTools protocol, outside the policy."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout / 1000:g} s: {expression}")
        time.sleep(0.05)


DESKTOP, PHONE = (1280, 800), (390, 844)  # the viewports the page is checked at (a phone: an iPhone 12-15's)


@contextlib.contextmanager
def _served_page(*serve_args: str, viewport: tuple[int, int] = DESKTOP):  # noqa: ANN202
    """`mer serve` on a free port and a page on it in headless Chromium (audio may autoplay,
    muted): yields (page, errors, open_page); stops all afterwards. ``errors`` gathers every page
    of this server's script errors, console errors (a 404, the favicon's included) and policy
    violations; ``open_page((width, height))`` opens one more page, at that viewport."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mer", "serve", "--port", str(port), *serve_args],
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert "mer serve: http://127.0.0.1" in server.stderr.readline()
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required",
                                                                         "--mute-audio", "--no-sandbox"])
            errors: list[str] = []

            def open_page(size: tuple[int, int]):  # noqa: ANN202
                page = browser.new_page(viewport={"width": size[0], "height": size[1]})
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error"
                        or "Content Security Policy" in m.text else None)
                page.goto(f"http://127.0.0.1:{port}/")
                return page

            yield open_page(viewport), errors, open_page
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def _screenshot(page, path: Path, **kw) -> None:  # noqa: ANN001
    """The whole page as one picture. Playwright's ``full_page`` grows the viewport while it shoots,
    which drops the scroll bar and makes every chart resize mid-shot; so the viewport is grown
    first, the charts settle, the shot is taken and the viewport put back."""
    size = page.viewport_size
    page.mouse.move(0, 0)  # no row lit by the pointer
    page.set_viewport_size({"width": size["width"], "height": page.evaluate("document.documentElement.scrollHeight")})
    time.sleep(0.5)
    page.screenshot(path=str(path), **kw)
    page.set_viewport_size(size)


#: what the page must hold at every width: no sideways scrolling of the document, an over-time
#: chart tall enough to read, and quadrant labels and error texts that fit their cells and are in
#: sight in their card (a table may scroll inside its card, but these cells must not need it)
LAYOUT = """() => {
  const fits = (el) => { const r = el.getBoundingClientRect(), box = (el.closest('.scroll') || el.closest('.panel')).getBoundingClientRect();
                         return el.scrollWidth <= el.clientWidth && r.left >= box.left && r.right <= box.right + 0.5; };
  return { width: document.documentElement.scrollWidth, viewport: window.innerWidth,
           chart: document.querySelector('#timeline').getBoundingClientRect().height,
           clipped: [...document.querySelectorAll('#table td.quad, #table td.error, #summary, #probs .prob')]
                      .filter((el) => !fits(el)).map((el) => el.textContent) }; }"""


def _assert_layout_fits(page) -> None:  # noqa: ANN001
    got = page.evaluate(LAYOUT)
    at = f"at {got['viewport']} px"
    assert got["width"] <= got["viewport"], f"the page scrolls sideways {at}: {got['width']} px wide"
    assert got["chart"] >= 150, f"the over-time chart is {got['chart']:.0f} px tall {at}"
    assert not got["clipped"], f"clipped {at}: {got['clipped']}"


def _predict_on_page(page, files: list[Path]) -> None:  # noqa: ANN001
    """Drop ``files`` on the page and wait until each is done or failed, and the first one's charts are drawn."""
    _until(page, "document.querySelector('#model').textContent.includes('default')")
    page.set_input_files("#files", [str(f) for f in files])
    _until(page, f"window.merState.jobs.size === {len(files)} && "
                 "[...window.merState.jobs.values()].every(j => j.state === 'done' || j.state === 'error')",
           timeout=120_000)
    _until(page, "window.merState.timeChart !== null && window.merState.overview !== null")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs it: apt-get install chromium)")
def test_page_in_a_real_browser(predictor, shared, tmp_path):
    """A real clip and a bad file through the page, at a desktop's size and a phone's: the table,
    the planes (a legend entry per quadrant), playback in sync, the smoothed over-time chart, a
    layout that fits, and no error in the console (no 404 either: the favicon is inline).
    MER_UPDATE_SCREENSHOT=1 rewrites docs/serve.jpg; MER_SCREENSHOTS=DIR keeps both sizes' shots."""
    from mer.plot import moving_mean

    clip = shared("pmemo-samples", "108.mp3")
    bad = tmp_path / "not-audio-with-a-long-name-that-must-wrap-on-a-phone.mp3"
    bad.write_text("this is text, not audio")
    shots = Path(os.environ.get("MER_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with _served_page() as (page, errors, open_page):
        _predict_on_page(page, [clip, bad])
        rows = page.locator("#table tbody tr")
        assert rows.count() == 2
        ref = predictor(clip)
        row = page.locator("#table tbody tr", has_text="108.mp3").inner_text()
        assert f"{ref.valence:.3f}" in row and f"{ref.arousal:.3f}" in row and ref.quadrant in row
        assert bad.name in page.locator("#table tbody tr.error").inner_text()
        # the files' plane: one dataset (legend entry) per quadrant, in its colour, the clip in its own
        legend = page.evaluate("window.merState.overview.data.datasets.map(d => [d.label, d.backgroundColor, d.data.length])")
        assert [(label.split()[0], n) for label, _, n in legend] == [(q, int(q == ref.quadrant)) for q in ("Q1", "Q2", "Q3", "Q4")]
        assert all(color == page.evaluate(f"QUAD['{label[:2]}'].color") for label, color, _ in legend)
        # the plane has the trajectory, and playback moves the marker along it
        page.locator("#table tbody tr", has_text="108.mp3").click()
        _until(page, "window.merState.planeChart && window.merState.planeChart.data.datasets[0].data.length > 50")
        _until(page, "window.merState.ws && window.merState.ws.getDuration() > 0", timeout=30_000)
        page.evaluate("window.merState.ws.setTime(10)")
        _until(page, "window.merState.markerIndex === 20", timeout=10_000)
        page.evaluate("window.merState.ws.play()")
        _until(page, "window.merState.playhead > 10.4", timeout=15_000)
        moved = page.evaluate("window.merState.markerIndex")
        assert moved >= 20
        page.evaluate("window.merState.ws.pause()")
        # over time: the 10.5 s moving mean of the curve (the same numbers as mer.plot's), the whole
        # song flat and dashed, on [-1, 1]; "raw 2 Hz values" shows the curve itself
        result = page.evaluate("window.merState.jobs.get(window.merState.selected).result")
        chart = "window.merState.timeChart.data.datasets"
        drawn = page.evaluate(f"{chart}.map(d => d.data.map(p => p.y))")
        assert np.allclose(drawn[0], moving_mean(result["valence_curve"]), atol=1e-9)
        assert np.allclose(drawn[1], moving_mean(result["arousal_curve"]), atol=1e-9)
        assert set(drawn[2]) == {result["valence"]} and set(drawn[3]) == {result["arousal"]}
        assert page.evaluate(f"{chart}.map(d => d.borderDash.length > 0)") == [False, False, True, True]
        assert page.evaluate("[window.merState.timeChart.scales.y.min, window.merState.timeChart.scales.y.max]") == [-1, 1]
        assert "10.5 s" in page.locator("#curve-note").inner_text() and "docs/benchmarks.md" in page.locator("#curve-note").inner_text()
        page.locator("#raw").check()
        assert page.evaluate(f"{chart}[0].data.map(p => p.y)") == result["valence_curve"]
        page.locator("#raw").uncheck()
        _assert_layout_fits(page)
        shot = shots / "serve-desktop.png"
        _screenshot(page, shot)
        if os.environ.get("MER_UPDATE_SCREENSHOT"):
            _screenshot(page, REPO / "docs" / "serve.jpg", type="jpeg", quality=55)  # < 150 KB
        assert shot.stat().st_size > 10_000
        # a phone: the same files, one column, nothing wider than the screen
        phone = open_page(PHONE)
        _predict_on_page(phone, [clip, bad])
        _assert_layout_fits(phone)
        _screenshot(phone, shots / "serve-phone.png")
        assert not errors, errors


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs it: apt-get install chromium)")
def test_library_view_in_a_real_browser(tmp_path):
    """`mer serve --library`: every song on the plane (a legend entry per quadrant) and in the
    list (by "Artist - Title" from its tags, else its file name; its path on hover), quadrant
    filters, a dragged region, and a click that plays the song's audio (served by id)."""
    import importlib.util

    from mer.library import Library
    from mer.library.playlist import display_name

    music = tmp_path / "music"
    music.mkdir()
    points = [(0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6), (0.3, 0.8), (-0.3, -0.8)]
    for i, (v, a) in enumerate(points):
        with sf.SoundFile(music / f"song{i}.wav", "w", 16000, 1) as f:
            if i == 0:  # tags, as a player writes them (read with PyAV when indexed)
                f.artist, f.title = "Nina Simone", "Feeling Good"
            f.write(synth.clip(v, a, seconds=4.0, sr=16000, seed=i))
    db = tmp_path / "music.sqlite"
    with Library(db) as lib:
        lib.index(music, workers=1, progress=False)
        songs = lib.songs()
    if importlib.util.find_spec("av"):
        assert (songs[0]["artist"], songs[0]["title"]) == ("Nina Simone", "Feeling Good")
    with _served_page("--library", str(db)) as (page, errors, _):
        _until(page, "window.merState.library.length === 6 && window.merState.libChart")
        assert page.locator("#library").is_visible() and page.locator("#lib-list li").count() == 6
        assert "(6 songs)" in page.locator("#lib-count").inner_text()
        listed = page.evaluate("[...document.querySelectorAll('#lib-list li')].map(li => [li.textContent, li.title])")
        assert listed == [[f"{s['quadrant']} {display_name(s)}", s["path"]] for s in songs]
        plotted = page.evaluate("window.merState.libChart.data.datasets.flatMap(d => d.data.map(p => [p.x, p.y]))")
        assert sorted(map(tuple, plotted)) == sorted((s["valence"], s["arousal"]) for s in songs)
        assert page.evaluate("window.merState.libChart.data.datasets.map(d => d.label)") == [
            "Q1 happy/excited", "Q2 angry/tense", "Q3 sad/depressed", "Q4 calm/relaxed"]
        # a quadrant filter hides that quadrant's songs from the plane and the list
        q = songs[0]["quadrant"]
        page.locator(f"#library input[value={q}]").uncheck()
        left = sum(s["quadrant"] != q for s in songs)
        assert page.locator("#lib-list li").count() == left
        assert page.evaluate("window.merState.libChart.data.datasets.flatMap(d => d.data).length") == left
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
        _until(page, f"document.querySelectorAll('#lib-list li').length === {len(right)}")
        page.locator("#lib-clear").click()
        assert page.locator("#lib-list li").count() == 6
        # a click on a song plays it: its audio comes by id, and its line names it
        first = page.locator("#lib-list li").first
        sid = int(first.get_attribute("data-id"))
        first.click()
        _until(page, "document.querySelector('#lib-audio').duration > 3.9", timeout=15_000)
        assert page.evaluate("document.querySelector('#lib-audio').src").endswith(f"/api/library/audio/{sid}")
        name = next(display_name(s) for s in songs if s["id"] == sid)
        assert name in page.locator("#lib-now").inner_text()
        assert not errors, errors


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs it: apt-get install chromium)")
def test_a_long_library_list_on_a_phone(tmp_path):
    """60 songs on a phone: the page fits the screen, and the list, scrolled to its end, shows its
    last row whole, clear of the box's edge."""
    db = tmp_path / "music.sqlite"
    _library_rows(db, [_song_row(f"/music/albums/{i:02d} track.mp3", ((i * 37) % 200 - 100) / 101,
                                 ((i * 53) % 200 - 100) / 101, artist=f"Artist {i}", title=f"Title {i}") for i in range(60)])
    with _served_page("--library", str(db), viewport=PHONE) as (page, errors, _):
        _until(page, "window.merState.library.length === 60 && window.merState.libChart")
        last = page.evaluate("""() => { const box = document.querySelector('#lib-list');
            box.scrollTop = box.scrollHeight;
            const bottom = box.getBoundingClientRect().top + box.clientTop + box.clientHeight;
            const row = box.lastElementChild, badge = row.querySelector('.q');
            return [bottom, row.getBoundingClientRect().bottom, badge.getBoundingClientRect().bottom, row.textContent]; }""")
        bottom, row, badge, text = last
        assert text.endswith("Artist 59 - Title 59") and max(row, badge) <= bottom - 2, last
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert not errors, errors


# ------------------------------------------------------------------ the curve over time, smoothed
# The page's chart (app.js movingMean, checked against this in test_page_in_a_real_browser) and
# `mer predict --plot` (mer.plot) draw the 2 Hz curve as a 10.5 s moving mean: see docs/benchmarks.md.

def test_moving_mean_is_centred_and_keeps_the_ends():
    from mer.plot import moving_mean

    assert np.allclose(moving_mean([0, 0, 3, 0, 0], 3), [0, 1, 1, 1, 0])  # the ends repeat the first/last value
    assert np.allclose(moving_mean(np.full(50, 0.4)), 0.4)  # a flat curve stays flat
    impulse = np.zeros(61)
    impulse[30] = 21.0
    out = moving_mean(impulse)  # 21 steps by default: 10 either side
    assert len(out) == 61 and np.allclose(out[20:41], 1.0) and not out[:20].any() and not out[41:].any()
    assert moving_mean([]).size == 0 and np.allclose(moving_mean([0.7]), [0.7])


def test_plot_draws_the_smoothed_curve_beside_the_whole_clip(tmp_path):
    pytest.importorskip("matplotlib")
    from types import SimpleNamespace

    import matplotlib.pyplot as plt

    from mer.plot import CURVE_NOTE, figure, moving_mean, plot_prediction

    rng = np.random.default_rng(0)
    n = 80  # noise about 0.3, and an arousal that sits clipped at 1.0 for 10 s
    curve = np.clip(np.stack([0.3 + 0.4 * rng.standard_normal(n),
                              np.r_[np.full(20, 1.0), 0.5 * rng.standard_normal(n - 20)]], axis=1), -1, 1)
    pred = SimpleNamespace(path="song.mp3", curve=curve, times=0.5 * np.arange(n), valence=0.3, arousal=0.4,
                           quadrant="Q1", quadrant_words="happy/excited", duration=40.0, confidence=0.7, segments=[])
    fig = figure(pred)
    over = fig.axes[1]
    assert np.allclose(over.lines[0].get_ydata(), moving_mean(curve[:, 0]))
    assert np.allclose(over.lines[1].get_ydata(), moving_mean(curve[:, 1]))
    assert sorted(line.get_ydata()[0] for line in over.lines if line.get_linestyle() == "--") == [0.3, 0.4]
    lo, hi = over.get_ylim()
    assert -1.1 < lo <= -1 and 1 <= hi < 1.1  # the scale, not the data, sets the axis
    assert CURVE_NOTE in [t.get_text() for t in fig.texts] and "docs/benchmarks.md" in CURVE_NOTE
    plt.close(fig)
    assert plot_prediction(pred, tmp_path / "plot.png").stat().st_size > 10_000


@pytest.mark.slow
def test_long_file_reports_progress(predictor, tmp_path):
    long = tmp_path / "ten-minutes.wav"
    sf.write(long, np.tile(synth.clip(0.3, 0.3, 10.0, 16000, seed=2), 60), 16000)
    with _client(create_app(predictor)) as client:
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


# ------------------------------------------------------------------ hostile input (the probe's findings)
MiB = 1 << 20
BOUNDARY = b"mer-test-boundary"


def _multipart(files: list[tuple[bytes, int]]):  # noqa: ANN202
    """A multipart body of zero-filled files (name, bytes), yielded 1 MiB at a time, as a client streams it."""
    for name, size in files:
        yield (b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="files"; filename="' + name
               + b'"\r\nContent-Type: audio/wav\r\n\r\n')
        for _ in range(size // MiB):
            yield bytes(MiB)
        yield b"\r\n"
    yield b"--" + BOUNDARY + b"--\r\n"


def _post_streamed(app, chunks, length: int | None = None) -> tuple[int, dict, int]:  # noqa: ANN001
    """POST ``chunks`` to /api/predict straight through ASGI (chunked unless ``length``): the status,
    the JSON answer and how many bytes the app read of the body before it answered."""
    import asyncio
    import json

    it, consumed, sent = iter(chunks), 0, []

    async def receive() -> dict:
        nonlocal consumed
        chunk = next(it, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"multipart/form-data; boundary=" + BOUNDARY),
               (b"content-length", str(length).encode()) if length is not None else (b"transfer-encoding", b"chunked")]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/predict", "raw_path": b"/api/predict", "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:])), consumed


def test_chunked_upload_over_the_file_limit_stops_at_the_limit_and_keeps_nothing(predictor):
    app = create_app(predictor, max_upload_mb=5)
    try:
        status, body, read = _post_streamed(app, _multipart([(b"big.flac", 200 * MiB)]))
        assert status == 413 and "big.flac is larger than 5 MB" in body["error"] and "--max-upload-mb" in body["error"]
        assert read < 7 * MiB, read / MiB  # not the 200 MiB the client offered
        assert list(app.state.queue.folder.iterdir()) == [] and not app.state.queue.jobs
    finally:
        app.state.queue.close()


def test_upload_with_a_length_is_cut_at_the_file_limit_and_the_request_limit(predictor):
    app = create_app(predictor, max_upload_mb=5, max_files=4)  # 20 MB per upload
    try:
        one = [(b"one.wav", 18 * MiB)]
        length = sum(map(len, _multipart(one)))  # under the upload's limit: the file's is checked as it streams
        status, body, read = _post_streamed(app, _multipart(one), length=length)
        assert status == 413 and "one.wav is larger than 5 MB" in body["error"] and read < 7 * MiB, read / MiB
        assert list(app.state.queue.folder.iterdir()) == []
    finally:
        app.state.queue.close()
    few = create_app(predictor, max_upload_mb=5, max_files=4, max_request_mb=10)
    try:
        three = [(b"a.wav", 4 * MiB), (b"b.wav", 4 * MiB), (b"c.wav", 4 * MiB)]  # each fits, all do not
        status, body, read = _post_streamed(few, _multipart(three))
        assert status == 413 and "10 MB in all" in body["error"] and "--max-request-mb" in body["error"]
        assert read < 12 * MiB, read / MiB  # 10 MB and the chunk that crossed it
        status, body, read = _post_streamed(few, _multipart(three), length=sum(map(len, _multipart(three))))
        assert status == 413 and read == 0 and "at most 5 MB per file and 10 MB per upload" in body["error"]
        assert list(few.state.queue.folder.iterdir()) == [] and not few.state.queue.jobs
    finally:
        few.state.queue.close()


class Spy:
    """A predictor that records how it was called (to see where decoding was told to stop)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor, self.calls = predictor, []

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.predictor, name)

    def __call__(self, path, **kw):  # noqa: ANN001, ANN204
        self.calls.append(kw)
        return self.predictor(path, **kw)


def _flac_with_unknown_length(seconds: float) -> bytes:
    """A FLAC file whose header claims no length (STREAMINFO total samples 0): only decoding tells."""
    buf = io.BytesIO()
    sf.write(buf, synth.clip(0.2, 0.2, seconds, 16000, seed=5), 16000, format="FLAC")
    data = bytearray(buf.getvalue())
    assert data[:4] == b"fLaC"
    packed = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)  # sample rate | channels | bits | samples
    data[18:26] = packed.to_bytes(8, "big")
    return bytes(data)


def test_decoded_length_is_capped_by_the_header_and_while_decoding(predictor):
    spy = Spy(predictor)
    with _client(create_app(spy, max_minutes=0.1)) as client:  # 6 s
        res = client.post("/api/predict", files=[("files", ("long.wav", _wav_bytes(10.0), "audio/wav")),
                                                 ("files", ("lying.flac", _flac_with_unknown_length(10.0), "audio/flac")),
                                                 ("files", ("short.wav", _wav_bytes(4.0), "audio/wav"))])
        jobs = {j["name"]: _wait(client, j["id"]) for j in res.json()["jobs"]}
    long, lying, short = jobs["long.wav"], jobs["lying.flac"], jobs["short.wav"]
    assert long["state"] == "error" and "long.wav: 0.2 minutes long" in long["error"]
    assert "at most 0.1 minutes" in long["error"] and "--max-minutes" in long["error"]
    assert lying["state"] == "error" and "lying.flac: longer than that" in lying["error"], lying
    assert short["state"] == "done" and abs(short["result"]["duration"] - 4.0) < 0.1
    assert len(spy.calls) == 2  # the long file was refused from its header, before any decoding
    assert any(c.get("duration") == pytest.approx(6 + 1.0) for c in spy.calls)  # the liar: told to stop at the cap


def test_only_this_servers_host_names_are_answered():
    from mer.serve.app import allowed_hosts, host_name

    assert [host_name(h) for h in ("LocalHost:08000", "[::1]:8000", "127.0.0.1", "example.com.", "[::1", "a:b")] == \
        ["localhost", "::1", "127.0.0.1", "example.com", None, None]
    assert allowed_hosts("0.0.0.0") is None and "box" in allowed_hosts("0.0.0.0", ["Box"])
    assert "192.168.1.5" in allowed_hosts("192.168.1.5") and allowed_hosts("::") is None
    assert allowed_hosts("::1") == {"127.0.0.1", "localhost", "::1"}


def test_dns_rebinding_gets_421_and_nothing_of_the_library(predictor, tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(_wav_bytes(2.0))
    app = create_app(predictor, library=FakeLibrary(song))
    with TestClient(app, base_url="http://evil.example:8000") as evil:
        for path in ("/api/library/songs", "/api/library/audio/1", "/api/jobs", "/", "/static/app.js"):
            r = evil.get(path)
            assert r.status_code == 421 and str(song) not in r.text, path
        assert "--allow-host" in evil.get("/api/jobs").json()["error"]
        assert evil.post("/api/predict", files=[("files", ("a.wav", b"x"))]).status_code == 421
    for base in ("http://localhost:8000", "http://LOCALHOST", "http://[::1]:8000", "http://127.0.0.1:9"):
        assert TestClient(app, base_url=base).get("/api/library/songs").status_code == 200, base
    anywhere = create_app(predictor, host="0.0.0.0")  # meant to be reached by other names
    assert TestClient(anywhere, base_url="http://my-box:8000").get("/api/health").status_code == 200
    named = create_app(predictor, host="0.0.0.0", allow_hosts=["my-box"])
    assert TestClient(named, base_url="http://my-box:8000").get("/api/health").status_code == 200
    behind_a_proxy = TestClient(named, base_url="http://127.0.0.1:8000")  # the proxy rewrote Host; Origin is the name
    assert behind_a_proxy.post("/api/predict", files=[("files", ("a.wav", _wav_bytes(1.0)))],
                               headers={"Origin": "https://my-box"}).status_code == 200
    assert TestClient(named, base_url="http://evil.example:8000").get("/api/health").status_code == 421
    for a in (app, anywhere, named):
        a.state.queue.close()


def test_cross_site_uploads_are_refused_and_queue_nothing(predictor):
    files = [("files", ("a.wav", _wav_bytes(1.0), "audio/wav"))]
    app = create_app(predictor)
    with _client(app) as client:
        for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "http://127.0.0.1:9999"},
                        {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
            r = client.post("/api/predict", files=files, headers=headers)
            assert r.status_code == 403 and "cross-site" in r.json()["error"], headers
        assert not app.state.queue.jobs and list(app.state.queue.folder.iterdir()) == []
        assert client.get("/api/jobs", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        page = {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}  # what the page's fetch sends
        assert client.post("/api/predict", files=files, headers=page).status_code == 200
        assert client.post("/api/predict", files=files).status_code == 200  # no Origin: curl, scripts
        assert client.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200  # a link to the page
    anywhere = create_app(predictor, host="0.0.0.0")  # any Host is answered, but the Origin check holds
    with TestClient(anywhere, base_url="http://my-box:8000") as client:
        assert client.post("/api/predict", files=files, headers={"Origin": "http://evil.example"}).status_code == 403
        assert client.post("/api/predict", files=files, headers={"Origin": "http://my-box:8000"}).status_code == 200
    js = (REPO / "mer" / "serve" / "static" / "app.js").read_text()
    assert "fetch(path" in js and "http" not in js.split("async function api", 1)[1].split("}", 1)[0]


def test_each_browser_sees_its_own_jobs_and_the_token_holder_all(predictor):
    app = create_app(predictor)
    with _client(app) as alice:
        first = alice.get("/")
        cookie = first.headers["set-cookie"].lower()
        assert "mer_client=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        job_id = alice.post("/api/predict", files=[("files", ("alice.wav", _wav_bytes(1.0)))]).json()["jobs"][0]["id"]
        assert [j["id"] for j in alice.get("/api/jobs").json()["jobs"]] == [job_id]
        bob = _client(app)
        assert bob.get("/api/jobs").json()["jobs"] == []  # another browser: nothing of Alice's
        assert bob.get("/api/jobs?all=1").status_code == 403  # no token: nobody sees all
        _wait(alice, job_id)
    with _client(create_app(predictor, token="t0k")) as admin:
        h = {"Authorization": "Bearer t0k"}
        admin.post("/api/predict", files=[("files", ("x.wav", _wav_bytes(1.0)))], headers=h)
        admin.cookies.clear()
        assert admin.get("/api/jobs", headers=h).json()["jobs"] == []
        assert len(admin.get("/api/jobs?all=1", headers=h).json()["jobs"]) == 1


def test_docs_need_the_token_and_the_token_can_stay_out_of_ps(predictor, tmp_path, monkeypatch):
    with _client(create_app(predictor, token="s3cret")) as client:
        for path in ("/docs", "/openapi.json"):
            assert client.get(path).status_code == 401, path
        docs = client.get("/docs?token=s3cret")
        assert docs.status_code == 200 and "/openapi.json?token=s3cret" in docs.text
        assert client.get("/openapi.json?token=s3cret").json()["info"]["title"] == "mer"
    from mer.cli.serve import _token
    from mer.errors import ConfigError

    (tmp_path / "token").write_text("from-file\n")
    assert _token(argparse.Namespace(token=None, token_file=str(tmp_path / "token"))) == "from-file"
    monkeypatch.setenv("MER_TOKEN", "from-env")
    assert _token(argparse.Namespace(token=None, token_file=None)) == "from-env"
    (tmp_path / "empty").write_text("\n")
    for bad in ("empty", "missing"):
        with pytest.raises(ConfigError, match="--token-file"):
            _token(argparse.Namespace(token=None, token_file=str(tmp_path / bad)))


def test_security_headers_and_a_policy_the_page_passes(predictor):
    import re

    with _client(create_app(predictor)) as client:
        for path in ("/", "/api/health", "/static/app.js", "/api/jobs/nope"):
            h = client.get(path).headers
            assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY", path
            assert "frame-ancestors 'none'" in h["content-security-policy"], path
        csp = client.get("/").headers["content-security-policy"]
    assert "script-src 'self';" in csp and "'unsafe-eval'" not in csp
    html = (REPO / "mer" / "serve" / "static" / "index.html").read_text()
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all('src="/static/' in s for s in scripts)  # no inline script: 'self' is enough
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either
    links = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert all(u.startswith(("/", "data:image/svg+xml,")) for u in links)  # nothing from elsewhere
    assert re.search(r'<link rel="icon" href="data:image/svg\+xml,', html)  # a favicon, inline: no 404 for /favicon.ico


def _song_row(path: str, valence: float = 0.1, arousal: float = 0.2, **tags: str | None) -> dict:
    """A row of a library's ``songs`` table (``tags``: artist, title), its quadrant from the signs."""
    from mer.library.store import now

    quadrant = ("Q1" if valence >= 0 else "Q2") if arousal >= 0 else ("Q4" if valence >= 0 else "Q3")
    return {"path": path, "size": 1, "mtime_ns": 1, "sha1": "0" * 40, "duration": 2.0, "model": "default",
            "model_version": "2", "weights_sha1": "w", "valence": valence, "arousal": arousal, "quadrant": quadrant,
            "indexed_at": now(), **tags}


def _library_rows(db: Path, rows: list[dict]):  # noqa: ANN202
    """A real library file holding ``rows`` (see :func:`_song_row`), opened as `mer serve --library` opens it."""
    from mer.library import Library
    from mer.library.store import connect, upsert_songs

    conn = connect(db, create=True)
    conn.execute("BEGIN")
    upsert_songs(conn, rows)
    conn.execute("COMMIT")
    conn.close()
    return Library(db)


def _real_library(db: Path, song: Path):  # noqa: ANN202
    """A real library file holding one song."""
    return _library_rows(db, [_song_row(str(song))])


def test_library_songs_are_named_by_their_tags(predictor, tmp_path):
    """Each song of /api/library/songs has the name the page lists it by: "Artist - Title", the
    title alone, else the file name without its suffix (what `mer playlist` writes)."""
    lib = _library_rows(tmp_path / "music.sqlite", [
        _song_row("/music/a/01 intro.mp3", artist="Nina Simone", title="Feeling Good"),
        _song_row("/music/a/02 untitled.flac", title="Sinnerman"),
        _song_row("/music/b/03 take five.ogg", artist="Dave Brubeck")])
    with _client(create_app(predictor, library=lib)) as client:
        songs = client.get("/api/library/songs").json()["songs"]
    assert [(s["name"], s["path"]) for s in songs] == [
        ("Nina Simone - Feeling Good", "/music/a/01 intro.mp3"), ("Sinnerman", "/music/a/02 untitled.flac"),
        ("03 take five", "/music/b/03 take five.ogg")]


def test_audio_id_out_of_range_is_404_not_500(predictor, tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(_wav_bytes(2.0))
    lib = _real_library(tmp_path / "music.sqlite", song)
    with _client(create_app(predictor, library=lib)) as client:
        sid = client.get("/api/library/songs").json()["songs"][0]["id"]
        assert client.get(f"/api/library/audio/{sid}").content == song.read_bytes()
        for bad in ("99999999999999999999", "9223372036854775808", "-1", "1e3", "abc"):
            r = client.get(f"/api/library/audio/{bad}")
            assert r.status_code == 404 and "no song" in r.json()["error"], bad


@pytest.fixture
def serve_main(monkeypatch, capsys):  # noqa: ANN201
    """`mer serve ARGS` in this process with the serving itself replaced: (exit status, stderr)."""
    import uvicorn

    import mer.serve.app as served
    from mer.cli import main

    def never(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the server started")

    monkeypatch.setattr(served, "run", never, raising=False)
    monkeypatch.setattr(uvicorn, "run", never)

    def call(*args: str) -> tuple[int, str]:
        status = main(["serve", "--port", str(_free_port()), *args])
        return status, capsys.readouterr().err
    return call


def test_bad_limits_are_refused_with_one_line(serve_main):
    for flag in ("--max-upload-mb", "--max-minutes", "--max-request-mb", "--read-timeout"):
        for value in ("nan", "inf", "-inf", "0", "-3"):
            status, err = serve_main(f"{flag}={value}")
            assert status != 0 and err.count("\n") == 1 and err.startswith(f"mer: error: {flag} "), (flag, value, err)
            assert "positive number" in err and "ready" not in err


def test_a_bad_library_is_refused_at_start(serve_main, tmp_path):
    from mer.library import SCHEMA_VERSION
    from mer.library.store import connect

    song = tmp_path / "song.wav"
    song.write_bytes(_wav_bytes(2.0))
    (tmp_path / "text.sqlite").write_text("not a database at all, " * 200)
    newer = tmp_path / "newer.sqlite"
    connect(newer, create=True).execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    damaged = tmp_path / "damaged.sqlite"
    _real_library(damaged, song)
    data = bytearray(damaged.read_bytes())
    data[4096:len(data) - 1024] = np.random.default_rng(0).integers(0, 256, len(data) - 5120, dtype=np.uint8).tobytes()
    damaged.write_bytes(bytes(data))
    for name, why in (("missing.sqlite", "no such library"), ("text.sqlite", "not a mer library"),
                      ("newer.sqlite", "upgrade mer"), ("damaged.sqlite", "is corrupt")):
        status, err = serve_main("--library", str(tmp_path / name))
        assert status != 0 and err.count("\n") == 1 and why in err and name in err, (name, err)
        assert "ready" not in err and "Traceback" not in err


def _serve_process(*args: str, env: dict | None = None) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mer", "serve", "--port", str(port), *args],
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    return server, port


def test_a_busy_port_is_one_line_and_nothing_ready():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = subprocess.run([sys.executable, "-m", "mer", "serve", "--port", str(port)], capture_output=True,
                                text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert server.returncode == 2, server.stderr
    assert server.stderr == f"mer: error: --host 127.0.0.1: port {port} is in use; choose another with --port\n"


def _closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before it closed ``sock``, or None when it was still open after ``seconds``."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return got


@pytest.mark.slow
def test_a_real_server_drops_stalled_clients_and_oversized_chunked_uploads(tmp_path):
    server, port = _serve_process("--max-upload-mb", "1", "--read-timeout", "1", env={"TMPDIR": str(tmp_path)})
    try:
        assert "mer serve: http://127.0.0.1" in server.stderr.readline()
        silent, partial, body = (socket.create_connection(("127.0.0.1", port)) for _ in range(3))
        partial.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        body.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n"
                     b"Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n")
        assert _closed_within(silent, 5) == b""
        assert _closed_within(partial, 5) == b""
        stalled = _closed_within(body, 5)
        assert stalled is not None and stalled.startswith(b"HTTP/1.1 408"), stalled
        # 50 MiB sent chunked against --max-upload-mb 1: the server answers 413 and stops reading
        up = socket.create_connection(("127.0.0.1", port))
        up.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                   b"Content-Type: multipart/form-data; boundary=" + BOUNDARY + b"\r\n\r\n")
        sent = 0
        try:
            for chunk in _multipart([(b"big.wav", 50 * MiB)]):
                up.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _closed_within(up, 10) or b""
        assert sent < 40 * MiB, sent / MiB
        assert answer == b"" or answer.startswith(b"HTTP/1.1 413"), answer[:200]
        folder = next(tmp_path.glob("mer-serve-*"))
        assert list(folder.iterdir()) == []
        assert httpx_get(port, "/api/health") == 200  # and the server goes on
    finally:
        server.terminate()
        server.wait(timeout=30)


def httpx_get(port: int, path: str) -> int:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}{path}").status_code
