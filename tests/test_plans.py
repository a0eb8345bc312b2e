"""Analysis plans: round trip, errors that name the file and field, deviations."""

from __future__ import annotations

import pytest

from clm_research.errors import ParamsError
from clm_research.plans import AnalysisPlan, check_deviations, load_plan, write_plan

BASE = dict(
    study_id="wait_study",
    question="Does CLM shorten waiting times at monitored clinics?",
    design="did",
    primary_indicator="wait_time_median",
    secondary_indicators=("medicine_stockout_experienced", "treated_with_respect"),
    comparison_group="never_monitored",
    first_round="2023Q1",
    last_round="2024Q4",
    estimator="twfe",
    model="two-way fixed effects, errors clustered by facility",
    alpha=0.05,
    minimum_detectable_effect=-10.0,
    countries=("XA",),
)


def test_round_trip(tmp_path) -> None:
    plan = AnalysisPlan(**BASE)
    path = write_plan(plan, tmp_path)
    assert path == tmp_path / "wait_study.yaml"
    assert load_plan(path) == plan
    assert plan.indicators[0] == "wait_time_median"


def test_unknown_field_and_bad_value_name_file_and_field(tmp_path) -> None:
    path = write_plan(AnalysisPlan(**BASE), tmp_path)
    text = path.read_text()
    (tmp_path / "typo.yaml").write_text(text.replace("alpha:", "alhpa:"))
    with pytest.raises(ParamsError, match=r"typo\.yaml.*\n.*alhpa: unknown parameter"):
        load_plan(tmp_path / "typo.yaml")
    (tmp_path / "design.yaml").write_text(text.replace("design: did", "design: rct"))
    with pytest.raises(ParamsError, match=r"design\.yaml(.|\n)*design:"):
        load_plan(tmp_path / "design.yaml")
    (tmp_path / "ind.yaml").write_text(
        text.replace("primary_indicator: wait_time_median", "primary_indicator: wait_time")
    )
    with pytest.raises(
        ParamsError, match=r"ind\.yaml: primary_indicator: unknown indicator 'wait_time'"
    ):
        load_plan(tmp_path / "ind.yaml")
    with pytest.raises(ParamsError, match="no analysis plan"):
        load_plan(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "change,message",
    [
        ({"first_round": "2025Q1"}, "after last_round"),
        ({"design": "its", "comparison_group": "not_yet_monitored"}, "cannot use"),
        ({"design": "stepped_wedge", "comparison_group": "none"}, "needs a comparison"),
        ({"secondary_indicators": ("wait_time_median",)}, "also listed as secondary"),
        ({"minimum_detectable_effect": 0}, "must not be zero"),
        ({"last_round": "2024-12"}, "round must look like"),
        ({"countries": ("xa",)}, "two capital letters"),
    ],
)
def test_inconsistent_plans_are_refused(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        AnalysisPlan(**{**BASE, **change})


def test_unknown_country_is_an_error(tmp_path) -> None:
    with pytest.raises(ParamsError, match="countries: no parameters for country 'XQ'"):
        write_plan(AnalysisPlan(**{**BASE, "countries": ("XQ",)}), tmp_path)


def test_check_deviations() -> None:
    plan = AnalysisPlan(**BASE)
    assert (
        check_deviations(
            plan,
            {
                "design": "did",
                "countries": ["XA"],
                "alpha": 0.05,
                "secondary_indicators": ["treated_with_respect", "medicine_stockout_experienced"],
            },
        )
        == []
    )
    dev = check_deviations(
        plan,
        {
            "design": "its",
            "last_round": "2024Q3",
            "secondary_indicators": ["treated_with_respect", "vl_result_received"],
            "bootstrap": True,
        },
    )
    assert "design: planned 'did', run used 'its'" in dev
    assert "last_round: planned '2024Q4', run used '2024Q3'" in dev
    assert "secondary_indicators: planned but not analysed: medicine_stockout_experienced" in dev
    assert "secondary_indicators: analysed but not planned: vl_result_received" in dev
    assert any(x.startswith("bootstrap: not part of the plan") for x in dev)
    assert len(dev) == 5


def test_committed_demo_plan_loads() -> None:
    from clm_research.paths import params_dir

    path = params_dir() / "plans" / "demo_wait_time.yaml"
    if not path.exists():
        pytest.skip("demo plan not written yet")
    plan = load_plan(path)
    assert plan.study_id == "demo_wait_time"
