"""Training data in torch: fixed-length crops (:class:`CropSet`) and a frozen backbone's cached
per-step embeddings (:func:`embed_items`).

:class:`CropSet` serves crops whose offsets depend only on (seed, epoch, item), so a resumed
or distributed run sees the same crops as a plain one.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..datasets.items import Item
from ..errors import MERError, MERWarning
from ..io import cache_root
from ..grid import GRID_SECONDS, min_frames, n_steps
from ..infer.inference import Inference
from ..io import atomic_path

if TYPE_CHECKING:
    from ..models.base import MERModel


def embed_items(model: MERModel, items: list[Item], cache_dir: str = "", progress: bool = True) -> list[Item]:
    """Replace features by a frozen backbone's per-step embeddings (``Inference.embed``).

    Cached like features: ``cache/embeddings/<backbone digest>/<feature digest>.npz``, so
    every run and fold after the first reuses them. Each entry holds its features' digest and
    the SHA-1 of the embedding itself; an entry that is unreadable, swapped (another
    source), bit-flipped, of the wrong shape or not finite is recomputed with a warning. The backbone digest covers the model
    name, feature config, the arguments listed in ``model.embed_args`` (all of them when the
    model has no such list) and the backbone's weights (every parameter outside ``heads``),
    so runs that differ only in their heads share one cache."""
    from tqdm import tqdm

    keep = getattr(model, "embed_args", None)
    args = {k: v for k, v in model.spec["args"].items() if k != "freeze" and (keep is None or k in keep)}
    h = hashlib.sha1(json.dumps({"name": model.spec["name"], "args": args, "feature": model.spec["feature"]},
                                sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        if not name.startswith("heads."):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    folder = Path(cache_dir or cache_root()) / "embeddings" / h.hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    inference = Inference.from_module(model.eval())
    for it in tqdm(items, desc="embeddings", unit="clip", disable=not progress, leave=False):
        source = hashlib.sha1(np.ascontiguousarray(it.x).tobytes()).hexdigest()
        entry = folder / f"{source}.npz"
        e = _read_entry(entry, source, n_steps(max(it.x.shape[-1], min_frames(model.feature)), model.feature))
        if e is None:
            e = inference.embed(it.x)[0]
            with atomic_path(entry) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, embedding=e, source=np.array(source), sha1=np.array(_digest(e)))
        out.append(Item(it.track_id, e, it.static, it.dynamic, it.quadrant, it.artist, it.target))
    return out


def _digest(e: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(e).tobytes()).hexdigest()


def _read_entry(entry: Path, source: str, steps: int) -> np.ndarray | None:
    """A cached embedding when it is intact and belongs to ``source``, else None (warned)."""
    if not entry.is_file():
        return None
    try:
        with np.load(entry) as z:
            e, src, sha = z["embedding"], str(z["source"]), str(z["sha1"])
        ok = src == source and sha == _digest(e) and e.ndim == 2 and len(e) == steps and np.isfinite(e).all()
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        ok = False
    if not ok:
        warnings.warn(f"{entry}: corrupt or mismatched embedding cache entry; recomputing", MERWarning, stacklevel=3)
        return None
    return e


class CropSet(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Fixed-length crops aligned to the 0.5 s grid; offsets from (seed, epoch, index).

    ``frames_per_step`` is 31.25 for features at 62.5 frames/s, 1 for precomputed
    embeddings (one row per step). Each sample: x, static (2), dynamic (k, 2), masks.
    """

    def __init__(self, items: list[Item], crop_steps: int, frames_per_step: float, seed: int) -> None:
        self.items, self.crop_steps, self.fps_step, self.seed = items, crop_steps, frames_per_step, seed
        self.epoch = 0
        self.crop_frames = int(np.ceil(crop_steps * frames_per_step - 1e-9))  # n_steps(crop_frames) == crop_steps
        short = [it.track_id for it in items if it.x.shape[-1 if frames_per_step != 1 else 0] < self.crop_frames]
        if short and len(short) == len(items):
            raise MERError(f"every clip is shorter than the {crop_steps * GRID_SECONDS:g} s training crop; "
                           "lower crop_seconds")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        it = self.items[i]
        seq = self.fps_step == 1  # embeddings (n, D): time first
        length = it.x.shape[0] if seq else it.x.shape[-1]
        max_step = max(0, int((length - self.crop_frames) / self.fps_step))
        rng = np.random.default_rng([self.seed, self.epoch, i])
        k0 = int(rng.integers(0, max_step + 1))
        f0 = int(round(k0 * self.fps_step))
        x = it.x[f0:f0 + self.crop_frames] if seq else it.x[..., f0:f0 + self.crop_frames]
        pad = self.crop_frames - (x.shape[0] if seq else x.shape[-1])
        if pad > 0:  # a clip shorter than the crop: repeat it
            reps = int(np.ceil(self.crop_frames / max(1, length)))
            x = (np.concatenate([x] * reps, 0)[:self.crop_frames] if seq
                 else np.concatenate([x] * reps, -1)[..., :self.crop_frames])
        dyn = np.full((self.crop_steps, 2), np.nan, dtype=np.float32)
        if it.dynamic is not None:
            part = it.dynamic[k0:k0 + self.crop_steps]
            dyn[:len(part)] = part
        target = it.static_target
        static = target if target is not None else np.full(2, np.nan, dtype=np.float32)
        return {"x": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                "static": torch.from_numpy(np.asarray(static, dtype=np.float32)),
                "dynamic": torch.from_numpy(dyn),
                "quadrant": torch.tensor(it.quadrant - 1 if it.quadrant else -100, dtype=torch.long)}
