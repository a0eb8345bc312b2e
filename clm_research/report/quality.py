"""Report chapter "Data quality": the gate's verdict per table, quarantined rows by rule, the
WHO Data Quality Review summary of routine data and the expectation results (Data Docs).

The facility × month DQR table is summarised here; the full table is saved next to the report
(``tables/dqr_scorecard.csv``) and linked.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from clm_research.paths import country_report_dir, processed_dir, quarantine_dir
from clm_research.report.chapters import not_collected_note
from clm_research.report.context import country_tables
from clm_research.report.format import (
    Cell,
    Column,
    PresentationTable,
    format_count,
    format_percent,
)
from clm_research.schema import RULES, TABLES

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TABLE_NAMES",
    "gate_summary",
    "gate_display",
    "quarantine_by_rule",
    "quarantine_display",
    "QUARANTINE_LISTED",
    "quarantined_rows",
    "quarantined_rows_display",
    "dqr_scorecard",
    "dqr_summary",
    "dqr_facilities",
    "dqr_csv_link",
    "data_docs_link",
]

#: How each canonical table is named in a report.
TABLE_NAMES: dict[str, str] = {
    "facilities": "Facilities",
    "organisations": "Implementing organisations",
    "interviews": "Client exit interviews",
    "observations": "Monitoring visits (facility checklist)",
    "issues": "Issues log",
    "routine": "Routine facility data (monthly)",
    "outreach": "Peer outreach (monthly)",
}


def _table_name(name: str) -> str:
    return TABLE_NAMES.get(name, name.replace("_", " ").capitalize())


def gate_summary(country: str) -> pd.DataFrame:
    """Rows accepted and quarantined per table, read from the gate's outputs on disk.

    Columns ``table, rows received, accepted, quarantined, quarantined share`` (a share 0–1),
    one row per table the country collects; ``attrs`` hold the gate's verdict (``passed``),
    its threshold (``max_share``), the tables not collected (``tables_not_collected``) and
    the columns not collected per table (``not_collected``, from the manifest).
    """
    import pandas as pd

    rows = []
    manifest_path = processed_dir(country) / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    passed = manifest.get("gate", {}).get("passed")
    max_share = manifest.get("gate", {}).get("max_share")

    absent = []
    for name in TABLES:
        acc = processed_dir(country) / f"{name}.parquet"
        qua = quarantine_dir(country) / f"{name}.parquet"
        if not acc.is_file() and not qua.is_file():
            absent.append(name)
            continue
        n_acc = (
            len(pd.read_parquet(acc, columns=[TABLES[name].primary_key[0]])) if acc.is_file() else 0
        )
        n_q = len(pd.read_parquet(qua, columns=["failed_rules"])) if qua.is_file() else 0
        total = n_acc + n_q
        rows.append(
            {
                "table": name,
                "rows received": total,
                "accepted": n_acc,
                "quarantined": n_q,
                "quarantined share": (n_q / total) if total else float("nan"),
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["passed"] = passed
    out.attrs["max_share"] = max_share
    out.attrs["tables_not_collected"] = absent
    out.attrs["not_collected"] = {
        k: list(v) for k, v in (manifest.get("not_collected") or {}).items() if v
    }
    return out


def gate_display(gate: pd.DataFrame) -> PresentationTable:
    """The gate summary as a table: counts with separators, the share as a percentage."""
    max_share = gate.attrs.get("max_share")
    t = PresentationTable(
        [
            Column("Table", align="left", wrap=True),
            Column("Rows received"),
            Column("Accepted"),
            Column("Quarantined"),
            Column("Quarantined (% of received)"),
        ]
    )
    for r in gate.itertuples(index=False):
        share = r[4]
        share_cell: str | Cell = (
            format_percent(share)
            if share == share
            else t.missing("No rows received for this table.")
        )
        if max_share is not None and share == share and share > max_share:
            share_cell = Cell(
                str(share_cell),
                css="rag-red",
                markers=(
                    t.marker(
                        f"Above the gate's limit of {float(max_share):.0%}: the table fails the gate."
                    ),
                ),
            )
        t.add_row(
            [
                _table_name(str(r[0])),
                format_count(r[1]),
                format_count(r[2]),
                format_count(r[3]),
                share_cell,
            ]
        )
    if max_share is not None:
        t.note(
            f"A table fails the gate when more than {float(max_share):.0%} of its rows are "
            "quarantined; quarantined rows are kept with the rules they broke, never dropped."
        )
    absent = gate.attrs.get("tables_not_collected") or []
    if absent:
        t.note(
            "Not collected in this country: "
            + ", ".join(_table_name(a).lower() for a in absent)
            + " (the chapters on them say so)."
        )
    for name, cols in (gate.attrs.get("not_collected") or {}).items():
        t.note(
            f"{_table_name(name)}: not collected in this country: {', '.join(cols)} (the "
            "indicators that need them are not computed)."
        )
    return t


def quarantine_by_rule(country: str) -> pd.DataFrame:
    """Quarantined rows per table and failed rule (``rule:column``), largest first."""
    import pandas as pd

    rows = []
    for path in sorted(quarantine_dir(country).glob("*.parquet")):
        q = pd.read_parquet(path, columns=["failed_rules"])
        for rules in q["failed_rules"].dropna():
            for rule in str(rules).split(";"):
                if rule:
                    rows.append((path.stem, rule))
    if not rows:
        return pd.DataFrame(columns=["table", "rule", "rows"])
    d = pd.DataFrame(rows, columns=["table", "rule"])
    out = d.groupby(["table", "rule"]).size().rename("rows").reset_index()
    return out.sort_values(["rows", "table", "rule"], ascending=[False, True, True]).reset_index(
        drop=True
    )


def _rule_words(rule: str) -> tuple[str, str]:
    """A failed rule (``rule:column``) as what the rule checks, in words, and its column(s)."""
    name, _, column = rule.partition(":")
    return RULES.get(name, name.replace("_", " ")), column


def quarantine_display(by_rule: pd.DataFrame) -> PresentationTable | str:
    """Quarantined rows by rule in words: table, rule (what it checks), column, rows."""
    if by_rule.empty:
        return "No row was quarantined."
    t = PresentationTable(
        [
            Column("Table", align="left", wrap=True),
            Column("Rule broken", align="left", wrap=True),
            Column("Column(s)", align="left", wrap=True),
            Column("Rows"),
        ]
    )
    for r in by_rule.itertuples(index=False):
        what, column = _rule_words(str(r.rule))
        t.add_row(
            [
                _table_name(str(r.table)),
                what[0].upper() + what[1:],
                column.replace("+", ", ") if column else t.missing("The whole row."),
                format_count(r.rows),
            ]
        )
    t.note("A row breaking several rules is counted under each.")
    return t


#: Tables whose quarantined rows are listed one by one: facility- and organisation-level
#: records, identified by public keys. Rows about people (interviews, outreach) and issue
#: records are counted by rule only.
QUARANTINE_LISTED: tuple[str, ...] = ("facilities", "organisations", "observations", "routine")


def quarantined_rows(country: str, tables: tuple[str, ...] = QUARANTINE_LISTED) -> pd.DataFrame:
    """The quarantined rows of ``tables``: table, the row's key, failed rules, source file and row.

    Only the key and where the row came from, never its values: a reader can find the record
    in the export and correct it, and no count withheld from the report's tables is shown.
    """
    import pandas as pd

    rows = []
    for name in tables:
        path = quarantine_dir(country) / f"{name}.parquet"
        if not path.is_file():
            continue
        key = list(TABLES[name].primary_key)
        q = pd.read_parquet(path)
        for r in q.to_dict("records"):
            rows.append(
                {
                    "table": name,
                    "key": " · ".join("?" if pd.isna(r.get(c)) else str(r.get(c)) for c in key),
                    "failed_rules": str(r.get("failed_rules") or ""),
                    "source_file": str(r.get("source_file") or ""),
                    "source_row": r.get("source_row"),
                }
            )
    return pd.DataFrame(rows, columns=["table", "key", "failed_rules", "source_file", "source_row"])


def quarantined_rows_display(rows: pd.DataFrame, limit: int = 40) -> PresentationTable | str:
    """:func:`quarantined_rows` in words, the first ``limit`` rows (all are in the saved table)."""
    if rows.empty:
        return "No facility-level row was quarantined."
    t = PresentationTable(
        [
            Column("Table", align="left", wrap=True),
            Column("Record (key)", align="left", wrap=True),
            Column("Rules broken", align="left", wrap=True),
            Column("Source (file, row)", align="left", wrap=True),
        ]
    )
    for r in rows.head(limit).to_dict("records"):
        rules = []
        for rule in str(r["failed_rules"]).split(";"):
            if rule:
                what, column = _rule_words(rule)
                rules.append(f"{what} ({column.replace('+', ', ')})" if column else what)
        line = r["source_row"]
        where = str(r["source_file"]) + (f", row {int(line)}" if line == line else "")
        t.add_row([_table_name(str(r["table"])), str(r["key"]), "; ".join(rules), where])
    if len(rows) > limit:
        t.note(f"The first {limit} of {len(rows)} rows; all are in tables/quarantined_rows.csv.")
    t.note(
        "Rows are named by their key and place in the export, not their values; correct them "
        "in the export and ingest again."
    )
    return t


def dqr_scorecard(country: str) -> pd.DataFrame:
    """WHO Data Quality Review scorecard of the routine data (facility × month; saved whole)."""
    import pandas as pd

    from clm_research.quality import dqr

    t = country_tables(country)
    if "routine" not in t:  # not collected: an empty card, and the summary says so
        return pd.DataFrame(columns=["facility_id", "period"])
    facilities = t["facilities"]["facility_id"] if "facilities" in t else None
    return dqr.scorecard(t["routine"], facilities)


def dqr_summary(card: pd.DataFrame, csv_name: str = "dqr_scorecard.csv") -> PresentationTable | str:
    """The facility × month DQR table summarised: one row per check, over all months and the
    last twelve (the full table is in ``tables/<csv_name>`` beside the report); the "not
    collected" note for a country without routine data."""
    if card.empty:
        return not_collected_note(["routine"], "The WHO Data Quality Review")
    periods = sorted(card["period"].astype(str).unique())
    last12 = card[card["period"].astype(str).isin(periods[-12:])]
    span = f"{periods[0]}–{periods[-1]}" if periods else "all months"
    recent = f"{periods[-12]}–{periods[-1]}" if len(periods) >= 12 else span
    t = PresentationTable(
        [
            Column("Check (WHO Data Quality Review)", align="left", wrap=True, width="46%"),
            Column(f"All months ({span})", wrap=True),
            Column(f"Last 12 months ({recent})", wrap=True),
        ]
    )

    def share(frame: pd.DataFrame, mask: pd.Series) -> str:
        n = len(frame)
        k = int(mask.sum())
        return f"{format_percent(k / n)} ({k:,} of {n:,})" if n else "–"

    checks: list[tuple[str, Callable[[pd.DataFrame], pd.Series]]] = [
        ("Completeness: facility-months with a report", lambda f: f["reported"].astype(bool)),
        (
            "Completeness: reports with every indicator filled in",
            lambda f: f["values_complete"].astype(float) >= 1.0,
        ),
        ("Facility-months with a moderate outlier (2–3 SD)", lambda f: f["outliers_moderate"] > 0),
        ("Facility-months with an extreme outlier (> 3 SD)", lambda f: f["outliers_extreme"] > 0),
        (
            "Internal consistency: a part larger than its whole (e.g. suppressed > tested)",
            lambda f: f["inconsistent"] > 0,
        ),
        (
            "Consistency over time: a value beyond ±33% of the preceding 12-month mean",
            lambda f: f["time_flags"] > 0,
        ),
        ("Facility-months passing every check", lambda f: f["ok"].astype(bool)),
    ]
    for label, fn in checks:
        t.add_row([label, share(card, fn(card)), share(last12, fn(last12))])
    t.note(
        f"Shares of expected facility-months ({card['facility_id'].nunique():,} facilities). "
        f"The full facility × month table is in {csv_name} beside this report."
    )
    return t


