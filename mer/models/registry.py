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

from ..hf_hub import HF_PREFIX  # transformers backbones: mer.models.hf
from ..errors import ModelError, check_arguments
from ..features import FeatureConfig

_MODELS: dict[str, Callable[..., Any]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register ``fn`` under its function name; its docstring's first line describes it."""
    if fn.__name__ in _MODELS:
        raise RuntimeError(f"model {fn.__name__!r} registered twice")  # a programming error, not a user's
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """The registered model names, in registration order (``mer models`` lists them with sizes)."""
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
    """Build a model of the zoo by name (timm's ``create_model``).

    Parameters
    ----------
    name : str
        A registered model (:func:`list_models`: ``"cnn"``, ``"crnn"``, ``"crnn_bilstm"``,
        ``"crnn_gru3"``, ``"crnn_cbam"``, ``"mobile_crnn"``, ``"dense"``, ``"musicnn"``, ...), or
        ``"hf:SOURCE"``: a transformers audio encoder in a local folder or the local Hugging Face
        cache (:mod:`mer.models.hf`, imported only then; the ``hub`` extra).
    feature : FeatureConfig, dict or None
        The front-end the model reads (a dict as saved in a checkpoint's JSON); default
        ``FeatureConfig()``: 16 kHz mono, 96-band log-mel at 62.5 frames/s. ``hf:`` encoders
        bring their own.
    **kwargs
        The model's arguments (``--model-arg KEY=VALUE``), checked against its constructor;
        ``None`` values are dropped.

    Returns
    -------
    MERModel
        A ``torch.nn.Module`` mapping features ``(B, C, F, T)`` to ``{"static": (B, 2),
        "dynamic": (B, n, 2), ...}``, (valence, arousal) on the canonical scale, the dynamic
        steps on the 0.5 s grid; ``model.spec`` records the name, arguments and feature config
        so a checkpoint can rebuild it.

    Raises
    ------
    mer.ModelError
        An unknown name (the message lists the choices) or an argument the model does not take.

    Examples
    --------
    >>> model = create_model("mobile_crnn")  # doctest: +SKIP
    >>> out = model(torch.zeros(1, 1, 96, 1875))  # 30 s of log-mel  # doctest: +SKIP
    >>> out["static"].shape, out["dynamic"].shape  # doctest: +SKIP
    (torch.Size([1, 2]), torch.Size([1, 60, 2]))
    """
    if name.startswith(HF_PREFIX):
        from .hf import hub_model

        fn: Callable[..., Any] = functools.partial(hub_model, source=name[len(HF_PREFIX):])
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
