"""Papermill smoke test: every evaluation notebook for every demo country, through the runner."""

from __future__ import annotations

import json
import os
import tempfile
from functools import cache
from pathlib import Path

import nbformat
import pytest

from clm_research.config.country import NotebookParameters, SynthesisParameters
from clm_research.paths import project_root
from clm_research.run.many import RunSummary
from clm_research.run.notebooks import evaluation_notebooks, parameters_cell_names

#: Small demo countries keep the whole pipeline (demo data → gate → notebooks) near a minute.
SMALL = {"facilities": 30, "interviews_per_round": 20}

# one worker runs every test that shares the full pipeline run (it is cached per process)
pytestmark = pytest.mark.xdist_group("pipeline")


@cache
def pipeline_run() -> tuple[Path, RunSummary]:
    """Generate small demo data and run every country once (jobs=2); shared by several tests."""
    from clm_research.demo import demo_countries, write_demo
    from clm_research.run.many import run_countries

    base = Path(tempfile.mkdtemp(prefix="clm-pipeline-"))
    os.environ["CLM_DATA_DIR"] = str(base / "data")
    os.environ["CLM_REPORTS_DIR"] = str(base / "reports")
    try:
        codes = demo_countries()
        write_demo(codes, **SMALL)
        summary = run_countries(codes, jobs=2, progress=False)
        (base / "reports" / "run.log").write_text(summary.format())
    finally:
        os.environ.pop("CLM_DATA_DIR", None)
        os.environ.pop("CLM_REPORTS_DIR", None)
    return base, summary


def test_every_notebook_parameters_cell_matches_the_model() -> None:
    notebooks = evaluation_notebooks()
    assert len(notebooks) >= 7
    for nb in notebooks:
        assert parameters_cell_names(nb) == sorted(NotebookParameters.model_fields), nb.name
    synthesis = project_root() / "notebooks" / "synthesis.ipynb"
    assert parameters_cell_names(synthesis) == sorted(SynthesisParameters.model_fields)


def test_every_notebook_declares_the_clm_research_kernel() -> None:
    """Opened in JupyterLab, a notebook runs on the project's kernel (its .venv), never on
    whatever "python3" the machine has."""
    root = project_root() / "notebooks"
    paths = sorted(root.rglob("*.ipynb"))
    assert len(paths) >= 14
    for path in paths:
        if ".ipynb_checkpoints" in path.parts:
            continue
        spec = nbformat.read(path, as_version=4).metadata.get("kernelspec", {})
        assert spec.get("name") == "clm-research", path.relative_to(root)


def test_notebooks_are_committed_without_outputs() -> None:
    for nb_path in [*evaluation_notebooks(), project_root() / "notebooks" / "synthesis.ipynb"]:
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, nb_path.name


def test_every_notebook_runs_for_every_demo_country() -> None:
    base, summary = pipeline_run()
    assert summary.exit_code == 0, summary.format()
    expected = sorted(p.name for p in evaluation_notebooks())
    for r in summary.results:
        out = base / "reports" / r.country / r.period
        assert sorted(p.name for p in (out / "notebooks").iterdir()) == expected
        html = (out / "report.html").read_text()
        assert "Progress" in html or "progress" in html
        assert html.count("<img") >= 5  # trends, maps, funnel, survival curve, impact
        scorecard = out / "tables" / "progress_scorecard.csv"
        assert scorecard.is_file() and (out / "tables" / "progress_scorecard.parquet").is_file()
        timings = json.loads((out / "timings.json").read_text())
        assert {"gate", "kernel_start", "imports", "analysis", "render"} <= set(timings["stages"])
        # the disclosure audit ran before anything was published and its summary is shown
        assert "disclosure" in timings["stages"]
        prov = json.loads((out / "provenance.json").read_text())
        assert prov["disclosure"]["passed"] and prov["disclosure"]["failures"] == 0
        assert prov["disclosure"]["suppressed_primary"] > 0
        assert "Disclosure control" in html and "audited" in html
    index = (base / "reports" / "index.html").read_text()
    for r in summary.results:
        assert f"{r.country}/{r.period}/report.html" in index
    assert summary.synthesis is not None and summary.synthesis.status == "succeeded", (
        summary.format()
    )


def test_the_summary_shows_the_results_chain() -> None:
    """The summary page, after the scorecard: the results-chain diagram as an image with its
    alternative text, the paragraph generated from the analysis, and the chart of the links."""
    import html as html_text
    import re

    base, summary = pipeline_run()
    assert summary.exit_code == 0, summary.format()
    for r in summary.results:
        page = (base / "reports" / r.country / r.period / "report.html").read_text()
        start = page.index('id="chapter-00_summary"')
        chapter = page[start : page.index('id="chapter-', start + 1)]
        scorecard = chapter.index('class="clm-table scorecard"')
        alts = [
            (m.start(), html_text.unescape(m.group(1)))
            for m in re.finditer(r'<img [^>]*alt="([^"]*)"', chapter)
        ]
        diagram = [
            (pos, alt) for pos, alt in alts if alt.startswith("Diagram of the results chain")
        ]
        assert len(diagram) == 1, (r.country, [a[:60] for _, a in alts])
        pos, alt = diagram[0]
        assert pos > scorecard, r.country
        assert "Link 1," in alt and len(alt) > 200, (r.country, alt[:200])
        text = html_text.unescape(re.sub(r"<[^>]+>", " ", chapter[pos:]))
        paragraph = re.search(r"(Of|None of) the \d+ links of the results chain", text)
        assert paragraph, r.country
        chart = [a for p, a in alts if p > pos and a.startswith("Chart of the estimated strength")]
        assert chart, r.country
