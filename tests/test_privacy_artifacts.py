"""No canary personal data (names, phones, birth dates, free text) in anything a run produces."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest
from test_notebooks_smoke import pipeline_run  # one shared run of the full pipeline

from clm_research.demo import CANARY_BIRTH_DATES, CANARY_FREE_TEXT, CANARY_NAMES, CANARY_PHONES

CANARIES = [*CANARY_NAMES, *CANARY_PHONES, *CANARY_BIRTH_DATES, *CANARY_FREE_TEXT]
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


def test_canaries_are_planted_in_the_raw_exports() -> None:
    base, _ = pipeline_run()
    raw = b"".join(p.read_bytes() for p in (base / "data" / "raw").rglob("*.csv"))
    assert all(c.encode() in raw for c in CANARIES[:4])  # the test would catch a leak


def test_no_canary_in_any_artefact_of_a_run() -> None:
    base, summary = pipeline_run()
    scanned = [p for p in (base / "reports").rglob("*") if p.is_file()]
    for sub in ("processed", "quarantine"):
        scanned += [p for p in (base / "data" / sub).rglob("*") if p.is_file()]
    assert len(scanned) > 50
    kinds = {p.suffix for p in scanned}
    assert {".ipynb", ".html", ".csv", ".parquet", ".json"} <= kinds
    leaks = []
    for path in scanned:
        for blob in _texts(path):
            for canary in CANARIES:
                for form in {canary, canary.lower(), canary.replace(" ", "")}:
                    if form.encode() in blob:
                        leaks.append((str(path.relative_to(base)), canary))
    assert leaks == []
    assert all(c not in summary.format() for c in CANARIES)


def test_maps_and_tables_show_districts_not_coordinates() -> None:
    base, summary = pipeline_run()
    for r in summary.results:
        tables = base / "reports" / r.country / r.period / "tables"
        for csv in tables.glob("*.csv"):
            header = csv.read_text().splitlines()[0].lower()
            assert "latitude" not in header and "longitude" not in header, csv.name
            assert "site_id" not in header, csv.name
