"""Mapping features real exports need (filters, aggregation, derived columns, not collected) and
the ingest checks that keep anything silently wrong out (missing values, ambiguous dates, absent
or repeated columns, mojibake).

Expected numbers are worked out by hand from the small files written here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clm_research.errors import DataQualityError, IngestError
from clm_research.ingest.mapping import Mapping, TableSpec, load_mapping
from clm_research.ingest.staging import stage_country
from clm_research.quality.gate import GateReport, run_gate
from clm_research.schema import TABLES
from clm_research.tables import StagedTable

ROOT = Path(__file__).resolve().parents[1]

FACILITIES = (
    "facility_id,name,region,district,type,ownership\n"
    "XT-F001,Alpha,North,North A,clinic,public\n"
    "XT-F002,Beta,North,North B,clinic,public\n"
)
#: routine-like export by facility x month x age group x sex (fake numbers)
ROUTINE = (
    "site,month,sex,age,on_art,tested,suppressed,started\n"
    "XT-F001,2024-01,both,0-14,10,4,3,1\n"  # row 2
    "XT-F001,2024-01,both,15+,90,40,36,5\n"  # row 3
    "XT-F001,2024-01,female,15+,60,30,27,3\n"  # row 4: filtered (sex)
    "XT-F002,2024-01,both,0-14,5,,,0\n"  # row 5: tested missing
    "XT-F002,2024-01,both,15+,50,20,22,2\n"  # row 6: suppressed > tested in a part
    "XT-F001,2024-02,both,0-14,11,5,4,2\n"  # row 7
    "XT-F001,2024-02,both,15+,95,41,30,abc\n"  # row 8: started unreadable
    ",,,,,,,\n"  # row 9: blank -> filtered (the filter is unknown on it)
)


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding=encoding)


def routine_spec(**over: object) -> TableSpec:
    spec: dict[str, object] = {
        "files": ["routine.csv"],
        "filter": "sex == 'both'",
        "not_collected": ["interruptions", "prep_new", "tests", "positives"],
        "columns": {
            "facility_id": "site",
            "period": "month",
            "tx_curr": "on_art",
            "tx_new": "started",
            "vl_tested": "tested",
            "vl_suppressed": "suppressed",
        },
        "aggregate": {
            "by": ["facility_id", "period"],
            "columns": {
                "tx_curr": "sum",
                "tx_new": "sum",
                "vl_tested": "sum",
                "vl_suppressed": "sum",
            },
            "checks": ["vl_suppressed <= vl_tested"],
        },
    }
    spec.update(over)
    return TableSpec.model_validate(spec)


def stage(
    tmp_path: Path, spec: TableSpec, text: str = ROUTINE, table: str = "routine", **kw: object
) -> tuple[GateReport, list, dict[str, StagedTable]]:
    write(tmp_path, "facilities.csv", FACILITIES)
    write(tmp_path, spec.files[0], text, **kw)  # type: ignore[arg-type]
    mp = Mapping(
        country="XT", tables={"facilities": TableSpec(files=["facilities.csv"]), table: spec}
    )
    staged, inputs, errors, _ = stage_country("XT", mp, tmp_path)
    if errors:
        raise DataQualityError(errors[0])
    report = run_gate("XT", staged, use_gx=False, data_docs=False)
    return report, inputs, staged


def frame(staged: dict[str, StagedTable], table: str = "routine") -> pd.DataFrame:
    """The staged table with its rules, indexed by its key (values before the gate)."""
    t = staged[table]
    f = t.frame.copy()
    f["rules"] = [";".join(k for k, m in t.prefailed.items() if m[i]) for i in range(len(f))]
    return f.set_index(list(TABLES[table].primary_key))


Run = tuple[GateReport, list, dict[str, StagedTable]]


@pytest.fixture(scope="module")
def routine_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return stage(tmp_path_factory.mktemp("routine"), routine_spec())


def test_filter_counts_rows_and_nothing_is_lost(routine_run: Run) -> None:
    report, inputs, _ = routine_run
    info = next(i for i in inputs if i.table == "routine")
    assert info.rows == 8 and info.filter == "sex == 'both'"
    assert info.filtered_rows == 2  # the female row and the blank row
    # 6 rows kept -> 3 facility-months (F001 Jan, F002 Jan, F001 Feb)
    assert info.aggregate["rows_in"] == 6 and info.aggregate["rows_out"] == 3
    t = report.tables["routine"]
    assert t.accepted + t.quarantined == info.aggregate["rows_out"]
    assert info.rows == info.filtered_rows + info.aggregate["rows_in"]


def test_aggregate_sums_age_groups_and_flags_parts(routine_run: Run) -> None:
    _, _, staged = routine_run
    acc = frame(staged)
    # F001 Jan: 10 + 90 on ART, 4 + 40 tested, 3 + 36 suppressed, 1 + 5 started
    row = acc.loc[("XT-F001", "2024-01")]
    assert (row["tx_curr"], row["vl_tested"], row["vl_suppressed"], row["tx_new"]) == (
        100,
        44,
        39,
        6,
    )
    assert acc.loc[("XT-F001", "2024-01"), "rules"] == ""
    # not collected: absent, not empty
    for col in ("interruptions", "prep_new", "tests", "positives"):
        assert col not in acc.columns
    q = acc
    # F002 Jan: tested missing in the 0-14 part -> the sum stays missing; and its 15+ part has
    # 22 suppressed of 20 tested -> inconsistent even though the totals are not comparable
    f2 = q.loc[("XT-F002", "2024-01")]
    assert pd.isna(f2["vl_tested"]) and "inconsistent:vl_suppressed" in f2["rules"]
    assert f2["tx_curr"] == 55
    # F001 Feb: one part's 'started' unreadable -> the group is quarantined, never a smaller sum
    f1 = q.loc[("XT-F001", "2024-02")]
    assert "type:tx_new" in f1["rules"] and pd.isna(f1["tx_new"])


def test_sum_skip_missing_and_mean(tmp_path: Path) -> None:
    spec = routine_spec(
        aggregate={
            "by": ["facility_id", "period"],
            "columns": {
                "tx_curr": "mean",
                "tx_new": "first",
                "vl_tested": "sum",
                "vl_suppressed": "sum",
            },
            "skip_missing": ["vl_tested", "vl_suppressed"],
        },
        filter="sex == 'both' and site == 'XT-F002'",
    )
    _, _, staged = stage(tmp_path, spec)
    row = frame(staged).loc[("XT-F002", "2024-01")]
    # mean of 5 and 50 = 27.5 -> 28 (integer column); first started = 0; tested 20 (missing skipped)
    assert (row["tx_curr"], row["tx_new"], row["vl_tested"], row["vl_suppressed"]) == (
        28,
        0,
        20,
        22,
    )


def test_derived_expression_and_template(tmp_path: Path) -> None:
    text = (
        "site,year,mon,hiv_pos,hiv_neg\n"
        "XT-F001,2023,12,3,7\nXT-F002,2023,12,,5\nXT-F002,2024,03,0,0\n"
    )
    spec = TableSpec.model_validate(
        {
            "files": ["t.csv"],
            "not_collected": ["tx_curr", "tx_new", "interruptions", "vl_suppressed", "prep_new"],
            "columns": {
                "facility_id": "site",
                "period": {"template": "{year}-{mon}"},  # '03' stays '03'
                "tests": {"expr": "hiv_pos + hiv_neg"},
                "positives": "hiv_pos",
                "vl_tested": {"expr": "hiv_pos / (hiv_pos + hiv_neg) * 100"},
            },
        }
    )
    _, _, staged = stage(tmp_path, spec, text)
    acc = frame(staged)
    assert (acc["rules"] == "").all()
    assert acc.loc[("XT-F001", "2023-12"), "tests"] == 10
    assert acc.loc[("XT-F001", "2023-12"), "vl_tested"] == 30
    # a missing operand -> missing; a division by zero -> missing (never 0 or infinity)
    assert pd.isna(acc.loc[("XT-F002", "2023-12"), "tests"])
    assert pd.isna(acc.loc[("XT-F002", "2024-03"), "vl_tested"])


def test_filter_on_kobo_path_with_backticks(tmp_path: Path) -> None:
    text = (
        "_uuid,group_a/facility,_submission_time,consent/agree\n"
        "u1,XT-F001,2024-02-01,yes\nu2,XT-F001,2024-02-02,no\nu3,XT-F002,2024-02-03,\n"
    )
    spec = TableSpec.model_validate(
        {
            "files": ["k.csv"],
            "filter": "`consent/agree` == 'yes'",
            "columns": {
                "interview_id": "_uuid",
                "facility_id": "group_a/facility",
                "date": "_submission_time",
                "round": {"derive": "quarter", "source": "date"},
            },
        }
    )
    write(tmp_path, "facilities.csv", FACILITIES)
    write(tmp_path, "k.csv", text)
    mp = Mapping(
        country="XT",
        format="kobo",
        tables={
            "facilities": TableSpec(files=["facilities.csv"], reader="canonical"),
            "interviews": spec,
        },
    )
    staged, inputs, errors, _ = stage_country("XT", mp, tmp_path)
    assert not errors
    assert staged["interviews"].frame["interview_id"].tolist() == ["u1"]
    assert next(i for i in inputs if i.table == "interviews").filtered_rows == 2


def bad_yaml(tmp_path: Path, table_yaml: str) -> str:
    p = tmp_path / "XT.yaml"
    p.write_text("country: XT\ntables:\n  routine:\n    files: [r.csv]\n" + table_yaml)
    with pytest.raises(IngestError) as e:
        load_mapping(p)
    msg = str(e.value)
    assert "XT.yaml" in msg
    return msg


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        ("    filter: \"sex = 'both'\"\n", "tables.routine.filter"),
        ("    not_collected: [tests]\n    columns: {tests: t}\n", "not_collected and also mapped"),
        ("    not_collected: [period]\n", "identifies a row of routine"),
        ("    not_collected: [nonsense]\n", "not_collected: 'nonsense'"),
        ("    columns: {tests: {expr: 'a + '}}\n", "tables.routine.columns.tests"),
        (
            "    columns: {tests: t, facility_id: f}\n    aggregate: {by: [facility_id]}\n",
            "neither in 'by' nor in 'columns'",
        ),
        ("    aggregate: {by: [facility_id], columns: {period: sum}}\n", "needs a number column"),
        (
            "    aggregate: {by: [facility_id], checks: ['vl_suppressed <= nothing']}\n",
            "aggregate.checks[0]",
        ),
    ],
)
def test_mapping_errors_name_file_and_key(tmp_path: Path, yaml: str, expected: str) -> None:
    assert expected in bad_yaml(tmp_path, yaml)


# --- nothing silently wrong on the way in ------------------------------------------------------


def test_dhis2_null_empty_or_absent_value_stays_missing(tmp_path: Path) -> None:
    values = [
        {"dataElement": "deTx", "period": "202403", "orgUnit": "ou1", "value": "40"},
        {"dataElement": "deVl", "period": "202403", "orgUnit": "ou1", "value": None},  # null
        {"dataElement": "deTx", "period": "202404", "orgUnit": "ou1", "value": ""},  # empty
        {"dataElement": "deVl", "period": "202404", "orgUnit": "ou1"},  # absent
        # a total with a missing part is missing, not the sum of the other parts
        {"dataElement": "deTx", "period": "202405", "orgUnit": "ou1", "value": "7",
         "categoryOptionCombo": "male"},
        {"dataElement": "deTx", "period": "202405", "orgUnit": "ou1", "value": None,
         "categoryOptionCombo": "female"},
    ]  # fmt: skip
    write(tmp_path, "dv.json", json.dumps({"dataValues": values}))
    spec = TableSpec(
        files=["dv.json"],
        reader="dhis2",
        data_elements={"deTx": "tx_curr", "deVl": "vl_tested"},
        not_collected=[
            "tx_new",
            "interruptions",
            "vl_suppressed",
            "prep_new",
            "tests",
            "positives",
        ],
        org_units={"ou1": "XT-F001"},
    )
    _, _, staged = stage(tmp_path, spec, text=json.dumps({"dataValues": values}))
    acc = frame(staged).reset_index("facility_id")
    assert (acc["rules"] == "").all()  # missing, not a failure and not 0
    assert acc.loc["2024-03", "tx_curr"] == 40 and pd.isna(acc.loc["2024-03", "vl_tested"])
    assert pd.isna(acc.loc["2024-04", "tx_curr"]) and pd.isna(acc.loc["2024-04", "vl_tested"])
    assert pd.isna(acc.loc["2024-05", "tx_curr"])


def interviews_spec(**over: object) -> TableSpec:
    spec: dict[str, object] = {
        "files": ["i.csv"],
        "columns": {
            "interview_id": "id",
            "facility_id": "facility",
            "date": "when",
            "round": {"derive": "quarter", "source": "date"},
            # required by the data model today; not what these tests are about
            "sex": {"constant": "female"},
            "key_population": {"constant": "none"},
            "on_art": {"constant": True},
        },
    }
    spec.update(over)
    return TableSpec.model_validate(spec)


def test_date_read_two_ways_is_an_error(tmp_path: Path) -> None:
    text = "id,facility,when\na,XT-F001,25/03/2024\nb,XT-F001,03/04/2024\n"
    spec = interviews_spec(date_formats=["%d/%m/%Y", "%m/%d/%Y"])
    with pytest.raises(DataQualityError) as e:
        stage(tmp_path, spec, text, table="interviews")
    msg = str(e.value)
    assert "column date" in msg and "'03/04/2024'" in msg and "[rule: ambiguous_date]" in msg
    assert "'25/03/2024'" not in msg  # only one format reads it: no ambiguity
    # the same value under one declared format is read, not refused
    report, _, _ = stage(tmp_path, interviews_spec(date_formats=["%d/%m/%Y"]), text, "interviews")
    assert sorted(report.accepted["interviews"]["date"].dt.strftime("%Y-%m-%d")) == [
        "2024-03-25",
        "2024-04-03",
    ]


def test_mapped_column_absent_names_key_and_closest_headers(tmp_path: Path) -> None:
    text = "id,facility,when,how satisfied\na,XT-F001,2024-03-01,4\n"
    spec = interviews_spec()
    spec.columns["satisfaction"] = "How satisfied are you"  # optional target, absent source
    with pytest.raises(DataQualityError) as e:
        stage(tmp_path, spec, text, table="interviews")
    msg = str(e.value)
    assert "tables.interviews.columns.satisfaction" in msg
    assert "'how satisfied'" in msg and "[rule: missing_column]" in msg


def test_repeated_header_error_only_when_used(tmp_path: Path) -> None:
    text = "id,facility,when,Please specify,Please specify\na,XT-F001,2024-03-01,x,y\n"
    # dropped as personal free text: fine
    write(tmp_path, "facilities.csv", FACILITIES)
    write(tmp_path, "i.csv", text)
    mp = Mapping.model_validate(
        {
            "country": "XT",
            "personal": {"drop": ["Please specify*"]},
            "tables": {
                "facilities": {"files": ["facilities.csv"]},
                "interviews": interviews_spec().model_dump(by_alias=True),
            },
        }
    )
    staged, inputs, errors, _ = stage_country("XT", mp, tmp_path)
    assert not errors and len(staged["interviews"]) == 1
    assert next(i for i in inputs if i.table == "interviews").duplicate_headers == [
        "Please specify"
    ]
    # read by the mapping: an error naming the repeated header
    with pytest.raises(DataQualityError) as e:
        stage(tmp_path, interviews_spec(filter="`Please specify` == 'x'"), text, "interviews")
    assert "'Please specify'" in str(e.value) and "[rule: duplicate_header]" in str(e.value)
    # named by position: the second one
    spec = interviews_spec(filter="`Please specify.1` == 'y'", ignore=["Please specify*"])
    report, _, _ = stage(tmp_path, spec, text, "interviews")
    assert report.tables["interviews"].accepted == 1


@pytest.mark.parametrize(
    ("cell", "encoding", "likely"),
    [
        ("Caf\u00c3\u00a9 clinic", "utf-8", "Café clinic"),  # UTF-8 read as cp1252 and re-saved
        ("nurse\u00e2\u20ac\u2122s room", "utf-8", "nurse’s room"),
        ("nurse\u0092s room", "utf-8", "nurse’s room"),  # cp1252 read as Latin-1 (C1 control)
    ],
)
def test_mojibake_reported_with_likely_encoding(
    tmp_path: Path, cell: str, encoding: str, likely: str
) -> None:
    text = f"id,facility,when,note\na,XT-F001,2024-03-01,{cell}\n"
    spec = interviews_spec(ignore=["note"])
    with pytest.raises(DataQualityError) as e:
        stage(tmp_path, spec, text, "interviews", encoding=encoding)
    msg = str(e.value)
    assert "[rule: encoding]" in msg and likely in msg and "'note'" in msg
    assert ("cp1252" in msg) if "\u0092" in cell else ("UTF-8" in msg)


def test_real_accents_are_not_mojibake(tmp_path: Path) -> None:
    text = "id,facility,when,note\na,XT-F001,2024-03-01,São Tomé – Ação\n"
    report, _, _ = stage(tmp_path, interviews_spec(ignore=["note"]), text, "interviews")
    assert report.tables["interviews"].accepted == 1
    assert np.all(report.accepted["interviews"]["interview_id"] == "a")


def test_headers_differing_only_in_case_are_ambiguous(tmp_path: Path) -> None:
    text = "id,facility,when,Sex,sex \na,XT-F001,2024-03-01,female,male\n"
    spec = interviews_spec()
    spec.columns["sex"] = "SEX"
    with pytest.raises(DataQualityError) as e:
        stage(tmp_path, spec, text, "interviews")
    assert "'Sex', 'sex '" in str(e.value) and "[rule: duplicate_header]" in str(e.value)


def test_birth_dates_read_two_ways_error_without_values(tmp_path: Path) -> None:
    text = "id,facility,when,dob\na,XT-F001,2024-03-01,03/04/1990\n"
    write(tmp_path, "facilities.csv", FACILITIES)
    write(tmp_path, "i.csv", text)
    mp = Mapping.model_validate(
        {
            "country": "XT",
            "personal": {"date_of_birth": "dob", "date_of_birth_formats": ["%d/%m/%Y", "%m/%d/%Y"]},
            "tables": {
                "facilities": {"files": ["facilities.csv"]},
                "interviews": interviews_spec().model_dump(by_alias=True),
            },
        }
    )
    _, _, errors, _ = stage_country("XT", mp, tmp_path)
    assert len(errors) == 1 and "[rule: ambiguous_date]" in errors[0] and "'dob'" in errors[0]
    assert "1990" not in errors[0]  # a birth date is never shown


def test_mapping_benchmark_accounts_for_every_row(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "_mapping.py"),
            "--cache",
            str(tmp_path),
            "--rows",
            "2000",
            "--repeats",
            "1",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    # 3 facilities x 60 months x 3 sexes x 4 age groups
    assert res["rows"] == 3 * 60 * 12 == 2160
    plain, rich = res["counts"]["plain"], res["counts"]["rich"]
    assert plain["rows_in"] == rich["rows_in"] == 2160
    assert plain["accepted"] + plain["quarantined"] == 2160
    assert rich["filtered"] == 2160 * 2 // 3  # female and male rows left out
    assert rich["combined_into"] == rich["accepted"] + rich["quarantined"] == 3 * 60
    assert rich["quarantined"] == 0 and res["ratio_rich_vs_plain"] > 0
