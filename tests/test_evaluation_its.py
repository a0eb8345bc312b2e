"""Interrupted time series: the Lopez Bernal et al. (2017) Sicily example and simulated series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clm_research.evaluation import EvaluationError, controlled_its, segmented_regression

SICILY = Path(__file__).parent / "data" / "its_sicily_smoking_ban.csv"


@pytest.fixture(scope="module")
def sicily() -> pd.DataFrame:
    return pd.read_csv(SICILY)


def test_sicily_quasipoisson_with_harmonics_reproduces_tutorial(sicily: pd.DataFrame) -> None:
    # Lopez Bernal, Cummins & Gasparrini, Int J Epidemiol 2017;46:348-355, model3 of their R code:
    # glm(aces ~ offset(log(stdpop)) + smokban + time + harmonic(month, 2, 12), quasipoisson)
    # published: rate ratio for the ban 0.885 (95% CI 0.839-0.933).
    r = segmented_regression(
        sicily,
        "aces",
        time="time",
        intervention="smokban",
        offset="stdpop",
        family="quasipoisson",
        impact="level",
        harmonics=2,
        period=12,
    )
    e = r.effect("level_change")
    assert e.scale == "rate_ratio"
    assert e.estimate == pytest.approx(0.885, abs=0.0005)
    assert e.ci_low == pytest.approx(0.839, abs=0.0005)
    assert e.ci_high == pytest.approx(0.933, abs=0.0005)
    assert e.is_null is False
    assert r.diagnostics["n_pre"] == 36 and r.diagnostics["n_post"] == 23


def test_sicily_poisson_and_quasipoisson_share_estimate_ci_scaled_by_dispersion(
    sicily: pd.DataFrame,
) -> None:
    # The tutorial's simpler model (no seasonality). No published number for it was found in
    # gasparrini/2017_lopezbernal_IJE_codedata (the code prints ci.exp without stating values), so
    # check the defining property instead: quasi-Poisson has the Poisson point estimate and a
    # log-scale SE larger by sqrt(Pearson chi2 / df).
    kw = dict(time="time", intervention="smokban", offset="stdpop", impact="level")
    p = segmented_regression(sicily, "aces", family="poisson", **kw)
    q = segmented_regression(sicily, "aces", family="quasipoisson", **kw)
    assert p.estimate == pytest.approx(q.estimate, rel=1e-9)
    ratio = q.effect("level_change").se / p.effect("level_change").se
    assert ratio == pytest.approx(np.sqrt(p.diagnostics["dispersion"]), rel=1e-6)
    assert p.diagnostics["dispersion"] > 1.5  # over-dispersed: Poisson flags it
    assert any("overdispersion" in n for n in p.notes)


def test_sicily_plot_and_summary(sicily: pd.DataFrame) -> None:
    from matplotlib.figure import Figure

    r = segmented_regression(
        sicily,
        "aces",
        time="time",
        intervention="smokban",
        offset="stdpop",
        harmonics=2,
        period=12,
        rate_multiplier=1e5,
    )
    assert isinstance(r.plot(), Figure)
    s = r.summary()
    assert {"effect", "estimate", "ci_low", "ci_high", "p_value", "statement"} <= set(s.columns)
    assert set(s["effect"]) >= {"level_change", "slope_change", "effect_at_end"}
    assert "durbin_watson" in r.diagnostics
    # counterfactual exists only after the interruption
    f = r.fitted
    # fitted rates sit on the observed rates (a Poisson GLM with a constant reproduces the total)
    assert f["fitted"].mean() == pytest.approx(f["observed"].mean(), rel=0.02)
    assert (
        150 < f["observed"].mean() < 300
    )  # per 100,000 standardised population, as in the tutorial
    assert f.loc[f["post"] == 0, "counterfactual"].isna().all()
    assert f.loc[f["post"] == 1, "counterfactual"].notna().all()


def _monthly(
    rng: np.random.Generator,
    level: float,
    slope: float,
    n_pre: int = 24,
    n_post: int = 24,
    sd: float = 1.0,
) -> pd.DataFrame:
    months = pd.period_range("2021-01", periods=n_pre + n_post, freq="M").astype(str)
    t = np.arange(n_pre + n_post)
    post = (t >= n_pre).astype(float)
    y = 50 + 0.2 * t + level * post + slope * (t - n_pre) * post + rng.normal(0, sd, len(t))
    return pd.DataFrame({"period": months, "wait": y})


def test_ols_newey_west_recovers_known_level_and_slope_change() -> None:
    rng = np.random.default_rng(11)
    hits = []
    for _ in range(40):
        r = segmented_regression(
            _monthly(rng, -5.0, -0.3), "wait", intervention_start="2023-01", family="ols"
        )
        lv, sl = r.effect("level_change"), r.effect("slope_change")
        hits.append((lv.estimate, sl.estimate, lv.ci_low <= -5 <= lv.ci_high))
    a = np.array(hits)
    assert a[:, 0].mean() == pytest.approx(-5.0, abs=0.25)
    assert a[:, 1].mean() == pytest.approx(-0.3, abs=0.03)
    assert a[:, 2].mean() >= 0.8


def test_controlled_its_removes_common_shock() -> None:
    # Both series share a shock of +8 at the interruption; only the CLM series has a true level
    # change of -4. A single-series ITS would report +4; the controlled ITS reports -4.
    rng = np.random.default_rng(5)
    a = _monthly(rng, 8 - 4, 0.0, sd=0.5).assign(series="clm")
    b = _monthly(rng, 8, 0.0, sd=0.5).assign(series="comparison")
    r = controlled_its(
        pd.concat([a, b]),
        "wait",
        group="series",
        treated="clm",
        intervention_start="2023-01",
        family="ols",
    )
    e = r.effect("differential_level_change")
    assert e.ci_low <= -4 <= e.ci_high
    assert e.estimate == pytest.approx(-4, abs=1.0)
    r.plot()


def test_its_fails_clearly_on_data_it_cannot_handle() -> None:
    rng = np.random.default_rng(0)
    d = _monthly(rng, 0, 0, n_pre=2, n_post=10)
    with pytest.raises(EvaluationError, match="too few time points"):
        segmented_regression(d, "wait", intervention_start=d["period"].iloc[2], family="ols")
    with pytest.raises(EvaluationError, match="missing column"):
        segmented_regression(d, "nope", intervention_start="2021-03")
    zeros = pd.DataFrame({"period": range(20), "n": 0})
    with pytest.raises(EvaluationError, match="no events"):
        segmented_regression(zeros, "n", intervention_start=10, family="poisson")
    short = _monthly(rng, 0, 0, n_pre=6, n_post=6)
    r = segmented_regression(
        short, "wait", intervention_start=short["period"].iloc[6], family="ols"
    )
    assert any("underpowered" in n for n in r.notes)
    with pytest.raises(EvaluationError, match="comparison series"):
        controlled_its(
            short.assign(g="a"), "wait", group="g", treated="a", intervention_start="2021-07"
        )
