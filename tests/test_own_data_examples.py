"""The worked examples of docs/own-data.md run end to end, as a user would run them.

Each script under ``docs/examples/`` is run in a throwaway copy of the project (its parameters,
notebooks and examples), with the data and reports folders in a temporary folder, and must end
with an HTML report. The Kenyan export has no licence and is read from ``../shared/`` beside
the project: that example skips, saying so, when it is absent. Expected numbers are counted off
the export with the csv module, never taken from the code under test.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
KENYA = ROOT.parent / "shared" / "reference-data" / "kenya_clm_client_survey_2024.csv"
CLM = Path(sys.executable).with_name("clm")

#: The quarantine reasons of the Kenyan export that are genuine faults of a row.
KENYA_GENUINE = {"duplicate_key:submission", "not_null:facility_id", "duplicate_key:interview_id"}


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "params" / "countries").mkdir(parents=True)
    (root / "params" / "mappings").mkdir()
    shutil.copy(ROOT / "params" / "framework.yaml", root / "params")
    shutil.copy(ROOT / "pyproject.toml", root)
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "docs" / "examples", root / "docs" / "examples")
    if (ROOT / "data" / "examples").is_dir():
        shutil.copytree(ROOT / "data" / "examples", root / "data" / "examples")
    return root


def _run(script: str, root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "CLM_PROJECT_ROOT": str(root),
        "CLM_DATA_DIR": str(root / "data"),
        "CLM_REPORTS_DIR": str(root / "reports"),
        "CLM": str(CLM),
        "PYTHONPATH": str(ROOT),
        **env,
    }
    return subprocess.run(
        ["bash", str(root / "docs" / "examples" / script)],
        env=full,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )


@pytest.mark.reference
@pytest.mark.skipif(
    not KENYA.is_file(),
    reason="the Kenyan export is read from ../shared/reference-data/ (no licence: never copied "
    "into the project), which is absent here",
)
def test_kenya_example_ends_with_a_report(tmp_path: Path) -> None:
    root = _project(tmp_path)
    done = _run("kenya.sh", root, KENYA_EXPORT=str(KENYA))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "gate PASSED" in done.stdout
    report = root / "reports" / "KE" / "2024Q1" / "report.html"
    html = report.read_text(encoding="utf-8")
    assert "Service quality" in html or "service quality" in html.lower()
    assert "not collected" in html.lower()  # the chapters without data say so
    # rows in = accepted + quarantined, counted off the export itself
    with open(KENYA, newline="", encoding="utf-8-sig") as f:
        rows_in = sum(1 for _ in csv.reader(f)) - 1
    assert rows_in == 195
    processed = pd.read_parquet(root / "data" / "processed" / "KE" / "interviews.parquet")
    quarantine = root / "data" / "quarantine" / "KE"
    q = pd.concat(
        [pd.read_parquet(p) for p in quarantine.glob("interviews*.parquet")]
        or [pd.DataFrame({"failed_rules": []})]
    )
    assert len(processed) + len(q) == rows_in
    for reasons in q["failed_rules"].astype(str):
        assert set(reasons.split("; ")) <= KENYA_GENUINE, reasons
    manifest = json.loads((root / "data" / "processed" / "KE" / "manifest.json").read_text())
    assert manifest  # written by the ingest


def test_malawi_example_ends_with_a_report(tmp_path: Path) -> None:
    if not (ROOT / "data" / "examples" / "malawi" / "demo_art_number.csv").is_file():
        pytest.fail("data/examples/malawi/demo_art_number.csv is missing from the project")
    root = _project(tmp_path)
    done = _run("malawi.sh", root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reports = sorted((root / "reports" / "MW").glob("*/report.html"))
    assert reports, done.stdout[-2000:]
    html = reports[-1].read_text(encoding="utf-8")
    assert "<img" in html  # the trend figure
    assert "Map of " in html  # the district map's description (alt text)
    for district in ("Dowa", "Ntchisi"):  # more suppressed than tested in 2016: flagged
        assert district in html
