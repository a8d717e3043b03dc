"""Point it at music, get emotion out: ``mer.predict(path)`` and the engine of ``mer predict``.

A :class:`Predictor` holds one model (the bundled default, another bundled name, or any
checkpoint ``mer train`` wrote, resolved once into a :class:`mer.bundle.Bundle`) in an engine
from :mod:`mer.infer.backends` (ONNX Runtime, which needs no torch, or PyTorch). For each
file (or waveform in memory) it computes features block by block, runs the model through the
one sliding-window :class:`mer.infer.Inference` that ``mer evaluate`` and training also use,
and returns a :class:`Prediction`: static valence and arousal on the canonical [-1, 1] scale,
the quadrant (for a model with a quadrant head, such as the default, its most probable one;
otherwise the quadrant of the point, 0 counting as positive as in :func:`mer.scales.quadrant`),
the quadrant probabilities for models that have them, the 2 Hz curve, and optionally
per-segment results and the embeddings. Values are rounded to 4 decimals *before* a quadrant
is taken from them. ``point_quadrant`` is the quadrant the point lies in: near an axis it can
differ from the classifier's, and the point is then left where the regression put it.

Usage::

    import mer
    p = mer.predict("song.mp3")                       # or mer.predict(y, sr=44100)
    p.valence, p.arousal, p.quadrant, p.probabilities, p.curve
    mer.predict("set.flac", offset=60, duration=300, segments=30)   # p.segments: one row per 30 s
    predictor = mer.Predictor("default")
    for p in predictor.predict_many(paths, workers=2): ...
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

from ..grid import GRID_SECONDS
from ..bundle import Bundle
from ..scales import QUADRANTS, Quadrant, from_canonical, quadrant
from .inference import Inference, Outputs, quadrant_index

if TYPE_CHECKING:
    from .batch import Result

DEFAULT_MODEL = "default"
DECIMALS = 4


def _clean(x: float) -> float:
    v = round(float(x), DECIMALS)
    return 0.0 if v == 0 else v  # no "-0.0"


@dataclass
class Segment:
    """One stretch of a file (``start``..``end`` seconds) with its own static result.

    Attributes
    ----------
    start, end : float
        Seconds on the file's clock (an ``offset`` included); the last segment ends where the
        audio does.
    valence, arousal : float
        The segment's values on the canonical scale [-1, 1], 4 decimals.
    quadrant : str
        ``"Q1"``..``"Q4"``: the quadrant head's most probable one, else the point's.
    probabilities : dict of str to float
        ``{"Q1": p, ..., "Q4": p}``, summing to 1 (empty for models without a quadrant head).
    moods : dict of str to float
        Mood word -> probability (0-1), most probable first (mood-word models; else empty).
    """

    start: float
    end: float
    valence: float
    arousal: float
    quadrant: str
    probabilities: dict[str, float] = field(default_factory=dict)
    moods: dict[str, float] = field(default_factory=dict)  # mood word -> probability (mood-word models)

    @property
    def point_quadrant(self) -> str:
        """The quadrant of the (valence, arousal) point; see :attr:`Prediction.point_quadrant`."""
        return quadrant(self.valence, self.arousal).name

    def on_scale(self, scale: str = "canonical") -> dict[str, Any]:
        conv = (lambda x: x) if scale == "canonical" else (lambda x: from_canonical(x, scale))
        return {"start": self.start, "end": self.end, "valence": round(float(conv(self.valence)), DECIMALS),
                "arousal": round(float(conv(self.arousal)), DECIMALS), "quadrant": self.quadrant,
                "point_quadrant": self.point_quadrant,
                **{f"p_{k.lower()}": v for k, v in self.probabilities.items()},
                **({"moods": self.moods} if self.moods else {})}


@dataclass
class Prediction:
    """One file's result, on the canonical scale (valence and arousal in [-1, 1], 0 neutral).

    ``curve`` carries its own time axis, as pyannote's ``SlidingWindowFeature`` does: value
    ``k`` is at ``curve_start + k * curve_step`` seconds on the file's clock (:attr:`times`;
    2 Hz, the first at 0.5 s, or at ``offset + 0.5`` for a part of a file).

    Attributes
    ----------
    path : str
        The file as given (``"<array>"`` for a waveform).
    duration : float
        Seconds of audio predicted.
    valence : float
        Unpleasant (-1) to pleasant (+1), the model's regression, 4 decimals.
    arousal : float
        Calm (-1) to excited (+1), 4 decimals.
    quadrant : str
        Russell quadrant ``"Q1"``..``"Q4"``: a quadrant head's most probable one (the default
        has one), else the quadrant of the rounded (valence, arousal) point, 0 counting as
        positive. Near an axis it can differ from :attr:`point_quadrant`.
    quadrant_words : str
        The quadrant's words: ``"happy/excited"``, ``"angry/tense"``, ``"sad/depressed"``,
        ``"calm/relaxed"``.
    curve : np.ndarray
        ``(n, 2)`` float32, (valence, arousal) per 0.5 s step in [-1, 1], as the model gave it
        (rounded to 4 decimals only on output: :meth:`on_scale`).
    model, model_version, weights_sha1 : str
        The model's name, its version and the SHA-1 of its weights (40 hex digits).
    tags : dict of str to float
        The model's top-5 tags (musicnn's MSD tags) -> score 0-1; empty for models without.
    seconds : float
        Processing time in seconds.
    probabilities : dict of str to float
        ``{"Q1": p, ..., "Q4": p}``, calibrated, summing to 1; empty for models without a
        quadrant head.
    moods : dict of str to float
        Mood word -> probability (0-1) that AllMusic's editors would give the song that word,
        every word of a mood-word model's vocabulary (the default: 58), most probable first;
        empty for models without a mood-word head.
    segments : list of Segment
        One result per ``segments`` seconds, when asked for.
    embedding : np.ndarray or None
        ``(D,)`` float32, the clip's mean per-step embedding (``embeddings=True``; D = 200 for
        the default).
    step_embeddings : np.ndarray or None
        ``(n, D)`` float32, one embedding per 0.5 s step (``embeddings=True``).
    curve_start, curve_step : float
        Seconds: the time of the curve's first value (0.5 unless an ``offset``) and between
        values (0.5).
    """

    path: str
    duration: float
    valence: float
    arousal: float
    quadrant: str
    quadrant_words: str
    curve: np.ndarray
    model: str
    tags: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # processing time
    model_version: str = ""
    weights_sha1: str = ""
    probabilities: dict[str, float] = field(default_factory=dict)  # Q1..Q4, for quadrant models
    segments: list[Segment] = field(default_factory=list)
    embedding: np.ndarray | None = None  # (D,) the clip's mean per-step embedding (embeddings=True)
    step_embeddings: np.ndarray | None = None  # (n, D) one per 0.5 s step (embeddings=True)
    curve_start: float = GRID_SECONDS  # s: time of the curve's first value
    curve_step: float = GRID_SECONDS  # s between values
    #: mood word -> probability (0-1) that AllMusic's editors would give the song that word,
    #: for models with a mood-word head (the default); every word of its vocabulary, most likely first
    moods: dict[str, float] = field(default_factory=dict)

    def top_moods(self, k: int = 3) -> list[str]:
        """The ``k`` most probable mood words (empty for models without a mood-word head)."""
        return list(self.moods)[:k]

    @property
    def times(self) -> np.ndarray:
        """``(n,)`` seconds of the curve's values, from its own axis."""
        return np.round(self.curve_start + self.curve_step * np.arange(len(self.curve)), 3)

    @property
    def point_quadrant(self) -> str:
        """The quadrant the (valence, arousal) point lies in (0 counts as positive). For a
        quadrant model it can differ from :attr:`quadrant`, the classifier's most probable one,
        when the point lies near an axis: the two heads disagree there, and the point is left
        where the regression put it rather than moved onto the axis."""
        return quadrant(self.valence, self.arousal).name

    @property
    def confidence(self) -> float | None:
        """Probability of the reported quadrant (None for models without a quadrant head)."""
        return self.probabilities.get(self.quadrant) if self.probabilities else None

    def on_scale(self, scale: str = "canonical") -> dict[str, Any]:
        """JSON-ready dict with values on ``scale`` ("canonical", "1-9", "0-1"); no embeddings."""
        conv = (lambda x: x) if scale == "canonical" else (lambda x: from_canonical(x, scale))
        curve = np.round(conv(self.curve.astype(np.float64)), DECIMALS) if len(self.curve) else self.curve
        return {"path": self.path, "duration": round(self.duration, 3),
                "valence": round(float(conv(self.valence)), DECIMALS),
                "arousal": round(float(conv(self.arousal)), DECIMALS), "scale": scale,
                "quadrant": self.quadrant, "quadrant_words": self.quadrant_words,
                "point_quadrant": self.point_quadrant,
                **({f"p_{k.lower()}": v for k, v in self.probabilities.items()} if self.probabilities else {}),
                **({"confidence": self.confidence} if self.probabilities else {}),
                "curve_start": self.curve_start, "curve_step": self.curve_step,
                "times": [float(t) for t in self.times], "valence_curve": curve[:, 0].tolist() if len(curve) else [],
                "arousal_curve": curve[:, 1].tolist() if len(curve) else [], "model": self.model,
                "model_version": self.model_version, "weights_sha1": self.weights_sha1,
                **({"tags": self.tags} if self.tags else {}),
                **({"moods": self.moods} if self.moods else {}),
                **({"segments": [s.on_scale(scale) for s in self.segments]} if self.segments else {})}

    def to_dict(self, scale: str = "canonical", embeddings: bool = False) -> dict[str, Any]:
        """Everything as plain Python (JSON-ready); ``embeddings=True`` adds them as lists."""
        d = self.on_scale(scale)
        if embeddings and self.embedding is not None:
            d["embedding"] = self.embedding.tolist()
            d["step_embeddings"] = self.step_embeddings.tolist() if self.step_embeddings is not None else []
        return d


