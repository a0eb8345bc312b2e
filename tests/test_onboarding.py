"""``clm new-country`` and ``clm check-mapping`` on a real export and on a CommCare export.

The Kenyan CLM exit-survey export has no licence: it is read from ``../shared/reference-data/``
(never copied into the project) and the tests that need it skip with the reason when it is
absent. What each test expects is read off the export's headers by hand (e.g. "Survey ID" is
the survey's id, "Created Date" its date written ``28-Feb-24``).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from clm_research.cli import main
from clm_research.errors import IngestError, ParamsError
from clm_research.ingest.mapping import load_mapping
from clm_research.onboarding import check_mapping, detect_format, new_country

ROOT = Path(__file__).resolve().parents[1]
KENYA = ROOT.parent / "shared" / "reference-data" / "kenya_clm_client_survey_2024.csv"
#: The reviewed mapping of the Kenyan export (the worked example of docs/own-data.md).
KENYA_MAPPING = next(
    p
    for p in (
        ROOT / "docs" / "examples" / "kenya" / "mapping.yaml",
        ROOT / "tests" / "data" / "mappings" / "kenya_client_survey.yaml",
    )
    if p.is_file()
)
COMMCARE = ROOT / "tests" / "data" / "commcare"
needs_kenya = pytest.mark.reference
needs_kenya_file = pytest.mark.skipif(
    not KENYA.is_file(),
    reason="the Kenyan export is read from ../shared/reference-data/ (no licence: not in the "
    "project), which is absent here",
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project (params/ and pyproject.toml) so nothing is written into the real one."""
    (tmp_path / "params" / "countries").mkdir(parents=True)
    (tmp_path / "params" / "mappings").mkdir()
    shutil.copy(ROOT / "params" / "framework.yaml", tmp_path / "params")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.setenv("CLM_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("CLM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


@needs_kenya
@needs_kenya_file
def test_new_country_from_the_kenyan_export(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-country", "KE", "--from-export", str(KENYA), "--name", "Kenya"]) == 0
    out = capsys.readouterr().out
    params = yaml.safe_load((project / "params" / "countries" / "KE.yaml").read_text())
    # dates in the export run from Feb 2024: one round, 2024Q1; latest date 28-Feb-24
    assert params["baseline_round"] == params["period"] == "2024Q1"
    assert str(params["as_of"]) == "2024-02-28"
    mapping = load_mapping(project / "params" / "mappings" / "KE.yaml")  # a valid mapping
    cols = mapping.tables["interviews"].column_specs()
    assert cols["interview_id"].from_ == "Survey ID"
    assert cols["date"].from_ == "Created Date"
    assert mapping.tables["interviews"].date_formats == ["%d-%b-%y"]
    assert cols["facility_id"].from_ == "Facility name and MFL Code if applicable"
    assert cols["sex"].from_ == "How do you consider yourself? "
    assert cols["sex"].values == {"Female": "female", "Male": "male"}
    assert cols["satisfaction"].from_.startswith("On a scale of 1 to 5; how satisfied")
    assert cols["round"].derive == "quarter"
    # personal data: the date of birth (age derived) and free-text answers are dropped
    assert mapping.personal.date_of_birth == "What is your month; and year of birth"
    assert "What did you like about the services you received?" in mapping.personal.drop
    # what the user is told: matches, what could not be matched, the next command
    assert "interview_id" in out and "Survey ID" in out
    # the export asks no key-population question: optional in the data model, so drafted as
    # not collected (never guessed from another question)
    assert "not in the export (not collected)" in out
    absent = out.split("not in the export (not collected):")[1].splitlines()[0]
    assert "key_population" in absent and "age" in absent
    assert "clm check-mapping KE" in out and "docs/own-data.md" in out
    # the export is copied as received to data/raw/KE/
    assert (project / "data" / "raw" / "KE" / KENYA.name).read_bytes() == KENYA.read_bytes()


@needs_kenya
@needs_kenya_file
def test_new_country_never_overwrites(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = project / "params" / "countries" / "KE.yaml"
    params.write_text("code: KE\n")
    with pytest.raises(ParamsError, match="--force"):
        new_country("KE", KENYA)
    assert params.read_text() == "code: KE\n"
    assert not (project / "params" / "mappings" / "KE.yaml").exists()
    assert main(["new-country", "KE", "--from-export", str(KENYA)]) == 2
    assert "--force" in capsys.readouterr().err
    new_country("KE", KENYA, force=True)
    assert params.read_text().startswith("# Parameters of KE")


@needs_kenya
@needs_kenya_file
def test_check_mapping_reports_per_column_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new_country("KE", KENYA, name="Kenya")
    shutil.copy(KENYA_MAPPING, project / "params" / "mappings" / "KE.yaml")
    before = _tree(project)
    result = check_mapping("KE")
    assert _tree(project) == before  # nothing written
    assert not result.errors
    by_col = {c.column: c for c in result.columns["interviews"]}
    # hand count: 195 data rows; "Survey ID" is filled in all of them
    assert result.rows["interviews"] == 195 and by_col["interview_id"].filled == 195
    assert by_col["date"].share == 1.0 and by_col["date"].source == "'Created Date'"
    assert by_col["round"].source == "quarter of date"
    # hand count (csv module): 10 rows repeat an earlier one in every column but "Survey ID",
    # 9 rows name no facility
    rows = list(csv.reader(KENYA.open(encoding="utf-8-sig", newline="")))
    head, body = rows[0], rows[1:]
    sid, fac = head.index("Survey ID"), head.index("Facility name and MFL Code if applicable")
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for r in body:
        key = tuple(c.strip() for j, c in enumerate(r) if j != sid)
        repeats += key in seen
        seen.add(key)
    rules = result.quarantined["interviews"]
    assert rules["duplicate_key:submission"] == repeats == 10
    assert rules["not_null:facility_id"] == sum(not r[fac].strip() for r in body) == 9
    assert result.accepted["interviews"] <= 195 - 19
    assert main(["check-mapping", "KE"]) == 0
    out = capsys.readouterr().out
    assert "nothing written" in out and "% parse" in out and "the gate would accept" in out


@needs_kenya
@needs_kenya_file
def test_check_mapping_names_the_failing_values(project: Path) -> None:
    new_country("KE", KENYA, name="Kenya")
    text = KENYA_MAPPING.read_text()
    # read the date with the wrong format: every value fails, the first ones are shown
    text = text.replace('date_formats: ["%d-%b-%y"]', 'date_formats: ["%d/%m/%Y"]')
    (project / "params" / "mappings" / "KE.yaml").write_text(text)
    result = check_mapping("KE")
    date = next(c for c in result.columns["interviews"] if c.column == "date")
    assert date.share == 0.0 and date.failing[0] == "28-Feb-24"
    assert any("28-Feb-24" in line for line in result.lines())


def test_draft_from_a_commcare_export(project: Path) -> None:
    draft, written = new_country("XT", COMMCARE / "exit_interview.csv")
    assert draft.fmt == "commcare" and draft.table == "interviews"
    cols = {m.column: m.header for m in draft.matches}
    assert cols["interview_id"] in {"formid", "form.meta.instanceID"}  # the same id in CommCare
    assert cols["facility_id"] == "form.visit.facility_code"
    assert cols["date"] == "form.visit.interview_date"
    for c in ("sex", "age", "key_population", "on_art", "wait_minutes", "satisfaction"):
        assert cols[c] == next(h for h in draft.headers if h.endswith("." + c) or h.endswith(c))
    # personal: names and phones by their names; the free-text comments by their answers
    assert {"form.client.client_name", "form.client.phone_number"} <= set(draft.personal)
    assert "form.experience.comments" in draft.personal
    mapping = load_mapping(project / "params" / "mappings" / "XT.yaml")
    assert mapping.format == "commcare"
    shutil.copy(COMMCARE / "facilities.csv", project / "data" / "raw" / "XT")
    spec = mapping.tables["interviews"]
    from clm_research.ingest.mapping import TableSpec

    tables = {
        "facilities": TableSpec(files=["facilities.csv"], reader="canonical"),
        "interviews": spec,
    }
    result = check_mapping("XT", mapping=mapping.model_copy(update={"tables": tables}))
    assert not result.errors, result.errors
    assert result.rows["interviews"] == 12  # the fixture's 12 submissions
    assert all(c.share == 1.0 for c in result.columns["interviews"])


def test_formats_are_recognised() -> None:
    assert detect_format(["formid", "form.client.sex", "form.meta.username"]) == "commcare"
    assert detect_format(["start", "client/sex", "_uuid", "_submission_time"]) == "kobo"
    assert detect_format(["SubmissionDate", "meta-instanceID", "sex", "KEY"]) == "odk"
    assert detect_format(["dataElement", "period", "orgUnit", "value"]) == "dhis2"
    assert detect_format(["interview_id", "sex"]) == "canonical"


def test_missing_mapping_points_to_the_guide(project: Path) -> None:
    with pytest.raises(IngestError) as e:
        load_mapping("QZ")
    msg = str(e.value)
    assert "clm new-country QZ" in msg and "docs/own-data.md" in msg
    assert "clm_research/" not in msg


def test_kobo_label_headers_matched_through_the_xlsform(project: Path, tmp_path: Path) -> None:
    """A Kobo export with question labels as headers: the XLSForm gives each label its name."""
    from openpyxl import Workbook

    wb = Workbook()
    survey = wb.active
    assert survey is not None
    survey.title = "survey"
    for row in (
        ["type", "name", "label::English (en)"],
        ["text", "clinic_code", "Which clinic?"],
        ["select_one gender", "sex", "Client is"],
        ["integer", "age", "How many years?"],
        ["select_one kp", "kp", "Which group do you belong to?"],
        ["text", "comment", "Anything to add?"],
    ):
        survey.append(row)
    choices = wb.create_sheet("choices")
    for row in (
        ["list_name", "name", "label::English (en)"],
        ["gender", "female", "Woman"],
        ["gender", "male", "Man"],
        ["kp", "fsw", "Sex worker"],
        ["kp", "none", "None of these"],
    ):
        choices.append(row)
    form = tmp_path / "form.xlsx"
    wb.save(form)
    export = tmp_path / "kobo.csv"
    export.write_text(
        "Which clinic?;Client is;How many years?;Which group do you belong to?;Anything to add?;"
        "_uuid;_submission_time\n"
        "XT-F001;Woman;34;Sex worker;Nurse Amara was kind;u1;2024-03-05T10:00:00\n"
        "XT-F002;Man;41;None of these;;u2;2024-03-06T11:00:00\n",
        encoding="utf-8",
    )
    draft, _ = new_country("XT", export, xlsform=form)
    assert draft.fmt == "kobo"
    cols = {m.column: m for m in draft.matches}
    assert cols["sex"].header == "Client is"  # by its XLSForm name "sex"
    assert cols["sex"].spec["values"] == {"Woman": "female", "Man": "male"}
    assert cols["age"].header == "How many years?"
    assert cols["interview_id"].header == "_uuid"
    assert "Anything to add?" in draft.personal  # an XLSForm text question: free text
    assert cols["facility_id"].header == "Which clinic?"  # the word "clinic"


def test_dhis2_data_element_names_matched(project: Path, tmp_path: Path) -> None:
    export = tmp_path / "datavalues.csv"
    export.write_text(
        "dataElement,period,orgUnit,categoryOptionCombo,value\n"
        "TX_CURR,202403,ouAlpha0001,HllvX50cXC0,120\n"
        "TX_NEW,202403,ouAlpha0001,HllvX50cXC0,7\n"
        "HTS_TST,202403,ouAlpha0001,HllvX50cXC0,300\n"
        "Clients with a cat,202403,ouAlpha0001,HllvX50cXC0,1\n",
        encoding="utf-8",
    )
    draft, _ = new_country("XT", export)
    assert draft.fmt == "dhis2" and draft.table == "routine"
    assert draft.data_elements == {"TX_CURR": "tx_curr", "TX_NEW": "tx_new", "HTS_TST": "tests"}
    assert draft.unused == ["Clients with a cat"] and draft.org_units == ["ouAlpha0001"]
    mapping = load_mapping(project / "params" / "mappings" / "XT.yaml")
    assert mapping.format == "dhis2"
    assert mapping.tables["routine"].data_elements["TX_CURR"] == "tx_curr"


def test_check_mapping_without_a_mapping_says_what_to_do(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-mapping", "QZ"]) == 2
    err = capsys.readouterr().err
    assert "clm new-country QZ --from-export" in err and "docs/own-data.md" in err
    assert "Traceback" not in err
