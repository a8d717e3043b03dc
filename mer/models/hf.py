"""Foundation-model backbones from ``transformers``: ``--model hf:/local/dir`` or ``hf:org/name``.

A backbone is a model name. ``hf:PATH`` is a local directory holding ``config.json`` and the
weights (``save_pretrained`` output); ``hf:org/name[@revision]`` is looked up in the local
Hugging Face cache only (never downloaded here; ``HF_HUB_OFFLINE`` is honoured by
``huggingface_hub``), and a missing one is a :class:`~mer.errors.ModelError` naming the
download command. ``transformers`` is imported only here, and this module only when an
``hf:`` name is built (:func:`mer.models.registry.create_model`).

The encoder is frozen and kept outside the module's parameters: a checkpoint holds the heads
(and the layer weights), and its ``model_args["backbone"]`` records the backbone's id, revision
and the SHA-1 of its config and weight files, checked when the run is loaded again.
``finetune="last:N"`` (``mer train --finetune last:N``) unfreezes the encoder's top N layers:
they are then also registered as ``tuned`` (the same modules), so the checkpoint holds them
and loading it puts them back into the encoder read from the hub files; training then runs
the whole model on feature crops instead of on cached embeddings.

Front-ends (:class:`EncoderFront`): mer's own decoding and resampling at the encoder's sample
rate, then either mer's STFT magnitude (``FeatureConfig(kind="stft", compression="none")``,
``(B, 1, n_fft//2+1, T)`` at the encoder's hop; the encoder's own mel filters, log and
normalisation run here, in torch) or, for waveform encoders, the framed samples
(``FeatureConfig(kind="wave")``, one frame per hop of the encoder's convolutions). The audio is
cut into the encoder's native window (Whisper 30 s, AST ``max_length`` frames, CLAP 10 s,
waveform encoders :data:`WAVE_WINDOW_SECONDS`), each padded as the encoder's feature extractor
pads, and the hidden states of each layer are averaged into mer's 0.5 s steps (:mod:`mer.grid`):
``embed(x) -> (B, n, D)`` (``layer="weighted"``: ``(B, n, (L + 1) D)``, every layer, and the
head learns a softmax-weighted sum, as MARBLE does).

Families (:data:`FAMILIES`, the one table to extend): keyed by ``config.model_type``; a new
family is a row there (its class, where its encoder and its layers are, its front-end), plus
its row in docs/hub.md and a tiny configuration in ``tests/test_hf.py``.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..features import FeatureConfig
from ..grid import native_windows, step_pool
from ..hf_hub import Encoder, hf_download_command, read_json, weight_files
from ..meta import Capabilities
from .base import MERModel
from .blocks import VAHeads



#: the native window of waveform encoders, which take any length (wav2vec 2.0 was trained on
#: crops of up to 15.6 s; attention costs grow with the square of the window)
WAVE_WINDOW_SECONDS = 10.0


@dataclass(frozen=True)
class Family:
    """How one transformers family is run: its class, where its encoder and layers are, its front-end."""

    cls: str  # the transformers class loaded with from_pretrained
    part: str | None  # the attribute holding the encoder (Whisper: "encoder"), None: the model itself
    layers: str  # dotted path, from the encoder, to its list of layers (what --finetune last:N unfreezes)
    frontend: Callable[[Any, dict[str, Any]], "EncoderFront"]


# --------------------------------------------------------------------------- front-ends
class EncoderFront(nn.Module):
    """mer's features of one native window ``(B, 1, bins, T)`` -> the encoder's hidden states."""

    sample_rate: int = 16000
    n_fft: int = 400
    hop: int = 160
    window_frames: int = 3000  # STFT frames the encoder takes at once
    mel: torch.Tensor  # (mels, bins) filters, a buffer
    layers: int = 1  # hidden states encode() returns (Whisper, AST: the embeddings + each layer)
    dim: int = 0  # their width

    def _sizes(self, config: Any) -> None:
        self.layers = int(config.num_hidden_layers) + 1
        self.dim = int(config.d_model if hasattr(config, "d_model") else config.hidden_size)

    def feature(self) -> FeatureConfig:
        return FeatureConfig(kind="stft", sample_rate=self.sample_rate, channels=1, n_fft=self.n_fft,
                             hop_length=self.hop, compression="none")

    def encode(self, encoder: nn.Module, mag: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        """The hidden states ``(B, L + 1, Tf, D)`` of the window's own frames, and where they are:
        frame k is centred at ``(k + offset) * seconds`` (:func:`mer.grid.step_pool`). ``Tf`` follows
        from the window's length by integer arithmetic only, so ``torch.export`` keeps it symbolic
        (ceilings as ``(a + b - 1) // b``: ONNX divides negative integers towards zero)."""
        raise NotImplementedError


def _filters(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float32))


