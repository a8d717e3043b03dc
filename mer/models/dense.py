"""The notebooks' dense baseline: a spectrogram resized to 512 frames, flattened, 512-256-128-64.

Two additions to the seed, both on by default and both switchable off (``norm=False``,
``dropout=0``) to run the seed exactly: a per-band batch norm on the input (the log-mel
values sit around 0-5 and differ by band; without it the 12 M-weight first layer learns the
offsets and, on the 480 training clips of a 4Q fold, did worse on valence RMSE than the
constant predictor) and dropout between the dense layers.

Static output: the whole clip's features resized to ``frames`` (512) time frames, flattened,
through the dense trunk. Dynamic output: the same trunk on a ``context``-second window
ending at each 0.5 s step (each window resized to ``frames`` frames), so the model follows
the common output contract without a second set of weights.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..features import FeatureConfig
from .base import MERModel, n_steps
from .registry import register_model


class DenseNet(MERModel):
    def __init__(self, feature: FeatureConfig, frames: int = 512, hidden: Sequence[int] = (512, 256, 128, 64),
                 context: float = 3.0, norm: bool = True, dropout: float = 0.3) -> None:
        super().__init__(feature)
        self.frames, self.context = frames, context
        bands = feature.channels * feature.n_bins
        self.norm = nn.BatchNorm1d(bands) if norm else nn.Identity()
        layers: list[nn.Module] = [nn.Flatten()]
        d = bands * frames
        for h in hidden:
            layers += [nn.Dropout(dropout), nn.Linear(d, h), nn.ReLU()] if dropout else [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.trunk = nn.Sequential(*layers)
        self.static_head = nn.Linear(d, 2)
        self.dynamic_head = nn.Linear(d, 2)

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(x.shape[-2], self.frames), mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        b, c, f, t = x.shape
        x = self.norm(x.reshape(b, c * f, t)).view(b, c, f, t)
        emb = self.trunk(self._resize(x))  # (B, 64)
        n = n_steps(t, self.feature)
        fps = self.feature.frames_per_second
        width = max(2, int(round(self.context * fps)))
        padded = F.pad(x, (width, 0))  # windows end at each step: pad the start
        ends = [min(t, int(round(0.5 * (i + 1) * fps))) + width for i in range(n)]
        windows = torch.stack([padded[..., e - width:e] for e in ends], dim=1)  # (B, n, C, F, width)
        steps = self.trunk(self._resize(windows.flatten(0, 1))).view(b, n, -1)  # (B, n, 64)
        return {"static": self.static_head(emb), "dynamic": self.dynamic_head(steps), "embedding": emb}


@register_model
def dense(feature: FeatureConfig, **kw) -> DenseNet:
    """Seed dense baseline: spectrogram resized to 512 frames, flattened, dense 512-256-128-64 ReLU, 2 outputs"""
    return DenseNet(feature, **kw)
