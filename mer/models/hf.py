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

Front-end: mer's own decoding and resampling at the encoder's sample rate, then mer's STFT
magnitude (``FeatureConfig(kind="stft", compression="none")``, ``(B, 1, n_fft//2+1, T)`` at the
encoder's hop); the encoder's own mel filters, log and normalisation run here, in torch. The
audio is cut into the encoder's native window (Whisper 30 s, AST ``max_length`` frames, CLAP 10 s), each
padded as the encoder's feature extractor pads, and the hidden states of each layer are
averaged into mer's 0.5 s steps (:mod:`mer.grid`): ``embed(x) -> (B, n, D)`` (``layer="weighted"``:
``(B, n, (L + 1) D)``, every layer, and the head learns a softmax-weighted sum, as MARBLE does).

Families (:data:`FAMILIES`, the one table to extend): keyed by ``config.model_type``. The
waveform families (wav2vec2, HuBERT, data2vec-audio, MERT) are listed but refused: their input
is the raw waveform, and mer's front-end (``mer.features``) has no waveform kind yet.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError
from ..features import FeatureConfig, file_digest
from ..grid import GRID_SECONDS, n_steps
from ..meta import Capabilities
from .base import MERModel
from .blocks import VAHeads

PREFIX = "hf:"


@dataclass(frozen=True)
class Family:
    """How one transformers family is run: its class, input and front-end."""

    cls: str  # the transformers class loaded with from_pretrained
    part: str | None  # the attribute holding the encoder (Whisper: "encoder"), None: the model itself
    frontend: Callable[[Any, dict[str, Any]], "SpecFrontEnd"] | None  # None: waveform input (not yet)


# --------------------------------------------------------------------------- front-ends
class SpecFrontEnd(nn.Module):
    """mer's STFT magnitude ``(B, 1, bins, T)`` -> the encoder's input for one native window."""

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

    def encode(self, encoder: nn.Module, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden states ``(B, L + 1, Tf, D)``, centres of their frames in s ``(Tf,)``)."""
        raise NotImplementedError


def _filters(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float32))


class WhisperFront(SpecFrontEnd):
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

    def encode(self, encoder: nn.Module, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = mag.shape[-1]
        logm = torch.log10(torch.clamp(self.mel @ mag[:, 0].square(), min=1e-10))  # (B, mels, t)
        floor = logm.amax(dim=(1, 2), keepdim=True) - 8.0
        logm = torch.maximum(F.pad(logm, (0, self.window_frames - t), value=-10.0), floor)
        out = encoder(input_features=(logm + 4.0) / 4.0, output_hidden_states=True)
        hs = torch.stack(out.hidden_states, dim=1)  # (B, L + 1, window/2, D)
        keep = max(1, (t + 1) // 2)
        rate = self.sample_rate / self.hop / 2
        return hs[:, :, :keep], (torch.arange(keep, device=mag.device) + 0.5) / rate


class ASTFront(SpecFrontEnd):
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

    def encode(self, encoder: nn.Module, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = mag.shape[-1]
        fbank = torch.log(torch.clamp(self.mel @ mag[:, 0].square(), min=1.192092955078125e-07))  # (B, mels, t)
        fbank = F.pad(fbank, (0, self.window_frames - t)).transpose(1, 2)  # (B, max_length, mels)
        out = encoder(input_values=(fbank - self.mean) / (2 * self.std), output_hidden_states=True)
        hs = torch.stack(out.hidden_states, dim=1)[:, :, 2:]  # drop the cls and distillation tokens
        n_t = (self.window_frames - self.patch) // self.tstride + 1
        hs = hs.reshape(*hs.shape[:2], -1, n_t, hs.shape[-1]).mean(dim=2)  # tokens are (freq, time): mean over freq
        keep = max(1, min(n_t, -(-t // self.tstride)))
        centres = (torch.arange(keep, device=mag.device) * self.tstride + self.patch / 2) * self.hop / self.sample_rate
        return hs[:, :, :keep], centres


class ClapFront(SpecFrontEnd):
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

    def encode(self, encoder: nn.Module, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = mag.shape[-1]
        db = 10.0 * torch.log10(torch.clamp(self.mel @ mag[:, 0].square(), min=1e-10))  # (B, mels, t)
        reps = -(-self.window_frames // t)
        db = db.repeat(1, 1, reps)[..., :self.window_frames]
        out = encoder(input_features=db.transpose(1, 2)[:, None])
        hs = out.last_hidden_state.mean(dim=2).transpose(1, 2)[:, None]  # (B, 1, T', D)
        per = self.window_frames / hs.shape[2]
        keep = max(1, min(hs.shape[2], int(-(-t // per))))
        centres = (torch.arange(keep, device=mag.device) + 0.5) * per * self.hop / self.sample_rate
        return hs[:, :, :keep], centres


#: config.model_type -> how to run it; add a family here (and a line in the README and tests)
FAMILIES: dict[str, Family] = {
    "whisper": Family("WhisperModel", "encoder", WhisperFront),
    "audio-spectrogram-transformer": Family("ASTModel", None, ASTFront),
    "clap": Family("ClapModel", "audio_model", ClapFront),
    "wav2vec2": Family("Wav2Vec2Model", None, None),
    "hubert": Family("HubertModel", None, None),
    "data2vec-audio": Family("Data2VecAudioModel", None, None),
}
#: model types whose code lives in the model's repository (``trust_remote_code``), run as waveform models
REMOTE = {"mert_model": Family("AutoModel", None, None)}


# --------------------------------------------------------------------------- resolving a name
def _require_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ModelError("hf: backbones need transformers: pip install 'mer-toolkit[hub]'") from None
    return transformers


def resolve(source: str, revision: str | None = None) -> tuple[Path, str | None]:
    """(local directory, revision or None) of ``PATH`` or ``org/name[@revision]`` (local cache only)."""
    p = Path(source).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelError(f"{p}: no config.json here; point hf: at a save_pretrained folder")
        return p.resolve(), revision
    if source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise ModelError(f"hf:{source}: no such folder (hf: takes a local save_pretrained folder or an org/name "
                         "in the local Hugging Face cache)")
    repo, _, rev = source.partition("@")
    revision = rev or revision
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(repo, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        cmd = f"huggingface-cli download {repo}" + (f" --revision {revision}" if revision else "")
        raise ModelError(f"hf:{source}: not in the local Hugging Face cache and mer never downloads; run `{cmd}` "
                         "first (or pass hf:/path/to/a/local/folder)") from None
    return path, path.name  # .../snapshots/<commit>


def weight_files(folder: Path) -> list[Path]:
    return sorted(q for q in folder.iterdir() if q.name == "config.json" or q.suffix in (".safetensors", ".bin"))


def folder_digest(folder: Path) -> str:
    """SHA-1 over config.json and the weight files: their names and their own SHA-1s
    (:func:`mer.features.file_digest`)."""
    h = hashlib.sha1()
    for q in weight_files(folder):
        h.update(f"{q.name}\0{file_digest(q)}\n".encode())
    return h.hexdigest()


def family_of(folder: Path, trust_remote_code: bool) -> tuple[str, Family]:
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    kind = str(cfg.get("model_type", ""))
    if kind in FAMILIES:
        return kind, FAMILIES[kind]
    if kind in REMOTE or cfg.get("auto_map"):
        if not trust_remote_code:
            raise ModelError(f"{folder}: model type {kind!r} runs code from the model's own repository; pass "
                             "--trust-remote-code (Python: trust_remote_code=True) only if you trust that code")
        return kind, REMOTE.get(kind, Family("AutoModel", None, None))
    raise ModelError(f"{folder}: model type {kind!r} is not a supported audio encoder; supported: "
                     f"{', '.join(FAMILIES)}")


# --------------------------------------------------------------------------- the model
class HubBackbone(MERModel):
    """A frozen transformers audio encoder + mer's valence/arousal heads (see the module docstring).

    ``layer``: "last", an index into the hidden states (0: the embeddings), or "weighted" (a
    learned softmax-weighted sum of all of them). ``backbone``: the recorded identity (id,
    revision, sha1), checked against the files found. Heads: see :class:`~mer.models.blocks.VAHeads`."""

    embed_args = ("backbone", "layer")
    encoder: nn.Module

    def __init__(self, feature: FeatureConfig, source: str, revision: str | None = None, layer: str | int = "last",
                 trust_remote_code: bool = False, backbone: dict | None = None, head_hidden: int = 0,
                 head_dropout: float = 0.0, head_stats: bool = False, quadrant: bool = False) -> None:
        transformers = _require_transformers()
        folder, rev = resolve(source, revision or (backbone or {}).get("revision"))  # reloaded: the trained revision
        kind, fam = family_of(folder, trust_remote_code)
        if fam.frontend is None:
            raise ModelError(f"hf:{source}: {kind} encoders take the raw waveform, which mer's front-end "
                             "(mer.features: log-mel or STFT) cannot give them yet; use a spectrogram family "
                             f"({', '.join(k for k, f in FAMILIES.items() if f.frontend)})")
        pre_file = folder / "preprocessor_config.json"
        pre = json.loads(pre_file.read_text(encoding="utf-8")) if pre_file.is_file() else {}
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        front = fam.frontend(config, pre)
        if feature not in (FeatureConfig(), front.feature()):
            raise ModelError(f"hf:{source}: the backbone has its own front-end ({front.feature().to_dict()}); "
                             "leave --feature out")
        super().__init__(front.feature())
        digest = folder_digest(folder)
        if backbone and backbone.get("sha1") not in (None, digest):
            raise ModelError(f"hf:{source}: its files changed since this model was trained (sha1 {backbone['sha1']} "
                             f"-> {digest}); restore them or retrain")
        transformers.utils.logging.disable_progress_bar()
        model = getattr(transformers, fam.cls).from_pretrained(folder, local_files_only=True,
                                                               trust_remote_code=trust_remote_code)
        encoder = getattr(model, fam.part) if fam.part else model
        encoder.eval().requires_grad_(False)
        object.__setattr__(self, "encoder", encoder)  # not a submodule: not in the checkpoint, never trained
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
        return Capabilities(step_embeddings=True, quadrant=self.heads.quadrant is not None, frozen_backbone=True,
                            window_seconds=self.front.window_frames * self.front.hop / self.front.sample_rate,
                            pooled_head=self.mix is None, sample_rate=self.front.sample_rate)

    def _apply(self, fn: Any, recurse: bool = True) -> "HubBackbone":  # .to(device) moves the encoder too
        super()._apply(fn, recurse)
        self.encoder._apply(fn)
        return self

    def train(self, mode: bool = True) -> "HubBackbone":
        super().train(mode)
        self.encoder.eval()
        return self

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """STFT magnitude ``(B, 1, bins, T)`` -> per-step embeddings ``(B, n, D)`` (``(B, n, (L+1) D)`` weighted)."""
        n = n_steps(x.shape[-1], self.feature)
        fps = self.feature.frames_per_second
        per = max(1, int(self.front.window_frames / fps / GRID_SECONDS))  # whole steps in one native window
        frames = int(round(per * GRID_SECONDS * fps))
        out = []
        with torch.no_grad():
            for k, s0 in enumerate(range(0, x.shape[-1], frames)):
                hs, centres = self.front.encode(self.encoder, x[..., s0:s0 + frames].float())
                m = min(per, n - k * per)
                if m <= 0:
                    break
                out.append(_to_steps(hs, centres, m))
        seq = torch.cat(out, dim=2)  # (B, L + 1, n, D)
        if self.layer == "weighted":
            return seq.permute(0, 2, 1, 3).flatten(2)
        return seq[:, -1 if self.layer == "last" else int(self.layer)]

    def head(self, seq: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.mix is not None:
            layers = seq.view(*seq.shape[:2], self.n_layers, self.dim)
            seq = (layers * torch.softmax(self.mix, 0)[:, None]).sum(dim=2)
        return self.heads(seq, seq.shape[1])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.embed(x))


def _to_steps(hs: torch.Tensor, centres: torch.Tensor, n: int) -> torch.Tensor:
    """Mean of the frames ``hs`` ``(B, L, Tf, D)`` whose centre (s) lies in each 0.5 s step -> ``(B, L, n, D)``;
    a step with no frame takes the nearest one."""
    idx = torch.clamp((centres / GRID_SECONDS).long(), 0, n - 1)
    m = F.one_hot(idx, n).to(hs.dtype).T  # (n, Tf)
    empty = m.sum(dim=1) == 0
    if empty.any():
        mid = (torch.arange(n, device=hs.device) + 0.5) * GRID_SECONDS
        nearest = (mid[:, None] - centres[None]).abs().argmin(dim=1)
        m[empty, nearest[empty]] = 1.0
    m = m / m.sum(dim=1, keepdim=True)
    return torch.einsum("nt,bltd->blnd", m, hs)


def hub_model(feature: FeatureConfig, source: str, **kw: Any) -> HubBackbone:
    """a frozen transformers audio encoder (hf:PATH or hf:org/name from the local cache) + VA heads"""
    return HubBackbone(feature, source, **kw)


__all__ = ["FAMILIES", "HubBackbone", "hub_model", "resolve"]
