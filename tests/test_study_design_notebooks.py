"""The study-design workshop: every notebook runs on the learner's own inputs.

Each notebook is run under papermill twice: with its defaults (the demo: a waiting-time
indicator in minutes, Arcadia's facility list) and with a second, different set of inputs (a
proportion indicator in percentage points, Borduria's facility list, other numbers of
facilities, rounds and waves); the outputs must follow the inputs (units, counts, titles).
Running notebook 05 must not change any file git tracks. These runs are marked ``notebooks``
and run by ``make test-notebooks``; the structural checks run in ``make test``.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks" / "study_design"
ALL = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
KERNEL = "clm-research"


def _source(cell: dict[str, Any]) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _load(name: str) -> dict[str, Any]:
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- structure
def test_notebooks_are_clean_parameterised_and_use_the_project_kernel() -> None:
    assert len(ALL) == 6
    for name in ALL:
        nb = _load(name)
        spec = nb["metadata"]["kernelspec"]
        assert spec["name"] == KERNEL and spec["display_name"] == "clm-research (Python 3)", name
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{name}: exactly one cell tagged 'parameters'"
        for c in nb["cells"]:
            if c["cell_type"] == "code":
                assert c["outputs"] == [] and c["execution_count"] is None, f"{name}: has outputs"
        assert "Learning goals" in _source(nb["cells"][0])


def test_papermill_reads_every_parameter() -> None:
    # papermill infers the parameters from the tagged cell; a line it cannot parse (e.g. a
    # comment with "=") would make `-p` silently "unknown".
    import papermill as pm

    for name in ALL:
        nb = _load(name)
        cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
        assigned = [
            t.id
            for node in ast.parse(_source(cell)).body
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Name)
        ]
        assert list(pm.inspect_notebook(str(NOTEBOOKS / name))) == assigned, name


def test_exercises_are_empty_cells_with_a_collapsed_answer() -> None:
    for name in ALL:
        cells = _load(name)["cells"]
        exercises = [
            i
            for i, c in enumerate(cells)
            if c["cell_type"] == "markdown" and "**Exercise" in _source(c)
        ]
        assert exercises, f"{name}: no exercises"
        for i in exercises:
            work, answer = cells[i + 1], cells[i + 2]
            assert work["cell_type"] == "code", f"{name}: exercise {i} has no cell to work in"
            lines = [ln for ln in _source(work).splitlines() if not ln.strip().startswith("#")]
            assert not "".join(lines).strip(), f"{name}: exercise {i}'s cell holds code"
            text = _source(answer)
            assert answer["cell_type"] == "markdown" and text.startswith("<details>"), name
            assert "<b>Answer</b>" in text and text.rstrip().endswith("</details>"), name


def test_answers_derive_their_numbers() -> None:
    text = "\n".join(_source(c) for c in _load("03_sample_size_and_power.ipynb")["cells"])
    assert "1.96 (for 95% confidence, two-sided) + 0.84 (for 80% power) = 2.80" in text
    assert "2.80² ≈ 7.85" in text
    assert "7.85 × 0.25 × 2.45 / (30 × 0.01)" in text
    assert "0.2 × 0.8 + 0.1 × 0.9 = 0.16 + 0.09 = 0.25" in text


def test_the_workshop_index_lists_the_sessions_in_order_with_their_goals() -> None:
    readme = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    positions = [readme.find(f"({name})") for name in ALL]
    assert all(p > 0 for p in positions) and positions == sorted(positions)
    for name in ALL:
        first = _source(_load(name)["cells"][0])
        goals = first.split("**Learning goals.**", 1)[1].split("**Words used here.**")[0]
        for goal in re.findall(r"^\d\. (.+(?:\n {3}.+)*)", goals.strip(), flags=re.M):
            flat = " ".join(goal.split())
            assert flat in " ".join(readme.split()), f"{name}: goal not in README: {flat}"
    makefile = (ROOT / "Makefile").read_text()
    assert "study_design/README.md" in makefile  # `make lab` opens on the index


# --------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def borduria_list(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from clm_research.design import demo_facility_list

    path = tmp_path_factory.mktemp("lists") / "borduria_facilities.csv"
    demo_facility_list("XB").to_csv(path, index=False)
    return path


def _execute(name: str, out: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    import papermill as pm

    pm.execute_notebook(
        str(NOTEBOOKS / name),
        str(out),
        parameters=parameters,
        kernel_name=KERNEL,
        cwd=str(NOTEBOOKS),  # where JupyterLab starts the notebook's kernel
        progress_bar=False,
    )
    return json.loads(out.read_text(encoding="utf-8"))


def _text(nb: dict[str, Any]) -> tuple[str, str]:
    """All text the learner sees (stdout, Markdown, tables) and everything written to stderr."""
    shown, errors = [], []
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            if o["output_type"] == "stream":
                (errors if o["name"] == "stderr" else shown).append("".join(o["text"]))
            elif o["output_type"] in ("display_data", "execute_result"):
                for kind in ("text/markdown", "text/plain"):
                    if kind in o["data"]:
                        shown.append("".join(o["data"][kind]))
            elif o["output_type"] == "error":
                errors.append(o["evalue"])
    return "\n".join(shown), "\n".join(errors)


def _demo(name: str, tmp: Path, lists: Path) -> dict[str, Any]:
    return {
        "02_choosing_a_design.ipynb": {"n_sims": 40},
        "03_sample_size_and_power.ipynb": {"n_sims": 40},
        "05_analysis_plan.ipynb": {"plan_dir": str(tmp / "plans")},
        "06_publishing.ipynb": {"figures_dir": str(tmp / "figures")},
    }.get(name, {})


def _other(name: str, tmp: Path, lists: Path) -> dict[str, Any]:
    """A proportion indicator, Borduria's facility list and other numbers."""
    respect = {"country": "XB", "indicator": "treated_with_respect"}
    return {
        "01_framing.ipynb": {
            **respect,
            "question": "Are clients treated with more respect where communities monitor clinics?",
            "secondary_indicators": ["refill_six_months", "confidentiality_breach"],
        },
        "02_choosing_a_design.ipynb": {
            **respect,
            "baseline": 55.0,
            "effect": 8.0,
            "trend": 1.5,
            "facilities_clm": 16,
            "facilities_comparison": 8,
            "rounds_before": 3,
            "rounds_after": 3,
            "sd_between_facilities": 6.0,
            "sd_round_to_round": 4.0,
            "n_sims": 40,
            "seed": 7,
        },
        "03_sample_size_and_power.ipynb": {
            **respect,
            "baseline": 55.0,
            "effect": 8.0,
            "icc": 0.08,
            "interviews_per_round": 20,
            "facilities_clm": 16,
            "facilities_comparison": 8,
            "rounds_before": 1,
            "rounds_after": 3,
            "margin": 4.0,
            "its_points_before": 10,
            "its_points_after": 10,
            "series_sd": 3.0,
            "n_sims": 40,
            "seed": 9,
        },
        "04_sampling_facilities.ipynb": {
            "facility_list": str(lists),
            "strata": "region",
            "n_facilities": 18,
            "reserves_per_stratum": 1,
            "clusters_per_step": 6,
            "first_round": "2026Q2",
            "rounds_before": 2,
            "seed": 7,
        },
        "05_analysis_plan.ipynb": {
            "study_id": "respect_borduria",
            "plan_dir": str(tmp / "plans"),
            "question": "Did more clients feel treated with respect once CLM started at their clinic?",
            "countries": ["XB"],
            "design_name": "stepped_wedge",
            "indicator": "treated_with_respect",
            "secondary_indicators": ["refill_six_months"],
            "comparison_group": "not_yet_monitored",
            "first_round": "2023Q1",
            "clm_start_round": "2023Q3",
            "last_round": "2024Q4",
            "estimator": "twfe",
            "model": "two-way fixed effects (facility and round), errors clustered by facility",
            "baseline": 55.0,
            "minimum_detectable_effect": 3.0,
            "icc": 0.08,
            "interviews_per_round": 20,
            "facilities_clm": 12,
            "facilities_comparison": 0,
            "steps": 3,
            "rehearsal_country": "XB",
        },
        "06_publishing.ipynb": {
            **respect,
            "design_name": "stepped_wedge",
            "facility_list": str(lists),
            "facilities_clm": 16,
            "facilities_comparison": 8,
            "first_round": "2026Q1",
            "rounds_before": 1,
            "rounds_after": 3,
            "baseline": 55.0,
            "effect": 8.0,
            "icc": 0.08,
            "interviews_per_round": 20,
            "seed": 3,
            "figures_dir": str(tmp / "figures"),
        },
    }[name]


