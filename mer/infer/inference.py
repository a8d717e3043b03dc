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

:meth:`Inference.stream` takes the features as a stream of blocks (:func:`mer.features.feature_blocks`)
and keeps only the window being run, so memory stays flat for any length: a 3-hour file holds
its per-step embeddings (17 MB), never its features (260 MB). Its windows are the same as
those of a whole array, so the outputs are too.

Audio shorter than one 0.5 s step is padded with silence's features. Outputs are numpy:
``{"static": (2,), "dynamic": (n, 2), ["tags": (K,)], ...}`` with ``n`` the number of 0.5 s
steps (:mod:`mer.grid`), valence first.

Every model's ``static`` and ``dynamic`` values are kept on the canonical scale [-1, 1].
Quadrant models (a ``"quadrant"`` output: logits of Q1..Q4) also get ``"quadrant_probs"``
``(4,)``, their softmax (:func:`agree`), and their reported quadrant is the most probable
one (:func:`quadrant_index`), which ``mer evaluate`` scores too. The (valence, arousal) point
stays the regression's: when it lies in another quadrant (near an axis, where the two heads
disagree), predictions say so (``point_quadrant``) rather than moving it onto the axis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generator, Iterable, Iterator, Sequence

import numpy as np

from ..features import FeatureConfig, compress, feature_blocks, stream_features
from ..grid import GRID_SECONDS, min_frames, n_steps

if TYPE_CHECKING:
    from ..audio import AudioInfo
    from ..bundle import Bundle
    from .backends import Engine

Outputs = dict[str, np.ndarray]


@dataclass
class Window:
    """One window of a stream: features ``x`` ``(C, F, s1 - s0)`` with context, and which of
    its steps are its own (``first``, ``keep``); ``weight`` is its own length in frames."""

    x: np.ndarray
    first: int
    keep: int
    weight: int


#: a pooled head runs in pieces on sequences longer than this (10 minutes of 0.5 s steps) ...
POOLED_STEPS = 1200
#: ... of this many steps each
HEAD_STEPS = 2400


