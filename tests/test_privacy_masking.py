"""Masking personal data typed into the wrong column, in both directions.

Personal data (names, phone numbers, e-mail addresses, national ids, dates of birth) must be
masked in any column; legitimate data (facility, organisation and district names, ids such as
XA-F001 or interview uuids, numbers in numeric columns, dates in date columns, answer labels a
mapping has not yet learnt) must never be. The legitimate values come from the data model, the
demo generator, the bad-input corpus and, where present, two real public exports (the Kenyan
CLM client survey and the Malawi Naomi district data).
"""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clm_research.ingest.privacy import (
    REASONS,
    column_policy,
    is_masked,
    mask_label_counts,
    mask_personal_data,
    mask_text,
)
from clm_research.schema import TABLES

AS_OF = "2025-01-15"
REF = Path(__file__).resolve().parents[2] / "shared" / "reference-data"
KENYA = REF / "kenya_clm_client_survey_2024.csv"
MALAWI = REF / "malawi_naomi_demo"


def masked(table: str, column: str, value: str) -> str | None:
    return mask_text(value, column_policy(TABLES[table].column(column)), pd.Timestamp(AS_OF).date())


# --------------------------------------------------------------------------------------------
# personal data: masked wherever they are typed
# --------------------------------------------------------------------------------------------

PERSONAL = [
    # names in closed columns (categories, yes/no, numbers, dates, coded strings)
    ("interviews", "sex", "Canarya Zwelitsha-Qorvane", "name"),
    ("interviews", "sex", "Amara", "name"),
    ("interviews", "sex", "Mary", "name"),  # one letter from "may": short words match exactly
    ("interviews", "key_population", "amara moyo", "name"),
    ("interviews", "key_population", "A. Moyo", "name"),
    ("interviews", "key_population", "Jean-Baptiste O'Neill", "name"),
    ("interviews", "on_art", "Thandi Ndlovu", "name"),
    ("interviews", "age", "Sipho Khumalo", "name"),
    ("interviews", "date", "Tendai Banda", "name"),
    ("interviews", "round", "Nia Mensah", "name"),
    ("observations", "arv_stockout", "Kofi Okafor", "name"),
    # phone numbers, in the common ways of writing them
    ("interviews", "age", "+999 555 010 7341", "phone number"),
    ("interviews", "age", "+254712345678", "phone number"),
    ("interviews", "age", "0712345678", "phone number"),
    ("interviews", "age", "0712 345 678", "phone number"),
    ("interviews", "wait_minutes", "(021) 555-0107", "phone number"),
    ("interviews", "wait_minutes", "00 27 21 555 0107", "phone number"),
    ("interviews", "sex", "071-234-5678", "phone number"),
    ("interviews", "satisfaction", "071.234.5678", "phone number"),
    ("interviews", "interview_id", "+999 555 010 7341", "phone number"),
    ("facilities", "name", "Morida Clinic, call 0712 345 678", "phone number"),
    ("routine", "tx_curr", "+27 82 555 1234", "phone number"),
    # e-mail addresses
    ("interviews", "on_art", "canarya.zwelitsha@example.org", "e-mail address"),
    ("interviews", "interview_id", "amara.moyo@mail.co.za", "e-mail address"),
    ("organisations", "name", "info+clm@network.org", "e-mail address"),
    ("interviews", "date", "t.banda@health.go.ke", "e-mail address"),
    # national ids: long numbers, letters and digits
    ("interviews", "age", "8501015800088", "national id"),  # 13 digits (South Africa)
    ("interviews", "age", "12345678", "national id"),  # 8 digits (Kenya)
    ("interviews", "sex", "63-123456X42", "national id"),  # Zimbabwe
    ("interviews", "key_population", "CM90012345ABCD", "national id"),  # Uganda NIN
    ("interviews", "wait_minutes", "A1234567", "national id"),
    ("facilities", "district", "ID 8501015800088", "national id"),
    # dates of birth (at least 15 years before the extraction date)
    ("interviews", "wait_minutes", "1961-03-14", "date of birth"),
    ("interviews", "wait_minutes", "14/03/1961", "date of birth"),
    ("interviews", "age", "14.03.61", "date of birth"),
    ("interviews", "sex", "14 March 1961", "date of birth"),
    ("interviews", "sex", "Mar 14, 1983", "date of birth"),
    ("interviews", "round", "1983-07", "date of birth"),
    ("interviews", "on_art", "07/1983", "date of birth"),
    ("interviews", "interview_id", "1983-07-19", "date of birth"),
    ("facilities", "name", "born 2009-12-31", "date of birth"),  # 16 calendar years
]


