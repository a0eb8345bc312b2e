"""Writing files so that a reader sees the old version or the new one, never a mix.

Every file the project writes (processed tables, quarantine, manifests, report tables, status,
index pages) goes through here: the bytes go to a temporary file in the same folder, are flushed
and ``fsync``-ed, and the temporary file is renamed over the target (an atomic step on POSIX
file systems: the method SQLite documents for its crash safety). A failure of any kind — a full
disk, a read-only folder, a killed process — leaves the previous version in place and removes the
temporary file; the error is an :class:`~clm_research.errors.OutputError` naming the path and
what to do.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from clm_research.errors import OutputError
from clm_research.paths import display_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TMP_PREFIX",
    "sha256_file",
    "atomic_open",
    "write_bytes",
    "write_text",
    "write_json",
    "write_parquet",
    "write_csv",
    "output_error",
    "tmp_name",
    "pid_alive",
    "swap_folder",
    "clean_leftovers",
]

#: Prefix of every temporary file and folder the project creates next to its outputs.
TMP_PREFIX = ".clm-tmp-"

_CHUNK = 1 << 20


def tmp_name(stem: str = "") -> str:
    """A temporary name's prefix carrying this process' id: ``.clm-tmp-<pid>-<stem>``.

    The id lets the next run tell a leftover of a dead process (removed) from the work of a
    live one (left alone): :func:`clean_leftovers`.
    """
    return f"{TMP_PREFIX}{os.getpid()}-{stem}"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, as hex (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def output_error(path: str | Path, err: OSError, *, verb: str = "write") -> OutputError:
    """An :class:`OutputError` for a failed write: the path, the cause and what to do.

    ``verb`` names what failed (``"write"``; ``"access"`` for an error whose operation is not
    known, e.g. one caught by the command line).
    """
    shown = display_path(path)
    if err.errno == errno.ENOSPC:
        why = "the disk is full; free some space and run again"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = "the folder is read-only or not writable by this user; fix its permissions"
    elif err.errno == errno.EDQUOT:
        why = "the disk quota is exceeded; free some space and run again"
    else:
        why = err.strerror or str(err)
    if verb == "write":
        why += " (the previous version is unchanged)"
    return OutputError(f"cannot {verb} {shown}: {why}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", *, private: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` atomically.

    Parameters
    ----------
    path
        The target file; its folder is created when missing.
    mode
        ``"wb"`` or ``"w"`` (text, UTF-8).
    private
        Make the file readable and writable by its owner only (``0600``), e.g. for quarantined
        rows that may hold personal data typed into the wrong column.

    Raises
    ------
    OutputError
        When the folder cannot be created or the file cannot be written; the target is unchanged.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=tmp_name(), dir=target.parent)
    except OSError as e:
        raise output_error(target, e) from None
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o600 if private else 0o644)
        kwargs: dict[str, Any] = {"encoding": "utf-8", "newline": ""} if "b" not in mode else {}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise output_error(target, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes, *, private: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    with atomic_open(path, "wb", private=private) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, *, private: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; return the path."""
    return write_bytes(path, text.encode("utf-8"), private=private)


def _json_default(o: object) -> object:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, Path):
        return display_path(o)
    return str(o)


def write_json(path: str | Path, obj: Any, *, private: bool = False) -> Path:
    """Write ``obj`` as indented, key-sorted JSON (numpy scalars converted) atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default, ensure_ascii=False)
    return write_text(path, text + "\n", private=private)


def _via_tmp(path: str | Path, writer: Callable[[Path], None], private: bool) -> Path:
    """Let ``writer`` write a temporary path next to ``path``, then rename it into place."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=tmp_name(), dir=target.parent)
        os.close(fd)
    except OSError as e:
        raise output_error(target, e) from None
    tmp = Path(name)
    try:
        writer(tmp)
        os.chmod(tmp, 0o600 if private else 0o644)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise output_error(target, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def write_parquet(path: str | Path, frame: pd.DataFrame, *, private: bool = False) -> Path:
    """Write ``frame`` (without its index) as Parquet atomically; return the path."""
    return _via_tmp(path, lambda tmp: frame.to_parquet(tmp, index=False), private)


def write_csv(path: str | Path, frame: pd.DataFrame, *, float_format: str | None = "%.12g") -> Path:
    """Write ``frame`` (without its index) as CSV atomically; floats with 12 significant digits."""
    return _via_tmp(
        path, lambda tmp: frame.to_csv(tmp, index=False, float_format=float_format), False
    )


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns ``False`` where the system call is not available (another OS, an old C library,
    a file system without it); the caller then renames in two steps.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_folder(new: Path, final: Path, *, old_name: str | None = None) -> None:
    """Put the finished folder ``new`` in place of ``final``, which goes only afterwards.

    A set of files (a country's processed tables and their manifest, a report) is published as
    one: a reader sees the old set or the new one, never a mix. On Linux the two folders are
    exchanged in one atomic step (``renameat2`` with ``RENAME_EXCHANGE``), so ``final`` never
    disappears; elsewhere ``final`` is renamed aside (``old_name``, by default
    ``.clm-tmp-<pid>-old-<name>``) and ``new`` renamed to ``final``: a process killed between the
    two renames leaves no ``final`` but the old set beside it, and :func:`clean_leftovers` puts
    it back. ``new`` must be on the same file system as ``final``.

    Raises
    ------
    OutputError
        When a rename fails; ``final`` is then unchanged.
    """
    import shutil

    old = final.with_name(old_name or f"{tmp_name('old-')}{final.name}")
    try:
        if final.exists() and _exchange(new, final):
            os.rename(new, old)  # the previous set, now at ``new``, out of the way
        else:
            if final.exists():
                os.rename(final, old)
            try:
                os.rename(new, final)
            except OSError:
                if old.exists() and not final.exists():
                    os.rename(old, final)
                raise
    except OSError as e:
        raise output_error(final, e) from None
    _fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def _owner_pid(name: str) -> int | None:
    """The process id in a temporary name (``.clm-tmp-<pid>-…``, ``.tmp-<period>-<pid>-…``)."""
    import re

    m = re.match(rf"^{re.escape(TMP_PREFIX)}(\d+)-", name) or re.match(
        r"^\.(?:tmp|old)-.+?-(\d+)-[0-9a-f]{6}$", name
    )
    return int(m.group(1)) if m else None


def clean_leftovers(folder: Path) -> list[Path]:
    """Remove what interrupted runs left in ``folder`` (not recursively); return what went.

    Temporary files and folders whose owner process is dead are removed (those of a live
    process are its work in progress). A set renamed aside by :func:`swap_folder` whose
    replacement never arrived is put back first. Nothing else is touched.
    """
    import shutil

    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return removed
    for p in entries:
        pid = _owner_pid(p.name)
        if pid is None or pid_alive(pid):
            continue
        marker = f"{TMP_PREFIX}{pid}-old-"
        final = None
        if p.name.startswith(marker):
            final = p.with_name(p.name[len(marker) :])
        elif p.name.startswith(".old-"):  # a report folder renamed aside (run.status.promote)
            final = p.with_name(p.name[len(".old-") :].rsplit("-", 2)[0])
        if final is not None:
            if not final.exists():
                try:
                    os.rename(p, final)
                    continue
                except OSError:
                    pass
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            continue
    return removed
