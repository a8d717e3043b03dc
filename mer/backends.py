"""Where a model lives and what runs it: PyTorch, or ONNX Runtime without importing torch.

A model is named by a bundled name (``mer/pretrained/NAME.json``), a checkpoint (either
file or the stem) or a ``mer train`` run folder; :func:`locate_checkpoint` turns that into a
checkpoint stem without importing torch.

:func:`open_backend` returns one of two engines with the same numpy interface, used by
:class:`mer.predictor.Predictor`:

- :class:`OnnxBackend` runs ``STEM.embed.onnx`` (features ``(1, C, F, T)``, any T ->
  per-step embeddings ``(1, n, D)`` and tag probabilities ``(1, n, K)``) and
  ``STEM.head.onnx`` (embeddings ``(1, n, D)`` -> static ``(1, 2)``, dynamic ``(1, n, 2)``)
  with onnxruntime. ``mer export --runtime`` writes them beside a checkpoint (see
  :func:`mer.export.export_runtime`); they exist for models with per-step embeddings
  (``model.embed`` / ``model.head``, e.g. musicnn). Importing onnxruntime takes ~0.2 s
  against ~2.5 s for torch, which is most of ``mer predict``'s cold start.
- :class:`TorchBackend` loads the checkpoint with PyTorch: every model, any device.

``auto`` takes ONNX when the two graphs exist, were exported from these very weights (their
metadata holds the SHA-1 of the ``.safetensors``), the device is the CPU and onnxruntime is
installed; otherwise PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import checkpoint_paths, read_meta
from .errors import MERWarning, ModelError

PRETRAINED = Path(__file__).parent / "pretrained"
BACKENDS = ("auto", "onnx", "torch")


def bundled_models() -> list[str]:
    """Names of the checkpoints shipped inside the package (``mer/pretrained/NAME.json``)."""
    return sorted(p.stem for p in PRETRAINED.glob("*.json"))


def locate_checkpoint(spec: str | os.PathLike) -> Path:
    """Checkpoint stem of a bundled name, a checkpoint file or stem, or a run folder (its fold0 best)."""
    s = str(spec)
    if s in bundled_models():
        return PRETRAINED / s
    p = Path(s)
    if p.is_dir():
        for cand in (p / "best", p / "fold0" / "best"):
            if cand.with_suffix(".json").exists():
                return cand
        raise ModelError(f"{p}: no checkpoint in this folder (expected best.json or fold0/best.json)")
    if p.exists() or p.with_suffix(".json").exists():
        return checkpoint_paths(p)[0].with_suffix("")
    from .models import list_models

    if s in list_models():
        raise ModelError(f"{s!r} is an untrained architecture; pass a checkpoint from `mer train` "
                         f"or a bundled model ({', '.join(bundled_models())})")
    raise ModelError(f"model {s!r} not found: use a bundled model ({', '.join(bundled_models())}) or a "
                     ".safetensors checkpoint path")


def runtime_paths(stem: str | os.PathLike) -> tuple[Path, Path]:
    """The ONNX graphs ``STEM.embed.onnx`` and ``STEM.head.onnx`` of a checkpoint stem."""
    stem = Path(stem)
    return stem.parent / f"{stem.name}.embed.onnx", stem.parent / f"{stem.name}.head.onnx"


def weights_digest(stem: str | os.PathLike) -> str:
    """SHA-1 of a checkpoint's ``.safetensors`` (recorded in its ONNX graphs)."""
    return hashlib.sha1(checkpoint_paths(stem)[0].read_bytes()).hexdigest()


