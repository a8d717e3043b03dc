"""Small file helpers shared by every writer: atomic writes so nothing is left half-written.

Pattern: write to a temporary file in the destination folder, flush it to disk, then
``os.replace`` it over the target. An interruption (Ctrl-C, kill -9, a full disk) leaves
either the old file or the new one, never a truncated mix; the temporary file is removed
on any exception. A full disk is reported as ``disk full: PATH`` (an :class:`MERError`).
Only regular files are replaced: a symlink is followed, a character device or a FIFO
(``-o /dev/null``) is written in place, anything else is refused. :func:`refuse_collisions`
keeps every command's outputs off its own inputs (compared as files, not as strings).

Temporary names carry the writer's process id and a random token (``.NAME.mer-PID-TOKEN.ext``),
and every writer records the full name in its process's journal (:func:`journal_dir`, one file
per host and process) *before* it creates the file, and marks it done once it is renamed or
removed. :func:`clean_stale_temps` removes only what a journal proves mer made: names recorded
by a process of this host that is no longer running, still unfinished, still a regular file.
A user's file that merely looks like a temporary name is never touched, nor is another
machine's temporary on a shared folder. :func:`run_lock` keeps two processes out of one run folder.
:class:`FileChanged` is raised when the file a writer was replacing changed on disk meanwhile.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import socket
import stat
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import MERError, UsageError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None,
                finish: Callable[[Path], None] | None = None,
                unchanged_since: os.stat_result | None = None) -> Iterator[Path]:
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
    ``unchanged_since``: the ``os.stat`` of ``target`` taken before its content was read; when
    the file on disk is no longer that one (size, modification or change time, inode), another
    program wrote it meanwhile: the copy is discarded, :class:`FileChanged` is raised and
    ``target`` keeps the other program's content.
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
    tmp_path = _new_temp(target, suffix if suffix is not None else target.suffix[:20])
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # made 0600 (and writers may recreate the file)
        with open(tmp_path, "rb+") as fh:  # make the data durable before the rename
            os.fsync(fh.fileno())
        if finish is not None:
            finish(tmp_path)
        if unchanged_since is not None and not same_version(unchanged_since, target):
            raise FileChanged(f"{target}: another program changed it while mer was writing its copy; "
                              "mer left the other program's version in place")
        os.replace(tmp_path, target)
        _JOURNAL.done(tmp_path)
    except OSError as exc:
        _discard(tmp_path)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EROFS):
            raise _os_error(exc, target) from None
        raise
    except BaseException:
        _discard(tmp_path)
        raise


class FileChanged(MERError):
    """The file a writer was about to replace is no longer the one it read: another program
    wrote it meanwhile. Nothing was replaced; the caller may read it again and redo its work."""


def same_version(before: os.stat_result, path: str | os.PathLike) -> bool:
    """Whether ``path`` is still the file whose ``os.stat`` was ``before``: same device and inode,
    size, modification and status-change times (a save by another program changes at least one)."""
    try:
        now = os.stat(path)
    except OSError:
        return False
    return ((now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns, now.st_ctime_ns)
            == (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns))


def _new_temp(target: Path, suffix: str) -> Path:
    """Create the empty temporary file for ``target``, its name journalled before it exists."""
    name = target.name[:120]  # the temporary name stays under the 255-byte limit of file names
    for _ in range(100):
        tmp = target.parent / f".{name}.mer-{os.getpid()}-{secrets.token_hex(6)}{suffix}"
        _JOURNAL.record(tmp)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:
            _JOURNAL.done(tmp)  # not ours: another name
            continue
        except OSError as exc:
            _JOURNAL.done(tmp)
            raise _os_error(exc, target) from None
        os.close(fd)
        return tmp
    raise MERError(f"{target}: no free temporary name beside it; remove the .{name}.mer-* files there")


def _discard(tmp: Path) -> None:
    """Remove a temporary file of this process (it may already be gone) and close its journal entry."""
    with contextlib.suppress(OSError):
        tmp.unlink()
    if not tmp.exists():
        _JOURNAL.done(tmp)


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


def cache_root() -> Path:
    """mer's own cache folder: ``$MER_CACHE_DIR``, else ``~/.cache/mer`` (features, embeddings,
    the temporaries' journals)."""
    return Path(os.environ.get("MER_CACHE_DIR") or Path.home() / ".cache" / "mer")


