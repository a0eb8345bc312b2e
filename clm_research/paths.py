"""Every path the project uses, anchored at the project root (never ``../data`` in a notebook).

The root is ``$CLM_PROJECT_ROOT`` when set, otherwise the nearest folder above the current
directory (or above this package) that holds ``pyproject.toml`` and ``params/``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "project_root",
    "params_dir",
    "framework_path",
    "countries_dir",
    "data_dir",
    "raw_dir",
    "processed_dir",
    "quarantine_dir",
    "rejected_dir",
    "reports_dir",
    "country_report_dir",
    "display_path",
    "display_text",
]


def _looks_like_root(p: Path) -> bool:
    return (p / "pyproject.toml").is_file() and (p / "params").is_dir()


def project_root() -> Path:
    """Return the project root folder."""
    env = os.environ.get("CLM_PROJECT_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for p in (start, *start.parents):
            if _looks_like_root(p):
                return p
    return Path.cwd().resolve()


def params_dir() -> Path:
    """``params/``: the framework, the countries and the mappings (all YAML)."""
    return project_root() / "params"


def framework_path() -> Path:
    """``params/framework.yaml``: the default measurement framework."""
    return params_dir() / "framework.yaml"


def countries_dir() -> Path:
    """``params/countries/``: one ``<code>.yaml`` per country, the list of countries."""
    return params_dir() / "countries"


def data_dir() -> Path:
    """``data/`` (``$CLM_DATA_DIR`` when set)."""
    env = os.environ.get("CLM_DATA_DIR")
    return Path(env).resolve() if env else project_root() / "data"


def raw_dir(country: str) -> Path:
    """``data/raw/<country>/``: exports as received; never modified."""
    return data_dir() / "raw" / country


def processed_dir(country: str) -> Path:
    """``data/processed/<country>/``: canonical Parquet tables written by ingestion."""
    return data_dir() / "processed" / country


def quarantine_dir(country: str) -> Path:
    """``data/quarantine/<country>/``: rows the gate refused, with the failed rules."""
    return data_dir() / "quarantine" / country


def rejected_dir(country: str) -> Path:
    """``data/rejected/<country>/``: candidates a failing data-quality gate refused to publish."""
    return data_dir() / "rejected" / country


def reports_dir() -> Path:
    """``reports/`` (``$CLM_REPORTS_DIR`` when set): everything a run produces."""
    env = os.environ.get("CLM_REPORTS_DIR")
    return Path(env).resolve() if env else project_root() / "reports"


def country_report_dir(country: str, period: str | None = None) -> Path:
    """``reports/<country>/[<period>/]``: one country's report folder."""
    base = reports_dir() / country
    return base / period if period else base


def display_path(path: str | Path) -> str:
    """``path`` as shown to people and written into artefacts: relative to the project root.

    Reports, status files and messages never carry the machine's absolute folder names (they
    reveal user names and break when a project folder is copied). A path in a data or reports
    folder placed outside the project (``$CLM_DATA_DIR``, ``$CLM_REPORTS_DIR``) is shown from
    that folder's name (``reports/XA/data_docs/index.html``); another path outside the project
    relative to the current folder when it is below it, else by its file name.
    """
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    resolved = p.resolve()
    try:
        return resolved.relative_to(project_root().resolve()).as_posix()
    except ValueError:
        pass
    for folder in (data_dir(), reports_dir()):
        try:
            return (Path(folder.name) / resolved.relative_to(folder.resolve())).as_posix()
        except ValueError:
            continue
    cwd = Path.cwd().resolve()
    if len(cwd.parts) > 1:  # never relative to the file-system root: that is the absolute path
        try:
            return resolved.relative_to(cwd).as_posix()
        except ValueError:
            pass
    return p.name


def display_text(text: str) -> str:
    """``text`` (an error message, a log line) with the project's absolute folders made relative.

    Every occurrence of the project root, the data folder or the reports folder (as configured
    and as resolved) is replaced by what :func:`display_path` shows for it, and the folder of the
    installed package by nothing (``clm_research/run/country.py``), so a message such as
    ``/home/ana/clm/data/raw/XA/interviews.csv: the file is empty`` is written into status files,
    manifests and reports as ``data/raw/XA/interviews.csv: the file is empty``.

    >>> import os
    >>> os.environ["CLM_DATA_DIR"] = "/srv/clm-data"
    >>> display_text("/srv/clm-data/raw/XA/a.csv: the file is empty")
    'clm-data/raw/XA/a.csv: the file is empty'
    >>> del os.environ["CLM_DATA_DIR"]
    """
    bases: dict[str, str] = {}
    package_parent = Path(__file__).resolve().parents[1]  # tracebacks: clm_research/run/…
    for base in (project_root(), data_dir(), reports_dir(), package_parent):
        shown = "" if base == package_parent else display_path(base)
        for form in {str(base), str(base.resolve())}:
            if len(Path(form).parts) > 1:  # never the file-system root itself
                bases[form] = "" if shown == "." else shown
    for form in sorted(bases, key=len, reverse=True):  # data/ inside the project: its own form
        shown = bases[form]
        text = text.replace(form + os.sep, f"{shown}/" if shown else "")
        text = text.replace(form, shown or ".")
    return text
