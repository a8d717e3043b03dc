"""The one output contract every model follows.

A model takes features ``(B, C, F, T)`` from its :class:`~mer.features.FeatureConfig`
front-end (or raw audio ``(B, C, N)`` through :meth:`MERModel.from_audio`) and returns::

    {"static": (B, 2), "dynamic": (B, n_out, 2), "embedding": (B, D)}

in (valence, arousal) order on the canonical [-1, 1] scale (not clipped). The dynamic
output is on the 0.5 s grid of :mod:`mer.grid`: ``n_out = max(1, floor(duration * 2))``.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from ..errors import ModelError
from ..features import FeatureConfig
from ..grid import n_steps
from ..meta import Capabilities
from .blocks import VAHeads
from .frontend import FrontEnd


class MERModel(nn.Module):
    """Base class: subclasses implement ``sequence(x) -> (B, T', D)`` and set ``self.heads``."""

    spec: dict
    feature: FeatureConfig
    heads: VAHeads
    _frontend: FrontEnd

    def __init__(self, feature: FeatureConfig) -> None:
        super().__init__()
        self.feature = feature
        if feature.resize_frames:
            raise ModelError("resize_frames is for the dense model's own input; remove it from the feature config "
                             "(--feature resize_frames=null)")

    @property
    def capabilities(self) -> Capabilities:
        """What this model can do (saved in its checkpoint; see :mod:`mer.meta`). A model with
        per-step embeddings or a frozen backbone overrides this."""
        return Capabilities(quadrant=getattr(getattr(self, "heads", None), "quadrant", None) is not None)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.sequence(x), n_steps(x.shape[-1], self.feature))

    def from_audio(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run on raw audio ``(B, C, N)`` at ``feature.sample_rate`` through the model's front-end."""
        if not hasattr(self, "_frontend"):
            self._frontend = FrontEnd(self.feature).to(wave.device)
        return self(self._frontend(wave))


class StepModel(Protocol):
    """A model with per-step embeddings (``capabilities.step_embeddings``: musicnn, ``hf:``
    encoders): ``embed(x)`` -> sequence ``(B, T', D)`` (musicnn: ``return_tags=True`` adds its
    tags), ``head(seq)`` -> the output dict of :class:`MERModel`."""

    def embed(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any: ...

    def head(self, seq: torch.Tensor) -> dict[str, torch.Tensor]: ...
