"""Ingestion of the demo exports and of the real Kenyan CLM survey export.

The demo's planted faults (truth.yaml, written by the generator) are the independent truth: each
must be quarantined with its rule, and the accepted rows must equal the generator's clean tables.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

REF = Path(__file__).resolve().parents[2] / "shared" / "reference-data"
KENYA = REF / "kenya_clm_client_survey_2024.csv"
KENYA_MAPPING = Path(__file__).resolve().parents[1] / "docs" / "examples" / "kenya" / "mapping.yaml"


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory):
    """XA demo written to a temporary data folder and ingested once (no GX)."""
    from clm_research.demo import write_demo
    from clm_research.pipeline import ingest_country

    root = tmp_path_factory.mktemp("clm")
    mp = pytest.MonkeyPatch()
    mp.setenv("CLM_DATA_DIR", str(root / "data"))
    mp.setenv("CLM_REPORTS_DIR", str(root / "reports"))
    write_demo(["XA"])
    raw = root / "data" / "raw" / "XA"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    report = ingest_country("XA")
    yield root, report, before
    mp.undo()


def test_every_planted_fault_is_quarantined_with_its_rule(demo_env) -> None:
    root, report, _ = demo_env
    truth = yaml.safe_load((root / "data" / "raw" / "XA" / "truth.yaml").read_text())
    faults = truth["faults"]
    assert faults
    for f in faults:
        q = pd.read_parquet(root / "data" / "quarantine" / "XA" / f"{f['table']}.parquet")
        # truth rows and source_row are both spreadsheet rows (header = 1)
        hit = q[q["source_row"] == f["row"]]
        assert len(hit) == 1, f
        labels = hit["failed_rules"].iloc[0].split("; ")
        assert any(lab.split(":")[0] == f["rule"] for lab in labels), (f, labels)
        if f["rule"] != "duplicate_key":
            assert f"{f['rule']}:{f['column']}" in labels, (f, labels)


def test_accepted_rows_are_the_clean_tables(demo_env) -> None:
    from clm_research.demo import generate_country

    root, report, _ = demo_env
    clean = generate_country("XA").clean
    for name, frame in clean.items():
        acc = pd.read_parquet(root / "data" / "processed" / "XA" / f"{name}.parquet")
        assert len(acc) == len(frame), name
    acc = pd.read_parquet(root / "data" / "processed" / "XA" / "interviews.parquet")
    assert set(acc["interview_id"]) == set(clean["interviews"]["interview_id"])
    faults = yaml.safe_load((root / "data" / "raw" / "XA" / "truth.yaml").read_text())["faults"]
    q = pd.read_parquet(root / "data" / "quarantine" / "XA" / "interviews.parquet")
    assert len(q) == sum(f["table"] == "interviews" for f in faults)


def test_no_row_lost_and_raw_untouched(demo_env) -> None:
    root, report, before = demo_env
    raw = root / "data" / "raw" / "XA"
    for name, t in report.gate.tables.items():
        with open(raw / f"{name}.csv", newline="", encoding="utf-8") as f:
            n = sum(1 for _ in csv.reader(f)) - 1
        assert t.input_rows == n and t.accepted + t.quarantined == n, name
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    assert after == before


def test_manifest(demo_env) -> None:
    root, report, _ = demo_env
    man = json.loads((root / "data" / "processed" / "XA" / "manifest.json").read_text())
    files = {Path(i["path"]).name: i for i in man["inputs"]}
    raw = root / "data" / "raw" / "XA"
    assert (
        files["interviews.csv"]["sha256"]
        == hashlib.sha256((raw / "interviews.csv").read_bytes()).hexdigest()
    )
    assert set(files["interviews.csv"]["personal_columns_removed"]) == {
        "client_name",
        "phone_number",
        "date_of_birth",
        "free_text",
    }
    assert man["mapping"]["file"].endswith("params/mappings/XA.yaml")
    assert (
        man["tables"]["interviews"]["accepted"] + man["tables"]["interviews"]["quarantined"]
        == man["tables"]["interviews"]["input_rows"]
    )
    assert all(not i["unmapped_columns"] for i in man["inputs"])


def test_no_personal_data_after_ingestion(demo_env) -> None:
    from clm_research.demo import CANARY_BIRTH_DATES, CANARY_FREE_TEXT, CANARY_NAMES, CANARY_PHONES

    root, _, _ = demo_env
    canaries = [*CANARY_NAMES, *CANARY_PHONES, *CANARY_BIRTH_DATES, *CANARY_FREE_TEXT]
    for folder in ("processed", "quarantine"):
        for p in (root / "data" / folder / "XA").iterdir():
            blob = p.read_bytes()
            text = (
                pd.read_parquet(p).astype(str).to_csv() if p.suffix == ".parquet" else blob.decode()
            )
            for c in canaries:
                assert c not in text and c.encode() not in blob, (p, c)
            if p.suffix == ".parquet":
                cols = set(pd.read_parquet(p).columns)
                assert not cols & {"client_name", "phone_number", "date_of_birth", "free_text"}


@pytest.mark.reference
@pytest.mark.skipif(not KENYA.is_file(), reason=f"reference export absent: {KENYA}")
def test_kenya_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clm_research.pipeline import ingest_country

    monkeypatch.setenv("CLM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLM_REPORTS_DIR", str(tmp_path / "reports"))
    # independent reading of the export with the csv module
    with open(KENYA, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    col = {h: i for i, h in reversed(list(enumerate(header)))}  # first occurrence of a header
    assert header.count("Please specify") == 15  # the repeated header
    sex = [r[col["How do you consider yourself? "]].strip() for r in body]
    facility = [r[col["Facility name and MFL Code if applicable"]].strip() for r in body]
    content = [tuple(c.strip() for c in r[1:]) for r in body]
    dup_rows = {i + 2 for i, c in enumerate(content) if c in content[:i]}
    errors = sorted(
        (i + 2, header[j])
        for i, r in enumerate(body)
        for j, c in enumerate(r)
        if c.strip() == "#NAME?"
    )
    expect_bad = {
        i + 2
        for i in range(len(body))
        # a blank sex or services answer is a declined or skipped question, not a fault
        if (sex[i] and sex[i] not in ("Female", "Male", "Adolescent Girl/Boy")) or not facility[i]
    } | dup_rows

    report = ingest_country("KE", mapping=KENYA_MAPPING, raw_folder=REF, as_of="2024-03-31")
    g = report.gate.tables["interviews"]
    assert g.input_rows == len(body) == 195
    assert g.accepted + g.quarantined == 195
    # the gate fails (more than 5% quarantined): nothing is published, the candidate is kept
    assert not report.gate.passed and not (tmp_path / "data" / "processed" / "KE").exists()
    (candidate,) = (tmp_path / "data" / "rejected" / "KE").iterdir()
    q = pd.read_parquet(candidate / "quarantine" / "interviews.parquet")
    assert set(q["source_row"].astype(int)) == expect_bad
    reasons = dict(zip(q["source_row"].astype(int), q["failed_rules"], strict=True))
    for r in dup_rows:
        assert "duplicate_key:submission" in reasons[r]
    for i, s in enumerate(sex):
        if s and s not in ("Female", "Male", "Adolescent Girl/Boy"):
            assert "allowed_values:sex" in reasons[i + 2]
        if not s:
            assert "sex" not in reasons.get(i + 2, "")
    info = next(i for i in report.inputs if i.table == "interviews")
    assert info.had_bom and info.delimiter == ","
    assert info.excel_error_cells == errors and len(errors) == 3
    assert "Please specify" in info.duplicate_headers
    assert info.duplicate_submissions == len(dup_rows) == 10
    # the travel-time bands are deliberately ignored, the education question is reported unmapped
    assert "How long does it take to reach this facility?" in info.ignored_columns
    assert "What is the highest level of education you completed?" in info.unmapped_columns
    assert not any(c.startswith("Please specify") for c in info.unmapped_columns)
    # accepted answers: Likert and yes/no recoded; age derived from the dropped date of birth
    acc = pd.read_parquet(candidate / "processed" / "interviews.parquet")
    assert set(acc["satisfaction"].dropna()) <= {1, 2, 3, 4, 5}
    assert acc["round"].unique().tolist() == ["2024Q1"]
    first = body[[i for i in range(len(body)) if i + 2 not in expect_bad][0]]
    dob = pd.to_datetime(first[col["What is your month; and year of birth"]], format="%d/%m/%Y")
    age = 2024 - dob.year - ((2, 28) < (dob.month, dob.day))
    assert acc.set_index("interview_id").loc[first[0], "age"] == age
    # no free text or birth date anywhere in the outputs
    blob = "".join(
        pd.read_parquet(p).astype(str).to_csv() for p in (tmp_path / "data").rglob("*.parquet")
    )
    for r in body:
        for c in (
            r[col["What is your month; and year of birth"]],
            r[col["What did you like about the services you received?"]],
        ):
            if len(c.strip()) > 8:
                assert c.strip() not in blob
    facs = pd.read_parquet(candidate / "processed" / "facilities.parquet")
    assert len(facs) == 22  # 23 names, two spellings of Kajulu/Gita


def test_cli_ingest(demo_env, capsys: pytest.CaptureFixture[str]) -> None:
    from clm_research.pipeline import cli_ingest

    assert cli_ingest(["XA"]) == 0
    out = capsys.readouterr().out
    assert "interviews.csv -> interviews" in out and "gate PASSED" in out
    assert cli_ingest(["QZ"]) == 1
    assert "no column mapping" in capsys.readouterr().out


def test_pseudonymised_ids_are_keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from clm_research.ingest.mapping import Mapping, PersonalSpec, TableSpec
    from clm_research.ingest.staging import stage_country

    bad = Path(__file__).parent / "data" / "bad"
    mp = Mapping(
        country="XT",
        personal=PersonalSpec(pseudonymise=["interview_id"]),
        tables={"interviews": TableSpec(files=["duplicated_ids.csv"])},
    )
    monkeypatch.setenv("CLM_PSEUDONYM_KEY", "k" * 24)
    staged, inputs, errors, _ = stage_country("XT", mp, bad)
    assert not errors and inputs[0].pseudonymised_columns == ["interview_id"]
    expect = hmac.new(b"k" * 24, b"XT-I001", "sha256").hexdigest()[:16]
    assert staged["interviews"].frame["interview_id"].iloc[0] == expect
    assert staged["interviews"].frame["interview_id"].iloc[1] != expect