class _Rows:
    """Rows ``(k, ...)`` appended into one array, allocated once for ``expect`` rows (pages never
    written cost no memory) and grown by half when that was short: a 3-hour file's per-step
    embeddings (17 MB) are written once, never held twice by a final concatenate."""

    def __init__(self, expect: int = 0) -> None:
        self.expect, self.n = expect, 0
        self.a: np.ndarray | None = None

    def add(self, rows: np.ndarray) -> None:
        need = self.n + len(rows)
        if self.a is None or need > len(self.a):
            grown = np.empty((max(need, self.expect, 3 * len(self.a) // 2 if self.a is not None else 0),
                              *rows.shape[1:]), rows.dtype)
            if self.a is not None:
                grown[:self.n] = self.a[:self.n]
            self.a = grown
        self.a[self.n:need] = rows
        self.n = need

    def rows(self, n: int) -> np.ndarray:
        assert self.a is not None
        return self.a[:min(n, self.n)]


@dataclass
class Streamed:
    """What :meth:`Inference.stream` returns: the agreed ``outputs``, the number of feature
    ``frames`` seen, and for models with per-step embeddings those embeddings ``seq`` ``(n, D)``
    and tag probabilities ``tags`` ``(n, K)``; ``features`` ``(C, F, T)`` only when asked for."""

    outputs: Outputs
    frames: int
    seq: np.ndarray | None = None
    tags: np.ndarray | None = None
    features: np.ndarray | None = None


class Inference:
    """Sliding-window inference of one model engine (see the module docstring).

    Every consumer (``mer predict``, ``mer evaluate``, validation while training, the library
    index, the web page) runs a model through one of these, so they all compute the same
    numbers for the same audio. Usually made by :meth:`open`.

    Parameters
    ----------
    engine : Engine
        The model's engine (:func:`mer.infer.backends.open_backend`).
    feature : FeatureConfig
        The model's front-end (sample rate, frames per second).
    chunk_seconds : float
        Own length of each window, in seconds of features (default 32).
    context_seconds : float
        Extra audio on each side of a window (default 4 s); only a window's own steps are kept.
    batch_size : int
        Clips of equal length that fit one window are run this many at a time.

    Examples
    --------
    >>> inference = Inference.open("default")  # doctest: +SKIP
    >>> out = inference(inference.features("song.mp3"))  # doctest: +SKIP
    >>> out["static"].shape, out["dynamic"].shape, out["quadrant_probs"].shape  # doctest: +SKIP
    ((2,), (98, 2), (4,))
    """

    def __init__(self, engine: "Engine", feature: FeatureConfig, chunk_seconds: float = 32.0,
                 context_seconds: float = 4.0, batch_size: int = 8) -> None:
        self.engine, self.feature, self.batch_size = engine, feature, max(1, int(batch_size))
        self.bundle: Bundle | None = None  # set by open(); a module in memory has none
        fps = feature.frames_per_second
        self.chunk, self.context = int(round(chunk_seconds * fps)), int(round(context_seconds * fps))
        self.step = fps * GRID_SECONDS  # frames per 0.5 s step

    @classmethod
    def open(cls, model: "str | os.PathLike | Bundle", device: str = "auto", backend: str = "auto",
             threads: int = 0, **kw: Any) -> "Inference":
        """Resolve a model once and open its engine.

        Parameters
        ----------
        model : str, os.PathLike or mer.bundle.Bundle
            A bundled name (``"default"``, ``"fast"``), a checkpoint, a run folder or a Bundle.
        device : str
            ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
        backend : str
            ``"auto"`` (ONNX Runtime when the model has its ONNX graphs), ``"onnx"``, ``"torch"``.
        threads : int
            Engine threads; 0 lets the engine choose.
        **kw
            ``chunk_seconds``, ``context_seconds``, ``batch_size``.

        Returns
        -------
        Inference
            With ``bundle`` set to the resolved model.
        """
        from ..bundle import Bundle

        return cls.of(model if isinstance(model, Bundle) else Bundle.resolve(model), device, backend, threads, **kw)

    @classmethod
    def of(cls, bundle: "Bundle", device: str = "auto", backend: str = "auto", threads: int = 0,
           **kw: Any) -> "Inference":
        """Open the engine of an already resolved ``bundle`` (what mer's own callers use: a name
        becomes a Bundle once, where it enters, and the bundle travels); arguments as :meth:`open`."""
        from .backends import open_backend

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

    def _bounds(self, total: int, start: int = 0) -> list[tuple[int, int]]:
        """Own (first, last) frames of the windows of ``total`` frames from window start ``start``."""
        if start == 0 and total <= self.chunk + 2 * self.context:
            return [(0, total)]
        return [(c0, min(total, c0 + self.chunk)) for c0 in range(start, total, self.chunk)]

    def windows(self, blocks: Iterable[np.ndarray], keep_features: bool = False
                ) -> Generator[Window, None, tuple[int, np.ndarray | None]]:
        """The windows of features given as consecutive blocks ``(C, F, t)``, as :meth:`_bounds`
        cuts a whole array, each as soon as its frames (and the next window's context) have
        arrived; only the frames from the current window's left context on are held. A stream
        that ends within one window plus its context is one window. Returns (as the
        generator's value) the total frame count and, with ``keep_features``, all the features."""
        chunk, ctx = self.chunk, self.context
        buf: np.ndarray | None = None
        base, c0, kept = 0, 0, []  # base: frame index of buf[..., 0]; c0: the next window's start

        def window(c0: int, c1: int, total: int | None, n_total: int | None) -> Window:
            s0 = max(0, c0 - ctx)
            s1 = c1 + ctx if total is None else min(total, c1 + ctx)
            assert buf is not None
            first = int(round((c0 - s0) / self.step))
            own = int(round((c1 - c0) / self.step)) if n_total is None else n_total - int(round(c0 / self.step))
            return Window(np.ascontiguousarray(buf[..., s0 - base:s1 - base]), first, own, c1 - c0)

        for block in blocks:
            if keep_features:
                kept.append(block)
            buf = block if buf is None else np.concatenate([buf, block], axis=-1)
            end = base + buf.shape[-1]
            # a window runs once the frames after its context arrived (the stream goes on past it;
            # the first also needs to know the stream is longer than one window with context)
            while end > c0 + chunk + ctx and end > chunk + 2 * ctx:
                yield window(c0, c0 + chunk, None, None)
                c0 += chunk
                drop = max(0, c0 - ctx) - base
                buf, base = buf[..., drop:], base + drop
        if buf is None:
            from ..errors import AudioError

            raise AudioError("no features: the audio produced no frames")
        total = base + buf.shape[-1]
        if total < min_frames(self.feature):  # shorter than one step: padded, one window
            buf = self._pad(buf)
            total = buf.shape[-1]
        n_total = n_steps(total, self.feature)
        for w0, w1 in self._bounds(total, c0):
            yield window(w0, w1, total, n_total if w1 >= total else None)
        return total, (np.concatenate(kept, axis=-1) if keep_features else None)

    def stream(self, blocks: Iterable[np.ndarray], keep_features: bool = False, expected_frames: int = 0) -> Streamed:
        """The model's outputs for features given as blocks (:func:`mer.features.feature_blocks`),
        window by window in flat memory (see the module docstring); equal to
        ``self(np.concatenate(blocks, axis=-1))``. Models with per-step embeddings run their
        head once on the whole sequence; others average their windows' clip outputs, weighted
        by window length, and concatenate their curves. ``expected_frames`` (e.g. from the
        file's header; a guess) sizes the per-step arrays once instead of growing them."""
        gen = self.windows(blocks, keep_features)
        expect = n_steps(expected_frames, self.feature) + 2 if expected_frames else 0
        seqs, tags = _Rows(expect), _Rows(expect)
        curves: list[np.ndarray] = []
        weights: list[int] = []
        clip: dict[str, list[np.ndarray]] = {}
        while True:
            try:
                w = next(gen)
            except StopIteration as stop:
                total, feats = stop.value
                break
            own = slice(w.first, w.first + w.keep)
            if self.engine.local:
                seq, tag = self.engine.embed(w.x[None])
                seqs.add(seq[0, own])
                if tag is not None:
                    tags.add(tag[0, own])
            else:
                out = self._forward(w.x[None])
                curves.append(out.pop("dynamic")[0, own])
                for k, v in out.items():
                    clip.setdefault(k, []).append(v[0])
                weights.append(w.weight)
        n_total = n_steps(max(total, min_frames(self.feature)), self.feature)
        if self.engine.local:
            seq = seqs.rows(n_total)
            tag_seq = tags.rows(n_total) if tags.n else None
            out = self._head(seq)
            if tag_seq is not None:
                out["tags"] = tag_seq.mean(axis=0)
            return Streamed(agree(out), total, seq, tag_seq, feats)
        wts = np.asarray(weights, dtype=np.float64) / sum(weights)
        curve = np.concatenate(curves)[:n_total]
        if len(curve) < n_total:  # rounding at window edges: repeat the last step
            curve = np.concatenate([curve, np.repeat(curve[-1:], n_total - len(curve), 0)])
        out = {**{k: np.tensordot(wts, np.stack(v), axes=1) for k, v in clip.items()}, "dynamic": curve}
        return Streamed(agree(out), total, features=feats)

    def _forward(self, x: np.ndarray) -> Outputs:
        """A model without per-step embeddings on a batch of features."""
        return self.engine.forward(x)

    def _head(self, seq: np.ndarray) -> Outputs:
        """One clip's head outputs for its per-step embeddings ``(n, D)``. A pooled head
        (``Capabilities.pooled_head``) of a sequence longer than :data:`POOLED_STEPS` runs in
        pieces: its clip outputs from a two-step sequence with the same mean and population
        standard deviation (computed here in float64, :data:`HEAD_STEPS` steps at a time), its
        per-step outputs piece by piece; the one call on the whole sequence held two more copies
        of it (+20 MB at 3 hours). Shorter sequences, every 30-s clip among them, take one call."""
        if not self.engine.pooled_head or len(seq) <= POOLED_STEPS:
            return {k: v[0] for k, v in self.engine.head(seq[None]).items()}
        mean = seq.mean(axis=0, dtype=np.float64)
        squares = np.zeros_like(mean)
        for a in range(0, len(seq), HEAD_STEPS):
            d = seq[a:a + HEAD_STEPS] - mean
            squares += np.einsum("ij,ij->j", d, d)
        sd = np.sqrt(squares / len(seq))
        out = {k: v[0] for k, v in self.engine.head(np.stack([mean + sd, mean - sd]).astype(np.float32)[None]).items()}
        per_step = [k for k, v in out.items() if v.ndim >= 2]  # from the steps themselves, one run per piece
        pieces = [self.engine.head(np.ascontiguousarray(seq[a:a + HEAD_STEPS])[None])
                  for a in range(0, len(seq), HEAD_STEPS)]
        return {**out, **{k: np.concatenate([piece[k][0] for piece in pieces]) for k in per_step}}

    def blocks(self, path: "str | os.PathLike | AudioInfo", **kw: Any) -> Iterator[np.ndarray]:
        """:func:`mer.features.feature_blocks` of a file with this model's front-end."""
        return feature_blocks(path, self.feature, **kw)

    # -- one clip ----------------------------------------------------------------------------
    def __call__(self, x: np.ndarray) -> Outputs:
        """The model's outputs for one clip's features.

        Parameters
        ----------
        x : np.ndarray
            Features ``(C, F, T)`` of any length T (frames at the front-end's rate), as
            :meth:`features` computes them.

        Returns
        -------
        dict of str to np.ndarray
            ``"static"`` ``(2,)`` and ``"dynamic"`` ``(n, 2)`` (valence, arousal in [-1, 1];
            ``n`` 0.5 s steps, step ``i`` at ``0.5 (i + 1)`` s), plus what the model has:
            ``"quadrant"`` ``(4,)`` logits and ``"quadrant_probs"`` ``(4,)`` (Q1..Q4, summing to
            1), ``"moods"`` ``(W,)`` (mood-word probabilities 0-1), ``"tags"`` ``(K,)``.
        """
        return self.many([x])[0]

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-step embeddings ``(n, D)`` and tag probabilities ``(n, K)`` (or None) of a local model."""
        st = self.stream([x])
        assert st.seq is not None, "embed() needs a model with per-step embeddings"
        return st.seq, st.tags

    # -- many clips --------------------------------------------------------------------------
    def many(self, xs: Sequence[np.ndarray]) -> list[Outputs]:
        """Outputs for each of ``xs``; one-window clips of equal shape are run as one batch."""
        xs = [self._pad(x) for x in xs]
        results: dict[int, Outputs] = {}
        groups: dict[tuple, list[int]] = {}
        for i, x in enumerate(xs):
            if len(self._bounds(x.shape[-1])) == 1:
                groups.setdefault(x.shape, []).append(i)
            else:
                results[i] = self.stream([x]).outputs
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
                    out = self._forward(batch)
                for j, i in enumerate(part):
                    results[i] = {k: v[j] for k, v in out.items()}
        return [agree(results[i]) for i in range(len(xs))]  # (idempotent: streamed ones are agreed already)

    def heads(self, seqs: Sequence[np.ndarray]) -> list[Outputs]:
        """Outputs of a local model's head on per-step embeddings ``(n, D)`` computed before
        (:meth:`embed`, or the embedding cache of training); equal lengths are batched."""
        results: dict[int, Outputs] = {}
        groups: dict[tuple, list[int]] = {}
        for i, seq in enumerate(seqs):
            groups.setdefault(seq.shape, []).append(i)
        for idx in groups.values():
            for s in range(0, len(idx), self.batch_size):
                part = idx[s:s + self.batch_size]
                out = self.engine.head(np.stack([seqs[i] for i in part]))
                for j, i in enumerate(part):
                    results[i] = {k: v[j] for k, v in out.items()}
        return [agree(results[i]) for i in range(len(seqs))]

    def segments(self, source: "np.ndarray | Streamed", seconds: float) -> list[tuple[float, float, Outputs]]:
        """(start s, end s, outputs) of consecutive ``seconds``-long segments of features ``(C, F, T)``
        or of a :class:`Streamed` result (which holds what is needed: the per-step embeddings of
        a local model, else its features, ``stream(..., keep_features=True)``).

        Models with per-step embeddings run their head on each segment's steps (for the cost
        of the head; a step's window may reach a little into the neighbouring segment, as it
        does in the whole-file result); others run on each segment's features alone."""
        if seconds <= 0:
            from ..errors import ConfigError

            raise ConfigError(f"segment length must be positive (got {seconds})")
        per = max(1, int(round(seconds / GRID_SECONDS)))
        if self.engine.local:
            seq, tags = (source.seq, source.tags) if isinstance(source, Streamed) else self.embed(source)
            assert seq is not None
            bounds = [(k, min(len(seq), k + per)) for k in range(0, len(seq), per)]
            outs = self.heads([seq[a:b] for a, b in bounds])
            if tags is not None:
                outs = [{**o, "tags": tags[a:b].mean(axis=0)} for o, (a, b) in zip(outs, bounds)]
        else:
            x = source.features if isinstance(source, Streamed) else source
            assert x is not None, "segments of a streamed non-local model need stream(..., keep_features=True)"
            x = self._pad(x)
            n = n_steps(x.shape[-1], self.feature)
            bounds = [(k, min(n, k + per)) for k in range(0, n, per)]
            f = self.step
            outs = self.many([x[..., int(round(a * f)):max(int(round(b * f)), int(round(a * f)) + 1)] for a, b in bounds])
        return [(a * GRID_SECONDS, b * GRID_SECONDS, o) for (a, b), o in zip(bounds, outs)]


