"""CommCare form exports (CSV and XLSX): question paths, ``---`` blanks, metadata, personal columns.

The fixture ``tests/data/commcare/exit_interview.csv`` is synthetic, written in the layout of
CommCare HQ's form export (Dimagi, *Metadata Glossary*): twelve submissions, three with a
genuine fault (row 10: the facility question unanswered, ``---``; row 11: the same submission
sent twice; row 12: a facility code not in the facility list). Expected outcomes are read off
the file with the csv module, not from the code under test.
"""

from __future__ import annotations

import csv
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from clm_research.ingest.commcare import COMMCARE_BLANK, read_commcare
from clm_research.ingest.mapping import load_mapping
from clm_research.ingest.staging import stage_country
from clm_research.pipeline import validate_country
from clm_research.quality.gate import GateReport

FOLDER = Path(__file__).parent / "data" / "commcare"
EXPORT = FOLDER / "exit_interview.csv"

#: Spreadsheet rows with a genuine fault and the rule each must carry.
FAULTS = {
    10: "not_null:facility_id",
    11: "duplicate_key:interview_id",
    12: "unknown_reference:facility_id",
}
#: Answers asked only of some respondents (skip logic): a ``---`` there is no fault of the row.
SKIP_LOGIC_RULES = {"not_null:on_art"}


def _rows() -> list[dict[str, str]]:
    with open(EXPORT, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _gate(folder: Path, files: str = "exit_interview.csv") -> GateReport:
    mapping = load_mapping(FOLDER / "mapping.yaml")
    spec = mapping.tables["interviews"].model_copy(update={"files": [files]})
    mapping = mapping.model_copy(update={"tables": {**mapping.tables, "interviews": spec}})
    return validate_country(
        "XT", mapping=mapping, raw_folder=folder, as_of="2024-12-31", use_gx=False, write=False
    )


def _check(report: GateReport) -> None:
    rows = _rows()
    assert not report.errors
    t = report.tables["interviews"]
    assert t.input_rows == len(rows) == 12
    assert t.accepted + t.quarantined == len(rows)
    assert len(report.accepted["interviews"]) + len(report.quarantine["interviews"]) == len(rows)
    q = report.quarantine["interviews"]
    rules = {
        int(r): set(str(f).split("; "))
        for r, f in zip(q["source_row"], q["failed_rules"], strict=True)
    }
    for row, rule in FAULTS.items():
        assert rule in rules[row], (row, rules.get(row))
    for row, found in rules.items():  # nothing else is held back but skip-logic blanks
        assert row in FAULTS or found <= SKIP_LOGIC_RULES, (row, found)
    acc = report.accepted["interviews"].set_index("interview_id")
    # the first submission, read by hand from the file
    first = rows[0]
    got = acc.loc[first["formid"]]
    assert got["facility_id"] == first["form.visit.facility_code"] == "XT-F001"
    assert got["date"] == pd.Timestamp(first["form.visit.interview_date"])
    assert got["round"] == "2024Q1" and got["sex"] == "female" and got["age"] == 34
    assert bool(got["on_art"]) and got["wait_minutes"] == 25 and got["satisfaction"] == 4
    # '---' is a missing answer, never the text '---'
    for frame in (report.accepted["interviews"], q):
        assert not frame.astype("string").eq(COMMCARE_BLANK).any().any()
    no_vl = [r["formid"] for r in rows if r["form.services.vl_result_received"] == COMMCARE_BLANK]
    for fid in set(no_vl) & set(acc.index):
        assert pd.isna(acc.loc[fid, "vl_result_received"])


def test_commcare_csv_ingests_rows_in_equal_accepted_plus_quarantined() -> None:
    _check(_gate(FOLDER))


def test_commcare_xlsx_export(tmp_path: Path) -> None:
    """The same export as a workbook: the form's sheet, timestamps as date-time cells."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Exit interview"
    with open(EXPORT, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.reader(f)):
            cells: list[object] = list(row)
            if i:
                for j in (28, 29, 31):  # completed_time, started_time, received_on
                    cells[j] = datetime.fromisoformat(row[j])
            ws.append(cells)
    wb.save(tmp_path / "exit_interview.xlsx")
    shutil.copy(FOLDER / "facilities.csv", tmp_path)
    _check(_gate(tmp_path, "exit_interview.xlsx"))


def test_blank_marker_and_paths_read_as_text() -> None:
    raw = read_commcare(EXPORT)
    assert "form.client.sex" in raw.frame.columns and "form.meta.instanceID" in raw.frame.columns
    assert not (raw.frame == COMMCARE_BLANK).any().any()
    n_blank = sum(v == COMMCARE_BLANK for r in _rows() for v in r.values())
    assert any(f"{n_blank} CommCare" in n for n in raw.notes)


def test_commcare_personal_columns_dropped() -> None:
    _, inputs, errors, _ = stage_country("XT", FOLDER / "mapping.yaml", FOLDER)
    assert not errors
    info = next(i for i in inputs if i.table == "interviews")
    dropped = set(info.personal_columns_removed)
    assert {
        "form.client.client_name",
        "form.client.phone_number",
        "form.experience.comments",  # free text, declared in the mapping
        "form.meta.username",
        "form.meta.userID",
        "form.meta.deviceID",
        "form.meta.location",
        "username",
    } <= dropped
    assert not info.unmapped_columns
    assert {"number", "form.meta.timeStart", "received_on"} <= set(info.ignored_columns)


@pytest.mark.parametrize("value", ["Amara Banda", "0881234567", "cm_lilongwe01"])
def test_no_personal_value_reaches_the_outputs(value: str) -> None:
    report = _gate(FOLDER)
    for frame in (report.accepted["interviews"], report.quarantine["interviews"]):
        assert not frame.astype("string").eq(value).any().any()
