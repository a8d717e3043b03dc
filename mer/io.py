"""Small file helpers shared by every writer: atomic writes so nothing is left half-written.

Pattern: write to a temporary file in the destination folder, flush it to disk, then
``os.replace`` it over the target. An interruption (Ctrl-C, kill -9, a full disk) leaves
either the old file or the new one, never a truncated mix; the temporary file is removed
on any exception. A full disk is reported as ``disk full: PATH`` (an :class:`MERError`).
Only regular files are replaced: a symlink is followed, a character device or a FIFO
(``-o /dev/null``) is written in place, anything else is refused. :func:`refuse_collisions`
keeps every command's outputs off its own inputs (compared as files, not as strings).

Temporary names carry the writer's process id (``.NAME.mer-PID-XXXX.ext``), so what a
killed process left behind is recognised and removed by :func:`clean_stale_temps`, which
the commands call on the folders they write to. :func:`run_lock` keeps two processes out
of one run folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import MERError, UsageError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None,
                finish: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a path to write ``target``'s new content to; on success it becomes ``target``.

    A regular file (or a new path) is written to a temporary file beside it that is renamed
    over it at the end. A symlink is resolved first, so the link stays a link and its target
    gets the new content. A character device or a FIFO (``/dev/null``, ``>(gzip > x.gz)``)
    is written in place, as every Unix tool does: renaming over it would replace a node that
    is not ours. A folder, a block device or a socket is refused with :class:`MERError`.

    ``suffix`` defaults to the target's own suffix, so libraries that infer the format from
    the extension (soundfile, numpy) still do the right thing. ``finish(tmp)``, when given, runs
    on the written, flushed temporary file just before the rename (``mer tag`` gives it the old
    file's mode, owner and times there); whatever it raises leaves ``target`` as it was.
    """
    target = Path(os.path.realpath(target)) if Path(target).is_symlink() else Path(target)
    kind = special_kind(target)
    if kind in ("character device", "FIFO"):
        try:
            yield target
        except OSError as exc:
            raise _os_error(exc, target) from None
        return
    if kind is not None:
        raise MERError(f"{target}: is a {kind}; mer writes only regular files, character devices and pipes: "
                       "give a file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    name = target.name[:120]  # the temporary name stays under the 255-byte limit of file names
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.mer-{os.getpid()}-",
                                   suffix=suffix if suffix is not None else target.suffix[:20], dir=target.parent)
    except OSError as exc:
        raise _os_error(exc, target) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 (and writers may recreate the file)
        with open(tmp_path, "rb+") as fh:  # make the data durable before the rename
            os.fsync(fh.fileno())
        if finish is not None:
            finish(tmp_path)
        os.replace(tmp_path, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EROFS):
            raise _os_error(exc, target) from None
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def special_kind(path: str | os.PathLike) -> str | None:
    """What stands at ``path`` when it is not a regular file: "folder", "character device",
    "block device", "FIFO" or "socket"; None for a regular file or nothing (symlinks followed)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    for test, kind in ((stat.S_ISDIR, "folder"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return kind
    return None


def _identity(path: str | os.PathLike) -> tuple:
    """What makes two paths one file: device and inode when it exists (hard links, symlinks,
    ``./x`` and ``x`` agree, as :func:`os.path.samefile`), else the resolved path."""
    try:
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    except (OSError, ValueError):
        return ("path", os.path.normcase(os.path.realpath(path)))


def refuse_collisions(inputs: Iterable[str | os.PathLike], outputs: Iterable[tuple[str, str | os.PathLike | None]],
                      input_label: str = "an input") -> None:
    """Raise :class:`UsageError` (exit status 2) when an output of a run is one of its inputs or
    another of its outputs, before any work is done, naming both.

    ``outputs``: (flag, path) pairs such as ``("-o", "out.csv")``; None paths are ignored.
    Character devices and FIFOs may be named by several outputs (``-o /dev/null --plot
    /dev/null``); nothing is ever written over an input, whatever its kind."""
    seen: dict[tuple, tuple[str, str]] = {}
    for flag, path in outputs:
        if path is None or str(path) == "-":
            continue
        key = _identity(path)
        if key in seen and special_kind(path) not in ("character device", "FIFO"):
            other_flag, other = seen[key]
            raise UsageError(f"{flag} {path} and {other_flag} {other} are the same file; give each output its own name")
        seen[key] = (flag, str(path))
    for path in inputs:  # by inode, and by name for outputs that do not exist yet ("new/../in.wav")
        for key in (_identity(path), ("path", os.path.normcase(os.path.realpath(path)))):
            if key not in seen:
                continue
            flag, out = seen[key]
            raise UsageError(f"{flag} {out} is {input_label} of this run ({path}); choose another output path, "
                             "nothing was written")


def _os_error(exc: OSError, target: Path) -> MERError:
    """A user-facing error for an output path the system refused."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return MERError(f"disk full: {target}; free some space and run again (nothing was half-written)")
    if exc.errno in (errno.EACCES, errno.EROFS):
        return MERError(f"{target}: cannot write here ({exc.strerror}); choose another output folder")
    if exc.errno in (errno.ENOTDIR, errno.EISDIR):
        return MERError(f"{target}: a folder and a file name collide on this path ({exc.strerror}); choose another")
    return MERError(f"{target}: cannot be written ({exc.strerror})")


_TEMP = re.compile(r"^\..+\.mer-(\d+)-")


def clean_stale_temps(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Remove temporary files of :func:`atomic_path` whose writer process is gone; return them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in (folder.rglob(".*") if recursive else folder.glob(".*")):
        m = _TEMP.match(p.name)
        if m and p.is_file() and not alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (another user's counts; so does an unknown answer)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or unknown: keep its files
    return True


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, busy: str) -> Iterator[None]:
    """Hold an exclusive OS lock on the file ``path`` for the duration, or raise MERError
    (``busy``, followed by the holder's process id) when another process holds it. The OS
    releases the lock when its holder dies, so a lock left by a killed process is taken over
    without any clean-up."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # Windows: lock the first byte instead
            import msvcrt

            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  (Windows only)
    except OSError:
        fh.seek(0)
        holder = fh.read().strip()
        fh.close()
        raise MERError(busy + (f" (process {holder})" if holder.isdigit() else "")) from None
    try:
        try:  # who holds it, for the message above (best effort: a full disk must not look like a held lock)
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
        except OSError:
            pass
        yield
    finally:
        fh.close()


def run_lock(folder: str | os.PathLike, what: str = "run") -> contextlib.AbstractContextManager[None]:
    """:func:`file_lock` on ``folder/.lock``: one process at a time uses a run/cache folder."""
    folder = Path(folder)
    return file_lock(folder / ".lock", f"{folder}: another process is using this {what} folder "
                                       f"(see {folder / '.lock'}); wait for it to finish or use another folder")


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


def csv_text(rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str]) -> str:
    """``rows`` as CSV text with a header of ``columns`` (other keys ignored, missing ones empty)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
