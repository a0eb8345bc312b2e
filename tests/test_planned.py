"""The pre-registration loop: plan → the analysis it names on demo data → deviations flagged."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from clm_research.errors import ParamsError
from clm_research.evaluation.planned import run_plan
from clm_research.plans import AnalysisPlan, load_plan, write_plan
from clm_research.report.plan import deviations_html, plan_figure, plan_table, statement

SECONDARY = ("vl_result_received", "arv_stockout_observed")


def _plan(**changes: object) -> AnalysisPlan:
    fields = {
        "study_id": "roundtrip_wait",
        "question": "Did mean waiting time fall where community-led monitoring started?",
        "design": "did",
        "primary_indicator": "wait_time_mean",
        "secondary_indicators": SECONDARY,
        "comparison_group": "not_yet_monitored",
        "first_round": "2023Q1",
        "last_round": "2024Q4",
        "estimator": "callaway_santanna",
        "model": "Callaway & Sant'Anna difference-in-differences, not-yet-treated controls",
        "alpha": 0.05,
        "minimum_detectable_effect": -10.0,
        "countries": ("XA",),
    }
    fields.update(changes)
    return AnalysisPlan(**fields)


@pytest.fixture(scope="module")
def written_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_plan(_plan(), tmp_path_factory.mktemp("plans"))


@pytest.fixture(scope="module")
def analysis(written_plan: Path, demo_xa, framework_xa):
    return run_plan(written_plan, "XA", demo_xa.clean, framework_xa)


def test_round_trip_recovers_the_planted_effect(written_plan: Path, analysis, demo_xa) -> None:
    assert load_plan(written_plan) == _plan()
    truth = demo_xa.truth["att"]["wait_time_mean"]["overall"]  # minutes, planted by the generator
    assert (
        -25 < truth < -8
    )  # the generator plants a clear reduction (-25% of the mean at full ramp)
    primary = analysis.primary
    assert primary.indicator_id == "wait_time_mean" and primary.result is not None
    eff = primary.result.primary
    assert eff.name == "att_simple"  # Callaway–Sant'Anna, as the plan's model says
    assert eff.ci_low <= truth <= eff.ci_high
    assert eff.level == pytest.approx(0.95)
    row = analysis.summary().iloc[0]
    assert row["role"] == "primary" and row["p < 0.05"] == "yes"


def test_a_plan_run_as_registered_has_only_the_deviations_the_data_force(analysis) -> None:
    # arv_stockout_observed comes from checklist visits that exist only at CLM facilities:
    # it cannot be compared, so the run says so (a deviation with its reason), nothing else.
    assert len(analysis.deviations) == 1, analysis.deviations
    d = analysis.deviations[0]
    assert d.startswith("secondary_indicators: planned but not analysed: arv_stockout_observed")
    assert "no comparison group" in d
    vl = analysis.summary().set_index("indicator_id").loc["vl_result_received"]
    assert math.isfinite(vl["estimate"]) and vl["ci_low"] < vl["estimate"] < vl["ci_high"]
    assert "No deviations" not in deviations_html(analysis)


def test_no_deviation_box_when_the_plan_is_followed(demo_xa, framework_xa) -> None:
    plan = _plan(secondary_indicators=("vl_result_received",))
    res = run_plan(plan, "XA", demo_xa.clean, framework_xa)
    assert res.deviations == []
    assert "No deviations from the pre-registered plan" in deviations_html(res)
    assert plan_table(res).set_index("field").loc["design", "this run"] == "did"


def test_a_changed_run_config_is_reported(written_plan: Path, demo_xa, framework_xa) -> None:
    changed = run_plan(
        written_plan,
        "XA",
        demo_xa.clean,
        framework_xa,
        changes={
            "last_round": "2024Q3",
            "alpha": 0.1,
            "estimator": "twfe",
            "comparison_group": "never_monitored",
            "secondary_indicators": ["vl_result_received", "treated_with_respect"],
        },
    )
    got = changed.deviations
    assert "last_round: planned '2024Q4', run used '2024Q3'" in got
    assert "alpha: planned 0.05, run used 0.1" in got
    assert "estimator: planned 'callaway_santanna', run used 'twfe'" in got
    # TWFE compares with every facility not (yet) under CLM, whatever the plan said
    assert "comparison_group: planned 'not_yet_monitored', run used 'not_yet_monitored'" not in got
    assert "secondary_indicators: analysed but not planned: treated_with_respect" in got
    assert any(
        d.startswith("secondary_indicators: planned but not analysed: arv_stockout_observed")
        for d in got
    )
    # the changed alpha really is used: 90% intervals
    assert changed.primary.result.primary.level == pytest.approx(0.9)
    assert changed.summary()["ci_level"].iloc[0] == "90%"


def test_window_the_data_do_not_cover_is_a_deviation(demo_xa, framework_xa) -> None:
    plan = _plan(last_round="2025Q2", secondary_indicators=())
    res = run_plan(plan, "XA", demo_xa.clean, framework_xa)
    assert "last_round: planned '2025Q2', run used '2024Q4'" in res.deviations


def test_other_country_and_a_changed_model_text_are_deviations(demo_xa, framework_xa) -> None:
    res = run_plan(
        _plan(secondary_indicators=()),
        "XB",
        demo_xa.clean,
        framework_xa,
        changes={"model": "our usual analysis"},
    )
    assert any(d.startswith('model: planned "Callaway') for d in res.deviations)
    assert "countries: the plan covers XA; this run analyses XB" in res.deviations


def test_design_that_cannot_run_on_the_data_says_so(demo_xa, framework_xa) -> None:
    # 8 quarterly rounds with CLM from the third: 2 points before the interruption
    plan = _plan(
        design="its",
        comparison_group="none",
        estimator="its",
        its_family="ols",
        model="segmented OLS",
        secondary_indicators=(),
    )
    res = run_plan(plan, "XA", demo_xa.clean, framework_xa)
    assert res.primary.result is None
    assert res.primary.message.startswith("not supported for this data")
    assert any(
        d.startswith("primary_indicator: 'wait_time_mean' could not be analysed")
        for d in res.deviations
    )
    assert "could not be run as planned" in statement(res)


def test_routine_its_on_monthly_data(demo_xa, framework_xa) -> None:
    plan = _plan(
        design="its",
        comparison_group="none",
        primary_indicator="treatment_interruption",
        secondary_indicators=(),
        first_round="2022Q1",
        estimator="its",
        its_family="quasipoisson",
        harmonics=2,
        model="quasi-Poisson segmented regression with harmonics, offset tx_curr",
    )
    res = run_plan(plan, "XA", demo_xa.clean, framework_xa)
    assert res.deviations == []
    its = res.primary.result
    assert its.effect("level_change").scale == "rate_ratio"
    assert its.diagnostics["harmonic_pairs"] == 2 and its.diagnostics["offset"] == "exposure"
    assert (its.diagnostics["n_pre"], its.diagnostics["n_post"]) == (18, 18)  # 2022-01..2023-06
    assert plan_figure(res) is not None


def test_changes_outside_the_plan_fields_are_an_error(written_plan: Path, demo_xa) -> None:
    with pytest.raises(ParamsError, match="cannot change"):
        run_plan(written_plan, "XA", demo_xa.clean, changes={"countries": ["XB"]})


def test_the_estimator_is_a_validated_field_not_read_from_the_model_text(
    tmp_path: Path, demo_xa, framework_xa
) -> None:
    # the prose is a description: "we will not run an event study" runs what the field says
    plan = _plan(model="we will not run an event study", secondary_indicators=())
    res = run_plan(plan, "XA", demo_xa.clean, framework_xa)
    assert res.primary.result.primary.name == "att_simple"  # Callaway–Sant'Anna
    assert res.estimator == "callaway_santanna"
    # each design takes only its estimators, checked when the plan is written or loaded
    for design, comparison, bad in (
        ("did", "not_yet_monitored", "its"),
        ("its", "none", "twfe"),
        ("cluster_rct", "randomised_control", "callaway_santanna"),
    ):
        with pytest.raises(ValueError, match="does not fit design"):
            _plan(design=design, comparison_group=comparison, estimator=bad)
    path = write_plan(_plan(), tmp_path)
    path.write_text(path.read_text().replace("estimator: callaway_santanna", "estimator: ols"))
    with pytest.raises(ParamsError, match="estimator"):
        load_plan(path)
    path.write_text(path.read_text().replace("estimator: ols\n", ""))
    with pytest.raises(ParamsError, match=r"estimator: required"):
        load_plan(path)


def test_country_params_plan_is_a_project_path() -> None:
    from clm_research.config.country import CountryParams, load_country
    from clm_research.evaluation.planned import country_plan

    assert load_country("XA").plan == "params/plans/demo_wait_time.yaml"
    assert country_plan("XA").study_id == "demo_wait_time"
    base = load_country("XB").model_dump()
    assert load_country("XB").plan is None
    for bad in ("/etc/plan.yaml", "../plans/x.yaml", "params/plans/x.txt"):
        with pytest.raises(ValueError, match="plan"):
            CountryParams.model_validate({**base, "plan": bad})


def test_ensure_country_data_builds_a_demo_country_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clm_research.pipeline import ensure_country_data
    from clm_research.schema import TABLES

    monkeypatch.setenv("CLM_DATA_DIR", str(tmp_path / "data"))
    folder = ensure_country_data("XB")
    assert folder == tmp_path / "data" / "processed" / "XB"
    assert all((folder / f"{t}.parquet").is_file() for t in TABLES)
    stamp = (folder / "interviews.parquet").stat().st_mtime_ns
    ensure_country_data("XB")  # present: nothing is regenerated
    assert (folder / "interviews.parquet").stat().st_mtime_ns == stamp


def test_the_plan_file_is_an_input_of_the_report() -> None:
    """Editing a country's pre-registered plan must make `clm run --changed-only` rerun it."""
    from clm_research.config.country import load_country
    from clm_research.paths import project_root
    from clm_research.report.provenance import input_files

    plan = load_country("XA").plan
    assert plan is not None
    assert (project_root() / plan).resolve() in [p.resolve() for p in input_files("XA")]