class TorchBackend:
    """Any checkpoint, on any device, through PyTorch."""

    kind = "torch"

    def __init__(self, stem: Path, device: str = "cpu", threads: int = 0) -> None:
        import torch

        from .checkpoint import load_checkpoint

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = torch.device(device)
        self.model, self.meta = load_checkpoint(stem)  # in eval mode
        self.model.to(self.device)
        self.local = hasattr(self.model, "embed") and hasattr(self.model, "head")
        self.tag_names: list[str] = list(getattr(self.model, "tag_names", []))

    def _numpy(self, t: Any) -> np.ndarray:
        return t[0].float().cpu().numpy()

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The model's outputs for features ``(1, C, F, T)``, batch dimension dropped."""
        with self.torch.inference_mode():
            out = self.model(self.torch.from_numpy(x).to(self.device))
        return {k: self._numpy(v) for k, v in out.items()}

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-step embeddings ``(n, D)`` and tag probabilities ``(n, K)`` (or None)."""
        with self.torch.inference_mode():
            x_t = self.torch.from_numpy(x).to(self.device)
            if self.tag_names:
                seq, tags = self.model.embed(x_t, return_tags=True)
                return self._numpy(seq), self._numpy(tags)
            return self._numpy(self.model.embed(x_t)), None

    def head(self, seq: np.ndarray) -> dict[str, np.ndarray]:
        """Static ``(2,)`` and dynamic ``(n, 2)`` outputs from embeddings ``(n, D)``."""
        with self.torch.inference_mode():
            out = self.model.head(self.torch.from_numpy(seq)[None].to(self.device))
        return {k: self._numpy(v) for k, v in out.items()}


class OnnxBackend:
    """A checkpoint's two ONNX graphs (see the module docstring) through onnxruntime, CPU only.

    Only per-step-embedding models have them (``local``), so there is no ``forward``: the
    predictor always goes through :meth:`embed` and :meth:`head`."""

    kind = "onnx"
    local = True

    def __init__(self, stem: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        embed_path, head_path = runtime_paths(stem)
        try:
            self.embed_session = ort.InferenceSession(str(embed_path), opts, providers=["CPUExecutionProvider"])
            self.head_session = ort.InferenceSession(str(head_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own exception types)
            raise ModelError(f"{embed_path}: unreadable ONNX graph ({str(exc).splitlines()[0]}); "
                             "rerun `mer export --runtime` or pass --backend torch") from None
        self.meta = read_meta(stem)
        self.custom = self.embed_session.get_modelmeta().custom_metadata_map
        self.tag_names: list[str] = json.loads(self.custom.get("tag_names", "[]"))

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        outs = self.embed_session.run(None, {"features": np.ascontiguousarray(x, dtype=np.float32)})
        return outs[0][0], (outs[1][0] if len(outs) > 1 else None)

    def head(self, seq: np.ndarray) -> dict[str, np.ndarray]:
        static, dynamic = self.head_session.run(None, {"sequence": np.ascontiguousarray(seq[None], dtype=np.float32)})
        return {"static": static[0], "dynamic": dynamic[0]}


def onnx_status(stem: Path) -> str | None:
    """None when the checkpoint's ONNX graphs can be used, else why not (one line)."""
    embed_path, head_path = runtime_paths(stem)
    if not (embed_path.exists() and head_path.exists()):
        return f"{stem}: no ONNX graphs beside the checkpoint (write them with `mer export --runtime --model {stem}`)"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed (pip install onnxruntime)"
    return None


def open_backend(spec: str | os.PathLike, device: str = "cpu", threads: int = 0, backend: str = "auto"):  # noqa: ANN201
    """The engine that will run ``spec`` (see the module docstring for how ``auto`` chooses)."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "onnx" and device != "cpu":
        raise ModelError("the ONNX backend runs on the CPU only; use --backend torch for other devices")
    stem = locate_checkpoint(spec)
    if backend == "torch" or device != "cpu":
        return TorchBackend(stem, device, threads)
    why = onnx_status(stem)
    if why is None:
        onnx_backend = OnnxBackend(stem, threads)
        if onnx_backend.custom.get("weights_sha1") == weights_digest(stem):
            return onnx_backend
        why = f"{stem}: its ONNX graphs were exported from other weights; rerun `mer export --runtime --model {stem}`"
        if backend == "auto":
            warnings.warn(f"{why} (using PyTorch meanwhile)", MERWarning, stacklevel=2)
    if backend == "onnx":
        raise ModelError(why)
    return TorchBackend(stem, device, threads)