# what the outputs must say for each input set
EXPECT: dict[str, dict[str, list[str]]] = {
    "01_framing.ipynb": {
        "demo": ["shorten waiting times", "Median waiting time", "measured in minutes"],
        "other": [
            "more respect where communities monitor",
            "measured in percent; a change is stated in percentage points",
            "refill_six_months",
        ],
    },
    "02_choosing_a_design.ipynb": {
        "demo": ["20 CLM and 20 comparison facilities", "4 × -3 = -12 minutes"],
        "other": [
            "16 CLM and 8 comparison facilities, 3 rounds before and 3",
            "true effect +8 percentage points",
            "(3 + 3) / 2 = 3 rounds later",
            "3 × 1.5 = 4.5 percentage points",
        ],
    },
    "03_sample_size_and_power.ipynb": {
        "demo": [
            "baseline 60 minutes, minimum effect -10 minutes",
            "DE = 1 + (30 − 1) × 0.05 = 2.45",
            "± 5 minutes around 60 minutes",
            "DiD, 12 + 12 clinics",
        ],
        "other": [
            "baseline 55%, minimum effect +8 percentage points",
            "DE = 1 + (20 − 1) × 0.08 = 2.52",
            "± 4 percentage points around 55%",
            "DiD, 16 + 8 clinics",
            "ITS (10 + 10 monthly points",
        ],
    },
    "04_sampling_facilities.ipynb": {
        "demo": [
            "60 facilities in 8 districts",
            "24 facilities sampled in 8 strata",
            "24 facilities in 4 waves of 6, rounds 2025Q1 to 2026Q1",
        ],
        "other": [
            "48 facilities in 6 districts",
            "borduria_facilities.csv",
            "18 facilities sampled in 2 strata",
            "18 facilities in 3 waves of 6, rounds 2026Q2 to 2027Q2",
        ],
    },
    "05_analysis_plan.ipynb": {
        "demo": [
            "## Community-led monitoring and median waiting time",
            "to detect a change of -10 minutes",
            "last_round: planned '2024Q4', run used '2024Q3'",
        ],
        "other": [
            "## Community-led monitoring and clients treated with respect",
            "2 before CLM (2023Q1–2023Q2) and 6 from its start",
            "to detect a change of +3 percentage points",
            "stepped wedge, Hussey & Hughes closed form, 3 step(s)",
            "Warning: the study as planned has only",
            "last_round: planned '2024Q4', run used '2024Q3'",
        ],
    },
    "06_publishing.ipynb": {
        "demo": [
            "24 CLM and 12 comparison facilities drawn from the 60 facilities",
            "Median waiting time (minutes)",
            "CLM (n=720)",  # 24 facilities × 30 interviews at baseline
            "figure1_wait_time_median.png",
        ],
        "other": [
            "16 CLM and 8 comparison facilities drawn from the 48 facilities",
            "CLM (n=16)",
            "CLM (n=320)",  # 16 facilities × 20 interviews at baseline
            "figure1_treated_with_respect.png",
        ],
    },
}