@pytest.mark.parametrize(("table", "column", "value", "reason"), PERSONAL)
def test_personal_data_is_masked(table: str, column: str, value: str, reason: str) -> None:
    assert masked(table, column, value) == f"[masked: {reason}]"


def test_several_kinds_in_one_cell() -> None:
    assert (
        masked("interviews", "key_population", "Pipit Oyelaran-Wexford +999 555 010 9262")
        == "[masked: name, phone number]"
    )
    assert (
        masked("interviews", "sex", "Amara, amara@mail.org, 0712345678, born 1990-01-02")
        == "[masked: name, phone number, e-mail address, date of birth]"
    )


# --------------------------------------------------------------------------------------------
# legitimate data: never masked
# --------------------------------------------------------------------------------------------

LEGITIMATE = [
    # ids in id columns: demo ids, uuids, Kobo and ODK ids, DHIS2 uids, pseudonyms
    ("facilities", "facility_id", "XA-F001"),
    ("interviews", "interview_id", "XA-I0000001"),
    ("interviews", "interview_id", "XA-E000123"),
    ("interviews", "interview_id", "550e8400-e29b-41d4-a716-446655440000"),
    ("interviews", "interview_id", "uuid:550e8400-e29b-41d4-a716-446655440000"),
    ("interviews", "interview_id", "2390022"),  # Kobo _id / the Kenyan export's Survey ID
    ("interviews", "interview_id", "234567890123"),
    ("interviews", "interview_id", "2024-0042-0007"),
    ("interviews", "interview_id", "a3f9c01b22d4e5f6"),  # HMAC pseudonym
    ("routine", "facility_id", "DiszpKrYNg8"),
    ("outreach", "site_id", "XA-S001"),
    # names of facilities, organisations, regions and districts (often named after people)
    ("facilities", "name", "Morida Health Centre 2"),
    ("facilities", "name", "Nelson Mandela Academic Hospital"),
    ("facilities", "name", "St Elizabeth Chiga Health Centre"),
    ("facilities", "name", "Kisumu County Referral Hospital (MFL 13023)"),
    ("facilities", "region", "Luko Region"),
    ("facilities", "district", "Chitipa"),
    ("organisations", "name", "Koyoba Network of People Living with HIV"),
    ("outreach", "district", "Newen"),
    # numbers in numeric columns
    ("interviews", "age", "34"),
    ("interviews", "age", "007"),
    ("interviews", "wait_minutes", "77.0"),
    ("interviews", "wait_minutes", "1234.5"),
    ("interviews", "wait_minutes", "-15"),
    ("interviews", "wait_minutes", "2,000"),
    ("routine", "tests", "1234567"),
    ("outreach", "condoms_distributed", "10683"),
    ("organisations", "funding_donor_share", "0.61"),
    # dates in date columns, recent dates elsewhere (an event typed into the wrong column)
    ("interviews", "date", "2023-02-17"),
    ("interviews", "date", "1961-03-14"),  # the column's data (a range rule's business)
    ("interviews", "date", "2024-03-05T10:11:12.000Z"),
    ("interviews", "date", "28-Feb-24"),
    ("interviews", "date", "14 Mar 2024"),
    ("issues", "resolved_on", "05/03/2024"),
    ("interviews", "wait_minutes", "2024-03-01"),
    ("interviews", "round", "01/03/23"),  # 2023, or 1923: a recent reading exists
    # coded strings
    ("interviews", "round", "2024Q1"),
    ("interviews", "round", "2024-Q1"),
    ("routine", "period", "2024-03"),
    ("routine", "period", "202403"),
    ("routine", "period", "2024W13"),
    ("routine", "period", "2023-2024"),
    # answers, known and not yet mapped, misspelt, in other languages, spreadsheet errors
    ("interviews", "sex", "female"),
    ("interviews", "sex", "Femal"),
    ("interviews", "sex", "F"),
    ("interviews", "sex", "Adolescent Girl/Boy "),
    ("interviews", "sex", "Woman"),
    ("interviews", "sex", "Femme"),
    ("interviews", "sex", "Mulher"),
    ("interviews", "sex", "Prefer not to say"),
    ("interviews", "key_population", "sex worker"),
    ("interviews", "key_population", "Female Sex Worker"),
    ("interviews", "key_population", "Men who have sex with men"),
    ("interviews", "key_population", "People who inject drugs"),
    ("interviews", "key_population", "MSM"),
    ("interviews", "key_population", "Transgnder"),
    ("interviews", "on_art", "Yes"),
    ("interviews", "on_art", "Dont Know"),
    ("interviews", "on_art", "maybe"),
    ("interviews", "on_art", "N/A"),
    ("interviews", "on_art", "Oui"),
    ("interviews", "on_art", "Ndiyo"),
    ("interviews", "satisfaction", "4 clean"),
    ("interviews", "age", "thirty"),
    ("interviews", "age", "Thirty Five"),
    ("interviews", "wait_minutes", "12 min"),
    ("interviews", "wait_minutes", "30-45 mins"),
    ("interviews", "wait_minutes", "#DIV/0!"),
    ("interviews", "age", "#NAME?"),
    ("interviews", "sex", "[masked: name]"),  # masking twice changes nothing
]


