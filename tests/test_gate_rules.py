"""Gate rules on the way in: future periods, dates outside their round, facility ids without a
facility table, every failing rule in the summary. Expected verdicts come from the few rows
written here; rows in = accepted + quarantined in every case.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clm_research.ingest.mapping import Mapping, TableSpec
from clm_research.pipeline import validate_country
from clm_research.quality.gate import GateReport

BAD = Path(__file__).parent / "data" / "bad"
H = "interview_id,facility_id,date,round,sex,on_art"
DHIS2_ELEMENTS = {"deVlTest001": "vl_tested", "deVlSupp001": "vl_suppressed"}
DHIS2_OUS = {"ouAlpha0001": "XT-F001", "ouBeta00001": "XT-F002"}


def run(folder: Path, tables: dict[str, TableSpec]) -> GateReport:
    mp = Mapping(country="XT", tables=tables)
    return validate_country(
        "XT", mapping=mp, raw_folder=folder, as_of="2024-12-31", use_gx=False, write=False
    )


def reasons(report: GateReport, table: str) -> dict[int, str]:
    q = report.quarantine[table]
    return dict(zip(q["source_row"].astype(int), q["failed_rules"].astype(str), strict=True))


def no_row_lost(report: GateReport, table: str, rows: int) -> None:
    t = report.tables[table]
    assert t.input_rows == rows and t.accepted + t.quarantined == rows
    assert len(report.accepted[table]) + len(report.quarantine[table]) == rows


def test_dhis2_period_after_as_of_is_a_future_date(tmp_path: Path) -> None:
    (tmp_path / "dv.csv").write_text(
        "dataelement,period,orgunit,catoptcombo,value\n"
        "deVlTest001,202403,ouAlpha0001,HllvX50cXC0,40\n"
        "deVlSupp001,202403,ouAlpha0001,HllvX50cXC0,36\n"
        "deVlTest001,203105,ouAlpha0001,HllvX50cXC0,41\n"  # a typo for 202105 or 202305
        "deVlSupp001,203105,ouAlpha0001,HllvX50cXC0,37\n"
    )
    shutil.copy(BAD / "facilities.csv", tmp_path)
    spec = TableSpec(
        files=["dv.csv"], reader="dhis2", data_elements=DHIS2_ELEMENTS, org_units=DHIS2_OUS
    )
    r = run(tmp_path, {"facilities": TableSpec(files=["facilities.csv"]), "routine": spec})
    no_row_lost(r, "routine", 2)  # 4 data values = 2 facility-months
    q = r.quarantine["routine"]
    assert q["failed_rules"].tolist() == ["future_date:period"]
    assert q["period"].tolist() == ["2031-05"]
    assert r.accepted["routine"]["period"].tolist() == ["2024-03"]


def test_tablet_clock_in_2031_and_dates_outside_their_round(tmp_path: Path) -> None:
    (tmp_path / "iv.csv").write_text(
        f"{H}\n"
        "I1,XT-F001,2024-03-05,2024Q1,female,true\n"  # row 2: fine
        "I2,XT-F001,2031-03-05,2031Q1,female,true\n"  # row 3: tablet clock, round derived
        "I3,XT-F002,2024-05-02,2024Q1,male,\n"  # row 4: May is not in Q1
        "I4,XT-F002,2023-12-31,2024Q1,male,\n"  # row 5: the day before the round
        "I5,XT-F003,2024-06-30,2024Q2,female,false\n"  # row 6: last day of the round: fine
    )
    shutil.copy(BAD / "facilities.csv", tmp_path)
    r = run(
        tmp_path,
        {
            "facilities": TableSpec(files=["facilities.csv"]),
            "interviews": TableSpec(files=["iv.csv"]),
        },
    )
    no_row_lost(r, "interviews", 5)
    assert reasons(r, "interviews") == {
        3: "future_date:date; future_date:round",
        4: "outside_round:date",
        5: "outside_round:date",
    }
    assert "outside_round:date" in r.summary()


def _interviews_and_routine(folder: Path, facilities: bool) -> GateReport:
    (folder / "iv.csv").write_text(
        f"{H}\nI1,XT-F001,2024-03-05,2024Q1,female,true\nI2,ZZ-F999,2024-03-05,2024Q1,male,\n"
    )
    (folder / "routine.csv").write_text(
        "facility_id,period,vl_tested,vl_suppressed\nXT-F001,2024-03,40,36\n"
    )
    tables = {
        "interviews": TableSpec(files=["iv.csv"]),
        "routine": TableSpec(files=["routine.csv"]),
    }
    if facilities:
        shutil.copy(BAD / "facilities.csv", folder)
        tables["facilities"] = TableSpec(files=["facilities.csv"])
    return run(folder, tables)


def test_unknown_facility_without_facility_table_is_caught_with_a_warning(
    tmp_path: Path,
) -> None:
    r = _interviews_and_routine(tmp_path, facilities=False)
    no_row_lost(r, "interviews", 2)
    assert reasons(r, "interviews") == {3: "unknown_reference:facility_id"}
    assert len(r.warnings) == 1
    assert "no facilities table" in r.warnings[0] and "derived from the data" in r.warnings[0]
    assert "WARNING no facilities table" in r.summary()


def test_unknown_facility_against_the_facility_table(tmp_path: Path) -> None:
    r = _interviews_and_routine(tmp_path, facilities=True)
    assert reasons(r, "interviews") == {3: "unknown_reference:facility_id"}
    assert not r.warnings


def test_without_any_facility_list_the_warning_says_ids_are_not_checked(tmp_path: Path) -> None:
    (tmp_path / "iv.csv").write_text(f"{H}\nI1,ZZ-F999,2024-03-05,2024Q1,male,\n")
    r = run(tmp_path, {"interviews": TableSpec(files=["iv.csv"])})
    no_row_lost(r, "interviews", 1)
    assert "are not checked" in r.warnings[0] and "ZZ-F999" in r.warnings[0]


def test_cli_summary_lists_every_failing_rule_with_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from clm_research.pipeline import cli_validate

    rows = [
        "I01,XT-F001,2024-03-05,2024Q1,female,true",  # fine
        "I02,XT-F999,2024-03-05,2024Q1,female,true",  # unknown facility
        "I03,XT-F001,2031-03-05,2031Q1,female,true",  # future date and round
        "I04,XT-F001,2024-05-05,2024Q1,female,true",  # outside its round
        "I05,XT-F001,2024-03-05,2024-Q1,female,true",  # bad round code
        "I06,XT-F001,2024-03-05,2024Q1,F,true",  # sex not allowed
        "I07,,2024-03-05,2024Q1,female,true",  # no facility
        "I01,XT-F001,2024-03-05,2024Q1,female,true",  # duplicate id
    ]
    raw = tmp_path / "data" / "raw" / "XT"
    raw.mkdir(parents=True)
    (raw / "interviews.csv").write_text(H + "\n" + "\n".join(rows) + "\n")
    shutil.copy(BAD / "facilities.csv", raw)
    root = tmp_path / "project"
    (root / "params" / "countries").mkdir(parents=True)
    (root / "params" / "mappings").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname='x'\n")
    (root / "params" / "countries" / "XT.yaml").write_text(
        "code: XT\nname: Test\nbaseline_round: 2024Q1\nperiod: 2024Q1\nas_of: '2024-12-31'\n"
    )
    (root / "params" / "mappings" / "XT.yaml").write_text(
        "country: XT\nformat: canonical\ntables:\n  facilities: {files: [facilities.csv]}\n"
        "  interviews: {files: [interviews.csv]}\n"
    )
    monkeypatch.setenv("CLM_PROJECT_ROOT", str(root))
    monkeypatch.setenv("CLM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLM_REPORTS_DIR", str(tmp_path / "reports"))
    # the validate step without Great Expectations: the same summary
    monkeypatch.setattr(
        "clm_research.pipeline.validate_country",
        lambda c, s=None: validate_country(c, s, use_gx=False, data_docs=False, write=False),
    )
    assert cli_validate(["XT"]) == 1  # 7 of 8 rows quarantined: the gate fails
    out = capsys.readouterr().out
    expected = {
        "unknown_reference:facility_id": 1,
        "future_date:date": 1,
        "future_date:round": 1,
        "outside_round:date": 1,
        "pattern:round": 1,
        "allowed_values:sex": 1,
        "not_null:facility_id": 1,
        "duplicate_key:interview_id": 1,
    }
    for rule, n in expected.items():  # all eight, not only the top five
        assert any(
            rule in line and line.strip().endswith(f"{n} row(s)") for line in out.splitlines()
        ), rule
    assert "8 in        1 accepted      7 quarantined" in out


def test_facility_ids_as_programmes_have_them(tmp_path: Path) -> None:
    # a DHIS2 org-unit uid (11 letters and digits, DHIS2 developer manual), a Kenya Master
    # Facility List code (5 digits), a name where a programme has no codes, the demo's style;
    # a formula pasted from a spreadsheet, an id with a line break and a 120-character answer
    # are not ids
    good = ["DiszpKrYNg8", "13023", "Nkhata Bay", "St. Mary's (Mission)", "XT-F001"]
    bad = ["=VLOOKUP(A2;B:C;2)", "KE\n001", "x" * 120]
    lines = ["facility_id,name"] + [f'"{f}",{i}' for i, f in enumerate(good + bad)]
    (tmp_path / "fac.csv").write_text("\n".join(lines) + "\n")
    r = run(tmp_path, {"facilities": TableSpec(files=["fac.csv"])})
    no_row_lost(r, "facilities", len(good) + len(bad))
    accepted = set(r.accepted["facilities"]["facility_id"])
    assert accepted == set(good)
    assert all("pattern:facility_id" in v for v in reasons(r, "facilities").values())
