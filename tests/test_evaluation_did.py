"""Difference-in-differences under staggered roll-out: simulations with a known truth and the demo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clm_research.evaluation import (
    EvaluationError,
    callaway_santanna,
    compare_did,
    event_study,
    facility_panel,
    twfe_did,
)


def staggered_panel(
    rng: np.random.Generator,
    n: int = 60,
    periods: int = 36,
    waves=(12, 18, 24),
    never_share: float = 0.3,
    slope: float = 0.05,
    sd: float = 1.0,
    pre_trend: float = 0.0,
) -> tuple[pd.DataFrame, float]:
    """Facility × month panel: staggered adoption in waves, effect growing with exposure
    (tau = slope·(e+1) at event time e >= 0), facility random effects, a common random-walk
    trend. Returns the panel and the true ATT averaged over treated facility-months (the
    estimand of the Callaway–Sant'Anna simple aggregation)."""
    n_never = int(round(n * never_share))
    n_t = n - n_never
    cohorts = np.r_[
        np.repeat(waves, int(np.ceil(n_t / len(waves))))[:n_t], np.full(n_never, np.inf)
    ]
    a = rng.normal(0, 1, n)
    trend = np.cumsum(rng.normal(0, 0.2, periods))
    u, t = np.repeat(np.arange(n), periods), np.tile(np.arange(periods), n)
    e = np.where(np.isfinite(cohorts[u]), t - np.nan_to_num(cohorts[u], posinf=0.0), -np.inf)
    tau = np.where(e >= 0, slope * (np.maximum(e, 0) + 1), 0.0)
    drift = pre_trend * t * np.isfinite(cohorts[u])  # differential trend of treated facilities
    y = a[u] + trend[t] + tau + drift + rng.normal(0, sd, n * periods)
    df = pd.DataFrame(
        {
            "facility_id": [f"XX-F{i:03d}" for i in u],
            "period": t,
            "outcome": y,
            "cohort": np.where(np.isfinite(cohorts[u]), cohorts[u], np.nan),
        }
    )
    return df, float(tau[e >= 0].mean())


def test_callaway_santanna_unbiased_and_twfe_biased_under_dynamic_effects() -> None:
    rng = np.random.default_rng(2024)
    rows = []
    for _ in range(30):
        df, truth = staggered_panel(rng)
        cs = callaway_santanna(df, time="period", cohort="cohort").primary
        tw = twfe_did(df, time="period", cohort="cohort").primary
        rows.append((truth, cs.estimate, cs.se, tw.estimate))
    a = np.array(rows)
    bias_cs = (a[:, 1] - a[:, 0]).mean()
    bias_tw = (a[:, 3] - a[:, 0]).mean()
    mc_se = (a[:, 1] - a[:, 0]).std(ddof=1) / np.sqrt(len(a))
    assert abs(bias_cs) < 3 * mc_se + 0.02  # no bias beyond Monte Carlo error
    assert bias_tw < -0.12  # TWFE badly attenuated (truth ~0.51)
    # analytic SE matches the Monte Carlo spread within 30%
    assert a[:, 2].mean() == pytest.approx((a[:, 1] - a[:, 0]).std(ddof=1), rel=0.3)


def test_constant_effect_all_estimators_agree() -> None:
    # With a constant effect (slope=0 path replaced by a step of 0.5) TWFE is unbiased too.
    rng = np.random.default_rng(3)
    df, _ = staggered_panel(rng, slope=0.0)
    df["outcome"] += 0.5 * (df["period"] >= df["cohort"].fillna(np.inf))
    out = compare_did(df, time="period", cohort="cohort")
    for _, row in out.iterrows():
        assert row["ci_low"] - 0.15 <= 0.5 <= row["ci_high"] + 0.15, row["method"]


def test_event_study_pretrend_test_detects_diverging_trends() -> None:
    rng = np.random.default_rng(8)
    df, _ = staggered_panel(rng, pre_trend=0.06, sd=0.5)
    es = event_study(df, time="period", cohort="cohort", leads=4, lags=6)
    assert es.diagnostics["pretrend_p"] < 0.05
    # the drift is treated vs never-treated, so CS sees it against never-treated controls
    # (not-yet-treated controls share the drift and rightly show none)
    # (a single base period g-1 makes this placebo test less powerful than the TWFE leads)
    df2, _ = staggered_panel(np.random.default_rng(2), pre_trend=0.15, sd=0.5)
    cs = callaway_santanna(df2, time="period", cohort="cohort", control="never_treated")
    assert cs.diagnostics["pretrend_p"] < 0.05
    df0, _ = staggered_panel(np.random.default_rng(9))
    es0 = event_study(df0, time="period", cohort="cohort")
    assert "pretrend_p" in es0.diagnostics and set(es0.profile["pre"]) == {True, False}
    from matplotlib.figure import Figure

    assert isinstance(es0.plot(), Figure) and isinstance(cs.plot(), Figure)
    assert isinstance(twfe_did(df0, time="period", cohort="cohort").plot(), Figure)


def test_did_fails_clearly() -> None:
    rng = np.random.default_rng(1)
    df, _ = staggered_panel(rng, n=10, periods=8, waves=(4,))
    all_treated = df.assign(cohort=0.0)
    with pytest.raises(EvaluationError, match="no comparison units"):
        twfe_did(all_treated, time="period", cohort="cohort")
    with pytest.raises(EvaluationError, match="no comparison units"):
        callaway_santanna(all_treated, time="period", cohort="cohort")
    one = df[df["facility_id"] == df["facility_id"].iloc[0]]
    with pytest.raises(EvaluationError, match="single facility"):
        twfe_did(one, time="period", cohort="cohort")
    never = df.assign(cohort=np.nan)
    with pytest.raises(EvaluationError, match="no facility starts CLM"):
        callaway_santanna(never, time="period", cohort="cohort")
    # every treated cohort starts together and there are no never-treated units: no controls
    no_ctrl = df.assign(cohort=4.0)
    with pytest.raises(EvaluationError, match="comparison"):
        callaway_santanna(no_ctrl, time="period", cohort="cohort")
    with pytest.raises(EvaluationError, match="duplicate"):
        twfe_did(pd.concat([df, df.head(1)]), time="period", cohort="cohort")


def test_demo_country_robust_did_recovers_planted_effect(demo_xa) -> None:
    # clm_research.demo plants a wait-time effect that ramps up over 3 rounds and shrinks in later
    # waves (dynamic + heterogeneous). Its truth.yaml gives the ATT over treated interviews.
    c = demo_xa.clean
    panel = (
        c["interviews"]
        .groupby(["facility_id", "round"], as_index=False)["wait_minutes"]
        .mean()
        .merge(c["facilities"][["facility_id", "clm_start"]], on="facility_id")
    )
    truth = demo_xa.truth["att"]["wait_time_mean"]["overall"]
    cs = callaway_santanna(panel, "wait_minutes", time="round")
    e = cs.primary
    assert e.ci_low <= truth <= e.ci_high
    tw = twfe_did(panel, "wait_minutes", time="round").primary
    assert abs(tw.estimate - truth) > abs(e.estimate - truth)  # TWFE further from the truth
    # the routine-data panel builder gives a facility × month proportion
    p = facility_panel(c["routine"], c["facilities"], "vl_suppressed", "vl_tested")
    assert len(p) == len(c["routine"]) and p["outcome"].between(0, 1).all()
    vs = callaway_santanna(p, "outcome")
    assert (
        vs.primary.ci_low <= demo_xa.truth["routine"]["viral_suppression_att"] <= vs.primary.ci_high
    )
