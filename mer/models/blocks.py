"""Shared building blocks: conv blocks (standard or depthwise-separable), CBAM attention, heads.

Shapes: conv blocks map ``(B, C, F, T)`` to ``(B, C', F / pf, T / pt)``; the recurrent layer
maps ``(B, T, D)`` to ``(B, T, D')``; :class:`VAHeads` maps a sequence ``(B, T, D)`` to the
output contract ``{"static": (B, 2), "dynamic": (B, n_out, 2)}`` (valence, arousal).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError


class ConvBlock(nn.Module):
    """3x3 conv (standard, or depthwise + pointwise when ``separable``) + BN + activation + pool.

    ``pointwise`` adds a 1x1 conv + activation (the seed CNN's block); ``norm=False`` drops BN.
    ``attention="cbam"`` appends a CBAM module; ``pool=(pf, pt)`` max-pools frequency and time.
    """

    def __init__(self, c_in: int, c_out: int, pool: tuple[int, int] = (2, 2), separable: bool = False,
                 attention: str | None = None, norm: bool = True, activation: str = "relu",
                 pointwise: bool = False) -> None:
        super().__init__()
        if separable:
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=not norm),
                                       nn.Conv2d(c_in, c_out, 1, bias=not norm)]
        else:
            layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not norm)]
        if norm:
            layers.append(nn.BatchNorm2d(c_out))
        act = (lambda: nn.LeakyReLU(0.01)) if activation == "leaky_relu" else nn.ReLU
        layers.append(act())
        if pointwise:  # the seed CNN's extra 1x1 conv after each 3x3
            layers += [nn.Conv2d(c_out, c_out, 1), act()]
        if attention == "cbam":
            layers.append(CBAM(c_out))
        elif attention is not None:
            raise ModelError(f"unknown attention {attention!r}; choose 'cbam' or None (--model-arg attention=cbam)")
        self.body = nn.Sequential(*layers)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        pf = min(self.pool[0], x.shape[-2])
        pt = min(self.pool[1], x.shape[-1])
        return F.max_pool2d(x, (pf, pt)) if (pf, pt) != (1, 1) else x


class CBAM(nn.Module):
    """Convolutional Block Attention Module (Woo et al. 2018): channel then spatial attention."""

    def __init__(self, channels: int, reduction: int = 8, kernel: int = 7) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        x = x * torch.sigmoid(avg + mx)  # channel attention (B, C, 1, 1)
        s = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(s))  # spatial attention (B, 1, F, T)


class Recurrent(nn.Module):
    """GRU or LSTM over ``(B, T, D)``, optionally bidirectional; returns ``(B, T, hidden * dirs)``."""

    def __init__(self, d_in: int, hidden: int, kind: str = "gru", layers: int = 1, bidirectional: bool = False) -> None:
        super().__init__()
        cls = {"gru": nn.GRU, "lstm": nn.LSTM}.get(kind)
        if cls is None:
            raise ModelError(f"unknown recurrent layer {kind!r}; choose 'gru' or 'lstm' (--model-arg rnn=gru)")
        self.rnn = cls(d_in, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        self.out_dim = hidden * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class VAHeads(nn.Module):
    """Sequence ``(B, T, D)`` -> ``{"static": (B, 2), "dynamic": (B, n_out, 2)}``.

    Static: the time-averaged sequence (``stats=True``: its mean and standard deviation over
    time) through a linear layer, or through a one-hidden-layer MLP when ``hidden > 0``.
    Dynamic: the same kind of layer per step after resampling the sequence to ``n_out`` steps
    (adaptive average pooling, or linear interpolation when the sequence is shorter than
    ``n_out``). ``dropout`` applies to the MLP's input and hidden layer.

    ``quadrant=True`` adds ``"quadrant": (B, 4)`` logits of Q1..Q4 from the sequence's mean and
    standard deviation over time (a linear layer; calibrated and made to agree with the
    valence/arousal point by :class:`mer.infer.Inference`). ``moods=W`` (with a quadrant head)
    adds ``"moods": (B, W)`` probabilities of W mood words (:class:`MoodHead`), from the same
    mean and standard deviation and the quadrant logits.
    """

    def __init__(self, d_in: int, hidden: int = 0, dropout: float = 0.0, stats: bool = False,
                 quadrant: bool = False, moods: int = 0) -> None:
        super().__init__()
        self.stats = stats
        self.static = self._layer(2 * d_in if stats else d_in, hidden, dropout)
        self.dynamic = self._layer(d_in, hidden, dropout)
        self.quadrant = nn.Linear(2 * d_in, 4) if quadrant else None
        if moods and not quadrant:
            raise ModelError("mood words need the quadrant head (their blend uses its probabilities)")
        self.moods = MoodHead(2 * d_in, moods) if moods else None

    @staticmethod
    def _layer(d_in: int, hidden: int, dropout: float) -> nn.Module:
        if not hidden:
            return nn.Linear(d_in, 2)
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout),
                             nn.Linear(hidden, 2))

    def forward(self, seq: torch.Tensor, n_out: int) -> dict[str, torch.Tensor]:
        x = seq.transpose(1, 2)  # (B, D, T)
        if x.shape[-1] == n_out:  # already on the grid (musicnn); keeps the ONNX export's length symbolic
            steps = x
        elif x.shape[-1] >= n_out:
            steps = F.adaptive_avg_pool1d(x, n_out)
        else:
            steps = F.interpolate(x, size=n_out, mode="linear", align_corners=False)
        mean = seq.mean(dim=1)
        # population sd (0 for a one-step clip, where the unbiased one is undefined)
        stats = torch.cat([mean, ((seq - mean[:, None]).square().mean(dim=1) + 1e-8).sqrt()], dim=-1)
        out = {"static": self.static(stats if self.stats else mean), "dynamic": self.dynamic(steps.transpose(1, 2)),
               "embedding": mean}
        if self.quadrant is not None:
            out["quadrant"] = self.quadrant(stats)
            if self.moods is not None:
                out["moods"] = self.moods(stats, out["quadrant"])
        return out


class MoodHead(nn.Module):
    """Clip statistics ``(B, 2D)`` and quadrant logits ``(B, 4)`` -> ``(B, W)`` mood-word probabilities.

    ``p = blend * sigmoid(score(stats)) + (1 - blend) * softmax(quadrant) @ mixture``: a
    calibrated linear tagger per word (a ridge score with its standardisation and Platt
    scaling folded into ``score``) blended with the quadrant mixture ``sum_q P(q) P(word | q)``
    (``mixture``: (4, W)); ``blend`` (W,) in [0, 1]. Fit by :func:`mer.train.moods.fit_tagger`
    and put in place by :func:`mer.train.moods.attach`; it is not trained by gradient."""

    blend: torch.Tensor
    mixture: torch.Tensor

    def __init__(self, d_in: int, n_words: int) -> None:
        super().__init__()
        self.score = nn.Linear(d_in, n_words)
        self.register_buffer("blend", torch.ones(n_words))
        self.register_buffer("mixture", torch.full((4, n_words), 0.5))
        self.requires_grad_(False)

    def forward(self, stats: torch.Tensor, quadrant: torch.Tensor) -> torch.Tensor:
        tagger = torch.sigmoid(self.score(stats))
        mixture = torch.softmax(quadrant, dim=-1) @ self.mixture
        return self.blend * tagger + (1 - self.blend) * mixture
