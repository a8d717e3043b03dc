"""A model name resolved once: :class:`Bundle` (no torch here).

A model is named by a bundled name (``mer/pretrained/NAME.json``), a checkpoint (either
file, or the common stem) or a ``mer train`` run folder (its ``fold0/best``).
:meth:`Bundle.resolve` turns that name into one value that carries everything the
consumers need: the checkpoint stem, its JSON half (model, arguments, feature config,
training data), the SHA-1 of its weights, its ONNX graphs when it has them, and its model
card. ``predict``, ``evaluate``, ``export``, ``serve`` and ``index`` all take a Bundle (or a
name they resolve through here), so a name is looked up in exactly one place, and every
output can record the model's name, version and digest (:meth:`Bundle.provenance`).

A checkpoint is ``STEM.safetensors`` (weights) + ``STEM.json`` (the rest; see
:mod:`mer.models.checkpoint`, which writes and loads them with torch).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import ModelError
from .hf_hub import HF_PREFIX, Encoder, is_hf, no_run_error
from .meta import Backbone, ModelMeta, Training

PRETRAINED = Path(__file__).parent / "pretrained"


def bundled_models() -> list[str]:
    """Names of the checkpoints shipped inside the package (``mer/pretrained/NAME.json``)."""
    return sorted(p.stem for p in PRETRAINED.glob("*.json"))


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, JSON) of a checkpoint given either file or the common stem."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_suffix(".safetensors"), p.with_suffix(".json")


def what_is() -> str:
    """What a mer model is, for errors about files that are not one."""
    return ("a mer model is a run folder of `mer train` or the .safetensors it writes (with its .json beside it), or "
            f"a bundled name ({', '.join(bundled_models())})")


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON half of a checkpoint, without building the model."""
    weights, info = checkpoint_paths(path)
    if weights.is_file() and not info.is_file():
        raise ModelError(f"{weights}: not a mer checkpoint: {info.name}, its metadata, is not beside it; {what_is()}")
    if not info.is_file():
        raise ModelError(f"{weights.with_suffix('')}: checkpoint not found (need both .safetensors and .json)")
    try:
        meta = json.loads(info.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{info}: not a valid mer checkpoint ({exc}); delete it or retrain") from None
    if not isinstance(meta, dict) or "model" not in meta or "feature" not in meta:
        raise ModelError(f"{info}: not a mer checkpoint (no model or feature entry); delete it or retrain")
    if not weights.is_file():
        raise ModelError(f"{info}: its weights {weights.name} are missing beside it; copy them back or retrain")
    return meta


def locate(spec: str | os.PathLike) -> tuple[str, Path]:
    """(display name, checkpoint stem) of a bundled name, checkpoint file or stem, or run folder;
    an ``hf:`` name (an encoder without heads) is a ModelError saying how to train a run on it."""
    s = str(spec)
    if s in bundled_models():
        return s, PRETRAINED / s
    if s.startswith(HF_PREFIX):
        raise no_run_error(s)
    p = Path(s)
    if p.is_dir():
        for cand in (p / "best", p / "fold0" / "best"):
            if cand.with_suffix(".json").is_file():
                return s, cand
        raise ModelError(f"{p}: no checkpoint in this folder (expected best.json or fold0/best.json)")
    weights, info = checkpoint_paths(p)
    if p.is_file() and p.suffix not in (".safetensors", ".json") and not (weights.is_file() and info.is_file()):
        raise ModelError(f"{p}: not a mer checkpoint; {what_is()}")
    if p.exists() or info.exists() or weights.exists():
        return s, weights.with_suffix("")
    raise ModelError(f"model {s!r} not found: use a bundled model ({', '.join(bundled_models())}), a "
                     ".safetensors checkpoint or a run folder; the architectures `mer models` lists must be "
                     "trained first (`mer train --model NAME`)")


@dataclass(frozen=True)
class Bundle:
    """One resolved model: where it lives and what it is. Build with :meth:`resolve`."""

    name: str  # the bundled name, or the path as the user gave it
    stem: Path  # STEM.safetensors + STEM.json
    meta: ModelMeta = field(repr=False, compare=False)  # the checkpoint's JSON, typed (mer.meta)
    #: the user's grant (``--trust-remote-code``) to run code an ``hf:`` backbone's folder ships; a
    #: run's JSON may record that it needs it, but only this grant (never the JSON) switches it on
    trust_remote_code: bool = field(default=False, compare=False)

    @classmethod
    def resolve(cls, spec: "str | os.PathLike | Bundle", trust_remote_code: bool = False) -> "Bundle":
        """The bundle ``spec`` names (a bundled name, a checkpoint, a run folder, or a bundle).

        ``trust_remote_code``: the user's own grant to run Python code that an ``hf:`` backbone's
        folder ships (MERT); without it such a model is refused with the folder named, whatever
        the run's JSON says."""
        if isinstance(spec, Bundle):
            return replace(spec, trust_remote_code=True) if trust_remote_code else spec
        name, stem = locate(spec)
        return cls(name, stem, ModelMeta.from_dict(read_meta(stem)), trust_remote_code)

    # -- files ---------------------------------------------------------------------------
    @property
    def weights(self) -> Path:
        return checkpoint_paths(self.stem)[0]

    @property
    def graphs(self) -> tuple[Path, Path] | None:
        """The ONNX graphs ``STEM.embed.onnx`` and ``STEM.head.onnx``, when both exist."""
        embed, head = graph_paths(self.stem)
        return (embed, head) if embed.is_file() and head.is_file() else None

    @property
    def card(self) -> Path | None:
        p = self.stem.with_suffix(".md")
        return p if p.is_file() else None

    # -- identity ------------------------------------------------------------------------
    @cached_property
    def digest(self) -> str:
        """SHA-1 of the weights file (recorded in the ONNX graphs and in every output)."""
        try:
            return hashlib.sha1(self.weights.read_bytes()).hexdigest()
        except OSError as exc:
            raise ModelError(f"{self.weights}: cannot read the weights ({exc.strerror})") from None

    @property
    def version(self) -> str:
        """The model's own version (``model_version`` in its JSON), else the mer version that wrote it."""
        return self.meta.version

    @property
    def architecture(self) -> str:
        return self.meta.model

    @property
    def feature(self):  # noqa: ANN201  (mer.features.FeatureConfig; imported lazily, it pulls numpy)
        from .features import FeatureConfig

        return FeatureConfig.from_dict(self.meta.feature)

    @property
    def backbone(self) -> Backbone | None:
        """An ``hf:`` backbone's recorded identity (id, revision, family, sha1, files; its encoder
        is loaded from ``id`` again), else None."""
        return self.meta.backbone

    @cached_property
    def encoder(self) -> Encoder | None:
        """An ``hf:`` model's encoder (its trained revision), found in the local cache and hashed
        once, on first use, by the process that resolved the name; it travels with the bundle to
        ``predict -j N``'s workers, which then do not hash it again. None for other models (and
        never needed by the ONNX engine, which runs exported graphs)."""
        return _encoder_of(self.meta)

    @property
    def mood_words(self) -> list[str]:
        """The vocabulary of the model's mood-word head (AllMusic words), in its output order;
        empty for models without one."""
        return [str(w) for w in self.meta.model_args.get("mood_words") or ()]

    def provenance(self) -> dict[str, str]:
        """What every output records so results can be traced to the exact weights."""
        return {"model": self.name, "model_version": self.version, "weights_sha1": self.digest}

    # -- what it was trained on ------------------------------------------------------------
    @property
    def training(self) -> Training:
        """The dataset, id space, fingerprint and ids of the training clips, as far as recorded."""
        return self.meta.training


def _encoder_of(meta: ModelMeta) -> Encoder | None:
    """The encoder of an ``hf:`` model's recorded backbone (its trained revision), found once."""
    if not is_hf(meta.model):
        return None
    rec = meta.backbone
    source = rec.id if rec is not None else meta.model[len(HF_PREFIX):]
    return Encoder.find(source, (rec.revision if rec is not None else None) or meta.model_args.get("revision"))


def graph_paths(stem: str | os.PathLike) -> tuple[Path, Path]:
    """Where the ONNX graphs of checkpoint ``stem`` live (whether or not they exist)."""
    stem = Path(stem)
    return stem.parent / f"{stem.name}.embed.onnx", stem.parent / f"{stem.name}.head.onnx"