@pytest.mark.notebooks
@pytest.mark.parametrize("inputs", ["demo", "other"])
@pytest.mark.parametrize("name", ALL)
def test_notebook_follows_its_inputs(
    name: str, inputs: str, tmp_path: Path, borduria_list: Path
) -> None:
    parameters = (_demo if inputs == "demo" else _other)(name, tmp_path, borduria_list)
    nb = _execute(name, tmp_path / name, parameters)
    shown, errors = _text(nb)
    assert errors == "", f"{name} ({inputs}) wrote to stderr (warnings, progress bars):\n{errors}"
    for expected in EXPECT[name][inputs]:
        assert expected in shown, f"{name} ({inputs}): {expected!r} not in the output"
    if name == "05_analysis_plan.ipynb":
        from clm_research.plans import load_plan

        study = parameters.get("study_id", "my_clm_study")
        plan = load_plan(tmp_path / "plans" / f"{study}.yaml")
        assert plan.primary_indicator == parameters.get("indicator", "wait_time_median")
        if inputs == "demo":
            assert plan.minimum_detectable_effect == -10 and plan.countries == ("XA",)
            assert plan.planned_power is not None and plan.power_warning == ""
        else:
            assert plan.design == "stepped_wedge" and plan.countries == ("XB",)
            assert plan.minimum_detectable_effect == pytest.approx(0.03)  # 3 points, 0–1 scale
            assert plan.planned_power is not None and plan.planned_power < 0.8
            assert plan.power_warning.startswith("Warning:")
    if name == "06_publishing.ipynb":
        from PIL import Image

        indicator = parameters.get("indicator", "wait_time_median")
        png = tmp_path / "figures" / f"figure1_{indicator}.png"
        assert png.is_file() and png.with_suffix(".pdf").is_file()
        assert Image.open(png).info["dpi"][0] == pytest.approx(300, abs=1)


