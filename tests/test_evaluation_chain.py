"""The results-chain analysis: planted links recovered, the broken link found, estimators checked.

Truths come from outside the estimator: the demo generator's planted chain (truth.yaml), linear
panels built here with a known slope, brute-force refits with explicit dummy variables (numpy
least squares and statsmodels OLS), and the leave-one-facility-out definition of the CV3 variance
(MacKinnon, Nielsen & Webb 2023) computed by refitting. Coverage in repeated samples is checked by
the simulation study (``benchmarks/simulation_study.py``, scenario ``chain_link``).
"""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pandas as pd
import pytest

from clm_research.errors import FrameworkError
from clm_research.evaluation import (
    STRENGTHS,
    Effect,
    EvaluationError,
    chain_analysis,
    dose_response,
    facility_round_values,
    link_effect,
    mediated_share,
)
from clm_research.evaluation.chain import HOLDS

# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo_xb():
    from clm_research.demo import generate_country

    return generate_country("XB")


@pytest.fixture(scope="module")
def chain_xa(demo_xa, framework_xa):
    return chain_analysis(demo_xa.clean, framework_xa)


@pytest.fixture(scope="module")
def chain_xb(demo_xb):
    from clm_research.framework import load_framework

    return chain_analysis(demo_xb.clean, load_framework("XB"))


def linear_panel(
    seed: int, n: int = 40, rounds: int = 8, beta: float = -2.0, lag: int = 1
) -> tuple[pd.DataFrame, float]:
    """Facility x round panel: y[t] = a_f + d[cohort, t] + beta * x[t - lag] + AR(1) noise."""
    rng = np.random.default_rng(seed)
    cohort = rng.choice([2, 4, np.inf], n)
    a = rng.normal(0, 2, n)
    f = np.repeat(np.arange(n), rounds)
    t = np.tile(np.arange(rounds), n)
    x = rng.normal(0, 1, n)[f] + 0.3 * t + rng.normal(0, 1, n * rounds)
    e = np.zeros(n * rounds)
    for i in range(n):
        s = slice(i * rounds, (i + 1) * rounds)
        z = rng.normal(0, 1, rounds)
        for k in range(1, rounds):
            z[k] += 0.5 * z[k - 1]
        e[s] = z
    ramp = np.where(
        t >= cohort[f], 1.0 + 0.5 * (t - np.where(np.isfinite(cohort[f]), cohort[f], 0)), 0.0
    )
    x_lag = np.full(n * rounds, np.nan)
    x_lag[t >= lag] = x[np.flatnonzero(t >= lag) - lag]
    y = a[f] + 0.2 * t + ramp + beta * np.nan_to_num(x_lag) + e
    y[t < lag] = np.nan
    frame = pd.DataFrame(
        {
            "facility_id": f,
            "round": t,
            "up": x,
            "down": y,
            "cohort": np.where(np.isfinite(cohort[f]), cohort[f], np.nan),
        }
    )
    return frame, beta


