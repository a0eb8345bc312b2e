"""The runner with tiny throwaway notebooks: isolation, atomic replacement, determinism, skips."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from clm_research.config.country import NotebookParameters, check_period, load_country
from clm_research.errors import ParamsError
from clm_research.paths import project_root
from clm_research.run import country as run_country_module
from clm_research.run import many as runner
from clm_research.run import notebooks as run_notebooks

REAL_ROOT = project_root()

PARAMS_CELL = 'country = "XX"\nperiod = "2000Q1"\noutput_dir = "."\nseed = 0\n'


def write_notebook(folder: Path, name: str, cells: list[str], params: str = PARAMS_CELL) -> Path:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Chapter {name}"), p]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


# A table whose row order depends on set iteration of strings: stable only because the
# runner fixes PYTHONHASHSEED for the kernel; the values depend on the seed parameter.
TABLE_CELL = """
import numpy as np, pandas as pd, pathlib
rng = np.random.default_rng(seed)
names = list({f"facility-{i}" for i in range(20)})
df = pd.DataFrame({"facility": names, "value": rng.normal(size=len(names)).round(6)})
out = pathlib.Path(output_dir) / "tables"
df.to_csv(out / "values.csv", index=False)
df.to_parquet(out / "values.parquet", index=False)
df.head(3)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway project: the demo countries' parameters and two tiny notebooks."""
    root = tmp_path / "project"
    (root / "params" / "countries").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname='x'\n")
    for code in ("XA", "XB"):
        shutil.copy(
            REAL_ROOT / "params" / "countries" / f"{code}.yaml", root / "params" / "countries"
        )
    nbs = root / "notebooks" / "evaluation"
    nbs.mkdir(parents=True)
    write_notebook(nbs, "00_summary", ["print('summary for', country, period)"])
    write_notebook(nbs, "01_values", [TABLE_CELL])
    (root / "data" / "raw" / "XA").mkdir(parents=True)
    (root / "data" / "raw" / "XA" / "facilities.csv").write_text("facility_id\nXA-F001\n")
    monkeypatch.setenv("CLM_PROJECT_ROOT", str(root))
    monkeypatch.delenv("CLM_DATA_DIR", raising=False)
    monkeypatch.delenv("CLM_REPORTS_DIR", raising=False)
    return root


def run(codes: list[str], **kw) -> runner.RunSummary:
    kw.setdefault("gate", False)
    kw.setdefault("progress", False)
    kw.setdefault("kernel", "python3")
    return runner.run_countries(codes, **kw)


