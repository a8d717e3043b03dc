"""The model zoo: one registry, one output contract (see :mod:`mer.models.base`).

Importing this package imports every zoo module, which registers its models (timm's way);
:mod:`mer.models.registry` itself imports none of them, so there is no import cycle.
"""

from ..grid import GRID_SECONDS, n_steps, step_times, time_to_step
from . import crnn, dense, musicnn  # noqa: F401  (importing registers the models)
from .base import MERModel
from .registry import create_model, describe, list_models, register_model

__all__ = ["GRID_SECONDS", "MERModel", "create_model", "describe", "list_models", "n_steps", "register_model",
           "step_times", "time_to_step"]
