"""The beets plugin (beetsplug/mer.py) on a real beets library made in a temporary folder from
generated clips: ``beet import -A`` reads what ``mer tag`` wrote, ``beet mer`` predicts only the
rest, ``beet ls mood_relaxed:0.7..`` selects by the attributes, ``-w`` writes the files safely,
and the import hook (``mer: auto: yes``) predicts while importing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("beets", reason="beets not installed: pip install 'mer-toolkit[beets]' to test the plugin")

from mer import tags  # noqa: E402
from mer.bundle import Bundle  # noqa: E402
from test_tags import audio_frames, make_clip, raw  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def beets_dir(tmp_path: Path, music: Path, auto: bool = False) -> Path:
    d = tmp_path / "beets"
    d.mkdir()
    (d / "config.yaml").write_text(f"directory: {music}\nlibrary: {d / 'library.db'}\nplugins: mer\n"
                                   f"import:\n  copy: no\n  write: no\n  quiet: yes\nmer:\n  auto: {'yes' if auto else 'no'}\n"
                                   "  workers: 1\n")
    return d


def beet(config: Path, *args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "beets", *args], capture_output=True, text=True, timeout=300,
                         cwd=REPO, env={**os.environ, "BEETSDIR": str(config)})
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def listing(config: Path, *query: str) -> dict[str, str]:
    """{file name: '$valence $mood_relaxed $mer_quadrant'} of the items ``query`` selects."""
    out = beet(config, "ls", "-f", "$path|$valence $mood_relaxed $mer_quadrant", *query).stdout
    return {Path(p).name: v for p, v in (line.split("|") for line in out.splitlines())}


def test_beet_import_reads_mer_tags_and_beet_mer_predicts_the_rest(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    calm = make_clip(music / "calm.flac", 0.6, -0.6, 4.0)
    make_clip(music / "tense.mp3", -0.6, 0.6, 4.0)
    make_clip(music / "dark.ogg", -0.6, -0.6, 4.0)
    bundle = Bundle.resolve("default")
    tags.write(calm, tags.Emotion(0.6, -0.6, "Q4", {"Q1": 0.05, "Q2": 0.0, "Q3": 0.05, "Q4": 0.9}, bundle.name,
                                  bundle.version, bundle.digest))  # as `mer tag` would have left it
    config = beets_dir(tmp_path, music)
    beet(config, "import", "-A", str(music))
    assert listing(config) == {"calm.flac": "0.800 0.900 Q4", "tense.mp3": "$valence $mood_relaxed ",
                               "dark.ogg": "$valence $mood_relaxed "}

    res = beet(config, "mer")
    assert "2 of 3 items to predict" in res.stderr  # calm.flac was read from its tags
    got = listing(config)
    for name in ("tense.mp3", "dark.ogg"):
        valence, relaxed, quadrant = got[name].split()
        assert 0 <= float(valence) <= 1 and 0 <= float(relaxed) <= 1 and quadrant in ("Q1", "Q2", "Q3", "Q4")
    assert set(listing(config, "mood_relaxed:0.85..")) == {"calm.flac"}
    assert set(listing(config, "valence:0..1")) == {"calm.flac", "tense.mp3", "dark.ogg"}
    assert "0 of 3 items to predict" in beet(config, "mer").stderr
    assert not tags.read(music / "dark.ogg")  # without -w the files are not touched

    before = audio_frames(music / "dark.ogg")[0]
    beet(config, "mer", "-f", "-w", "path:" + str(music / "dark.ogg"))
    assert raw(music / "dark.ogg", "VALENCE") == [got["dark.ogg"].split()[0]]
    assert raw(music / "dark.ogg", "MER_WEIGHTS_SHA1") == [bundle.digest]
    assert audio_frames(music / "dark.ogg")[0] == before


def test_import_hook_predicts_while_importing(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    make_clip(music / "song.wav", 0.6, 0.6, 4.0)
    config = beets_dir(tmp_path, music, auto=True)
    beet(config, "import", "-A", str(music))
    (value,) = listing(config, "mer_model:default").values()
    assert value.split()[2] in ("Q1", "Q2", "Q3", "Q4")


def test_beet_write_leaves_what_mer_tag_writes_and_names_untagged_files(tmp_path):
    """``beet mer`` then ``beet write``: the file ends with mer's fields AND its MOOD value (beets
    has no mood field; the plugin adds it after beets writes), so ``mer tag`` finds it unchanged.
    Items without tags are named by their file, not ``Various Artists -  - ``."""
    music = tmp_path / "music"
    music.mkdir()
    song = make_clip(music / "untagged.flac", 0.6, -0.6, 4.0)
    config = beets_dir(tmp_path, music)
    beet(config, "import", "-A", str(music))
    res = beet(config, "mer")
    assert "untagged.flac: Q" in res.stderr and " -  - " not in res.stderr
    assert not tags.read(song)
    beet(config, "write")
    found = tags.read(song)
    (quadrant,) = found["MER_QUADRANT"]
    (mood,) = found["MOOD"]
    assert mood.startswith(tags.MOOD_VALUES[quadrant] + " · ") and tags.is_mers(mood)  # + the top mood words
    assert tags.write(song, tags.Emotion.from_tags({k: v[0] for k, v in found.items() if k != "MOOD"})) == {}
    from mer.cli import main

    assert main(["tag", str(song)]) == 0  # the same model's fields: left unchanged, nothing predicted
    assert tags.read(song) == found


def test_acousticbrainz_beside_mer_is_a_warning_not_a_traceback(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    make_clip(music / "a.flac", 0.6, 0.6, 3.0)
    config = beets_dir(tmp_path, music)
    text = (config / "config.yaml").read_text().replace("plugins: mer\n", "plugins: mer acousticbrainz\n")
    (config / "config.yaml").write_text(text)
    for args in (["import", "-A", str(music)], ["ls"], ["mer"], ["ls", "mood_happy:0..1"]):
        res = beet(config, *args)  # exit 0 asserted
        assert "Traceback" not in res.stderr and "PluginConflictError" not in res.stderr
    assert "acousticbrainz plugin is enabled too" in res.stderr
    assert len(listing(config, "mood_happy:0..1")) == 1


def test_beet_mer_fills_one_attribute_per_mood_word_and_beet_write_writes_them(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    song = make_clip(music / "song.flac", 0.6, -0.6, 4.0)
    config = beets_dir(tmp_path, music)
    beet(config, "import", "-A", str(music))
    beet(config, "mer")
    words = Bundle.resolve("default").mood_words
    out = beet(config, "ls", "-f", "$mer_mood_calm_peaceful|$mer_mood_gentle").stdout.strip()
    calm, gentle = (float(x) for x in out.split("|"))
    assert 0 <= calm <= 1 and 0 <= gentle <= 1
    assert len(listing(config, "mer_mood_calm_peaceful:0..1")) == 1  # a smart query compares the number
    beet(config, "write")
    found = tags.read(song)
    assert found["MER_MOOD_CALM_PEACEFUL"] == [f"{calm:.3f}"]
    assert sum(k.startswith("MER_MOOD_") for k in found) == len(words)
    assert " · " in found["MOOD"][0]  # the quadrant's value and the top words
