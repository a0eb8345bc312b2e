"""Report chapter "Data quality": the gate's verdict per table, quarantined rows by rule, the
WHO Data Quality Review scorecard of routine data and the link to the Data Docs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from clm_research.paths import country_report_dir, processed_dir, quarantine_dir
from clm_research.report.context import country_tables
from clm_research.schema import TABLES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["gate_summary", "quarantine_by_rule", "dqr_scorecard", "data_docs_link"]


def gate_summary(country: str) -> pd.DataFrame:
    """Rows accepted and quarantined per table, read from the gate's outputs on disk."""
    import pandas as pd

    rows = []
    manifest_path = processed_dir(country) / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    passed = manifest.get("gate", {}).get("passed")
    max_share = manifest.get("gate", {}).get("max_share")

    for name in TABLES:
        acc = processed_dir(country) / f"{name}.parquet"
        qua = quarantine_dir(country) / f"{name}.parquet"
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
                "quarantined share": f"{(n_q / total if total else 0):.1%}",
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["passed"] = passed
    out.attrs["max_share"] = max_share
    return out


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


def dqr_scorecard(country: str) -> pd.DataFrame:
    """WHO Data Quality Review scorecard of the routine data (completeness, outliers, consistency)."""
    from clm_research.quality import dqr

    t = country_tables(country)
    return dqr.scorecard(t["routine"], t["facilities"]["facility_id"])


def data_docs_link(country: str, report_dir: str | Path = ".") -> str:
    """Markdown link to the Great Expectations Data Docs, relative to the report folder."""
    target = country_report_dir(country) / "data_docs" / "index.html"
    if not target.is_file():
        return "Data Docs were not built for this run."
    # the report lives in reports/<cc>/<period>/, the Data Docs in reports/<cc>/data_docs/
    return "[Open the Great Expectations Data Docs](../data_docs/index.html) (expectation results per table)."
