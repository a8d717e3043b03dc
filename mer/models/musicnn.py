"""musicnn (Pons & Serra 2019), ported from the authors' TensorFlow 1 release to PyTorch.

The network, as in ``musicnn/models.py`` of the ``musicnn`` 0.1.0 package (ISC licence,
see ``mer/models/weights/MUSICNN_LICENSE``), on the log-mel input that is mer's default
:class:`~mer.features.FeatureConfig` (16 kHz, n_fft 512, hop 256, 96 mels, log10(1 + 10000 x)):

- front-end: batch norm on the input, then "timbral" convolutions (7 frames x 38 and x 67
  mel bands, 204 filters each) and "temporal" convolutions (128, 64, 32 frames x 1 band,
  51 filters each), each followed by ReLU, batch norm and a max over frequency: 561
  features per frame;
- mid-end: three 1-D convolutions over time (7 frames, 64 filters, ReLU, batch norm), the
  2nd and 3rd residual; the front-end and the three outputs are concatenated: 753 per frame;
- back-end: max and mean over time (interleaved, 1506), batch norm, dense 200 + ReLU + batch
  norm (the "penultimate" embedding), dense 50 -> sigmoid tag probabilities.

In eval mode the front-end runs in an equivalent, cheaper form (:class:`FastFront`): most
trained filters are zero (in the MSD weights 181 of 204 in the first layer), so only the live
ones are convolved, and batch norm commutes with the max over frequency. Same outputs up to
float rounding, at 3.0 instead of 28 GFLOPs per 30 s (`mer models`).

TensorFlow's batch norm uses eps = 1e-3 and its "same" padding puts the odd extra frame of an
even kernel after the signal; both are kept so the port matches the original (parity figures
in ``tools/README.md``). The original was trained on 3 s patches (187 frames); here the
front- and mid-end run once over the whole clip and the back-end pools a ``context``-second
window around each 0.5 s step, which gives the dynamic curve, and the static output and tags
average those windows, as the original averages its patches.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ..errors import ModelError
from ..features import FeatureConfig
from ..meta import Capabilities
from .base import MERModel, n_steps
from .blocks import VAHeads
from .registry import register_model

WEIGHTS_DIR = Path(__file__).parent / "weights"
SOURCES = ("msd", "mtt")
BN_EPS = 1e-3  # TensorFlow's default
TEMPORAL_KERNELS = (128, 64, 32)  # frames of the front-end's temporal filters

MTT_TAGS = ('guitar', 'classical', 'slow', 'techno', 'strings', 'drums', 'electronic', 'rock', 'fast', 'piano',
            'ambient', 'beat', 'violin', 'vocal', 'synth', 'female', 'indian', 'opera', 'male', 'singing', 'vocals',
            'no vocals', 'harpsichord', 'loud', 'quiet', 'flute', 'woman', 'male vocal', 'no vocal', 'pop', 'soft',
            'sitar', 'solo', 'man', 'classic', 'choir', 'voice', 'new age', 'dance', 'male voice', 'female vocal',
            'beats', 'harp', 'cello', 'no voice', 'weird', 'country', 'metal', 'female voice', 'choral')
MSD_TAGS = ('rock', 'pop', 'alternative', 'indie', 'electronic', 'female vocalists', 'dance', '00s',
            'alternative rock', 'jazz', 'beautiful', 'metal', 'chillout', 'male vocalists', 'classic rock', 'soul',
            'indie rock', 'Mellow', 'electronica', '80s', 'folk', '90s', 'chill', 'instrumental', 'punk', 'oldies',
            'blues', 'hard rock', 'ambient', 'acoustic', 'experimental', 'female vocalist', 'guitar', 'Hip-Hop', '70s',
            'party', 'country', 'easy listening', 'sexy', 'catchy', 'funk', 'electro', 'heavy metal',
            'Progressive rock', '60s', 'rnb', 'indie pop', 'sad', 'House', 'happy')
TAGS = {"msd": MSD_TAGS, "mtt": MTT_TAGS}


def _bn(n: int, dims: int = 1) -> nn.Module:
    return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(n, eps=BN_EPS)


class FastBranch(nn.Module):
    """Inference form of one front-end branch, conv -> ReLU -> batch norm -> max over frequency,
    with the same output up to float rounding. Built from the branch's current weights.

    - Dead filters: most of the trained filters are zero (weight norm under ``rtol`` of the
      largest; in the MSD weights 181 and 190 of the 204 timbral filters and 48, 44 and 34 of
      the 51 temporal ones). Such a channel's output is the constant bn(relu(bias)), kept in
      ``dead`` (``live`` marks the others); only the live filters are convolved, and
      :meth:`forward` returns the live channels.
    - Order: batch norm in eval mode is a per-channel affine a * y + b, and ReLU is monotone, so
      max_f(a * relu(z_f) + b) = a * relu(max_f z_f) + b where a >= 0, and the same with the
      min where a < 0 (the conv bias is constant over f too). ReLU and batch norm then run on
      one value per frame and channel instead of one per frequency position. The min is taken
      as -max(-z), with the sign folded into the filters, so one reduction serves both.
    """

    weight: torch.Tensor
    sign: torch.Tensor
    bias: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, rtol: float = 1e-6) -> None:
        super().__init__()
        # musicnn's layers have a bias and running statistics (their torch types allow none)
        assert conv.bias is not None and bn.running_mean is not None and bn.running_var is not None
        w = conv.weight.detach().double()
        scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        shift = bn.bias.detach().double() - bn.running_mean.double() * scale
        bias = conv.bias.detach().double()
        norms = w.flatten(1).norm(dim=1)
        self.live = norms > rtol * norms.max()
        live = self.live
        self.dead = (F.relu(bias[~live]) * scale[~live] + shift[~live]).to(conv.weight.dtype)
        sign = torch.where(scale[live] >= 0, 1.0, -1.0).double()
        for name, t in (("weight", w[live] * sign[:, None, None, None]), ("sign", sign[:, None]),
                        ("bias", bias[live, None]), ("scale", scale[live, None]), ("shift", shift[live, None])):
            self.register_buffer(name, t.to(conv.weight.dtype), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Padded input ``(B, in, T', F)`` -> the live channels ``(B, live, T)``."""
        z = F.conv2d(x, self.weight).amax(dim=3) * self.sign  # max_f z where scale >= 0, min_f z elsewhere
        return F.relu(z + self.bias) * self.scale + self.shift


