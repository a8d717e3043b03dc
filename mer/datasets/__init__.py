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
    """Create a dataset loader by name, rooted at the folder you downloaded.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS` (case-insensitive): ``"4q"``, ``"amg1608"``, ``"deam"``,
        ``"emomusic"``, ``"folder"``, ``"merge"``, ``"pmemo"``, ``"ravdess"``.
    root : str or os.PathLike
        The release's folder, laid out as the release ships it (each loader's ``layout``;
        ``mer datasets info NAME``).
    **options
        The loader's own options (``--dataset-option KEY=VALUE`` on the command line), e.g.
        ``lexicon=PATH`` for ``4q``, ``scale="1-9"`` for ``folder``, ``subset="balanced"`` for
        ``merge``; every loader takes ``clip=True`` (clip label values outside the source scale
        instead of leaving their tracks out). ``None`` values are dropped.

    Returns
    -------
    Dataset
        Lazy: annotations are parsed on first use. Its tracks' labels are on the canonical
        scale [-1, 1] whatever the source scale (``source_scale`` records it); dynamic labels
        are ``(T, 2)`` on the 0.5 s grid with their ``times`` in seconds.

    Raises
    ------
    mer.DatasetError
        An unknown name (the message lists the choices) or an option the loader does not take.
        A missing root fails on first use, naming where to download the release.

    Examples
    --------
    >>> ds = load_dataset("4q", "../shared/data/4q-dev",
    ...                   lexicon="../shared/data/lexicons/Ratings_Warriner_et_al.csv")  # doctest: +SKIP
    >>> t = ds.track("MT0000040632")  # doctest: +SKIP
    >>> t.quadrant, t.valence is not None  # doctest: +SKIP
    ('Q1', True)
    """
    cls = dataset_class(name)
    options = {k: v for k, v in options.items() if v is not None}
    check_arguments(cls.__init__, {"root": root, **options}, f"dataset {cls.name}", DatasetError, "--dataset-option",
                    ("root",))
    return cls(root, **options)


__all__ = ["AMG1608", "COMPOSITES", "DATASETS", "DEAM", "MERGE", "RAVDESS", "Dataset", "EmoMusic", "FolderDataset", "FourQ", "PMEmo", "Problem", "SwapReport",
           "Track", "UnionDataset", "ValidationReport", "compare_datasets", "compare_static", "dataset_class", "load_dataset", "load_lexicon", "refuse_blocking"]
