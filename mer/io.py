"""Small file helpers shared by every writer: atomic writes so nothing is left half-written.

Pattern: write to a temporary file in the destination folder, flush it to disk, then
``os.replace`` it over the target. An interruption (Ctrl-C, kill -9, a full disk) leaves
either the old file or the new one, never a truncated mix; the temporary file is removed
on any exception.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    ``suffix`` defaults to the target's own suffix, so libraries that infer the format from
    the extension (soundfile, numpy) still do the right thing.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 (and writers may recreate the file)
        with open(tmp_path, "rb+") as fh:  # make the data durable before the rename
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as pretty JSON to ``target`` atomically."""
    write_text_atomic(target, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
