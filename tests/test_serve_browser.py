"""The page of ``mer serve`` in a real headless Chromium at desktop and phone sizes (skipped with
the reason where Chromium or Playwright is missing)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import CHROMIUM  # one place says whether the browser tests run

from mer import synth

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from mer.infer import Predictor  # noqa: E402
from serve_common import DESKTOP, PHONE, REPO, _free_port, _library_rows, _song_row


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    """The default model, loaded once for the module."""
    return Predictor("default")


def _until(page, expression: str, timeout: float = 30_000) -> None:  # noqa: ANN001
    """Wait until ``expression`` is true in the page. Playwright's ``wait_for_function`` evaluates
    its string with eval inside the page, which the page's Content-Security-Policy forbids (as it
    should); ``page.evaluate`` goes through the DevTools protocol, outside the policy."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout / 1000:g} s: {expression}")
        time.sleep(0.05)




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
