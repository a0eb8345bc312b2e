"""No artefact carries an absolute path of the machine (it reveals user names and folder layouts).

A throwaway project (demo data for XA, the gate with Great Expectations, a tiny notebook, data
and reports folders outside the project as ``$CLM_DATA_DIR``/``$CLM_REPORTS_DIR`` set them)
is run four times — a success, a notebook that fails with an absolute path in its error,
a notebook whose parameters are misspelt, a gate that fails on a missing export — and every
file written (status.json, provenance, timings, manifest, processed tables, quarantine, Data
Docs, reports, executed notebooks, the index) and the printed summary are searched for the
absolute folders. Failed runs' folders
(``.failed-<period>``), kept on the machine for inspection and never linked, are not searched.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from test_runner import REAL_ROOT, write_notebook

from clm_research.run import many as runner

SUMMARY_CELL = """
import pathlib
import pandas as pd
from clm_research.tables import read_country
tables = read_country(country)
rows = pd.DataFrame({"table": list(tables), "rows": [len(t) for t in tables.values()]})
rows.to_csv(pathlib.Path(output_dir) / "tables" / "rows.csv", index=False)
print("summary for", country, period, "in", pathlib.Path(output_dir).name)
"""

FAILING_CELL = """
import os
open(os.path.abspath("missing-input.csv"))
"""


def _texts(path: Path) -> list[str]:
    raw = path.read_bytes()
    out = [raw.decode("utf-8", errors="replace")]
    if path.suffix == ".parquet":
        out.append(pd.read_parquet(path).astype(str).to_csv())
    return out


def _hits(roots: list[Path], forbidden: list[str]) -> list[tuple[str, str]]:
    hits = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or any(p.startswith(".failed-") for p in path.parts):
                continue
            for text in _texts(path):
                for f in forbidden:
                    if f in text:
                        hits.append((path.name, f))
    return sorted(set(hits))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname='x'\n")
    shutil.copytree(REAL_ROOT / "params", root / "params")
    nbs = root / "notebooks" / "evaluation"
    nbs.mkdir(parents=True)
    write_notebook(nbs, "00_summary", [SUMMARY_CELL])
    monkeypatch.setenv("CLM_PROJECT_ROOT", str(root))
    monkeypatch.setenv("CLM_DATA_DIR", str(tmp_path / "store" / "data"))
    monkeypatch.setenv("CLM_REPORTS_DIR", str(tmp_path / "www" / "reports"))
    monkeypatch.chdir(tmp_path)
    from clm_research.demo import write_demo

    write_demo(["XA"], facilities=12, interviews_per_round=8)
    return root


def test_no_absolute_path_in_any_artefact(project: Path, tmp_path: Path) -> None:
    forbidden = sorted(
        {str(tmp_path), os.path.realpath(tmp_path), str(REAL_ROOT), os.path.realpath(REAL_ROOT)}
    )
    data, reports = tmp_path / "store" / "data", tmp_path / "www" / "reports"
    logs = []

    ok = runner.run_countries(["XA"], kernel="python3", progress=False, synthesis=False)
    assert ok.exit_code == 0, ok.format()
    logs.append(ok.format())
    out = reports / "XA" / "2024Q4"
    assert (out / "tables" / "rows.csv").is_file() and (out / "provenance.json").is_file()
    assert (reports / "XA" / "data_docs" / "index.html").is_file()
    assert (data / "quarantine" / "XA" / "interviews.parquet").is_file()
    nb = json.loads((out / "notebooks" / "00_summary.ipynb").read_text())
    assert nb["metadata"]["papermill"]["input_path"] == "notebooks/evaluation/00_summary.ipynb"
    assert nb["metadata"]["papermill"]["output_path"] == "notebooks/00_summary.ipynb"
    manifest = json.loads((data / "processed" / "XA" / "manifest.json").read_text())
    assert manifest["gate"]["data_docs"] == "reports/XA/data_docs/index.html"
    assert {Path(i["path"]).parts[:3] for i in manifest["inputs"]} == {("data", "raw", "XA")}

    # a notebook that fails with an absolute path in its error message
    write_notebook(project / "notebooks" / "evaluation", "01_fails", [FAILING_CELL])
    failed = runner.run_countries(
        ["XA"], kernel="python3", progress=False, synthesis=False, gate=False
    )
    assert failed.exit_code == 1
    logs.append(failed.format())
    message = json.loads((reports / "XA" / "status.json").read_text())["last_run"]["message"]
    assert "FileNotFoundError" in message and "missing-input.csv" in message
    assert "reports/XA/.tmp-2024Q4" in message  # the path, shown from the reports folder
    (project / "notebooks" / "evaluation" / "01_fails.ipynb").unlink()

    # a notebook whose parameters cell is misspelt: refused before anything runs
    write_notebook(
        project / "notebooks" / "evaluation",
        "02_typo",
        ["pass"],
        params='country = "XX"\nperod = "2000Q1"\noutput_dir = "."\nseed = 0\n',
    )
    refused = runner.run_countries(["XA"], kernel="python3", progress=False, synthesis=False)
    assert refused.exit_code == 1
    logs.append(refused.format())
    message = refused.results[0].message()  # shown in the log and the index
    assert "notebooks/evaluation/02_typo.ipynb: parameters cell does not match" in message
    (project / "notebooks" / "evaluation" / "02_typo.ipynb").unlink()

    # a gate that fails: an export is missing
    (data / "raw" / "XA" / "routine.csv").unlink()
    gate_failed = runner.run_countries(["XA"], kernel="python3", progress=False, synthesis=False)
    assert gate_failed.exit_code == 1
    logs.append(gate_failed.format())
    status = json.loads((reports / "XA" / "status.json").read_text())
    assert "data/raw/XA: no file matches ['routine.csv']" in status["last_run"]["message"]

    hits = _hits([reports, data / "processed", data / "quarantine"], forbidden)
    assert hits == []
    for log in logs:
        assert not any(f in log for f in forbidden), log
