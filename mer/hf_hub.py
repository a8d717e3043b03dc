"""``hf:`` names: a Hugging Face audio encoder named once, found in the local cache, hashed once.

``hf:PATH`` (a ``save_pretrained`` folder) or ``hf:org/name[@revision]`` (the local Hugging
Face cache only: mer never downloads; ``HF_HUB_OFFLINE`` is honoured) names an encoder that
:mod:`mer.models.hf` builds with transformers. This module is torch-free and transformers-free:
it parses the name (:data:`HF_PREFIX`), finds the folder (:func:`resolve`), reads its JSON files
(:func:`read_json`), hashes its weights once per process (:func:`folder_digest`,
:class:`Encoder`) and words the errors, with the download command the installed
``huggingface_hub`` has (:func:`hf_download_command`). timm keeps its hub code in ``_hub.py``
the same way: one module named for the hub, called where a name enters.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError
from .io import file_sha1

#: the prefix of a hub encoder's name: ``hf:PATH`` or ``hf:org/name[@revision]``
HF_PREFIX = "hf:"


def is_hf(name: object) -> bool:
    """Whether ``name`` names a hub encoder (``hf:...``)."""
    return str(name).startswith(HF_PREFIX)


def resolve(source: str, revision: str | None = None) -> tuple[Path, str | None]:
    """(local directory, revision or None) of ``PATH`` or ``org/name[@revision]`` (local cache only)."""
    p = Path(source).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelError(f"{p}: no config.json here; point hf: at a save_pretrained folder")
        return p.resolve(), revision
    if source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise ModelError(f"hf:{source}: no such folder (hf: takes a local save_pretrained folder or an org/name "
                         "in the local Hugging Face cache)")
    repo, _, rev = source.partition("@")
    revision = rev or revision
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(repo, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        cmd = hf_download_command(repo, revision)
        raise ModelError(f"hf:{source}: not in the local Hugging Face cache and mer never downloads; run `{cmd}` "
                         "first (or pass hf:/path/to/a/local/folder)") from None
    return path, path.name  # .../snapshots/<commit>


def weight_files(folder: Path) -> list[Path]:
    return sorted(q for q in folder.iterdir() if q.name == "config.json" or q.suffix in (".safetensors", ".bin"))


def folder_digest(folder: Path) -> str:
    """SHA-1 over config.json and the weight files: their names and their own SHA-1s
    (:func:`mer.io.file_sha1`). Each folder is hashed once per process while its files stay
    as they are (same names, sizes and modification times); :func:`remember` hands a digest
    computed elsewhere (the parent of ``predict -j N``'s workers) to this process."""
    files = weight_files(folder)
    key = (str(folder), tuple((q.name, *_stat(q)) for q in files))
    if key not in _DIGESTS:
        h = hashlib.sha1()
        for q in files:
            h.update(f"{q.name}\0{file_sha1(q)}\n".encode())
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


#: (folder, its files' names, sizes and mtimes) -> digest, for this process
_DIGESTS: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}


@dataclass(frozen=True)
class Encoder:
    """An ``hf:`` encoder found once where its name entered: ``source`` as named (``PATH`` or
    ``org/name[@rev]``), the local ``folder``, its ``revision`` (a cache snapshot's commit) and
    ``sha1`` (:func:`folder_digest`), with the stat key that digest is valid for."""

    source: str
    folder: Path
    revision: str | None
    sha1: str
    key: tuple[str, tuple[tuple[str, int, int], ...]]

    @classmethod
    def find(cls, source: str, revision: str | None = None) -> "Encoder":
        """Locate (local cache only) and hash an ``hf:`` source: the one place it is done."""
        folder, rev = resolve(source, revision)
        sha1 = folder_digest(folder)
        key = (str(folder), tuple((q.name, *_stat(q)) for q in weight_files(folder)))
        return cls(source, folder, rev, sha1, key)