def test_success_writes_report_tables_provenance_and_index(project: Path) -> None:
    summary = run(["XA"])
    assert summary.exit_code == 0, summary.format()
    out = project / "reports" / "XA" / "2024Q4"
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == [
        "00_summary.ipynb",
        "01_values.ipynb",
    ]
    html = (out / "report.html").read_text()
    # the summary is shown first although it was executed last
    assert html.index("Chapter 00_summary") < html.index("Chapter 01_values")
    assert "TABLE_CELL" not in html and "default_rng" not in html  # code hidden
    assert 'id="provenance"' in html and "data/raw/XA/facilities.csv" in html
    prov = json.loads((out / "provenance.json").read_text())
    assert set(prov) >= {"parameters", "inputs", "versions", "git_commit", "started", "finished"}
    assert prov["parameters"]["period"] == "2024Q4" and prov["parameters"]["country"] == "XA"
    assert pd.read_parquet(out / "tables" / "values.parquet").shape == (20, 2)
    # executed notebooks carry the injected, validated parameters
    nb = nbformat.read(out / "notebooks" / "01_values.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert 'country = "XA"' in injected[0].source
    index = (project / "reports" / "index.html").read_text()
    assert "XA/2024Q4/report.html" in index and "succeeded" in index
    assert not list((project / "reports" / "XA").glob(".tmp-*"))


def test_one_failing_country_does_not_stop_the_others(project: Path) -> None:
    nbs = project / "notebooks" / "evaluation"
    write_notebook(
        nbs, "02_fails", ["x = 1", "if country == 'XA':\n    raise ValueError('planted failure')"]
    )
    summary = run(["XA", "XB"])
    by = {r.country: r for r in summary.results}
    assert by["XB"].status == "succeeded"
    assert by["XA"].status == "failed"
    f = by["XA"].failure
    assert f is not None and f.notebook == "02_fails" and f.ename == "ValueError"
    assert "planted failure" in f.evalue
    # cell 0 is the title, 1 parameters, 2 injected parameters, 3 `x = 1`, 4 the raise
    assert f.cell_index == 4
    assert summary.exit_code == 1
    text = summary.format()
    assert "02_fails, cell 4" in text and "planted failure" in text
    assert (project / "reports" / "XB" / "2024Q4" / "report.html").is_file()
    assert not (project / "reports" / "XA" / "2024Q4").exists()
    assert (
        project / "reports" / "XA" / ".failed-2024Q4" / "notebooks" / "02_fails.ipynb"
    ).is_file()
    index = (project / "reports" / "index.html").read_text()
    assert "failed" in index and "planted failure" in index


def test_failed_run_never_replaces_last_good_report(project: Path) -> None:
    assert run(["XA"]).exit_code == 0
    out = project / "reports" / "XA" / "2024Q4"
    before = (out / "report.html").read_bytes()
    write_notebook(project / "notebooks" / "evaluation", "02_fails", ["raise RuntimeError('late')"])
    summary = run(["XA"])
    assert summary.exit_code == 1
    assert (out / "report.html").read_bytes() == before
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == [
        "00_summary.ipynb",
        "01_values.ipynb",
    ]
    status = json.loads((project / "reports" / "XA" / "status.json").read_text())
    assert status["last_run"]["status"] == "failed"
    assert status["last_good"]["report"].endswith("XA/2024Q4/report.html")
    leftovers = [
        p.name
        for p in (project / "reports" / "XA").iterdir()
        if p.name.startswith((".tmp", ".old"))
    ]
    assert leftovers == []


def test_tables_identical_across_runs_and_job_counts(project: Path) -> None:
    assert run(["XA", "XB"]).exit_code == 0
    first = {
        c: (project / "reports" / c / "2024Q4" / "tables" / "values.csv").read_bytes()
        for c in ("XA", "XB")
    }
    assert run(["XA", "XB"], jobs=2).exit_code == 0
    for c in ("XA", "XB"):
        tables = project / "reports" / c / "2024Q4" / "tables"
        assert (tables / "values.csv").read_bytes() == first[c]
    # the same seed gives the same numbers in both countries; only the seed matters
    assert first["XA"] == first["XB"]


def test_changed_only_skips_unchanged_and_reruns_changed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # other people edit the package while tests run; its source hash is part of the key
    monkeypatch.setattr(run_country_module, "code_hash", lambda: "fixed")
    assert run(["XA", "XB"]).exit_code == 0
    again = run(["XA", "XB"], changed_only=True)
    assert [r.status for r in again.results] == ["skipped", "skipped"]
    assert again.exit_code == 0
    (project / "data" / "raw" / "XA" / "facilities.csv").write_text("facility_id\nXA-F002\n")
    third = run(["XA", "XB"], changed_only=True)
    assert {r.country: r.status for r in third.results} == {"XA": "succeeded", "XB": "skipped"}


def test_misspelt_notebook_parameter_fails_before_anything_runs(project: Path) -> None:
    nbs = project / "notebooks" / "evaluation"
    write_notebook(
        nbs,
        "02_typo",
        ["pass"],
        params='country = "XX"\nperod = "2000Q1"\noutput_dir = "."\nseed = 0\n',
    )
    summary = run(["XA"])
    r = summary.results[0]
    assert r.status == "failed" and r.stage == "parameters"
    assert "perod" in r.error and "misspelt" in r.error and "period" in r.error
    assert not (project / "reports" / "XA" / "2024Q4").exists()
    assert not (project / "reports" / "XA" / ".failed-2024Q4").exists()


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("district_boundaries: ../elsewhere/districts.geojson", "climbs out"),
        ("district_boundaries: /etc/passwd", "absolute"),
        ("perod: 2024Q3", "unknown parameter"),
        ("notebooks: [99_nope]", "unknown notebook"),
    ],
)
def test_bad_country_parameters_are_reported_per_country(
    project: Path, line: str, needle: str
) -> None:
    path = project / "params" / "countries" / "XA.yaml"
    path.write_text(path.read_text() + line + "\n")
    summary = run(["XA", "XB"])
    by = {r.country: r for r in summary.results}
    assert by["XA"].status == "failed" and by["XA"].stage == "parameters"
    assert needle in by["XA"].error
    assert by["XB"].status == "succeeded"


