"""One sliding-window inference, shared by every consumer (pyannote's ``Inference`` idea).

``mer predict``, ``mer evaluate``, validation during training, the embedding cache of a
frozen backbone, and the coming web page and library index all run a model through
:class:`Inference`, so they all compute the same numbers for the same audio.

Features ``(C, F, T)`` of any length are cut into windows of ``chunk_seconds`` (default 32 s)
with ``context_seconds`` (4 s) of extra audio on each side; only each window's own steps are
kept, so an hour of audio never sits in the network at once. A clip that fits in one window
plus its context (<= 40 s by default) runs in one pass, and clips of equal length are
batched (``batch_size``).

- Models with per-step embeddings (``engine.local``; musicnn) embed window by window and run
  their head once on the whole sequence: exactly the one-pass result.
- Other models average their windows' clip-level outputs (``static``, and any other
  ``(B, K)`` output) weighted by window length, and concatenate the windows' curves.

Audio shorter than one 0.5 s step is padded with silence's features. Outputs are numpy:
``{"static": (2,), "dynamic": (n, 2), ["tags": (K,)], ...}`` with ``n`` the number of 0.5 s
steps (:mod:`mer.grid`), valence first.

Every model's ``static`` and ``dynamic`` values are kept on the canonical scale [-1, 1].
Quadrant models (a ``"quadrant"`` output: logits of Q1..Q4) also get ``"quadrant_probs"``
``(4,)``, their softmax, and the two outputs are made to agree (:func:`agree`): the
quadrant is the most probable one, and the static (valence, arousal) point is moved onto the
nearest point of that quadrant when the regression put it elsewhere. Every consumer sees
the same agreed outputs, so ``mer evaluate`` scores the quadrant ``mer predict`` prints.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..features import FeatureConfig, compress, stream_features
from ..grid import GRID_SECONDS, min_frames, n_steps

if TYPE_CHECKING:
    from ..audio import AudioInfo
    from ..hub import Bundle
    from .backends import OnnxBackend, TorchBackend

Outputs = dict[str, np.ndarray]


class Inference:
    """Sliding-window inference of one model engine (see the module docstring)."""

    def __init__(self, engine: "OnnxBackend | TorchBackend", feature: FeatureConfig, chunk_seconds: float = 32.0,
                 context_seconds: float = 4.0, batch_size: int = 8) -> None:
        self.engine, self.feature, self.batch_size = engine, feature, max(1, int(batch_size))
        self.bundle: Bundle | None = None  # set by open(); a module in memory has none
        fps = feature.frames_per_second
        self.chunk, self.context = int(round(chunk_seconds * fps)), int(round(context_seconds * fps))
        self.step = fps * GRID_SECONDS  # frames per 0.5 s step

    @classmethod
    def open(cls, model: "str | os.PathLike | Bundle", device: str = "auto", backend: str = "auto",
             threads: int = 0, **kw: Any) -> "Inference":
        """Resolve ``model`` (name, checkpoint, run folder or Bundle) and open its engine."""
        from ..hub import Bundle
        from .backends import open_backend

        bundle = Bundle.resolve(model)
        inference = cls(open_backend(bundle, device, threads, backend), bundle.feature, **kw)
        inference.bundle = bundle
        return inference

    @classmethod
    def from_module(cls, model: Any, device: Any = "cpu", **kw: Any) -> "Inference":
        """Inference over a torch model in memory (validation while training)."""
        from .backends import TorchBackend

        return cls(TorchBackend.from_module(model, device), model.feature, **kw)

    # -- inputs ------------------------------------------------------------------------------
    def features(self, path: "str | os.PathLike | AudioInfo", **kw: Any) -> np.ndarray:
        """Features ``(C, F, T)`` of an audio file (or its header, read once), computed block by
        block (bounded memory); ``offset`` / ``duration`` in seconds select a part."""
        return stream_features(path, self.feature, **kw)

    def features_of(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Features of a waveform in memory: ``(n,)`` or ``(channels, n)`` float at ``sr`` Hz."""
        import soxr

        from .. import audio
        from ..errors import AudioError
        from ..features import extract

        y = np.asarray(y, dtype=np.float32)
        if y.ndim not in (1, 2) or y.size == 0 or not np.isfinite(y).all() or sr <= 0:
            raise AudioError(f"array input: need a non-empty finite (n,) or (channels, n) waveform and sr > 0 "
                             f"(got shape {y.shape}, sr {sr})")
        audio.check_rate(sr, "array input")
        y = audio.ensure_channels(y, self.feature.channels)
        if sr != self.feature.sample_rate:
            y = np.stack([soxr.resample(ch, sr, self.feature.sample_rate, quality="HQ") for ch in y])
        audio.check_signal(y, self.feature.sample_rate, "array input")
        return extract(y, self.feature)

    def _pad(self, x: np.ndarray) -> np.ndarray:
        need = min_frames(self.feature)
        if x.shape[-1] >= need:
            return x
        silence = compress(np.zeros(1, np.float32), self.feature.compression)[0]
        return np.pad(x, ((0, 0), (0, 0), (0, need - x.shape[-1])), constant_values=silence)

    def _bounds(self, total: int) -> list[tuple[int, int]]:
        if total <= self.chunk + 2 * self.context:
            return [(0, total)]
        return [(c0, min(total, c0 + self.chunk)) for c0 in range(0, total, self.chunk)]

    # -- one clip ----------------------------------------------------------------------------
    def __call__(self, x: np.ndarray) -> Outputs:
        """The model's outputs for features ``(C, F, T)`` (see the module docstring)."""
        return self.many([x])[0]

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-step embeddings ``(n, D)`` and tag probabilities ``(n, K)`` (or None) of a local model."""
        x = self._pad(x)
        total = x.shape[-1]
        n_total = n_steps(total, self.feature)
        seqs, tags = [], []
        for c0, c1 in self._bounds(total):
            s0, s1 = max(0, c0 - self.context), min(total, c1 + self.context)
            first = int(round((c0 - s0) / self.step))
            keep = int(round((c1 - c0) / self.step)) if c1 < total else n_total - int(round(c0 / self.step))
            seq, tag = self.engine.embed(np.ascontiguousarray(x[None, ..., s0:s1]))
            seqs.append(seq[0, first:first + keep])
            if tag is not None:
                tags.append(tag[0, first:first + keep])
        return np.concatenate(seqs)[:n_total], (np.concatenate(tags)[:n_total] if tags else None)

    def _windowed(self, x: np.ndarray) -> Outputs:
        """A non-local model on a clip longer than one window: windows with context, averaged."""
        total = x.shape[-1]
        n_total = n_steps(total, self.feature)
        clip: dict[str, list[np.ndarray]] = {}
        curves, weights = [], []
        for c0, c1 in self._bounds(total):
            s0, s1 = max(0, c0 - self.context), min(total, c1 + self.context)
            first = int(round((c0 - s0) / self.step))
            keep = int(round((c1 - c0) / self.step)) if c1 < total else n_total - int(round(c0 / self.step))
            out = self.engine.forward(np.ascontiguousarray(x[None, ..., s0:s1]))
            curves.append(out.pop("dynamic")[0, first:first + keep])
            for k, v in out.items():
                clip.setdefault(k, []).append(v[0])
            weights.append(c1 - c0)
        w = np.asarray(weights, dtype=np.float64) / sum(weights)
        curve = np.concatenate(curves)[:n_total]
        if len(curve) < n_total:  # rounding at window edges: repeat the last step
            curve = np.concatenate([curve, np.repeat(curve[-1:], n_total - len(curve), 0)])
        return {**{k: np.tensordot(w, np.stack(v), axes=1) for k, v in clip.items()}, "dynamic": curve}

    # -- many clips --------------------------------------------------------------------------
    def many(self, xs: Sequence[np.ndarray]) -> list[Outputs]:
        """Outputs for each of ``xs``; one-window clips of equal shape are run as one batch."""
        xs = [self._pad(x) for x in xs]
        results: list[Outputs | None] = [None] * len(xs)
        groups: dict[tuple, list[int]] = {}
        for i, x in enumerate(xs):
            if len(self._bounds(x.shape[-1])) == 1:
                groups.setdefault(x.shape, []).append(i)
            elif self.engine.local:
                results[i] = self._finish_local(*self.embed(x))
            else:
                results[i] = self._windowed(x)
        for idx in groups.values():
            for s in range(0, len(idx), self.batch_size):
                part = idx[s:s + self.batch_size]
                batch = np.stack([xs[i] for i in part])
                if self.engine.local:
                    seq, tags = self.engine.embed(batch)
                    out = self.engine.head(seq)
                    if tags is not None:
                        out["tags"] = tags.mean(axis=1)
                else:
                    out = self.engine.forward(batch)
                for j, i in enumerate(part):
                    results[i] = {k: v[j] for k, v in out.items()}
        return [agree(o) for o in results]  # type: ignore[arg-type]

    def heads(self, seqs: Sequence[np.ndarray]) -> list[Outputs]:
        """Outputs of a local model's head on per-step embeddings ``(n, D)`` computed before
        (:meth:`embed`, or the embedding cache of training); equal lengths are batched."""
        results: list[Outputs | None] = [None] * len(seqs)
        groups: dict[tuple, list[int]] = {}
        for i, s in enumerate(seqs):
            groups.setdefault(s.shape, []).append(i)
        for idx in groups.values():
            for s in range(0, len(idx), self.batch_size):
                part = idx[s:s + self.batch_size]
                out = self.engine.head(np.stack([seqs[i] for i in part]))
                for j, i in enumerate(part):
                    results[i] = {k: v[j] for k, v in out.items()}
        return [agree(o) for o in results]  # type: ignore[arg-type]

    def segments(self, x: np.ndarray, seconds: float) -> list[tuple[float, float, Outputs]]:
        """(start s, end s, outputs) of consecutive ``seconds``-long segments of features ``(C, F, T)``.

        Models with per-step embeddings run their head on each segment's steps (for the cost
        of the head; a step's window may reach a little into the neighbouring segment, as it
        does in the whole-file result); others run on each segment's features alone."""
        if seconds <= 0:
            from ..errors import ConfigError

            raise ConfigError(f"segment length must be positive (got {seconds})")
        x = self._pad(x)
        per = max(1, int(round(seconds / GRID_SECONDS)))
        n = n_steps(x.shape[-1], self.feature)
        bounds = [(k, min(n, k + per)) for k in range(0, n, per)]
        if self.engine.local:
            seq, tags = self.embed(x)
            outs = self.heads([seq[a:b] for a, b in bounds])
            if tags is not None:
                outs = [{**o, "tags": tags[a:b].mean(axis=0)} for o, (a, b) in zip(outs, bounds)]
        else:
            f = self.step
            outs = self.many([x[..., int(round(a * f)):max(int(round(b * f)), int(round(a * f)) + 1)] for a, b in bounds])
        return [(a * GRID_SECONDS, b * GRID_SECONDS, o) for (a, b), o in zip(bounds, outs)]

    def _finish_local(self, seq: np.ndarray, tags: np.ndarray | None) -> Outputs:
        out = {k: v[0] for k, v in self.engine.head(seq[None]).items()}
        if tags is not None:
            out["tags"] = tags.mean(axis=0)
        return out


