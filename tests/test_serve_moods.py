"""Mood words on `mer serve`'s page, in a real headless Chromium: a song predicted with the default
(model version 3) shows its top 5 mood words with bars for their probabilities and one sentence on
what they are; the library, made by `mer index`, lists its songs by a chosen mood word (most
probable first, the probability beside each), "top 5" filters them, and the header counts what is
listed and why; a model or library without mood words shows none (the library: a note to index
again). Both at 1280x800 and at 390x844 (a phone), with no sideways scroll. Skipped with the reason
where Chromium or Playwright is missing. MER_SCREENSHOTS=DIR keeps the pictures taken on the way."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from test_serve_phone import DESKTOP, PHONE, REPO, _served, _until, needs_chromium

from mer import synth

pytest.importorskip("fastapi")
pytestmark = [pytest.mark.slow, needs_chromium]
TOP = 5
NO_SIDEWAYS = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MER_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _clip(folder: Path, name: str, v: float, a: float, seed: int, seconds: float = 6.0) -> Path:
    path = folder / name
    sf.write(path, synth.clip(v, a, seconds=seconds, sr=16000, seed=seed), 16000)
    return path


def _top(moods: dict[str, float], k: int = TOP) -> list[tuple[str, float]]:
    """What the page shows: most probable first, ties in the given order."""
    return sorted(moods.items(), key=lambda wp: -wp[1])[:k]


def _pct(p: float) -> str:
    """A probability as the page writes it: JavaScript's Math.round (halves up, not Python's to even)."""
    return f"{math.floor(100 * p + 0.5)}%"


def _index(music: Path, db: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "mer", "index", str(music), "--db", str(db), "-j", "1", "-q", *args],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert done.returncode == 0, done.stderr


def _upload(page, files: list[Path], model: str = "default") -> None:  # noqa: ANN001
    _until(page, f"document.querySelector('#model').textContent.includes({model!r})")
    page.set_input_files("#files", [str(f) for f in files])
    _until(page, f"window.merState.jobs.size === {len(files)} && "
                 "[...window.merState.jobs.values()].every(j => j.state === 'done')", timeout=120)
    _until(page, "window.merState.timeChart !== null")


#: the mood words as the song's panel shows them: [word, percentage text, bar width in % of its track]
#: every mood word's row inside its card
FITS = """[...document.querySelectorAll('#moods li')].every(li => {
  const r = li.getBoundingClientRect(), box = li.closest('.panel').getBoundingClientRect();
  return li.scrollWidth <= li.clientWidth && r.left >= box.left && r.right <= box.right + 0.5; })"""
SHOWN = """[...document.querySelectorAll('#moods li')].map(li => {
  const bar = li.querySelector('.bar'), fill = bar.querySelector('i');
  return [li.querySelector('.word').textContent, li.querySelector('.pct').textContent,
          100 * fill.getBoundingClientRect().width / bar.getBoundingClientRect().width]; })"""


# ------------------------------------------------------------------ the song's panel

def test_the_song_panel_shows_its_top_mood_words_with_bars(tmp_path, shots):
    import mer

    clip = _clip(tmp_path, "gentle-clip.wav", 0.5, -0.6, seed=1)
    expected = mer.predict(str(clip)).moods  # what mer predict says, for the same file
    assert len(expected) == 58
    top = _top(expected)
    with _served() as (open_page, errors):
        for size, phone, name in ((DESKTOP, False, "desktop"), (PHONE, True, "phone")):
            page = open_page(size, phone=phone)
            _upload(page, [clip])
            _until(page, "!document.querySelector('#moods-box').hidden")
            shown = page.evaluate(SHOWN)
            assert [w for w, _, _ in shown] == [w for w, _ in top], (shown, top)
            for (word, text, width), (_, p) in zip(shown, top):
                assert text == _pct(p), (word, text, p)
                assert abs(width - 100 * p) < 1.5, (word, width, p)  # the bar is the probability on [0, 1]
            box = page.locator("#moods-box")
            assert "AllMusic's editors" in box.inner_text() and "not facts" in box.inner_text()
            assert page.locator("#moods-head").inner_text() == "Mood words"
            assert page.evaluate("document.querySelector('#moods').getAttribute('aria-labelledby')") == "moods-head"
            assert page.evaluate(NO_SIDEWAYS), f"sideways scroll at {size}"
            assert page.evaluate(FITS), f"a mood word's row sticks out of its card at {size}"
            page.evaluate("document.querySelector('#moods-box').scrollIntoView({block: 'center'})")
            page.screenshot(path=str(shots / f"moods-detail-{name}.png"))
        assert not errors, errors


def test_a_model_and_a_library_without_mood_words_show_none(tmp_path, shots):
    music = tmp_path / "music"
    music.mkdir()
    for i, (v, a) in enumerate([(0.6, 0.6), (-0.6, -0.6)]):
        _clip(music, f"song{i}.wav", v, a, seed=i, seconds=4.0)
    db = tmp_path / "music.sqlite"
    _index(music, db, "--model", "fast")
    with _served("--model", "fast", "--library", str(db)) as (open_page, errors):
        page = open_page(DESKTOP)
        _upload(page, [music / "song0.wav"], model="fast")
        assert "moods" not in page.evaluate("[...window.merState.jobs.values()][0].result")
        assert page.locator("#moods-box").is_hidden() and page.locator("#moods li").count() == 0
        _until(page, "window.merState.library.length === 2 && window.merState.libChart")
        assert page.locator("#lib-moods").is_hidden()  # no select
        note = page.locator("#lib-moods-none")
        assert note.is_visible() and "indexed without mood words" in note.inner_text() and "mer index" in note.inner_text()
        assert page.locator("#lib-count").inner_text() == "(2 songs)"
        page.locator("#library").screenshot(path=str(shots / "moods-library-without.png"))
        assert not errors, errors


# ------------------------------------------------------------------ the library, by a mood word

def _listed(page) -> list[tuple[int, str]]:  # noqa: ANN001
    """The list as shown: (song id, the probability's text; "" without one)."""
    return [(int(i), t) for i, t in page.evaluate(
        "[...document.querySelectorAll('#lib-list li')].map(li => [li.dataset.id, (li.querySelector('.pct') || {}).textContent || ''])")]


def test_the_library_lists_songs_by_a_mood_word_and_counts_them(tmp_path, shots):
    from mer.library import Library

    music = tmp_path / "music"
    music.mkdir()
    for i, (v, a) in enumerate([(0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6), (0.3, 0.8), (-0.3, -0.8)]):
        _clip(music, f"song{i}.wav", v, a, seed=i, seconds=4.0)
    db = tmp_path / "music.sqlite"
    _index(music, db)
    with Library(db) as lib:
        songs, vocabulary = lib.songs(), lib.mood_words()
    assert len(songs) == 6 and len(vocabulary) == 58 and all(len(s["moods"]) == 58 for s in songs)
    # the word that is in the most songs' top 5 without being in all of them (then "top 5" filters), and
    # whose probabilities differ most between the songs (then the order is the word's, not the index's)
    in_top = {w: [s for s in songs if w in dict(_top(s["moods"]))] for w in vocabulary}
    spread = {w: max(s["moods"][w] for s in songs) - min(s["moods"][w] for s in songs) for w in vocabulary}
    word = max((w for w in vocabulary if 0 < len(in_top[w]) < 6), key=lambda w: (len(in_top[w]), spread[w]))
    by_word = sorted(songs, key=lambda s: (-s["moods"][word], s["id"]))
    assert [s["id"] for s in by_word] != [s["id"] for s in songs] or spread[word] == 0

    with _served("--library", str(db)) as (open_page, errors):
        page = open_page(DESKTOP)
        _until(page, "window.merState.library.length === 6 && window.merState.libChart")
        assert page.locator("#lib-moods-none").is_hidden()
        options = page.evaluate("[...document.querySelectorAll('#lib-mood option')].map(o => o.value)")
        assert options == [""] + sorted(vocabulary)
        assert page.locator("label[for=lib-mood]").inner_text() == "mood word"
        assert page.locator("#lib-mood-top").is_disabled()  # nothing to filter by before a word is chosen
        assert [i for i, _ in _listed(page)] == [s["id"] for s in songs]

        # a word chosen: every song, most probable first, its probability beside it; the count is unchanged
        page.locator("#lib-mood").select_option(word)
        assert _listed(page) == [(s["id"], _pct(s['moods'][word])) for s in by_word]
        assert page.locator("#lib-count").inner_text() == "(6 songs)"
        assert page.evaluate("document.querySelector('#lib-list').getAttribute('aria-label')") == f"songs, most likely {word} first"
        # the plane: the likelier songs' dots are the bigger
        radius = page.evaluate("""(() => { const c = window.merState.libChart, out = {};
            c.data.datasets.forEach((d, i) => c.getDatasetMeta(i).data.forEach((el, j) => { out[d.data[j].id] = el.options.radius; }));
            return out; })()""")
        assert [radius[str(s["id"])] for s in by_word] == sorted(radius.values(), reverse=True)
        # "top 5": only the songs with the word among their top 5, and the header says so
        page.locator("#lib-mood-top").check()
        kept = [s for s in by_word if s in in_top[word]]
        assert [i for i, _ in _listed(page)] == [s["id"] for s in kept]
        assert page.locator("#lib-count").inner_text() == f"({len(kept)} of 6 songs: {word} among their top 5 words)"
        # with a quadrant unticked as well: both reasons, and the list is what both leave
        q = kept[0]["quadrant"]
        page.locator(f"#library input[value={q}]").uncheck()
        both = [s for s in kept if s["quadrant"] != q]
        assert [i for i, _ in _listed(page)] == [s["id"] for s in both]
        assert page.locator("#lib-count").inner_text() == f"({len(both)} of 6 songs: {q} off; {word} among their top 5 words)"
        page.locator(f"#library input[value={q}]").check()
        page.locator("#lib-mood-top").uncheck()
        assert page.locator("#lib-count").inner_text() == "(6 songs)"
        # a song played from the list says its top 3 words
        page.locator("#lib-list li").first.click()
        top3 = ", ".join(f"{w} {_pct(p)}" for w, p in _top(by_word[0]["moods"], 3))
        assert page.locator("#lib-now").inner_text().endswith(f"; mood words {top3}")
        page.locator("#library").screenshot(path=str(shots / "moods-library-desktop.png"))
        page.screenshot(path=str(shots / "moods-library-desktop-page.png"), full_page=True)

        # the keyboard: the select takes arrows, a listed song takes Enter
        page.locator("#lib-mood").select_option("")
        page.locator("#lib-mood").focus()
        page.keyboard.press("ArrowDown")
        first = sorted(vocabulary)[0]
        _until(page, f"document.querySelector('#lib-mood').value === {first!r}", timeout=5)
        want = sorted(songs, key=lambda s: (-s["moods"][first], s["id"]))
        assert [i for i, _ in _listed(page)] == [s["id"] for s in want]
        page.locator("#lib-list li").nth(1).focus()
        page.keyboard.press("Enter")
        _until(page, f"(document.querySelector('#lib-audio').getAttribute('src') || '').endsWith('/api/library/audio/{want[1]['id']}')",
               timeout=5)

        # on a phone: the same, and nothing wider than the screen
        phone = open_page(PHONE, phone=True)
        _until(phone, "window.merState.library.length === 6 && window.merState.libChart")
        phone.locator("#lib-mood").select_option(word)
        phone.locator("#lib-mood-top").check()
        assert phone.locator("#lib-count").inner_text() == f"({len(kept)} of 6 songs: {word} among their top 5 words)"
        assert phone.evaluate(NO_SIDEWAYS)
        phone.locator("#library").screenshot(path=str(shots / "moods-library-phone.png"))

        # two songs indexed before mood words (an older mer): left out when a word is chosen, and counted
        old = [songs[1]["id"], songs[4]["id"]]
        with sqlite3.connect(db) as conn:
            conn.execute(f"UPDATE songs SET moods = NULL WHERE id IN ({old[0]}, {old[1]})")
        conn.close()
        page = open_page(DESKTOP)
        _until(page, "window.merState.library.length === 6 && window.merState.libChart")
        page.locator("#lib-mood").select_option(word)
        assert [i for i, _ in _listed(page)] == [s["id"] for s in by_word if s["id"] not in old]
        assert page.locator("#lib-count").inner_text() == "(4 of 6 songs: 2 songs without mood words)"
        assert not errors, errors
