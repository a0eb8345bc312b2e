"""The indicator engine against hand-computed tables, statsmodels' intervals and published values."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from clm_research.framework import load_framework, parse_framework
from clm_research.indicators import ALL, compute_indicators, poisson_interval, wilson_interval
from clm_research.tables import coerce


def _framework(*indicators: dict, min_cell_size: int = 0):
    return parse_framework(
        {"name": "test", "min_cell_size": min_cell_size, "indicators": list(indicators)}
    )


STOCKOUT = {
    "id": "stockout",
    "label": "stock-out experienced",
    "level": "outcomes",
    "unaids_domain": "health_services",
    "dataset": "interviews",
    "type": "proportion",
    "numerator": "got_all_medicines == false",
    "denominator": "on_art and got_all_medicines is not null",
    "direction": "lower_is_better",
}
WAIT_MEAN = {
    "id": "wait_mean",
    "label": "mean wait",
    "level": "outcomes",
    "unaids_domain": "health_services",
    "dataset": "interviews",
    "type": "mean",
    "value": "wait_minutes",
    "direction": "lower_is_better",
}
WAIT_MEDIAN = {**WAIT_MEAN, "id": "wait_median", "label": "median wait", "type": "median"}
COUNT = {
    "id": "n_interviews",
    "label": "interviews",
    "level": "activities",
    "unaids_domain": "community_systems",
    "dataset": "interviews",
    "type": "count",
    "numerator": "interview_id is not null",
    "direction": "higher_is_better",
}


def _tables(got_all: list, on_art: list, wait: list, facility: list) -> dict[str, pd.DataFrame]:
    n = len(wait)
    facilities = coerce(
        pd.DataFrame(
            {
                "facility_id": ["XA-F001", "XA-F002"],
                "name": ["a", "b"],
                "region": ["R", "R"],
                "district": ["D1", "D2"],
                "type": ["clinic", "clinic"],
                "ownership": ["public", "public"],
                "clm_start": ["2023-01-01", None],
            }
        ),
        "facilities",
    )
    interviews = coerce(
        pd.DataFrame(
            {
                "interview_id": [f"i{i}" for i in range(n)],
                "facility_id": facility,
                "date": ["2023-02-01"] * n,
                "round": ["2023Q1"] * n,
                "sex": ["female"] * n,
                "key_population": ["none"] * n,
                "on_art": on_art,
                "wait_minutes": wait,
                "got_all_medicines": got_all,
            }
        ),
        "interviews",
    )
    return {"facilities": facilities, "interviews": interviews}


@pytest.fixture()
def tables() -> dict[str, pd.DataFrame]:
    # F1: 4 ART clients, 1 stock-out; F2: 4 ART clients with an answer, 2 stock-outs; 2 not on ART
    return _tables(
        got_all=[True, True, False, True, True, False, False, True, None, None],
        on_art=[True] * 8 + [False, False],
        wait=[10, 20, 30, 40, 5, 15, 25, 35, 45, 100],
        facility=["XA-F001"] * 4 + ["XA-F002"] * 6,
    )


def test_proportion_by_hand_and_wilson_as_statsmodels(tables) -> None:
    res = compute_indicators(_framework(STOCKOUT), tables)
    row = res.iloc[0]
    assert (row.numerator, row.denominator, row.n) == (3, 8, 8)
    assert row.estimate == pytest.approx(3 / 8)
    lo, hi = proportion_confint(3, 8, alpha=0.05, method="wilson")
    assert (row.ci_low, row.ci_high) == pytest.approx((lo, hi), abs=1e-10)
    by_fac = compute_indicators(_framework(STOCKOUT), tables, by=["facility_id"]).set_index(
        "facility_id"
    )
    assert by_fac.loc["XA-F001", "estimate"] == pytest.approx(1 / 4)
    assert by_fac.loc["XA-F002", "estimate"] == pytest.approx(2 / 4)


@pytest.mark.parametrize("seed", range(3))
def test_wilson_matches_statsmodels_on_a_grid(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 500, 50)
    x = rng.binomial(n, rng.uniform(0, 1, 50))
    lo, hi = wilson_interval(x, n)
    ref = np.array([proportion_confint(a, b, method="wilson") for a, b in zip(x, n, strict=True)])
    assert np.allclose(lo, ref[:, 0], atol=1e-10) and np.allclose(hi, ref[:, 1], atol=1e-10)
    lo90, _ = wilson_interval(x, n, confidence=0.9)
    ref90 = np.array(
        [proportion_confint(a, b, alpha=0.1, method="wilson")[0] for a, b in zip(x, n, strict=True)]
    )
    assert np.allclose(lo90, ref90, atol=1e-10)


def test_cluster_interval_uses_the_hand_computed_design_effect() -> None:
    # F1: 4 of 4 stock-outs, F2: 0 of 4. p = 0.5; cluster residuals y_c - p m_c = (2, -2):
    # v = k/(k-1) Σr² / (Σm)² = 2 · 8 / 64 = 0.25; SRS variance p(1-p)/n = 0.25/8 -> DE = 8,
    # effective n = 8 / 8 = 1 -> Wilson interval for 0.5 successes out of 1.
    t = _tables([False] * 4 + [True] * 4, [True] * 8, [10] * 8, ["XA-F001"] * 4 + ["XA-F002"] * 4)
    row = compute_indicators(_framework(STOCKOUT), t, ci="cluster").iloc[0]
    assert row.design_effect == pytest.approx(8.0)
    assert row.n_clusters == 2
    lo, hi = proportion_confint(0.5, 1, method="wilson")
    assert (row.ci_low, row.ci_high) == pytest.approx((lo, hi))
    srs = compute_indicators(_framework(STOCKOUT), t, ci="wilson").iloc[0]
    assert srs.ci_high - srs.ci_low < row.ci_high - row.ci_low


def test_mean_with_t_interval_by_hand(tables) -> None:
    waits = [10, 20, 30, 40, 5, 15, 25, 35, 45, 100]
    row = compute_indicators(_framework(WAIT_MEAN), tables).iloc[0]
    assert row.estimate == pytest.approx(32.5)
    half = 2.262157 * statistics.stdev(waits) / np.sqrt(10)  # t(9, 0.975) from a printed t table
    assert (row.ci_low, row.ci_high) == pytest.approx((32.5 - half, 32.5 + half), rel=1e-6)


def test_cluster_robust_mean_by_hand(tables) -> None:
    # cluster sums: F1 100 (m=4), F2 225 (m=6); mean 32.5; residuals 100-130=-30, 225-195=30
    # v = 2/1 · (900 + 900) / 10² = 36 -> se 6; t(1, 0.975) = 12.7062
    row = compute_indicators(_framework(WAIT_MEAN), tables, ci="cluster").iloc[0]
    assert (row.ci_low, row.ci_high) == pytest.approx(
        (32.5 - 12.7062 * 6, 32.5 + 12.7062 * 6), rel=1e-5
    )


def test_median_and_its_order_statistic_interval(tables) -> None:
    # sorted: 5 10 15 20 25 30 35 40 45 100 -> median 27.5. Woodruff: se(p) = sqrt(.25/10) = .1581;
    # ranks floor((.5 - 1.96·.1581)·10) = 1 and ceil((.5 + .3099)·10) - 1 = 8 -> values 10 and 45
    row = compute_indicators(_framework(WAIT_MEDIAN), tables).iloc[0]
    assert row.estimate == 27.5
    assert (row.ci_low, row.ci_high) == (10, 45)


def test_count_and_exact_poisson_interval(tables) -> None:
    row = compute_indicators(_framework(COUNT), tables).iloc[0]
    assert row.estimate == 10
    # exact 95% limits for an observed count of 10 (Garwood; e.g. Ulm 1990 table): 4.795, 18.390
    assert (row.ci_low, row.ci_high) == pytest.approx((4.7954, 18.3904), abs=1e-4)
    lo, hi = poisson_interval([0])
    assert lo[0] == 0 and hi[0] == pytest.approx(3.6889, abs=1e-4)  # the "rule of 3.69"


def _issue_tables() -> dict[str, pd.DataFrame]:
    base = _tables([True], [True], [1], ["XA-F001"])
    ident = pd.Timestamp("2024-01-01")
    days = [10, 20, None, 30, 40]  # the third is still open on the as-of date (day 25): censored
    issues = coerce(
        pd.DataFrame(
            {
                "issue_id": [f"x{i}" for i in range(5)],
                "facility_id": ["XA-F001"] * 5,
                "round": ["2024Q1"] * 5,
                "category": ["stock_out"] * 5,
                "severity": ["low"] * 5,
                "identified_on": [ident] * 5,
                "escalation_level": ["facility"] * 5,
                "resolved_on": [
                    ident + pd.Timedelta(days=d) if d is not None else None for d in days
                ],
                "status": ["resolved", "resolved", "open", "resolved", "resolved"],
            }
        ),
        "issues",
    )
    # resolved_on after as-of (days 30, 40) would not be known yet; use a later as-of for them
    observations = coerce(
        pd.DataFrame(
            {
                "facility_id": ["XA-F001"] * 3,
                "round": ["2023Q1", "2023Q2", "2023Q3"],
                "visit_completed": [True, True, True],
            }
        ),
        "observations",
    )
    return {**base, "issues": issues, "observations": observations}


def test_kaplan_meier_median_with_censoring_by_hand() -> None:
    # times 10, 20, 25+, 30, 40 (as-of = day 25 for the open issue: set as_of to day 50 and
    # leave that issue open). S(10) = 4/5, S(20) = 4/5 · 3/4 = .6, censored at 50?? -> see below
    ind = {
        "id": "ttr",
        "label": "days to resolution",
        "level": "outcomes",
        "unaids_domain": "health_services",
        "dataset": "issues",
        "type": "duration",
        "start": "identified_on",
        "end": "resolved_on",
        "direction": "lower_is_better",
    }
    t = _issue_tables()
    # As of day 25 the issues resolved on days 30 and 40 are still open: times 10, 20, 25+, 25+, 25+.
    # S(10) = .8, S(20) = .6, never reaches .5 -> median not reached (NaN), 2 events of 5.
    early = compute_indicators(_framework(ind), t, as_of="2024-01-26").iloc[0]
    assert np.isnan(early.estimate) and early.numerator == 2 and early.n == 5
    # As of day 50 the open issue is censored at 50: times 10, 20, 30, 40, 50+.
    # S(10) = .8, S(20) = .6, S(30) = .4 <= .5 -> median 30 days.
    late = compute_indicators(_framework(ind), t, as_of="2024-02-20").iloc[0]
    assert late.estimate == 30 and late.numerator == 4
    assert late.ci_low <= 30 and (np.isnan(late.ci_high) or late.ci_high >= 30)


def test_rate_with_denominator_from_another_dataset() -> None:
    ind = {
        "id": "per_visit",
        "label": "issues per visit",
        "level": "outputs",
        "unaids_domain": "health_services",
        "dataset": "issues",
        "type": "rate",
        "numerator": "issue_id is not null",
        "denominator_dataset": "observations",
        "denominator": "visit_completed",
        "direction": "higher_is_better",
    }
    row = compute_indicators(_framework(ind), _issue_tables()).iloc[0]
    assert (row.numerator, row.denominator, row.estimate) == (5, 3, pytest.approx(5 / 3))
    # exact Poisson limits for 5 events: 1.6235, 11.6683 -> divided by 3 visits
    assert (row.ci_low, row.ci_high) == pytest.approx((1.6235 / 3, 11.6683 / 3), abs=1e-4)


def _kp_tables(cells: dict[tuple[str, str], int]) -> dict[str, pd.DataFrame]:
    sex, kp = [], []
    for (s, k), n in cells.items():
        sex += [s] * n
        kp += [k] * n
    n = len(sex)
    t = _tables([True] * n, [True] * n, [10] * n, ["XA-F001"] * n)
    t["interviews"]["sex"] = pd.array(sex, dtype="string")
    t["interviews"]["key_population"] = pd.array(kp, dtype="string")
    return t


def test_primary_and_secondary_suppression_by_hand() -> None:
    # n per cell; female × msm (3) is below 10 -> primary. Its row and column margins would reveal
    # it, so the smallest other cell of each margin with exactly one suppressed cell goes too:
    # male × msm (column msm), female × sex_worker (row female), then male × sex_worker (row male).
    cells = {
        ("female", "none"): 50,
        ("female", "msm"): 3,
        ("female", "sex_worker"): 20,
        ("male", "none"): 40,
        ("male", "msm"): 12,
        ("male", "sex_worker"): 15,
    }
    fw = _framework(STOCKOUT, min_cell_size=10)
    res = compute_indicators(fw, _kp_tables(cells), by=["sex", "key_population"]).set_index(
        ["sex", "key_population"]
    )
    assert res.loc[("female", "msm"), "suppression"] == "primary"
    for cell in [("male", "msm"), ("female", "sex_worker"), ("male", "sex_worker")]:
        assert res.loc[cell, "suppression"] == "secondary", cell
    for cell in [("female", "none"), ("male", "none")]:
        assert not res.loc[cell, "suppressed"]
    sup = res[res["suppressed"]]
    assert sup[["estimate", "ci_low", "ci_high", "numerator", "denominator"]].isna().all().all()


def test_no_secondary_suppression_when_nothing_is_small() -> None:
    cells = {
        ("female", "none"): 30,
        ("male", "none"): 30,
        ("female", "msm"): 12,
        ("male", "msm"): 11,
    }
    res = compute_indicators(
        _framework(STOCKOUT, min_cell_size=10), _kp_tables(cells), by=["sex", "key_population"]
    )
    assert not res["suppressed"].any()


def test_columns_a_dataset_lacks_are_filled_with_all(demo_xa, framework_xa) -> None:
    res = compute_indicators(
        framework_xa,
        demo_xa.clean,
        by=["round", "sex"],
        indicators=["viral_suppression", "wait_time_mean"],
    )
    vs = res[res.indicator_id == "viral_suppression"]
    assert set(vs["sex"]) == {ALL}  # routine data have no sex
    assert set(vs["round"]) >= {"2022Q1", "2024Q4"}  # monthly periods mapped to quarters


def test_every_indicator_computes_on_demo_data(demo_xa, framework_xa) -> None:
    for by in ([], ["facility_id", "round"], ["district", "round", "sex", "key_population"]):
        res = compute_indicators(
            framework_xa, demo_xa.clean, by=by, ci="cluster", as_of="2025-01-15"
        )
        assert set(res["indicator_id"]) == set(framework_xa.ids)
        shown = res[~res["suppressed"]]
        # a Kaplan–Meier upper limit may be "not reached" (NaN); every other limit brackets
        # (a median not reached is NaN; a cell with denominator 0 has no estimate)
        est = shown["estimate"].notna()
        lo_ok = est & shown["ci_low"].notna()
        hi_ok = est & shown["ci_high"].notna()
        assert (shown.loc[lo_ok, "ci_low"] <= shown.loc[lo_ok, "estimate"] + 1e-9).all()
        assert (shown.loc[hi_ok, "estimate"] <= shown.loc[hi_ok, "ci_high"] + 1e-9).all()
        assert shown.loc[est & ~hi_ok, "type"].isin(["duration"]).all()
        assert (shown.loc[~est & (shown["type"] != "duration"), "denominator"].fillna(0) == 0).all()
        props = shown[(shown["type"] == "proportion") & est]
        assert props["estimate"].between(0, 1).all()


def test_rag_follows_thresholds_and_direction(demo_xa) -> None:
    fw = load_framework()
    res = compute_indicators(
        fw, demo_xa.clean, indicators=["wait_time_median", "treated_with_respect"]
    ).set_index("indicator_id")
    wait = res.loc["wait_time_median"]
    expected = "green" if wait.estimate <= 60 else "amber" if wait.estimate <= 120 else "red"
    assert wait.rag == expected
    resp = res.loc["treated_with_respect"]
    expected = "green" if resp.estimate >= 0.9 else "amber" if resp.estimate >= 0.75 else "red"
    assert resp.rag == expected
