"""No canary personal data (names, phones, e-mails, birth dates, free text) in anything a run produces.

The demo exports carry the canaries in their personal columns (dropped at ingestion) and typed
into columns that are not personal (a name in ``sex``, a phone number in ``age``, a name and a
phone number in ``key_population``, an e-mail address in ``on_art``, a date of birth in
``wait_minutes``: masked at ingestion). Every artefact of a full run is searched: processed
tables and manifests, the quarantine, the Great Expectations Data Docs, the executed notebooks,
report tables and pages, status files, the index and the run's log.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from test_notebooks_smoke import pipeline_run  # one shared run of the full pipeline

from clm_research.demo import (
    CANARY_BIRTH_DATES,
    CANARY_EMAILS,
    CANARY_FREE_TEXT,
    CANARY_MISPLACED,
    CANARY_NAMES,
    CANARY_PHONES,
)
from clm_research.paths import project_root

CANARIES = [*CANARY_NAMES, *CANARY_PHONES, *CANARY_EMAILS, *CANARY_BIRTH_DATES, *CANARY_FREE_TEXT]
_B64 = re.compile(rb"(?:base64,|\"image/png\": \")([A-Za-z0-9+/=\\n]{40,})")

# one worker runs every test that shares the full pipeline run (it is cached per process)
pytestmark = pytest.mark.xdist_group("pipeline")


def _texts(path: Path) -> list[bytes]:
    """The file's bytes, every base64 image in it decoded, and Parquet cells as text."""
    raw = path.read_bytes()
    out = [raw]
    for m in _B64.finditer(raw):
        blob = m.group(1).replace(b"\\n", b"")
        try:
            out.append(base64.b64decode(blob + b"=" * (-len(blob) % 4)))
        except ValueError:
            pass
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        out.append(frame.astype(str).to_csv().encode())
    return out


def _forms(canary: str) -> set[str]:
    """The canary as planted, in lower case, without spaces, and a phone number's digits."""
    forms = {canary, canary.lower(), canary.replace(" ", "")}
    digits = re.sub(r"\D", "", canary)
    if canary.startswith("+"):
        forms.add(digits)
    return forms


def _artefacts(base: Path) -> list[Path]:
    scanned = [p for p in (base / "reports").rglob("*") if p.is_file()]
    for sub in ("processed", "quarantine"):
        scanned += [p for p in (base / "data" / sub).rglob("*") if p.is_file()]
    return scanned


def test_canaries_are_planted_in_the_raw_exports() -> None:
    base, _ = pipeline_run()
    for country in ("XA", "XB"):
        raw = pd.read_csv(base / "data" / "raw" / country / "interviews.csv", dtype=str)
        assert set(CANARY_NAMES) <= set(raw["client_name"])  # the personal columns
        assert set(CANARY_PHONES) <= set(raw["phone_number"])
        assert set(CANARY_BIRTH_DATES) <= set(raw["date_of_birth"])
        assert CANARY_FREE_TEXT[0] in set(raw["free_text"])
        for column, value in CANARY_MISPLACED.items():  # and columns that are not personal
            assert (raw[column] == value).sum() == 1, (country, column)
    assert set(CANARY_EMAILS) <= set(CANARY_MISPLACED.values())


def test_misplaced_personal_data_are_quarantined_masked() -> None:
    base, _ = pipeline_run()
    for country in ("XA", "XB"):
        q = pd.read_parquet(base / "data" / "quarantine" / country / "interviews.parquet")
        for column in CANARY_MISPLACED:
            rows = q[q["failed_rules"].str.contains(f"personal_data:{column}", regex=False)]
            assert len(rows) == 1, (country, column)
            shown = f"{rows[column].iloc[0]} {rows['raw_values'].iloc[0]}"
            assert "[masked: " in shown, (country, column, shown)
        mode = (base / "data" / "quarantine" / country / "interviews.parquet").stat().st_mode
        assert os.name != "posix" or mode & 0o077 == 0  # readable by the owner only


def test_no_canary_in_any_artefact_of_a_run() -> None:
    base, summary = pipeline_run()
    scanned = _artefacts(base)
    assert len(scanned) > 50
    kinds = {p.suffix for p in scanned}
    assert {".ipynb", ".html", ".csv", ".parquet", ".json", ".log"} <= kinds
    names = {p.name for p in scanned}
    assert {"status.json", "provenance.json", "manifest.json", "index.html", "run.log"} <= names
    for country in ("XA", "XB"):  # the Data Docs page of the gate's validations
        docs = base / "reports" / country / "data_docs"
        assert docs / "index.html" in scanned and docs / "expectations.json" in scanned, country
    leaks = []
    for path in scanned:
        for blob in _texts(path):
            for canary in CANARIES:
                for form in _forms(canary):
                    if form.encode() in blob:
                        leaks.append((str(path.relative_to(base)), canary))
    assert leaks == []
    assert all(form not in summary.format() for c in CANARIES for form in _forms(c))


def test_no_absolute_path_in_any_artefact_of_a_run() -> None:
    base, summary = pipeline_run()
    forbidden = {str(base), os.path.realpath(base), str(project_root())}
    forbidden.add(os.path.realpath(project_root()))
    hits = sorted(
        {
            (str(path.relative_to(base)), f)
            for path in _artefacts(base)
            for blob in _texts(path)
            for f in forbidden
            if f.encode() in blob
        }
    )
    assert hits == []
    assert not any(f in summary.format() for f in forbidden)


def test_maps_and_tables_show_districts_not_coordinates() -> None:
    base, summary = pipeline_run()
    for r in summary.results:
        tables = base / "reports" / r.country / r.period / "tables"
        for csv in tables.glob("*.csv"):
            header = csv.read_text().splitlines()[0].lower()
            assert "latitude" not in header and "longitude" not in header, csv.name
            assert "site_id" not in header, csv.name
