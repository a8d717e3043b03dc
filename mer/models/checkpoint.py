"""Self-describing checkpoints: ``NAME.safetensors`` (weights) + ``NAME.json`` (everything else).

The JSON holds the model name and arguments, the feature config, the label scale, and
whatever the caller adds (training data, split, metrics); software versions are added
here. ``load_checkpoint`` needs nothing but the two files (resolved once into a
:class:`mer.bundle.Bundle`, whose typed :class:`mer.meta.ModelMeta` it builds from) to rebuild
the model. Both files
are written atomically, JSON last, so a checkpoint whose JSON exists is complete.

Finding and reading a checkpoint without torch (``checkpoint_paths``, ``read_meta``, and the
resolved :class:`mer.bundle.Bundle`) lives in :mod:`mer.bundle`, which the torch-free ONNX path of
``mer predict`` uses.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import MERModel

from .._version import __version__
from ..errors import ModelError
from ..bundle import Bundle, checkpoint_paths
from ..io import atomic_path, write_json_atomic
from ..meta import FORMAT, ModelMeta


def save_checkpoint(model: MERModel, path: str | os.PathLike, **meta: Any) -> Path:
    """Write ``path``.safetensors and ``path``.json; return the weights path."""
    import torch
    from safetensors.torch import save_file

    weights, info = checkpoint_paths(path)
    if not hasattr(model, "spec"):
        raise ModelError("only models built with mer.models.create_model can be saved (they carry their spec)")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
    doc = ModelMeta.from_dict({
        **meta, "model": model.spec["name"], "model_args": model.spec["args"], "feature": model.spec["feature"],
        "format": FORMAT, "capabilities": model.capabilities.to_dict(),
        "versions": {"mer": __version__, "torch": torch.__version__, "python": platform.python_version()}})
    write_json_atomic(info, doc.to_dict())
    return weights


def load_checkpoint(source: "str | os.PathLike | Bundle", map_location: str = "cpu",
                    trust_remote_code: bool = False) -> tuple[MERModel, ModelMeta]:
    """Rebuild a checkpoint's model; return (model in eval mode, its typed metadata).

    Parameters
    ----------
    source : str, os.PathLike or Bundle
        A resolved :class:`mer.bundle.Bundle` (its metadata is used as read once), or a
        checkpoint (either file or the common stem), a run folder or a bundled name, which is
        resolved here (the user's ``trust_remote_code`` grant goes with it).
    map_location : str
        Device the weights are loaded onto.
    trust_remote_code : bool
        For a name: the user's ``--trust-remote-code``, to run code an ``hf:`` backbone's folder
        ships. What the checkpoint's JSON records about it is ignored: a downloaded run cannot
        switch remote code on by itself. A Bundle carries its own grant.

    Returns
    -------
    (MERModel, ModelMeta)
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..hf_hub import is_hf, remember
    from .registry import create_model

    bundle = source if isinstance(source, Bundle) else Bundle.resolve(source, trust_remote_code)
    meta, weights = bundle.meta, bundle.weights
    remember(bundle.encoder)  # an hf: backbone's folder was hashed where its name entered: not again here
    try:
        args = {k: v for k, v in meta.model_args.items() if k != "trust_remote_code"}
        if bundle.trust_remote_code and is_hf(meta.model):
            args["trust_remote_code"] = True
        model = create_model(meta.model, feature=meta.feature, **args)
        state = load_file(str(weights), device=map_location)
        model.load_state_dict(state)
        import torch

        bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    except (SafetensorError, RuntimeError, OSError, ValueError) as exc:  # unreadable file, missing/odd keys
        raise ModelError(f"{weights}: not a valid mer checkpoint ({str(exc).splitlines()[0]})") from None
    if bad:
        raise ModelError(f"{weights}: {len(bad)} weight tensor(s) hold NaN or inf (e.g. {bad[0]}): training diverged "
                         "or the file is damaged; retrain (lower --lr) or use another checkpoint")
    return model.eval(), meta
