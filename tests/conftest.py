"""Shared fixtures: the real data beside the repo (skipped when absent) and generated audio."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import synth

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: the browser the page's tests drive (tests/test_serve.py); None skips them, said at start and end
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
NO_BROWSER = ("browser tests of `mer serve` SKIPPED: no Chromium on this machine; install it with "
              "`sudo apt-get install chromium` (Debian/Ubuntu) or `brew install --cask chromium` (macOS), "
              "and `pip install playwright`")


def pytest_sessionstart(session: pytest.Session) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if CHROMIUM is None and reporter is not None:  # said even under -q, where report headers are not
        reporter.write_line(NO_BROWSER, yellow=True)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # noqa: ANN001
    if CHROMIUM is None:
        terminalreporter.write_line(NO_BROWSER, yellow=True)


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test (with the reason) when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not present at {p} (it lives beside the repo in ../shared/data)")
    return p


@pytest.fixture
def shared():  # noqa: ANN201
    """``shared("4q-dev", ...)``: a path under ../shared/data, or skip the test when it is absent."""
    return shared_path


@pytest.fixture
def wav_file(tmp_path: Path) -> Path:
    """A 5 s mono 22.05 kHz synthetic music clip."""
    p = tmp_path / "clip.wav"
    sf.write(p, synth.clip(0.5, 0.5, seconds=5.0, sr=22050), 22050)
    return p


@pytest.fixture
def mp3_file(tmp_path: Path) -> Path:
    """A 5 s stereo 44.1 kHz mp3 made by libsndfile's encoder."""
    p = tmp_path / "clip.mp3"
    y = synth.clip(-0.5, 0.5, seconds=5.0, sr=44100)
    sf.write(p, np.stack([y, 0.5 * y], axis=1), 44100, format="MP3")
    return p


@pytest.fixture
def bad_corpus(tmp_path: Path, mp3_file: Path) -> dict[str, Path]:
    """The bad files every reader must reject cleanly, by kind."""
    d = tmp_path / "bad"
    d.mkdir()
    (d / "empty.mp3").write_bytes(b"")
    (d / "text.mp3").write_text("this is not audio, just text renamed to .mp3\n")
    data = mp3_file.read_bytes()
    (d / "truncated.mp3").write_bytes(data[: len(data) // 2 + 7])
    sf.write(d / "full.wav", np.zeros((100, 2), dtype=np.float32), 8000)
    (d / "header_only.wav").write_bytes((d / "full.wav").read_bytes()[:44])
    (d / "full.wav").unlink()
    (d / "folder.mp3").mkdir()
    return {"empty": d / "empty.mp3", "text": d / "text.mp3", "truncated": d / "truncated.mp3",
            "header_only": d / "header_only.wav", "directory": d / "folder.mp3", "missing": d / "missing.mp3"}


KILLER = '''"""A test's stand-in for a worker killed on one file (out of memory, a decoder crash): every
Python process started with this folder on PYTHONPATH patches mer's per-file step so that the
file {victim!r} ends its process with status 137, as the kernel's OOM killer would."""
import os

import mer.infer.batch as _batch

_real = _batch.predict_file


def _killing(predictor, path, options):
    if os.path.abspath(path) == {victim!r}:
        os._exit(137)
    return _real(predictor, path, options)


_batch.predict_file = _killing
'''


class KillOn:
    """``kill_on(path)``: an environment (a dict for ``subprocess``, also set in ``os.environ``
    for spawned workers) in which any new Python process that predicts ``path`` dies at once;
    ``kill_on.stop()`` ends it. The stand-in is a ``sitecustomize`` module made here, so no
    test hook lives in shipped code."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.saved = folder, os.environ.get("PYTHONPATH")

    def __call__(self, path: str | os.PathLike) -> dict[str, str]:
        self.folder.mkdir(exist_ok=True)
        (self.folder / "sitecustomize.py").write_text(KILLER.format(victim=os.path.abspath(path)))
        repo = str(Path(__file__).resolve().parents[1])
        os.environ["PYTHONPATH"] = os.pathsep.join([str(self.folder), repo] + ([self.saved] if self.saved else []))
        return dict(os.environ)

    def stop(self) -> None:
        (self.folder / "sitecustomize.py").unlink(missing_ok=True)
        if self.saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = self.saved


@pytest.fixture
def kill_on(tmp_path: Path):  # noqa: ANN201
    """See :class:`KillOn`."""
    killer = KillOn(tmp_path / "killer-site")
    yield killer
    killer.stop()
