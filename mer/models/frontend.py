"""The feature front-end as a torch module, for running a model on raw audio on its device.

:func:`mer.features.spectrogram` (numpy) is the implementation used for audio files,
training and prediction; :class:`FrontEnd` computes the same features from a waveform
batch ``(B, C, N)`` already on the GPU (``MERModel.from_audio``) and lets gradients flow
to the waveform. A test keeps the two within 1e-4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..features import FeatureConfig, mel_filterbank


class FrontEnd(nn.Module):
    """Waveform ``(B, C, N)`` -> features ``(B, C, F, T)`` per :class:`FeatureConfig`."""

    window: torch.Tensor
    mel: torch.Tensor  # logmel only

    def __init__(self, config: FeatureConfig | None = None) -> None:
        super().__init__()
        self.config = config or FeatureConfig()
        c = self.config
        self.register_buffer("window", torch.hann_window(c.n_fft), persistent=False)
        if c.kind == "logmel":
            fb = mel_filterbank(c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax)
            self.register_buffer("mel", torch.from_numpy(fb), persistent=False)

    def forward(self, wave: torch.Tensor, center: bool = True) -> torch.Tensor:
        """``center=False``: frame t starts at sample ``t * hop`` (for pre-padded blocks)."""
        c = self.config
        if wave.dim() == 2:  # (B, N) -> (B, 1, N)
            wave = wave.unsqueeze(1)
        b, ch, n = wave.shape
        if c.level is not None:  # loudness normalisation per clip, as FeatureConfig.gain
            from ..features import MAX_GAIN

            rms = wave.float().square().mean(dim=(1, 2), keepdim=True).sqrt()
            wave = wave * (c.level / torch.clamp(rms, min=c.level / MAX_GAIN))
        if c.kind == "wave":  # the samples framed without overlap, as mer.features.spectrogram
            half = c.n_fft // 2 if center else 0
            flat = F.pad(wave.reshape(b * ch, -1), (half, half + max(0, half + 1 - n) if center else 0))
            return flat.unfold(-1, c.n_fft, c.hop_length).transpose(1, 2).reshape(b, ch, c.n_fft, -1)
        if center and n < c.n_fft // 2 + 1:  # constant padding needs some length; pad tiny inputs
            wave = F.pad(wave, (0, c.n_fft // 2 + 1 - n))
        spec = torch.stft(wave.reshape(b * ch, -1), c.n_fft, c.hop_length, window=self.window,
                          center=center, pad_mode="constant", return_complex=True)  # (B*C, F, T)
        if c.kind == "logmel":
            x = torch.matmul(self.mel, spec.real.square() + spec.imag.square())  # power -> mel
        else:
            x = spec.abs()  # magnitude, as the seed's STFT model
        x = _compress(x, c.compression)
        x = x.reshape(b, ch, x.shape[-2], x.shape[-1])
        if c.resize_frames:
            x = F.interpolate(x, size=(x.shape[-2], c.resize_frames), mode="bilinear", align_corners=False)
        return x


def _compress(x: torch.Tensor, how: str) -> torch.Tensor:
    if how == "log10p":
        return torch.log10(1.0 + 10000.0 * x)
    if how == "db":
        return 10.0 * torch.log10(torch.clamp(x, min=1e-10))
    if how == "log1p":
        return torch.log1p(x)
    return x
