"""Point it at music, get emotion out: ``mer.predict(path)`` and the engine of ``mer predict``.

A :class:`Predictor` holds one model (the bundled default, another bundled name, or any
checkpoint ``mer train`` wrote) in an engine from :mod:`mer.backends` (ONNX Runtime, which
needs no torch, or PyTorch). For each file it decodes and computes features block by
block (:func:`mer.features.stream_features`), runs the model on 32 s chunks with 4 s of
context on each side (so an hour of audio never sits in the network at once; models with
per-step embeddings, like musicnn, give exactly the one-pass result, others average their
chunks' static outputs; audio shorter than 0.5 s is padded with silence to 0.5 s), and returns a
:class:`Prediction`: static valence and arousal on the canonical [-1, 1] scale, the quadrant
that follows from them (0 counts as positive, as in :func:`mer.scales.quadrant`), and the
2 Hz curve. Values are rounded to 4 decimals *before* the quadrant is taken, so the printed
numbers and the quadrant never disagree.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backends import PRETRAINED, bundled_models, locate_checkpoint, open_backend  # noqa: F401  (public here)
from .features import FeatureConfig, compress, stream_features
from .grid import GRID_SECONDS, min_frames, n_steps, step_times
from .scales import from_canonical, quadrant

DEFAULT_MODEL = "default"
CHUNK_SECONDS, CONTEXT_SECONDS = 32.0, 4.0
DECIMALS = 4


def resolve_model(spec: str | os.PathLike = DEFAULT_MODEL):  # noqa: ANN201
    """(PyTorch model in eval mode, checkpoint meta) for a bundled name, checkpoint or run folder."""
    from .checkpoint import load_checkpoint

    return load_checkpoint(locate_checkpoint(spec))


@dataclass
class Prediction:
    """One file's result. ``curve`` is ``(n, 2)`` (valence, arousal) at ``times`` (s, 2 Hz)."""

    path: str
    duration: float
    valence: float
    arousal: float
    quadrant: str
    quadrant_words: str
    times: np.ndarray
    curve: np.ndarray
    model: str
    tags: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # processing time

    def on_scale(self, scale: str = "canonical") -> dict[str, Any]:
        """JSON-ready dict with values on ``scale`` ("canonical", "1-9", "0-1")."""
        conv = (lambda x: x) if scale == "canonical" else (lambda x: from_canonical(x, scale))
        curve = np.round(conv(self.curve), DECIMALS) if len(self.curve) else self.curve
        return {"path": self.path, "duration": round(self.duration, 3),
                "valence": round(float(conv(self.valence)), DECIMALS),
                "arousal": round(float(conv(self.arousal)), DECIMALS), "scale": scale,
                "quadrant": self.quadrant, "quadrant_words": self.quadrant_words,
                "times": [float(t) for t in self.times], "valence_curve": curve[:, 0].tolist() if len(curve) else [],
                "arousal_curve": curve[:, 1].tolist() if len(curve) else [], "model": self.model,
                **({"tags": self.tags} if self.tags else {})}


def _clean(x: float) -> float:
    v = round(float(x), DECIMALS)
    return 0.0 if v == 0 else v  # no "-0.0"


