"""A MobileNet-style student of musicnn: depthwise-separable convolutions on the same log-mel input,
trained to reproduce a teacher's per-step outputs (``mer train --distil default``; see
:mod:`mer.train.distil`).

Input: features ``(B, 1, 96, T)`` of mer's default front-end (62.5 frames/s). The network:

- a 3x3 stem convolution, stride 2 in frequency and time, ``width`` channels;
- ``depth`` depthwise-separable blocks (Howard et al. 2017: depthwise 3x3 -> batch norm -> ReLU
  -> pointwise 1x1 -> batch norm -> ReLU); the first ones stride (2, 5), (2, 1), (2, 1), (2, 1),
  (3, 1) (frequency, time; the time-strided one's depthwise kernel is 3 x 5), later ones stride
  1; channels ``width`` x (1, 2, 2, 4, 4, 4, ...);
- with ``wide`` (0: none), a full-band path beside it: the 96 input bands as the channels of a
  pointwise 1-D convolution to ``wide`` channels at the frame rate (each channel a filter over the
  whole spectrum, as musicnn's tall timbral filters see most of it), then the max over every
  10 frames, centred as the 2-D path's frames are;
- a max over the remaining frequency bins (joined by the full-band path's channels), then
  ``temporal`` residual depthwise-separable 1-D blocks over time (kernel 5), at 1/10 of the
  frame rate (6.25 per second);
- the max and mean of those frames over a ``context``-second window around every 0.5 s step (as
  musicnn pools its back-end); with ``spectral`` (the default) also the max, mean and standard
  deviation of each input band over the same window (a summary the convolutions need not learn:
  alone it explains about 30% of musicnn's embedding on held-out 4Q clips), batch-normalised
  together; then a hidden layer of ``hidden`` units and a linear layer to the ``dim``-d per-step
  embedding ``(B, n, dim)``, on the 0.5 s grid of :mod:`mer.grid`.

On top of the embedding, as on musicnn's: ``tags`` (a linear layer to ``len(tag_names)`` tag
logits; sigmoid probabilities per step, averaged for the clip) and :class:`~mer.models.blocks.
VAHeads` (valence/arousal, optionally quadrant logits and mood words). Distilled from the
default, the student's embedding lives in the teacher's space, so the teacher's tag layer and
heads are copied onto it and kept frozen.

Strided networks are not shift-invariant: moving the input by a few frames changes what the
strides sample. The time strides multiply to 10 frames, which divides the 250-frame context and
the 2000-frame chunk of :class:`mer.infer.Inference`'s windows, so every window of a long file
samples the frames one pass over it would; and the receptive field (about 2.8 s either side of a
step) fits inside the 4 s context, so chunked and one-pass outputs agree (a test checks this;
with a stride of 8 they differed by a fifth of the embedding's sd).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import ModelError
from ..features import FeatureConfig
from ..grid import n_steps
from ..meta import Capabilities
from .base import MERModel
from .blocks import VAHeads
from .musicnn import pool_windows
from .registry import register_model

#: (frequency, time) strides of the first blocks; later blocks keep the resolution
STRIDES: tuple[tuple[int, int], ...] = ((2, 5), (2, 1), (2, 1), (2, 1), (3, 1))  # stem: (2, 2); time 2 x 5
#: channel multipliers of the blocks (the last one repeats)
WIDTHS: tuple[int, ...] = (1, 2, 2, 4, 4)  # of the blocks after the stem (width itself)


def _cbr(c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int | tuple[int, int] = 1,
         groups: int = 1, dims: int = 2) -> list[nn.Module]:
    """Convolution (no bias) -> batch norm -> ReLU, 2-D or (``dims=1``, ``kernel`` an int, stride 1) 1-D, "same" padding."""
    conv: nn.Module
    bn: nn.Module
    if dims == 2:
        kf, kt = (kernel, kernel) if isinstance(kernel, int) else kernel
        conv = nn.Conv2d(c_in, c_out, (kf, kt), stride, (kf // 2, kt // 2), groups=groups, bias=False)
        bn = nn.BatchNorm2d(c_out)
    elif isinstance(kernel, tuple):
        raise ValueError("a 1-D convolution takes one kernel size")
    else:
        conv = nn.Conv1d(c_in, c_out, kernel, 1, kernel // 2, groups=groups, bias=False)
        bn = nn.BatchNorm1d(c_out)
    return [conv, bn, nn.ReLU()]


class Separable(nn.Module):
    """Depthwise 3x3 (strided) -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU: ``(B, C, F, T)`` -> ``(B, C', F', T')``."""

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int]) -> None:
        super().__init__()
        kernel = (3, max(3, stride[1] | 1))  # a time stride over 3 gets a kernel that covers it
        self.body = nn.Sequential(*_cbr(c_in, c_in, kernel, stride, groups=c_in), *_cbr(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Temporal(nn.Module):
    """Residual depthwise-separable 1-D block over time (kernel 5): ``(B, C, T)`` -> ``(B, C, T)``."""

    def __init__(self, channels: int, kernel: int = 5) -> None:
        super().__init__()
        self.body = nn.Sequential(*_cbr(channels, channels, kernel, groups=channels, dims=1),
                                  *_cbr(channels, channels, 1, dims=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class StudentNet(MERModel):
    """Depthwise-separable student (module docstring): features -> per-step embedding -> heads.

    ``width``, ``depth``, ``temporal``, ``hidden``: the network's size; ``spectral``: the band
    summary path, ``wide``: the full-band path's channels (module docstring); ``dim``: the embedding's
    size (the teacher's: 200 for musicnn); ``context``: seconds pooled around each step;
    ``tag_names``: the tag vocabulary (empty: no tag layer); ``head_hidden``, ``head_dropout``,
    ``head_stats``, ``quadrant``, ``mood_words``: the heads, as :class:`~mer.models.musicnn.Musicnn`'s.
    """

    #: the arguments that change :meth:`embed` (the training engine's embedding cache key)
    embed_args = ("width", "depth", "temporal", "hidden", "dim", "context", "spectral", "wide")

    def __init__(self, feature: FeatureConfig, width: int = 32, depth: int = 5, temporal: int = 2,
                 hidden: int = 256, dim: int = 200, context: float = 3.0, spectral: bool = True, wide: int = 0,
                 tag_names: Sequence[str] | None = None,
                 head_hidden: int = 0, head_dropout: float = 0.0, head_stats: bool = False, quadrant: bool = False,
                 mood_words: Sequence[str] | None = None) -> None:
        super().__init__(feature)
        if feature.kind != "logmel" or feature.channels != 1:
            raise ModelError("the student needs mono log-mel features (mer's default front-end)")
        if width < 1 or depth < 1 or temporal < 0 or hidden < 1 or dim < 1 or context <= 0 or wide < 0:
            raise ModelError(f"student: width, depth, hidden and dim must be at least 1, temporal and wide 0 or more "
                             f"and context positive (got width={width}, depth={depth}, temporal={temporal}, "
                             f"hidden={hidden}, dim={dim}, context={context}, wide={wide})")
        self.width, self.depth, self.context, self.spectral = width, depth, context, spectral
        self.input_bn = nn.BatchNorm2d(1)
        layers: list[nn.Module] = _cbr(1, width, 3, 2)
        c, self.time_stride = width, 2
        for i in range(depth):
            stride = STRIDES[i] if i < len(STRIDES) else (1, 1)
            c_out = width * WIDTHS[min(i, len(WIDTHS) - 1)]
            layers.append(Separable(c, c_out, stride))
            c, self.time_stride = c_out, self.time_stride * stride[1]
        self.convs = nn.Sequential(*layers)
        # the full-band path: every input band a channel, pointwise at the frame rate, max over time_stride frames
        self.wide = nn.Sequential(*_cbr(feature.n_bins, wide, 1, dims=1)) if wide else None
        # its max over frames 10j-5..10j+5 in two steps whose lengths are the 2-D path's own
        # ((T-1)//2+1, then (T'-1)//5+1), as 2-D pools: 1-D max pools pin the frames of an exported graph
        self.wide_pool = nn.Sequential(nn.MaxPool2d((1, 3), (1, 2), (0, 1)), nn.MaxPool2d((1, 5), (1, 5), (0, 2)))
        c += wide
        self.temporal = nn.Sequential(*(Temporal(c) for _ in range(temporal)))
        pooled = 2 * c + (3 * feature.n_bins if spectral else 0)
        self.pool_bn = nn.BatchNorm1d(pooled) if spectral else None
        self.backend = nn.Sequential(nn.Linear(pooled, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.tag_names = list(tag_names or ())
        self.tags = nn.Linear(dim, len(self.tag_names)) if self.tag_names else None
        self.mood_words = list(mood_words or ())
        self.heads = VAHeads(dim, head_hidden, head_dropout, head_stats, quadrant, len(self.mood_words))

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(step_embeddings=True, quadrant=self.heads.quadrant is not None,
                            window_seconds=self.context, pooled_head=True)

    @property
    def tag_layer(self) -> nn.Linear | None:
        """The linear layer from a per-step embedding to tag logits (a teacher's, copied by distillation)."""
        return self.tags

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, 1, F, T)`` -> per-frame features ``(B, C, T')`` at 1/``time_stride`` of the frame rate."""
        x = self.input_bn(x)
        h = self.convs(x).amax(dim=2)  # max over the remaining frequency bins
        if self.wide is not None:
            w = self.wide_pool(self.wide(x[:, 0]).unsqueeze(2)).squeeze(2)
            h = torch.cat([h, w], dim=1)  # both ceil(T / time_stride) frames, centred alike
        return self.temporal(h)

    def embed(self, x: torch.Tensor, return_tags: bool = False):  # noqa: ANN201
        """Per-step embeddings ``(B, n, dim)`` (``return_tags``: and tag probabilities ``(B, n, K)``)."""
        h = self.frames(x)
        fps = self.feature.frames_per_second
        n = n_steps(x.shape[-1], self.feature)
        centres = torch.round((0.5 * torch.arange(n, device=x.device) + 0.25) * fps).long()  # frames
        half = int(round(self.context * fps / 2 / self.time_stride))
        pooled = pool_windows(h, (centres // self.time_stride).clamp(max=h.shape[-1] - 1), half)  # (B, n, 2C)
        if self.pool_bn is not None:
            bands, at, wide = x[:, 0], centres.clamp(max=x.shape[-1] - 1), int(round(self.context * fps / 2))
            stats = pool_windows(bands, at, wide)  # (B, n, 2F): (max, mean) per band
            mean = stats[..., 1::2]
            sd = (pool_windows(bands * bands, at, wide)[..., 1::2] - mean * mean).clamp(min=0).sqrt()
            pooled = torch.cat([pooled, stats, sd], dim=-1)
            pooled = self.pool_bn(pooled.flatten(0, 1)).view_as(pooled)
        seq = self.backend(pooled)
        if not return_tags:
            return seq
        if self.tags is None:
            raise ModelError("this student has no tag layer (no tag_names)")
        return seq, torch.sigmoid(self.tags(seq))

    def head(self, seq: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(seq, seq.shape[1])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        seq = self.embed(x)
        out = self.head(seq)
        if self.tags is not None:
            out["tags"] = torch.sigmoid(self.tags(seq)).mean(dim=1)
        return out


@register_model
def student(feature: FeatureConfig, **kw) -> StudentNet:
    """MobileNet-style student of musicnn: depthwise-separable convs (width, depth) -> per-step embedding + heads; distil it with mer train --distil default"""
    return StudentNet(feature, **kw)
