"""One run per country at a time: a lock file per country with its owner's process id.

``clm run`` and ``clm ingest`` (and ``clm validate``, which writes the same tables) hold
``data/.locks/<country>.lock`` while they work on a country. The lock is an advisory
``flock`` on that file, which the operating system releases when its owner dies, however it
dies (a ``SIGKILL``, a power cut): a stale lock of a dead process is simply taken over. The
file records the owner's process id, host, command and start time, so that a second run can
say who holds the lock. A second run waits up to ``wait`` seconds (``$CLM_LOCK_WAIT``,
default 0) and then refuses with a :class:`~clm_research.errors.LockError`.

Within one process the lock is re-entrant: ``clm run`` holds it for the whole run and the
ingestion it calls takes it again without blocking itself.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clm_research.errors import LockError
from clm_research.paths import data_dir, display_path

__all__ = ["lock_path", "country_lock", "lock_owner", "DEFAULT_WAIT"]

#: Seconds a second run waits for a country's lock before refusing (``$CLM_LOCK_WAIT``).
DEFAULT_WAIT = 0.0

#: Locks this process holds: path -> (file descriptor, depth).
_HELD: dict[str, tuple[int, int]] = {}


def lock_path(country: str) -> Path:
    """``data/.locks/<country>.lock``."""
    return data_dir() / ".locks" / f"{country}.lock"


def lock_owner(country: str) -> dict[str, Any]:
    """What the lock file says about its last owner (empty when none or unreadable)."""
    try:
        value = json.loads(lock_path(country).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _wait_default() -> float:
    try:
        return float(os.environ.get("CLM_LOCK_WAIT", DEFAULT_WAIT))
    except ValueError:
        return DEFAULT_WAIT


@contextmanager
def country_lock(country: str, *, wait: float | None = None, command: str = "") -> Iterator[Path]:
    """Hold the country's lock for the ``with`` block.

    Parameters
    ----------
    country
        Country code.
    wait
        Seconds to wait for a lock another live process holds (default ``$CLM_LOCK_WAIT``
        or 0: refuse at once).
    command
        What holds the lock (``"clm run"``), recorded for the message of a second run.

    Raises
    ------
    LockError
        When another live process still holds the lock after ``wait`` seconds.
    """
    import fcntl

    path = lock_path(country)
    key = str(path)
    if key in _HELD:  # re-entrant within a process
        fd, depth = _HELD[key]
        _HELD[key] = (fd, depth + 1)
        try:
            yield path
        finally:
            fd, depth = _HELD[key]
            _HELD[key] = (fd, depth - 1)
        return
    from clm_research.files import output_error

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise output_error(path, e) from None
    deadline = time.monotonic() + (_wait_default() if wait is None else wait)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    owner = lock_owner(country)
                    who = (
                        f"process {owner.get('pid')} on {owner.get('host')} "
                        f"({owner.get('command') or 'clm'}, started {owner.get('started')})"
                        if owner
                        else "another process"
                    )
                    raise LockError(
                        f"{country}: another run of this country is in progress: {who} holds "
                        f"{display_path(path)}. Wait for it to finish (or set CLM_LOCK_WAIT to "
                        "a number of seconds to wait); a lock of a process that died is taken "
                        "over automatically"
                    ) from None
                time.sleep(0.2)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command or " ".join(["clm", *sys.argv[1:2]]),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        data = (json.dumps(record, sort_keys=True) + "\n").encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError:  # a full disk: the lock holds without its record
            pass
        _HELD[key] = (fd, 1)
        try:
            yield path
        finally:
            _HELD.pop(key, None)
            # the record stays (it names the last owner); the lock goes with the descriptor
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        if key not in _HELD:
            os.close(fd)