def dqr_facilities(card: pd.DataFrame, top: int = 10) -> PresentationTable | str:
    """The facilities with the most flagged months (outliers, inconsistencies, time flags)."""
    if card.empty:
        return ""
    flags = card.assign(
        flagged=(
            card[["outliers_moderate", "outliers_extreme", "inconsistent", "time_flags"]].sum(
                axis=1
            )
            > 0
        )
        | ~card["reported"].astype(bool)
    )
    g = flags.groupby("facility_id").agg(
        months=("period", "size"),
        missing=("reported", lambda s: int((~s.astype(bool)).sum())),
        flagged=("flagged", "sum"),
        extreme=("outliers_extreme", lambda s: int((s > 0).sum())),
    )
    g = g[g["flagged"] > 0].sort_values(["flagged", "extreme"], ascending=False).head(top)
    if g.empty:
        return "No facility has a flagged month."
    t = PresentationTable(
        [
            Column("Facility", align="left"),
            Column("Months expected"),
            Column("Months not reported"),
            Column("Months with any flag"),
            Column("Months with an extreme outlier"),
        ],
        caption=f"The {len(g)} facilities with the most flagged months",
    )
    for fid, r in g.iterrows():
        t.add_row(
            [
                str(fid),
                format_count(r["months"]),
                format_count(r["missing"]),
                f"{format_count(r['flagged'])} ({format_percent(r['flagged'] / r['months'], 0)})",
                format_count(r["extreme"]),
            ]
        )
    return t


