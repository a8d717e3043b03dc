"""What the readers people use show of ``mer tag``'s fields: ffprobe (FFmpeg), MediaInfo and
exiftool, run as programs on files mer tagged in every format it writes, each already holding
a MOOD value of the user's ("chill"). mer's MOOD must be visible in each reader, never split
into pieces, and the user's value must still be in the file. Each reader is skipped, with the
package to install, where it is absent (``.ci/run`` installs all three)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from test_tags import EMOTION, FORMATS, make_clip, raw, seed

pytest.importorskip("mutagen", reason="mutagen not installed: pip install 'mer-toolkit[tags]'")
from mer import tags  # noqa: E402

OURS = tags.MOOD_VALUES["Q4"]  # "Q4 calm relaxed"


def _need(program: str, package: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} not installed: apt-get install {package}")


def _ffprobe(path) -> list[str]:  # noqa: ANN001
    out = json.loads(subprocess.run(["ffprobe", "-v", "quiet", "-of", "json", "-show_format", "-show_streams",
                                     str(path)], capture_output=True, text=True, timeout=60, check=True).stdout)
    found = [out.get("format", {}).get("tags", {})] + [s.get("tags", {}) for s in out.get("streams", [])]
    return [v for t in found for k, v in t.items() if k.upper() in ("MOOD", "TMOO")]


def _mediainfo(path) -> list[str]:  # noqa: ANN001
    out = json.loads(subprocess.run(["mediainfo", "--Output=JSON", str(path)], capture_output=True, text=True,
                                    timeout=60, check=True).stdout)
    general = out["media"]["track"][0]
    return [v for k, v in {**general, **general.get("extra", {})}.items() if k.upper() == "MOOD"]


def _exiftool(path) -> list[str]:  # noqa: ANN001
    out = json.loads(subprocess.run(["exiftool", "-j", "-Mood", str(path)], capture_output=True, text=True,
                                    timeout=60, check=True).stdout)[0]
    v = out.get("Mood", [])
    return [str(x) for x in (v if isinstance(v, list) else [v])]


READERS = {"ffprobe": (_ffprobe, "ffmpeg"), "mediainfo": (_mediainfo, "mediainfo"),
           "exiftool": (_exiftool, "libimage-exiftool-perl")}


@pytest.fixture(scope="module")
def tagged(tmp_path_factory) -> dict:
    """{(format, the user had a MOOD): file mer tagged}: with "chill" already there, and without."""
    folder = tmp_path_factory.mktemp("readers")
    files = {}
    for fmt in FORMATS:
        for had in (True, False):
            p = make_clip(folder / f"song-{'own' if had else 'none'}.{fmt}")
            if had:
                seed(p)  # the user's own MOOD value, "chill"
            tags.write(p, EMOTION)
            files[fmt, had] = p
    return files


@pytest.mark.parametrize("had", [True, False], ids=["with-users-mood", "without"])
@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_mers_mood_is_visible_whole_in_each_reader_and_the_users_is_kept(tagged, reader, fmt, had):
    read, package = READERS[reader]
    _need(reader, package)
    shown = read(tagged[fmt, had])
    assert shown, f"{reader} shows no mood in {fmt}"
    assert any(OURS in v for v in shown), f"{reader} does not show {OURS!r} in {fmt}: {shown}"
    if had:
        assert "chill" in raw(tagged[fmt, had], "MOOD")  # the user's value stays in the file
    else:
        assert raw(tagged[fmt, had], "MOOD") == [OURS]


@pytest.mark.parametrize("fmt", ["mp3", "flac", "m4a"])
def test_the_numbers_are_visible_in_ffprobe(tagged, fmt):
    _need("ffprobe", "ffmpeg")
    out = json.loads(subprocess.run(["ffprobe", "-v", "quiet", "-of", "json", "-show_format", "-show_streams",
                                     str(tagged[fmt, True])], capture_output=True, text=True, timeout=60).stdout)
    found = {k.upper(): v for t in [out["format"].get("tags", {})] + [s.get("tags", {}) for s in out["streams"]]
             for k, v in t.items()}
    assert found.get("VALENCE") == "0.612" and found.get("MER_QUADRANT") == "Q4"
