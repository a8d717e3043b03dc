"""ONNX export of a model (features in, valence/arousal out) for deployment without PyTorch.

The graph takes log-mel (or STFT) features ``(batch, channels, bins, frames)`` of a fixed
window (``seconds``, default 30) and returns ``static (batch, 2)`` and ``dynamic (batch,
steps, 2)``. A sidecar ``NAME.json`` records the feature config the input must be computed
with (``mer.features.FeatureConfig``), the window, and the output meaning. Longer audio is
processed window by window, as ``mer predict`` does; shorter audio is padded or looped by
the caller. Export needs the ``onnx`` and ``onnxscript`` packages (``pip install
'mer-toolkit[export]'``); running the file needs only ``onnxruntime``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError
from .io import atomic_path, write_json_atomic


class _Outputs(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(features)
        return out["static"], out["dynamic"]


def export_onnx(model: torch.nn.Module, meta: dict[str, Any], out: str | os.PathLike, seconds: float = 30.0) -> Path:
    """Write ``out`` (.onnx) and its ``.json`` sidecar; return the ONNX path."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError("ONNX export needs onnx and onnxscript: pip install 'mer-toolkit[export]'") from None
    from .features import FeatureConfig

    feature = FeatureConfig.from_dict(meta["feature"])
    frames = feature.n_frames(int(seconds * feature.sample_rate))
    x = torch.zeros(1, feature.channels, feature.n_bins, frames)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    with atomic_path(out) as tmp:
        prog = torch.onnx.export(_Outputs(model), (x,), input_names=["features"],
                                 output_names=["static", "dynamic"], dynamo=True, verbose=False,
                                 dynamic_shapes={"features": {0: torch.export.Dim("batch", max=1024)}})
        prog.save(str(tmp))
    write_json_atomic(out.with_suffix(".json"), {
        "format": "mer-onnx/1", "input": "features", "input_shape": ["batch", feature.channels, feature.n_bins, frames],
        "window_seconds": seconds, "feature": feature.to_dict(),
        "outputs": {"static": "(batch, 2) valence, arousal on the canonical [-1, 1] scale",
                    "dynamic": "(batch, steps, 2) at 2 Hz, step i stamped at 0.5 (i + 1) s"},
        "model": meta.get("model"), "source_checkpoint": meta.get("source")})
    return out
