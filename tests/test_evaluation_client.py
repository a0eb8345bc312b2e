"""Client-level GEE and mixed models: simulations with a known marginal effect, and clear failures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit, logit

from clm_research.evaluation import EvaluationError, add_clm_exposure, client_gee, client_mixed


def survey(
    rng: np.random.Generator,
    k: int = 40,
    m: int = 30,
    rounds: int = 4,
    log_or: float = 0.5,
    icc_rho: float = 0.08,
) -> pd.DataFrame:
    """Exit interviews: half the facilities under CLM from round 3; binary outcome whose *marginal*
    probability is logit-linear (base, round trend, CLM group, CLM effect log_or), with a
    persistent facility effect drawn through a Gaussian copula into a Beta(mean p, ICC rho)
    facility-level probability, so E[p_facility] is exactly the marginal probability and the
    GEE target (the population-averaged log odds ratio) is log_or."""
    fac = np.repeat(np.arange(k), m * rounds)
    rnd = np.tile(np.repeat(np.arange(rounds), m), k)
    clm = (fac < k // 2).astype(int)
    active = clm * (rnd >= 2)
    p_marg = expit(logit(0.55) + 0.05 * rnd + 0.1 * clm + log_or * active)
    u = stats.norm.cdf(rng.normal(size=k))[fac]  # facility-level quantile, persistent across rounds
    a = p_marg * (1 - icc_rho) / icc_rho
    b = (1 - p_marg) * (1 - icc_rho) / icc_rho
    p_fac = stats.beta.ppf(u, a, b)
    y = rng.random(len(p_fac)) < p_fac
    return pd.DataFrame(
        {
            "facility_id": [f"XX-F{i:03d}" for i in fac],
            "round": [f"2024Q{r + 1}" for r in rnd],
            "clm_facility": clm,
            "clm_active": active,
            "got_all_medicines": pd.array(y, "boolean"),
            "wait_minutes": 60
            - 10 * active
            + 5 * rnd
            + rng.normal(0, 6, k)[fac]
            + rng.normal(0, 20, len(fac)),
        }
    )


def test_gee_binomial_recovers_marginal_log_odds_ratio() -> None:
    rng = np.random.default_rng(42)
    est, cover = [], []
    for _ in range(20):
        r = client_gee(survey(rng, k=30, m=20), "got_all_medicines")
        e = r.primary
        est.append(np.log(e.estimate))
        cover.append(e.ci_low <= np.exp(0.5) <= e.ci_high)
    est = np.array(est)
    mc_se = est.std(ddof=1) / np.sqrt(len(est))
    assert abs(est.mean() - 0.5) < 3 * mc_se + 0.02
    assert np.mean(cover) >= 0.8
    assert r.primary.scale == "odds_ratio"
    assert 0 < r.diagnostics["working_correlation"] < 0.3


def test_gee_gaussian_and_mixed_model_recover_difference() -> None:
    rng = np.random.default_rng(7)
    d = survey(rng)
    g = client_gee(d, "wait_minutes")
    mm = client_mixed(d, "wait_minutes")
    for r in (g, mm):
        assert r.primary.ci_low <= -10 <= r.primary.ci_high
    # facility SD 6, residual SD 20: ICC = 36 / 436 = 0.083
    assert mm.diagnostics["icc"] == pytest.approx(36 / 436, abs=0.06)
    from matplotlib.figure import Figure

    assert isinstance(g.plot(), Figure)


def test_bias_reduced_widens_interval_with_few_facilities() -> None:
    d = survey(np.random.default_rng(3), k=10)
    br = client_gee(d, "got_all_medicines", small_sample="bias_reduced").primary
    plain = client_gee(d, "got_all_medicines", small_sample="none").primary
    assert (np.log(br.ci_high) - np.log(br.ci_low)) > (np.log(plain.ci_high) - np.log(plain.ci_low))


def test_client_models_fail_clearly() -> None:
    d = survey(np.random.default_rng(1), k=4)
    one = d[d["facility_id"] == "XX-F000"]
    with pytest.raises(EvaluationError, match="single facility"):
        client_gee(one, "got_all_medicines")
    with pytest.raises(EvaluationError, match="one value only"):
        client_gee(d.assign(clm_active=0), "got_all_medicines")
    with pytest.raises(EvaluationError, match="missing column"):
        client_mixed(d, "satisfaction")
    # missing answers (skip logic) are counted and reported, never silently dropped
    d2 = d.copy()
    d2.loc[d2.index[:10], "got_all_medicines"] = pd.NA
    r = client_gee(d2, "got_all_medicines")
    assert r.diagnostics["n_excluded_missing"] == 10 and r.n_obs == len(d2) - 10


def test_demo_interviews_exposure_and_gee(demo_xa) -> None:
    c = demo_xa.clean
    iv = add_clm_exposure(c["interviews"], c["facilities"])
    comparison = c["facilities"].loc[c["facilities"]["clm_start"].isna(), "facility_id"]
    assert iv.loc[iv["facility_id"].isin(comparison), "clm_active"].eq(0).all()
    r = client_gee(iv, "vl_result_received")
    assert r.primary.estimate > 1 and r.primary.is_null is False  # planted log-OR +0.7 at full ramp
    assert r.diagnostics["n_excluded_missing"] > 0  # asked of ART clients only
