"""Countries that collect a subset: absent tables and columns, skip logic, what can be computed.

Expected numbers are worked out by hand from the few rows written here, never from the code
under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clm_research.framework import load_framework
from clm_research.indicators import Tabulation
from clm_research.quality.gate import run_gate
from clm_research.schema import TABLES
from clm_research.tables import StagedTable, coerce


def staged(name: str, frame: pd.DataFrame) -> StagedTable:
    n = len(frame)
    return StagedTable(
        name, frame, np.full(n, f"{name}.csv", dtype=object), np.arange(2, n + 2, dtype=np.int64)
    )


def interviews(**cols: list[object]) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base: dict[str, list[object]] = {
        "interview_id": [f"I{i}" for i in range(n)],
        "facility_id": ["XT-F001"] * n,
        "date": ["2024-02-01"] * n,
        "round": ["2024Q1"] * n,
    }
    base.update(cols)
    frame = coerce(pd.DataFrame(base), "interviews")
    return frame[[c for c in frame.columns if c in base]]  # absent columns stay absent


def test_skip_logic_answers_are_accepted_missing_facility_is_not() -> None:
    # on_art is asked only of people living with HIV, sex may be declined: both stay missing
    frame = interviews(
        sex=["female", None, "male", "female"],
        on_art=[True, None, None, False],
        key_population=[None, "none", "msm", None],
    )
    frame.loc[3, "facility_id"] = pd.NA
    report = run_gate(
        "XT", {"interviews": staged("interviews", frame)}, as_of="2024-12-31", use_gx=False
    )
    g = report.tables["interviews"]
    assert (g.input_rows, g.accepted, g.quarantined) == (4, 3, 1)
    assert g.by_rule == {"not_null:facility_id": 1}
    acc = report.accepted["interviews"]
    assert acc["on_art"].isna().sum() == 2 and acc["sex"].isna().sum() == 1


def test_required_columns_are_ids_dates_and_keys_only() -> None:
    required = {t: [c.name for c in TABLES[t].columns if c.required] for t in TABLES}
    assert required["interviews"] == ["interview_id", "facility_id", "date", "round"]
    assert required["routine"] == ["facility_id", "period"]
    assert required["observations"] == ["facility_id", "round"]
    assert required["issues"] == ["issue_id", "facility_id", "round", "identified_on"]
    assert required["facilities"] == ["facility_id"]


def test_absent_optional_column_is_not_collected_absent_required_is_an_error() -> None:
    frame = interviews(sex=["female", "male"])  # only sex answered: no wait, no on_art…
    report = run_gate(
        "XT", {"interviews": staged("interviews", frame)}, as_of="2024-12-31", use_gx=False
    )
    assert report.passed
    g = report.tables["interviews"]
    assert "on_art" in g.not_collected and "wait_minutes" in g.not_collected
    assert "sex" not in g.not_collected and "interview_id" not in g.not_collected
    assert "on_art" not in report.accepted["interviews"].columns  # absent, not empty
    assert "not collected: " in report.summary()

    no_date = frame.drop(columns=["date"])
    report = run_gate(
        "XT", {"interviews": staged("interviews", no_date)}, as_of="2024-12-31", use_gx=False
    )
    assert not report.passed
    assert "interviews" not in report.accepted
    assert any("date" in e and "missing_column" in e for e in report.errors)


def test_denominators_exclude_missing_answers() -> None:
    """Hand computation on six clients and three facility-months."""
    fw = load_framework()
    iv = interviews(
        on_art=[True, True, True, False, None, None],
        vl_result_received=[True, False, None, None, True, None],
        wait_minutes=[10.0, None, 30.0, None, 20.0, None],
        got_all_medicines=[False, True, None, None, None, None],
    )
    routine = coerce(
        pd.DataFrame(
            {
                "facility_id": ["XT-F001"] * 3,
                "period": ["2024-01", "2024-02", "2024-03"],
                "vl_tested": [10, 50, 20],
                "vl_suppressed": [9, None, 15],  # February not reported: not zero
            }
        ),
        "routine",
    )[["facility_id", "period", "vl_tested", "vl_suppressed"]]
    tab = Tabulation(
        fw,
        {"interviews": iv, "routine": routine},
        indicators=[
            "vl_result_received",
            "wait_time_mean",
            "medicine_stockout_experienced",
            "viral_suppression",
        ],
    )
    res = tab.table(blank=False).set_index("indicator_id")
    # on ART and answered: clients 0 and 1; one received the result
    assert (
        res.loc["vl_result_received", "numerator"],
        res.loc["vl_result_received", "denominator"],
    ) == (1, 2)
    assert res.loc["wait_time_mean", "estimate"] == pytest.approx(20.0)  # (10 + 30 + 20) / 3
    assert res.loc["wait_time_mean", "n"] == 3
    # on ART and answered: clients 0 and 1; client 0 did not get all medicines
    assert res.loc["medicine_stockout_experienced", "estimate"] == pytest.approx(0.5)
    # January and March only: (9 + 15) / (10 + 20)
    assert res.loc["viral_suppression", "numerator"] == 24
    assert res.loc["viral_suppression", "denominator"] == 30
    assert res.loc["viral_suppression", "estimate"] == pytest.approx(0.8)


# ---------------------------------------------------------------- what can be computed

SUBSETS: dict[str, tuple[str, ...]] = {
    "interviews_facilities": ("interviews", "facilities"),
    "issues_only": ("issues",),
    "routine_only": ("routine",),
    "everything": tuple(TABLES),
}


def test_availability_names_the_missing_table_or_column() -> None:
    from clm_research.framework import resolve_availability

    fw = load_framework()
    cols = [c for c in TABLES["interviews"].column_names if c != "on_art"]
    av = resolve_availability(
        fw, {"interviews": cols, "facilities": TABLES["facilities"].column_names}
    )
    assert av.not_computed["facilities_monitored"] == "not collected: no observations table"
    assert av.not_computed["vl_result_received"] == "column `on_art` not collected"
    # the issue rate needs both the issue log and the visits it is counted per
    assert "no issues table" in av.not_computed["issues_per_facility_round"]
    assert "no observations table" in av.not_computed["issues_per_facility_round"]
    assert {"wait_time_median", "interviews_completed", "clm_coverage"} <= set(av.computable)
    assert av.not_collected["interviews"] == ("on_art",)
    assert set(av.tables_not_collected) == set(TABLES) - {"interviews", "facilities"}
    # a derived column needs what it is derived from: CLM arms need clm_start
    fac = [c for c in TABLES["facilities"].column_names if c != "clm_start"]
    av = resolve_availability(fw, {"facilities": fac})
    assert av.not_computed["clm_coverage"] == "column `clm_start` not collected"


@pytest.fixture(scope="module")
def xa_clean(demo_xa) -> dict[str, pd.DataFrame]:
    return demo_xa.clean


@pytest.mark.parametrize("subset", list(SUBSETS))
def test_compute_indicators_on_a_subset(subset: str, xa_clean, framework_xa) -> None:
    from clm_research.indicators import compute_indicators

    tables = {k: v for k, v in xa_clean.items() if k in SUBSETS[subset]}
    res = compute_indicators(framework_xa, tables, by=["round"])
    done = set(res["indicator_id"])
    missing = res.attrs["not_computed"]
    assert done | set(missing) == set(framework_xa.ids) and not done & set(missing)
    for ind_id in done:  # computed only from what is there
        assert set(framework_xa.indicator(ind_id).columns_used) <= set(tables)
    for ind_id, why in missing.items():
        absent = set(framework_xa.indicator(ind_id).columns_used) - set(tables)
        assert absent and all(f"no {t} table" in why for t in absent), (ind_id, why)
    if subset == "everything":
        assert not missing
    else:
        # the same indicator from a subset and from everything: the same national numbers
        full = compute_indicators(framework_xa, xa_clean, indicators=sorted(done))
        part = compute_indicators(framework_xa, tables, indicators=sorted(done))
        cols = ["indicator_id", "numerator", "denominator", "estimate"]
        pd.testing.assert_frame_equal(part[cols], full[cols])
    expected_some = {
        "interviews_facilities": "wait_time_median",
        "issues_only": "issues_resolved",
        "routine_only": "viral_suppression",
        "everything": "facilities_monitored",
    }[subset]
    assert expected_some in done


def test_disclosure_audit_on_a_subset(xa_clean, framework_xa) -> None:
    from clm_research.disclosure import PUBLISHED_GROUPINGS, protect_tables

    tables = {k: v for k, v in xa_clean.items() if k in SUBSETS["issues_only"]}
    protected = protect_tables(framework_xa, tables, as_of="2025-01-15")
    assert protected.audit.passed
    assert set(protected.tables) == set(PUBLISHED_GROUPINGS)
    ids = set(protected.tables["national"]["indicator_id"])
    assert ids and all(framework_xa.indicator(i).dataset == "issues" for i in ids)


# ---------------------------------------------------------------- countries on disk: CLI, runner

#: Subset countries built from the small demo XA: code -> the tables it collects.
COUNTRIES: dict[str, tuple[str, ...]] = {
    "XI": SUBSETS["interviews_facilities"],
    "XS": SUBSETS["issues_only"],
    "XR": SUBSETS["routine_only"],
    "XE": SUBSETS["everything"],
}


@pytest.fixture(scope="module")
def subset_project(tmp_path_factory: pytest.TempPathFactory):
    """A throwaway project: four countries with canonical exports, mappings and processed data."""
    import shutil

    from clm_research.demo import generate_country
    from clm_research.paths import project_root
    from clm_research.tables import write_tables

    real = project_root()
    clean = generate_country("XA", facilities=30, interviews_per_round=20).clean
    root = tmp_path_factory.mktemp("subset-project")
    (root / "params" / "countries").mkdir(parents=True)
    (root / "params" / "mappings").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname='x'\n")
    shutil.copy(real / "params" / "framework.yaml", root / "params")
    (root / "notebooks").mkdir()
    (root / "notebooks" / "evaluation").symlink_to(real / "notebooks" / "evaluation")
    for code, names in COUNTRIES.items():
        (root / "params" / "countries" / f"{code}.yaml").write_text(
            f"code: {code}\nname: Subset {code}\nbaseline_round: 2023Q1\nperiod: 2024Q4\n"
            "as_of: '2025-01-15'\n"
        )
        raw = root / "data" / "raw" / code
        raw.mkdir(parents=True)
        lines = [f"country: {code}", "format: canonical", "tables:"]
        for t in names:
            clean[t].to_csv(raw / f"{t}.csv", index=False)
            lines.append(f"  {t}: {{files: [{t}.csv]}}")
        (root / "params" / "mappings" / f"{code}.yaml").write_text("\n".join(lines) + "\n")
        write_tables({t: clean[t] for t in names}, root / "data" / "processed" / code)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLM_PROJECT_ROOT", str(root))
        mp.setenv("CLM_DATA_DIR", str(root / "data"))
        mp.setenv("CLM_REPORTS_DIR", str(root / "reports"))
        yield root


@pytest.mark.parametrize("code", list(COUNTRIES))
def test_clm_indicators_on_a_subset(code: str, subset_project, capsys) -> None:
    from clm_research.cli import main

    assert main(["indicators", code]) == 0
    out = capsys.readouterr().out
    folder = subset_project / "reports" / code / "indicators"
    national = pd.read_csv(folder / "national.csv")
    path = folder / "not_computed.csv"
    missing = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["indicator_id"])
    fw = load_framework()
    assert set(national["indicator_id"]) | set(missing["indicator_id"]) == set(fw.ids)
    for ind_id in national["indicator_id"].unique():  # only from the tables collected
        assert set(fw.indicator(ind_id).columns_used) <= set(COUNTRIES[code])
    if code == "XE":
        assert missing.empty and "not computed" not in out
    else:
        assert not missing.empty and f"{len(missing)} indicator(s) not computed" in out
        assert "tables not collected: " in out
        row = missing.iloc[0]
        assert f"{row['indicator_id']}: {row['reason']}" in out


def _visible(html: str) -> str:
    """The report's text as read: no embedded images or stylesheets."""
    import re

    html = re.sub(r"<style.*?</style>|<script.*?</script>", " ", html, flags=re.S)
    return re.sub(r"data:[a-z/+]+;base64,[A-Za-z0-9+/=]+", " ", html)


