"""Running a trained model on audio: one :class:`Inference` for every consumer.

- :mod:`mer.infer.backends`: the engines (ONNX Runtime without torch, or PyTorch);
- :mod:`mer.infer.inference`: :class:`Inference`, the one sliding-window loop;
- :mod:`mer.infer.predictor`: :class:`Predictor` / :func:`predict` -> :class:`Prediction`;
- :mod:`mer.infer.export`: ONNX export (imports torch; not imported here).

Nothing here imports torch unless a PyTorch engine is opened.
"""

from .backends import BACKENDS, DEVICES, open_backend
from .inference import Inference
from .predictor import DEFAULT_MODEL, Prediction, Predictor, predict

__all__ = ["BACKENDS", "DEFAULT_MODEL", "DEVICES", "Inference", "Prediction", "Predictor", "open_backend", "predict"]
