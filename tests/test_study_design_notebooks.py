"""The study-design notebooks run top to bottom under papermill, quickly, and write the plan."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks" / "study_design"
ALL = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def test_notebooks_are_clean_and_parameterised() -> None:
    assert len(ALL) == 6
    for name in ALL:
        nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{name}: exactly one cell tagged 'parameters'"
        for c in nb["cells"]:
            if c["cell_type"] == "code":
                assert c["outputs"] == [] and c["execution_count"] is None, f"{name}: has outputs"
        assert (
            "Learning goals" in nb["cells"][0]["source"]
            if isinstance(nb["cells"][0]["source"], str)
            else "Learning goals" in "".join(nb["cells"][0]["source"])
        )
        text = json.dumps(nb)
        assert "Answer" in text, f"{name}: exercises need worked answers"


@pytest.mark.parametrize("name", ALL)
def test_notebook_runs_under_papermill(name: str, tmp_path: Path) -> None:
    import papermill as pm

    params = {
        "05_analysis_plan.ipynb": {"plan_dir": str(tmp_path / "plans")},
        "06_publishing.ipynb": {"figures_dir": str(tmp_path / "figures")},
        # Fewer simulated studies: the test checks that the notebook runs, not the numbers.
        "02_choosing_a_design.ipynb": {"n_sims": 50},
        "03_sample_size_and_power.ipynb": {"n_sims": 50},
    }.get(name, {})
    start = time.perf_counter()
    pm.execute_notebook(
        str(NOTEBOOKS / name),
        str(tmp_path / name),
        parameters=params,
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    elapsed = time.perf_counter() - start
    assert elapsed < 60, f"{name} took {elapsed:.0f} s (limit 60 s)"
    if name == "05_analysis_plan.ipynb":
        from clm_research.plans import load_plan

        plan = load_plan(tmp_path / "plans" / "demo_wait_time.yaml")
        assert plan.primary_indicator == "wait_time_median" and plan.design == "did"
    if name == "06_publishing.ipynb":
        from PIL import Image

        png = tmp_path / "figures" / "figure1_wait_time.png"
        assert png.is_file() and (tmp_path / "figures" / "figure1_wait_time.pdf").is_file()
        assert Image.open(png).info["dpi"][0] == pytest.approx(300, abs=1)