#: how far past an axis a point moved into its quadrant lands: the printed precision (4 decimals),
#: so the rounded numbers keep the quadrant's signs (0 counts as positive)
EDGE = 1e-4


def agree(out: Outputs) -> Outputs:
    """Keep ``static`` and ``dynamic`` on the canonical scale [-1, 1] (linear heads can
    overshoot: the default's 2 Hz valence reached 1.1), then add ``quadrant_probs`` and move
    ``static`` into the most probable quadrant (see the module docstring)."""
    over = {k: np.clip(out[k], -1.0, 1.0).astype(np.float32) for k in ("static", "dynamic")
            if k in out and np.abs(out[k]).max(initial=0.0) > 1.0}
    if over:
        out = {**out, **over}
    if "quadrant" not in out:
        return out
    z = np.asarray(out["quadrant"], dtype=np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    q = int(p.argmax())  # 0..3 = Q1..Q4
    v_sign, a_sign = ((1, 1), (-1, 1), (-1, -1), (1, -1))[q]
    v, a = (float(x) for x in out["static"])
    v = max(v, 0.0) if v_sign > 0 else min(v, -EDGE)
    a = max(a, 0.0) if a_sign > 0 else min(a, -EDGE)
    return {**out, "static": np.array([v, a], dtype=np.float32), "quadrant_probs": p.astype(np.float32)}


def stack(outputs: Sequence[Outputs]) -> tuple[np.ndarray, list[np.ndarray]]:
    """(static ``(N, 2)``, list of dynamic ``(n_i, 2)``) of many clips' outputs, for scoring."""
    static = np.stack([o["static"] for o in outputs]) if outputs else np.zeros((0, 2), np.float32)
    return static, [o["dynamic"] for o in outputs]
