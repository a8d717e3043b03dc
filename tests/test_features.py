"""mer.features: mel filterbank vs librosa, front-end shapes, the feature cache."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import pytest
import torch

from mer import ConfigError, MERWarning, audio, features, synth
from mer import cache as cache_module
from mer.cache import FeatureCache
from mer.features import FeatureConfig, spectrogram
from mer.models.frontend import FrontEnd

librosa = pytest.importorskip("librosa")


@pytest.mark.parametrize("sr, n_fft, n_mels, fmin, fmax", [
    (16000, 512, 96, 0.0, None), (22050, 2048, 128, 20.0, 8000.0), (44100, 1024, 40, 100.0, None)])
def test_mel_filterbank_equals_librosa_slaney(sr, n_fft, n_mels, fmin, fmax):
    ours = features.mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-5


def test_logmel_matches_librosa_pipeline(wav_file):
    y, sr = audio.load(wav_file, sr=16000)
    ours = features.extract(y)[0]
    ref = np.log10(1 + 10000 * librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=256, n_mels=96))
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-3


def test_seed_stft_shape_for_45_seconds():
    cfg = FeatureConfig.seed_stft()
    wave = torch.zeros(1, 2, 45 * 44100)
    out = FrontEnd(cfg)(wave)
    assert out.shape == (1, 2, 129, 1 + 45 * 44100 // 128)  # about 15,500 x 129 x 2
    assert 15400 < out.shape[-1] < 15600
    resized = FrontEnd(FeatureConfig.seed_stft(resize_frames=512))(wave)
    assert resized.shape == (1, 2, 129, 512)


def test_stft_magnitude_peak_at_tone_bin():
    cfg = FeatureConfig.seed_stft(compression="none")
    t = torch.arange(44100) / 44100
    tone = torch.sin(2 * torch.pi * 44100 * 20 / 256 * t)  # exactly bin 20
    spec = FrontEnd(cfg)(tone.repeat(1, 2, 1))
    assert int(spec[0, 0, :, 10:-10].mean(-1).argmax()) == 20
    assert cfg.n_frames(44100) == spec.shape[-1]


@pytest.mark.parametrize("cfg", [FeatureConfig(), FeatureConfig(hop_length=512, n_mels=48), FeatureConfig.seed_stft(),
                                 FeatureConfig.seed_stft(resize_frames=64), FeatureConfig(compression="db")])
@pytest.mark.parametrize("center", [True, False])
def test_numpy_front_end_equals_the_torch_twin(cfg, center):
    rng = np.random.default_rng(0)
    wave = (0.3 * rng.standard_normal((cfg.channels, 3 * cfg.sample_rate + 77))).astype(np.float32)
    ours = spectrogram(wave, cfg, center=center)
    ref = FrontEnd(cfg)(torch.from_numpy(wave)[None], center=center)[0].numpy()
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    if center and not cfg.resize_frames:
        assert ours.shape[-1] == cfg.n_frames(wave.shape[-1])
    assert np.abs(ours - ref).max() < 1e-4 * max(1.0, float(np.abs(ref).max()))
    tiny = spectrogram(wave[:, :100], cfg)  # shorter than a frame: padded, still finite
    assert np.isfinite(tiny).all() and tiny.shape[:2] == ref.shape[:2]


def test_frontend_gradients_flow_and_tiny_inputs():
    fe = FrontEnd()
    wave = torch.randn(2, 1, 100, requires_grad=True)
    out = fe(wave)
    assert out.shape[:3] == (2, 1, 96) and torch.isfinite(out).all()
    out.sum().backward()
    assert wave.grad is not None


def test_config_validation_and_roundtrip():
    with pytest.raises(ConfigError, match="unknown feature kind"):
        FeatureConfig(kind="mfcc")
    with pytest.raises(ConfigError, match="unknown feature config keys"):
        FeatureConfig.from_dict({"kind": "logmel", "nmels": 3})
    cfg = FeatureConfig.seed_stft()
    assert FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.digest() != FeatureConfig().digest()


def test_cache_computes_once_and_recovers_from_corruption(tmp_path, wav_file, monkeypatch):
    cache = FeatureCache(root=tmp_path / "cache")
    first = cache.get(wav_file)
    entry = cache.entry(wav_file)
    assert entry.exists() and (cache.dir / "config.json").exists()
    assert json.loads((cache.dir / "config.json").read_text()) == FeatureConfig().to_dict()
    calls = []
    monkeypatch.setattr(cache_module, "features_from_file", lambda *a: calls.append(a) or first)
    np.testing.assert_array_equal(cache.get(wav_file), first)
    assert calls == []  # a hit does not recompute
    raw = bytearray(entry.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip bits inside the stored array
    entry.write_bytes(bytes(raw))
    with pytest.warns(MERWarning, match="corrupt"):
        cache.get(wav_file)
    assert len(calls) == 1
    entry.write_bytes(b"garbage")
    with pytest.warns(MERWarning, match="corrupt"):
        cache.get(wav_file)
    assert len(calls) == 2


def test_cache_key_is_content_not_name(tmp_path, wav_file):
    cache = FeatureCache(root=tmp_path / "cache")
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(wav_file.read_bytes())
    assert cache.entry(copy) == cache.entry(wav_file)
    other = FeatureCache(FeatureConfig(n_mels=64), root=tmp_path / "cache")
    assert other.get(wav_file).shape[1] == 64


def test_level_normalisation_makes_features_gain_invariant_and_streams_exactly(tmp_path):
    """``level``: the same music at -12 dB gives the same features, block by block as in one piece."""
    y = synth.clip(0.5, 0.5, 70.0, 16000, seed=1).astype(np.float32)
    sf.write(tmp_path / "a.wav", y, 16000, subtype="FLOAT")
    sf.write(tmp_path / "quiet.wav", y * 10 ** (-12 / 20), 16000, subtype="FLOAT")
    cfg = FeatureConfig(level=0.139)
    loud = features.stream_features(tmp_path / "a.wav", cfg, block_seconds=7)
    quiet = features.stream_features(tmp_path / "quiet.wav", cfg, block_seconds=7)
    assert np.abs(loud - quiet).max() < 1e-4
    gain = 0.139 / np.sqrt(np.mean(y.astype(np.float64) ** 2))
    assert np.abs(loud - features.extract(y * gain, FeatureConfig())).max() < 1e-4
    assert np.abs(loud - features.extract(y, cfg)).max() < 1e-4
    plain = features.stream_features(tmp_path / "quiet.wav", FeatureConfig())
    assert np.abs(plain - loud).max() > 0.1  # without it the level shows
    torch = pytest.importorskip("torch")
    twin = FrontEnd(cfg)(torch.from_numpy(y * 10 ** (-12 / 20))[None, None]).numpy()[0]
    assert np.abs(twin - loud).max() < 1e-3
    assert FeatureConfig().digest() != cfg.digest()
    with pytest.raises(ConfigError, match="target RMS"):
        FeatureConfig(level=2.0)
    # digital silence stays silence (the gain is capped, never divides by zero)
    assert np.isfinite(features.extract(np.zeros(16000, np.float32), cfg)).all()
