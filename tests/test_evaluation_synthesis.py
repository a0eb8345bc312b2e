"""Multiplicity, meta-analysis, progress to target, community-led status: hand-worked and published checks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from clm_research.evaluation import (
    EvaluationError,
    adjust_pvalues,
    assess_community_led,
    benjamini_hochberg,
    meta_analysis,
    progress_table,
    progress_to_target,
)


def test_import_clm_research_does_not_import_evaluation() -> None:
    code = "import sys, clm_research; print('clm_research.evaluation' in sys.modules, 'statsmodels' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


def test_benjamini_hochberg_hand_worked() -> None:
    # p = .01 .04 .03 .005 .20 (m = 5). Sorted: .005 .01 .03 .04 .20; m·p/rank = .025 .025 .05 .05 .20;
    # running minimum from the top: .025 .025 .05 .05 .20 -> back in input order:
    p = [0.01, 0.04, 0.03, 0.005, 0.20]
    assert benjamini_hochberg(p) == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.20])
    table = pd.DataFrame({"indicator_id": list("abcdef"), "p_value": p + [np.nan]})
    out = adjust_pvalues(table, alpha=0.05)
    assert out["significant_bh"].tolist() == [True, True, True, True, False, False]
    assert out["conclusion"].iloc[4] == "no effect detected after adjusting for 5 tests"
    assert out["conclusion"].iloc[5].startswith("no test")
    with pytest.raises(EvaluationError):
        benjamini_hochberg([0.5, 1.5])


# BCG vaccine trials (metafor::dat.bcg; Colditz et al. 1994): tpos, tneg, cpos, cneg.
BCG = [
    ("Aronson 1948", 4, 119, 11, 128),
    ("Ferguson & Simes 1949", 6, 300, 29, 274),
    ("Rosenthal 1960", 3, 228, 11, 209),
    ("Hart & Sutherland 1977", 62, 13536, 248, 12619),
    ("Frimodt-Moller 1973", 33, 5036, 47, 5761),
    ("Stein & Aronson 1953", 180, 1361, 372, 1079),
    ("Vandiviere 1973", 8, 2537, 10, 619),
    ("TPT Madras 1980", 505, 87886, 499, 87892),
    ("Coetzee & Berjak 1968", 29, 7470, 45, 7232),
    ("Rosenthal 1961", 17, 1699, 65, 1600),
    ("Comstock 1974", 186, 50448, 141, 27197),
    ("Comstock & Webster 1969", 5, 2493, 3, 2338),
    ("Comstock 1976", 27, 16886, 29, 17825),
]


@pytest.fixture(scope="module")
def bcg() -> pd.DataFrame:
    d = pd.DataFrame(BCG, columns=["country", "tpos", "tneg", "cpos", "cneg"])
    n1, n2 = d["tpos"] + d["tneg"], d["cpos"] + d["cneg"]
    d["log_rr"] = np.log(d["tpos"] / n1) - np.log(d["cpos"] / n2)
    d["se"] = np.sqrt(1 / d["tpos"] - 1 / n1 + 1 / d["cpos"] - 1 / n2)
    d["rr"] = np.exp(d["log_rr"])
    return d


def test_dersimonian_laird_matches_metafor_and_stata_metan(bcg: pd.DataFrame) -> None:
    # metafor tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r (checked against Stata metan):
    # DL: log RR -0.7141 (CI -1.0644, -0.3638), tau2 0.3088, I2 92.1173%; RR 0.4896 (0.3449-0.6950).
    r = meta_analysis(bcg, estimate="rr", se="se", scale="ratio", method="dl")
    e = r.primary
    assert np.log(e.estimate) == pytest.approx(-0.7141, abs=1e-4)
    assert np.log(e.ci_low) == pytest.approx(-1.0644, abs=1e-4)
    assert np.log(e.ci_high) == pytest.approx(-0.3638, abs=1e-4)
    assert r.diagnostics["tau2"] == pytest.approx(0.3088, abs=1e-4)
    assert r.diagnostics["I2"] == pytest.approx(0.921173, abs=1e-5)
    assert r.diagnostics["Q"] == pytest.approx(
        152.2330, abs=1e-3
    )  # fixed-effect Q in the same file
    assert e.estimate == pytest.approx(0.4896, abs=1e-4)


def test_reml_and_forest_plot(bcg: pd.DataFrame) -> None:
    # metafor rma(yi, vi, data=dat.bcg RR, method="REML"): estimate -0.7145, tau2 0.3132, I2 92.22%.
    r = meta_analysis(bcg, estimate="rr", se="se", scale="ratio", method="reml")
    assert np.log(r.estimate) == pytest.approx(-0.7145, abs=1e-4)
    assert r.diagnostics["tau2"] == pytest.approx(0.3132, abs=1e-4)
    assert r.diagnostics["I2"] == pytest.approx(0.9222, abs=1e-4)
    # recovering SEs from CIs gives the same answer
    z = 1.959963984540054
    ci = bcg.assign(
        ci_low=np.exp(bcg["log_rr"] - z * bcg["se"]), ci_high=np.exp(bcg["log_rr"] + z * bcg["se"])
    )
    r2 = meta_analysis(ci, estimate="rr", scale="ratio", method="reml")
    assert r2.estimate == pytest.approx(r.estimate, rel=1e-8)
    from matplotlib.figure import Figure

    assert isinstance(r.plot(), Figure)
    with pytest.raises(EvaluationError, match="at least two"):
        meta_analysis(bcg.head(1), estimate="rr", se="se", scale="ratio")


def test_progress_to_target_hand_worked() -> None:
    # Rounds 2023Q1..Q4 (t = 0..3), values 50 56 59 65. OLS: slope = Sxy/Sxx = 24/5 = 4.8,
    # intercept 57.5 - 4.8·1.5 = 50.3. Target 80 due 2024Q3 (t = 6): projection 50.3 + 28.8 = 79.1.
    # SSE = .09+.81+.81+.09 = 1.8, s2 = .9; se = sqrt(.9·(1/4 + 4.5²/5)) = 1.96723;
    # t(.975, 2) = 4.302653 -> CI 79.1 ± 8.4644 = (70.636, 87.564), which includes 80.
    # Share of distance covered = (65-50)/(80-50) = 0.5. Verdict: off track (projection < 80).
    s = pd.DataFrame(
        {"round": ["2023Q1", "2023Q2", "2023Q3", "2023Q4"], "estimate": [50, 56, 59, 65]}
    )
    r = progress_to_target(s, target=80, target_time="2024Q3")
    e = r.effect("projected_value")
    assert e.estimate == pytest.approx(79.1)
    assert (e.ci_low, e.ci_high) == pytest.approx((70.636, 87.564), abs=1e-3)
    assert r.share_covered == pytest.approx(0.5)
    assert r.verdict == "off track"
    assert any("includes the target" in n for n in r.notes)
    # lower is better: falling wait times, target 40 by 2024Q3 -> projection 65.7 - ... on track
    w = s.assign(estimate=[80, 70, 62, 50])
    assert (
        progress_to_target(w, target=40, target_time="2024Q3", direction="lower_is_better").verdict
        == "on track"
    )
    assert (
        progress_to_target(s.head(2), target=80, target_time="2024Q3").verdict
        == "insufficient data"
    )
    assert progress_to_target(s, target_time="2024Q3").verdict == "insufficient data"  # no target
    tab = progress_table(
        pd.concat(
            [
                s.assign(indicator_id="a", target=80.0),
                w.assign(indicator_id="b", target=40.0, direction="lower_is_better"),
            ]
        ),
        target_time="2024Q3",
    )
    assert tab.set_index("indicator_id")["verdict"].to_dict() == {"a": "off track", "b": "on track"}
    r.plot()


def _org(**over) -> dict:
    row = {"organisation_id": "O1", "name": "Network A"}
    for role in ("governance", "leadership", "staff", "spokespeople", "members", "volunteers"):
        row[f"{role}_total"], row[f"{role}_constituency"] = 10, 7
    row.update(
        accountability_mechanism=True,
        agenda_set_by_constituency=True,
        funding_government_share=0.1,
        funding_donor_share=0.6,
    )
    row.update(over)
    return row


def test_community_led_per_criterion_hand_worked() -> None:
    orgs = pd.DataFrame(
        [
            _org(),  # 7 of 10 everywhere: meets every criterion
            _org(organisation_id="O2", governance_constituency=5),  # 5 of 10 is not a majority
            _org(
                organisation_id="O3", volunteers_total=np.nan, volunteers_constituency=np.nan
            ),  # not reported
            _org(
                organisation_id="O4",
                agenda_set_by_constituency=False,
                accountability_mechanism=pd.NA,
            ),
        ]
    )
    a = assess_community_led(orgs)
    s = a.summary().set_index("organisation_id")
    assert s.loc["O1", "overall"] == "community-led: meets every criterion"
    assert s.loc["O2", "majority_governance"] == "does not meet"
    assert s.loc["O2", "criteria_not_met"] == 1
    assert s.loc["O3", "majority_volunteers"] == "not reported"
    assert s.loc["O3", "overall"].startswith("meets every reported criterion")
    assert s.loc["O4", "autonomy_agenda"] == "does not meet"
    assert s.loc["O4", "accountability_mechanism"] == "not reported"
    assert (s["autonomy_funding"] == "for information").all()
    c = a.criteria.set_index(["organisation_id", "criterion"])
    assert c.loc[("O2", "majority_governance"), "value"] == "5 of 10 (50%)"
    strict = (
        assess_community_led(orgs, funding_threshold=0.5).summary().set_index("organisation_id")
    )
    assert strict.loc["O1", "autonomy_funding"] == "does not meet"  # 0.1 + 0.6 > 0.5
    with pytest.raises(EvaluationError, match="inconsistent"):
        assess_community_led(pd.DataFrame([_org(staff_constituency=12)]))
    a.plot()


def test_community_led_on_demo(demo_xa) -> None:
    a = assess_community_led(demo_xa.clean["organisations"]).summary().set_index("organisation_id")
    for org, led in demo_xa.truth["organisations_community_led"].items():
        if not led:  # planted non-community-led organisations (constituency share 10-45%)
            assert a.loc[org, "criteria_not_met"] >= 6
        else:  # planted community-led: a strict majority in every role, accountable, autonomous
            assert a.loc[org, "criteria_not_met"] == 0, org
    # the framework's derived `community_led` column agrees with the planted truth
    from clm_research.derived import enrich

    derived = enrich("organisations", demo_xa.clean["organisations"], None).set_index(
        "organisation_id"
    )
    assert derived["community_led"].to_dict() == demo_xa.truth["organisations_community_led"]
