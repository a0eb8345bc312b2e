"""Provenance of a report: parameters, input file hashes, package versions, git commit, times.

Every report carries a provenance block so a reader can tell exactly which data, parameters
and code produced it, and :func:`run_key` turns the same facts into one hash that
``clm run --changed-only`` compares with the last successful run.
"""

from __future__ import annotations

import hashlib
import html
import json
import platform
import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from clm_research.files import sha256_file
from clm_research.paths import display_path, params_dir, project_root, raw_dir

__all__ = [
    "PACKAGES",
    "hash_files",
    "input_files",
    "input_hashes",
    "package_versions",
    "git_commit",
    "run_key",
    "utc_now",
    "provenance_markdown",
    "disclosure_html",
    "provenance_html",
]

#: Packages whose versions are recorded in every report (the analysis stack).
PACKAGES: tuple[str, ...] = (
    "clm-research",
    "python",
    "pandas",
    "numpy",
    "scipy",
    "statsmodels",
    "great-expectations",
    "geopandas",
    "matplotlib",
    "seaborn",
    "papermill",
    "nbconvert",
    "pydantic",
    "pyarrow",
)


def hash_files(paths: Iterable[Path]) -> dict[str, str]:
    """Map each existing file (shown relative to the project) to its SHA-256, sorted by path."""
    out = {display_path(p): sha256_file(p) for p in paths if p.is_file()}
    return dict(sorted(out.items()))


def input_files(country: str, notebooks: Iterable[Path] = ()) -> list[Path]:
    """The files a country's report depends on.

    The raw exports in ``data/raw/<country>/`` (every file, recursively), the country's
    parameters, its pre-registered analysis plan (when it names one), the framework, and the
    notebooks that will be run.
    """
    files: list[Path] = []
    raw = raw_dir(country)
    if raw.is_dir():
        files += sorted(p for p in raw.rglob("*") if p.is_file())
    country_file = params_dir() / "countries" / f"{country}.yaml"
    extras = [country_file, params_dir() / "framework.yaml"]
    if country_file.is_file():
        from clm_research.config.country import load_country
        from clm_research.errors import ParamsError

        try:
            plan = load_country(country, country_file.parent).plan
        except ParamsError:
            plan = None  # a broken params file is reported by the run's own validation
        if plan:
            extras.append(project_root() / plan)
    for extra in extras:
        if extra.is_file():
            files.append(extra)
    files += sorted(Path(p) for p in notebooks)
    return files


def input_hashes(country: str, notebooks: Iterable[Path] = ()) -> dict[str, str]:
    """SHA-256 of every input file of a country's report (see :func:`input_files`)."""
    return hash_files(input_files(country, notebooks))


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed version of each package (``"not installed"`` when absent)."""
    out: dict[str, str] = {}
    for name in packages:
        if name == "python":
            out[name] = platform.python_version()
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(root: Path | None = None) -> str:
    """The project's git commit (``+dirty`` when the work tree has changes), or ``"unknown"``."""
    root = root or project_root()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return "unknown (no commit yet)"
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = "+dirty" if status.returncode == 0 and status.stdout.strip() else ""
        return commit.stdout.strip() + dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"