class Predictor:
    """Loads a model once; ``predictor(path_or_waveform)`` -> :class:`Prediction`.

    The work itself is :class:`mer.infer.Inference`'s; ``mer predict`` runs one Predictor per
    worker process.

    Parameters
    ----------
    model : str, os.PathLike or mer.bundle.Bundle
        A bundled name (``"default"``, ``"fast"``), a checkpoint ``mer train`` wrote, a run
        folder, or a Bundle resolved before.
    device : str
        ``"auto"`` (the CPU unless a PyTorch engine finds a GPU), ``"cpu"``, ``"cuda"``,
        ``"mps"``.
    backend : str
        ``"auto"`` (ONNX Runtime when the checkpoint has its ONNX graphs, as the default does,
        else PyTorch), ``"onnx"`` or ``"torch"``; see :mod:`mer.infer.backends`.
    threads : int
        Engine threads; 0 lets the engine choose.
    trust_remote_code : bool
        Your grant to run Python code that an ``hf:`` backbone's folder ships (MERT); a run's
        own files never grant it.

    Raises
    ------
    mer.ModelError
        The model cannot be found or loaded.
    mer.ConfigError
        A device or backend that cannot run it.

    Examples
    --------
    >>> predictor = mer.Predictor("default")  # doctest: +SKIP
    >>> predictor("song.mp3", segments=20).quadrant  # doctest: +SKIP
    'Q1'
    """

    def __init__(self, model: "str | os.PathLike | Bundle" = DEFAULT_MODEL, device: str = "auto",
                 backend: str = "auto", threads: int = 0, trust_remote_code: bool = False) -> None:
        self.inference = Inference.of(Bundle.resolve(model, trust_remote_code), device, backend, threads)
        assert self.inference.bundle is not None  # open() resolved it
        self.bundle: Bundle = self.inference.bundle
        self.engine = self.inference.engine
        self.meta = self.bundle.meta
        self.name = self.bundle.name
        self.feature = self.bundle.feature
        self.device, self.backend = device, backend

    def features(self, path: str | os.PathLike, offset: float = 0.0, duration: float | None = None) -> np.ndarray:
        return self.inference.features(path, offset=offset, duration=duration)

    def __call__(self, source: "str | os.PathLike | np.ndarray", sr: int | None = None, offset: float = 0.0,
                 duration: float | None = None, segments: float | None = None,
                 embeddings: bool = False, progress: "Callable[[float], None] | None" = None) -> Prediction:
        """Predict a file or a waveform.

        Parameters
        ----------
        source : str, os.PathLike or np.ndarray
            An audio file, or a waveform, float in [-1, 1], ``(n,)`` or ``(channels, n)``.
        sr : int, optional
            The waveform's sample rate in Hz (required for a waveform; unused for a file).
        offset : float
            Seconds to skip at the start. The curve's ``times`` and the segments' bounds stay
            file times: a part from 20 s has its first step at 20.5 s.
        duration : float, optional
            Seconds to predict from ``offset`` (default: to the end).
        segments : float, optional
            Also one :class:`Segment` per that many seconds; the last one ends with the audio
            and warns (MERWarning) when shorter than half of it.
        embeddings : bool
            Also the clip embedding ``(D,)`` and per-step embeddings ``(n, D)`` (models with
            per-step embeddings, such as the default; ConfigError otherwise).
        progress : callable, optional
            ``progress(fraction)``, fraction 0-1, called as a file is decoded.

        Returns
        -------
        Prediction
            Values on the canonical scale [-1, 1].

        Raises
        ------
        mer.AudioError
            The file cannot be read.
        mer.ConfigError
            A waveform without ``sr``, or ``embeddings`` for a model without them.
        """
        t0 = time.perf_counter()
        if embeddings and not self.engine.local:
            from ..errors import ConfigError

            raise ConfigError(f"model {self.name} has no per-step embeddings (only musicnn-based models do)")
        keep = bool(segments) and not self.engine.local  # their segments run on the features again
        if isinstance(source, np.ndarray):
            if sr is None:
                from ..errors import ConfigError

                raise ConfigError("a waveform needs its sample rate: predict(y, sr=44100)")
            y = source[..., int(round(offset * sr)):] if offset else source
            y = y[..., :int(round(duration * sr))] if duration else y
            st = self.inference.stream([self.inference.features_of(y, sr)], keep_features=keep)
            name, length = "<array>", y.shape[-1] / sr
        else:
            from ..audio import info, part_seconds

            header = info(source)  # read once: for the decoder and for the length reported
            part = part_seconds(header.duration, offset, duration)
            blocks = self.inference.blocks(header, offset=offset, duration=duration, progress=progress)
            st = self.inference.stream(blocks, keep_features=keep,
                                       expected_frames=int(part * self.feature.frames_per_second) + 1)
            name, length = str(source), self._length(part, st.frames)
        pred = self.finish(name, length, st.outputs, 0.0)
        if offset:  # the curve's axis and the segments' bounds are on the file's own clock
            pred.curve_start = round(pred.curve_start + offset, 3)
        if segments:
            pred.segments = [self._segment(a + offset, b + offset, o, pred.duration + offset)
                             for a, b, o in self.inference.segments(st, segments)]
            _last_segment(pred, segments, offset)
        if embeddings and st.seq is not None:
            pred.step_embeddings = st.seq.astype(np.float32, copy=False)
            pred.embedding = st.seq.mean(axis=0).astype(np.float32)
        pred.seconds = time.perf_counter() - t0
        return pred

    def _segment(self, start: float, end: float, out: Outputs, duration: float) -> Segment:
        v, a = _clean(out["static"][0]), _clean(out["static"][1])
        return Segment(round(start, 3), round(min(end, duration), 3), v, a, _reported(out, v, a).name, _probs(out),
                       self._moods(out))

    def _length(self, part: float, n_frames: int) -> float:
        """Seconds of audio predicted: the part of the file its header and ``offset``/``duration``
        select (:func:`mer.audio.part_seconds`), never more than the frames decoded cover (a cut
        file's header promises more than it holds; the frames alone overshoot by up to one hop)."""
        if self.feature.resize_frames:  # a fixed number of frames says nothing about the length
            return part
        covered = n_frames / self.feature.frames_per_second
        return min(part, covered) if part > 0 else covered

    def finish(self, path: str, duration: float, out: Outputs, seconds: float) -> Prediction:
        """The :class:`Prediction` of ``duration`` seconds of audio from the model's outputs."""
        if not np.isfinite(out["static"]).all() or not np.isfinite(out["dynamic"]).all():
            from ..errors import ModelError

            raise ModelError(f"model {self.name} produced NaN/inf (for {path}); its weights are likely damaged or "
                             "diverged: retrain it or use another model")
        v, a = _clean(out["static"][0]), _clean(out["static"][1])
        q = _reported(out, v, a)
        curve = np.asarray(out["dynamic"], dtype=np.float32)  # one compact array; rounded on output
        tags = {}
        names = self.engine.tag_names
        if "tags" in out and names:
            top = np.argsort(-out["tags"])[:5]
            tags = {names[i]: round(float(out["tags"][i]), 3) for i in top}
        return Prediction(path=path, duration=duration, valence=v, arousal=a, quadrant=q.name,
                          quadrant_words=q.words, curve=curve, curve_start=GRID_SECONDS, model=self.name,
                          tags=tags, seconds=seconds, model_version=self.bundle.version,
                          weights_sha1=self.bundle.digest, probabilities=_probs(out), moods=self._moods(out))

    def _moods(self, out: Outputs) -> dict[str, float]:
        """{word: probability} of a mood-word head's output, most probable first (3 decimals)."""
        words = self.bundle.mood_words
        if "moods" not in out or not words:
            return {}
        p = np.asarray(out["moods"], dtype=np.float64)
        return {words[i]: round(float(p[i]), 3) for i in np.argsort(-p, kind="stable")}

    def predict_many(self, paths: Iterable[str | os.PathLike], workers: int = 0,
                     **options: Any) -> Iterator["Prediction | Exception"]:
        """Predictions of many files, in input order, in worker processes.

        Parameters
        ----------
        paths : iterable of str or os.PathLike
            Audio files (folders are not expanded here: :func:`mer.audio.find_audio` does that).
        workers : int
            Processes, each loading the model once; 0: one per core.
        **options
            As for :meth:`__call__`: ``offset``, ``duration``, ``segments``, ``embeddings``.

        Yields
        ------
        Prediction or Exception
            One per path, in input order: the file's :class:`Prediction`, or the
            :class:`mer.MERError` it failed with (the others go on).
        """
        for result in run_batch(self.bundle, [str(p) for p in paths], self.device, self.backend, workers, options):
            yield result.prediction if result.prediction is not None else result.error_object()


