"""``reports/index.html``: every country with its last run's status and headline verdicts.

For a country that collects only some tables, the page lists the chapters that ran and those
whose data are not collected there (``chapters`` in ``status.json``).

Built from each country's ``reports/<cc>/status.json`` (written by the runner after every
run), so a failed run still links the last good report. Static HTML, no scripts.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from clm_research.config.country import list_countries, load_country
from clm_research.files import write_text
from clm_research.paths import reports_dir

__all__ = ["collect_status", "render_index", "write_index"]

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 24px auto; color: #222; }
h1 { color: #1f3a5f; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 6px 10px; text-align: left; vertical-align: top; }
th { background: #f0f3f7; }
.status-succeeded { color: #1a7f37; font-weight: bold; }
.status-skipped { color: #57606a; font-weight: bold; }
.status-failed { color: #cf222e; font-weight: bold; }
.status-never { color: #57606a; }
.msg { font-size: 0.9em; white-space: pre-wrap; }
.chapters { font-size: 0.85em; color: #57606a; }
"""


def _chapters_html(chapters: dict[str, str]) -> str:
    """Which chapters ran and which were not collected (empty when every chapter ran)."""
    from clm_research.report.chapters import CHAPTER_TITLES

    if not chapters:
        return ""
    ran = [CHAPTER_TITLES.get(c, c) for c, label in chapters.items() if label == "ran"]
    absent = [CHAPTER_TITLES.get(c, c) for c, label in chapters.items() if label != "ran"]
    if not absent:
        return f'<div class="chapters">All {len(ran)} chapters ran.</div>'
    return (
        f'<div class="chapters">Chapters run: {html.escape(", ".join(ran))}. '
        f"Not collected in this country: {html.escape(', '.join(absent))}.</div>"
    )


def _rel(path: str | None, base: Path) -> str | None:
    """The link to a report stored in ``status.json`` (relative to the reports folder)."""
    if not path or Path(path).is_absolute() or ".." in Path(path).parts:
        return None
    return path if (base / path).is_file() else None


def _pdf_of(link: str | None, base: Path) -> str | None:
    """The ``report.pdf`` beside a linked ``report.html`` (when it was written)."""
    if not link:
        return None
    pdf = Path(link).with_suffix(".pdf").as_posix()
    return pdf if (base / pdf).is_file() else None


def collect_status(base: Path | None = None) -> list[dict[str, Any]]:
    """One record per country (known from params or with a report folder), sorted by code."""
    base = base or reports_dir()
    codes = set(list_countries())
    if base.is_dir():
        codes |= {p.parent.name for p in base.glob("*/status.json")}
    rows = []
    for code in sorted(codes):
        status: dict[str, Any] = {}
        path = base / code / "status.json"
        if path.is_file():
            try:
                status = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                status = {}
        try:
            name = load_country(code).name
        except Exception:
            name = code
        rows.append({"code": code, "name": name, **status})
    return rows


def render_index(rows: list[dict[str, Any]], base: Path, synthesis: str | None = None) -> str:
    """The index page as an HTML string."""
    esc = html.escape
    body = []
    for r in rows:
        last = r.get("last_run") or {}
        good = r.get("last_good") or {}
        status = last.get("status", "never")
        link = _rel(good.get("report"), base)
        report = (
            f'<a href="{esc(link)}">{esc(str(good.get("period")))} report</a>'
            if link
            else "no report yet"
        )
        pdf = _pdf_of(link, base)
        if pdf:
            report += f' · <a href="{esc(pdf)}">PDF</a>'
        message = good.get("headline", "") if status != "failed" else last.get("message", "")
        when = last.get("finished", "")
        body.append(
            "<tr>"
            f"<td><b>{esc(r['code'])}</b><br>{esc(r['name'])}</td>"
            f'<td class="status-{esc(status)}">{esc(status)}</td>'
            f"<td>{esc(str(last.get('period') or ''))}</td>"
            f"<td>{report}</td>"
            f'<td class="msg">{esc(message or "")}'
            f"{_chapters_html(good.get('chapters') or {}) if link else ''}</td>"
            f"<td>{esc(when)}</td>"
            "</tr>"
        )
    syn = ""
    if synthesis:
        pdf = _pdf_of(synthesis, base)
        pdf_link = f' (<a href="{esc(pdf)}">PDF</a>)' if pdf else ""
        syn = (
            f'<p>Multi-country synthesis: <a href="{esc(synthesis)}">pooled effects and forest '
            f"plots</a>{pdf_link}</p>"
        )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>CLM evaluation reports</title>"
        f"<style>{_CSS}</style></head><body>"
        "<h1>Community-led monitoring: evaluation reports</h1>"
        "<p>One report per country and reporting round, as a web page and as a PDF (A4). Status "
        "is that of the last run; a failed run never replaces the last good report, which "
        "stays linked.</p>"
        f"{syn}"
        "<table><thead><tr><th>Country</th><th>Last run</th><th>Round</th><th>Report</th>"
        "<th>Headline / error</th><th>Finished (UTC)</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></body></html>\n"
    )


def write_index(base: Path | None = None) -> Path:
    """Write ``reports/index.html`` and return its path."""
    base = base or reports_dir()
    base.mkdir(parents=True, exist_ok=True)
    synthesis = None
    syn_dir = base / "synthesis"
    if syn_dir.is_dir():
        reports = sorted(
            p for p in syn_dir.glob("*/report.html") if not p.parent.name.startswith(".")
        )
        if reports:
            synthesis = reports[-1].relative_to(base).as_posix()
    page = render_index(collect_status(base), base, synthesis)
    return write_text(base / "index.html", page)
