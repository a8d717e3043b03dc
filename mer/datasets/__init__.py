"""Dataset loaders: DEAM, emoMusic, PMEmo2019, 4Q, AMG1608, RAVDESS (song), MERGE and a bring-your-own folder.

``load_dataset(name, root, **options)`` builds one by name; ``DATASETS`` maps names to
classes. Loaders register themselves (:data:`mer.datasets.base.REGISTRY`): this package imports
each of its modules, so a new loader is one file here plus its test; the names, ``mer
datasets list``, the CLI help and every "unknown dataset" message come from the registry. All labels are on the canonical [-1, 1] scale (see :mod:`mer.datasets.base`). Every
loader takes ``clip=`` (``--dataset-option clip=true``): clip label values outside the source
scale instead of leaving their tracks out; ``Dataset.blocking_problems()`` lists what must
stop training (see :mod:`mer.datasets.problems`).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from typing import Any

from ..errors import DatasetError, check_arguments
from .amg1608 import AMG1608
from .base import REGISTRY, Dataset, Problem, Track, ValidationReport
from .deam import DEAM
from .emomusic import EmoMusic
from .folder import FolderDataset
from .fourq import FourQ, load_lexicon
from .merge import MERGE
from .pmemo import PMEmo
from .ravdess import RAVDESS
from .swap import SwapReport, compare_datasets, compare_static
from .union import UnionDataset

for _module in pkgutil.iter_modules(__path__):  # every loader module registers its classes
    importlib.import_module(f"{__name__}.{_module.name}")

#: the releases, by name (``mer datasets list``), in name order
DATASETS: dict[str, type[Dataset]] = {n: REGISTRY[n] for n in sorted(REGISTRY) if REGISTRY[n].listed}
#: datasets that are not releases (not listed): several datasets as one training set
COMPOSITES: dict[str, type[Dataset]] = {n: c for n, c in REGISTRY.items() if not c.listed}


def dataset_class(name: str) -> type[Dataset]:
    """The loader class for ``name`` (case-insensitive); DatasetError naming the choices otherwise.
    The one place an unknown name is refused."""
    cls = REGISTRY.get(str(name).strip().lower())
    if cls is None:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return cls


def refuse_blocking(ds: Dataset) -> None:
    """DatasetError when ``ds`` has problems that must stop training or scoring (labels off
    their scale, duplicate ids that disagree): their tracks are left out, and a run on the
    rest would quietly be a run on other data."""
    bad = ds.blocking_problems()
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise DatasetError(f"{bad[0].message}{more}; see `mer datasets validate {ds.name} --root {ds.root}`")


def load_dataset(name: str, root: str | os.PathLike, **options: Any) -> Dataset:
    """Create dataset ``name`` (one of ``DATASETS``) rooted at ``root``; ``None`` options are dropped."""
    cls = dataset_class(name)
    options = {k: v for k, v in options.items() if v is not None}
    check_arguments(cls.__init__, {"root": root, **options}, f"dataset {cls.name}", DatasetError, "--dataset-option",
                    ("root",))
    return cls(root, **options)


__all__ = ["AMG1608", "COMPOSITES", "DATASETS", "DEAM", "MERGE", "RAVDESS", "Dataset", "EmoMusic", "FolderDataset", "FourQ", "PMEmo", "Problem", "SwapReport",
           "Track", "UnionDataset", "ValidationReport", "compare_datasets", "compare_static", "dataset_class", "load_dataset", "load_lexicon", "refuse_blocking"]
