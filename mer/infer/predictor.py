"""Point it at music, get emotion out: ``mer.predict(path)`` and the engine of ``mer predict``.

A :class:`Predictor` holds one model (the bundled default, another bundled name, or any
checkpoint ``mer train`` wrote, resolved once into a :class:`mer.hub.Bundle`) in an engine
from :mod:`mer.infer.backends` (ONNX Runtime, which needs no torch, or PyTorch). For each
file it decodes and computes features block by block, runs the model through the one
sliding-window :class:`mer.infer.Inference` that ``mer evaluate`` and training also use,
and returns a :class:`Prediction`: static valence and arousal on the canonical [-1, 1] scale, the quadrant
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

from ..grid import step_times
from ..hub import Bundle
from ..scales import from_canonical, quadrant
from .inference import Inference

DEFAULT_MODEL = "default"
DECIMALS = 4


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
    model_version: str = ""
    weights_sha1: str = ""
    probabilities: dict[str, float] = field(default_factory=dict)  # Q1..Q4, for quadrant models

    @property
    def confidence(self) -> float | None:
        """Probability of the reported quadrant (None for models without a quadrant head)."""
        return self.probabilities.get(self.quadrant) if self.probabilities else None

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
                "model_version": self.model_version, "weights_sha1": self.weights_sha1,
                **({f"p_{k.lower()}": v for k, v in self.probabilities.items()} if self.probabilities else {}),
                **({"confidence": self.confidence} if self.probabilities else {}),
                **({"tags": self.tags} if self.tags else {})}


def _clean(x: float) -> float:
    v = round(float(x), DECIMALS)
    return 0.0 if v == 0 else v  # no "-0.0"


class Predictor:
    """Loads a model once; ``predictor(path)`` -> :class:`Prediction`.

    ``model``: a bundled name, checkpoint, run folder or :class:`mer.hub.Bundle`.
    ``backend``: "auto" (ONNX Runtime when the checkpoint has its ONNX graphs, else
    PyTorch), "onnx" or "torch"; see :mod:`mer.infer.backends`. ``threads`` = 0 lets the
    engine choose. The work itself is :class:`mer.infer.Inference`'s."""

    def __init__(self, model: "str | os.PathLike | Bundle" = DEFAULT_MODEL, device: str = "auto",
                 backend: str = "auto", threads: int = 0) -> None:
        self.inference = Inference.open(model, device, backend, threads)
        self.bundle: Bundle = self.inference.bundle
        self.engine = self.inference.engine
        self.meta = self.bundle.meta
        self.name = self.bundle.name
        self.feature = self.bundle.feature

    def features(self, path: str | os.PathLike) -> np.ndarray:
        return self.inference.features(path)

    def __call__(self, path: str | os.PathLike) -> Prediction:
        t0 = time.perf_counter()
        x = self.features(path)
        out = self.inference(x)
        return self.finish(str(path), x.shape[-1], out, time.perf_counter() - t0)

    def finish(self, path: str, n_frames: int, out: dict[str, np.ndarray], seconds: float) -> Prediction:
        v, a = _clean(out["static"][0]), _clean(out["static"][1])
        q = quadrant(v, a)
        curve = np.round(np.asarray(out["dynamic"], dtype=np.float64), DECIMALS)
        tags = {}
        names = self.engine.tag_names
        if "tags" in out and names:
            top = np.argsort(-out["tags"])[:5]
            tags = {names[i]: round(float(out["tags"][i]), 3) for i in top}
        probs = {}
        if "quadrant_probs" in out:
            probs = {f"Q{i + 1}": round(float(p), DECIMALS) for i, p in enumerate(out["quadrant_probs"])}
        return Prediction(path, n_frames / self.feature.frames_per_second, v, a, q.name, q.words,
                          step_times(len(curve)), curve, self.name, tags, seconds,
                          self.bundle.version, self.bundle.digest, probs)


_DEFAULT: dict[str, Predictor] = {}


def predict(path: str | os.PathLike, model: str | os.PathLike = DEFAULT_MODEL) -> Prediction:
    """Valence, arousal, quadrant and 2 Hz curve of one audio file (model loaded once, reused)."""
    key = str(model)
    if key not in _DEFAULT:
        _DEFAULT[key] = Predictor(model)
    return _DEFAULT[key](path)
