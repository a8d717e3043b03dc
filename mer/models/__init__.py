"""The model zoo: one registry, one output contract (see :mod:`mer.models.base`).

Importing this package imports each of its modules, and a zoo module's ``@register_model``
functions register its models (timm's way): a new architecture is one file here plus its test.
:mod:`mer.models.registry` itself imports none of them, so there is no import cycle.
"""

import importlib
import pkgutil

from ..grid import GRID_SECONDS, n_steps, step_times, time_to_step
from .base import MERModel
from .registry import create_model, describe, list_models, register_model

for _module in pkgutil.iter_modules(__path__):  # importing a zoo module registers its models
    if _module.name != "hf":  # hf: encoders are built through their prefix (registry), importing transformers' glue lazily
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["GRID_SECONDS", "MERModel", "create_model", "describe", "list_models", "n_steps", "register_model",
           "step_times", "time_to_step"]
