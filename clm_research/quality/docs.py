"""The gate's expectation results as one self-contained HTML page (the project's Data Docs).

Great Expectations' own Data Docs load Bootstrap, jQuery, Vega and fonts from CDNs and a logo
from a storage bucket: offline they are a blank page, and every open would tell those hosts
that a report was read. This page shows the same results (every expectation of every table,
whether it passed, and how many rows failed it) with inline styles only: it works with no
network and refers to no external host. Failing values are not shown (they may be personal):
the quarantine files hold the failing rows with their rules.

The folder keeps a bounded history: each validation's records in ``history/<time>.json`` (the
last :data:`HISTORY` of them, ``$CLM_DATA_DOCS_HISTORY`` to change it), listed on the page with
their pass/fail counts; older ones are removed, so repeated runs do not grow it without bound.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clm_research.files import write_json, write_text

__all__ = ["HISTORY", "expectation_record", "render_data_docs", "write_data_docs"]

#: Validation runs kept in a Data Docs folder's history (``$CLM_DATA_DOCS_HISTORY``).
HISTORY = 10


def _history_default() -> int:
    try:
        return max(1, int(os.environ.get("CLM_DATA_DOCS_HISTORY", HISTORY)))
    except ValueError:
        return HISTORY


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1b1f24;
  max-width: 1060px; margin: 16px auto; padding: 0 16px; font-size: 15px; }
h1 { color: #1f3a5f; font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.4em; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; margin: 6px 0 14px 0; }
th, td { border-bottom: 1px solid #d8dee4; padding: 4px 7px; text-align: left; vertical-align: top;
  overflow-wrap: break-word; }
th.num { text-align: right; }
td.result { white-space: nowrap; }
th { background: #eef2f6; }
td.num { text-align: right; white-space: nowrap; }
.pass { color: #005a8c; font-weight: 600; } .fail { color: #7a1a12; font-weight: 600;
  background: #f9dcd7; }
.summary td, .summary th { font-size: 14px; }
nav a { margin-right: 12px; }
@page { size: A4; margin: 14mm 12mm; }
"""


def _words(expectation_type: str) -> str:
    """``ExpectColumnValuesToNotBeNull`` → ``Column values to not be null``."""
    name = re.sub(r"^expect_?", "", expectation_type, flags=re.IGNORECASE)
    spaced = re.sub(r"(?<!^)(?=[A-Z])", " ", name).replace("_", " ").strip().lower()
    return spaced[:1].upper() + spaced[1:]


def _kwargs_text(kwargs: Mapping[str, Any]) -> str:
    parts = []
    for k, v in kwargs.items():
        if k in ("column", "batch_id", "result_format", "catch_exceptions", "include_config"):
            continue
        if isinstance(v, list | tuple | set):
            v = list(v)
            text = ", ".join(map(str, v)) if len(v) <= 8 else f"one of {len(v):,} values"
        else:
            text = str(v)
        parts.append(f"{k.replace('_', ' ')}: {text}")
    return "; ".join(parts)


def expectation_record(table: str, result: Any) -> dict[str, Any]:
    """One expectation's result as a plain record (no failing values: they may be personal)."""
    cfg = result.expectation_config
    kwargs = dict(cfg.kwargs or {})
    res = result.result or {}
    column = kwargs.get("column") or ", ".join(
        str(c) for c in (kwargs.get("column_list") or kwargs.get("column_A") or [])
    )
    return {
        "table": table,
        "expectation": str(cfg.type),
        "rule": str((cfg.meta or {}).get("rule", "")),
        "column": str(column or ""),
        "arguments": _kwargs_text(kwargs),
        "success": bool(result.success),
        "element_count": res.get("element_count"),
        "unexpected_count": res.get("unexpected_count"),
        "unexpected_percent": res.get("unexpected_percent"),
    }