def _dummies_fit(frame: pd.DataFrame, lag: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows used, design with explicit facility and cohort x round dummies, outcome."""
    d = frame.copy()
    d["x"] = d.groupby("facility_id")["up"].shift(lag)
    d = d.dropna(subset=["x", "down"])
    d["cell"] = d["cohort"].fillna(-1).astype(str) + "|" + d["round"].astype(str)
    X = pd.concat(
        [
            d[["x"]],
            pd.get_dummies(d["facility_id"], prefix="f", dtype=float),
            pd.get_dummies(d["cell"], prefix="c", dtype=float).iloc[:, 1:],
        ],
        axis=1,
    ).to_numpy(float)
    return d, X, d["down"].to_numpy(float)


# ----------------------------------------------------------------------------- the demo truth


def _truth(demo) -> dict[tuple[str, str], dict]:
    return {(x["upstream"], x["downstream"]): x for x in demo.truth["chain"]["links"]}


@pytest.mark.parametrize("country", ["XA", "XB"])
def test_demo_planted_links_are_recovered(country, chain_xa, chain_xb, demo_xa, demo_xb) -> None:
    result, demo = (chain_xa, demo_xa) if country == "XA" else (chain_xb, demo_xb)
    truth = _truth(demo)
    links = result.links.set_index(["upstream", "downstream"])
    estimated = 0
    for key, planted in truth.items():
        row = links.loc[key]
        assert row["lag"] == planted["lag"] and (row["where"] or None) == planted["where"], key
        if row["status"] == "estimated":
            estimated += 1
            assert row["ci_low"] <= planted["truth"] <= row["ci_high"], (key, row["estimate"])
        else:  # a small demo country may lack the facilities that changed: said, never hidden
            assert row["reason_kind"] == "insufficient data", (key, row["reason"])
    assert estimated >= 10, f"only {estimated} of {len(truth)} planted links estimated"


@pytest.mark.parametrize("country", ["XA", "XB"])
def test_demo_broken_link_is_not_reported_as_an_effect(
    country, chain_xa, chain_xb, demo_xa, demo_xb
):
    result, demo = (chain_xa, demo_xa) if country == "XA" else (chain_xb, demo_xb)
    b = demo.truth["chain"]["broken_link"]
    row = result.links.set_index(["upstream", "downstream"]).loc[(b["upstream"], b["downstream"])]
    assert row["status"] == "estimated"
    assert row["ci_low"] <= 0 <= row["ci_high"] and row["strength"] not in HOLDS
    text = result.paragraph()
    assert "mean waiting time improved with CLM, but treatment interruptions" in text
    assert "did not follow" in text
    assert "the chain breaks here" in result.alt_text()


def test_planted_chain_is_declared_in_the_default_framework() -> None:
    """The demo plants exactly links the framework declares (same lag and filter)."""
    from clm_research.demo import BROKEN_LINK, CHAIN_IMPACT_LINKS, CHAIN_SERVICE_LINKS
    from clm_research.framework import load_framework

    fw = load_framework()
    for downstream, link in CHAIN_SERVICE_LINKS.items():
        declared = fw.indicator("issues_resolved").link(downstream)
        assert declared.where == f"category == '{link['category']}'" and declared.lag == 1
    for upstream, downstream in [*CHAIN_IMPACT_LINKS, BROKEN_LINK]:
        assert fw.indicator(upstream).link(downstream).lag == 1
    for downstream in ("issues_per_facility_round", "issues_action_agreed"):
        assert fw.indicator("feedback_meetings_held").link(downstream).lag == 0
    assert fw.indicator("issues_action_agreed").link("issues_resolved").lag == 0


def test_demo_chain_truth_by_hand(demo_xa) -> None:
    chain = demo_xa.truth["chain"]
    truth = _truth(demo_xa)
    # exact links are the generator's parameters, written out here
    assert truth[("feedback_meetings_held", "issues_per_facility_round")]["truth"] == 2.5
    assert truth[("feedback_meetings_held", "issues_action_agreed")]["truth"] == pytest.approx(0.4)
    assert truth[("issues_resolved", "wait_time_mean")]["truth"] == -15.0
    assert truth[("medicine_stockout_experienced", "viral_suppression")]["truth"] == -0.08
    assert truth[("wait_time_mean", "treatment_interruption")]["truth"] == 0.0
    # stock-outs: a share 0.6 of would-be stock-outs avoided, times the stock-out share (~10%)
    stock = truth[("issues_resolved", "medicine_stockout_experienced")]["truth"]
    assert -0.6 * 0.2 < stock < -0.6 * 0.05
    assert chain["clipped_probabilities"] == 0
    lo, hi = chain["monitoring_intensity"]["feedback_meeting_probability"]
    assert lo <= chain["monitoring_intensity"]["mean_over_clm_facility_rounds"] <= hi


def test_chain_result_tables_and_words(chain_xa) -> None:
    t = chain_xa.links
    est = t[t["status"] == "estimated"]
    assert set(t["strength"]) <= set(STRENGTHS)
    assert est["n_facilities"].min() >= 10 and est["n_rounds"].min() >= 2
    assert est["q_value"].ge(est["p_value"] - 1e-12).all()
    structural = t[t["reason_kind"] == "not per facility and round"]
    assert set(structural["upstream"]) >= {"monitors_trained", "reports_published"}
    survey = est[est["upstream"] == "medicine_stockout_experienced"]
    assert survey["reliability"].between(0, 1).all()  # survey upstream: regression dilution note
    med = chain_xa.mediation.set_index("link")
    assert (med["share"].dropna().abs() < 2).all()
    text = chain_xa.paragraph()
    assert text.startswith("Of the 21 links of the results chain")
    assert "Issues about" in text and "of the facilities that raised them" in text
    from matplotlib.figure import Figure

    fig = chain_xa.plot(status={"wait_time_mean": "green", "treatment_interruption": "red"})
    assert isinstance(fig, Figure)
    alt = chain_xa.alt_text({"wait_time_mean": "green"})
    assert "Mean waiting time (status: green)" in alt and "Not drawn: 6 declared links" in alt


# ----------------------------------------------------------------------------- subsets of tables


def test_any_subset_of_tables(demo_xa, framework_xa) -> None:
    tables = {k: v for k, v in demo_xa.clean.items() if k not in ("issues", "routine")}
    res = chain_analysis(tables, framework_xa, mediation=False)
    t = res.links.set_index(["upstream", "downstream"])
    assert (
        t.loc[("issues_action_agreed", "issues_resolved"), "reason"]
        == "not collected: no issues table"
    )
    assert t.loc[("wait_time_mean", "treatment_interruption"), "reason"] == (
        "not collected: no routine table"
    )
    assert t.loc[("wait_time_mean", "treatment_interruption"), "reason_kind"] == "not collected"
    assert "not collected: no issues table; no routine table" in res.paragraph()
    assert "not collected" in res.alt_text()
    res.plot()
    # nothing at all: every link listed, none estimated, no exception
    empty = chain_analysis({}, framework_xa)
    assert (empty.links["status"] == "not estimable").all() and not empty.effects
    assert "None of the 21 links" in empty.paragraph()
    # no facilities table: round effects only, said in the notes
    nofac = {k: v for k, v in demo_xa.clean.items() if k != "facilities"}
    res2 = chain_analysis(nofac, framework_xa, links=[("wait_time_mean", "treatment_interruption")])
    assert res2.diagnostics["time_effects"] == "round"
    assert any("No facilities table" in n for n in res2.notes)


def test_missing_column_is_named(demo_xa, framework_xa) -> None:
    tables = dict(demo_xa.clean)
    tables["issues"] = tables["issues"].drop(columns=["category"])
    res = chain_analysis(
        tables, framework_xa, links=[("issues_resolved", "wait_time_mean")], mediation=False
    )
    assert res.links["reason"].iloc[0] == (
        "not collected: no 'category' column in the issues table (needed by “Issues resolved”)"
    )
    with pytest.raises(EvaluationError, match="not a link of the framework"):
        chain_analysis(tables, framework_xa, links=[("wait_time_mean", "viral_suppression")])


def test_lag_from_a_plan_replaces_the_framework_lag(demo_xa, framework_xa) -> None:
    pair = ("medicine_stockout_experienced", "viral_suppression")
    res = chain_analysis(demo_xa.clean, framework_xa, links=[pair], lags={pair: 0}, mediation=False)
    row = res.links.iloc[0]
    assert row["lag"] == 0 and row["status"] == "estimated"
    # the planted effect acts at lag 1 only: at lag 0 there is nothing to find
    assert row["ci_low"] <= 0 <= row["ci_high"]


def test_facility_round_values_match_a_hand_count(demo_xa, framework_xa) -> None:
    v = facility_round_values(
        demo_xa.clean, framework_xa, "issues_resolved", "category == 'stock_out'"
    )
    iss = demo_xa.clean["issues"]
    iss = iss[iss["category"] == "stock_out"]
    hand = (iss["status"] == "resolved").groupby([iss["facility_id"], iss["round"]]).mean()
    got = v.set_index(["facility_id", "round"])["value"]
    assert len(got) == len(hand)
    assert np.allclose(got.loc[hand.index].to_numpy(), hand.to_numpy())
    with pytest.raises(EvaluationError, match="not collected: no issues table"):
        facility_round_values({}, framework_xa, "issues_resolved")


# ----------------------------------------------------------------------------- the estimators


def test_link_effect_matches_least_squares_with_dummies_and_refitted_jackknife() -> None:
    frame, _ = linear_panel(3, n=25)
    res = link_effect(frame, "up", "down", time="round", cohort="cohort", lag=1, min_facilities=5)
    d, X, y = _dummies_fit(frame, 1)
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    assert res.estimate == pytest.approx(coef[0], rel=1e-9)
    import warnings

    import statsmodels.api as sm

    with warnings.catch_warnings():  # facility dummies absorb the cohort: rank-deficient design
        warnings.simplefilter("ignore")
        assert res.estimate == pytest.approx(sm.OLS(y, X).fit().params[0], rel=1e-8)
    # CV3 by definition: refit without each facility, (G-1)/G * sum (b_-g - b)^2
    fac = d["facility_id"].to_numpy()
    G = len(np.unique(fac))
    jack = []
    for g in np.unique(fac):
        keep = fac != g
        Xg = X[keep][:, np.abs(X[keep]).sum(axis=0) > 0]
        jack.append(np.linalg.lstsq(Xg, y[keep], rcond=None)[0][0])
    cv3 = (G - 1) / G * np.sum((np.array(jack) - coef[0]) ** 2)
    assert res.primary.se == pytest.approx(math.sqrt(cv3), rel=1e-7)
    from scipy import stats

    half = stats.t.ppf(0.975, G - 1) * math.sqrt(cv3)
    assert res.ci == pytest.approx((coef[0] - half, coef[0] + half), rel=1e-7)
    assert res.diagnostics["n_facilities"] == G and res.diagnostics["cluster_df"] == G - 1


def test_link_effect_exact_on_noise_free_data() -> None:
    """y = a_f + d_t + 2 x[t-1] exactly: the estimate is 2 whatever the fixed effects are."""
    rng = np.random.default_rng(0)
    f = np.repeat(np.arange(12), 5)
    t = np.tile(np.arange(5), 12)
    x = rng.normal(size=60)
    x_lag = np.r_[np.nan, x[:-1]]
    x_lag[t == 0] = np.nan
    y = rng.normal(size=12)[f] + np.array([0.0, 1, 3, 2, 5])[t] + 2 * x_lag
    frame = pd.DataFrame({"facility_id": f, "round": t, "up": x, "down": y})
    res = link_effect(frame, "up", "down", time="round", lag=1)
    assert res.estimate == pytest.approx(2.0, abs=1e-9)


def test_link_effect_is_unbiased_on_known_panels() -> None:
    est = [
        link_effect(linear_panel(s)[0], "up", "down", time="round", cohort="cohort").estimate
        for s in range(40)
    ]
    assert abs(np.mean(est) - (-2.0)) < 4 * np.std(est) / math.sqrt(len(est))


def test_link_effect_refuses_what_it_cannot_estimate() -> None:
    frame, _ = linear_panel(1, n=6)
    with pytest.raises(EvaluationError, match="too few facilities: 6"):
        link_effect(frame, "up", "down", time="round", cohort="cohort")
    flat = linear_panel(1, n=20)[0].assign(up=1.0)
    with pytest.raises(EvaluationError, match="changed between rounds in only 0 of 20"):
        link_effect(flat, "up", "down", time="round")
    dup = pd.concat([frame, frame.head(1)])
    with pytest.raises(EvaluationError, match="duplicate facility_id × round in row"):
        link_effect(dup, "up", "down", time="round", min_facilities=2)
    with pytest.raises(EvaluationError, match=re.escape("missing column(s) ['nope']")):
        link_effect(frame, "nope", "down", time="round")


def test_dose_response_recovers_a_known_slope() -> None:
    rng = np.random.default_rng(5)
    rows = []
    for i in range(60):
        c = [2, 4][i % 2]
        dose = rng.uniform(0.2, 1.0)
        base = rng.normal(0, 1)
        for t in range(8):
            under = t >= c
            # outcome: facility level + trend + CLM effect growing with the dose (0.5 + 3 d)
            y = base + 0.1 * t + (0.5 + 3.0 * dose if under else 0.0) + rng.normal(0, 0.5)
            rows.append(
                {
                    "facility_id": i,
                    "round": t,
                    "cohort": c,
                    "meetings": dose + rng.normal(0, 0.02) if under else np.nan,
                    "y": y,
                }
            )
    frame = pd.DataFrame(rows)
    res = dose_response(frame, "meetings", "y", time="round")
    assert res.ci[0] <= 3.0 <= res.ci[1] and res.estimate == pytest.approx(3.0, abs=0.6)
    assert res.diagnostics["outcome_scale"].startswith("change from the facility's level")
    bands = res.bands.set_index("band")
    assert bands.loc["high", "difference_from_low"] > bands.loc["middle", "difference_from_low"] > 0
    assert bands["n_facilities"].sum() == 60
    with pytest.raises(EvaluationError, match="distinct value"):
        dose_response(frame.assign(meetings=1.0), "meetings", "y", time="round")


def test_mediated_share_by_hand() -> None:
    a = Effect("a", "a", -0.04, -0.06, -0.02, se=0.01)
    b = Effect("b", "b", 0.01, 0.006, 0.014, se=0.002)
    c = Effect("c", "c", -0.002, -0.003, -0.001, se=0.0005)
    indirect, share, note = mediated_share(a, b, c)
    assert indirect.estimate == pytest.approx(-0.0004)
    assert share is not None and share.estimate == pytest.approx(0.2)
    assert share.ci_low < 0.2 < share.ci_high and note == ""
    # delta-method SE of a*b (Sobel): sqrt(b^2 se_a^2 + a^2 se_b^2) = sqrt(1e-8 + 6.4e-9)
    assert indirect.se == pytest.approx(math.sqrt(1e-8 + 6.4e-9), rel=0.1)
    null_c = Effect("c", "c", 0.0001, -0.001, 0.0012, se=0.0006)
    _, none, why = mediated_share(a, b, null_c)
    assert none is None and "no detectable effect" in why


# ----------------------------------------------------------------------------- the framework links


def test_link_options_are_validated_at_load_time() -> None:
    import yaml

    from clm_research.framework import load_framework, parse_framework
    from clm_research.paths import framework_path

    raw = yaml.safe_load(framework_path().read_text())

    def with_links(entries):
        data = copy.deepcopy(raw)
        for ind in data["indicators"]:
            if ind["id"] == "wait_time_mean":
                ind["contributes_to"] = entries
        return data

    with pytest.raises(
        FrameworkError, match=re.escape("link to 'treatment_interruption', option 'lag'")
    ):
        parse_framework(with_links([{"to": "treatment_interruption", "lag": -1}]), source="fw.yaml")
    with pytest.raises(FrameworkError, match="unknown column 'category' in dataset 'interviews'"):
        parse_framework(
            with_links([{"to": "treatment_interruption", "where": "category == 'x'"}]),
            source="fw.yaml",
        )
    with pytest.raises(FrameworkError, match="lists 'treatment_interruption' twice"):
        parse_framework(
            with_links(["treatment_interruption", {"to": "treatment_interruption", "lag": 2}]),
            source="fw.yaml",
        )
    with pytest.raises(FrameworkError, match="option 'delay': unknown option"):
        parse_framework(
            with_links([{"to": "treatment_interruption", "delay": 2}]), source="fw.yaml"
        )
    # a country may change a lag
    fw = parse_framework(
        raw,
        changes={
            "overrides": {"wait_time_mean": {"links": [{"to": "treatment_interruption", "lag": 2}]}}
        },
    )
    assert fw.indicator("wait_time_mean").link("treatment_interruption").lag == 2
    assert load_framework().indicator("wait_time_mean").link("treatment_interruption").lag == 1
    # plain ids keep working and get the default lag
    assert load_framework().indicator("monitors_trained").link("facilities_monitored").lag == 1
    with pytest.raises(KeyError, match="does not contribute to"):
        load_framework().indicator("monitors_trained").link("viral_suppression")


# ----------------------------------------------------------------------------- Ritshidze scale


@pytest.mark.slow
def test_ritshidze_scale_recovers_every_planted_link() -> None:
    """400 facilities: every planted link is estimable and covered; the broken one is a break."""
    from clm_research.demo import generate_country
    from clm_research.framework import load_framework

    demo = generate_country("XA", facilities=400, interviews_per_round=100)
    res = chain_analysis(demo.clean, load_framework("XA"))
    links = res.links.set_index(["upstream", "downstream"])
    truth = _truth(demo)
    # 14 intervals at once: Bonferroni, so that a miss means bias rather than chance
    for key, planted in truth.items():
        row = links.loc[key]
        assert row["status"] == "estimated", (key, row["reason"])
        half = (row["ci_high"] - row["ci_low"]) / 2
        from scipy import stats

        z95, zb = stats.norm.ppf(0.975), stats.norm.ppf(1 - 0.025 / len(truth))
        assert abs(row["estimate"] - planted["truth"]) <= half * zb / z95, key
        if planted["broken"]:
            assert row["strength"] not in HOLDS
        else:
            assert row["strength"] in HOLDS, key
