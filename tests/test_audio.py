"""mer.audio: real clips of every format, resampling, streaming, and the bad-file corpus."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import MERError, MERWarning, audio


@pytest.mark.slow
def test_all_4q_clips_decode_with_expected_rate_and_duration(shared):
    clips = sorted(shared("4q-dev").glob("Q?/*.mp3"))
    assert len(clips) == 600
    for path in clips:
        meta = audio.info(path)
        assert meta.samplerate in (16000, 22050, 32000, 44100), path
        y, sr = audio.load(path)
        assert sr == meta.samplerate and y.dtype == np.float32 and y.ndim == 1
        assert 10.0 <= y.size / sr <= 30.5, path
        assert abs(y.size - meta.frames) <= 0.25 * sr, path  # mp3 headers only estimate the length


@pytest.mark.parametrize("folder, pattern, seconds, rate, channels", [
    ("emomusic-mini/clips_45seconds", "*.mp3", (44.9, 45.2), 44100, 1),
    ("pmemo-samples", "*.mp3", (45.0, 60.3), 44100, 2),
    ("misc-audio", "*.ogg", (61.4, 61.5), 44100, 2),
])
def test_other_real_clips(folder, pattern, seconds, rate, channels, shared):
    files = sorted(shared(folder).glob(pattern))
    assert files
    for path in files:
        y, sr = audio.load(path, mono=False)
        assert sr == rate and y.shape[0] == channels
        assert seconds[0] <= y.shape[1] / sr <= seconds[1], path
        y16, sr16 = audio.load(path, sr=16000)
        assert sr16 == 16000 and y16.ndim == 1
        assert abs(y16.size - y.shape[1] * 16000 / rate) <= 2


def test_resampling_keeps_pitch(tmp_path):
    sr = 44100
    t = np.arange(sr * 2) / sr
    sf.write(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440.0 * t), sr, subtype="FLOAT")
    y, out_sr = audio.load(tmp_path / "a.wav", sr=16000)
    assert out_sr == 16000 and y.size == 32000
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    assert abs(np.argmax(spectrum) * 16000 / y.size - 440.0) < 1.0
    assert abs(np.max(np.abs(y[1000:-1000])) - 0.5) < 0.01


def test_stream_in_small_blocks_equals_load(wav_file):
    full, _ = audio.load(wav_file, sr=16000)
    blocks = list(audio.stream(wav_file, sr=16000, block_frames=4096))
    assert len(blocks) > 5
    np.testing.assert_allclose(np.concatenate(blocks), full, atol=1e-6)


def test_stereo_layout_is_kept(mp3_file):
    y, sr = audio.load(mp3_file, mono=False)
    assert y.shape[0] == 2 and sr == 44100
    assert abs(np.dot(y[1], y[0]) / np.dot(y[0], y[0]) - 0.5) < 0.02  # right channel at half level (lossy)
    part, _ = audio.load(mp3_file, mono=False, offset=1.0, duration=2.0)
    assert part.shape == (2, 88200)


def test_offset_and_duration_are_sample_exact(tmp_path):
    y = np.random.default_rng(0).uniform(-0.5, 0.5, size=(3 * 8000, 2)).astype(np.float32)
    sf.write(tmp_path / "n.wav", y, 8000, subtype="FLOAT")
    part, _ = audio.load(tmp_path / "n.wav", mono=False, offset=1.0, duration=1.25)
    np.testing.assert_array_equal(part, y[8000:18000].T)


def test_offset_past_end(wav_file):
    with pytest.raises(MERError, match="past the end"):
        audio.load(wav_file, offset=60.0)


def test_silent_and_short_audio_warn(tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros(22050 * 2, dtype=np.float32), 22050)
    with pytest.warns(MERWarning, match="silent"):
        audio.load(tmp_path / "silence.wav")
    sf.write(tmp_path / "short.wav", 0.1 * np.ones(1000, dtype=np.float32), 22050)
    with pytest.warns(MERWarning, match="very short"):
        y, _ = audio.load(tmp_path / "short.wav")
    assert y.size == 1000


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "header_only", "directory", "missing"])
def test_bad_files_raise_one_clear_error(bad_corpus, kind):
    path = bad_corpus[kind]
    with pytest.raises(MERError) as err, warnings.catch_warnings():
        warnings.simplefilter("error")
        audio.load(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message


def test_ensure_channels():
    mono = np.arange(4, dtype=np.float32)
    assert audio.ensure_channels(mono, 2).shape == (2, 4)
    st = np.stack([mono, -mono])
    np.testing.assert_allclose(audio.ensure_channels(st, 1), np.zeros((1, 4)))
    assert audio.ensure_channels(st, 2) is st


def test_find_audio_skips_hidden_and_other_files(tmp_path, wav_file):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.flac").write_bytes(b"x")
    (tmp_path / ".hidden.wav").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    found = audio.find_audio([tmp_path])
    assert [p.name for p in found] == ["clip.wav", "b.flac"]
    with pytest.raises(MERError, match="no such file"):
        audio.find_audio([tmp_path / "nope"])


def _damaged_mp3(mp3_file: Path, fails: bool) -> Path:
    """``mp3_file`` with every third byte of 2000 (from byte 20000) garbled: libmpg123 (inside
    libsndfile) complains on stderr and either libsndfile fails mid-stream (``fails``) or the
    damaged frames are skipped. The first of a few junk seeds that does so (they differ only in
    how libmpg123 takes the junk)."""
    data = mp3_file.read_bytes()
    for seed in range(20):
        junk = np.random.default_rng(seed).integers(0, 256, 667, dtype=np.uint8)
        bad = bytearray(data)
        bad[20000:22000:3] = junk.tobytes()
        path = mp3_file.with_name(f"{'corrupt' if fails else 'damaged'}{seed}.mp3")
        path.write_bytes(bytes(bad))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                audio.load(path)
            except MERError:
                if fails:
                    return path
                continue
        if not fails and any("damaged MP3 frames" in str(w.message) for w in caught):
            return path
    raise AssertionError(f"no junk seed made the mp3 {'fail' if fails else 'skip frames'}")


def test_a_corrupt_mp3_keeps_libmpg123s_noise_off_stderr(mp3_file, capfd):
    bad = _damaged_mp3(mp3_file, fails=True)
    capfd.readouterr()
    with pytest.raises(MERError) as err:
        audio.load(bad)
    message = str(err.value)
    assert str(bad) in message and "\n" not in message and "libmpg123:" in message  # its telling line, in mer's
    out, printed = capfd.readouterr()
    assert printed == "" and out == ""
    res = subprocess.run([sys.executable, "-m", "mer", "predict", str(bad)], capture_output=True, text=True,
                         timeout=300)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and all(ln.startswith("mer: ") for ln in lines), res.stderr
    assert [ln for ln in lines if ln.startswith("mer: error:")] == [lines[0]] and str(bad) in lines[0]


def _in_threads(n: int, work, *also) -> None:  # noqa: ANN001
    """``work`` in ``n`` threads at once (and each of ``also`` in one more), until ``work`` ends."""
    stop = threading.Event()
    others = [threading.Thread(target=f, args=(stop,)) for f in also]
    workers = [threading.Thread(target=work) for _ in range(n)]
    for t in others + workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    for t in others:
        t.join()


def test_decoding_threads_share_the_redirection_and_other_threads_output_passes(mp3_file, capfd):
    """Four threads decode damaged mp3s at once: none of libmpg123's lines reach stderr, each
    decode gets its one error or warning, and fd 2 is the same file afterwards. While threads
    decode sound mp3s (fd 2 redirected around each libsndfile call), every line another thread
    writes to fd 2 reaches stderr."""
    bad, damaged = _damaged_mp3(mp3_file, fails=True), _damaged_mp3(mp3_file, fails=False)
    before = os.fstat(2).st_ino
    capfd.readouterr()
    said: list[str] = []

    def decode(paths: tuple[Path, ...]) -> None:
        for _ in range(5):
            for path in paths:
                try:
                    audio.load(path, sr=16000)
                except MERError as exc:
                    said.append(str(exc))

    with warnings.catch_warnings(record=True) as caught:  # one catcher for all threads (it is global state)
        warnings.simplefilter("always")
        _in_threads(4, lambda: decode((bad, damaged)))
    said.extend(str(w.message) for w in caught)
    assert capfd.readouterr() == ("", "")
    assert os.fstat(2).st_ino == before
    assert sum("damaged MP3 frames were skipped" in p for p in said) == 20  # one warning per decode
    assert sum(("decoding failed" in p or "not a readable" in p) and "libmpg123:" in p for p in said) == 20
    written: list[int] = []

    def chatter(stop: threading.Event) -> None:
        while not stop.is_set():
            os.write(2, f"another thread's line {len(written)}\n".encode())
            written.append(1)
            time.sleep(0.0005)

    _in_threads(4, lambda: decode((mp3_file,)), chatter)
    _, printed = capfd.readouterr()
    assert os.fstat(2).st_ino == before and len(written) > 10
    assert sorted(printed.splitlines()) == sorted(f"another thread's line {i}" for i in range(len(written)))