def file_sha1(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes, read 1 MiB at a time: the one place mer hashes a file (audio
    content for the caches and the library, weights for the models)."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def journal_dir() -> Path:
    """Where writers journal their temporary files: ``$MER_CACHE_DIR/temps``, else
    ``~/.cache/mer/temps``. One file per process, named ``HOST.PID.TOKEN.journal``."""
    return cache_root() / "temps"


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname() or "localhost")[:64]


class _Journal:
    """This process's journal: ``+PATH`` before a temporary file is created, ``-PATH`` once it
    was renamed or removed. Unwritable (a read-only home): nothing is journalled, so what a
    killed writer leaves is never removed automatically, and never wrongly."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = -1
        self.token = ""
        self.open: set[str] = set()

    def path(self) -> Path:
        if self.pid != os.getpid():  # a forked child keeps its own journal
            self.pid, self.token, self.open = os.getpid(), secrets.token_hex(4), set()
        return journal_dir() / f"{_host()}.{self.pid}.{self.token}.journal"

    def _append(self, line: str) -> None:
        path = self.path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError:
            pass

    def record(self, tmp: Path) -> None:
        with self.lock:
            self._append("+" + os.path.abspath(tmp))
            self.open.add(os.path.abspath(tmp))

    def done(self, tmp: Path) -> None:
        with self.lock:
            path = self.path()
            self.open.discard(os.path.abspath(tmp))
            if not self.open:  # nothing of this process in flight: its journal has nothing to prove
                with contextlib.suppress(OSError):
                    path.unlink()
            else:
                self._append("-" + os.path.abspath(tmp))


_JOURNAL = _Journal()
_JOURNAL_NAME = re.compile(r"^(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]+)\.journal$")


def _unfinished(journal: Path) -> list[str]:
    """The paths ``journal`` recorded and never marked done, in order."""
    pending: dict[str, None] = {}
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in journal.read_text(encoding="utf-8").splitlines():
            if line[:1] == "+":
                pending[line[1:]] = None
            elif line[:1] == "-":
                pending.pop(line[1:], None)
    return list(pending)


def clean_stale_temps(folder: str | os.PathLike, recursive: bool = False, dry_run: bool = False,
                      report: bool = True) -> list[Path]:
    """Remove the temporary files that mer writers killed before they finished left in ``folder``
    (and below it, with ``recursive``); return them. Only names a journal of a dead process of
    this host recorded are removed, each still a regular file (not a link). ``dry_run``: remove
    nothing, return what would be removed. ``report``: say each removal on stderr."""
    folder = Path(os.path.abspath(folder))
    jdir = journal_dir()
    if not folder.is_dir() or not jdir.is_dir():
        return []
    removed: list[Path] = []
    host = _host()
    for journal in sorted(jdir.iterdir()):
        m = _JOURNAL_NAME.match(journal.name)
        if m is None or m["host"] != host or alive(int(m["pid"])):
            continue
        pending = _unfinished(journal)
        kept = []
        for name in pending:
            p = Path(name)
            inside = p.parent == folder or (recursive and folder in p.parents)
            if not inside or not p.name.startswith(".") or f".mer-{m['pid']}-" not in p.name:
                kept.append(name)
                continue
            try:
                if not stat.S_ISREG(os.lstat(p).st_mode):
                    continue  # something else took the name: not ours to remove
            except OSError:
                continue  # already gone
            if dry_run:
                kept.append(name)
                removed.append(p)
                continue
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                kept.append(name)
                continue
            if report:
                print(f"mer: removed {p}: a temporary file of a mer run (process {m['pid']}) that was killed",
                      file=sys.stderr)
        if dry_run or kept == pending:
            continue
        with contextlib.suppress(OSError):
            if kept:
                _rewrite(journal, "".join(f"+{k}\n" for k in kept))
            else:
                journal.unlink()
    return removed


def _rewrite(target: Path, text: str) -> None:
    """Replace ``target`` with ``text`` through a temporary name (no journal: for mer's own state)."""
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)


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
        if sys.platform == "win32":  # no fcntl: lock the first byte instead
            import msvcrt

            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
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
