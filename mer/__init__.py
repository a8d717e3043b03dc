"""mer: music emotion recognition (valence/arousal from audio).

Public API (all values on the canonical scale: valence and arousal in [-1, 1], 0 neutral;
arrays hold (valence, arousal) in that order):

- ``mer.predict(path, model="default")`` -> :class:`mer.Prediction` (valence, arousal, quadrant,
  2 Hz curve, tags); ``mer.Predictor(model)`` to hold a model for many files
- ``mer.audio.load(path, sr=None, mono=True, offset=0.0, duration=None)`` -> (y, sr)
- ``mer.features.FeatureConfig`` / ``spectrogram`` / ``FeatureCache`` (``mer.models.frontend.FrontEnd``: the torch twin)
- ``mer.scales.quadrant(valence, arousal)``, ``to_canonical``, ``from_canonical``
- ``mer.metrics``: rmse, pearson, r2, ccc, per_song, pooled, accuracy, macro_f1
- ``mer.MERError``: the one exception family; ``mer.MERWarning`` for warnings
"""

from ._version import __version__
from .errors import AudioError, ConfigError, DatasetError, MERError, MERWarning, ModelError

__all__ = ["AudioError", "ConfigError", "DatasetError", "MERError", "MERWarning", "ModelError", "Prediction",
           "Predictor", "__version__", "predict"]


def predict(path, model="default"):  # noqa: ANN001, ANN201  (see mer.infer.predict)
    """Valence, arousal, quadrant and 2 Hz curve of one audio file: a :class:`mer.Prediction`.

    ``model``: "default", "fast", or a checkpoint ``mer train`` wrote; loaded once and reused.
    Imported on first use, so ``import mer`` stays light."""
    from .infer.predictor import predict as _predict

    return _predict(path, model)


def __getattr__(name: str):  # noqa: ANN202  (lazy public classes)
    if name in ("Prediction", "Predictor", "Inference"):
        from . import infer

        return getattr(infer, name)
    raise AttributeError(f"module 'mer' has no attribute {name!r}")
