"""From dataset tracks to training tensors: cached features, labels on the model grid, crops.

:func:`load_items` turns tracks into :class:`Item` s (features from the
:class:`~mer.features.FeatureCache`, decoded in parallel the first time). Static targets are
the track's (valence, arousal); a track with only a quadrant label (4Q without a lexicon)
gets the quadrant's centre point. Dynamic targets are put on the model's 0.5 s grid with a
mask. :class:`CropSet` serves fixed-length training crops whose offsets depend only on
(seed, epoch, item), so a resumed or distributed run sees the same crops as a plain one.
"""

from __future__ import annotations

import os
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from .datasets.base import Track
from .errors import MERError
from .features import FeatureCache, FeatureConfig
from .grid import GRID_SECONDS, n_steps, time_to_step
from .scales import QUADRANTS, quadrant_center


@dataclass
class Item:
    track_id: str
    x: np.ndarray  # (C, F, T) features, or (n, D) precomputed embeddings for a frozen backbone
    static: np.ndarray | None  # (2,)
    dynamic: np.ndarray | None  # (n_steps, 2) on the model grid, NaN where unlabelled
    quadrant: int  # 1..4, 0 = unknown
    artist: str | None
    target: np.ndarray | None = None  # static training target when it differs from the label (quadrant_weight)

    @property
    def static_target(self) -> np.ndarray | None:
        return self.static if self.target is None else self.target


def targets(track: Track, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(static (2,), dynamic (n, 2) with NaN gaps) for a clip with ``n`` model steps; a clip
    with only a quadrant label gets the quadrant's centre as its static label."""
    static = track.static
    if static is None and track.quadrant:
        static = np.array(quadrant_center(track.quadrant), dtype=np.float32)
    dynamic = None
    if track.dynamic is not None and track.times is not None:
        dynamic = np.full((n, 2), np.nan, dtype=np.float32)
        steps = time_to_step(track.times)
        ok = (steps >= 0) & (steps < n)
        dynamic[steps[ok]] = track.dynamic[ok]
    return static, dynamic


def toward_quadrant(static: np.ndarray, quadrant: str, weight: float) -> np.ndarray:
    """``(1 - w) * static + w * centre`` of ``quadrant`` (+-0.5, +-0.5): the training target
    of ``quadrant_weight``. For 4Q, whose ground truth is the quadrant and whose (valence,
    arousal) is estimated from mood words, this keeps the targets on the right side of the
    axes while still ordering songs within a quadrant."""
    centre = np.array(quadrant_center(quadrant), dtype=np.float32)
    return ((1 - weight) * static + weight * centre).astype(np.float32)


def _features(args: tuple[FeatureConfig, str, str]) -> np.ndarray:
    config, cache_dir, path = args
    return FeatureCache(config, cache_dir or None).get(path)


def load_items(tracks: list[Track], feature: FeatureConfig, cache_dir: str = "", workers: int = 0,
               progress: bool = True, quadrant_weight: float = 0.0) -> list[Item]:
    """Features (cached) and targets for ``tracks``; decoding runs in ``workers`` processes."""
    from tqdm import tqdm

    workers = workers or os.cpu_count() or 1
    jobs = [(feature, cache_dir, str(t.audio_path)) for t in tracks]
    bar = dict(total=len(jobs), desc="features", unit="clip", disable=not progress, leave=False)
    if workers > 1 and len(jobs) > 8:
        with ProcessPoolExecutor(workers) as pool:
            feats = list(tqdm(pool.map(_features, jobs, chunksize=4), **bar))
    else:
        feats = [_features(j) for j in tqdm(jobs, **bar)]
    items = []
    for t, x in zip(tracks, feats):
        n = n_steps(x.shape[-1], feature)
        static, dynamic = targets(t, n)
        target = toward_quadrant(static, t.quadrant, quadrant_weight) if quadrant_weight and t.quadrant else None
        q = QUADRANTS[t.quadrant].number if t.quadrant in QUADRANTS else 0
        items.append(Item(t.track_id, x, static, dynamic, q, t.artist, target))
    return items


def embed_items(model: torch.nn.Module, items: list[Item], cache_dir: str = "", progress: bool = True) -> list[Item]:
    """Replace features by a frozen backbone's per-step embeddings (``model.embed``).

    Cached like features: ``cache/embeddings/<backbone digest>/<feature digest>.npy``, so
    every run and fold after the first reuses them. The backbone digest covers the model
    name, feature config, the arguments listed in ``model.embed_args`` (all of them when the
    model has no such list) and the backbone's weights (every parameter outside ``heads``),
    so runs that differ only in their heads share one cache."""
    import hashlib
    import json

    from tqdm import tqdm

    from .features import default_cache_dir
    from .io import atomic_path

    keep = getattr(model, "embed_args", None)
    args = {k: v for k, v in model.spec["args"].items() if k != "freeze" and (keep is None or k in keep)}
    h = hashlib.sha1(json.dumps({"name": model.spec["name"], "args": args, "feature": model.spec["feature"]},
                                sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        if not name.startswith("heads."):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    folder = Path(cache_dir or default_cache_dir()) / "embeddings" / h.hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    model.eval()
    with torch.inference_mode():
        for it in tqdm(items, desc="embeddings", unit="clip", disable=not progress, leave=False):
            entry = folder / f"{hashlib.sha1(np.ascontiguousarray(it.x).tobytes()).hexdigest()}.npy"
            try:
                e = np.load(entry)
            except (OSError, ValueError):
                e = model.embed(torch.from_numpy(it.x)[None])[0].numpy()
                with atomic_path(entry) as tmp:
                    with open(tmp, "wb") as fh:
                        np.save(fh, e)
            out.append(Item(it.track_id, e, it.static, it.dynamic, it.quadrant, it.artist, it.target))
    return out


class CropSet(torch.utils.data.Dataset):
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
                "dynamic": torch.from_numpy(dyn)}