def test_period_and_parameter_model_checks() -> None:
    with pytest.raises(ParamsError, match="2024Q5"):
        check_period("2024Q5")
    with pytest.raises(Exception, match="extra|unknown|Extra"):
        NotebookParameters(country="XA", period="2024Q4", colour="red")
    with pytest.raises(Exception, match="climbs out"):
        NotebookParameters(country="XA", period="2024Q4", output_dir="../x")
    assert load_country("XA").code == "XA"


def test_cli_run_rejects_bad_period_and_empty_selection(
    project: Path, capsys: pytest.CaptureFixture
) -> None:
    ns = argparse.Namespace(
        countries=["XA"], all=False, period="2024Q5", jobs=1, scheduler=None, changed_only=False
    )
    assert runner.cli_run(ns) == 2
    assert "2024Q5" in capsys.readouterr().err
    ns = argparse.Namespace(
        countries=[], all=False, period=None, jobs=1, scheduler=None, changed_only=False
    )
    assert runner.cli_run(ns) == 2


def test_parameters_cell_names_reads_assignments(tmp_path: Path) -> None:
    p = write_notebook(tmp_path, "x", [], params="a = 1\nb: int = 2\n")
    assert run_notebooks.parameters_cell_names(p) == ["a", "b"]
    p = write_notebook(tmp_path, "y", [], params="a = 1\nprint(a)\n")
    with pytest.raises(ParamsError, match="plain values"):
        run_notebooks.parameters_cell_names(p)


