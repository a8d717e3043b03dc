"""mer: music emotion recognition (valence/arousal from audio).

Public API (all values on the canonical scale: valence and arousal in [-1, 1], 0 neutral;
arrays hold (valence, arousal) in that order):

- ``mer.predict(path_or_waveform, model="default", sr=None, offset=, duration=, segments=,
  embeddings=)`` -> :class:`mer.Prediction` (valence, arousal, quadrant and its probabilities,
  2 Hz curve, tags, ``to_dict()``); ``mer.Predictor(model)`` holds a model for many files
  (``predict_many(paths, workers=)``); ``mer.Inference`` is the one sliding-window loop
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


def predict(source, model="default", sr=None, **options):  # noqa: ANN001, ANN003, ANN201  (see mer.infer.predict)
    """Valence, arousal, quadrant (+ probabilities) and 2 Hz curve of an audio file or a
    waveform array (give ``sr``): a :class:`mer.Prediction`.

    ``model``: "default", "fast", or a checkpoint ``mer train`` wrote; loaded once and reused.
    ``options``: ``offset`` / ``duration`` (seconds), ``segments`` (seconds per segment),
    ``embeddings`` (bool). Imported on first use, so ``import mer`` stays light."""
    from .infer.predictor import predict as _predict

    return _predict(source, model, sr=sr, **options)


def __getattr__(name: str):  # noqa: ANN202  (lazy public classes)
    if name in ("Prediction", "Predictor", "Inference"):
        from . import infer

        return getattr(infer, name)
    if name in ("audio", "features", "scales", "metrics", "hub"):  # light submodules, on first use
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'mer' has no attribute {name!r}")