def _history_html(history: Sequence[Mapping[str, Any]]) -> str:
    if not history:
        return ""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(str(h.get('validated', '')))}</td><td>{esc(str(h.get('created', '')))}</td>"
        f'<td class="num">{int(h.get("expectations", 0)):,}</td>'
        f'<td class="num">{int(h.get("failed", 0)):,}</td></tr>'
        for h in history
    )
    return (
        f"<h2 id='history'>Earlier validations (the last {len(history)})</h2>"
        "<table><thead><tr><th>Validated (UTC)</th><th>Data as of</th>"
        '<th class="num">Expectations</th><th class="num">Failed</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def render_data_docs(
    country: str,
    records: Sequence[Mapping[str, Any]],
    *,
    created: str = "",
    history: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The page: a summary per table, then every expectation of each table."""
    esc = html.escape
    tables = list(dict.fromkeys(r["table"] for r in records))
    summary = []
    for t in tables:
        rows = [r for r in records if r["table"] == t]
        failed = sum(not r["success"] for r in rows)
        cls = "fail" if failed else "pass"
        summary.append(
            f'<tr><td><a href="#t-{esc(t)}">{esc(t)}</a></td><td class="num">{len(rows)}</td>'
            f'<td class="num">{len(rows) - failed}</td><td class="num {cls}">{failed}</td></tr>'
        )
    sections = []
    for t in tables:
        body = []
        for r in (r for r in records if r["table"] == t):
            ok = r["success"]
            n, u, pct = (
                r.get("element_count"),
                r.get("unexpected_count"),
                r.get("unexpected_percent"),
            )
            failed_rows = "" if u is None else f"{int(u):,}"
            if pct is not None and u:
                failed_rows += f" ({float(pct):.2f}%)"
            body.append(
                "<tr>"
                f"<td>{esc(_words(r['expectation']))}</td>"
                f"<td>{esc(r['column'])}</td>"
                f"<td>{esc(r['arguments'])}</td>"
                f"<td>{esc(r['rule'])}</td>"
                f'<td class="num">{"" if n is None else f"{int(n):,}"}</td>'
                f'<td class="num">{esc(failed_rows)}</td>'
                f'<td class="result {"pass" if ok else "fail"}">'
                f"{'✓ passed' if ok else '✗ failed'}</td>"
                "</tr>"
            )
        sections.append(
            f'<h2 id="t-{esc(t)}">{esc(t)}</h2><table><thead><tr><th>Expectation</th>'
            '<th>Column</th><th>Arguments</th><th>Gate rule</th><th class="num">Rows checked</th>'
            '<th class="num">Rows failing</th><th>Result</th></tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )
    when = f" (data as of {esc(created)})" if created else ""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(country)}: expectation results</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(country)}: data-quality expectation results</h1>"
        f"<p>Great Expectations suites built from the data model, run by the data-quality gate"
        f"{when}. Rows failing a row-level rule are quarantined with the rules they broke "
        "(the quarantine files); failing values are not shown here.</p>"
        '<table class="summary"><thead><tr><th>Table</th><th class="num">Expectations</th>'
        '<th class="num">Passed</th><th class="num">Failed</th></tr></thead>'
        f"<tbody>{''.join(summary)}</tbody></table>"
        f"{''.join(sections)}{_history_html(history)}</body></html>\n"
    )


def write_data_docs(
    country: str,
    records: Sequence[Mapping[str, Any]],
    folder: Path,
    *,
    created: str = "",
    keep: int | None = None,
) -> Path:
    """Write ``<folder>/index.html`` (the page), ``expectations.json`` and the history; return the page.

    ``keep`` validations stay in ``history/`` (default :data:`HISTORY` or
    ``$CLM_DATA_DOCS_HISTORY``); every file is written atomically.
    """
    keep = _history_default() if keep is None else max(1, keep)
    folder.mkdir(parents=True, exist_ok=True)
    for old in ("validations", "expectations", "static"):  # an earlier GX-built site (CDNs)
        if (folder / old).is_dir():
            shutil.rmtree(folder / old, ignore_errors=True)
    now = datetime.now(UTC)
    entry = {
        "validated": now.strftime("%Y-%m-%d %H:%M:%S"),
        "created": created,
        "expectations": len(records),
        "failed": sum(not r["success"] for r in records),
    }
    hist_dir = folder / "history"
    write_json(
        hist_dir / f"{now.strftime('%Y%m%dT%H%M%S%fZ')}.json", {**entry, "results": list(records)}
    )
    files = sorted(p for p in hist_dir.glob("*.json") if p.name[:1].isdigit())
    for old_file in files[:-keep]:
        old_file.unlink(missing_ok=True)
    history = []
    for p in reversed(files[-keep:]):
        try:
            h = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        history.append({k: h.get(k) for k in entry})
    write_json(folder / "expectations.json", {"country": country, "results": list(records)})
    return write_text(
        folder / "index.html",
        render_data_docs(country, records, created=created, history=history),
    )
