"""Audio in: AAC/m4a, Opus, Vorbis, WebM, WMA and AC-3 through PyAV when libsndfile cannot (files
made by PyAV's own encoders), the install line when PyAV is missing; names that are not
UTF-8; NaN, truncated, out-of-range and non-regular inputs."""

from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mer import AudioError, MERWarning, audio, synth
from mer.features import FeatureConfig, features_from_file, stream_features

REPO = Path(__file__).resolve().parents[1]
SECONDS = 3.0
INSTALL = "unsupported format by libsndfile; install the decoder: pip install 'mer-toolkit[formats]'"

#: name -> (PyAV encoder, container format (None: from the name), rate, channels, encoder options)
FORMATS = {
    "aac.m4a": ("aac", None, 44100, 2, {}),
    "adts.aac": ("aac", "adts", 44100, 2, {}),
    "opus.opus": ("libopus", None, 48000, 2, {}),
    "opus.ogg": ("libopus", "ogg", 48000, 1, {}),
    "opus.webm": ("libopus", None, 48000, 2, {}),
    "vorbis.webm": ("vorbis", None, 44100, 2, {"strict": "experimental"}),
    "wmav2.wma": ("wmav2", None, 44100, 2, {}),
    "ac3.ac3": ("ac3", None, 48000, 2, {}),
}


def _source(rate: int, seconds: float = SECONDS) -> np.ndarray:
    """Stereo source ``(2, n)``: a synthetic clip left, the same at half level right."""
    y = synth.clip(0.5, 0.5, seconds, rate, seed=7).astype(np.float32)
    return np.stack([y, 0.5 * y])