def run_key(
    inputs: Mapping[str, str], parameters: Mapping[str, Any], versions: Mapping[str, str]
) -> str:
    """One hash of the inputs, parameters and code versions: equal keys, equal reports."""
    blob = json.dumps(
        {"inputs": dict(inputs), "parameters": parameters, "versions": dict(versions)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def utc_now() -> str:
    """Current time, UTC, ISO 8601 to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def provenance_markdown(prov: Mapping[str, Any]) -> str:
    """Render a provenance record as Markdown (appended to every report)."""
    lines = [
        "## Provenance",
        "",
        "How this report was produced. Identical inputs and parameters give identical tables.",
        "",
        f"- **Country / period:** {prov.get('country')} / {prov.get('period')}",
        f"- **Started / finished (UTC):** {prov.get('started')} / {prov.get('finished')}",
        f"- **Git commit:** `{prov.get('git_commit')}`",
        f"- **Run key:** `{prov.get('run_key')}`",
        "",
        "**Parameters**",
        "",
        "```yaml",
        *(
            f"{k}: {json.dumps(v, default=str)}"
            for k, v in sorted(prov.get("parameters", {}).items())
        ),
        "```",
        "",
        "**Input files (SHA-256)**",
        "",
        "| file | sha256 |",
        "|---|---|",
        *(f"| `{k}` | `{v}` |" for k, v in prov.get("inputs", {}).items()),
        "",
        "**Package versions**",
        "",
        "| package | version |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in prov.get("versions", {}).items()),
        "",
    ]
    return "\n".join(lines)


def disclosure_html(audit: Mapping[str, Any] | None) -> str:
    """The disclosure audit's summary as an HTML block (empty when there is none)."""
    if not audit:
        return ""
    esc = html.escape
    if "suppressed_primary" not in audit:
        return f"<h3>Disclosure control</h3><p>{esc(str(audit.get('status', '')))}</p>"
    return (
        "<h3>Disclosure control</h3>"
        f"<p>Small cells are suppressed in every published table and the tables were audited "
        f"together by linear programming: <b>{esc(str(audit.get('status')))}</b> for "
        f"{len(audit.get('tables', []))} tables ({audit.get('rows', 0):,} cells). Suppressed: "
        f"{audit.get('suppressed_primary', 0):,} cells below the minimum cell size, "
        f"{audit.get('suppressed_secondary', 0):,} to protect them within their tables and "
        f"{audit.get('suppressed_complementary', 0):,} added by the audit. Audited: "
        f"{audit.get('audited_quantities', 0):,} quantities of the small cells (each must stay "
        f"uncertain by the protection rule) and "
        f"{audit.get('audited_other_suppressed', 0):,} of other suppressed cells at 0% or 100% "
        f"(never to be shown so). Narrowest interval "
        f"an attacker holding every table can derive: "
        f"{esc(str(audit.get('narrowest_interval') or 'none'))}. Linear programmes: "
        f"{audit.get('lp_variables', 0):,} variables, {audit.get('lp_constraints', 0):,} "
        f"constraints in {audit.get('lp_blocks', 0):,} blocks, solved in "
        f"{audit.get('lp_seconds', 0)} s.</p>"
    )


def provenance_html(prov: Mapping[str, Any]) -> str:
    """Render a provenance record as a self-contained HTML ``<section>``."""
    esc = html.escape

    def rows(d: Mapping[str, Any]) -> str:
        return "".join(
            f"<tr><td><code>{esc(str(k))}</code></td><td><code>{esc(str(v))}</code></td></tr>"
            for k, v in d.items()
        )

    params = {k: json.dumps(v, default=str) for k, v in sorted(prov.get("parameters", {}).items())}
    return (
        '<section class="provenance" id="provenance"><h2>Provenance</h2>'
        "<p>How this report was produced. Identical inputs and parameters give identical tables.</p>"
        "<ul>"
        f"<li><b>Country / period:</b> {esc(str(prov.get('country')))} / {esc(str(prov.get('period')))}</li>"
        f"<li><b>Started / finished (UTC):</b> {esc(str(prov.get('started')))} / "
        f"{esc(str(prov.get('finished')))}</li>"
        f"<li><b>Git commit:</b> <code>{esc(str(prov.get('git_commit')))}</code></li>"
        f"<li><b>Run key:</b> <code>{esc(str(prov.get('run_key')))}</code></li></ul>"
        f"{disclosure_html(prov.get('disclosure'))}"
        f"<h3>Parameters</h3><table>{rows(params)}</table>"
        f"<h3>Input files (SHA-256)</h3><table>{rows(prov.get('inputs', {}))}</table>"
        f"<h3>Package versions</h3><table>{rows(prov.get('versions', {}))}</table>"
        "</section>"
    )