def _git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.notebooks
def test_running_the_analysis_plan_notebook_changes_no_tracked_file(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git working copy: git status cannot be compared")
    before = _git_status()
    study = f"test_draft_{uuid.uuid4().hex[:8]}"
    from clm_research.design import drafts_dir

    draft = drafts_dir() / f"{study}.yaml"
    try:
        # the learner's defaults: no plan_dir, so the draft goes to params/plans/drafts/
        nb = _execute("05_analysis_plan.ipynb", tmp_path / "05.ipynb", {"study_id": study})
        assert draft.is_file() and "Draft written (not registered)" in _text(nb)[0]
        assert _git_status() == before
    finally:
        draft.unlink(missing_ok=True)


@pytest.mark.notebooks
@pytest.mark.parametrize(
    "name,parameters,sentence",
    [
        (
            "04_sampling_facilities.ipynb",
            {"facility_list": "BAD_LIST"},
            "row 3, column size: 'abc' is not a positive number",
        ),
        (
            "05_analysis_plan.ipynb",
            {"study_id": "demo_wait_time", "register": True},
            "a registered plan is never overwritten",
        ),
    ],
)
def test_bad_input_stops_the_notebook_with_a_sentence_not_a_traceback(
    name: str, parameters: dict[str, Any], sentence: str, tmp_path: Path
) -> None:
    import papermill as pm

    bad = tmp_path / "facilities.csv"
    bad.write_text("facility_id,district,size\nF1,North,12\nF1,,abc\n", encoding="utf-8")
    parameters = {k: str(bad) if v == "BAD_LIST" else v for k, v in parameters.items()}
    registered = ROOT / "params" / "plans" / "demo_wait_time.yaml"
    before = registered.read_bytes()
    with pytest.raises(pm.PapermillExecutionError) as info:
        _execute(name, tmp_path / name, parameters)
    assert info.value.ename == "DesignInputError"
    shown = "\n".join(info.value.traceback)
    assert sentence in shown
    assert "Traceback" not in shown and "File " not in shown and ".py" not in shown
    assert registered.read_bytes() == before