def agree(out: Outputs) -> Outputs:
    """Keep ``static`` and ``dynamic`` on the canonical scale [-1, 1] (linear heads can
    overshoot: the default's 2 Hz valence reached 1.1) and add ``quadrant_probs``, the softmax
    of a quadrant head's logits (see the module docstring). The (valence, arousal) point is
    the regression's own: it is not moved into the most probable quadrant (that put 9% of the
    points exactly on an axis), so near an axis the two may disagree, and outputs say so.
    Idempotent."""
    over: Outputs = {k: np.clip(out[k], -1.0, 1.0).astype(np.float32) for k in ("static", "dynamic")
            if k in out and np.abs(out[k]).max(initial=0.0) > 1.0}
    if over:
        out = {**out, **over}
    if "quadrant" not in out or "quadrant_probs" in out:
        return out
    z = np.asarray(out["quadrant"], dtype=np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    return {**out, "quadrant_probs": p.astype(np.float32)}


def quadrant_index(out: Outputs) -> int:
    """The reported quadrant 1..4 of one clip's outputs: the most probable one for a model with
    a quadrant head, else the quadrant of its (valence, arousal) signs (0 counts as positive)."""
    from ..scales import quadrant

    if "quadrant_probs" in out:
        return int(np.argmax(out["quadrant_probs"])) + 1
    return int(quadrant(float(out["static"][0]), float(out["static"][1])).name[1])


def stack(outputs: Sequence[Outputs]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(static ``(N, 2)``, list of dynamic ``(n_i, 2)``, reported quadrants ``(N,)`` 1..4) of many
    clips' outputs, for scoring."""
    static = np.stack([o["static"] for o in outputs]) if outputs else np.zeros((0, 2), np.float32)
    return static, [o["dynamic"] for o in outputs], np.array([quadrant_index(o) for o in outputs], dtype=np.int64)
