"""The Malawi routine example (data/examples/malawi/, Naomi demo data, MIT) through the mapping.

Expected numbers are read from the export with the csv module, never from the code under test.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from clm_research.ingest.staging import InputFile, stage_country
from clm_research.quality import dqr
from clm_research.quality.gate import GateReport, run_gate
from clm_research.tables import StagedTable

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "examples" / "malawi"
MAPPING = ROOT / "docs" / "examples" / "malawi" / "mapping.yaml"

Run = tuple[dict[str, StagedTable], list[InputFile], GateReport]


def export_rows() -> list[dict[str, str]]:
    with open(DATA / "demo_art_number.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def malawi() -> Run:
    staged, inputs, errors, _ = stage_country("MW", MAPPING, DATA)
    assert not errors
    return staged, inputs, run_gate("MW", staged, as_of="2024-06-30", use_gx=False, data_docs=False)


def test_every_row_accounted_for(malawi: Run) -> None:
    _, inputs, report = malawi
    rows = export_rows()
    district_years = {(r["area_name"], r["year"]) for r in rows}
    # the file is read twice: the routine rows, and the districts as the facility list
    info = next(i for i in inputs if i.table == "routine")
    units = next(i for i in inputs if i.table == "facilities")
    assert units.aggregate["rows_out"] == len({r["area_name"] for r in rows}) == 32
    assert report.tables["facilities"].accepted == 32
    assert info.rows == len(rows) == 830
    assert info.filter == "sex == 'both'" and info.filtered_rows == 0  # one sex level: 'both'
    assert info.rows == info.filtered_rows + info.aggregate["rows_in"]
    assert info.aggregate["rows_out"] == len(district_years) == 415
    t = report.tables["routine"]
    assert t.accepted + t.quarantined == len(district_years)
    assert not info.unmapped_columns


def test_age_groups_summed_by_district_year(malawi: Run) -> None:
    staged, _, _ = malawi
    f = staged["routine"].frame.set_index(["facility_id", "period"])
    for col in ("interruptions", "prep_new", "tests", "positives"):
        assert col not in f.columns  # not collected in Malawi: absent
    sums: dict[tuple[str, str], int] = defaultdict(int)
    for r in export_rows():
        sums[(r["area_name"], f"{r['year']}-12")] += int(r["art_current"])
    got = f["tx_curr"].astype(int).to_dict()
    assert got == dict(sums)
    assert got[("Ntchisi", "2016-12")] == 240 + 3767
    # viral load not reported before 2015 in these data: missing, never 0
    assert pd.isna(f.loc[("Ntchisi", "2011-12"), "vl_tested"])


def test_suppressed_above_tested_flagged(malawi: Run) -> None:
    staged, _, report = malawi
    # district-years with an age group reporting more suppressed than tested, from the file
    faulty = {
        (r["area_name"], f"{r['year']}-12")
        for r in export_rows()
        if r["vl_tested_12mos"]
        and r["vl_suppressed_12mos"]
        and float(r["vl_suppressed_12mos"]) > float(r["vl_tested_12mos"])
    }
    assert {("Ntchisi", "2016-12"), ("Dowa", "2016-12")} <= faulty
    q = report.quarantine["routine"]
    flagged = q[q["failed_rules"].str.contains("inconsistent:vl_suppressed")]
    assert set(zip(flagged["facility_id"], flagged["period"], strict=True)) == faulty
    dowa = flagged[flagged["facility_id"] == "Dowa"]["raw_values"].iloc[0]
    assert "vl_suppressed=767" in dowa and "vl_tested=751" in dowa
    # the WHO DQR internal-consistency check on the age groups flags the same district-years
    parts = pd.DataFrame(export_rows()).rename(
        columns={"vl_tested_12mos": "vl_tested", "vl_suppressed_12mos": "vl_suppressed"}
    )
    ic = dqr.internal_consistency(parts)
    assert set(zip(ic["area_name"], ic["year"] + "-12", strict=True)) == faulty
    # on the sums it flags those whose total is still inconsistent; Dowa's total is not
    # (792 suppressed of 815 tested): only the check on the parts catches it
    ic_sum = dqr.internal_consistency(staged["routine"].frame)
    on_sums = set(zip(ic_sum["facility_id"], ic_sum["period"], strict=True))
    assert ("Ntchisi", "2016-12") in on_sums and ("Dowa", "2016-12") not in on_sums
    assert on_sums <= faulty


def test_manifest_counts_filter_and_aggregation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from clm_research.pipeline import ingest_country

    monkeypatch.setenv("CLM_DATA_DIR", str(tmp_path / "data"))
    report = ingest_country("MW", mapping=MAPPING, raw_folder=DATA, as_of="2024-06-30")
    manifest = json.loads((tmp_path / "data" / "processed" / "MW" / "manifest.json").read_text())
    entry = next(e for e in manifest["inputs"] if e["table"] == "routine")
    assert entry["filter"] == "sex == 'both'" and entry["filtered_rows"] == 0
    assert entry["aggregate"]["rows_in"] == 830 and entry["aggregate"]["rows_out"] == 415
    assert entry["not_collected"] == ["interruptions", "prep_new", "tests", "positives"]
    t = manifest["tables"]["routine"]
    assert t["accepted"] + t["quarantined"] == entry["aggregate"]["rows_out"]
    assert "830 rows combined into 415" in report.summary()
    # the report's data-quality chapter lists each quarantined district-year by key and row
    from clm_research.report.quality import quarantined_rows, quarantined_rows_display

    faulty = {
        f"{r['area_name']} · {r['year']}-12"
        for r in export_rows()
        if r["vl_tested_12mos"]
        and r["vl_suppressed_12mos"]
        and float(r["vl_suppressed_12mos"]) > float(r["vl_tested_12mos"])
    }
    listed = quarantined_rows("MW")
    assert set(listed["key"]) == faulty and len(listed) == len(faulty) == 9
    shown = quarantined_rows_display(listed).html()
    assert "Dowa · 2016-12" in shown and "demo_art_number.csv, row " in shown
    assert "767" not in shown  # keys and rows only, never the values