class WhisperFront(EncoderFront):
    """WhisperFeatureExtractor in torch: Slaney mel of the power, log10, max - 8 floor, (x + 4) / 4,
    zero audio padded to 30 s (``2 * max_source_positions`` frames)."""

    def __init__(self, config: Any, pre: dict[str, Any]) -> None:
        super().__init__()
        from transformers.audio_utils import mel_filter_bank

        self.sample_rate, self.n_fft, self.hop = (int(pre.get("sampling_rate", 16000)), int(pre.get("n_fft", 400)),
                                                  int(pre.get("hop_length", 160)))
        self.window_frames = 2 * int(config.max_source_positions)
        self._sizes(config)
        fb = mel_filter_bank(num_frequency_bins=1 + self.n_fft // 2, num_mel_filters=int(config.num_mel_bins),
                             min_frequency=0.0, max_frequency=self.sample_rate / 2, sampling_rate=self.sample_rate,
                             norm="slaney", mel_scale="slaney")
        self.register_buffer("mel", _filters(fb.T), persistent=False)  # (mels, bins)

    def encode(self, encoder: nn.Module, mag: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        t = mag.shape[-1]
        logm = torch.log10(torch.clamp(self.mel @ mag[:, 0].square(), min=1e-10))  # (B, mels, t)
        floor = logm.amax(dim=(1, 2), keepdim=True) - 8.0
        logm = torch.maximum(F.pad(logm, (0, self.window_frames - t), value=-10.0), floor)
        out = encoder(input_features=(logm + 4.0) / 4.0, output_hidden_states=True)
        hs = torch.stack(out.hidden_states, dim=1)  # (B, L + 1, window/2, D)
        keep = max(1, (t + 1) // 2)
        return hs[:, :, :keep], 0.5, 2 * self.hop / self.sample_rate


class ASTFront(EncoderFront):
    """ASTFeatureExtractor in torch: Kaldi mel (20 Hz to Nyquist) of the power, natural log (floor
    1.19e-7), zero-padded to ``max_length`` frames, normalised by the extractor's mean and 2 sd.
    mer's periodic Hann window of 400 samples stands in for Kaldi's 512-point FFT of a 25 ms
    window, and pre-emphasis (0.97) is applied to the power spectrum: close, not bit-equal."""

    def __init__(self, config: Any, pre: dict[str, Any]) -> None:
        super().__init__()
        from transformers.audio_utils import mel_filter_bank

        self.sample_rate, self.n_fft, self.hop = int(pre.get("sampling_rate", 16000)), 400, 160
        self.window_frames = int(config.max_length)
        self._sizes(config)
        self.mean, self.std = float(pre.get("mean", -4.2677393)), float(pre.get("std", 4.5689974))
        self.tstride, self.patch = int(config.time_stride), int(config.patch_size)
        bins = 1 + self.n_fft // 2
        fb = mel_filter_bank(num_frequency_bins=bins, num_mel_filters=int(config.num_mel_bins), min_frequency=20.0,
                             max_frequency=self.sample_rate / 2, sampling_rate=self.sample_rate, norm=None,
                             mel_scale="kaldi", triangularize_in_mel_space=True)
        w = np.pi * np.arange(bins) / (bins - 1)
        emph = np.abs(1.0 - 0.97 * np.exp(-1j * w)) ** 2
        self.register_buffer("mel", _filters(fb.T * emph[None]), persistent=False)

    def encode(self, encoder: nn.Module, mag: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        t = mag.shape[-1]
        fbank = torch.log(torch.clamp(self.mel @ mag[:, 0].square(), min=1.192092955078125e-07))  # (B, mels, t)
        fbank = F.pad(fbank, (0, self.window_frames - t)).transpose(1, 2)  # (B, max_length, mels)
        out = encoder(input_values=(fbank - self.mean) / (2 * self.std), output_hidden_states=True)
        hs = torch.stack(out.hidden_states, dim=1)[:, :, 2:]  # drop the cls and distillation tokens
        n_t = (self.window_frames - self.patch) // self.tstride + 1
        hs = hs.reshape(*hs.shape[:2], -1, n_t, hs.shape[-1]).mean(dim=2)  # tokens are (freq, time): mean over freq
        keep = max(1, min(n_t, (t + self.tstride - 1) // self.tstride))
        return hs[:, :, :keep], self.patch / (2 * self.tstride), self.tstride * self.hop / self.sample_rate


class ClapFront(EncoderFront):
    """ClapFeatureExtractor in torch (not "fusion"): Slaney mel of the power (``frequency_min`` to
    ``frequency_max``), dB, the window filled by repeating the audio ("repeatpad"), input
    ``(B, 1, T, mels)``. HTSAT's hidden states of its stages differ in shape, so only the last one,
    ``last_hidden_state`` ``(B, D, F', T')`` averaged over frequency, is offered (``layers`` 1)."""

    def __init__(self, config: Any, pre: dict[str, Any]) -> None:
        super().__init__()
        from transformers.audio_utils import mel_filter_bank

        audio = config.audio_config
        self.sample_rate, self.n_fft, self.hop = (int(pre.get("sampling_rate", 48000)),
                                                  int(pre.get("fft_window_size", 1024)), int(pre.get("hop_length", 480)))
        self.window_frames = min(int(float(pre.get("max_length_s", 10)) * self.sample_rate / self.hop) + 1,
                                 int(audio.spec_size) * int(audio.freq_ratio))  # what HTSAT's input holds
        self.layers, self.dim = 1, int(audio.hidden_size)
        fb = mel_filter_bank(num_frequency_bins=1 + self.n_fft // 2, num_mel_filters=int(audio.num_mel_bins),
                             min_frequency=float(pre.get("frequency_min", 0)),
                             max_frequency=float(pre.get("frequency_max", 14000)), sampling_rate=self.sample_rate,
                             norm="slaney", mel_scale="slaney")
        self.register_buffer("mel", _filters(fb.T), persistent=False)

    def encode(self, encoder: nn.Module, mag: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        t = mag.shape[-1]
        db = 10.0 * torch.log10(torch.clamp(self.mel @ mag[:, 0].square(), min=1e-10))  # (B, mels, t)
        db = db.repeat(1, 1, (self.window_frames + t - 1) // t)[..., :self.window_frames]  # the audio repeated
        out = encoder(input_features=db.transpose(1, 2)[:, None])
        hs = out.last_hidden_state.mean(dim=2).transpose(1, 2)[:, None]  # (B, 1, T', D)
        n_t = hs.shape[2]  # each output frame covers window_frames / T' input frames
        keep = max(1, min(n_t, (t * n_t + self.window_frames - 1) // self.window_frames))
        return hs[:, :, :keep], 0.5, self.window_frames * self.hop / (n_t * self.sample_rate)


class WaveFront(EncoderFront):
    """Wav2Vec2FeatureExtractor in torch: the framed samples (``kind="wave"``, one frame per hop
    of the encoder's convolutions, ``prod(conv_stride)``) joined back into the waveform from the
    centre of the window's first frame to the centre of its last (the half frames outside, at a
    file's edges the front-end's zero padding, are dropped: a window starts at its own time, and
    a clip that fits one window is fed its samples, up to the last ``len % hop`` of them),
    normalised to zero mean and unit variance per window
    when the extractor does (``do_normalize``, its default) and padded to the convolutions'
    receptive field when shorter. Frame k of the hidden states is centred on its receptive field."""

    def __init__(self, config: Any, pre: dict[str, Any]) -> None:
        super().__init__()
        self.sample_rate = int(pre.get("sampling_rate", 16000))
        self.hop = self.n_fft = math.prod(int(s) for s in config.conv_stride)
        self.window_frames = int(WAVE_WINDOW_SECONDS * self.sample_rate / self.hop)
        self.normalize = bool(pre.get("do_normalize", True))
        field, jump = 1, 1
        for k, st in zip(config.conv_kernel, config.conv_stride):
            field, jump = field + (int(k) - 1) * jump, jump * int(st)
        self.field = field  # samples one output frame sees
        self._sizes(config)

    def feature(self) -> FeatureConfig:
        return FeatureConfig(kind="wave", sample_rate=self.sample_rate, channels=1, n_fft=self.hop,
                             hop_length=self.hop, compression="none")

    def encode(self, encoder: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        wave = x[:, 0].transpose(1, 2).reshape(x.shape[0], -1)[:, self.hop // 2:]
        wave = wave[:, :max(1, wave.shape[1] - (self.hop + 1) // 2)]
        if self.normalize:
            wave = (wave - wave.mean(dim=1, keepdim=True)) / torch.sqrt(wave.var(dim=1, keepdim=True,
                                                                                 unbiased=False) + 1e-7)
        if wave.shape[1] < self.field:
            wave = F.pad(wave, (0, self.field - wave.shape[1]))
        out = encoder(input_values=wave, output_hidden_states=True)
        hs = torch.stack(out.hidden_states, dim=1)  # (B, L + 1, Tf, D)
        return hs, self.field / (2 * self.hop), self.hop / self.sample_rate


#: config.model_type -> how to run it; add a family here (and a row in docs/hub.md and tests)
FAMILIES: dict[str, Family] = {
    "whisper": Family("WhisperModel", "encoder", "layers", WhisperFront),
    "audio-spectrogram-transformer": Family("ASTModel", None, "encoder.layer", ASTFront),
    "clap": Family("ClapModel", "audio_model", "audio_encoder.layers", ClapFront),
    "wav2vec2": Family("Wav2Vec2Model", None, "encoder.layers", WaveFront),
    "hubert": Family("HubertModel", None, "encoder.layers", WaveFront),
    "data2vec-audio": Family("Data2VecAudioModel", None, "encoder.layers", WaveFront),
}
#: model types whose code lives in the model's repository (``trust_remote_code``): MERT is a
#: HuBERT-style waveform encoder (24 kHz)
REMOTE = {"mert_model": Family("AutoModel", None, "encoder.layers", WaveFront)}


# --------------------------------------------------------------------------- resolving a name
def _require_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ModelError("hf: backbones need transformers: pip install 'mer-toolkit[hub]'") from None
    return transformers


def _weights_error(source: str, folder: Path, exc: BaseException) -> ModelError:
    """The one-line error for weights transformers would not load: pickled ``.bin`` weights
    (refused by torch.load's ``weights_only`` or transformers' torch version check) are named as
    what they are, with the way out: safetensors."""
    text = str(exc).strip()
    pickles = sorted(q.name for q in folder.glob("*.bin"))
    if pickles and (isinstance(exc, pickle.UnpicklingError)
                    or any(k in text for k in ("torch.load", "weights_only", "pickle", "PytorchStreamReader"))):
        repo = source.partition("@")[0]
        get = (f" (`{hf_download_command(repo, 'REV')}` of a revision with model.safetensors)"
               if not Path(source).expanduser().is_dir() else "")
        return ModelError(f"{folder / pickles[0]}: this folder's weights are a Python pickle (PyTorch .bin), which "
                          "mer will not load; convert them to safetensors (model.safetensors beside config.json) or "
                          f"download the model's safetensors revision{get}")
    return ModelError(f"hf:{source}: transformers cannot load its weights "
                      f"({text.splitlines()[0] if text else type(exc).__name__})")


def family_of(folder: Path, trust_remote_code: bool) -> tuple[str, Family]:
    cfg = read_json(folder / "config.json")
    kind = str(cfg.get("model_type", ""))
    if kind in FAMILIES:
        return kind, FAMILIES[kind]
    if kind in REMOTE or cfg.get("auto_map"):
        if not trust_remote_code:
            code = sorted(p.name for p in folder.glob("*.py"))
            raise ModelError(f"{folder}: model type {kind!r} runs Python code from this folder"
                             f"{' (' + ', '.join(code[:4]) + ')' if code else ''}; mer runs it only when you pass "
                             "--trust-remote-code (Python: trust_remote_code=True), never because a run's files ask: "
                             "pass it only if you trust that code")
        if kind not in REMOTE:
            raise ModelError(f"{folder}: model type {kind!r} (code from its own repository) is not one mer knows how "
                             f"to feed; supported: {', '.join([*FAMILIES, *REMOTE])}")
        return kind, REMOTE[kind]
    raise ModelError(f"{folder}: model type {kind!r} is not a supported audio encoder; supported: "
                     f"{', '.join(FAMILIES)}")


# --------------------------------------------------------------------------- the model
class HubBackbone(MERModel):
    """A frozen transformers audio encoder + mer's valence/arousal heads (see the module docstring).

    ``layer``: "last", an index into the hidden states (0: the embeddings), or "weighted" (a
    learned softmax-weighted sum of all of them). ``finetune``: "last:N" trains the encoder's top
    N layers too (None: all frozen). ``backbone``: the recorded identity (id, revision, sha1),
    checked against the files found. Heads: see :class:`~mer.models.blocks.VAHeads`."""

    embed_args = ("backbone", "layer")
    encoder: nn.Module
    tuned: nn.ModuleList | None

    def __init__(self, feature: FeatureConfig, source: str, revision: str | None = None, layer: str | int = "last",
                 trust_remote_code: bool = False, backbone: dict | None = None, finetune: str | None = None,
                 head_hidden: int = 0, head_dropout: float = 0.0, head_stats: bool = False,
                 quadrant: bool = False) -> None:
        transformers = _require_transformers()
        found = Encoder.find(source, revision or (backbone or {}).get("revision"))  # reloaded: the trained revision
        folder, rev, digest = found.folder, found.revision, found.sha1
        kind, fam = family_of(folder, trust_remote_code)
        pre_file = folder / "preprocessor_config.json"
        pre = read_json(pre_file) if pre_file.is_file() else {}
        try:
            config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True,
                                                             trust_remote_code=trust_remote_code)
        except (OSError, ValueError, ImportError) as exc:
            raise ModelError(f"hf:{source}: transformers cannot read its configuration "
                             f"({str(exc).strip().splitlines()[0]})") from None
        front = fam.frontend(config, pre)
        own = front.feature()
        if dataclasses.replace(feature, level=None) not in (FeatureConfig(), own):
            raise ModelError(f"hf:{source}: the backbone has its own front-end ({own.to_dict()}); leave --feature "
                             "out (only level, the loudness normalisation before it, may be set)")
        super().__init__(dataclasses.replace(own, level=feature.level))
        if backbone and backbone.get("sha1") not in (None, digest):
            raise ModelError(f"hf:{source}: its files changed since this model was trained (sha1 {backbone['sha1']} "
                             f"-> {digest}); restore them or retrain")
        transformers.utils.logging.disable_progress_bar()
        try:
            model = getattr(transformers, fam.cls).from_pretrained(folder, local_files_only=True,
                                                                   trust_remote_code=trust_remote_code)
        except (OSError, ValueError, ImportError, RuntimeError, pickle.UnpicklingError) as exc:
            raise _weights_error(source, folder, exc) from None
        encoder = getattr(model, fam.part) if fam.part else model
        encoder.eval().requires_grad_(False)
        object.__setattr__(self, "encoder", encoder)  # not a submodule: not in the checkpoint (but see tuned)
        self.tuned = _top_layers(encoder, fam.layers, finetune, source)
        self.front = front
        self.n_layers, dim = front.layers, front.dim
        if layer != "weighted" and not (layer == "last" or (isinstance(layer, int) and -self.n_layers <= layer
                                                            < self.n_layers)):
            raise ModelError(f"layer {layer!r}: choose 'last', 'weighted' or an index below {self.n_layers}")
        self.layer, self.dim = layer, dim
        self.heads = VAHeads(dim, head_hidden, head_dropout, head_stats, quadrant)
        self.mix = nn.Parameter(torch.zeros(self.n_layers)) if layer == "weighted" else None
        self.spec_args = {"backbone": {"id": source, "revision": rev, "family": kind, "sha1": digest,
                                       "files": [q.name for q in weight_files(folder)]}}

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(step_embeddings=True, quadrant=self.heads.quadrant is not None,
                            frozen_backbone=self.tuned is None,
                            window_seconds=self.front.window_frames * self.front.hop / self.front.sample_rate,
                            pooled_head=self.mix is None, sample_rate=self.front.sample_rate)

    def _apply(self, fn: Any, recurse: bool = True) -> "HubBackbone":  # .to(device) moves the encoder too
        super()._apply(fn, recurse)
        self.encoder._apply(fn)
        return self

    def train(self, mode: bool = True) -> "HubBackbone":
        self.encoder.eval()  # the frozen layers stay in eval mode (dropout off) ...
        super().train(mode)  # ... the heads and the tuned layers follow mode
        return self

    def encode_window(self, x: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        """Features of one native window ``(B, 1, bins, t)`` -> the chosen layer's frames ``(B, Tf, D)``
        (``(B, Tf, (L+1) D)`` weighted) and where they are (see :meth:`EncoderFront.encode`); the
        graph ``mer export --runtime`` writes."""
        hs, offset, seconds = self.front.encode(self.encoder, x.float())
        if self.layer == "weighted":
            return hs.permute(0, 2, 1, 3).flatten(2), offset, seconds
        return hs[:, -1 if self.layer == "last" else int(self.layer)], offset, seconds

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, 1, bins, T)`` -> per-step embeddings ``(B, n, D)`` (``(B, n, (L+1) D)`` weighted):
        each native window's frames averaged into its steps (:func:`mer.grid.native_windows`)."""
        out = []
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.tuned is not None):
            for s0, s1, m in native_windows(x.shape[-1], self.feature, self.front.window_frames):
                frames, offset, seconds = self.encode_window(x[..., s0:s1])
                pool = torch.from_numpy(step_pool(frames.shape[1], offset, seconds, m)).to(frames)
                out.append(torch.einsum("nt,btd->bnd", pool, frames))
        return torch.cat(out, dim=1)

    def head(self, seq: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.mix is not None:
            layers = seq.view(*seq.shape[:2], self.n_layers, self.dim)
            seq = (layers * torch.softmax(self.mix, 0)[:, None]).sum(dim=2)
        return self.heads(seq, seq.shape[1])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.embed(x))


def _top_layers(encoder: nn.Module, path: str, finetune: str | None, source: str) -> nn.ModuleList | None:
    """The encoder's top N layers for ``finetune="last:N"``, made trainable; None when not fine-tuning."""
    if not finetune:
        return None
    m = re.fullmatch(r"last:(\d+)", str(finetune))
    found: Any = encoder
    for name in path.split("."):
        found = getattr(found, name)
    layers: list[nn.Module] = list(found)
    n = int(m.group(1)) if m else 0
    if not 1 <= n <= len(layers):
        raise ModelError(f"--finetune {finetune}: use last:N with N from 1 to the {len(layers)} layers of hf:{source}")
    tuned = nn.ModuleList(layers[-n:])
    tuned.requires_grad_(True)
    return tuned


def hub_model(feature: FeatureConfig, source: str, **kw: Any) -> HubBackbone:
    """a frozen transformers audio encoder (hf:PATH or hf:org/name from the local cache) + VA heads"""
    return HubBackbone(feature, source, **kw)


__all__ = ["FAMILIES", "HubBackbone", "hub_model"]