def dqr_csv_link(output_dir: str | Path = "", csv_name: str = "dqr_scorecard.csv") -> str:
    """A link to the full facility × month DQR table saved beside the report ("" when the
    notebook runs on its own and saves nothing)."""
    path = Path(output_dir) / "tables" / csv_name
    if output_dir in ("", None) or not path.is_file():
        return ""
    with path.open(encoding="utf-8") as f:
        if len(f.readlines()[:2]) < 2:  # header only: no routine data, nothing to link
            return ""
    return (
        f"The full table, one row per facility and month: [tables/{csv_name}](tables/{csv_name}) "
        "(CSV, full precision)."
    )


def data_docs_link(country: str, report_dir: str | Path = "") -> str:
    """HTML link to the expectation results (Data Docs) of this report.

    With a report folder (a run), the gate's page (``reports/<cc>/data_docs/index.html``, one
    self-contained file: :mod:`clm_research.quality.docs`) is copied into it as
    ``data_docs.html``, so the report and the results it links travel together; a notebook
    opened on its own links the country's latest gate page.
    """
    import shutil

    source = country_report_dir(country) / "data_docs" / "index.html"
    if report_dir not in ("", None) and source.is_file():
        shutil.copyfile(source, Path(report_dir) / "data_docs.html")
        target = "data_docs.html"
    elif source.is_file():
        target = "../data_docs/index.html"
    else:
        return "<p>The expectation results (Data Docs) were not built for this run.</p>"
    return (
        f'<p><a href="{html.escape(target)}">Open the expectation results (Data Docs)</a>: '
        "every Great Expectations check of every table, with the rows that failed it. The "
        "page works offline and loads nothing from the network.</p>"
    )
