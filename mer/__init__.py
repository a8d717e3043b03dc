"""mer: music emotion recognition (valence/arousal from audio).

Public API (all values on the canonical scale: valence and arousal in [-1, 1], 0 neutral;
arrays hold (valence, arousal) in that order):

- ``mer.audio.load(path, sr=None, mono=True, offset=0.0, duration=None)`` -> (y, sr)
- ``mer.features.FeatureConfig`` / ``spectrogram`` / ``FeatureCache`` (``mer.models.frontend.FrontEnd``: the torch twin)
- ``mer.scales.quadrant(valence, arousal)``, ``to_canonical``, ``from_canonical``
- ``mer.metrics``: rmse, pearson, r2, ccc, per_song, pooled, accuracy, macro_f1
- ``mer.MERError``: the one exception family; ``mer.MERWarning`` for warnings
"""

from .errors import AudioError, ConfigError, DatasetError, MERError, MERWarning, ModelError

__version__ = "0.1.0"

__all__ = ["AudioError", "ConfigError", "DatasetError", "MERError", "MERWarning", "ModelError", "__version__"]
