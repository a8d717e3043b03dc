"""What a user of `mer serve`'s page sees, in a real headless Chromium: on a phone (390x844, touch),
a tap on a file brings its song's panel into view, far below the table, and the focus with it (at
1280x800 nothing moves); in the library, a dragged region is drawn while dragging and kept until
cleared, and the header counts what is listed, not the whole library. Skipped with the reason
where Chromium or Playwright is missing. MER_SCREENSHOTS=DIR keeps the pictures taken on the way."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
from conftest import CHROMIUM  # one place says whether the browser tests run
from serve_common import DESKTOP, PHONE, _free_port  # noqa: F401  (DESKTOP/PHONE: test_serve_moods takes them here)

from mer import synth

pytest.importorskip("fastapi")
REPO = Path(__file__).resolve().parents[1]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (CI installs it: apt-get install chromium)")
pytestmark = [pytest.mark.slow, needs_chromium]


def _until(page, expression: str, timeout: float = 30.0):  # noqa: ANN001, ANN202
    """Wait until ``expression`` is truthy in the page and give its value (page.evaluate, not
    wait_for_function: the page's Content-Security-Policy forbids the eval that one uses)."""
    deadline = time.time() + timeout
    while True:
        got = page.evaluate(expression)
        if got or time.time() > deadline:
            assert got, f"still false after {timeout} s: {expression}"
            return got
        time.sleep(0.05)


@contextlib.contextmanager
def _served(*serve_args: str):  # noqa: ANN202
    """`mer serve` on a free port and headless Chromium: yields (open_page, errors); ``open_page(size,
    phone=False, **context_options)`` opens the page in a new context at that viewport (a phone: touch,
    mobile). ``errors`` gathers every page's script and console errors and policy violations."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "mer", "serve", "--port", str(port), *serve_args],
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert "mer serve: http://127.0.0.1" in server.stderr.readline()
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--mute-audio", "--no-sandbox"])
            errors: list[str] = []

            def open_page(size: tuple[int, int], phone: bool = False, **options):  # noqa: ANN202
                context = browser.new_context(viewport={"width": size[0], "height": size[1]},
                                              has_touch=phone, is_mobile=phone, **options)
                page = context.new_page()
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error"
                        or "Content Security Policy" in m.text else None)
                page.goto(f"http://127.0.0.1:{port}/")
                return page

            yield open_page, errors
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MER_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ------------------------------------------------------------------ files: a tap shows the song

def _clips(folder: Path, n: int = 3) -> list[Path]:
    out = []
    for i, (v, a) in enumerate([(0.6, 0.6), (-0.6, -0.5), (0.5, -0.6)][:n]):
        out.append(folder / f"clip-{i}.wav")
        sf.write(out[-1], synth.clip(v, a, seconds=6.0, sr=16000, seed=i), 16000)
    return out


def _predicted(page, files: list[Path]) -> None:  # noqa: ANN001
    _until(page, "document.querySelector('#model').textContent.includes('default')")
    page.set_input_files("#files", [str(f) for f in files])
    _until(page, f"window.merState.jobs.size === {len(files)} && "
                 "[...window.merState.jobs.values()].every(j => j.state === 'done')", timeout=120)
    _until(page, "window.merState.timeChart !== null")
    page.evaluate("window.scrollTo(0, 0)")


#: the song's panel: where its top is, whose song it shows, and where the focus is
DETAIL = """() => { const r = document.querySelector('#detail').getBoundingClientRect();
  return { top: r.top, height: innerHeight, scrollY: scrollY, title: document.querySelector('#title').textContent,
           focus: document.activeElement.id, selected: document.querySelector('#table tr.selected td.name').textContent }; }"""


def _in_view(page, name: str) -> dict:  # noqa: ANN001
    """Wait until the song's panel shows ``name`` with its top on screen and the scroll has settled."""
    _until(page, f"""(() => {{ const r = document.querySelector('#detail').getBoundingClientRect();
        return r.top >= 0 && r.top < innerHeight - 100 && document.querySelector('#title').textContent === {name!r}; }})()""",
           timeout=10)
    last = None
    while (got := page.evaluate(DETAIL)) != last:  # a smooth scroll: until it stops
        last = got
        time.sleep(0.15)
    return got


def test_a_tap_on_a_file_on_a_phone_brings_its_song_into_view(tmp_path, shots):
    files = _clips(tmp_path)
    with _served() as (open_page, errors):
        page = open_page(PHONE, phone=True)
        _predicted(page, files)
        first = page.evaluate(DETAIL)
        assert first["top"] > first["height"], f"the song's panel is in view before any tap: {first}"
        page.screenshot(path=str(shots / "phone-before-tap.png"))
        row = page.locator("#table tbody tr", has_text="clip-1.wav")
        row.tap()
        got = _in_view(page, "clip-1.wav")
        assert got["selected"] == "clip-1.wav" and got["focus"] == "title", got
        assert 0 <= got["top"] <= 40, f"the panel's top should be at the screen's top: {got}"
        assert "clip-1.wav" in page.locator("#detail").inner_text()
        page.screenshot(path=str(shots / "phone-after-tap.png"))
        # back up to the table, another tap: the same again, for the other song
        page.evaluate("window.scrollTo(0, 0)")
        page.locator("#table tbody tr", has_text="clip-2.wav").tap()
        assert _in_view(page, "clip-2.wav")["selected"] == "clip-2.wav"

        # prefers-reduced-motion: the jump is immediate, no smooth scroll
        still = open_page(PHONE, phone=True, reduced_motion="reduce")
        _predicted(still, files)
        still.locator("#table tbody tr", has_text="clip-2.wav").tap()
        got = still.evaluate(DETAIL)
        assert 0 <= got["top"] <= 40 and got["title"] == "clip-2.wav", got
        assert not errors, errors


def test_on_a_desktop_a_click_on_a_file_moves_nothing_and_the_keyboard_works(tmp_path, shots):
    files = _clips(tmp_path)
    with _served() as (open_page, errors):
        page = open_page(DESKTOP)
        _predicted(page, files)
        before = page.evaluate(DETAIL)
        assert before["top"] < before["height"] - 120, f"at 1280x800 the song's panel is in view: {before}"
        page.locator("#table tbody tr", has_text="clip-1.wav").click()
        time.sleep(0.6)  # a smooth scroll would be under way by now
        got = page.evaluate(DETAIL)
        assert got["scrollY"] == 0 and got["title"] == "clip-1.wav" and got["focus"] == "title", got
        page.screenshot(path=str(shots / "desktop-after-click.png"))
        # the keyboard: Tab reaches the rows, arrows move between them, Enter shows the song and the
        # focus lands on its title; the focused row keeps the focus while the table is redrawn
        page.locator("#table tbody tr", has_text="clip-0.wav").focus()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.dataset.id") == page.locator(
            "#table tbody tr", has_text="clip-2.wav").get_attribute("data-id")
        page.keyboard.press("Enter")
        got = page.evaluate(DETAIL)
        assert got["title"] == "clip-2.wav" and got["focus"] == "title" and got["selected"] == "clip-2.wav", got
        assert page.locator("#table tbody tr[aria-current=true]").inner_text().startswith("clip-2.wav")
        assert not errors, errors


