"""ONNX export of a model (features in, valence/arousal out) for deployment without PyTorch.

Two formats:

- :func:`export_onnx` (``mer export --onnx FILE``): one graph for a fixed window, for your
  own deployment; described below.
- :func:`export_runtime` (``mer export --runtime``): the two graphs ``mer predict`` itself
  runs with onnxruntime (see :mod:`mer.infer.backends`), for models with per-step embeddings
  (musicnn, and ``hf:`` encoders: then ``mer predict`` needs neither torch nor transformers).

The graph takes log-mel (or STFT) features ``(batch, channels, bins, frames)`` of a fixed
window (``seconds``, default 30) and returns ``static (batch, 2)`` and ``dynamic (batch,
steps, 2)``. A sidecar ``NAME.json`` records the feature config the input must be computed
with (``mer.features.FeatureConfig``), the window, the input shape (the batch is fixed at 1
where the model's code fixes it, as hub encoders' code does), and the output meaning. Longer audio is
processed window by window, as ``mer predict`` does; shorter audio is padded or looped by
the caller. Export needs the ``onnx`` and ``onnxscript`` packages (``pip install
'mer-toolkit[export]'``); running the file needs only ``onnxruntime``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from ..errors import ConfigError, ModelError
from ..features import FeatureConfig
from ..grid import min_frames, whole_step_window
from ..bundle import Bundle, graph_paths
from ..io import atomic_path, write_json_atomic
from ..models.checkpoint import load_checkpoint

if TYPE_CHECKING:
    from ..models.base import StepModel
    from ..models.hf import HubBackbone


class _Outputs(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(features)
        return out["static"], out["dynamic"]


def _require_exporter() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ConfigError("ONNX export needs onnx and onnxscript: pip install 'mer-toolkit[export]'") from None


def _export(module: torch.nn.Module, x: torch.Tensor, outputs: list[str], dims: dict[int, Any], where: str,
            name: str, input_name: str = "features") -> Any:
    """torch.onnx.export (dynamo) of ``module`` on the example ``x``, ``dims`` of its input dynamic;
    a model whose code does not export is a one-line ModelError."""
    try:
        prog = torch.onnx.export(module.eval(), (x,), input_names=[input_name], output_names=outputs, dynamo=True,
                                 verbose=False, dynamic_shapes={input_name: dims})
    except Exception as exc:  # noqa: BLE001  (torch.export raises many types; the first line says what failed)
        raise ModelError(f"{where}: {name} does not export to ONNX ({str(exc).strip().splitlines()[0]}); "
                         "it runs with PyTorch (--backend torch)") from None
    if prog is None:  # only with dynamo=False
        raise ModelError(f"{where}: {name} does not export to ONNX; it runs with PyTorch (--backend torch)")
    # the exporter falls back to the example's shape where the code pins a dimension: refuse that
    # graph (it would reject every other length) instead of writing it
    shape = prog.model_proto.graph.input[0].type.tensor_type.shape.dim
    for axis, dim in dims.items():
        if axis < len(shape) and not shape[axis].dim_param and axis != 0:
            raise ModelError(f"{where}: {name} does not export to ONNX (its code fixes input dimension {axis} at "
                             f"{shape[axis].dim_value}); it runs with PyTorch (--backend torch)")
    return prog


def export_onnx(model: torch.nn.Module, bundle: Bundle, out: str | os.PathLike, seconds: float = 30.0) -> Path:
    """Write ``out`` (.onnx) and its ``.json`` sidecar for ``model`` (loaded from ``bundle``);
    return the ONNX path."""
    _require_exporter()
    meta = bundle.meta
    feature = FeatureConfig.from_dict(meta.feature)
    frames = feature.n_frames(int(seconds * feature.sample_rate))
    x = torch.zeros(1, feature.channels, feature.n_bins, frames)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    prog = _export(_Outputs(model), x, ["static", "dynamic"], {0: torch.export.Dim("batch", max=1024)},
                   bundle.name, meta.model)
    with atomic_path(out) as tmp:
        prog.save(str(tmp))
    # the batch stays dynamic where the model's code allows (hub encoders' code fixes it at 1)
    shape = [d if isinstance(d, int) else "batch" for d in prog.model.graph.inputs[0].shape.dims]
    write_json_atomic(out.with_suffix(".json"), {
        "format": "mer-onnx/1", "input": "features", "input_shape": shape,
        "window_seconds": seconds, "feature": feature.to_dict(),
        "outputs": {"static": "(batch, 2) valence, arousal on the canonical [-1, 1] scale",
                    "dynamic": "(batch, steps, 2) at 2 Hz, step i stamped at 0.5 (i + 1) s"},
        "model": meta.model, "source_checkpoint": bundle.name, **bundle.provenance()})
    return out


class _Embed(torch.nn.Module):
    def __init__(self, model: StepModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor):  # noqa: ANN201
        if getattr(self.model, "tag_names", None):
            return self.model.embed(features, return_tags=True)
        return self.model.embed(features)


class _Window(torch.nn.Module):
    """A hub encoder's one native window: features -> the chosen layer's frames (see
    :meth:`mer.models.hf.HubBackbone.encode_window`); the ONNX engine averages them into steps."""

    def __init__(self, model: HubBackbone) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.encode_window(features)[0]


#: what the head graph returns, in this order, where the model has it
HEAD_OUTPUTS = ("static", "dynamic", "quadrant", "moods")


class _Head(torch.nn.Module):
    def __init__(self, model: StepModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, sequence: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model.head(sequence)
        return tuple(out[k] for k in HEAD_OUTPUTS if k in out)


def _save_with_metadata(prog: Any, out: Path, metadata: dict[str, str]) -> None:
    import onnx

    with atomic_path(out) as tmp:
        prog.save(str(tmp))
        proto = onnx.load(str(tmp))
        for k, v in metadata.items():
            proto.metadata_props.add(key=k, value=v)
        onnx.save(proto, str(tmp))


def export_runtime(model_spec: "str | os.PathLike | Bundle") -> tuple[Path, Path]:
    """Write ``STEM.embed.onnx`` and ``STEM.head.onnx`` beside the checkpoint: the graphs
    :class:`mer.infer.backends.OnnxBackend` runs. Both take any length (from 0.5 s of frames
    up), except a hub encoder's embed graph (:meth:`mer.models.hf.HubBackbone.encode_window`),
    which takes up to one native window and returns the chosen layer's frames; the engine cuts
    the audio and averages them into steps as the model does. The embed graph's metadata holds
    the tag names, the SHA-1 of the weights and, for a hub encoder, its window and where its
    frames are (``window_frames``, ``frame_offset``, ``frame_seconds``)."""
    _require_exporter()
    bundle = Bundle.resolve(model_spec)
    stem = bundle.stem
    loaded, meta = load_checkpoint(bundle)
    if not loaded.capabilities.step_embeddings:
        raise ConfigError(f"{stem}: `--runtime` is for models with per-step embeddings (model.embed/head: "
                          f"musicnn, hf: encoders); {meta.model} runs with PyTorch, or export it with --onnx FILE")
    model = cast("StepModel", loaded)  # what capabilities.step_embeddings promises
    feature = FeatureConfig.from_dict(meta.feature)
    embed_path, head_path = graph_paths(stem)
    meta_props = {"weights_sha1": bundle.digest, "model": meta.model,
                  "tag_names": json.dumps(list(getattr(model, "tag_names", [])))}
    window = getattr(model, "encode_window", None)  # a hub encoder: one graph per native window
    graph: torch.nn.Module
    if window is not None:
        hub = cast("HubBackbone", model)  # only a hub encoder has encode_window
        longest = whole_step_window(feature, hub.front.window_frames)[1]
        x = torch.rand(1, feature.channels, feature.n_bins, longest)
        with torch.no_grad():
            _, offset, seconds = window(x)
        meta_props.update(window_frames=str(hub.front.window_frames), frame_offset=repr(offset),
                          frame_seconds=repr(seconds))
        frames = torch.export.Dim("frames", min=min_frames(feature), max=longest)
        graph, outputs = _Window(hub), ["frames"]
    else:
        frames = torch.export.Dim("frames", min=min_frames(feature), max=1 << 22)
        x = torch.zeros(1, feature.channels, feature.n_bins, int(10 * feature.frames_per_second))
        graph, outputs = _Embed(model), ["sequence", "tags"] if getattr(model, "tag_names", None) else ["sequence"]
    embed = _export(graph, x, outputs, {3: frames}, str(stem), meta.model)
    with torch.no_grad():
        seq = model.embed(x)
    head = _export(_Head(model), seq, [k for k in HEAD_OUTPUTS if k in model.head(seq)],
                   {1: torch.export.Dim("steps", min=1, max=1 << 20)}, str(stem), meta.model, "sequence")
    _save_with_metadata(embed, embed_path, meta_props)  # both exported: neither is written alone
    _save_with_metadata(head, head_path, meta_props)
    return embed_path, head_path
