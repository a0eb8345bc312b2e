"""The bad-input corpus (tests/data/bad/, fake data): each file gives its exact error or quarantine reason.

Row counts are worked out from the files themselves (csv module), never from the code under test,
and every row-level case checks that accepted + quarantined equals the rows in the file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from clm_research.ingest.mapping import ColumnSpec, Mapping, TableSpec
from clm_research.pipeline import validate_country
from clm_research.quality.gate import GateReport

BAD = Path(__file__).parent / "data" / "bad"
DHIS2_ELEMENTS = {
    "deTxCurr001": "tx_curr",
    "deTxNew0001": "tx_new",
    "deIit000001": "interruptions",
    "deVlTest001": "vl_tested",
    "deVlSupp001": "vl_suppressed",
    "dePrepNew01": "prep_new",
    "deTests0001": "tests",
    "dePos000001": "positives",
}
DHIS2_OUS = {"ouAlpha0001": "XT-F001", "ouBeta00001": "XT-F002"}


def gate(
    file: str, table: str = "interviews", facilities: str = "facilities.csv", **spec: object
) -> GateReport:
    tables = {"facilities": TableSpec(files=[facilities])}
    if table != "facilities":
        tables[table] = TableSpec(files=[file], **spec)
    mp = Mapping(country="XT", tables=tables)
    return validate_country(
        "XT", mapping=mp, raw_folder=BAD, as_of="2024-12-31", use_gx=False, write=False
    )


def data_rows(file: str, delimiter: str = ",", encoding: str = "utf-8-sig") -> int:
    with open(BAD / file, newline="", encoding=encoding) as f:
        return sum(1 for _ in csv.reader(f, delimiter=delimiter)) - 1


def reasons(report: GateReport, table: str = "interviews") -> dict[int, str]:
    q = report.quarantine[table]
    return dict(zip(q["source_row"].astype(int), q["failed_rules"].astype(str), strict=True))


def assert_no_row_lost(report: GateReport, table: str, expected_rows: int) -> None:
    t = report.tables[table]
    assert t.input_rows == expected_rows
    assert t.accepted + t.quarantined == expected_rows
    assert len(report.accepted[table]) + len(report.quarantine[table]) == expected_rows


def table_error(report: GateReport) -> str:
    assert len(report.errors) == 1, report.errors
    assert not report.passed
    return report.errors[0]


def test_corpus_has_at_least_20_files() -> None:
    files = [p for p in BAD.iterdir() if not p.name.startswith("_") and p.name != "facilities.csv"]
    assert len(files) >= 20


# --- table-level failures: a DataQualityError naming file, column and rule ---------------------


def test_wrong_delimiter() -> None:
    msg = table_error(gate("wrong_delimiter.csv"))
    assert (
        "wrong_delimiter.csv" in msg
        and "[rule: missing_column]" in msg
        and "[rule: wrong_delimiter]" in msg
    )
    assert "interview_id" in msg


def test_latin1_is_an_encoding_error() -> None:
    msg = table_error(gate("", table="facilities", facilities="latin1_facilities.csv"))
    assert "latin1_facilities.csv" in msg and "line 2" in msg and "[rule: encoding]" in msg
    assert "UTF-8" in msg


def test_truncated_inside_quotes() -> None:
    msg = table_error(gate("truncated_quote.csv"))
    assert "truncated_quote.csv" in msg and "[rule: truncated_file]" in msg


def test_empty_file() -> None:
    msg = table_error(gate("empty.csv"))
    assert "empty.csv" in msg and "[rule: empty_file]" in msg


def test_header_only() -> None:
    msg = table_error(gate("header_only.csv"))
    assert "header_only.csv" in msg and "[rule: header_only]" in msg


def test_missing_required_column() -> None:
    msg = table_error(gate("missing_required_column.csv"))
    assert (
        "missing_required_column.csv" in msg and "date" in msg and "[rule: missing_column]" in msg
    )


def test_workbook_saved_as_csv() -> None:
    msg = table_error(gate("workbook_named_csv.csv"))
    assert "workbook_named_csv.csv" in msg and "[rule: wrong_file]" in msg


# --- row-level failures: quarantined with the rule, nothing lost --------------------------------


def test_bom_and_semicolons_are_read() -> None:
    r = gate("bom_semicolon.csv")
    assert not r.errors
    assert_no_row_lost(r, "interviews", data_rows("bom_semicolon.csv", ";"))
    assert r.tables["interviews"].quarantined == 0
    assert list(r.accepted["interviews"].columns)[0] == "interview_id"  # no BOM in the name


def test_truncated_row_is_quarantined() -> None:
    r = gate("truncated_row.csv")
    assert_no_row_lost(r, "interviews", 4)
    rs = reasons(r)
    assert list(rs) == [5]
    assert rs[5].split("; ")[0] == "type:_row"
    assert "allowed_values:sex" in rs[5]  # the cut value "fem"


def test_duplicated_ids() -> None:
    r = gate("duplicated_ids.csv")
    assert_no_row_lost(r, "interviews", data_rows("duplicated_ids.csv"))
    assert reasons(r) == {5: "duplicate_key:interview_id"}


def test_future_date() -> None:
    r = gate("future_date.csv")
    assert_no_row_lost(r, "interviews", data_rows("future_date.csv"))
    # the date and its round (2030Q1) both lie after the extraction date
    assert reasons(r) == {5: "future_date:date; future_date:round"}


def test_three_date_formats_only_iso_accepted() -> None:
    r = gate("date_formats.csv")
    assert_no_row_lost(r, "interviews", 3)
    assert reasons(r) == {3: "type:date", 4: "type:date"}
    q = r.quarantine["interviews"]
    assert q["raw_values"].tolist() == ["date='05/03/2024'", "date='5-Mar-2024'"]


def test_day_first_format_declared_in_mapping_is_accepted() -> None:
    r = gate("date_formats.csv", date_formats=["ISO", "%d/%m/%Y", "%d-%b-%Y"])
    assert r.tables["interviews"].quarantined == 0
    assert sorted(r.accepted["interviews"]["date"].dt.strftime("%Y-%m-%d")) == ["2024-03-05"] * 3


def test_negative_wait() -> None:
    r = gate("negative_wait.csv")
    assert_no_row_lost(r, "interviews", data_rows("negative_wait.csv"))
    assert reasons(r) == {5: "range:wait_minutes"}


def test_unknown_facility() -> None:
    r = gate("unknown_facility.csv")
    assert_no_row_lost(r, "interviews", data_rows("unknown_facility.csv"))
    assert reasons(r) == {5: "unknown_reference:facility_id"}


def test_mixed_types() -> None:
    r = gate("mixed_types.csv")
    assert_no_row_lost(r, "interviews", data_rows("mixed_types.csv"))
    assert reasons(r) == {3: "type:age", 4: "type:wait_minutes", 5: "type:on_art"}
    assert r.quarantine["interviews"]["raw_values"].tolist() == [
        "age='thirty'",
        "wait_minutes='12 min'",
        "on_art='maybe'",
    ]


def test_excel_error_cells() -> None:
    r = gate("excel_errors.xlsx")
    assert_no_row_lost(r, "interviews", 4)
    assert reasons(r) == {5: "type:age; type:wait_minutes"}
    assert r.quarantine["interviews"]["raw_values"].tolist() == [
        "age='#NAME?'; wait_minutes='#DIV/0!'"
    ]


def test_extra_columns_are_reported_not_lost() -> None:
    from clm_research.ingest.staging import stage_country

    mp = Mapping(country="XT", tables={"interviews": TableSpec(files=["extra_columns.csv"])})
    _, inputs, errors, _ = stage_country("XT", mp, BAD)
    assert not errors
    assert inputs[0].unmapped_columns == ["enumerator_note", "village"]
    r = gate("extra_columns.csv")
    assert_no_row_lost(r, "interviews", 3)
    assert r.tables["interviews"].quarantined == 0
    assert "village" not in r.accepted["interviews"].columns


def test_blank_line_is_a_quarantined_row() -> None:
    r = gate("blank_line.csv")
    assert_no_row_lost(r, "interviews", 4)  # 3 answers + the blank line (spreadsheet row 3)
    rs = reasons(r)
    assert list(rs) == [3]
    assert rs[3].startswith("not_null:interview_id; not_null:facility_id; not_null:date")


def test_bad_round_code() -> None:
    r = gate("bad_round.csv")
    assert reasons(r) == {5: "pattern:round"}
    assert_no_row_lost(r, "interviews", data_rows("bad_round.csv"))


def test_values_not_allowed() -> None:
    r = gate("not_allowed_values.csv")
    assert reasons(r) == {5: "allowed_values:sex", 6: "allowed_values:key_population"}
    assert_no_row_lost(r, "interviews", data_rows("not_allowed_values.csv"))


def test_routine_internal_inconsistency() -> None:
    r = gate("routine_inconsistent.csv", table="routine")
    # row 3: 41 suppressed of 38 tested; row 4: 95 positives of 90 tests
    assert reasons(r, "routine") == {3: "inconsistent:vl_suppressed", 4: "inconsistent:positives"}
    assert_no_row_lost(r, "routine", 3)


def test_dhis2_unknown_period() -> None:
    r = gate(
        "dhis2_unknown_period.json",
        table="routine",
        reader="dhis2",
        data_elements=DHIS2_ELEMENTS,
        org_units=DHIS2_OUS,
    )
    # 24 data values = 3 facility-periods x 8 elements; the 2024W13 one is refused
    assert_no_row_lost(r, "routine", 3)
    q = r.quarantine["routine"]
    assert q["failed_rules"].tolist() == ["pattern:period"]
    assert q["period"].tolist() == ["2024W13"] and q["source_row"].tolist() == [9]
    acc = r.accepted["routine"].set_index(["facility_id", "period"])
    assert acc.loc[("XT-F001", "2024-03"), "vl_suppressed"] == 36


def test_dhis2_quarterly_period_rejected_by_default() -> None:
    kw = {
        "table": "routine",
        "reader": "dhis2",
        "data_elements": DHIS2_ELEMENTS,
        "org_units": DHIS2_OUS,
    }
    r = gate("dhis2_quarterly.csv", **kw)
    assert_no_row_lost(r, "routine", 2)
    assert r.quarantine["routine"]["failed_rules"].tolist() == ["pattern:period"]
    r2 = gate("dhis2_quarterly.csv", quarterly_periods="last_month", **kw)
    assert sorted(r2.accepted["routine"]["period"]) == ["2024-03", "2024-04"]


def test_kobo_export() -> None:
    r = gate("kobo_export.csv", reader="kobo", columns=KOBO_COLUMNS)
    assert not r.errors
    assert_no_row_lost(r, "interviews", data_rows("kobo_export.csv", ";") - 1)  # minus the HXL row
    acc = r.accepted["interviews"].set_index("interview_id")
    assert acc.loc["0b5e-aaaa", "on_art"] and not acc.loc["0b5e-bbbb", "on_art"]
    assert acc.loc["0b5e-bbbb", "round"] == "2024Q1" and acc.loc["0b5e-bbbb", "wait_minutes"] == 40


def test_odk_export() -> None:
    from clm_research.ingest.staging import stage_country

    cols = ODK_COLUMNS
    r = gate("odk_export.csv", reader="odk", columns=cols)
    assert_no_row_lost(r, "interviews", data_rows("odk_export.csv"))
    assert reasons(r) == {3: "type:age"}
    assert r.accepted["interviews"]["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-05"]
    mp = Mapping(
        country="XT",
        tables={"interviews": TableSpec(files=["odk_export.csv"], reader="odk", columns=cols)},
    )
    _, inputs, _, _ = stage_country("XT", mp, BAD)
    assert {"SubmitterName", "SubmitterID", "DeviceID"} <= set(inputs[0].personal_columns_removed)


@pytest.mark.parametrize("name", ["kobo_export.csv"])
def test_kobo_enumerator_is_personal(name: str) -> None:
    from clm_research.ingest.staging import stage_country

    mp = Mapping(
        country="XT",
        format="kobo",
        tables={
            "interviews": TableSpec(
                files=[name],
                columns={
                    "interview_id": "_uuid",
                    "facility_id": "facility",
                    "date": "_submission_time",
                    "round": ColumnSpec(derive="quarter", source="date"),
                    "sex": "sex",
                    "key_population": "kp",
                    "on_art": ColumnSpec(**{"from": "services/art"}),
                },
            )
        },
    )
    _, inputs, errors, _ = stage_country("XT", mp, BAD)
    assert not errors
    assert inputs[0].personal_columns_removed == ["_submitted_by"]
    assert "HXL hashtag row under the header skipped" in inputs[0].notes
    assert set(inputs[0].unmapped_columns) == {
        "client/age",
        "services",
        "services/prep",
        "visit/wait",
    }


# --- the whole corpus, one parametrised test ----------------------------------------------------

KOBO_COLUMNS = {
    "interview_id": ColumnSpec(**{"from": "_uuid"}),
    "facility_id": ColumnSpec(**{"from": "facility"}),
    "date": ColumnSpec(**{"from": "_submission_time"}),
    "round": ColumnSpec(derive="quarter", source="date"),
    "sex": ColumnSpec(**{"from": "sex"}),
    "age": ColumnSpec(**{"from": "age"}),
    "key_population": ColumnSpec(**{"from": "kp"}),
    "on_art": ColumnSpec(**{"from": "services", "multi_select": " ", "contains": "art"}),
    "wait_minutes": ColumnSpec(**{"from": "wait"}),
}
ODK_COLUMNS: dict[str, ColumnSpec | str] = {
    "interview_id": "KEY",
    "facility_id": "facility",
    "date": "SubmissionDate",
    "round": ColumnSpec(derive="quarter", source="date"),
    "sex": "sex",
    "age": "age",
    "key_population": "kp",
    "on_art": "on_art",
}
DHIS2 = {"reader": "dhis2", "data_elements": DHIS2_ELEMENTS, "org_units": DHIS2_OUS}
OK: dict[int, str] = {}  # read, every row accepted

# file -> (table, mapping options, expected: "[rule: …]" of a table-level error, or the
# quarantined rows {spreadsheet row: rules it must fail}); every row-level case must balance.
CORPUS: dict[str, tuple[str, dict[str, object], str | dict[int, str]]] = {
    # table-level: the file cannot be used; nothing is written
    "wrong_delimiter.csv": ("interviews", {}, "[rule: missing_column]"),
    "latin1_facilities.csv": ("facilities", {}, "[rule: encoding]"),
    "cp1252_facilities.csv": ("facilities", {}, "[rule: encoding]"),
    "truncated_quote.csv": ("interviews", {}, "[rule: truncated_file]"),
    "empty.csv": ("interviews", {}, "[rule: empty_file]"),
    "bom_only.csv": ("interviews", {}, "[rule: empty_file]"),
    "only_blank_lines.csv": ("interviews", {}, "[rule: empty_file]"),
    "header_only.csv": ("interviews", {}, "[rule: header_only]"),
    "html_saved_as_csv.csv": ("interviews", {}, "[rule: header_only]"),
    "missing_required_column.csv": ("interviews", {}, "[rule: missing_column]"),
    "workbook_named_csv.csv": ("interviews", {}, "[rule: wrong_file]"),
    "nul_bytes.csv": ("interviews", {}, "[rule: wrong_file]"),
    "extra_fields.csv": ("interviews", {}, "[rule: wrong_delimiter]"),
    "utf16_declared_on_utf8.csv": ("interviews", {"encoding": "utf-16"}, "[rule: encoding]"),
    "ansi_declared.csv": ("interviews", {"encoding": "ANSI"}, "[rule: encoding]"),
    "excel_missing_sheet.xlsx": ("interviews", {"sheet": "interviews"}, "[rule: missing_sheet]"),
    "excel_sheet_index.xlsx": ("interviews", {"sheet": 2}, "[rule: missing_sheet]"),
    "dhis2_object.json": ("routine", DHIS2, "[rule: wrong_file]"),
    "dhis2_truncated.json": ("routine", DHIS2, "[rule: wrong_file]"),
    "dhis2_items_not_objects.json": ("routine", DHIS2, "[rule: wrong_file]"),
    "dhis2_empty.json": ("routine", DHIS2, "[rule: header_only]"),
    "dhis2_analytics.json": ("routine", DHIS2, "[rule: wrong_file]"),
    # read, possibly with quarantined rows
    "bom_semicolon.csv": ("interviews", {}, OK),
    "cr_only.csv": ("interviews", {}, OK),
    "crlf.csv": ("interviews", {}, OK),
    "utf16_bom.csv": ("interviews", {}, OK),
    "tab_delimited.tsv": ("interviews", {}, OK),
    "extra_columns.csv": ("interviews", {}, OK),
    "kobo_export.csv": ("interviews", {"reader": "kobo", "columns": KOBO_COLUMNS}, OK),
    "truncated_row.csv": ("interviews", {}, {5: "type:_row; allowed_values:sex"}),
    "duplicated_ids.csv": ("interviews", {}, {5: "duplicate_key:interview_id"}),
    "future_date.csv": ("interviews", {}, {5: "future_date:date"}),
    "date_formats.csv": ("interviews", {}, {3: "type:date", 4: "type:date"}),
    "impossible_date.csv": ("interviews", {}, {5: "type:date"}),
    "negative_wait.csv": ("interviews", {}, {5: "range:wait_minutes"}),
    "unknown_facility.csv": ("interviews", {}, {5: "unknown_reference:facility_id"}),
    "mixed_types.csv": (
        "interviews",
        {},
        {3: "type:age", 4: "type:wait_minutes", 5: "type:on_art"},
    ),
    "excel_errors.xlsx": ("interviews", {}, {5: "type:age; type:wait_minutes"}),
    "blank_line.csv": (
        "interviews",
        {},
        {3: "not_null:interview_id; not_null:facility_id; not_null:date"},
    ),
    "bad_round.csv": ("interviews", {}, {5: "pattern:round"}),
    "not_allowed_values.csv": (
        "interviews",
        {},
        {5: "allowed_values:sex", 6: "allowed_values:key_population"},
    ),
    "big_cell.csv": ("interviews", {}, {5: "type:wait_minutes"}),
    "age_out_of_range.csv": ("interviews", {}, {5: "range:age"}),
    "negative_age.csv": ("interviews", {}, {5: "range:age"}),
    "age_decimal.csv": ("interviews", {}, {5: "type:age"}),
    "empty_id.csv": ("interviews", {}, {5: "not_null:interview_id"}),
    "uppercase_values.csv": ("interviews", {}, {5: "allowed_values:sex"}),
    "quoted_newline.csv": ("interviews", {}, {5: "allowed_values:key_population"}),
    "decimal_comma_wait.csv": ("interviews", {}, {5: "type:wait_minutes"}),
    "phone_in_key_population.csv": (
        "interviews",
        {},
        {5: "personal_data:key_population; allowed_values:key_population"},
    ),
    "text_in_boolean.csv": ("interviews", {}, {5: "type:on_art"}),
    "odk_export.csv": ("interviews", {"reader": "odk", "columns": ODK_COLUMNS}, {3: "type:age"}),
    "facility_bad_latitude.csv": ("facilities", {}, {3: "range:latitude"}),
    "facility_duplicate_id.csv": ("facilities", {}, {3: "duplicate_key:facility_id"}),
    "facility_bad_type.csv": ("facilities", {}, {3: "allowed_values:type"}),
    "routine_inconsistent.csv": (
        "routine",
        {},
        {3: "inconsistent:vl_suppressed", 4: "inconsistent:positives"},
    ),
    "routine_negative.csv": (
        "routine",
        {},
        {3: "range:tx_curr; inconsistent:interruptions; inconsistent:tx_new"},
    ),
    "routine_bad_period.csv": ("routine", {}, {3: "pattern:period"}),
    "routine_thousands_separator.csv": ("routine", {}, {3: "type:tx_curr"}),
    "routine_duplicate_period.csv": ("routine", {}, {3: "duplicate_key:facility_id+period"}),
    "dhis2_unknown_period.json": ("routine", DHIS2, {9: "pattern:period"}),
    "dhis2_quarterly.csv": ("routine", DHIS2, {2: "pattern:period"}),
}


def rows_in(file: str, table: str) -> int:
    """Rows of the input as a table, counted from the file itself (not by the code under test)."""
    import io
    import json

    path = BAD / file
    if path.suffix == ".xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True)
        n = sum(1 for _ in wb.worksheets[0].iter_rows()) - 1
        wb.close()
        return n
    if path.suffix == ".json":  # a DHIS2 data value set: one routine row per facility-month
        values = json.loads(path.read_text())["dataValues"]
        return len({(v["orgUnit"], v["period"]) for v in values})
    data = path.read_bytes()
    text = data.decode("utf-16") if data.startswith(b"\xff\xfe") else data.decode("utf-8-sig")
    delimiter = "\t" if file.endswith(".tsv") else ";" if ";" in text.splitlines()[0] else ","
    old = csv.field_size_limit(10_000_000)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    finally:
        csv.field_size_limit(old)
    while records and not records[-1]:
        records.pop()
    if table == "routine" and "dataelement" in records[0]:  # DHIS2 long CSV
        return len({(r[2], r[1]) for r in records[1:]})
    return len(records) - 1 - (file == "kobo_export.csv")  # the Kobo file's HXL row


def test_corpus_has_at_least_60_inputs_each_with_its_expectation() -> None:
    files = {p.name for p in BAD.iterdir() if p.is_file()} - {"_make_corpus.py", "facilities.csv"}
    assert len(files) >= 60
    assert files == set(CORPUS)


@pytest.mark.parametrize("file", sorted(CORPUS))
def test_corpus(file: str) -> None:
    table, options, expected = CORPUS[file]
    if table == "facilities":
        report = gate("", table="facilities", facilities=file)
    else:
        report = gate(file, table=table, **options)
    if isinstance(expected, str):
        msg = table_error(report)
        assert file in msg and expected in msg, msg
        return
    assert not report.errors, report.errors
    assert_no_row_lost(report, table, rows_in(file, table))
    got = reasons(report, table)
    assert sorted(got) == sorted(expected)  # exactly these rows are quarantined ...
    for row, rules in expected.items():  # ... each with (at least) the rules expected
        assert set(rules.split("; ")) <= set(got[row].split("; ")), (row, got[row])