def remember(encoder: "Encoder | None") -> None:
    """Let this process reuse ``encoder``'s digest (computed in another process) while its files
    are unchanged, instead of hashing gigabytes of weights again."""
    if encoder is not None:
        _DIGESTS.setdefault(encoder.key, encoder.sha1)


_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false"}


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file of an ``hf:`` folder (``config.json``, ``preprocessor_config.json``); a
    ModelError naming it when it is not UTF-8, not JSON, or not an object."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x})"
    except ValueError as exc:  # json.JSONDecodeError
        why = f"not valid JSON ({exc})"
    except OSError as exc:
        why = f"cannot be read ({exc.strerror})"
    else:
        if isinstance(doc, dict):
            return doc
        why = f"holds {_JSON_TYPES.get(type(doc), 'null')} where a JSON object {{...}} belongs"
    raise ModelError(f"{path}: {why}; restore the file (transformers' save_pretrained writes it) or download the "
                     "model again")



def hf_download_command(repo: str, revision: str | None = None) -> str:
    """The shell command that puts ``repo`` into the local Hugging Face cache, as the installed
    huggingface_hub spells it: ``hf download`` (its CLI since 0.34; ``huggingface-cli`` is
    deprecated there and gone in 1.x), ``huggingface-cli download`` for an older one, and the
    install first (``pip install 'mer-toolkit[hub]' && hf download ...``) when it is absent."""
    from importlib import metadata

    rev = f" --revision {revision}" if revision else ""
    try:
        dist = metadata.distribution("huggingface_hub")
    except metadata.PackageNotFoundError:
        return f"pip install 'mer-toolkit[hub]' && hf download {repo}{rev}"
    scripts = {ep.name for ep in dist.entry_points if ep.group == "console_scripts"}
    digits = [int(x) for x in re.findall(r"\d+", dist.version or "")[:2]] or [0]
    old = "hf" not in scripts and ("huggingface-cli" in scripts or tuple(digits) < (0, 34))
    return f"{'huggingface-cli' if old else 'hf'} download {repo}{rev}"


def _hf_config(source: str) -> tuple[Path | None, str]:
    """(``config.json`` of an ``hf:`` source as far as it is here, or None; the step that gets it when it is not)."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        return folder / "config.json", ""
    if source.startswith((".", "/", "~")) or source.count("/") != 1:
        return None, f"put the encoder's save_pretrained folder at {folder} (no such folder here), then "
    repo, _, rev = source.partition("@")
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo, "config.json", revision=rev or None)
    except (ImportError, ValueError, OSError):
        found = None
    if isinstance(found, str):
        return Path(found), ""
    return None, f"`{hf_download_command(repo, rev or None)}` (it is not in the local Hugging Face cache yet), then "


def no_run_error(spec: str) -> ModelError:
    """The error for an ``hf:`` name where a mer model (with emotion heads) belongs: the
    ``mer train`` command that makes one from it (with ``--trust-remote-code`` for MERT)."""
    source = spec[len(HF_PREFIX):]
    config, fetch = _hf_config(source)
    remote = "mert" in source.lower()
    try:
        cfg = json.loads(config.read_text(encoding="utf-8")) if config is not None else {}
    except (OSError, ValueError):
        cfg = {}
    if isinstance(cfg, dict):
        remote = remote or cfg.get("model_type") == "mert_model" or bool(cfg.get("auto_map"))
    trust = " --trust-remote-code" if remote else ""
    why = (" (MERT runs Python code from its own repository: --trust-remote-code lets it, only if you trust that "
           "code)") if remote else ""
    return ModelError(f"{spec}: an hf: name is a foundation encoder with no emotion heads yet, so it cannot predict "
                      f"by itself; make a run with heads on it first: {fetch}`mer train --model {spec}{trust} --dataset "
                      f"NAME --root DIR --out RUN`{why}, then pass that run: `mer predict --model RUN`")