# ------------------------------------------------------------------ the library: region and count

def _indexed_library(tmp_path: Path) -> Path:
    """A library made by `mer index` on six generated clips."""
    music = tmp_path / "music"
    music.mkdir()
    for i, (v, a) in enumerate([(0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6), (0.3, 0.8), (-0.3, -0.8)]):
        sf.write(music / f"song{i}.wav", synth.clip(v, a, seconds=4.0, sr=16000, seed=i), 16000)
    db = tmp_path / "music.sqlite"
    done = subprocess.run([sys.executable, "-m", "mer", "index", str(music), "--db", str(db), "-j", "1", "-q"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert done.returncode == 0, done.stderr
    return db


def _pixel(page, x: float, y: float) -> list[int]:  # noqa: ANN001
    """The plane's canvas at (x, y) CSS pixels from its corner: [r, g, b, a]."""
    return page.evaluate(f"""(() => {{ const c = document.querySelector('#libplane'), k = c.width / c.clientWidth;
        return [...c.getContext('2d').getImageData(Math.round({x} * k), Math.round({y} * k), 1, 1).data]; }})()""")


def _blue(px: list[int]) -> bool:  # the region's edge, #0066cc
    return px[2] > 150 and px[0] < 90 and px[2] - px[1] > 60


def test_the_library_draws_the_dragged_region_and_counts_what_it_lists(tmp_path, shots):
    from mer.library import Library

    db = _indexed_library(tmp_path)
    with Library(db) as lib:
        songs = lib.songs()
    assert len(songs) == 6
    # a region over the full width, from the top down to the middle of the widest gap between arousals
    ys = sorted(s["arousal"] for s in songs)
    gap = max(range(1, len(ys)), key=lambda i: ys[i] - ys[i - 1])
    cut = (ys[gap] + ys[gap - 1]) / 2
    inside = [s for s in songs if s["arousal"] >= cut]
    with _served("--library", str(db)) as (open_page, errors):
        page = open_page(DESKTOP)
        _until(page, "window.merState.library.length === 6 && window.merState.libChart")
        assert page.locator("#lib-count").inner_text() == "(6 songs)"
        assert page.locator("#lib-clear").is_disabled()
        # a quadrant unticked: the header says how many of how many, and why
        q = songs[0]["quadrant"]
        left = sum(s["quadrant"] != q for s in songs)
        page.locator(f"#library input[value={q}]").uncheck()
        assert page.locator("#lib-list li").count() == left
        assert page.locator("#lib-count").inner_text() == f"({left} of 6 songs: {q} off)"
        # the legend says the same (that quadrant struck through), and a click on it ticks it again
        i = ["Q1", "Q2", "Q3", "Q4"].index(q)
        assert page.evaluate(f"window.merState.libChart.isDatasetVisible({i})") is False
        hit = page.evaluate(f"(() => {{ const b = window.merState.libChart.legend.legendHitBoxes[{i}]; return [b.left + b.width / 2, b.top + b.height / 2]; }})()")
        box = page.locator("#libplane").bounding_box()
        page.mouse.click(box["x"] + hit[0], box["y"] + hit[1])
        _until(page, f"document.querySelector('#library input[value={q}]').checked")
        assert page.locator("#lib-count").inner_text() == "(6 songs)" and page.locator("#lib-list li").count() == 6

        to_px = page.evaluate(f"""(() => {{ const c = window.merState.libChart;
            return [c.scales.x.getPixelForValue(-0.9), c.scales.x.getPixelForValue(0.9),
                    c.scales.y.getPixelForValue(0.95), c.scales.y.getPixelForValue({cut})]; }})()""")
        x0, x1, y0, y1 = to_px
        edge = (x0, (y0 + y1) / 2)  # a point on the region's left edge
        assert not _blue(_pixel(page, *edge))
        page.mouse.move(box["x"] + x0, box["y"] + y0)
        page.mouse.down()
        page.mouse.move(box["x"] + x1, box["y"] + y1, steps=6)
        # while dragging: the box is drawn, and nothing is filtered yet
        assert page.evaluate("window.merState.drag !== null && window.merState.region === null")
        assert _blue(_pixel(page, *edge)), _pixel(page, *edge)
        assert page.locator("#lib-list li").count() == 6
        page.screenshot(path=str(shots / "library-dragging.png"))
        page.mouse.up()
        _until(page, f"document.querySelectorAll('#lib-list li').length === {len(inside)}")
        # after it: the region kept and drawn, the header counts what is listed and says why
        assert _blue(_pixel(page, *edge)), _pixel(page, *edge)
        assert page.locator("#lib-count").inner_text() == f"({len(inside)} of 6 songs: in the region)"
        listed = sorted(int(i) for i in page.evaluate("[...document.querySelectorAll('#lib-list li')].map(li => li.dataset.id)"))
        assert listed == sorted(s["id"] for s in inside)
        assert page.evaluate("document.querySelector('#lib-audio').getAttribute('src')") is None  # a drag plays nothing
        page.screenshot(path=str(shots / "library-region.png"))
        page.mouse.move(0, 0)
        time.sleep(0.2)
        assert _blue(_pixel(page, *edge))  # still there once the pointer has gone
        # cleared: the whole library again, nothing drawn
        page.locator("#lib-clear").click()
        assert page.locator("#lib-count").inner_text() == "(6 songs)" and page.locator("#lib-list li").count() == 6
        assert not _blue(_pixel(page, *edge)) and page.locator("#lib-clear").is_disabled()
        assert not errors, errors


def test_a_big_library_on_a_phone_says_the_list_holds_the_first_200(tmp_path, shots):
    from mer.library.store import connect, now, upsert_songs

    def row(i: int) -> dict:
        v, a = ((i * 37) % 200 - 100) / 101, ((i * 53) % 200 - 100) / 101
        quadrant = ("Q1" if v >= 0 else "Q2") if a >= 0 else ("Q4" if v >= 0 else "Q3")
        return {"path": f"/music/{i:03d}.mp3", "size": 1, "mtime_ns": 1, "sha1": "0" * 40, "duration": 2.0,
                "model": "default", "model_version": "2", "weights_sha1": "w", "valence": v, "arousal": a,
                "quadrant": quadrant, "indexed_at": now()}

    db = tmp_path / "music.sqlite"
    conn = connect(db, create=True)
    conn.execute("BEGIN")
    upsert_songs(conn, [row(i) for i in range(250)])
    conn.execute("COMMIT")
    conn.close()
    with _served("--library", str(db)) as (open_page, errors):
        page = open_page(PHONE, phone=True)
        _until(page, "window.merState.library.length === 250 && window.merState.libChart")
        assert page.locator("#lib-list li").count() == 200
        assert page.locator("#lib-count").inner_text() == "(250 songs; the list shows the first 200)"
        page.locator("#library input[value=Q1]").uncheck()
        n = page.evaluate("window.merState.library.filter(s => s.quadrant !== 'Q1').length")
        assert page.locator("#lib-list li").count() == min(n, 200)
        assert page.locator("#lib-count").inner_text().startswith(f"({n} of 250 songs: Q1 off")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.locator("#library").screenshot(path=str(shots / "phone-library-250.png"))
        assert not errors, errors
