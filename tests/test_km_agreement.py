"""The project's two Kaplan–Meier medians agree: the indicator engine's duration indicators
(clm_research.indicators, vectorised by group) and the accountability chapter's time to
resolution (clm_research.evaluation.accountability, statsmodels' SurvfuncRight).

Both take the median as the first time the survival curve reaches 0.5 (S(t) ≤ 0.5) and its
95% CI from the complementary log-log transform of S(t) (Greenwood variance): the engine reads
where the two bands cross 0.5, statsmodels inverts the z-test at each event time; the sets are
the same.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from clm_research.evaluation.accountability import time_to_resolution
from clm_research.framework import parse_framework
from clm_research.indicators import compute_indicators

DAY0 = pd.Timestamp("2024-01-01")

FRAMEWORK = parse_framework(
    {
        "name": "durations only",
        "indicators": [
            {
                "id": "days_to_resolution",
                "label": "Median days to resolution",
                "level": "outcomes",
                "unaids_domain": "health_services",
                "dataset": "issues",
                "type": "duration",
                "start": "identified_on",
                "end": "resolved_on",
                "unit": "days",
                "direction": "lower_is_better",
                "min_cell_size": 0,
            }
        ],
    }
)


def _tables(days: list[int], resolved: list[int], as_of_day: int) -> dict[str, pd.DataFrame]:
    """One facility; open issues identified so that they are censored at their ``days``."""
    ident = [
        DAY0 if r else DAY0 + pd.Timedelta(days=as_of_day - d)
        for d, r in zip(days, resolved, strict=True)
    ]
    issues = pd.DataFrame(
        {
            "issue_id": [f"I{i}" for i in range(len(days))],
            "facility_id": "F1",
            "round": "2024Q1",
            "category": "stock_out",
            "severity": "high",
            "identified_on": ident,
            "escalated_on": pd.NaT,
            "escalation_level": pd.NA,
            "action_agreed_on": pd.NaT,
            "resolved_on": [
                DAY0 + pd.Timedelta(days=d) if r else pd.NaT
                for d, r in zip(days, resolved, strict=True)
            ],
            "status": ["resolved" if r else "open" for r in resolved],
        }
    )
    facilities = pd.DataFrame(
        {
            "facility_id": ["F1"],
            "name": ["Facility 1"],
            "region": ["R"],
            "district": ["D"],
            "type": ["clinic"],
            "ownership": ["public"],
            "clm_start": [pd.NaT],
        }
    )
    return {"issues": issues, "facilities": facilities}


def _reached(v: float) -> float | None:
    """A limit that is not reached is ``nan`` in the engine and ``inf`` in statsmodels."""
    return float(v) if math.isfinite(float(v)) else None


def _both(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> tuple[tuple, tuple]:
    eng = compute_indicators(FRAMEWORK, tables, by=[], as_of=as_of).iloc[0]
    km = time_to_resolution(tables["issues"], as_of=as_of).summary().iloc[0]
    return (
        tuple(_reached(eng[c]) for c in ("estimate", "ci_low", "ci_high")),
        tuple(_reached(km[c]) for c in ("median_days", "median_ci_low", "median_ci_high")),
    )


@pytest.mark.parametrize(
    ("days", "resolved", "median", "ci"),
    [
        # 2,3,3+,5,7,8+,10,12+: S = .875,.75,.6,.45 at 7 (hand-worked in
        # test_evaluation_accountability); median 7; the upper limit is not reached
        ([2, 3, 3, 5, 7, 8, 10, 12], [1, 1, 0, 1, 1, 0, 1, 0], 7, (2, None)),
        # nine issues resolved on days 1..9: median 5, CI 1 to 8 (worked out in
        # test_evaluation_accountability from the cloglog z-statistics)
        (list(range(1, 10)), [1] * 9, 5, (1, 8)),
        # an exact tie: 2 of 4 resolved by day 2, S(2) = 0.5 exactly -> median 2 in both
        # (statsmodels' own quantile() would say 3: it follows SAS's strict S < 0.5)
        ([1, 2, 3, 4], [1, 1, 1, 1], 2, None),
        ([2, 2, 4, 4, 6, 6, 8, 8], [1] * 8, 4, None),
    ],
)
def test_hand_worked_cases(days: list[int], resolved: list[int], median: int, ci) -> None:
    as_of = DAY0 + pd.Timedelta(days=100)
    eng, km = _both(_tables(days, resolved, 100), as_of)
    assert eng == km
    assert eng[0] == median
    if ci is not None:
        assert (km[1], km[2]) == ci


def test_the_demo_issue_log_gives_the_same_medians(demo_xa) -> None:
    from clm_research.config.country import load_country
    from clm_research.framework import load_framework

    as_of = pd.Timestamp(load_country("XA").as_of)
    fw = load_framework("XA")
    issues = demo_xa.clean["issues"]
    km = time_to_resolution(issues, by="severity", as_of=as_of).summary().set_index("group")
    overall = compute_indicators(fw, demo_xa.clean, by=[], as_of=as_of)
    by_sev = compute_indicators(fw, demo_xa.clean, by=["severity"], as_of=as_of)
    rows = {"all": overall[overall["indicator_id"] == "days_to_resolution"].iloc[0]}
    sev = by_sev[by_sev["indicator_id"] == "days_to_resolution"].set_index("severity")
    rows |= {g: sev.loc[g] for g in sev.index}
    assert len(rows) == 4  # all, high, medium, low
    for g, r in rows.items():
        assert tuple(_reached(r[c]) for c in ("estimate", "ci_low", "ci_high")) == tuple(
            _reached(km.loc[g, c]) for c in ("median_days", "median_ci_low", "median_ci_high")
        ), g
