"""No input ends in a traceback: each input a field team or a server produced gets a named error.

Every case runs the ``clm`` command line in-process (``clm_research.cli.main``) in a throwaway
project: the command must return (never raise), with the documented exit status and a message
naming the file and the rule. An unexpected error prints one line and the path of a log file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from clm_research import cli
from clm_research.expressions import ExpressionError, parse
from clm_research.paths import project_root

REAL_ROOT = project_root()
H = "interview_id,facility_id,date,round,sex,age,key_population,on_art,wait_minutes"
GOOD = "XT-I001,XT-F001,2024-03-05,2024Q1,female,34,none,true,25"
FACILITIES = (
    "facility_id,name,region,district,type,ownership\n"
    "XT-F001,Alpha Clinic,North,North A,clinic,public\n"
)
PARAMS = "code: XT\nname: Test\nperiod: 2024Q1\nbaseline_round: 2024Q1\nas_of: '2024-12-31'\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "params" / "countries").mkdir(parents=True)
    (root / "params" / "mappings").mkdir()
    shutil.copy(REAL_ROOT / "params" / "framework.yaml", root / "params")
    (root / "pyproject.toml").write_text("[project]\nname='x'\n")
    (root / "params" / "countries" / "XT.yaml").write_text(PARAMS)
    raw = root / "data" / "raw" / "XT"
    raw.mkdir(parents=True)
    (raw / "facilities.csv").write_text(FACILITIES)
    (raw / "i.csv").write_text(f"{H}\n{GOOD}\n")
    monkeypatch.setenv("CLM_PROJECT_ROOT", str(root))
    monkeypatch.delenv("CLM_DATA_DIR", raising=False)
    monkeypatch.delenv("CLM_REPORTS_DIR", raising=False)
    return root


def mapping(root: Path, file: str, extra: str = "") -> None:
    (root / "params" / "mappings" / "XT.yaml").write_text(
        "country: XT\nformat: canonical\ntables:\n  facilities: {files: [facilities.csv]}\n"
        f"  interviews: {{files: [{file}]{extra}}}\n"
    )


def clm(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))  # raises nothing: that is the point
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    return code, text


def workbook(path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "data"
    for line in (H, GOOD):
        ws.append(line.split(","))
    wb.save(path)


def _ansi(root: Path) -> None:
    mapping(root, "i.csv", ", encoding: ANSI")


def _utf16_on_utf8(root: Path) -> None:
    mapping(root, "i.csv", ", encoding: utf-16")


def _sheet_name(root: Path) -> None:
    workbook(root / "data" / "raw" / "XT" / "i.xlsx")
    mapping(root, "i.xlsx", ", sheet: Sheet9")


def _sheet_index(root: Path) -> None:
    workbook(root / "data" / "raw" / "XT" / "i.xlsx")
    mapping(root, "i.xlsx", ", sheet: 3")


def _dhis2_object(root: Path) -> None:
    (root / "data" / "raw" / "XT" / "dv.json").write_text(json.dumps({"dataValues": {"a": 1}}))
    (root / "params" / "mappings" / "XT.yaml").write_text(
        "country: XT\nformat: canonical\ntables:\n  facilities: {files: [facilities.csv]}\n"
        "  routine: {files: [dv.json], reader: dhis2, data_elements: {deA: tx_curr}}\n"
    )


def _params_cp1252(root: Path) -> None:
    mapping(root, "i.csv")
    (root / "params" / "countries" / "XT.yaml").write_bytes(
        PARAMS.replace("Test", "Caf\xe9").encode("cp1252")
    )


def _as_of_month_13(root: Path) -> None:
    mapping(root, "i.csv")
    text = PARAMS.replace("as_of: '2024-12-31'", "as_of: 2025-13-01")
    (root / "params" / "countries" / "XT.yaml").write_text(text)


def _as_of_slashes(root: Path) -> None:
    mapping(root, "i.csv")
    text = PARAMS.replace("as_of: '2024-12-31'", "as_of: 01/02/2025")
    (root / "params" / "countries" / "XT.yaml").write_text(text)


# (set-up, the file named, the rule or words the message must carry)
INGEST_CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "encoding ANSI (no such codec)": (_ansi, "data/raw/XT/i.csv", "[rule: encoding]"),
    "utf-16 declared on a UTF-8 file": (_utf16_on_utf8, "data/raw/XT/i.csv", "probably UTF-8"),
    "missing Excel sheet name": (_sheet_name, "i.xlsx", "[rule: missing_sheet]"),
    "missing Excel sheet index": (_sheet_index, "i.xlsx", "[rule: missing_sheet]"),
    "DHIS2 dataValues is an object": (_dhis2_object, "dv.json", "[rule: wrong_file]"),
    "params file in cp1252": (_params_cp1252, "params/countries/XT.yaml", "[rule: encoding]"),
    "as_of 2025-13-01": (_as_of_month_13, "params/countries/XT.yaml", "YYYY-MM-DD"),
    "as_of 01/02/2025": (_as_of_slashes, "params/countries/XT.yaml", "YYYY-MM-DD"),
}


@pytest.mark.parametrize("case", list(INGEST_CASES))
def test_ingest_names_the_error(
    case: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup, file, rule = INGEST_CASES[case]
    setup(project)
    code, text = clm(capsys, "ingest", "XT")
    assert code == 1
    assert file in text and rule in text, text
    assert str(project) not in text  # paths shown relative to the project
    assert not (project / "data" / "processed" / "XT").exists()  # nothing written


def test_a_200_kb_cell_is_read(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the csv module's default field limit is 131,072 characters
    row = GOOD.replace("true,25", "true," + "9" * 200_000).replace("XT-I001", "XT-I002")
    (project / "data" / "raw" / "XT" / "big.csv").write_text(f"{H}\n{GOOD}\n{row}\n")
    mapping(project, "big.csv")
    (project / "params" / "countries" / "XT.yaml").write_text(
        PARAMS + "quarantine_max_share: 0.9\n"
    )
    code, text = clm(capsys, "ingest", "XT")
    assert "big.csv -> interviews: 2 rows" in text
    acc = pd.read_parquet(project / "data" / "processed" / "XT" / "interviews.parquet")
    q = pd.read_parquet(project / "data" / "quarantine" / "XT" / "interviews.parquet")
    assert len(acc) + len(q) == 2 and acc["interview_id"].tolist() == ["XT-I001"]
    assert q["source_row"].tolist() == [3] and "type:wait_minutes" in q["failed_rules"][0]


def test_old_mac_line_endings_are_read(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    second = GOOD.replace("XT-I001", "XT-I002")
    (project / "data" / "raw" / "XT" / "cr.csv").write_bytes(f"{H}\r{GOOD}\r{second}\r".encode())
    mapping(project, "cr.csv")
    code, text = clm(capsys, "ingest", "XT")
    assert code == 0, text
    acc = pd.read_parquet(project / "data" / "processed" / "XT" / "interviews.parquet")
    assert acc["interview_id"].tolist() == ["XT-I001", "XT-I002"]


def test_truncated_processed_parquet(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mapping(project, "i.csv")
    from clm_research.schema import TABLES
    from clm_research.tables import CANONICAL_DTYPES

    folder = project / "data" / "processed" / "XT"
    folder.mkdir(parents=True)
    for name, table in TABLES.items():
        frame = pd.DataFrame({c.name: pd.Series([], dtype="string") for c in table.columns})
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    assert CANONICAL_DTYPES  # the dtype map exists; coerce turns the empty columns into it
    whole = (folder / "interviews.parquet").read_bytes()
    (folder / "interviews.parquet").write_bytes(whole[: len(whole) // 2])
    code, text = clm(capsys, "indicators", "XT")
    assert code == 2
    assert "data/processed/XT/interviews.parquet" in text and "[rule: damaged_file]" in text
    assert "clm ingest XT" in text


EXPRESSIONS = {
    "a 5,000-digit number": ("age > " + "9" * 5000, "expression_length"),
    "10,000 parentheses": ("(" * 10_000 + "on_art" + ")" * 10_000, "expression_length"),
    "5,000 nots": ("not " * 5000 + "on_art", "expression_length"),
    "20,000 ands": (" and ".join(["on_art"] * 20_000), "expression_length"),
    "a 40-digit number": ("age > " + "9" * 40, "expression_number"),
    "25 nested parentheses": ("(" * 25 + "on_art" + ")" * 25, "expression_depth"),
    "25 nots": ("not " * 25 + "on_art", "expression_depth"),
    "150 conditions": (" and ".join(["on_art"] * 150), "expression_terms"),
}


@pytest.mark.parametrize("case", list(EXPRESSIONS))
def test_expression_limits(case: str) -> None:
    text, rule = EXPRESSIONS[case]
    with pytest.raises(ExpressionError, match=rf"\[rule: {rule}\]"):
        parse(text)


def test_expressions_within_limits_parse() -> None:
    parse("(" * 20 + "on_art" + ")" * 20)
    parse(" or ".join(["age > " + "9" * 30] * 2) + " and " + " or ".join(["on_art"] * 98))


def test_expression_error_is_a_clm_error() -> None:
    # printed by the command line as a message, wherever a filter comes from
    from clm_research.errors import CLMError

    assert issubclass(ExpressionError, CLMError)


def test_unexpected_error_logs_the_traceback(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(args: object) -> int:
        raise RuntimeError("planted defect")

    monkeypatch.setattr(cli, "_cmd_schema", boom)
    code, text = clm(capsys, "schema")
    assert code == cli.EXIT_BUG == 3
    assert "planted defect" in text and "logs/clm-" in text
    assert len(text.strip().splitlines()) == 1
    logs = list((project / "logs").glob("clm-*.log"))
    assert len(logs) == 1 and "Traceback" in logs[0].read_text()
    assert "RuntimeError: planted defect" in logs[0].read_text()


def test_permission_error_is_one_line(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(args: object) -> int:
        raise PermissionError(13, "Permission denied", str(project / "data" / "x.parquet"))

    monkeypatch.setattr(cli, "_cmd_schema", denied)
    code, text = clm(capsys, "schema")
    assert code == 2
    assert "cannot access data/x.parquet" in text and "permissions" in text
