"""Audio in: AAC/m4a, Opus, WebM and WMA through PyAV when libsndfile cannot; names that are not
UTF-8; NaN, truncated, out-of-range and non-regular inputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import AudioError, MERWarning, audio, synth
from mer.features import FeatureConfig, stream_features

REPO = Path(__file__).resolve().parents[1]
SR = 44100


def _encode(path: Path, codec: str, seconds: float = 3.0, rate: int = SR) -> np.ndarray:
    """Write ``seconds`` of a synthetic clip with PyAV's encoder ``codec``; return the source (mono)."""
    av = pytest.importorskip("av")
    y = synth.clip(0.5, 0.5, seconds, rate, seed=7).astype(np.float32)
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=rate, layout="stereo")
        s.bit_rate = 128000
        fmt = s.codec_context.codec.audio_formats[0].name if s.codec_context.codec.audio_formats else "fltp"
        frame_size = 1024
        for k in range(0, len(y), frame_size):
            chunk = np.stack([y[k:k + frame_size]] * 2)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
            frame.sample_rate = rate
            for f in av.AudioResampler(format=fmt, layout="stereo", rate=rate).resample(frame):
                for packet in s.encode(f):
                    out.mux(packet)
        for packet in s.encode(None):
            out.mux(packet)
    return y


@pytest.mark.parametrize("name, codec, rate", [("clip.m4a", "aac", 44100), ("clip.opus", "libopus", 48000),
                                               ("clip.webm", "libopus", 48000), ("clip.wma", "wmav2", 44100)])
def test_ffmpeg_only_formats_decode_streamed_through_pyav(tmp_path, name, codec, rate):
    av = pytest.importorskip("av")
    try:
        av.codec.Codec(codec, "w")
    except Exception:  # noqa: BLE001
        pytest.skip(f"this PyAV's FFmpeg has no {codec} encoder")
    path = tmp_path / name
    try:
        src = _encode(path, codec, 3.0, rate)
    except av.error.FFmpegError as exc:
        pytest.skip(f"this PyAV's FFmpeg cannot encode {codec} here ({exc})")
    assert audio.find_audio([tmp_path]) == [path]
    meta = audio.info(path)
    assert meta.decoder in ("av", "sndfile") and meta.samplerate == rate and meta.channels == 2
    y, sr = audio.load(path, sr=16000)
    assert sr == 16000 and abs(len(y) / sr - 3.0) < 0.15
    ref = audio.load(_wav(tmp_path, src, rate), sr=16000)[0]
    n = min(len(y), len(ref))
    lag = int(np.argmax(np.correlate(y[: n // 2], ref[:2000], "valid"))) if n > 4000 else 0
    assert np.corrcoef(y[lag:lag + n // 2], ref[: n // 2])[0, 1] > 0.8
    blocks = list(audio.stream(path, sr=16000, offset=1.0, duration=1.0, block_frames=4096))
    assert all(b.shape[-1] <= (4096 + 8192) * 16000 / rate for b in blocks)  # bounded: one block plus a codec frame
    assert abs(sum(b.shape[-1] for b in blocks) / 16000 - 1.0) < 0.05
    assert stream_features(path, FeatureConfig()).shape[:2] == (1, 96)


def _wav(folder: Path, y: np.ndarray, rate: int) -> Path:
    p = folder / "ref.wav"
    sf.write(p, y, rate, subtype="FLOAT")
    return p


def test_without_pyav_an_m4a_names_the_install_line(tmp_path, monkeypatch):
    path = tmp_path / "song.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    monkeypatch.setattr(audio.audio_av, "available", lambda: False)
    with pytest.raises(AudioError, match=r"song\.m4a: unsupported format for libsndfile .*mer-toolkit\[formats\]"):
        audio.info(path)
    text = tmp_path / "notes.mp3"
    text.write_text("plain text")
    with pytest.raises(AudioError, match="not an mp3 file"):
        audio.info(text)


def test_names_that_are_not_utf8_work(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9-latin1.wav"
    name = os.fsdecode(raw)
    with open(raw, "wb") as fh:
        sf.write(fh, synth.clip(0.2, 0.2, 2.0, 16000), 16000, format="WAV")
    y, sr = audio.load(name)
    assert sr == 16000 and len(y) == 32000
    res = subprocess.run([sys.executable, "-m", "mer", "predict", str(tmp_path), "--format", "csv"], capture_output=True,
                         timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0, res.stderr
    assert b"latin1.wav" in res.stdout


def test_nan_truncated_loud_and_non_regular_inputs(tmp_path):
    y = synth.clip(0.2, 0.2, 3.0, 16000)
    bad = y.copy()
    bad[100] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite samples"):
        audio.load(tmp_path / "nan.wav")
    sf.write(tmp_path / "loud.wav", y * 40, 16000, subtype="FLOAT")
    with pytest.warns(MERWarning, match="far outside"):
        audio.load(tmp_path / "loud.wav")
    sf.write(tmp_path / "full.wav", y, 16000)
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])  # header still promises 3 s
    with pytest.warns(MERWarning, match="truncated"):
        cut, _ = audio.load(tmp_path / "cut.wav")
    assert 1.2 < len(cut) / 16000 < 1.8
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.wav")
        with pytest.raises(AudioError, match="not a regular file"):
            audio.info(tmp_path / "pipe.wav")