def test_dask_scheduler_runs_each_country_on_a_worker_process(project: Path) -> None:
    distributed = pytest.importorskip("distributed")
    nbs = project / "notebooks" / "evaluation"
    # each notebook records the process it ran in, through the kernel's parent (the worker)
    write_notebook(nbs, "02_where", ["import os\nprint('kernel parent', os.getppid())"])
    with (
        distributed.LocalCluster(
            processes=True,
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        worker_pids = set(client.run(__import__("os").getpid).values())
        summary = run(["XA", "XB"], scheduler=cluster.scheduler_address)
    assert summary.exit_code == 0, summary.format()
    parents = set()
    for code in ("XA", "XB"):
        nb = nbformat.read(
            project / "reports" / code / "2024Q4" / "notebooks" / "02_where.ipynb", as_version=4
        )
        text = "".join(
            o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
        )
        parents.add(int(text.split("kernel parent")[1].split()[0]))
    assert parents <= worker_pids  # the notebooks ran under Dask worker processes
    assert (project / "reports" / "index.html").is_file()


def test_changed_only_refreshes_the_status_of_a_country_fixed_since_it_failed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Good run, then a broken input fails the run, then the input is put back: the
    unchanged country is skipped, and its status (and the index) no longer say "failed"."""
    monkeypatch.setattr(run_country_module, "code_hash", lambda: "fixed")
    nbs = project / "notebooks" / "evaluation"
    write_notebook(
        nbs,
        "02_check",
        [
            "import pathlib\n"
            "rows = (pathlib.Path('data/raw') / country / 'facilities.csv')\n"
            "text = (pathlib.Path(__import__('os').environ['CLM_PROJECT_ROOT']) / rows).read_text()\n"
            "assert 'BROKEN' not in text, 'broken facilities export'"
        ],
    )
    raw = project / "data" / "raw" / "XA" / "facilities.csv"
    good = raw.read_text()
    assert run(["XA"]).exit_code == 0
    raw.write_text("facility_id\nBROKEN\n")
    failed = run(["XA"], changed_only=True)
    assert failed.results[0].status == "failed"
    status = json.loads((project / "reports" / "XA" / "status.json").read_text())
    assert status["last_run"]["status"] == "failed"
    raw.write_text(good)  # fixed: the inputs are those of the last good report again
    fixed = run(["XA"], changed_only=True)
    assert fixed.results[0].status == "skipped" and fixed.exit_code == 0
    status = json.loads((project / "reports" / "XA" / "status.json").read_text())
    assert status["last_run"]["status"] == "skipped"
    index = (project / "reports" / "index.html").read_text()
    row = index[index.index("<b>XA</b>") : index.index("</tr>", index.index("<b>XA</b>"))]
    assert "status-skipped" in row and "status-failed" not in row
    assert 'href="XA/2024Q4/report.html"' in row


def test_a_round_without_data_fails_clearly_and_keeps_the_last_good_report(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`clm run XB --period 2030Q1` must not publish an empty scorecard as "succeeded"."""
    from clm_research.demo import write_demo

    monkeypatch.setenv("CLM_DATA_DIR", str(project / "data"))
    for extra in ("mappings", "plans"):
        if (REAL_ROOT / "params" / extra).is_dir():
            shutil.copytree(REAL_ROOT / "params" / extra, project / "params" / extra)
    shutil.copy(REAL_ROOT / "params" / "framework.yaml", project / "params")
    write_demo(["XB"], facilities=12, interviews_per_round=5)
    first = run(["XB"], gate=True)
    assert first.exit_code == 0, first.format()
    summary = run(["XB"], gate=True, period="2030Q1")
    r = summary.results[0]
    assert r.status == "failed" and r.stage == "gate" and summary.exit_code == 1
    assert "no data for reporting round 2030Q1" in r.error
    assert "interviews: 2023Q1–2024Q4" in r.error  # the rounds that do have data
    assert "Traceback" not in r.error
    assert not (project / "reports" / "XB" / "2030Q1").exists()
    index = (project / "reports" / "index.html").read_text()
    row = index[index.index("<b>XB</b>") : index.index("</tr>", index.index("<b>XB</b>"))]
    assert "status-failed" in row and "2030Q1" in row
    assert 'href="XB/2024Q4/report.html"' in row  # the last good report stays linked


def test_report_pdf_is_written_beside_the_html_and_linked(project: Path) -> None:
    from clm_research.report.pdf import find_chromium

    if find_chromium() is None:
        pytest.skip("chromium not installed (/usr/bin/chromium); run .ci/install-browser.sh")
    assert run(["XA"]).exit_code == 0
    pdf = project / "reports" / "XA" / "2024Q4" / "report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    index = (project / "reports" / "index.html").read_text()
    assert 'href="XA/2024Q4/report.pdf"' in index
    timings = json.loads((pdf.parent / "timings.json").read_text())
    assert set(timings["render"]) == {"html", "pdf"}


def test_without_chromium_the_html_report_stands_and_the_missing_pdf_is_said(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLM_CHROMIUM", str(project / "no-such-browser"))
    summary = run(["XA"])
    r = summary.results[0]
    assert r.status == "succeeded"
    assert (project / "reports" / "XA" / "2024Q4" / "report.html").is_file()
    assert not (project / "reports" / "XA" / "2024Q4" / "report.pdf").exists()
    assert "report.pdf not written: Chromium is not installed" in r.message()
