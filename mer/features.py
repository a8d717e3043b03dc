"""Feature front-ends (log-mel, the seed's STFT, the framed waveform) in numpy, and a feature cache. No torch here:
``mer predict`` with an ONNX model imports this module without PyTorch.

Layout: :func:`spectrogram` maps a waveform ``(C, N)`` (float32, C audio channels,
N samples at ``config.sample_rate``) to features ``(C, F, T)``: F frequency bins, T frames
at ``config.frames_per_second`` (frame t is centred at ``t * hop_length / sample_rate`` s).

- ``logmel`` (default, the musicnn front-end): 16 kHz mono, n_fft 512, hop 256 (62.5
  frames/s), 96 Slaney mel bands of the power spectrum, compressed as log10(1 + 10000 x).
- ``stft`` (the seed notebooks): 44.1 kHz stereo, n_fft 256, hop 128, magnitude, 129 bins;
  a 45 s clip gives about 15,500 frames; ``resize_frames=512`` resizes time as the seed did.
- ``wave`` (waveform encoders such as wav2vec 2.0, hf: backbones): the samples themselves,
  framed without overlap: ``n_fft == hop_length`` samples per frame, ``F = hop_length``, frame
  t holding samples ``[t * hop - hop // 2, t * hop + hop // 2)`` (centred like the STFT's, the
  first half frame being the zero padding), compression ``none``. Concatenating the frames
  and dropping ``hop // 2`` samples gives back the waveform, so the block streaming, the
  loudness normalisation (linear in the samples) and the cache serve waveform models as they
  serve spectrogram ones.

The mel filterbank is computed here (Slaney mel scale, Slaney area normalisation, as in
librosa's default); a test proves it equal to ``librosa.filters.mel`` within 1e-5.

Features are computed here; :mod:`mer.cache` keeps them once per (audio content, config).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from . import audio
from .errors import AudioError, ConfigError

KINDS = ("logmel", "stft", "wave")
COMPRESSIONS = ("log10p", "db", "log1p", "none")
MAX_GAIN = 1000.0  # +60 dB: the most ``level`` normalisation amplifies


@dataclass(frozen=True)
class FeatureConfig:
    """How features are computed; saved with every cache entry and checkpoint."""

    kind: str = "logmel"  # "logmel", "stft" or "wave" (framed samples, see the module docstring)
    sample_rate: int = 16000  # Hz
    channels: int = 1  # 1 = mono mixdown, 2 = stereo (the seed's STFT model)
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 96  # logmel only
    fmin: float = 0.0
    fmax: float | None = None  # None = sample_rate / 2
    compression: str = "log10p"  # log10p: log10(1 + 10000 x); db: 10 log10(max(x, 1e-10)); log1p; none
    resize_frames: int | None = None  # resize the time axis to this many frames (the seed used 512)
    level: float | None = None  # RMS the waveform is scaled to before the front-end (None: as decoded); see gain()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown feature kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(f"unknown compression {self.compression!r}; choose one of {', '.join(COMPRESSIONS)}")
        if min(self.sample_rate, self.n_fft, self.hop_length, self.channels) <= 0:
            raise ConfigError("sample_rate, n_fft, hop_length and channels must be positive")
        if self.kind == "wave" and (self.n_fft != self.hop_length or self.compression != "none"
                                    or self.resize_frames):
            raise ConfigError("kind 'wave' frames the samples without overlap: n_fft must equal hop_length, "
                              "compression must be 'none' and resize_frames unset")
        if self.level is not None and not 0 < self.level <= 1:
            raise ConfigError(f"level {self.level!r}: the target RMS must be in (0, 1], e.g. 0.139 (-17 dBFS)")

    @classmethod
    def seed_stft(cls, **overrides: Any) -> "FeatureConfig":
        """The research notebooks' STFT front-end: 44.1 kHz stereo, n_fft 256, hop 128, magnitude."""
        base = dict(kind="stft", sample_rate=44100, channels=2, n_fft=256, hop_length=128, compression="log1p")
        return cls(**{**base, **overrides})

    @property
    def n_bins(self) -> int:
        """Frequency bins F of the output."""
        return {"logmel": self.n_mels, "wave": self.hop_length}.get(self.kind, self.n_fft // 2 + 1)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    def n_frames(self, n_samples: int) -> int:
        """Frames T produced for ``n_samples`` samples (centred STFT)."""
        return self.resize_frames or 1 + n_samples // self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown feature config keys {sorted(unknown)}; valid keys: {sorted(known)}")
        return cls(**d)

    def digest(self) -> str:
        """Short stable hash of the config, used to name cache folders (``level`` only when set,
        so the caches of configs from before it existed stay valid)."""
        d = self.to_dict()
        if d["level"] is None:
            del d["level"]
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def gain(self, sum_squares: float, n_values: int) -> float:
        """Loudness normalisation: the factor that brings a waveform of this energy to RMS
        ``level`` (1 when ``level`` is None). Capped at +60 dB so near-silence is not blown up
        into noise. STFT and mel are linear in the waveform, so the factor is applied to the
        magnitudes (power: squared) before compression, which is exactly the same as scaling
        the waveform first, also block by block."""
        if self.level is None or n_values == 0:
            return 1.0
        rms = math.sqrt(sum_squares / n_values)
        return self.level / max(rms, self.level / MAX_GAIN)


def hz_to_mel(f: float | np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular Slaney-normalised mel filters, shape ``(n_mels, n_fft // 2 + 1)``, float32."""
    fmax = sr / 2.0 if fmax is None else fmax
    fft_freqs = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _mel_columns(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    fb = np.ascontiguousarray(mel_filterbank(sr, n_fft, n_mels, fmin, fmax).T)
    fb.flags.writeable = False
    return fb


@functools.lru_cache(maxsize=8)
def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window (``torch.hann_window``'s default), float32, read-only (cached)."""
    w = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
    w.flags.writeable = False
    return w


def compress(x: np.ndarray, how: str) -> np.ndarray:
    """The ``compression`` step of :class:`FeatureConfig` (see its comment)."""
    if how == "log10p":
        return np.log10(np.float32(1.0) + np.float32(10000.0) * x)
    if how == "db":
        return np.float32(10.0) * np.log10(np.maximum(x, np.float32(1e-10)))
    if how == "log1p":
        return np.log1p(x)
    return x


def resize_time(x: np.ndarray, frames: int) -> np.ndarray:
    """Linear resampling of the last axis to ``frames`` (``F.interpolate``'s ``align_corners=False``)."""
    t = x.shape[-1]
    src = np.maximum((np.arange(frames) + 0.5) * (t / frames) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), t - 1)
    i1 = np.minimum(i0 + 1, t - 1)
    w = (src - i0).astype(np.float32)
    return x[..., i0] * (1 - w) + x[..., i1] * w


def spectrogram(wave: np.ndarray, config: FeatureConfig | None = None, center: bool = True,
                raw: bool = False) -> np.ndarray:
    """Waveform ``(C, N)`` float32 at ``config.sample_rate`` -> features ``(C, F, T)`` float32.

    The one implementation of the front-ends for audio files (numpy, no torch), used by
    :func:`extract`, :func:`stream_features` and so by the feature cache, training and
    ``mer predict``. ``center=True`` zero-pads ``n_fft // 2`` on both sides, so frame t is
    centred at sample ``t * hop`` (``1 + N // hop`` frames); ``center=False`` starts frame t
    at sample ``t * hop`` (for pre-padded blocks). :class:`mer.models.frontend.FrontEnd` is
    its torch twin for on-device use (a test keeps the two within 1e-4).

    With ``config.level`` the waveform's loudness is normalised (:meth:`FeatureConfig.gain`).
    ``raw=True`` returns the magnitudes before that and before compression (block-wise
    callers finish the whole file with :func:`finish`).
    """
    c = config or FeatureConfig()
    wave = np.asarray(wave, dtype=np.float32)
    gain = 1.0 if raw else c.gain(float(np.dot(wave.ravel(), wave.ravel())), wave.size)
    half = c.n_fft // 2
    if center:
        wave = np.pad(wave, ((0, 0), (half, half + max(0, half + 1 - wave.shape[-1]))))
        n_frames = 1 + (wave.shape[-1] - c.n_fft) // c.hop_length
    else:
        n_frames = 1 + (wave.shape[-1] - c.n_fft) // c.hop_length if wave.shape[-1] >= c.n_fft else 0
    frames = np.lib.stride_tricks.sliding_window_view(wave, c.n_fft, axis=-1)[:, ::c.hop_length][:, :n_frames]
    if c.kind == "wave":  # the samples themselves, one frame per hop
        x = np.array(frames.transpose(0, 2, 1), dtype=np.float32, order="C")  # a writeable copy
        return x if raw else finish(x, c, gain)
    spec = np.fft.rfft(frames * hann_window(c.n_fft), axis=-1)  # (C, T, bins)
    if c.kind == "logmel":
        power = (spec.real * spec.real + spec.imag * spec.imag).astype(np.float32)
        x = power @ _mel_columns(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax)  # (C, T, F)
    else:
        x = np.abs(spec).astype(np.float32)  # magnitude, as the seed's STFT model
    x = x.transpose(0, 2, 1)  # (C, F, T)
    return np.ascontiguousarray(x) if raw else finish(x, c, gain)


def finish(raw: np.ndarray, config: FeatureConfig, gain: float = 1.0, inplace: bool = False) -> np.ndarray:
    """Magnitudes ``(C, F, T)`` from ``spectrogram(..., raw=True)`` -> features: the loudness
    gain (squared for power), compression, and the optional time resize. ``inplace`` reuses
    ``raw``'s memory (a float32 array the caller gives up; an hour of audio is 86 MB)."""
    scale = np.float32(gain * gain if config.kind == "logmel" else gain)
    if inplace and raw.dtype == np.float32 and config.compression in ("log10p", "log1p", "none"):
        x = raw
        x *= scale * np.float32(10000.0 if config.compression == "log10p" else 1.0)
        if config.compression == "log10p":
            x += np.float32(1.0)
            np.log10(x, out=x)
        elif config.compression == "log1p":
            np.log1p(x, out=x)
    else:
        x = np.ascontiguousarray(compress(raw * scale if gain != 1.0 else raw, config.compression), dtype=np.float32)
    return resize_time(x, config.resize_frames) if config.resize_frames else x


def extract(y: np.ndarray, config: FeatureConfig | None = None) -> np.ndarray:
    """Features of one waveform already at ``config.sample_rate``: ``(C, F, T)`` float32.

    ``y`` is ``(n,)`` or ``(channels, n)``; it is mixed or duplicated to ``config.channels``.
    """
    config = config or FeatureConfig()
    return spectrogram(audio.ensure_channels(y, config.channels), config)


def features_from_file(path: str | os.PathLike, config: FeatureConfig | None = None) -> np.ndarray:
    """Decode ``path`` at the config's rate and channels and return ``(C, F, T)`` features."""
    config = config or FeatureConfig()
    y, _ = audio.load(path, sr=config.sample_rate, mono=config.channels == 1)
    return extract(y, config)


#: files up to this long are normalised in one pass, keeping their raw features (~1.4 MB per
#: minute) until the gain is known; longer ones are decoded twice (loudness, then features), so
#: memory stays flat whatever the length
ONE_PASS_SECONDS = 600.0


def feature_blocks(path: "str | os.PathLike | audio.AudioInfo", config: FeatureConfig | None = None,
                   block_seconds: float = 10.0, offset: float = 0.0, duration: float | None = None,
                   progress: "Callable[[float], None] | None" = None) -> Iterator[np.ndarray]:
    """The features of an audio file as consecutive blocks ``(C, F, t)`` (their concatenation
    is :func:`features_from_file`'s result up to float rounding): decode -> resample -> STFT
    block by block, so memory does not grow with the file's length.

    ``offset`` and ``duration`` (seconds) select a part of the file, as in ``audio.load``;
    ``progress(fraction)`` is called as the audio is decoded (0..1 of the part); ``path`` may be
    the file's :class:`mer.audio.AudioInfo`, so a caller that read the header does not read it
    again. With ``config.level`` (loudness normalisation) the gain needs the whole part's energy
    before the first block can be finished: a part up to :data:`ONE_PASS_SECONDS` keeps its raw
    blocks until the end (one decode, as fast as before), a longer one is decoded twice, first
    for its energy only. The level warnings (silent, very short, out-of-range samples) and the
    no-samples error come before the first block in both cases, and at the end without ``level``.
    ``resize_frames`` models get one block (the resize needs the whole clip). Blocks of 10 s
    decode a 30 s clip faster than one block (24.0 against 26.9 ms, the STFT's working set
    stays in cache) and keep a long file's peak memory lower."""
    config = config or FeatureConfig()
    header, path = (path, path.path) if isinstance(path, audio.AudioInfo) else (None, path)
    if config.resize_frames:
        y, _ = audio.load(path, sr=config.sample_rate, mono=config.channels == 1, offset=offset, duration=duration)
        yield extract(y, config)
        return
    info = header or audio.info(path)
    seconds = audio.part_seconds(info.duration, offset, duration)
    decode = functools.partial(audio.stream, info, sr=config.sample_rate, mono=config.channels == 1, offset=offset,
                               duration=duration, block_frames=int(block_seconds * info.samplerate))
    levels = _Levels(config.channels)
    if config.level is None:
        yield from _blocks(decode(), config, path, seconds, progress, levels)
    elif seconds <= ONE_PASS_SECONDS:
        raw = list(_blocks(decode(), config, path, seconds, progress, levels, raw=True))
        gain = config.gain(levels.energy, levels.values)
        while raw:  # in place, block by block: the raw features are given up as they are finished
            yield finish(raw.pop(0), config, gain, inplace=True)
    else:
        expected = int(seconds * config.sample_rate)
        for block in decode():  # pass 1: loudness only (the first half of the progress)
            levels.add(audio.ensure_channels(block, config.channels))
            if progress is not None and expected:
                progress(min(0.5, levels.samples / expected / 2))
        levels.check(path, config)
        gain = config.gain(levels.energy, levels.values)
        second = None if progress is None else (lambda f: progress(0.5 + f / 2))
        for x in _blocks(decode(), config, path, seconds, second, _Levels(config.channels), raw=True, check=False):
            yield finish(x, config, gain, inplace=True)


class _Levels:
    """Running sample count, energy and peak of decoded blocks ``(C, n)``: what the level
    checks and :meth:`FeatureConfig.gain` need."""

    def __init__(self, channels: int) -> None:
        self.channels, self.samples, self.energy, self.peak = channels, 0, 0.0, 0.0

    @property
    def values(self) -> int:
        return self.samples * self.channels

    def add(self, block: np.ndarray) -> None:
        self.samples += block.shape[-1]
        if block.size:
            self.peak = max(self.peak, float(np.abs(block).max()))
            self.energy += float(np.dot(block.ravel(), block.ravel()))

    def check(self, path: "str | os.PathLike", config: FeatureConfig) -> None:
        """No samples: AudioError; silent, very short or out-of-range audio: a warning."""
        if self.samples == 0:
            raise AudioError(f"{path}: contains no audio samples; re-export the file")
        audio.check_levels(self.peak, self.samples / config.sample_rate, path)


def _blocks(decoded: Iterable[np.ndarray], config: FeatureConfig, path: "str | os.PathLike", seconds: float,
            progress: "Callable[[float], None] | None", levels: _Levels, raw: bool = False,
            check: bool = True) -> Iterator[np.ndarray]:
    """Feature blocks of decoded audio blocks (the centred STFT across block edges: each block's
    frames are those whose window it completes), counting the audio into ``levels`` (checked
    before the last block unless ``check`` is False). ``raw`` yields magnitudes (for :func:`finish`)."""
    hop, half = config.hop_length, config.n_fft // 2
    buf = np.zeros((config.channels, half), dtype=np.float32)  # the centred STFT's left zero padding
    emitted = 0
    expected = int(seconds * config.sample_rate)

    def frames(buf: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        usable = (buf.shape[-1] - config.n_fft) // hop + 1 if buf.shape[-1] >= config.n_fft else 0
        if usable <= 0:
            return None, buf
        x = spectrogram(buf[:, :(usable - 1) * hop + config.n_fft], config, center=False, raw=raw)
        return x, buf[:, usable * hop:]

    for block in decoded:
        block = audio.ensure_channels(block, config.channels)
        levels.add(block)
        if progress is not None and expected:
            progress(min(1.0, levels.samples / expected))
        x, buf = frames(np.concatenate([buf, block], axis=-1))
        if x is not None:
            emitted += x.shape[-1]
            yield x
    if check:
        levels.check(path, config)
    x, _ = frames(np.concatenate([buf, np.zeros((config.channels, half), dtype=np.float32)], axis=-1))
    if x is not None:  # the right padding's frames, cut to the centred STFT's count
        x = x[..., :max(0, config.n_frames(levels.samples) - emitted)]
        if x.shape[-1]:
            yield np.ascontiguousarray(x)


def stream_features(path: "str | os.PathLike | audio.AudioInfo", config: FeatureConfig | None = None,
                    **kw: Any) -> np.ndarray:
    """:func:`features_from_file` block by block: the concatenation of :func:`feature_blocks`
    (same arguments). The whole file's features are returned, 86 MB per hour for the default
    log-mel; consumers that can, such as :meth:`mer.infer.Inference.stream`, take the blocks."""
    return np.concatenate(list(feature_blocks(path, config, **kw)), axis=-1)