def _run(code: str, root):
    from clm_research.run.many import run_countries

    summary = run_countries([code], progress=False, synthesis=False)
    assert summary.exit_code == 0, summary.format()
    out = root / "reports" / code / "2024Q4"
    html = _visible((out / "report.html").read_text())
    status = __import__("json").loads((root / "reports" / code / "status.json").read_text())
    return out, html, status["last_good"]["chapters"]


def test_clm_run_issues_only_country(subset_project) -> None:
    from clm_research.report.chapters import CHAPTER_DATA

    out, html, chapters = _run("XS", subset_project)
    ran = {c for c, label in chapters.items() if label == "ran"}
    assert ran == {"00_summary", "01_data_quality", "03_accountability", "07_analysis_plan"}
    assert set(chapters) == set(CHAPTER_DATA)
    # every absent chapter is in the report with its note; nothing reads as an error
    assert html.count("Not collected in this country.") >= 4
    assert "Traceback" not in html and "NaN" not in html and "KeyError" not in html
    assert "Chapters in this report." in html  # the summary says which chapters ran
    assert (out / "tables" / "issue_funnel.csv").is_file()
    index = (subset_project / "reports" / "index.html").read_text()
    assert "Not collected in this country: Service quality" in index


@pytest.mark.slow
@pytest.mark.parametrize("code", ["XI", "XR"])
def test_clm_run_interviews_or_routine_only(code: str, subset_project) -> None:
    _, html, chapters = _run(code, subset_project)
    expected = {"XI": "04_outcomes", "XR": "05_impact"}[code]
    assert chapters[expected] == "ran"
    assert chapters["03_accountability"] != "ran"
    assert "Traceback" not in html and "NaN" not in html