@pytest.mark.parametrize(("table", "column", "value"), LEGITIMATE)
def test_legitimate_data_is_not_masked(table: str, column: str, value: str) -> None:
    assert masked(table, column, value) is None


def test_dates_of_birth_are_measured_from_the_extraction_date() -> None:
    policy = column_policy(TABLES["interviews"].column("wait_minutes"))
    born = "2010-06-01"
    assert mask_text(born, policy, pd.Timestamp("2025-01-15").date()) == "[masked: date of birth]"
    assert mask_text(born, policy, pd.Timestamp("2024-01-15").date()) is None  # 14 years
    # the minimum age comes from the data model (interviews.age), 15
    assert TABLES["interviews"].column("age").minimum == 15


def test_the_mapping_labels_are_answers_not_names() -> None:
    col = TABLES["interviews"].column("sex")
    assert mask_text("Kijana Mdogo", column_policy(col)) == "[masked: name]"
    policy = column_policy(col, labels=["Kijana Mdogo", "male"])
    assert mask_text("Kijana Mdogo", policy) is None


# --------------------------------------------------------------------------------------------
# whole tables
# --------------------------------------------------------------------------------------------


def _demo_frames() -> dict[str, pd.DataFrame]:
    from clm_research.demo import _csv_frame, generate_country

    demo = generate_country("XA")
    return {k: _csv_frame(v).astype(object).where(v.notna(), None) for k, v in demo.clean.items()}


def test_no_cell_of_the_clean_demo_tables_is_masked() -> None:
    """Facility, organisation and district names, ids, numbers, dates: 60 facilities' worth."""
    for name, frame in _demo_frames().items():
        text = frame.map(lambda v: v if v is None else str(v))
        result = mask_personal_data(text, name, as_of=AS_OF)
        assert result.masks == {}, (name, result.counts)


def test_masking_a_table_counts_reasons_and_keeps_everything_else() -> None:
    frame = pd.DataFrame(
        {
            "interview_id": ["XT-I001", "XT-I002", "XT-I003", "XT-I004"],
            "sex": ["female", "Amara Moyo", None, "Amara Moyo"],
            "age": ["34", "+999 555 010 7341", "thirty", "41"],
            "on_art": [True, "yes", "a@b.org", None],  # values a mapping produced stay as they are
        }
    )
    result = mask_personal_data(frame, "interviews", as_of=AS_OF)
    out = result.frame.astype(object).where(result.frame.notna(), None)
    assert out["sex"].tolist() == ["female", "[masked: name]", None, "[masked: name]"]
    assert out["age"].tolist() == ["34", "[masked: phone number]", "thirty", "41"]
    assert out["on_art"].tolist() == [True, "yes", "[masked: e-mail address]", None]
    assert out["interview_id"].tolist() == frame["interview_id"].tolist()
    assert result.counts == {
        "sex": {"name": 2},
        "age": {"phone number": 1},
        "on_art": {"e-mail address": 1},
    }
    assert {k: v.tolist() for k, v in result.rule_masks().items()} == {
        "personal_data:sex": [False, True, False, True],
        "personal_data:age": [False, True, False, False],
        "personal_data:on_art": [False, False, True, False],
    }
    assert frame["sex"].iloc[1] == "Amara Moyo"  # the input is not modified
    again = mask_personal_data(result.frame, "interviews", as_of=AS_OF)
    assert again.masks == {}  # idempotent


