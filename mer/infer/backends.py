"""What runs a model: PyTorch, or ONNX Runtime without importing torch.

:func:`open_backend` takes a :class:`mer.bundle.Bundle` (or a name it resolves) and returns
one of two engines with the same batched numpy interface, which
:class:`mer.infer.Inference` drives:

- ``forward(x)``: features ``(B, C, F, T)`` -> ``{"static": (B, 2), "dynamic": (B, n, 2), ...}``;
- for models with per-step embeddings (``local``; musicnn, hub encoders): ``embed(x)`` -> ``(seq (B, n, D),
  tags (B, n, K) or None)`` and ``head(seq)`` -> the outputs above.

:class:`OnnxBackend` runs the bundle's two graphs ``STEM.embed.onnx`` and ``STEM.head.onnx``
(batch 1 each; ``mer export --runtime`` writes them) on the CPU. A hub encoder's embed graph
takes one native window (its metadata says how long, and where its output frames are); the
engine cuts the clip and averages the frames into steps with :mod:`mer.grid`, as the model does. Importing onnxruntime takes
~0.2 s against ~2.5 s for torch, which is most of ``mer predict``'s cold start.
:class:`TorchBackend` loads any checkpoint with PyTorch on any device, or wraps a model in
memory (:meth:`TorchBackend.from_module`: validation during training).

``auto`` takes ONNX when the two graphs exist, were exported from these very weights (their
metadata holds the SHA-1 of the ``.safetensors``), the device is the CPU and onnxruntime is
installed; otherwise PyTorch. Before that, each graph's inputs and outputs are read from its file
(:func:`graph_signature`, a few seeks, no onnxruntime session) and checked against what its role
takes and returns (:func:`check_graph`), so swapped or foreign graphs are one error naming the
file, before any worker starts.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Protocol

import numpy as np

from ..errors import ConfigError, MERWarning, ModelError, require
from ..grid import native_windows, step_pool
from ..bundle import Bundle, graph_paths

BACKENDS = ("auto", "onnx", "torch")
DEVICES = ("auto", "cpu", "cuda", "mps")


def torch_device(name: str = "auto"):  # noqa: ANN201  (torch.device)
    """The torch device for ``name`` (auto: CUDA, then MPS, then CPU); ConfigError when absent."""
    import torch

    if name not in DEVICES and not name.startswith("cuda:"):
        raise ConfigError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name} requested but this PyTorch ({torch.__version__}) sees no CUDA GPU; "
                              "use --device cpu")
        return torch.device("cuda", int(name[5:] or os.environ.get("LOCAL_RANK", "0")))
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device mps requested but not available; use --device cpu")
    return torch.device(name)


class Engine(Protocol):
    """What :class:`mer.infer.Inference` drives, whichever runtime is underneath
    (:class:`TorchBackend`, :class:`OnnxBackend`). Arrays are numpy, batched on axis 0:

    - ``forward(x)``: features ``(B, C, F, T)`` -> ``{"static": (B, 2), "dynamic": (B, n, 2), ...}``;
    - ``embed(x)``: ``(B, n, D)`` per-step embeddings and ``(B, n, K)`` tag probabilities or None,
      and ``head(seq)``: the outputs from them (only when ``local``).

    ``kind``: ``"torch"`` or ``"onnx"``; ``local``: the model has per-step embeddings;
    ``pooled_head``: its head depends on a sequence only through its mean and sd (so a long
    file's head runs in pieces); ``tag_names``: the K tags' names (empty without tags)."""

    kind: str
    local: bool
    pooled_head: bool
    tag_names: list[str]

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]: ...

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...

    def head(self, seq: np.ndarray) -> dict[str, np.ndarray]: ...


class TorchBackend:
    """Any checkpoint (or a model in memory), on any device, through PyTorch."""

    kind = "torch"

    def __init__(self, model: Any, device: str = "cpu", threads: int = 0) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = torch_device(device) if isinstance(device, str) else device
        self.model = model
        self.model.to(self.device)
        caps = getattr(model, "capabilities", None)  # any nn.Module may be wrapped; mer's models declare it
        self.local = bool(caps is not None and caps.step_embeddings)
        self.pooled_head = bool(caps is not None and caps.pooled_head)
        self.tag_names: list[str] = list(getattr(self.model, "tag_names", []))

    @classmethod
    def load(cls, bundle: Bundle, device: str = "cpu", threads: int = 0) -> "TorchBackend":
        from ..models.checkpoint import load_checkpoint

        device = torch_device(device)  # a bad device fails before the weights are read
        model, _ = load_checkpoint(bundle)  # in eval mode; the bundle's metadata, as read once
        return cls(model, device, threads)

    @classmethod
    def from_module(cls, model: Any, device: Any = "cpu") -> "TorchBackend":
        """Wrap a model being trained (the caller sets train/eval mode)."""
        return cls(model, device)

    def _np(self, t: Any) -> np.ndarray:
        return t.float().cpu().numpy()

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        with self.torch.inference_mode():
            out = self.model(self.torch.from_numpy(x).to(self.device))
        return {k: self._np(v) for k, v in out.items()}

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with self.torch.inference_mode():
            x_t = self.torch.from_numpy(x).to(self.device)
            if self.tag_names:
                seq, tags = self.model.embed(x_t, return_tags=True)
                return self._np(seq), self._np(tags)
            return self._np(self.model.embed(x_t)), None

    def head(self, seq: np.ndarray) -> dict[str, np.ndarray]:
        with self.torch.inference_mode():
            out = self.model.head(self.torch.from_numpy(np.ascontiguousarray(seq)).to(self.device))
        return {k: self._np(v) for k, v in out.items()}


class OnnxBackend:
    """A bundle's two ONNX graphs (see the module docstring) through onnxruntime, CPU only.

    Only per-step-embedding models have them (``local``): ``forward`` is ``embed`` then ``head``
    (with the tags averaged over the steps, as the models' own forward does). The graphs take
    one clip at a time; a batch is run clip by clip."""

    kind = "onnx"
    local = True

    def __init__(self, bundle: Bundle, threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # idle pool threads sleep instead of spinning: spinning took a core from the decoding and
        # log-mel work between runs (a 30-s clip's features took 71 ms instead of 32 on 2 cores)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        embed_path, head_path = graph_paths(bundle.stem)
        sessions = []
        for path, role in ((embed_path, "embed"), (head_path, "head")):
            try:
                session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own exception types)
                raise ModelError(f"{path}: unreadable ONNX graph ({str(exc).splitlines()[0]}); "
                                 f"rerun `mer export --runtime --model {bundle.name}` or pass --backend torch") from None
            check_graph(path, role, ([(i.name, len(i.shape)) for i in session.get_inputs()],
                                     [(o.name, len(o.shape)) for o in session.get_outputs()]), bundle.name)
            sessions.append(session)
        self.embed_session, self.head_session = sessions
        want = list(self.embed_session.get_inputs()[0].shape[1:3])  # (channels, bins) the graph was built for
        feature = bundle.feature
        if all(isinstance(d, int) for d in want) and want != [feature.channels, feature.n_bins]:
            raise ModelError(f"{bundle.name}: its JSON's feature config gives {feature.channels} x {feature.n_bins} "
                             f"inputs but its ONNX graph takes {want[0]} x {want[1]}; the checkpoint's JSON was edited "
                             "or belongs to other weights: restore it or re-export (`mer export --runtime`)")
        self.pooled_head = bundle.meta.capabilities.pooled_head
        self.custom = self.embed_session.get_modelmeta().custom_metadata_map
        self.tag_names: list[str] = json.loads(self.custom.get("tag_names", "[]"))
        self.head_outputs = [o.name for o in self.head_session.get_outputs()]
        self.feature = feature
        # a hub encoder's graph is one native window (frames, where its output frames are); its
        # frames are averaged into steps here
        self.window: tuple[int, float, float] | None = None
        if "window_frames" in self.custom:
            self.window = (int(self.custom["window_frames"]), float(self.custom["frame_offset"]),
                           float(self.custom["frame_seconds"]))

    def _windowed(self, clip: np.ndarray, window: int, offset: float, seconds: float) -> np.ndarray:
        """One clip's steps through a hub encoder's window graph, as HubBackbone.embed computes them."""
        parts = []
        for s0, s1, m in native_windows(clip.shape[-1], self.feature, window):
            part = np.ascontiguousarray(clip[None, ..., s0:s1], dtype=np.float32)
            frames = self.embed_session.run(None, {"features": part})[0][0]  # (Tf, D)
            parts.append(step_pool(len(frames), offset, seconds, m) @ frames)
        return np.concatenate(parts)

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self.window is not None:
            return np.stack([self._windowed(clip, *self.window) for clip in x]), None
        seqs, tags = [], []
        for clip in x:
            outs = self.embed_session.run(None, {"features": np.ascontiguousarray(clip[None], dtype=np.float32)})
            seqs.append(outs[0][0])
            if len(outs) > 1:
                tags.append(outs[1][0])
        return np.stack(seqs), (np.stack(tags) if tags else None)

    def head(self, seq: np.ndarray) -> dict[str, np.ndarray]:
        rows = [self.head_session.run(None, {"sequence": np.ascontiguousarray(s[None], dtype=np.float32)})
                for s in seq]
        return {name: np.concatenate([r[i] for r in rows]) for i, name in enumerate(self.head_outputs)}

    def forward(self, x: np.ndarray) -> dict[str, np.ndarray]:
        seq, tags = self.embed(x)
        out = self.head(seq)
        if tags is not None:
            out["tags"] = tags.mean(axis=1)
        return out


# --------------------------------------------------------------------------- what a graph takes
#: (inputs, outputs) of a graph: (name, rank), rank -1 when the file does not say
Signature = tuple[list[tuple[str, int]], list[tuple[str, int]]]

#: what each graph of ``mer export --runtime`` takes and returns, as an error says it
EXPECTED = {"embed": "take 'features' (1, channels, bins, frames) and return 'sequence' (1, steps, width) (a hub "
                     "encoder's: 'frames')",
            "head": "take 'sequence' (1, steps, width) and return 'static' (1, 2) and 'dynamic' (1, steps, 2)"}
_SEEN = {"embed": "the embed graph", "head": "the head graph",
         "single": "a one-window graph of `mer export --onnx`, which mer predict does not run"}


def graph_role(sig: Signature) -> str | None:
    """Which graph ``sig`` is: "embed", "head", "single" (``mer export --onnx``), or None."""
    ins, outs = sig
    names, outputs = [n for n, _ in ins], [n for n, _ in outs]
    if names == ["features"] and ins[0][1] in (4, -1):
        if outputs[:1] in (["sequence"], ["frames"]):
            return "embed"
        if outputs == ["static", "dynamic"]:
            return "single"
    if names == ["sequence"] and ins[0][1] in (3, -1) and {"static", "dynamic"} <= set(outputs):
        return "head"
    return None


def check_graph(path: "str | os.PathLike", role: str, sig: Signature, model: str) -> None:
    """ModelError naming ``path`` unless ``sig`` is what the ``role`` ("embed" or "head") graph
    takes and returns; says what the file is instead when that can be told (the other graph:
    the two files were swapped)."""
    found = graph_role(sig)
    if found == role:
        return
    shown = [", ".join(n for n, _ in part) or "nothing" for part in sig]
    what = f" - it is {_SEEN[found]}" if found else ""
    if found in ("embed", "head"):
        what += " (the two graph files look swapped)"
    raise ModelError(f"{path}: not the {role} graph mer runs: it should {EXPECTED[role]}, but it takes {shown[0]} "
                     f"and returns {shown[1]}{what}; rerun `mer export --runtime --model {model}` or pass --backend "
                     "torch")


def check_graphs(bundle: Bundle) -> None:
    """Check both of ``bundle``'s graphs from their files (:func:`graph_signature`; no session)."""
    for path, role in zip(graph_paths(bundle.stem), ("embed", "head")):
        try:
            sig = graph_signature(path)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: unreadable ONNX graph ({exc}); rerun `mer export --runtime --model "
                             f"{bundle.name}` or pass --backend torch") from None
        check_graph(path, role, sig, bundle.name)


def _varint(f: BinaryIO) -> int:
    value = shift = 0
    while True:
        b = f.read(1)
        if not b:
            raise ValueError("the file is cut short")
        value |= (b[0] & 0x7F) << shift
        if b[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("not an ONNX file")


def _fields(f: BinaryIO, end: int) -> Iterator[tuple[int, int]]:
    """(field number, length) of each length-delimited protobuf field up to byte ``end``, with
    ``f`` at its payload (read it, or not: the next step seeks past it); other fields skipped."""
    while f.tell() < end:
        key = _varint(f)
        wire = key & 7
        if wire == 0:
            _varint(f)
        elif wire in (1, 5):
            f.seek(8 if wire == 1 else 4, 1)
        elif wire == 2 and key >> 3:
            n = _varint(f)
            start = f.tell()
            if start + n > end:
                raise ValueError("the file is cut short")
            yield key >> 3, n
            f.seek(start + n)
        else:
            raise ValueError("not an ONNX file")
    if f.tell() != end:
        raise ValueError("the file is cut short")


def _value_info(buf: bytes) -> tuple[str, int]:
    """(name, rank) of an ONNX ValueInfoProto (name 1; type 2 -> tensor_type 1 -> shape 2 -> dim 1)."""
    f = io.BytesIO(buf)
    name, rank = "", -1
    for field, n in _fields(f, len(buf)):
        if field == 1:
            name = f.read(n).decode("utf-8", "replace")
        elif field == 2:
            for t, tn in _fields(f, f.tell() + n):
                if t == 1:
                    for s, sn in _fields(f, f.tell() + tn):
                        if s == 2:
                            rank = sum(1 for d, _ in _fields(f, f.tell() + sn) if d == 1)
    return name, rank


def graph_signature(path: "str | os.PathLike") -> Signature:
    """The names and ranks of the main graph's inputs and outputs, read from the ONNX file's protobuf
    (ModelProto.graph 7 -> GraphProto.input 11, output 12) by seeking past everything else (the
    weights): milliseconds, without onnx or onnxruntime. ValueError when it is no whole ONNX file."""
    sig: Signature | None = None
    with open(Path(path), "rb") as f:
        for field, n in _fields(f, os.fstat(f.fileno()).st_size):
            if field == 7:
                ins: list[tuple[str, int]] = []
                outs: list[tuple[str, int]] = []
                for g, m in _fields(f, f.tell() + n):
                    if g in (11, 12):
                        (ins if g == 11 else outs).append(_value_info(f.read(m)))
                sig = (ins, outs)
    if sig is None:
        raise ValueError("no graph in it")
    return sig


def onnx_status(bundle: Bundle) -> str | None:
    """None when the bundle's ONNX graphs can be used, else why not (one line)."""
    if bundle.graphs is None:
        hint = ("`mer export --runtime --model ...` writes them for models with per-step embeddings (musicnn, hf: encoders)"
                if bundle.meta.capabilities.step_embeddings else
                f"{bundle.architecture} models have none (only per-step-embedding models, musicnn and hf: encoders, do); "
                "use --backend torch")
        return f"{bundle.name}: no ONNX graphs beside the checkpoint; {hint}"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed (pip install onnxruntime)"
    return None


def choose_backend(bundle: Bundle, device: str = "auto", backend: str = "auto") -> str:
    """"onnx" or "torch" for ``bundle`` (see the module docstring), after checking the choice
    can work; raises the error a user can act on. Loads no weights (cheap: ``mer predict``
    calls it once before starting worker processes)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if device not in DEVICES and not device.startswith("cuda:"):
        raise ConfigError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if backend == "onnx" and device not in ("cpu", "auto"):
        raise ConfigError("the ONNX backend runs on the CPU only; use --backend torch for other devices")
    if backend != "torch" and device in ("cpu", "auto"):
        why = onnx_status(bundle)
        if why is None:
            check_graphs(bundle)  # swapped or foreign graphs: one error here, before any worker opens them
            return "onnx"
        if backend == "onnx":
            raise ModelError(why)
    require("torch", f"model {bundle.name} (PyTorch engine)")
    if device not in ("cpu", "auto"):
        torch_device(device)  # a GPU that is not there fails here, before any file is read
    bundle.encoder  # noqa: B018  (an hf: encoder found and hashed here, once, before any worker starts)
    return "torch"


def open_backend(bundle: Bundle, device: str = "auto", threads: int = 0,
                 backend: str = "auto") -> Engine:
    """The engine that will run ``bundle`` (see :func:`choose_backend`). ONNX graphs exported
    from other weights than the checkpoint's are refused (``--backend onnx``) or replaced by
    PyTorch with a warning (``auto``)."""
    if choose_backend(bundle, device, backend) == "onnx":
        engine = OnnxBackend(bundle, threads)
        if engine.custom.get("weights_sha1") == bundle.digest:
            return engine
        why = (f"{bundle.name}: its ONNX graphs were exported from other weights; rerun "
               f"`mer export --runtime --model {bundle.name}`")
        if backend == "onnx":
            raise ModelError(why)
        warnings.warn(f"{why} (using PyTorch meanwhile)", MERWarning, stacklevel=2)
    return TorchBackend.load(bundle, device, threads)