def run_batch(model: "str | os.PathLike | Bundle", paths: list[str], device: str = "auto", backend: str = "auto",
              workers: int = 0, options: dict[str, Any] | None = None) -> Iterator["Result"]:
    """:class:`mer.infer.batch.Result` s of ``paths`` in input order, predicted by ``model`` in
    ``workers`` processes (0: one per core), each loading it once; see :mod:`mer.infer.batch`."""
    from .batch import run

    return run(functools.partial(Predictor, model, device, backend), paths, workers, options)


def _last_segment(pred: Prediction, seconds: float, offset: float) -> None:
    """The last segment ends where the audio does (its steps stop at the last whole 0.5 s), and
    a last segment much shorter than asked for is said to be unreliable."""
    last = pred.segments[-1]
    last.end = round(pred.duration + offset, 3)
    length = last.end - last.start
    if len(pred.segments) > 1 and length < seconds / 2:
        import warnings

        from ..errors import MERWarning

        warnings.warn(f"{pred.path}: the last segment ({last.start:g}-{last.end:g} s) is only {length:.1f} s long "
                      f"against {seconds:g} s asked for; its result is less reliable", MERWarning, stacklevel=3)


def _reported(out: Outputs, v: float, a: float) -> Quadrant:
    """The quadrant a prediction reports: a quadrant head's most probable one, else that of the
    rounded (valence, arousal) point (so printed numbers and quadrant agree)."""
    return QUADRANTS[f"Q{quadrant_index(out)}"] if "quadrant_probs" in out else quadrant(v, a)


