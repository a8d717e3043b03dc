"""Model registry (timm style): ``@register_model`` fills a dict, ``create_model`` builds by name.

Every registered function takes ``feature`` (a :class:`FeatureConfig`) plus keyword
arguments and returns an :class:`~mer.models.base.MERModel`. ``create_model`` drops
``None`` arguments, records the name and arguments on the model (``model.spec``) so that a
checkpoint can rebuild it, and names the valid choices when a name is wrong.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import ModelError
from ..features import FeatureConfig

_MODELS: dict[str, Callable[..., Any]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register ``fn`` under its function name; its docstring's first line describes it."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    _load_builtin()
    return list(_MODELS)


def describe(name: str) -> str:
    _load_builtin()
    return (_MODELS[name].__doc__ or "").strip().splitlines()[0]


def create_model(name: str, feature: FeatureConfig | dict | None = None, **kwargs: Any):
    """Build model ``name`` for ``feature`` (default: the log-mel front-end)."""
    _load_builtin()
    if name not in _MODELS:
        raise ModelError(f"unknown model {name!r}; choose one of {', '.join(_MODELS)}")
    if isinstance(feature, dict):
        feature = FeatureConfig.from_dict(feature)
    feature = feature or FeatureConfig()
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        model = _MODELS[name](feature=feature, **kwargs)
    except TypeError as exc:
        raise ModelError(f"model {name!r}: bad argument ({exc})") from None
    model.spec = {"name": name, "args": kwargs, "feature": feature.to_dict()}
    return model


def _load_builtin() -> None:
    from . import crnn, dense, musicnn  # noqa: F401  (importing registers the models)