def test_chain_links_are_secondary_hypotheses_run_like_the_report_runs_them(
    demo_xa, framework_xa
) -> None:
    """A plan names results-chain links; the run tests them as chain_analysis does and flags
    the ones it cannot test, with the reason."""
    from clm_research.evaluation.chain import chain_analysis

    plan = _plan(
        secondary_indicators=(),
        chain_links=(
            {"upstream": "vl_result_received", "downstream": "viral_suppression"},
            {"upstream": "reports_published", "downstream": "issues_escalated"},
        ),
    )
    res = run_plan(plan, "XA", demo_xa.clean, framework_xa)
    rows = res.summary().set_index("role")
    links = res.summary()[res.summary()["role"] == "chain link"].set_index("indicator_id")
    assert len(links) == 2 and "primary" in rows.index
    # the same estimate as the report's chain analysis of that link
    ref = chain_analysis(
        demo_xa.clean,
        framework_xa,
        links=[("vl_result_received", "viral_suppression")],
        mediation=False,
    ).links.iloc[0]
    vl = links.loc[ref["link"]]
    assert vl["estimate"] == pytest.approx(ref["estimate"])
    assert vl["ci_low"] < vl["estimate"] < vl["ci_high"]
    # reports are published once a year: not measured per facility and round, so a deviation
    assert any(
        d.startswith("chain_links: planned but not analysed: reports_published → issues_escalated")
        for d in res.deviations
    ), res.deviations
    # a link the framework does not declare is refused when the plan is checked
    from clm_research.plans import validate_indicators

    bad = _plan(chain_links=({"upstream": "wait_time_mean", "downstream": "viral_suppression"},))
    with pytest.raises(ParamsError, match="not a contributes_to link"):
        validate_indicators(bad, "plan.yaml")
