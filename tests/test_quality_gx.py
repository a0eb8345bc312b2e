"""The Great Expectations gate on the demo: suites from the schema, Data Docs, agreement with the quarantine.

GX is slow to import (~6 s): one module-scoped run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def gx_run(tmp_path_factory: pytest.TempPathFactory):
    from clm_research.demo import write_demo
    from clm_research.pipeline import validate_country

    root = tmp_path_factory.mktemp("clmgx")
    mp = pytest.MonkeyPatch()
    mp.setenv("CLM_DATA_DIR", str(root / "data"))
    mp.setenv("CLM_REPORTS_DIR", str(root / "reports"))
    write_demo(["XA"])
    report = validate_country("XA")
    yield root, report
    mp.undo()


def test_gx_and_quarantine_agree(gx_run) -> None:
    from clm_research.ingest.staging import stage_country
    from clm_research.quality.rules import ROW_ONLY_RULES

    root, report = gx_run
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"
    staged, _, _, _ = stage_country("XA")
    for name, t in report.tables.items():
        assert t.gx_success is not None
        # every rule GX found failing is in the quarantine with the same number of rows ...
        for label, n in t.gx_failed.items():
            if label.startswith("duplicate_key:"):
                # GX counts every member of a duplicated key, the quarantine only the later copies
                key = staged[name].frame[label.split(":", 1)[1].split("+")]
                assert n == key.duplicated(keep=False).sum()
                assert t.by_rule[label] == key.duplicated(keep="first").sum()
            elif label.startswith("not_null:"):
                # an unreadable cell is missing for GX; the quarantine reports it once, as `type`
                col = label.split(":", 1)[1]
                assert t.by_rule.get(label, 0) + t.by_rule.get(f"type:{col}", 0) == n, label
            else:
                assert t.by_rule.get(label) == n, (name, label)
        # ... and every quarantine rule (except unreadable cells, found while parsing, and
        # masked personal data, found at staging) failed in GX
        for label in t.by_rule:
            if not label.startswith(("type:", "personal_data:")) and label not in ROW_ONLY_RULES:
                assert label in t.gx_failed, (name, label)
        assert t.gx_success == (t.quarantined == 0)


def test_data_docs_written(gx_run) -> None:
    """The expectation results as the project's own page: offline, no external host."""
    import json
    import re

    root, report = gx_run
    folder = root / "reports" / "XA" / "data_docs"
    index = folder / "index.html"
    assert report.data_docs == index and index.is_file()
    html = index.read_text()
    results = json.loads((folder / "expectations.json").read_text())["results"]
    assert {r["table"] for r in results} == set(report.tables)
    # every table's expectations, with the failing counts the gate used
    for name, t in report.tables.items():
        assert f'id="t-{name}"' in html
        failed = [r for r in results if r["table"] == name and not r["success"]]
        assert len(failed) == len(t.gx_failed)
    assert "✗ failed" in html and "✓ passed" in html
    # nothing loads from, or links to, another host (GX's own site pulls ~15 CDN files)
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html), "external reference"
    assert "http://" not in html and "https://" not in html
    assert not (folder / "validations").exists() and not (folder / "static").exists()


def test_gate_verdict(gx_run) -> None:
    root, report = gx_run
    assert report.passed  # the demo's faults are ~1% of rows, below the 5% of XA.yaml
    q = pd.read_parquet(root / "data" / "quarantine" / "XA" / "routine.parquet")
    assert q["failed_rules"].tolist() == ["inconsistent:vl_suppressed"] * 3


def test_cli_validate_exit_codes(
    gx_run, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from clm_research import pipeline
    from clm_research.quality.gate import GateReport

    root, report = gx_run
    real = pipeline.validate_country

    def fake(country: str, max_share: float | None = None, **kw: object) -> GateReport:
        if country != "XA":
            return real(country, max_share, **kw)
        return dataclasses.replace(
            report, max_share=report.max_share if max_share is None else max_share
        )

    monkeypatch.setattr(pipeline, "validate_country", fake)
    assert pipeline.cli_validate(["XA"], None) == 0
    assert pipeline.cli_validate(["XA"], max_share=0.001) == 1  # 1.1% of interviews quarantined
    out = capsys.readouterr().out
    assert "gate PASSED" in out and "gate FAILED" in out and "interviews" in out
    assert pipeline.cli_validate(["QZ"], None) == 1  # no mapping: a message, no traceback
    assert "no column mapping" in capsys.readouterr().out


def test_gx_is_imported_lazily() -> None:
    code = (
        "import sys, clm_research.quality.gate, clm_research.ingest.staging, clm_research.pipeline, clm_research.quality.dqr; "
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "False"


def test_data_docs_show_no_sample_values_of_sensitive_tables(gx_run) -> None:
    """Interviews and outreach (rows about people and key-population sites): counts only.

    The project's Data Docs page (quality.docs) shows no failing value of any table: how many
    rows failed each expectation, never which values (the quarantine files hold the rows)."""
    import json
    import re

    from clm_research.schema import TABLES

    root, report = gx_run
    folder = root / "reports" / "XA" / "data_docs"
    q = pd.read_parquet(root / "data" / "quarantine" / "XA" / "interviews.parquet")
    planted = {"2024-Q1", "-15.0", "2000.0", "XA-F999"}  # failing values of interviews
    assert planted <= set(q.astype(str).stack())
    page = (folder / "index.html").read_text()
    text = re.sub(r"<[^>]+>", " ", page)
    stored = (folder / "expectations.json").read_text()
    for name in TABLES:
        assert f'id="t-{name}"' in page, name
    assert not any(v in text or v in stored for v in planted)
    assert "[masked:" not in text and "Unexpected Value" not in text
    # the counts are there: every failed interview expectation with its number of rows
    failed = [
        r for r in json.loads(stored)["results"] if r["table"] == "interviews" and not r["success"]
    ]
    assert failed and all(r["unexpected_count"] is not None for r in failed)
    assert all(set(r) >= {"table", "expectation", "unexpected_count"} for r in failed)
    assert not any("partial_unexpected" in k for r in failed for k in r)