class Predictor:
    """Loads a model once; ``predictor(path)`` -> :class:`Prediction`.

    ``backend``: "auto" (ONNX Runtime when the checkpoint has its ONNX graphs, else
    PyTorch), "onnx" or "torch"; see :mod:`mer.backends`. ``threads`` = 0 lets the engine
    choose."""

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, device: str = "cpu", backend: str = "auto",
                 threads: int = 0) -> None:
        self.engine = open_backend(model, device, threads, backend)
        self.meta = self.engine.meta
        self.name = str(model)
        self.feature = FeatureConfig.from_dict(self.meta["feature"])

    def features(self, path: str | os.PathLike) -> np.ndarray:
        return stream_features(path, self.feature)

    def __call__(self, path: str | os.PathLike) -> Prediction:
        t0 = time.perf_counter()
        x = self.features(path)
        out = self.run(x)
        return self.finish(str(path), x.shape[-1], out, time.perf_counter() - t0)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Model outputs for features ``(C, F, T)``, chunked with context (see module docstring)."""
        fps = self.feature.frames_per_second
        step = fps * GRID_SECONDS
        if x.shape[-1] < min_frames(self.feature):  # under one step (0.5 s): pad with silence's features
            silence = compress(np.zeros(1, np.float32), self.feature.compression)[0]
            x = np.pad(x, ((0, 0), (0, 0), (0, min_frames(self.feature) - x.shape[-1])), constant_values=silence)
        total_frames = x.shape[-1]
        n_total = n_steps(total_frames, self.feature)
        chunk, ctx = int(round(CHUNK_SECONDS * fps)), int(round(CONTEXT_SECONDS * fps))
        local = self.engine.local
        if total_frames <= chunk + 2 * ctx:  # one pass
            if not local:
                return self.engine.forward(x[None])
            bounds = [(0, total_frames)]
        else:
            bounds = [(c0, min(total_frames, c0 + chunk)) for c0 in range(0, total_frames, chunk)]
        statics, weights, curves, tags = [], [], [], []
        for c0, c1 in bounds:
            s0, s1 = max(0, c0 - ctx), min(total_frames, c1 + ctx)
            first = int(round((c0 - s0) / step))
            n_keep = int(round((c1 - c0) / step)) if c1 < total_frames else n_total - int(round(c0 / step))
            seg = np.ascontiguousarray(x[None, ..., s0:s1])
            if local:  # per-step embeddings: cut to the chunk, the head runs once on the whole file
                seq, tag = self.engine.embed(seg)
                curves.append(seq[first:first + n_keep])
                if tag is not None:
                    tags.append(tag[first:first + n_keep])
                continue
            o = self.engine.forward(seg)
            curves.append(o["dynamic"][first:first + n_keep])
            statics.append(o["static"])
            weights.append(c1 - c0)
        if local:
            out = self.engine.head(np.concatenate(curves)[:n_total])
            if tags:
                out["tags"] = np.concatenate(tags).mean(axis=0)
            return out
        # other models: a duration-weighted mean of the chunks' static outputs
        w = np.array(weights, dtype=np.float64) / sum(weights)
        curve = np.concatenate(curves)[:n_total]
        if len(curve) < n_total:  # rounding at chunk edges: repeat the last step
            curve = np.concatenate([curve, np.repeat(curve[-1:], n_total - len(curve), 0)])
        return {"static": (np.stack(statics) * w[:, None]).sum(0), "dynamic": curve}

    def finish(self, path: str, n_frames: int, out: dict[str, np.ndarray], seconds: float) -> Prediction:
        v, a = _clean(out["static"][0]), _clean(out["static"][1])
        q = quadrant(v, a)
        curve = np.round(np.asarray(out["dynamic"], dtype=np.float64), DECIMALS)
        tags = {}
        names = self.engine.tag_names
        if "tags" in out and names:
            top = np.argsort(-out["tags"])[:5]
            tags = {names[i]: round(float(out["tags"][i]), 3) for i in top}
        return Prediction(path, n_frames / self.feature.frames_per_second, v, a, q.name, q.words,
                          step_times(len(curve)), curve, self.meta.get("name", self.name), tags, seconds)


_DEFAULT: dict[str, Predictor] = {}


def predict(path: str | os.PathLike, model: str | os.PathLike = DEFAULT_MODEL) -> Prediction:
    """Valence, arousal, quadrant and 2 Hz curve of one audio file (model loaded once, reused)."""
    key = str(model)
    if key not in _DEFAULT:
        _DEFAULT[key] = Predictor(model)
    return _DEFAULT[key](path)