def test_the_vectorised_first_pass_finds_what_the_detectors_find() -> None:
    """Columns of more than 2,000 rows are pre-filtered (pyarrow, RE2): a superset, never less."""
    values = [v for _, c, v in LEGITIMATE if c in ("interview_id", "age", "wait_minutes")]
    values += [v for _, c, v, _ in PERSONAL]
    for column in ("interview_id", "age", "wait_minutes", "sex"):
        small = mask_personal_data(pd.DataFrame({column: values}), "interviews", as_of=AS_OF)
        big = pd.DataFrame({column: values * (2_100 // len(values) + 1)})
        large = mask_personal_data(big, "interviews", as_of=AS_OF)
        n = len(values)
        expect = small.frame[column].tolist()
        got = large.frame[column].tolist()
        assert all(got[i * n : (i + 1) * n] == expect for i in range(len(got) // n)), column


def test_unknown_labels_are_masked_and_merged() -> None:
    unknown = {"sex": {"Amara Moyo": 2, "Tendai Banda": 1, "Femal": 4}, "on_art": {"a@b.org": 1}}
    out = mask_label_counts(unknown, "interviews", as_of=AS_OF)
    assert out == {
        "sex": {"[masked: name]": 3, "Femal": 4},
        "on_art": {"[masked: e-mail address]": 1},
    }


def test_reason_codes_are_the_documented_ones() -> None:
    assert REASONS == ("name", "phone number", "e-mail address", "national id", "date of birth")
    assert is_masked("[masked: name]") and not is_masked("name")
    doc = (Path(__file__).resolve().parents[1] / "docs" / "data-protection.md").read_text()
    for reason in REASONS:
        assert f"[masked: {reason}]" in doc


# --------------------------------------------------------------------------------------------
# real public exports (read from ../shared/reference-data; skipped when absent)
# --------------------------------------------------------------------------------------------


@pytest.mark.reference
@pytest.mark.skipif(not MALAWI.is_dir(), reason=f"reference data absent: {MALAWI}")
def test_real_district_names_and_counts_are_not_masked() -> None:
    """Malawi's real area names (as districts and regions) and programme counts (as routine)."""
    art = pd.read_csv(MALAWI / "demo_art_number.csv", dtype=str, keep_default_na=False)
    areas = json.loads((MALAWI / "demo_areas.geojson").read_text())
    names = sorted({f["properties"]["area_name"] for f in areas["features"]})
    assert len(names) >= 40  # 69 areas at five levels, 40 distinct names
    fac = pd.DataFrame({"name": names, "region": names, "district": names})
    assert mask_personal_data(fac, "facilities", as_of=AS_OF).masks == {}
    routine = pd.DataFrame(
        {
            "facility_id": art["area_id"],
            "tx_curr": art["art_current"],
            "tx_new": art["art_new"],
            "vl_tested": art["vl_tested_12mos"],
            "vl_suppressed": art["vl_suppressed_12mos"],
        }
    )
    assert len(routine) == 830
    assert mask_personal_data(routine, "routine", as_of=AS_OF).masks == {}


@pytest.mark.reference
@pytest.mark.skipif(not KENYA.is_file(), reason=f"reference export absent: {KENYA}")
def test_real_survey_export_has_nothing_masked() -> None:
    """The Kenyan CLM export: its answers, facility names, ids and dates are all legitimate."""
    from clm_research.ingest.staging import stage_country

    mapping = Path(__file__).resolve().parents[1] / "docs" / "examples" / "kenya" / "mapping.yaml"
    _, inputs, errors, _ = stage_country("KE", mapping, REF, as_of="2024-03-31")
    assert not errors
    assert all(i.masked_cells == {} for i in inputs)
    with open(KENYA, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    for col in ("Facility name and MFL Code if applicable", "County", "Survey ID"):
        j = header.index(col)
        for r in rows[1:]:
            assert masked("facilities", "name", r[j]) is None, r[j]


# --------------------------------------------------------------------------------------------
# through ingestion: quarantine, manifest, file permissions
# --------------------------------------------------------------------------------------------

HEADER = (
    "interview_id,facility_id,date,round,sex,age,key_population,on_art,wait_minutes,"
    "got_all_medicines,treated_with_respect,confidentiality_breach,vl_result_received,"
    "satisfaction,denied_service,refill_months"
)
GOOD = "2024-03-05,2024Q1,female,34,none,true,25,true,5,false,true,4,false,3"


def test_ingestion_masks_before_the_quarantine_and_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clm_research.ingest.mapping import ColumnSpec, Mapping, TableSpec
    from clm_research.pipeline import ingest_country

    monkeypatch.setenv("CLM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLM_REPORTS_DIR", str(tmp_path / "reports"))
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "facilities.csv").write_text(
        "facility_id,name,region,district,type,ownership\n"
        "XT-F001,Nelson Mandela Clinic,Luko Region,Morida,clinic,public\n"
    )
    lines = [HEADER, f"XT-I001,XT-F001,{GOOD}"]
    lines.append(
        "XT-I002,XT-F001,2024-03-05,2024Q1,Amara Moyo,34,none,true,25,true,5,false,true,4,false,3"
    )
    lines.append(
        "XT-I003,XT-F001,2024-03-05,2024Q1,female,+999 555 010 7341,none,true,25,true,5,false,true,4,false,3"
    )
    lines.append(
        "XT-I004,XT-F001,2024-03-05,2024Q1,female,34,none,amara@mail.org,1961-03-14,true,5,false,true,4,false,3"
    )
    (raw / "interviews.csv").write_text("\n".join(lines) + "\n")
    mp = Mapping(
        country="XT",
        tables={
            "facilities": TableSpec(files=["facilities.csv"]),
            "interviews": TableSpec(
                files=["interviews.csv"],
                columns={"on_art": ColumnSpec(**{"from": "on_art", "values": {"ja": True}})},
            ),
        },
    )
    # max_share 1: the gate passes and publishes (a failing gate publishes nothing)
    report = ingest_country("XT", mapping=mp, raw_folder=raw, as_of=AS_OF, max_share=1.0)
    qdir = tmp_path / "data" / "quarantine" / "XT"
    q = pd.read_parquet(qdir / "interviews.parquet")
    assert dict(zip(q["source_row"], q["failed_rules"], strict=True)) == {
        3: "personal_data:sex; allowed_values:sex",
        4: "personal_data:age; type:age",
        5: "personal_data:on_art; personal_data:wait_minutes; type:on_art; type:wait_minutes",
    }
    assert q["sex"].tolist() == ["[masked: name]", "female", "female"]
    assert q["raw_values"].tolist() == [
        "",
        "age='[masked: phone number]'",
        "on_art='[masked: e-mail address]'; wait_minutes='[masked: date of birth]'",
    ]
    acc = pd.read_parquet(tmp_path / "data" / "processed" / "XT" / "interviews.parquet")
    assert acc["interview_id"].tolist() == ["XT-I001"]
    facilities = pd.read_parquet(tmp_path / "data" / "processed" / "XT" / "facilities.parquet")
    assert facilities["name"].tolist() == ["Nelson Mandela Clinic"]
    info = next(i for i in report.inputs if i.table == "interviews")
    assert info.masked_cells == {
        "sex": {"name": 1},
        "age": {"phone number": 1},
        "on_art": {"e-mail address": 1},
        "wait_minutes": {"date of birth": 1},
    }
    assert info.unknown_labels == {"on_art": {"[masked: e-mail address]": 1}}
    blob = b"".join(p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())
    text = "".join(
        pd.read_parquet(p).astype(str).to_csv() for p in (tmp_path / "data").rglob("*.parquet")
    )
    for secret in ("Amara", "555 010 7341", "amara@mail.org", "1961-03-14"):
        assert secret.encode() not in blob and secret not in text, secret
    assert "masked_cells" in (tmp_path / "data" / "processed" / "XT" / "manifest.json").read_text()
    # the quarantine: readable by its owner only
    if os.name == "posix":
        assert stat.S_IMODE(qdir.stat().st_mode) == 0o700
        for p in qdir.iterdir():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name
        processed = tmp_path / "data" / "processed" / "XT" / "interviews.parquet"
        assert stat.S_IMODE(processed.stat().st_mode) == 0o644
    assert np.all(acc["age"].notna())
