"""Model registry (timm style): ``@register_model`` fills a dict, ``create_model`` builds by name.

Every registered function takes ``feature`` (a :class:`FeatureConfig`) plus keyword
arguments and returns an :class:`~mer.models.base.MERModel`. ``create_model`` drops
``None`` arguments, checks the argument names (a variant written ``def crnn(feature, **kw)
-> CRNN`` is checked against ``CRNN``'s constructor), records the name and arguments on the
model (``model.spec``) so that a checkpoint can rebuild it, and names the valid choices when
a name is wrong. This module imports no zoo module: ``mer.models`` imports them, and
importing a zoo module registers its models.
"""

from __future__ import annotations

import functools
import typing
from typing import Any, Callable

from ..errors import ModelError, check_arguments
from ..features import FeatureConfig

HUB_PREFIX = "hf:"  # transformers backbones: mer.models.hf
_MODELS: dict[str, Callable[..., Any]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register ``fn`` under its function name; its docstring's first line describes it."""
    if fn.__name__ in _MODELS:
        raise RuntimeError(f"model {fn.__name__!r} registered twice")  # a programming error, not a user's
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return list(_MODELS)


def describe(name: str) -> str:
    return (_MODELS[name].__doc__ or "").strip().splitlines()[0]


def _builder(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The constructor whose arguments ``fn`` accepts: itself, or the class it returns when it takes ``**kw``."""
    fn = getattr(fn, "func", fn)  # a partial (an hf: backbone): its function's return type
    ret = typing.get_type_hints(fn).get("return")
    # getattr: mypy refuses ``cls.__init__`` on a class object (unsound for subclasses), which is what is meant here
    return getattr(ret, "__init__") if isinstance(ret, type) else fn


def create_model(name: str, feature: FeatureConfig | dict | None = None, **kwargs: Any):  # noqa: ANN201
    """Build model ``name`` for ``feature`` (default: the log-mel front-end). ``hf:SOURCE`` names a
    transformers audio encoder (:mod:`mer.models.hf`, imported only then)."""
    if name.startswith(HUB_PREFIX):
        from .hf import hub_model

        fn: Callable[..., Any] = functools.partial(hub_model, source=name[len(HUB_PREFIX):])
    elif name not in _MODELS:
        raise ModelError(f"unknown model {name!r}; choose one of {', '.join(_MODELS)} (or hf:PATH / hf:org/name)")
    else:
        fn = _MODELS[name]
    if isinstance(feature, dict):
        feature = FeatureConfig.from_dict(feature)
    feature = feature or FeatureConfig()
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    check_arguments(fn, {"feature": feature, **kwargs}, f"model {name}", ModelError, "--model-arg", ("feature",))
    check_arguments(_builder(fn), {"feature": feature, **kwargs}, f"model {name}", ModelError, "--model-arg", ("feature",))
    model = fn(feature=feature, **kwargs)
    # a model with its own front-end (hf: backbones) sets model.feature; spec_args: what it records about itself
    model.spec = {"name": name, "args": {**kwargs, **getattr(model, "spec_args", {})},
                  "feature": model.feature.to_dict()}
    return model
