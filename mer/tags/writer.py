"""Writing mer's fields into a user's file safely: which files are left alone (:func:`check`),
and the copy that replaces the original only while it is still the version that was read."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Callable

from ..errors import AudioError
from ..io import atomic_path, special_kind
from .fields import Changes, Emotion, TagSkip, plan
from .formats import _current, _open

def check(path: str | os.PathLike, roots: list[str] | None = None) -> Path:
    """The real path ``mer tag`` would write for ``path``, or :class:`TagSkip` saying why it
    leaves the file alone. ``roots``: resolved paths the run was given (files or folders); a
    symlink whose target lies outside them is skipped, so nothing outside them is written."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file; check the path")
    real = Path(os.path.realpath(path))
    kind = special_kind(real)
    if kind is not None:
        raise TagSkip(f"{path}: is a {kind}, not a regular file; mer tags files only")
    if roots is not None and not any(str(real) == r or str(real).startswith(r.rstrip(os.sep) + os.sep)
                                     for r in roots):
        raise TagSkip(f"{path}: links to {real}, outside the paths given; mer writes only inside them")
    st = real.stat()
    if st.st_nlink > 1:
        raise TagSkip(f"{path}: has {st.st_nlink} hard links; replacing it would leave the others untagged")
    if _immutable(real):
        raise TagSkip(f"{path}: immutable (its i attribute is set); mer leaves it as it is (chattr -i to tag it)")
    if _read_only_mount(real):
        raise TagSkip(f"{path}: on a read-only file system; mer leaves it as it is (remount it read-write to tag it)")
    if not os.access(real, os.W_OK) or not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise TagSkip(f"{path}: read-only (mode {stat.filemode(st.st_mode)}); mer leaves it as it is "
                      "(chmod u+w to tag it)")
    if not os.access(real.parent, os.W_OK | os.X_OK):
        raise TagSkip(f"{path}: its folder is read-only; mer writes the tagged copy beside the file and renames it")
    return real


_FS_IOC_GETFLAGS = 0x80086601  # Linux: the inode flags lsattr shows
_FS_IMMUTABLE_FL, _FS_APPEND_FL = 0x10, 0x20


def _immutable(path: Path) -> bool:
    """Whether the file carries Linux's immutable or append-only attribute (``chattr +i``/``+a``):
    nobody, root included, may replace it."""
    flags = getattr(os.stat(path), "st_flags", None)  # BSD/macOS
    if flags is not None:
        return bool(flags & (getattr(stat, "UF_IMMUTABLE", 0) | getattr(stat, "SF_IMMUTABLE", 0)))
    try:
        import array
        import fcntl

        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            buf = array.array("l", [0])
            fcntl.ioctl(fd, _FS_IOC_GETFLAGS, buf)
        finally:
            os.close(fd)
    except (ImportError, OSError):
        return False
    return bool(buf[0] & (_FS_IMMUTABLE_FL | _FS_APPEND_FL))


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1))
    except (OSError, AttributeError):
        return False


def write(path: str | os.PathLike, emotion: Emotion | None, touch: bool = False, dry_run: bool = False,
          roots: list[str] | None = None) -> Changes:
    """Make the file's mer tags say ``emotion`` (None: take them out) and return the changes.

    Parameters
    ----------
    path : str or os.PathLike
        The audio file (a symlink is followed; its target is written).
    emotion : Emotion or None
        What to write; None removes mer's fields and its MOOD value.
    touch : bool
        Let the modification time be now (default: the file keeps its own).
    dry_run : bool
        Only return the changes; write nothing.
    roots : list of str, optional
        Resolved paths the run was given; nothing outside them is written (:func:`check`).

    Returns
    -------
    dict
        ``{field: new values or None}``; empty when the file already said it (nothing written).

    Raises
    ------
    TagSkip
        For files mer leaves alone (:func:`check`), including one that another program kept
        changing while mer wrote its copy (tried twice; the other program's version is kept).
    MERError
        When the tags cannot be read or written.
    """
    from ..io import FileChanged

    for attempt in (1, 2):
        try:
            return _write_once(path, emotion, touch, dry_run, roots)
        except FileChanged:
            if attempt == 2:
                raise TagSkip(f"{path}: another program kept changing it while mer was tagging it; mer left "
                              "that program's version in place (run mer tag on it again later)") from None
    raise AssertionError("unreachable")


def _write_once(path: str | os.PathLike, emotion: Emotion | None, touch: bool, dry_run: bool,
                roots: list[str] | None) -> Changes:
    """One read-copy-rename pass of :func:`write`; :class:`~mer.io.FileChanged` when the file
    changed on disk after it was read (nothing replaced)."""
    real = check(path, roots)
    before = real.stat()  # the version read below; the copy replaces only that version
    audio, family = _open(real)
    changes = plan(_current(audio, family), emotion, family.mood_last)
    if not changes or dry_run:
        return changes
    import mutagen

    with atomic_path(real, finish=_keep(real, before, touch), unchanged_since=before) as tmp:
        shutil.copyfile(real, tmp)
        copy, _ = _open(tmp)
        for key, values in changes.items():
            family.put(copy.tags, key, values)
        try:
            family.save(copy)
        except mutagen.MutagenError as exc:
            raise AudioError(f"{real}: its tags cannot be written ({exc}); the file was left as it was") from None
    return changes


def _keep(real: Path, before: os.stat_result, touch: bool) -> Callable[[Path], None]:
    """What the tagged copy gets before it replaces ``real``: its mode, times (now, if
    ``touch``) and extended attributes, and its owner; a file whose owner this user cannot
    give the copy is skipped rather than handed to someone else."""
    def finish(tmp: Path) -> None:
        if (before.st_uid, before.st_gid) != (os.stat(tmp).st_uid, os.stat(tmp).st_gid):
            try:
                os.chown(tmp, before.st_uid, before.st_gid)
            except PermissionError:
                raise TagSkip(f"{real}: belongs to another user or group (uid {before.st_uid}, gid "
                              f"{before.st_gid}); tagging it would change its owner") from None
        shutil.copystat(real, tmp)  # mode, atime/mtime, xattrs
        if touch:
            os.utime(tmp)
    return finish
