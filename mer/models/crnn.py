"""The convolutional models of the research notebooks: CNN, CRNN variants, MobileNet-style CRNN.

All are one builder each (:class:`ConvNet`, :class:`CRNN`); the registered variants are
one-line functions over them. Input ``(B, C, F, T)`` features; the conv stack pools
frequency away (mean over the remaining bins) and keeps a time sequence for the heads.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..features import FeatureConfig
from .base import MERModel
from .blocks import ConvBlock, Recurrent, VAHeads
from .registry import register_model


class ConvNet(MERModel):
    """Stack of conv blocks -> mean over frequency -> sequence ``(B, T', C_last)`` -> heads."""

    def __init__(self, feature: FeatureConfig, channels: Sequence[int], pools: Sequence[tuple[int, int]],
                 separable: bool = False, attention: str | None = None, norm: bool = True,
                 activation: str = "relu", pointwise: bool = False) -> None:
        super().__init__(feature)
        c_prev, blocks = feature.channels, []
        for c, pool in zip(channels, pools):
            blocks.append(ConvBlock(c_prev, c, (pool[0], pool[1]), separable and c_prev > 1, attention, norm, activation,
                                    pointwise))
            c_prev = c
        self.convs = torch.nn.Sequential(*blocks)
        self.out_dim = c_prev
        self.heads = VAHeads(self.out_dim)

    def conv_sequence(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x).mean(dim=2).transpose(1, 2)  # (B, C, F', T') -> (B, T', C)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_sequence(x)


class CRNN(ConvNet):
    """Conv stack followed by a recurrent layer (GRU or LSTM) over time."""

    def __init__(self, feature: FeatureConfig, channels: Sequence[int] = (64, 128, 128, 128),
                 pools: Sequence[tuple[int, int]] = ((2, 2), (2, 2), (2, 2), (4, 1)), rnn: str = "gru",
                 hidden: int = 128, layers: int = 1, bidirectional: bool = False, separable: bool = False,
                 attention: str | None = None, dropout: float = 0.1) -> None:
        super().__init__(feature, channels, pools, separable=separable, attention=attention)
        self.rnn = Recurrent(self.out_dim, hidden, rnn, layers, bidirectional)
        self.dropout = torch.nn.Dropout(dropout)
        self.heads = VAHeads(self.rnn.out_dim)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.rnn(self.conv_sequence(x)))


SEED_CNN_CHANNELS = (64, 128, 256, 512, 1024)


@register_model
def cnn(feature: FeatureConfig, channels: Sequence[int] = SEED_CNN_CHANNELS, norm: bool = True) -> ConvNet:
    """Seed CNN: 5 blocks of 3x3 conv + LeakyReLU, 1x1 conv + LeakyReLU (64-1024 filters); BN added (norm=False: as the notebooks)"""
    return ConvNet(feature, channels, ((2, 2), (2, 2), (2, 2), (2, 2), (2, 1)), norm=norm,
                   activation="leaky_relu", pointwise=True)


@register_model
def crnn(feature: FeatureConfig, **kw) -> CRNN:
    """Seed CRNN: 4 conv blocks (64-128-128-128) + 1-layer GRU (Choi et al. 2017 style)"""
    return CRNN(feature, **kw)


@register_model
def crnn_bilstm(feature: FeatureConfig, **kw) -> CRNN:
    """Seed CRNN with a shallow bidirectional LSTM instead of the GRU"""
    return CRNN(feature, **{"rnn": "lstm", "bidirectional": True, **kw})


@register_model
def crnn_gru3(feature: FeatureConfig, **kw) -> CRNN:
    """Seed CRNN with a 3-layer GRU"""
    return CRNN(feature, **{"layers": 3, **kw})


@register_model
def crnn_cbam(feature: FeatureConfig, **kw) -> CRNN:
    """Seed CRNN with CBAM channel+spatial attention after each conv block (Woo et al. 2018) + 1-layer GRU"""
    return CRNN(feature, **{"attention": "cbam", **kw})


@register_model
def mobile_crnn(feature: FeatureConfig, **kw) -> CRNN:
    """MobileNet-style CRNN: depthwise + pointwise convs (Howard et al. 2017) + 1-layer GRU"""
    return CRNN(feature, **{"separable": True, **kw})
