"""mer: music emotion recognition (valence/arousal from audio).

Public API (all values on the canonical scale: valence and arousal in [-1, 1], 0 neutral;
arrays hold (valence, arousal) in that order):

- ``mer.predict(path_or_waveform, model="default", sr=None, offset=, duration=, segments=,
  embeddings=)`` -> :class:`mer.Prediction` (valence, arousal, quadrant and its probabilities,
  2 Hz curve, tags, ``to_dict()``); ``mer.Predictor(model)`` holds a model for many files
  (``predict_many(paths, workers=)``); ``mer.Inference`` is the one sliding-window loop
- ``mer.audio.load(path, sr=None, mono=True, offset=0.0, duration=None)`` -> (y, sr)
- ``mer.features.FeatureConfig`` / ``spectrogram``, ``mer.cache.FeatureCache`` (``mer.models.frontend.FrontEnd``: the torch twin)
- ``mer.scales.quadrant(valence, arousal)``, ``to_canonical``, ``from_canonical``
- ``mer.metrics``: rmse, pearson, r2, ccc, per_song, pooled, accuracy, macro_f1
- ``mer.MERError``: the one exception family; ``mer.MERWarning`` for warnings
"""

from ._version import __version__
from .errors import AudioError, ConfigError, DatasetError, MERError, MERWarning, ModelError

__all__ = ["AudioError", "ConfigError", "DatasetError", "MERError", "MERWarning", "ModelError", "Prediction",
           "Predictor", "__version__", "predict"]


def predict(source, model="default", sr=None, **options):  # noqa: ANN001, ANN003, ANN201  (see mer.infer.predict)
    """Valence, arousal, quadrant (+ probabilities), mood words and 2 Hz curve of an audio
    file or a waveform.

    The model is loaded once per (model, ``trust_remote_code``) and reused by later calls.
    Imported on first use, so ``import mer`` stays light. Same as
    :func:`mer.infer.predictor.predict`; :class:`mer.Predictor` holds a model explicitly and
    predicts many files in worker processes.

    Parameters
    ----------
    source : str, os.PathLike or np.ndarray
        An audio file (anything :func:`mer.audio.load` reads; ``"-"`` is not standard input
        here), or a waveform, float in [-1, 1], shape ``(n,)`` (mono) or ``(channels, n)``,
        at ``sr`` Hz.
    model : str or os.PathLike
        ``"default"`` (the bundled model), ``"fast"``, a checkpoint ``mer train`` wrote, or a
        run folder.
    sr : int, optional
        Sample rate of ``source`` in Hz; required for a waveform, ignored for a file (files are
        resampled to the model's rate, 16 kHz for the default).
    **options
        ``offset`` (float, seconds, default 0) and ``duration`` (float, seconds, default:
        to the end) select a part of the audio; ``segments`` (float, seconds) also gives one
        result per segment of that length; ``embeddings`` (bool) also returns the clip and
        per-step embeddings (models with per-step embeddings, such as the default);
        ``trust_remote_code`` (bool, default False) lets an ``hf:`` backbone run the Python
        code its folder ships; ``progress`` (callable taking the decoded fraction, 0-1).

    Returns
    -------
    mer.Prediction
        ``valence`` and ``arousal`` in [-1, 1] (0 neutral), ``quadrant`` (``"Q1"``..``"Q4"``)
        and its ``probabilities``, ``moods`` ({word: probability 0-1}), ``curve`` ``(n, 2)``
        at 2 Hz with its ``times`` in seconds, and the model's name, version and weights digest.

    Raises
    ------
    mer.AudioError
        The file cannot be read (missing, empty, not audio, truncated mp3, NaN samples, ...).
    mer.ModelError
        The model cannot be found or loaded.
    mer.ConfigError
        A waveform without ``sr``, or embeddings asked of a model without them.

    Examples
    --------
    >>> import mer
    >>> p = mer.predict("song.mp3")  # doctest: +SKIP
    >>> p.valence, p.arousal, p.quadrant, p.confidence  # doctest: +SKIP
    (0.4369, 0.1306, 'Q1', 0.9189)
    >>> y, sr = mer.audio.load("song.mp3")  # doctest: +SKIP
    >>> mer.predict(y, sr=sr, segments=20).segments[0].quadrant  # doctest: +SKIP
    'Q1'
    """
    from .infer.predictor import predict as _predict

    return _predict(source, model, sr=sr, **options)


def __getattr__(name: str):  # noqa: ANN202  (lazy public classes)
    if name in ("Prediction", "Predictor", "Inference"):
        from . import infer

        return getattr(infer, name)
    if name in ("audio", "features", "scales", "metrics", "bundle"):  # light submodules, on first use
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'mer' has no attribute {name!r}")
