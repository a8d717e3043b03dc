"""mer convert and the CLI skeleton: outputs, skipping, bad files, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from mer import cli
from mer.convert import convert


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mer", *args], capture_output=True, text=True, timeout=300)


def test_convert_tree_mirrors_paths_and_skips_existing(tmp_path, wav_file, mp3_file):
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    mp3_file.rename(src / "a" / "b" / "song.mp3")
    wav_file.rename(src / "top.wav")
    report = convert(src, tmp_path / "out", progress=False, jobs=2)
    out = tmp_path / "out" / "a" / "b" / "song.wav"
    assert sorted(p.name for p in report.converted) == ["song.wav", "top.wav"] and not report.failed
    meta = sf.info(out)
    assert (meta.samplerate, meta.channels, meta.subtype) == (44100, 2, "PCM_16")
    assert abs(meta.duration - 5.0) < 0.1
    top = sf.info(tmp_path / "out" / "top.wav")
    assert (top.samplerate, top.channels) == (44100, 1)  # resampled from 22.05 kHz, channels kept
    again = convert(src, tmp_path / "out", progress=False)
    assert len(again.skipped) == 2 and not again.converted
    redo = convert(src, tmp_path / "out", sr=16000, channels=1, overwrite=True, progress=False, jobs=1)
    assert len(redo.converted) == 2
    assert (sf.info(out).samplerate, sf.info(out).channels) == (16000, 1)


def test_convert_reports_bad_files_and_converts_the_rest(tmp_path, bad_corpus, wav_file):
    src = bad_corpus["empty"].parent
    wav_file.rename(src / "good.wav")
    report = convert(src, tmp_path / "out", progress=False, jobs=2)
    assert [p.name for p in report.converted] == ["good.wav"]
    failed = {p.name: msg for p, msg in report.failed}
    assert set(failed) == {"empty.mp3", "text.mp3", "truncated.mp3", "header_only.wav"}
    for name, msg in failed.items():
        assert name in msg and "\n" not in msg
    leftovers = [p.name for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert leftovers == ["good.wav"]  # no half-written or temporary files


def test_cli_convert_one_line_errors(tmp_path, bad_corpus):
    for kind in ("empty", "text", "truncated", "header_only", "directory", "missing"):
        path = bad_corpus[kind]
        res = _run("convert", str(path), str(tmp_path / "out"), "-q")
        assert res.returncode != 0, kind
        errors = [line for line in res.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and str(path) in errors[0], (kind, res.stderr)
        assert "Traceback" not in res.stderr


def test_cli_help_version_and_parse_args():
    res = _run("--help")
    assert res.returncode == 0 and "convert" in res.stdout
    assert _run("--version").stdout.startswith("mer ")
    args = cli.parse_args(["convert", "in", "out", "--sr", "22050", "--channels", "1", "--overwrite"])
    assert (args.sr, args.channels, args.overwrite) == (22050, 1, True)
    with pytest.raises(SystemExit):
        cli.parse_args(["convert", "in", "out", "--channels", "3"])


def test_cli_error_is_one_line_and_debug_shows_traceback(tmp_path):
    missing = tmp_path / "nope"
    res = _run("convert", str(missing), str(tmp_path / "o"))
    assert res.returncode == 1 and res.stderr.strip().count("\n") == 0 and str(missing) in res.stderr
    res = _run("--debug", "convert", str(missing), str(tmp_path / "o"))
    assert "Traceback" in res.stderr


def test_convert_single_file_to_wav_path(tmp_path, wav_file):
    convert(wav_file, tmp_path / "x" / "y.wav", progress=False)
    y, sr = sf.read(tmp_path / "x" / "y.wav")
    assert sr == 44100 and np.abs(y).max() > 0.01


def test_ctrl_c_leaves_only_complete_wavs(tmp_path):
    import os
    import signal
    import time

    src = tmp_path / "src"
    src.mkdir()
    clip = np.tile(np.random.default_rng(0).uniform(-0.3, 0.3, 22050).astype(np.float32), 20)  # 20 s
    for i in range(30):
        sf.write(src / f"{i:02d}.flac", clip, 22050)
    proc = subprocess.Popen([sys.executable, "-m", "mer", "convert", str(src), str(tmp_path / "out"), "-j", "2", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(2.0)
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C signals the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130) and "Traceback" not in err
    outputs = list((tmp_path / "out").rglob("*")) if (tmp_path / "out").exists() else []
    assert not [p for p in outputs if p.name.startswith(".")]  # no temporary files left
    for p in outputs:
        assert sf.info(p).frames == 20 * 44100  # every wav that exists is complete