class FastFront(nn.Module):
    """Eval-mode front-end and first mid-end convolution of a :class:`MusicnnTrunk`.

    The branches run as :class:`FastBranch`; the dead channels' constants are put back in
    their places for the trunk's output, and :meth:`pool` leaves them out of the window
    pooling (their max and mean are the constants). The first mid-end convolution is linear,
    so it runs on the live channels only, plus the constant channels' share: per output
    channel and tap ``A[o, k] = sum_c W[o, c, k] * dead_c``, applied as a convolution of a
    signal of ones with the same zero padding, which gets the edge frames (where padding
    drops taps) right too.
    """

    dead: torch.Tensor
    order: torch.Tensor
    varying: torch.Tensor
    pool_order: torch.Tensor
    mid_weight: torch.Tensor
    mid_bias: torch.Tensor
    mid_dead: torch.Tensor

    def __init__(self, trunk: "MusicnnTrunk") -> None:
        super().__init__()
        branches = [FastBranch(conv, bn) for conv, bn in zip(
            [*trunk.timbral, *trunk.temporal], [*trunk.timbral_bn, *trunk.temporal_bn])]
        self.branches = nn.ModuleList(branches)
        live = torch.cat([b.live for b in branches])
        dead = torch.cat([b.dead for b in branches])
        order = torch.argsort(torch.cat([torch.nonzero(live)[:, 0], torch.nonzero(~live)[:, 0]]))
        mid = trunk.mid[0]
        assert isinstance(mid, nn.Conv1d) and mid.bias is not None  # MusicnnTrunk's first mid-end layer
        w = mid.weight.detach()
        self.padding = int(mid.padding[0])
        varying = torch.cat([torch.nonzero(live)[:, 0],  # + the mid-end's channels
                             torch.arange(len(live), trunk.dim, device=live.device)])
        chans = torch.cat([varying, torch.nonzero(~live)[:, 0]])
        pool_order = torch.argsort(torch.stack([2 * chans, 2 * chans + 1], dim=1).flatten())  # (max, mean) pairs
        for name, t in (("dead", dead[:, None]), ("order", order), ("varying", varying), ("pool_order", pool_order),
                        ("mid_weight", w[:, live]),
                        ("mid_bias", mid.bias.detach()),
                        ("mid_dead", torch.einsum("ock,c->ok", w[:, ~live].double(), dead.double())[:, None].to(w.dtype))):
            self.register_buffer(name, t, persistent=False)

    def forward(self, x: torch.Tensor, pads: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Input ``(B, 1, T, F)`` after the input batch norm -> (the live front-end channels
        ``(B, n_live, T)``, in the order of :attr:`varying`; the first mid-end convolution's
        output before its ReLU ``(B, 64, T)``)."""
        live = torch.cat([branch(F.pad(x, (0, 0, *pad))) for branch, pad in zip(self.branches, pads)], dim=1)
        mid = F.conv1d(live, self.mid_weight, self.mid_bias, padding=self.padding)
        return live, mid + F.conv1d(torch.ones_like(live[:, :1]), self.mid_dead, padding=self.padding)

    def front(self, live: torch.Tensor) -> torch.Tensor:
        """The whole front-end ``(B, 561, T)``: the live channels with the dead ones' constants."""
        return torch.cat([live, self.dead.expand(live.shape[0], -1, live.shape[2])], dim=1)[:, self.order]

    def pool(self, varying: torch.Tensor, centres: torch.Tensor, half: int) -> torch.Tensor:
        """:func:`pool_windows` of the trunk's varying channels ``(B, len(varying), T)``
        (``trunk(x, varying=True)``), with the dead channels' constants put back in place:
        the full ``(B, 753, T)`` output is never built."""
        pooled = pool_windows(varying, centres, half)
        const = self.dead[:, 0].repeat_interleave(2).expand(*pooled.shape[:2], -1)
        return torch.cat([pooled, const], dim=-1)[..., self.pool_order]


def _rebuild_fast(trunk: "MusicnnTrunk", _incompatible_keys: object) -> None:
    trunk.train(trunk.training)  # new weights: rebuild (or keep clear) the eval-mode form


class MusicnnTrunk(nn.Module):
    """Front-end + mid-end: features ``(B, 1, 96, T)`` -> per-frame features ``(B, 753, T)``.

    In eval mode the front-end and the first mid-end convolution run as :class:`FastFront`
    (same outputs, a fraction of the operations), rebuilt whenever the module enters eval
    mode or loads a state dict; train mode runs the original layers. Edit weights in place
    only in train mode (or call ``eval()`` again after)."""

    def __init__(self, n_mels: int = 96, frontend_filters: float = 1.6, midend_filters: int = 64) -> None:
        super().__init__()
        nt, ns = int(frontend_filters * 128), int(frontend_filters * 32)
        self.input_bn = _bn(1, 2)
        self.timbral = nn.ModuleList([nn.Conv2d(1, nt, (7, int(f * n_mels))) for f in (0.4, 0.7)])
        self.timbral_bn = nn.ModuleList([_bn(nt, 2) for _ in range(2)])
        self.temporal = nn.ModuleList([nn.Conv2d(1, ns, (k, 1)) for k in TEMPORAL_KERNELS])
        self.temporal_bn = nn.ModuleList([_bn(ns, 2) for _ in range(3)])
        d_front = 2 * nt + 3 * ns
        self.mid = nn.ModuleList([nn.Conv1d(d_front if i == 0 else midend_filters, midend_filters, 7, padding=3)
                                  for i in range(3)])
        self.mid_bn = nn.ModuleList([_bn(midend_filters) for _ in range(3)])
        self.dim = d_front + 3 * midend_filters
        self.fast: FastFront | None = None
        self.register_load_state_dict_post_hook(_rebuild_fast)

    def train(self, mode: bool = True) -> "MusicnnTrunk":
        super().train(mode)
        self.fast = None if mode else FastFront(self)
        return self

    def forward(self, x: torch.Tensor, varying: bool = False) -> torch.Tensor:
        """``(B, 753, T)``; ``varying=True`` (eval mode only) returns just the channels that vary,
        ``(B, len(fast.varying), T)``, for :meth:`FastFront.pool`."""
        x = self.input_bn(x.transpose(2, 3))  # (B, 1, T, F): time first, as the original
        pads = [(3, 3)] * len(self.timbral) + [((k - 1) // 2, k // 2)  # TensorFlow "same": extra frame after
                                               for k in TEMPORAL_KERNELS]
        if self.fast is not None:
            live, mid = self.fast(x, pads)
        else:
            if varying:
                raise RuntimeError("trunk(x, varying=True) needs eval mode (the fast front-end)")
            front = torch.cat([bn(F.relu(conv(F.pad(x, (0, 0, *pad))))).amax(dim=3) for conv, bn, pad in zip(
                [*self.timbral, *self.temporal], [*self.timbral_bn, *self.temporal_bn], pads)], dim=1)  # (B, 561, T)
            mid = self.mid[0](front)
        h = self.mid_bn[0](F.relu(mid))
        out = [h]
        for conv, bn in zip(self.mid[1:], self.mid_bn[1:]):
            h = bn(F.relu(conv(h))) + h
            out.append(h)
        if self.fast is None:
            return torch.cat([front, *out], dim=1)
        return torch.cat([live, *out], dim=1) if varying else torch.cat([self.fast.front(live), *out], dim=1)


class MusicnnBackend(nn.Module):
    """Pooled features ``(..., 1506)`` -> (penultimate ``(..., 200)``, tag logits ``(..., 50)``)."""

    def __init__(self, dim: int = 753, units: int = 200, n_tags: int = 50) -> None:
        super().__init__()
        self.pool_bn = _bn(2 * dim)
        self.dense = nn.Linear(2 * dim, units)
        self.dense_bn = _bn(units)
        self.tags = nn.Linear(units, n_tags)

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = pooled.shape[:-1]
        z = self.pool_bn(pooled.reshape(-1, pooled.shape[-1]))
        pen = self.dense_bn(F.relu(self.dense(z)))
        return pen.view(*shape, -1), self.tags(pen).view(*shape, -1)


def pool_windows(h: torch.Tensor, centres: torch.Tensor, half: int) -> torch.Tensor:
    """Max and mean of ``h`` ``(B, D, T)`` over frames ``centre +- half`` -> ``(B, n, 2 D)``.

    Interleaved (max_0, mean_0, max_1, ...), as the original flattens its (max, mean) pair.
    Frames outside the clip are left out of both: the max over indices clamped to the clip
    only repeats its edge frames, and the mean is a product with a (frames, windows) matrix of
    1 / window length inside each window.
    """
    t = h.shape[-1]
    idx = centres[:, None] + torch.arange(-half, half + 1, device=h.device)[None]  # (n, k)
    mx = h[..., idx.clamp(0, t - 1)].amax(dim=-1)  # (B, D, n)
    frames = torch.arange(t, device=h.device)[:, None]
    inside = ((frames >= centres - half) & (frames <= centres + half)).to(h.dtype)  # (T, n)
    mean = h @ (inside / inside.sum(dim=0))
    return torch.stack([mx, mean], dim=-1).transpose(1, 2).flatten(2)  # (B, n, D, 2) -> (B, n, 2 D)


def load_musicnn_weights(module: nn.Module, source: str) -> None:
    """Load the converted ``source`` ("msd" or "mtt") weights into trunk + backend ``module``."""
    path = WEIGHTS_DIR / f"musicnn_{source}.safetensors"
    if not path.exists():
        raise ModelError(f"{path}: musicnn weights missing; reinstall mer or run tools/convert_musicnn.py")
    module.load_state_dict(load_file(str(path)))


class Musicnn(MERModel):
    """musicnn trunk + back-end (pretrained, frozen by default) + valence/arousal heads.

    ``layer="penultimate"`` feeds the 200-d embedding to the heads; ``layer="pool"`` the
    1506 batch-normed pooled features. ``head_hidden``, ``head_dropout``, ``head_stats``,
    ``quadrant`` (quadrant logits): see :class:`~mer.models.blocks.VAHeads`; ``mood_words``: the
    mood-word head's vocabulary (``"moods"``: ``(B, W)`` probabilities, in this order). Output adds
    ``"tags"``: ``(B, 50)`` probabilities.
    """

    #: the arguments that change :meth:`embed` (the training engine's embedding cache key)
    embed_args = ("source", "pretrained", "layer", "context")

    def __init__(self, feature: FeatureConfig, source: str = "msd", freeze: bool = True, pretrained: bool = True,
                 layer: str = "penultimate", context: float = 3.0, head_hidden: int = 0, head_dropout: float = 0.0,
                 head_stats: bool = False, quadrant: bool = False, mood_words: list[str] | None = None) -> None:
        super().__init__(feature)
        expected = FeatureConfig()
        if (feature.kind, feature.sample_rate, feature.n_fft, feature.hop_length, feature.n_mels,
                feature.compression, feature.channels) != (
                expected.kind, expected.sample_rate, expected.n_fft, expected.hop_length, expected.n_mels,
                expected.compression, expected.channels):
            raise ModelError("musicnn needs the default log-mel features (16 kHz mono, n_fft 512, hop 256, 96 mels)")
        if source not in SOURCES:
            raise ModelError(f"unknown musicnn source {source!r}; choose one of {', '.join(SOURCES)}")
        if layer not in ("penultimate", "pool"):
            raise ModelError(f"unknown musicnn layer {layer!r}; choose 'penultimate' or 'pool'")
        self.source, self.freeze, self.layer, self.context = source, freeze, layer, context
        trunk = MusicnnTrunk()
        self.backbone = nn.ModuleDict({"trunk": trunk, "backend": MusicnnBackend()})
        if pretrained:
            load_musicnn_weights(self.backbone, source)
        if freeze:
            self.backbone.requires_grad_(False)
        self.heads = VAHeads(200 if layer == "penultimate" else 2 * trunk.dim, head_hidden,
                             head_dropout, head_stats, quadrant, len(mood_words or ()))
        self.tag_names = TAGS[source]
        self.mood_words = list(mood_words or ())

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(step_embeddings=True, quadrant=self.heads.quadrant is not None,
                            frozen_backbone=self.freeze, window_seconds=self.context, pooled_head=True)

    @property
    def tag_layer(self) -> nn.Module | None:
        """The linear layer from a per-step embedding to tag logits (what a distilled student
        copies), when the embedding is the penultimate layer."""
        return self._backend.tags if self.layer == "penultimate" else None

    # the backbone's parts (a ModuleDict, whose items are typed Module, keeps the checkpoint's key names)
    @property
    def _trunk(self) -> MusicnnTrunk:
        return cast(MusicnnTrunk, self.backbone["trunk"])

    @property
    def _backend(self) -> MusicnnBackend:
        return cast(MusicnnBackend, self.backbone["backend"])

    def train(self, mode: bool = True) -> "Musicnn":
        # a frozen backbone stays in eval mode (its running statistics, its fast form), set once
        self.training = mode
        for child in self.children():
            child.train(mode and not (self.freeze and child is self.backbone))
        return self

    def windows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pooled, penultimate, tag logits) for the window around each 0.5 s step."""
        fps = self.feature.frames_per_second
        n = n_steps(x.shape[-1], self.feature)
        centres = torch.round((0.5 * torch.arange(n, device=x.device) + 0.25) * fps).long()
        half = int(round(self.context * fps / 2))
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            trunk = self._trunk
            centres = centres.clamp(max=x.shape[-1] - 1)
            if trunk.fast is None:
                pooled = pool_windows(trunk(x), centres, half)
            else:  # only the channels that vary are pooled; the dead ones' constants are put back
                pooled = trunk.fast.pool(trunk(x, varying=True), centres, half)
            pen, logits = self._backend(pooled)
        return pooled, pen, logits

    def _seq(self, pooled: torch.Tensor, pen: torch.Tensor) -> torch.Tensor:
        if self.layer == "pool":
            return self._backend.pool_bn(pooled.flatten(0, 1)).view_as(pooled)
        return pen

    def embed(self, x: torch.Tensor, return_tags: bool = False):  # noqa: ANN201
        """Per-step backbone embeddings ``(B, n, D)``: what the heads see. With a frozen
        backbone the training engine computes these once per clip and trains :meth:`head`;
        the predictor computes them chunk by chunk on long files. ``return_tags`` also
        returns the per-step tag probabilities ``(B, n, 50)``."""
        pooled, pen, logits = self.windows(x)
        seq = self._seq(pooled, pen)
        return (seq, torch.sigmoid(logits)) if return_tags else seq

    def head(self, seq: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(seq, seq.shape[1])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled, pen, logits = self.windows(x)
        out = self.head(self._seq(pooled, pen))
        out["tags"] = torch.sigmoid(logits).mean(dim=1)
        return out


@register_model
def musicnn(feature: FeatureConfig, **kw) -> Musicnn:
    """musicnn (Pons & Serra 2019) pretrained on MSD tags (source="mtt": MagnaTagATune), frozen or fine-tuned, + VA heads"""
    return Musicnn(feature, **kw)
