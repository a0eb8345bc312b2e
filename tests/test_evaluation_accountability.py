"""Accountability loop: issue funnel, Kaplan–Meier and Cox checked against hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clm_research.evaluation import (
    EvaluationError,
    issue_funnel,
    resolution_cox,
    resolution_times,
    time_to_resolution,
)

DAY0 = pd.Timestamp("2024-01-01")


def log(days: list[int], resolved: list[int], as_of_day: int, **extra: list) -> pd.DataFrame:
    """Issues identified so that each lasts ``days``: resolved ones at DAY0 + days, open ones
    identified ``days`` before the as-of date (censored at ``days``)."""
    ident = [
        DAY0 if r else DAY0 + pd.Timedelta(days=as_of_day - d)
        for d, r in zip(days, resolved, strict=True)
    ]
    res = [
        DAY0 + pd.Timedelta(days=d) if r else pd.NaT for d, r in zip(days, resolved, strict=True)
    ]
    return pd.DataFrame(
        {
            "issue_id": [f"I{i}" for i in range(len(days))],
            "identified_on": ident,
            "resolved_on": res,
            **extra,
        }
    )


def test_kaplan_meier_with_censoring_hand_worked() -> None:
    # times 2,3,3+,5,7,8+,10,12+ (+ = still open, censored); as-of day 20.
    # S(2) = 7/8 = .875; S(3) = .875·6/7 = .75 (the issue censored at 3 is at risk at 3);
    # S(5) = .75·4/5 = .6; S(7) = .6·3/4 = .45; S(10) = .45·1/2 = .225.
    # Median = first time S <= .5 = 7. Share resolved by day 30 = 1 - .225 = .775.
    d = log([2, 3, 3, 5, 7, 8, 10, 12], [1, 1, 0, 1, 1, 0, 1, 0], 20)
    r = time_to_resolution(d, as_of=DAY0 + pd.Timedelta(days=20))
    curve = r.curves.set_index("days")["still_open"]
    for t, s in {2: 0.875, 3: 0.75, 5: 0.6, 7: 0.45, 10: 0.225}.items():
        assert curve[t] == pytest.approx(s)
    row = r.summary().iloc[0]
    assert row["median_days"] == 7
    assert row["resolved_by_day_30"] == pytest.approx(0.775)
    assert (row["resolved"], row["open"]) == (5, 3)


def test_kaplan_meier_median_ci_hand_worked() -> None:
    # Nine issues resolved on days 1..9, none censored. Then S(k) = 1 - k/9 and Greenwood's
    # variance reduces to S(1-S)/9. The CI inverts z-tests on the cloglog scale
    # g(S) = log(-log S), |g(S) - g(.5)| / (g'(S)·se) <= 1.96, g'(S) = -1/(S log S):
    #   k=1: S=.8889 -> z = -1.77 (in);  k=6: S=.3333 -> z = 1.07 (in);
    #   k=7: S=.2222 -> z = 1.87 (in);   k=8: S=.1111 -> z = 2.69 (out).
    # Lower limit = first time in = day 1; upper = the time after the last one in = day 8.
    # Median: S(4) = .556, S(5) = .444 -> 5.
    d = log(list(range(1, 10)), [1] * 9, 100)
    row = time_to_resolution(d).summary().iloc[0]
    assert (row["median_days"], row["median_ci_low"], row["median_ci_high"]) == (5, 1, 8)

    def z(k: int) -> float:
        s = 1 - k / 9
        se = math.sqrt(s * (1 - s) / 9)
        return (math.log(-math.log(s)) - math.log(math.log(2))) / (-1 / (s * math.log(s)) * se)

    assert [round(z(k), 2) for k in (1, 6, 7, 8)] == [-1.77, 1.07, 1.87, 2.69]


def test_cox_hand_worked_partial_likelihood() -> None:
    # A(x=1) resolved day 1, B(x=0) day 2, C(x=1) open at day 3, D(x=0) resolved day 4.
    # Risk sets: day 1 {A,B,C,D}: e^b/(2e^b+2); day 2 {B,C,D}: 1/(e^b+2); day 4 {D}: 1.
    # With u = e^b, d/du log L = 1/u - 1/(u+1) - 1/(u+2) = 0  <=>  2 - u^2 = 0  =>  HR = sqrt(2).
    # Information = u/(u+1)^2 + 2u/(u+2)^2 at u = sqrt(2) = 0.24264 + 0.24264 = 0.48528,
    # so SE(b) = 1/sqrt(0.48528) = 1.4355.
    d = pd.DataFrame(
        {
            "identified_on": [DAY0, DAY0, DAY0 + pd.Timedelta(days=1), DAY0],
            "resolved_on": [DAY0 + pd.Timedelta(days=k) if k else pd.NaT for k in (1, 2, 0, 4)],
            "x": ["b", "a", "b", "a"],
        }
    )
    r = resolution_cox(d, ["x"], as_of=DAY0 + pd.Timedelta(days=4))
    e = r.effect("x=b")
    assert e.estimate == pytest.approx(math.sqrt(2), rel=1e-5)
    assert e.se == pytest.approx(1.4355, abs=1e-4)
    assert e.scale == "hazard_ratio"


def _funnel_log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "category": ["stock_out", "stock_out", "stock_out", "waiting_time"],
            "escalation_level": ["district", "facility", "national", "facility"],
            "round": ["2024Q1", "2024Q1", "2024Q2", "2024Q2"],
            "escalated_on": [DAY0, pd.NaT, DAY0, pd.NaT],
            "action_agreed_on": [DAY0, pd.NaT, DAY0, DAY0],
            "resolved_on": [
                DAY0 + pd.Timedelta(days=5),
                pd.NaT,
                DAY0 + pd.Timedelta(days=400),
                pd.NaT,
            ],
        }
    )


def test_issue_funnel_counts_each_issue_once_at_its_furthest_stage() -> None:
    # By day 30: issue 0 resolved (furthest: resolved); issue 1 nothing (identified);
    # issue 2 escalated and agreed, resolved only on day 400 (furthest: action agreed);
    # issue 3 action agreed without a recorded escalation (furthest: action agreed).
    # Reached at least: identified 4, escalated 3 (0, 2, 3), agreed 3, resolved 1; each issue
    # stops once: identified 1, escalated 0, agreed 2, resolved 1 (sum 4). Issue 3 passed
    # "escalated" without its date: without_own_date = 1 there.
    f = issue_funnel(
        _funnel_log(), by=("category", "escalation_level"), as_of=DAY0 + pd.Timedelta(days=30)
    )
    s = f.summary()
    overall = f.overall().set_index("stage")
    assert overall["issues"].to_dict() == {
        "identified": 4,
        "escalated": 3,
        "action_agreed": 3,
        "resolved": 1,
    }
    assert overall["stopped_here"].to_dict() == {
        "identified": 1,
        "escalated": 0,
        "action_agreed": 2,
        "resolved": 1,
    }
    assert overall["without_own_date"].to_dict() == {
        "identified": 0,
        "escalated": 1,
        "action_agreed": 0,
        "resolved": 0,
    }
    assert overall.loc["resolved", "share_of_identified"] == pytest.approx(1 / 4)
    assert overall.loc["action_agreed", "share_of_previous"] == pytest.approx(1.0)
    so = s[s["category"] == "stock_out"].set_index("stage")
    assert so.loc["resolved", "share_of_identified"] == pytest.approx(1 / 3)
    assert f.scope == "all issues in the log"
    from matplotlib.figure import Figure

    assert isinstance(issue_funnel(_funnel_log(), as_of=DAY0).plot(), Figure)


def test_issue_funnel_is_monotone_by_construction() -> None:
    """Any log (stages recorded in any combination, some after the as-of date) gives
    identified >= escalated >= agreed >= resolved and shares <= 100%, in every group."""
    rng = np.random.default_rng(3)
    n = 400
    dates = [
        pd.Series(
            np.where(
                rng.random(n) < 0.6, DAY0 + pd.to_timedelta(rng.integers(0, 60, n), "D"), pd.NaT
            )
        )
        for _ in range(3)
    ]
    log = pd.DataFrame(
        {
            "category": rng.choice(["a", "b", "c"], n),
            "escalated_on": pd.to_datetime(dates[0]),
            "action_agreed_on": pd.to_datetime(dates[1]),
            "resolved_on": pd.to_datetime(dates[2]),
        }
    )
    s = issue_funnel(log, as_of=DAY0 + pd.Timedelta(days=40)).summary()
    for _, g in s.groupby("category"):
        counts = g["issues"].to_numpy()
        assert (np.diff(counts) <= 0).all()
        assert (g["share_of_previous"].dropna() <= 1).all()
        assert g["stopped_here"].sum() == counts[0]


def test_issue_funnel_scope_by_round() -> None:
    f = issue_funnel(_funnel_log(), rounds=["2024Q2"], as_of=DAY0 + pd.Timedelta(days=30))
    assert f.scope == "issues identified in 2024Q2"
    assert f.overall().set_index("stage")["issues"].to_dict() == {
        "identified": 2,
        "escalated": 2,
        "action_agreed": 2,
        "resolved": 0,
    }
    with pytest.raises(EvaluationError, match="no issue was identified in 2030Q1"):
        issue_funnel(_funnel_log(), rounds=["2030Q1"])


def test_accountability_fails_clearly() -> None:
    open_only = log([3, 4], [0, 0], 10)
    with pytest.raises(EvaluationError, match="no events"):
        time_to_resolution(open_only, as_of=DAY0 + pd.Timedelta(days=10))
    with pytest.raises(EvaluationError, match="no events"):
        resolution_cox(open_only.assign(x=["a", "b"]), ["x"], as_of=DAY0 + pd.Timedelta(days=10))
    bad = log([3], [1], 10)
    bad["resolved_on"] = DAY0 - pd.Timedelta(days=2)
    with pytest.raises(EvaluationError, match="ends before it starts"):
        resolution_times(bad, as_of=DAY0 + pd.Timedelta(days=10))
    with pytest.raises(EvaluationError, match="one value only"):
        resolution_cox(log([1, 2], [1, 1], 5, x=["a", "a"]), ["x"])


def test_demo_issue_log(demo_xa) -> None:
    issues = demo_xa.clean["issues"]
    r = time_to_resolution(issues, by="category")
    s = r.summary().set_index("group")
    truth = demo_xa.truth["issues"]
    assert s.loc["all", "open"] == truth["n_open"]
    # stock-outs are planted as the fastest category and infrastructure the slowest
    med = s.drop(index="all")["median_days"]
    assert med.idxmin() == "stock_out"
    assert med.idxmax() == "infrastructure"
    assert np.isfinite(resolution_cox(issues).primary.estimate)
    r.plot()