def _encode(av, path: Path, codec: str, container: str | None, rate: int, channels: int, options: dict,  # noqa: ANN001
            seconds: float = SECONDS) -> np.ndarray:
    """Write ``seconds`` of :func:`_source` with PyAV's encoder ``codec``; return the source written."""
    src = _source(rate, seconds)[:channels]
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout, options=options)
        stream.bit_rate = 128000
        fmt = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
        for k in range(0, src.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(src[:, k:k + 1024]), format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, k, Fraction(1, rate)
            for f in resampler.resample(frame):
                out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    return src


@pytest.fixture(scope="module")
def encoded(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    """name -> (file, source) for every format of FORMATS this PyAV's FFmpeg can encode."""
    av = pytest.importorskip("av", reason="PyAV (the [formats] extra) is not installed")
    folder = tmp_path_factory.mktemp("formats")
    made = {}
    for name, (codec, container, rate, channels, options) in FORMATS.items():
        try:
            made[name] = folder / name, _encode(av, folder / name, codec, container, rate, channels, options)
        except (av.error.FFmpegError, ValueError) as exc:  # an encoder this FFmpeg build lacks
            (folder / name).unlink(missing_ok=True)
            print(f"{name}: cannot encode with {codec} here ({exc})")
    return made


def _clip(encoded: dict, name: str) -> tuple[Path, np.ndarray]:
    if name not in encoded:
        pytest.skip(f"this PyAV's FFmpeg has no {FORMATS[name][0]} encoder")
    return encoded[name]


def _aligned_corr(y: np.ndarray, ref: np.ndarray, max_lag: int = 4096) -> float:
    """Correlation of ``y`` with ``ref`` after aligning them (codec delay or trimmed priming, up to
    ``max_lag`` samples either way)."""
    n = min(len(y), len(ref)) - 2 * max_lag
    probe = ref[max_lag:max_lag + n // 4]
    lag = int(np.argmax(np.correlate(y[:n // 4 + 2 * max_lag], probe, "valid"))) - max_lag  # y[k + lag] ~ ref[k]
    a, b = (y[lag:], ref) if lag >= 0 else (y, ref[-lag:])
    m = min(len(a), len(b))
    return float(np.corrcoef(a[:m], b[:m])[0, 1])


def test_every_format_is_found_in_a_folder(encoded):
    assert encoded
    folder = next(iter(encoded.values()))[0].parent
    assert audio.find_audio([folder]) == sorted(path for path, _ in encoded.values())
    assert {".m4a", ".aac", ".mp4", ".webm", ".wma", ".opus", ".oga", ".weba", ".mka", ".ac3", ".alac"} <= \
        audio.AUDIO_EXTENSIONS


@pytest.mark.parametrize("name", list(FORMATS))
def test_decodes_at_the_right_rate_channels_and_length(encoded, name):
    path, src = _clip(encoded, name)
    _, _, rate, channels, _ = FORMATS[name]
    meta = audio.info(path)
    assert (meta.samplerate, meta.channels) == (rate, channels)
    assert meta.decoder in (("sndfile", "av") if path.suffix in (".opus", ".ogg") else ("av",))  # Ogg: libsndfile
    assert abs(meta.duration - SECONDS) < 0.15  # raw AAC/AC-3 streams: a bitrate estimate
    y, sr = audio.load(path, mono=False)
    assert sr == rate and y.dtype == np.float32 and y.shape[0] == channels
    assert abs(y.shape[1] / sr - SECONDS) < 0.1  # codec padding and priming
    assert _aligned_corr(y[0], src[0]) > 0.95
    if channels == 2:  # channel order kept: the right channel is the left at half level
        assert abs(np.dot(y[1], y[0]) / np.dot(y[0], y[0]) - 0.5) < 0.05
    y16, sr16 = audio.load(path, sr=16000)
    assert sr16 == 16000 and y16.ndim == 1 and abs(len(y16) - y.shape[1] * 16000 / rate) <= 2


@pytest.mark.parametrize("name", list(FORMATS))
def test_stream_offset_duration_and_bounded_blocks(encoded, name):
    path, _ = _clip(encoded, name)
    rate = FORMATS[name][2]
    full, _ = audio.load(path, mono=False)
    part = np.concatenate(list(audio.stream(path, mono=False, offset=1.0, duration=1.5, block_frames=4096)), axis=1)
    assert part.shape == (full.shape[0], int(1.5 * rate))
    if audio.info(path).decoder == "av":  # decoded from the start and cut: the very same samples
        np.testing.assert_array_equal(part, full[:, rate:rate + part.shape[1]])
    else:
        assert _aligned_corr(part[0], full[0, rate:], max_lag=64) > 0.99
    native = [b.shape[-1] for b in audio.stream(path, block_frames=4096)]
    assert max(native) <= 4096 and all(n == 4096 for n in native[:-1])  # memory: one block at a time
    resampled = [b.shape[-1] for b in audio.stream(path, sr=16000, block_frames=4096)]
    assert max(resampled) <= math.ceil(4096 * 16000 / rate) + 512  # plus soxr's own buffering
    assert abs(sum(resampled) - sum(native) * 16000 / rate) <= 2


def test_streamed_features_of_an_m4a_equal_the_whole_file(encoded):
    path, _ = _clip(encoded, "aac.m4a")
    config = FeatureConfig()
    x = stream_features(path, config, block_seconds=0.5)
    assert x.shape[:2] == (1, 96) and np.isfinite(x).all()
    np.testing.assert_allclose(x, features_from_file(path, config), atol=1e-3)


@pytest.mark.parametrize("name", ["aac.m4a", "opus.webm"])
def test_long_offsets_seek_to_the_same_samples(tmp_path, monkeypatch, name):
    av = pytest.importorskip("av", reason="PyAV (the [formats] extra) is not installed")
    codec, container, rate, channels, options = FORMATS[name]
    path = tmp_path / name
    _encode(av, path, codec, container, rate, channels, options, seconds=12.0)
    monkeypatch.setattr(audio.decoders, "PYAV_SEEK_SECONDS", 1e9)
    decoded, _ = audio.load(path, mono=False, offset=9.3, duration=2.0)
    monkeypatch.setattr(audio.decoders, "PYAV_SEEK_SECONDS", 5.0)
    seeked, _ = audio.load(path, mono=False, offset=9.3, duration=2.0)
    assert seeked.shape == decoded.shape == (channels, 2 * rate)
    corr = {k: np.corrcoef(decoded[0, 100 + k:-100 + k], seeked[0, 100:-100])[0, 1] for k in range(-60, 61)}
    lag = max(corr, key=corr.get)
    assert abs(lag) <= rate // 1000  # MP4: exact; Matroska/WebM: millisecond timestamps
    assert corr[lag] > 0.97  # not bit-equal: AAC's noise substitution draws from the decoder's history


def test_an_ogg_libsndfile_cannot_decode_goes_to_pyav(encoded, monkeypatch):
    path, src = _clip(encoded, "opus.ogg")

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("Internal error in the Opus decoder")

    monkeypatch.setattr(sf.SoundFile, "read", broken)
    meta = audio.info(path)
    assert meta.decoder == "av" and meta.samplerate == 48000 and meta.channels == 1
    y, _ = audio.load(path)
    assert abs(len(y) / 48000 - SECONDS) < 0.1 and _aligned_corr(y, src[0]) > 0.95
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(AudioError, match=INSTALL.replace("[", r"\[").replace("]", r"\]")):
        audio.info(path)


def test_misnamed_and_damaged_files(encoded, tmp_path):
    path, _ = _clip(encoded, "aac.m4a")
    misnamed = tmp_path / "really-aac.mp3"  # downloads are often AAC named .mp3
    misnamed.write_bytes(path.read_bytes())
    assert audio.info(misnamed).decoder == "av" and len(audio.load(misnamed)[0]) > 2 * 44100
    (tmp_path / "notes.m4a").write_text("plain text renamed to .m4a\n")
    data = path.read_bytes()
    (tmp_path / "cut.m4a").write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: nothing left
    for bad in ("notes.m4a", "cut.m4a"):
        with pytest.raises(AudioError) as err:
            audio.load(tmp_path / bad)
        message = str(err.value)
        assert message.startswith(f"{tmp_path / bad}: not a readable audio file") and "\n" not in message
        assert "pip install" not in message
    webm, _ = _clip(encoded, "opus.webm")
    data = webm.read_bytes()
    (tmp_path / "cut.webm").write_bytes(data[: len(data) // 2])
    with pytest.warns(MERWarning, match="truncated: the header promises 3.0"):
        y, sr = audio.load(tmp_path / "cut.webm")
    assert 1.0 < len(y) / sr < 2.0


def test_names_that_are_not_utf8_work_with_pyav(encoded, tmp_path):
    path, _ = _clip(encoded, "aac.m4a")
    raw = os.fsencode(tmp_path) + b"/caf\xe9-latin1.m4a"
    with open(raw, "wb") as fh:
        fh.write(path.read_bytes())
    y, sr = audio.load(os.fsdecode(raw))
    assert sr == 44100 and abs(len(y) / sr - SECONDS) < 0.1


def test_without_pyav_the_error_names_the_install_line(tmp_path, monkeypatch, bad_corpus, wav_file):
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    m4a = b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A mp42isom" + bytes(400)
    webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01" + bytes(400)
    wma = b"\x30\x26\xb2\x75\x8e\x66\xcf\x11\xa6\xd9\x00\xaa\x00\x62\xce\x6c" + bytes(400)
    cases = {"song.m4a": m4a, "song.webm": webm, "song.wma": wma, "m4a-named.mp3": m4a, "no-extension": m4a}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(AudioError) as err:
            audio.info(tmp_path / name)
        assert str(err.value) == f"{tmp_path / name}: {INSTALL}"
    (tmp_path / "notes.m4a").write_text("plain text renamed to .m4a\n")
    (tmp_path / "notes.wav").write_text("plain text renamed to .wav\n")
    for name in ("notes.m4a", "notes.wav"):
        with pytest.raises(AudioError, match="not a readable audio file") as err:
            audio.info(tmp_path / name)
        assert "pip install" not in str(err.value)
    expected = {"empty": "file is empty", "text": "not an mp3 file", "truncated": "truncated mp3",
                "directory": "is a directory", "missing": "file not found"}
    for kind, words in expected.items():
        with pytest.raises(AudioError, match=words):
            audio.load(bad_corpus[kind])
    y, sr = audio.load(wav_file)  # libsndfile's formats need nothing more
    assert sr == 22050 and len(y) == 5 * 22050


def test_audio_stays_a_leaf_and_imports_pyav_lazily(wav_file):
    allowed = {"numpy", "soundfile", "soxr", "__future__"} | set(sys.stdlib_module_names)
    files = sorted((REPO / "mer" / "audio").glob("*.py"))
    assert len(files) >= 4
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            nested = node not in tree.body  # PyAV only inside a function
            if isinstance(node, ast.Import):
                assert {a.name.split(".")[0] for a in node.names} <= allowed | ({"av"} if nested else set()), path
            elif isinstance(node, ast.ImportFrom):  # mer.errors, the package's own modules, or allowed ones
                assert (node.level == 2 and node.module == "errors") or node.level == 1 or \
                    (node.level == 0 and node.module.split(".")[0] in allowed), (path, node.module)
    code = "import sys, mer.audio as a; a.load(sys.argv[1]); print('av' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code, str(wav_file)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


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


def test_truncated_ogg_is_reported_not_taken_for_a_short_file(tmp_path):
    # Ogg declares no length (decoders read it off the last page), so a cut file decodes as a
    # shorter, apparently whole one unless its pages are checked
    y = synth.clip(0.2, 0.2, 12.0, 44100)
    sf.write(tmp_path / "whole.ogg", y, 44100, format="OGG", subtype="VORBIS")
    data = (tmp_path / "whole.ogg").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a whole file: no warning at all
        whole, _ = audio.load(tmp_path / "whole.ogg")
    assert abs(len(whole) / 44100 - 12.0) < 0.05
    (tmp_path / "cut.ogg").write_bytes(data[: len(data) // 2])
    with pytest.warns(MERWarning, match="cut.ogg: truncated Ogg file: its last page is cut short; results cover"):
        cut, _ = audio.load(tmp_path / "cut.ogg")
    assert 2.0 < len(cut) / 44100 < 10.0
    boundary = data.rfind(b"OggS")  # cut exactly between pages: every page whole, no end of stream
    (tmp_path / "at_page.ogg").write_bytes(data[:boundary])
    with pytest.warns(MERWarning, match="ends without an end-of-stream page"):
        audio.load(tmp_path / "at_page.ogg")
    for extra in (1, 2, 3):  # cut a few bytes into the next page's capture pattern
        (tmp_path / "in_header.ogg").write_bytes(data[:boundary + extra])
        with pytest.warns(MERWarning, match="last page is cut short"):
            audio.load(tmp_path / "in_header.ogg")
    with pytest.warns(MERWarning, match="cut.ogg: truncated Ogg file"):  # from an offset, read to the end
        audio.load(tmp_path / "cut.ogg", offset=1.0)
    # 'OggS' inside the audio data of a whole file must not be taken for a page
    from mer.audio.sniff import ogg_truncation

    fake = data[:-200] + b"OggS\x00\x00" + data[-194:]  # a capture pattern in the last page's body
    (tmp_path / "fake.ogg").write_bytes(fake)
    assert ogg_truncation(tmp_path / "fake.ogg") is None
    assert ogg_truncation(tmp_path / "whole.ogg") is None