def test_manifest_lists_not_collected_and_a_dropped_table_leaves_no_file(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from clm_research.ingest.mapping import Mapping, TableSpec
    from clm_research.paths import processed_dir
    from clm_research.pipeline import ingest_country
    from clm_research.tables import read_country

    monkeypatch.setenv("CLM_DATA_DIR", str(tmp_path / "data"))
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "iv.csv").write_text(
        "interview_id,facility_id,date,round,sex\nI1,XT-F001,2024-03-05,2024Q1,female\n"
    )
    (raw / "fac.csv").write_text("facility_id,district\nXT-F001,North A\n")
    both = {
        "facilities": TableSpec(files=["fac.csv"]),
        "interviews": TableSpec(files=["iv.csv"]),
    }
    ingest_country("XT", Mapping(country="XT", tables=both), raw, as_of="2024-12-31")
    manifest = json.loads((processed_dir("XT") / "manifest.json").read_text())
    assert "on_art" in manifest["not_collected"]["interviews"]
    assert "name" in manifest["not_collected"]["facilities"]
    assert "routine" in manifest["tables_not_collected"]
    tables = read_country("XT")
    assert set(tables) == {"facilities", "interviews"}
    assert "on_art" not in tables["interviews"].columns  # absent, not an empty column
    # the same country re-ingested without its facility list: no stale facilities file
    only = {"interviews": both["interviews"]}
    report = ingest_country("XT", Mapping(country="XT", tables=only), raw, as_of="2024-12-31")
    assert set(read_country("XT")) == {"interviews"}
    assert "not checked" in report.gate.warnings[0]
