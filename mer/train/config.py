"""Training configuration: dataclass defaults, then a YAML file, then command-line flags.

``TrainConfig.resolve(yaml_path, overrides)`` applies the three layers in that order and
``check()`` validates everything that can be checked before data is read (unknown model,
dataset or key, bad loss or schedule, missing root), so a bad config fails with one line
before any training starts. The resolved config is saved as ``config.yaml`` in the run
folder, and ``--resume`` reads it back from there.

Losses are written as a weighted sum, e.g. ``mse``, ``ccc`` or ``0.5*mse+ccc``. Schedules:
``constant``; ``step:E:F`` multiplies the learning rate by F after every E epochs (the
notebooks' "1e-3 for 3 epochs, then 1e-4" is ``lr: 1e-3, schedule: "step:3:0.1"`` with one
step, written ``step:3:0.1:1``); ``cosine`` anneals to 0 over ``epochs``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..hf_hub import is_hf

from ..infer.backends import DEVICES

LOSSES = ("mae", "mse", "ccc")
OPTIMIZERS = ("sgd", "adam", "adamw")
TASKS = ("static", "dynamic", "both")


def _f(default: Any, help: str, **meta: Any) -> Any:  # noqa: A002
    """A field with its command-line help (``mer train``'s flags are generated from these).

    ``choices``: a tuple, or "datasets"/"models" (checked in :meth:`TrainConfig.check`);
    ``flag``: the flag's name when it is not the field's; ``short``: a short flag."""
    if isinstance(default, dict):
        return field(default_factory=dict, metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved as the run's ``config.yaml``)."""

    dataset: str = _f("", "dataset name (`mer datasets list`)", choices="datasets")
    root: str = _f("", "the dataset's folder")
    dataset_options: dict = _f({}, "loader option, e.g. lexicon=PATH for 4q (repeatable)", flag="dataset-option")
    model: str = _f("mobile_crnn", "model name (`mer models`)", choices="models")
    model_args: dict = _f({}, "model argument, e.g. hidden=64 (repeatable)", flag="model-arg")
    feature: dict = _f({}, "front-end (FeatureConfig) field, e.g. n_mels=48; none = the log-mel default (repeatable)")
    task: str = _f("static", "static, dynamic or both", choices=TASKS)
    quadrant_weight: float = _f(0.0, "pull static targets toward the labelled quadrant's centre (0..1; for 4q)")
    weak_dynamic: bool = _f(True, "task static: also train the 2 Hz output toward the clip's label at every step")
    loss: str = _f("mse", "mae, mse, ccc or a weighted sum like 0.5*mse+ccc")
    optimizer: str = _f("adam", "optimizer", choices=OPTIMIZERS)
    lr: float = _f(1e-3, "learning rate")
    weight_decay: float = _f(0.0, "weight decay")
    schedule: str = _f("constant", "constant, cosine or step:EPOCHS:FACTOR[:TIMES] (notebooks: step:3:0.1:1)")
    batch_size: int = _f(16, "global batch size (split over torchrun processes)")
    epochs: int = _f(30, "maximum epochs per fold")
    patience: int = _f(8, "early-stopping patience in epochs on the validation loss (0 = off)")
    crop_seconds: float = _f(10.0, "training crop length in seconds; evaluation uses whole clips")
    folds: int = _f(5, "artist-grouped k-fold CV (1 = one model on all data)")
    split: str = _f("", "mediaeval2015, mediaeval2013, a release's published split (merge: tvt_70_15_15, "
                        "tvt_40_30_30) or a split JSON written by mer (overrides --folds)")
    val_fraction: float = _f(0.1, "share of each training fold held out (by artist) for early stopping")
    seed: int = _f(0, "seed of the split, the initial weights, crops and batch order")
    device: str = _f("auto", "auto, cpu, cuda or mps", choices=DEVICES)
    workers: int = _f(0, "processes decoding audio for the feature cache (0 = one per core)", short="-j")
    cache_dir: str = _f("", "feature cache folder (default $MER_CACHE_DIR or ~/.cache/mer)")
    tensorboard: bool = _f(False, "also log to RUN_DIR/fold*/tensorboard")
    trust_remote_code: bool = _f(False, "hf: backbones only: run a model whose code lives in its own repository "
                                        "(MERT); only for code you trust")
    finetune: str = _f("", "hf: backbones only: last:N also trains the encoder's top N layers (default: frozen, "
                           "its embeddings computed once)")
    distil: str = _f("", "teacher (default, a checkpoint or a run folder) whose per-step embeddings, tags and heads the "
                         "model learns to reproduce, e.g. --distil default --model student (mer.train.distil); labels "
                         "are not used")
    augment: int = _f(0, "with --distil: augmented copies of every training clip (mixes, spectral tilt, pitch and "
                         "tempo shifts of its log-mel), each labelled once by the teacher")

    def model_kwargs(self) -> dict[str, Any]:
        """``model_args`` plus ``trust_remote_code`` and ``finetune`` when set (only hf: backbones take them)."""
        return {**self.model_args, **({"trust_remote_code": True} if self.trust_remote_code else {}),
                **({"finetune": self.finetune} if self.finetune else {})}

    # ---------------------------------------------------------------- layers
    @classmethod
    def resolve(cls, yaml_path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> "TrainConfig":
        values: dict[str, Any] = {}
        if yaml_path:
            values.update(read_yaml(yaml_path))
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls.from_dict(values, source=str(yaml_path or "flags"))

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> "TrainConfig":
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                near = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(known)}"
                raise ConfigError(f"{source}: unknown config key {key!r}{hint}")
        out = {}
        for key, value in d.items():
            f = known[key]  # every field has a default or a default_factory (never both)
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            out[key] = _coerce(key, value, default, source)
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        from ..io import write_text_atomic

        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    # ---------------------------------------------------------------- checks
    def check(self) -> "TrainConfig":
        """Validate what can be checked without reading data; raise ConfigError (one line)."""
        from ..datasets import dataset_class
        from ..features import FeatureConfig
        from ..models import list_models

        if not self.dataset:
            raise ConfigError("no dataset: pass --dataset NAME (see `mer datasets list`)")
        loader = dataset_class(self.dataset)  # the registry's one "unknown dataset" message
        if not self.root:
            raise ConfigError(f"no dataset folder: pass --root DIR (where {self.dataset} lives)")
        loader.check_root(self.root)  # the loader's own line: where to download it, what its folder holds
        if self.model not in list_models() and not is_hf(self.model):  # hf: backbones: mer.models.hf
            raise ConfigError(f"unknown model {self.model!r}; choose one of {', '.join(list_models())} "
                              "(or hf:PATH / hf:org/name)")
        if (self.finetune or self.trust_remote_code) and not is_hf(self.model):
            raise ConfigError(f"--finetune and --trust-remote-code are for hf: backbones; {self.model} takes neither "
                              "(musicnn: --model-arg freeze=false)")
        if self.finetune and not re.fullmatch(r"last:[1-9]\d*", self.finetune):
            raise ConfigError(f"--finetune {self.finetune}: write last:N, e.g. last:2 (the encoder's top 2 layers)")
        check_backbone(self.model, self.trust_remote_code, self.model_args.get("revision"))
        if self.augment < 0 or (self.augment and not self.distil):
            raise ConfigError(f"augment {self.augment}: augmented copies are for --distil (0 or more copies per clip)")
        if self.distil and is_hf(self.model):
            raise ConfigError("--distil trains a student such as --model student, not an hf: encoder")
        FeatureConfig.from_dict(self.feature)
        _choice("task", self.task, TASKS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("device", self.device, DEVICES)
        parse_loss(self.loss)
        parse_schedule(self.schedule, self.epochs)
        for name in ("batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1 (got {getattr(self, name)})")
        for name in ("patience", "seed", "workers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 or more (got {getattr(self, name)})")
        if self.folds < 1:
            raise ConfigError(f"folds must be at least 1 (got {self.folds})")
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError(f"val_fraction must be between 0 and 0.5 (got {self.val_fraction})")
        if not 0.0 <= self.quadrant_weight <= 1.0:
            raise ConfigError(f"quadrant_weight must be between 0 and 1 (got {self.quadrant_weight})")
        if self.lr <= 0 or self.crop_seconds <= 0:
            raise ConfigError("lr and crop_seconds must be positive")
        named = loader.named_splits
        if self.split and self.split not in ("mediaeval2015", "mediaeval2013", *named) and not Path(self.split).is_file():
            extra = "".join(f", {n}" for n in named)
            raise ConfigError(f"split {self.split!r}: use mediaeval2015, mediaeval2013{extra} or a split JSON file")
        return self


def check_backbone(model: str, trust_remote_code: bool = False, revision: str | None = None) -> None:
    """For an ``hf:`` name, what building it will need, checked before any audio is decoded and
    without loading its weights: transformers importable, the folder or ``org/name`` in the local
    Hugging Face cache (offline), its ``config.json`` a family mer feeds, and the user's
    ``--trust-remote-code`` where its code lives in its own repository (MERT). A ModelError
    (one line, the fix in it) otherwise; other model names pass (their builder checks them)."""
    from ..hf_hub import HF_PREFIX, resolve

    if not is_hf(model):
        return
    from ..models import hf

    hf._require_transformers()
    folder, _ = resolve(str(model)[len(HF_PREFIX):], str(revision) if revision else None)
    hf.family_of(folder, bool(trust_remote_code))


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of key: value lines")
    return data


def _coerce(key: str, value: Any, default: Any, source: str) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
        return "" if value is None else str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key}: expected {type(default).__name__}, got {value!r}") from None


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")


def parse_loss(spec: str) -> dict[str, float]:
    """``"0.5*mse+ccc"`` -> ``{"mse": 0.5, "ccc": 1.0}``."""
    terms: dict[str, float] = {}
    for part in str(spec).replace(" ", "").split("+"):
        m = re.fullmatch(r"(?:([0-9.eE-]+)\*)?([a-z]+)", part)
        if not m or m.group(2) not in LOSSES:
            raise ConfigError(f"loss {spec!r}: write a weighted sum of {', '.join(LOSSES)}, e.g. 0.5*mse+ccc")
        try:
            terms[m.group(2)] = terms.get(m.group(2), 0.0) + float(m.group(1) or 1.0)
        except ValueError:
            raise ConfigError(f"loss {spec!r}: bad weight {m.group(1)!r}") from None
    return terms


def parse_schedule(spec: str, epochs: int) -> tuple[str, float, float, int]:
    """``constant`` / ``cosine`` / ``step:E:F[:N]`` -> (kind, every, factor, max_steps)."""
    if spec in ("constant", "cosine"):
        return spec, 0.0, 1.0, 0
    m = re.fullmatch(r"step:(\d+):([0-9.eE-]+)(?::(\d+))?", str(spec))
    if not m:
        raise ConfigError(f"schedule {spec!r}: use constant, cosine or step:EPOCHS:FACTOR[:TIMES] (e.g. step:3:0.1:1)")
    every, factor = int(m.group(1)), float(m.group(2))
    if every < 1 or not 0 < factor <= 10:
        raise ConfigError(f"schedule {spec!r}: the step needs EPOCHS >= 1 and a FACTOR in (0, 10], e.g. step:3:0.1")
    return "step", float(every), factor, int(m.group(3) or 0)
