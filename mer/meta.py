"""What a checkpoint says about itself, as one typed, versioned object (no torch here).

A checkpoint is ``STEM.safetensors`` (weights) + ``STEM.json``; the JSON is read into a
:class:`ModelMeta` (timm's ``PretrainedCfg`` idea): the model's name and arguments, its
feature config, the label scale, provenance (training data, fold, version) and the model's
:class:`Capabilities`. Every consumer reads attributes, never string keys, and asks the
capabilities, never the model's name.

Versions of the JSON (``format``):

- ``mer-checkpoint/1``: no ``capabilities``. Read by inferring them once, here: in that format
  only musicnn-based models had per-step embeddings, quadrant probabilities came from the
  ``quadrant`` model argument and a backbone was frozen by ``freeze`` (its default: true).
- ``mer-checkpoint/2``: ``capabilities`` written by the model itself (:attr:`mer.models.base.
  MERModel.capabilities`) when it is saved.

Keys this module does not know are kept in :attr:`ModelMeta.extra` and written back by
:meth:`ModelMeta.to_dict`, so a newer mer's checkpoint survives a round trip through an older.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

FORMAT = "mer-checkpoint/2"


@dataclass(frozen=True)
class Capabilities:
    """What a model can do, declared by the model and saved with it.

    ``step_embeddings``: ``embed(x) -> (B, n, D)`` per-step embeddings and ``head(seq)`` (the
    library's per-step search, ``--embeddings``, the ONNX runtime graphs); ``quadrant``: it
    outputs quadrant probabilities; ``frozen_backbone``: training computes the backbone's
    embeddings once and fits only the heads; ``window_seconds``: the audio the backbone sees at
    once (None: any length); ``pooled_head``: ``head(seq)``'s clip outputs depend on the
    sequence only through its mean and population standard deviation over steps, and its
    per-step outputs on each step alone (mer's ``VAHeads`` on per-step embeddings), so the
    head of a long file can run in pieces (:meth:`mer.infer.Inference.stream`); ``sample_rate``:
    the rate the backbone's encoder was trained at, which the front-end decodes to (hf: backbones)."""

    step_embeddings: bool = False
    quadrant: bool = False
    frozen_backbone: bool = False
    window_seconds: float | None = None
    pooled_head: bool = False
    sample_rate: int | None = None  # Hz the backbone itself runs at (hf: encoders), None: the front-end's

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Capabilities":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class Training:
    """What a model was trained on (the checkpoint's ``training`` block): the dataset's name and
    folder, the id space its track ids live in, the dataset's fingerprint (its labels' digest)
    and the ids of every clip it saw (fit and validation). Empty fields: not recorded."""

    dataset: str = ""
    root: str = ""
    id_space: str = ""
    fingerprint: str = ""
    ids: tuple[str, ...] | None = None  # None: not recorded (then a fold and its split may tell)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Training":
        d = d or {}
        ids = d.get("ids")
        return cls(str(d.get("dataset") or ""), str(d.get("root") or ""), str(d.get("id_space") or ""),
                   str(d.get("fingerprint") or ""), tuple(str(i) for i in ids) if ids is not None else None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in (("dataset", self.dataset), ("root", self.root),
                                                 ("id_space", self.id_space), ("fingerprint", self.fingerprint)) if v}
        if self.ids is not None:
            out["ids"] = list(self.ids)
        return out


@dataclass(frozen=True)
class Nested:
    """A nested cross-validation estimate (the ``nested`` block): quadrant macro-F1 with its
    spread over repeats and folds and 95% interval, accuracy, and expected calibration error
    before and after the temperature; other figures a benchmark recorded stay in ``extra``."""

    f1: float
    f1_sd_repeats: float = 0.0
    f1_sd_folds: float = 0.0
    f1_ci95: tuple[float, float] | None = None
    accuracy: float | None = None
    ece: float | None = None
    ece_calibrated: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Nested | None":
        if not d or "f1" not in d:
            return None
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kw: dict[str, Any] = {k: d[k] for k in names if d.get(k) is not None}
        if "f1_ci95" in kw:
            kw["f1_ci95"] = tuple(kw["f1_ci95"])
        return cls(**kw, extra={k: v for k, v in d.items() if k not in names})

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.extra)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "extra" and value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class Backbone:
    """An ``hf:`` model's recorded encoder (``model_args["backbone"]``): its id (folder or
    ``org/name``), the revision it was trained on, its family, the SHA-1 of its files and their names."""

    id: str
    revision: str | None = None
    family: str = ""
    sha1: str = ""
    files: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Any) -> "Backbone | None":
        if not isinstance(d, dict) or not d.get("id"):
            return None
        return cls(str(d["id"]), d.get("revision"), str(d.get("family") or ""), str(d.get("sha1") or ""),
                   tuple(str(f) for f in d.get("files") or ()))


@dataclass
class ModelMeta:
    """The JSON half of a checkpoint (see the module docstring)."""

    model: str
    feature: dict[str, Any]
    model_args: dict[str, Any] = field(default_factory=dict)
    capabilities: Capabilities = field(default_factory=Capabilities)
    format: str = FORMAT
    label_scale: str = "canonical"
    order: list[str] = field(default_factory=lambda: ["valence", "arousal"])
    model_version: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    dataset: str | None = None
    fold: int | None = None
    training: Training = field(default_factory=Training)
    nested: Nested | None = None
    headline: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept

    @property
    def version(self) -> str:
        """The model's version: its own, else the mer version that trained it."""
        return str(self.model_version or self.versions.get("mer", "unknown"))

    @property
    def backbone(self) -> Backbone | None:
        """An ``hf:`` model's recorded encoder (:class:`Backbone`), else None."""
        return Backbone.from_dict(self.model_args.get("backbone"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelMeta":
        """Read any format's JSON (format 1 gets its capabilities inferred, see the module docstring)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", "capabilities"}
        kw = {k: d[k] for k in known if k in d and d[k] is not None}
        caps = d.get("capabilities")
        kw["capabilities"] = Capabilities.from_dict(caps) if isinstance(caps, dict) else _format1_capabilities(d)
        kw["training"] = Training.from_dict(d.get("training"))
        kw["nested"] = Nested.from_dict(d.get("nested"))
        return cls(**kw, extra={k: v for k, v in d.items() if k not in known and k != "capabilities"})

    def to_dict(self) -> dict[str, Any]:
        """The JSON to write: the known fields (None ones left out), the capabilities, the kept keys."""
        out: dict[str, Any] = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name in ("extra", "capabilities"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, (Training, Nested)):
                value = value.to_dict() or None
            if value is not None:
                out[f.name] = value
        out["capabilities"] = self.capabilities.to_dict()
        return out


def _format1_capabilities(d: dict[str, Any]) -> Capabilities:
    """Capabilities of a ``mer-checkpoint/1`` JSON, which did not record them."""
    args = d.get("model_args") or {}
    musicnn = d.get("model") == "musicnn"  # format 1's only model with per-step embeddings
    return Capabilities(step_embeddings=musicnn, quadrant=bool(args.get("quadrant")),
                        frozen_backbone=musicnn and bool(args.get("freeze", True)), pooled_head=musicnn)
