"""A country's run status (``reports/<cc>/status.json``) and the swap of a finished report into place.

``status.json`` keeps the last run (succeeded, failed or skipped, with its message) and the last
good run (whose report stays linked from the index page after a failure). Paths in it are
relative to the reports folder, so a copied project's index still links its own reports.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from clm_research.files import swap_folder, write_json
from clm_research.paths import reports_dir

__all__ = [
    "status_path",
    "read_status",
    "write_status",
    "report_ref",
    "promote",
    "keep_failed",
]


def status_path(country: str) -> Path:
    """``reports/<country>/status.json``."""
    return reports_dir() / country / "status.json"


def read_status(country: str) -> dict[str, Any]:
    """The country's status record (empty when there is none or it cannot be read)."""
    path = status_path(country)
    if path.is_file():
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def write_status(country: str, entry: dict[str, Any], *, good: bool) -> None:
    """Record ``entry`` as the last run (and as the last good run when ``good``)."""
    status = read_status(country)
    status["last_run"] = entry
    if good:
        status["last_good"] = entry
    write_json(status_path(country), status)


def report_ref(path: Path) -> str:
    """A report's path as stored in ``status.json``: relative to the reports folder."""
    try:
        return path.resolve().relative_to(reports_dir().resolve()).as_posix()
    except ValueError:
        return path.name


def promote(tmp: Path, final: Path) -> None:
    """Swap the finished temporary folder into place; the old report goes only afterwards.

    One atomic exchange where the system offers it (:func:`clm_research.files.swap_folder`).

    Raises
    ------
    OutputError
        When a rename fails (the previous report is then in place).
    """
    swap_folder(tmp, final, old_name=f".old-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:6]}")


def keep_failed(tmp: Path, country_dir: Path, period: str) -> None:
    """Keep a failed run's folder as ``.failed-<period>`` for inspection (replacing an older one)."""
    failed = country_dir / f".failed-{period}"
    if failed.exists():
        shutil.rmtree(failed, ignore_errors=True)
    try:
        os.rename(tmp, failed)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