def _probs(out: Outputs) -> dict[str, float]:
    if "quadrant_probs" not in out:
        return {}
    return {f"Q{i + 1}": round(float(p), DECIMALS) for i, p in enumerate(out["quadrant_probs"])}


_DEFAULT: dict[str, Predictor] = {}


def predict(source: "str | os.PathLike | np.ndarray", model: str | os.PathLike = DEFAULT_MODEL,
            sr: int | None = None, trust_remote_code: bool = False, **options: Any) -> Prediction:
    """Valence, arousal, quadrant (+ probabilities) and 2 Hz curve of a file or waveform
    (what ``mer.predict`` calls; documented there).

    Parameters
    ----------
    source : str, os.PathLike or np.ndarray
        An audio file, or a waveform ``(n,)`` / ``(channels, n)`` at ``sr`` Hz.
    model : str or os.PathLike
        A bundled name, a checkpoint or a run folder; loaded once and reused.
    sr : int, optional
        The waveform's sample rate in Hz.
    trust_remote_code : bool
        As for :class:`Predictor`.
    **options
        As for :meth:`Predictor.__call__`: ``offset``, ``duration``, ``segments``,
        ``embeddings``, ``progress``.

    Returns
    -------
    Prediction
    """
    key = f"{model}\0{bool(trust_remote_code)}"
    if key not in _DEFAULT:
        _DEFAULT[key] = Predictor(model, trust_remote_code=trust_remote_code)
    return _DEFAULT[key](source, sr=sr, **options)
