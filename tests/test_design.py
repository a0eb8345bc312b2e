"""Study-design module: every number here is worked out independently of the code.

Sources: hand computation (written out in each test), a published software example
(swCRTdesign README on CRAN), an independent implementation (GLS with numpy; statsmodels'
NormalIndPower; the exact noncentral-t power), or a simulation with a known truth.
"""

from __future__ import annotations

import doctest
import importlib
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from clm_research import design as d


def phi(x: float) -> float:
    """Standard normal CDF written out (no shared code with the module)."""
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


Z975 = 1.959963984540054  # qnorm(0.975)


# --------------------------------------------------------------------------- survey
def test_classic_cluster_survey_769() -> None:
    # n0 = 1.96² · 0.25 / 0.05² = 384.15; DE = 2 multiplies the *unrounded* n0:
    # 768.29 → 769. Rounding n0 first (385 · 2) would give 770: the module rounds once.
    n0 = Z975**2 * 0.25 / 0.05**2
    assert n0 == pytest.approx(384.146, abs=1e-3)
    assert math.ceil(n0 * 2) == 769
    assert d.sample_size_proportion(0.5, 0.05, design_effect=2) == 769
    assert d.sample_size_proportion(0.5, 0.05) == 385


def test_design_effect_domain_example() -> None:
    # 100 interviews per clinic at ICC 0.05 gives DE ≈ 6: 1 + 99 · 0.05 = 5.95.
    assert d.design_effect(100, 0.05) == pytest.approx(5.95)
    assert round(d.design_effect(100, 0.05)) == 6


def test_design_effect_unequal_cluster_sizes_eldridge() -> None:
    # Eldridge et al. 2006: DE = 1 + ((cv² + 1) m̄ − 1) ICC; m̄ = 20, cv = 0.5, ICC 0.05:
    # 1 + (1.25 · 20 − 1) · 0.05 = 1 + 24 · 0.05 = 2.2; equal sizes: 1 + 19 · 0.05 = 1.95.
    assert d.design_effect(20, 0.05, cv=0.5) == pytest.approx(2.2)
    assert d.design_effect(20, 0.05) == pytest.approx(1.95)
    # cv computed from actual sizes: sizes 10, 20, 30 → mean 20, SD (population) 8.165.
    sizes = np.array([10, 20, 30])
    cv = sizes.std() / sizes.mean()
    assert d.design_effect(20, 0.1, cv=cv) == pytest.approx(1 + ((cv**2 + 1) * 20 - 1) * 0.1)


def test_finite_population_correction_cochran() -> None:
    # Cochran: n = n0 / (1 + (n0 − 1)/N); 384.146 / (1 + 383.146/1000) = 277.74 → 278.
    assert d.finite_population_correction(384.146, 1000) == pytest.approx(277.74, abs=0.01)
    assert d.sample_size_proportion(0.5, 0.05, population=1000) == 278
    # A census is never exceeded.
    assert d.sample_size_proportion(0.5, 0.01, population=200) <= 200


def test_sample_size_mean_and_margin_round_trip() -> None:
    # 1.96² · 60² / 5² = 553.17 → 554; with m = 30, ICC 0.1: DE = 3.9 → 2157.4 → 2158.
    assert d.sample_size_mean(60, 5) == 554
    assert d.sample_size_mean(60, 5, cluster_size=30, icc=0.1) == 2158
    n = d.sample_size_proportion(0.3, 0.04, cluster_size=25, icc=0.08)
    assert d.margin_of_error_proportion(0.3, n, cluster_size=25, icc=0.08) <= 0.04
    assert d.margin_of_error_proportion(0.3, n - 1, cluster_size=25, icc=0.08) > 0.04
    assert d.clusters_needed(942, 30) == 32  # 31.4 facilities → 32


def test_survey_bad_input() -> None:
    with pytest.raises(ValueError, match="icc"):
        d.design_effect(30, 1.5)
    with pytest.raises(ValueError, match="margin"):
        d.sample_size_proportion(0.5, 0)


# --------------------------------------------------------------------------- parallel CRT
@pytest.mark.parametrize(
    "k,m,icc,delta", [(10, 20, 0.05, 0.5), (25, 30, 0.01, 0.2), (8, 100, 0.2, 0.6)]
)
def test_crt_power_matches_statsmodels_with_effective_n(
    k: int, m: int, icc: float, delta: float
) -> None:
    # Independent implementation: statsmodels' two-sample z-test power with n = k·m / DE per arm.
    from statsmodels.stats.power import NormalIndPower

    de = 1 + (m - 1) * icc
    expected = NormalIndPower().power(effect_size=delta, nobs1=k * m / de, alpha=0.05, ratio=1.0)
    power = d.crt_power_continuous(delta, 1.0, k, m, icc, method="normal")
    assert power == pytest.approx(expected, abs=1e-9)


def test_crt_power_hand_worked() -> None:
    # Continuous: DE = 1.95, SE = sqrt(2 · 1.95 / 200) = 0.13964, z = 0.5/0.13964 − 1.96 = 1.6206.
    se = math.sqrt(2 * 1.95 / 200)
    assert d.crt_power_continuous(0.5, 1.0, 10, 20, 0.05, method="normal") == pytest.approx(
        phi(0.5 / se - Z975) + phi(-0.5 / se - Z975), abs=1e-12
    )
    assert phi(0.5 / se - Z975) == pytest.approx(0.9474, abs=1e-4)
    # Binary 20 % vs 10 %, k = 15, m = 30, ICC 0.05: Var = (0.16 + 0.09) · 2.45 / 450.
    se_b = math.sqrt(0.25 * 2.45 / 450)
    far_tail = phi(-0.1 / se_b - Z975)  # rejecting in the wrong direction (1.5e-6)
    assert d.crt_power_binary(0.2, 0.1, 15, 30, 0.05, method="normal") == pytest.approx(
        phi(0.1 / se_b - Z975) + far_tail, abs=1e-12
    )


def test_crt_clusters_needed_hand_and_consistent() -> None:
    # (1.96 + 0.8416)² = 7.849; k = 7.849 · 2 · 40² · 2.45 / (30 · 10²) = 20.51 → 21.
    normal = {"method": "normal"}
    assert d.crt_clusters_per_arm_continuous(10, 40, 30, 0.05, **normal) == 21
    assert (
        d.crt_clusters_per_arm_continuous(10, 40, 30, 0.05, small_sample_correction=True, **normal)
        == 22
    )
    # 7.849 · (0.16 + 0.09) · 2.45 / (30 · 0.01) = 16.03 → 17.
    assert d.crt_clusters_per_arm_binary(0.2, 0.1, 30, 0.05, **normal) == 17
    assert (
        d.crt_power_binary(0.2, 0.1, 17, 30, 0.05, **normal)
        >= 0.8
        > d.crt_power_binary(0.2, 0.1, 16, 30, 0.05, **normal)
    )
    mde = d.crt_minimum_detectable_difference(40, 21, 30, 0.05, **normal)
    assert d.crt_power_continuous(mde, 40, 21, 30, 0.05, **normal) == pytest.approx(0.8, abs=1e-4)


# --------------------------------------------------------------------------- stepped wedge
def test_hussey_hughes_hand_worked_4_clusters_3_periods() -> None:
    # X: two facilities switch at period 2, two at period 3.
    x = np.array([[0, 1, 1], [0, 1, 1], [0, 0, 1], [0, 0, 1]])
    assert (d.stepped_wedge_design(2, steps=2) == x).all()
    # I = 4, T = 3; U = ΣX = 6; W = Σ_j (col sums)² = 0 + 4 + 16 = 20;
    # V = Σ_i (row sums)² = 4 + 4 + 1 + 1 = 10. σ² = 1, τ² = 0.5:
    # Var = I σ² (σ² + T τ²) / ((I U − W) σ² + (U² + I T U − T W − I V) τ²)
    #     = 4 · 1 · 2.5 / ((24 − 20) + (36 + 72 − 60 − 40) · 0.5) = 10 / 8 = 1.25.
    assert d.hussey_hughes_variance(x, 1.0, 0.5) == pytest.approx(1.25, abs=1e-12)
    # Power for θ = 3: Φ(3 / sqrt(1.25) − 1.96) = Φ(0.72332) = 0.7652, plus the far tail
    # Φ(−2.6833 − 1.96) = 1.7e-6 (two-sided, as swCRTdesign's swPwr). σ² = 1 is the variance of
    # a facility-period mean: σe = 1 with one interview per facility-period; τ = sqrt(0.5).
    power = d.stepped_wedge_power(
        x, difference=3.0, sigma_e=1.0, tau=math.sqrt(0.5), cluster_period_size=1
    )
    a = 3 / math.sqrt(1.25)
    assert power == pytest.approx(phi(a - Z975) + phi(-a - Z975), abs=1e-12)
    assert power == pytest.approx(0.7652, abs=1e-4)


def test_stepped_wedge_swcrtdesign_readme_example() -> None:
    # Published: swCRTdesign README (CRAN, v4.x), 24 clusters, 5 periods:
    # swPwr(swDsn(c(6,6,6,6)), distn="binomial", n=120, mu0=0.05, mu1=0.035, tau=0.01,
    #       eta=0, rho=0, gamma=0, alpha=0.05) → 0.7861896
    # https://cran.r-project.org/web/packages/swCRTdesign/readme/README.html; the arguments
    # are those of Example 1 of swPwr's help page (man/swPwr.Rd: random intercepts only,
    # standard design). The documented 7 decimals need swPwr's two-sided power (both tails).
    x = d.stepped_wedge_design([6, 6, 6, 6])
    assert x.shape == (24, 5)
    power = d.stepped_wedge_power(
        x, p_control=0.05, p_intervention=0.035, cluster_period_size=120, tau=0.01
    )
    assert power == pytest.approx(0.7861896, abs=5e-8)
    assert round(power, 3) == 0.786


def _random_estimable_designs(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    out = []
    while len(out) < n:
        i, t = int(rng.integers(3, 9)), int(rng.integers(2, 7))
        x = rng.integers(0, 2, (i, t))
        # Estimable: treatment varies within some period and within some cluster.
        if 0 < x.sum() < x.size and (x.std(axis=0) > 0).any() and (x.std(axis=1) > 0).any():
            out.append(x)
    return out


def test_hussey_hughes_equals_gls_for_any_design() -> None:
    # Independent implementation: [(X'V⁻¹X)⁻¹]_θθ with V block-diagonal exchangeable,
    # built here from scratch (not the module's GLS function).
    rng = np.random.default_rng(2007)
    designs = [
        d.stepped_wedge_design([6, 6, 6, 6]),
        d.stepped_wedge_design(3, steps=5, extra_periods=2),
        *_random_estimable_designs(rng, 25),
    ]
    for x in designs:
        for sigma2, tau2 in ((1.0, 0.0), (0.7, 0.3), (0.05, 2.0)):
            n_i, n_t = x.shape
            rows, blocks = [], []
            for i in range(n_i):
                rows.append(np.column_stack([np.eye(n_t), x[i]]))
                blocks.append(sigma2 * np.eye(n_t) + tau2 * np.ones((n_t, n_t)))
            big_x = np.vstack(rows)
            big_v = np.zeros((n_i * n_t, n_i * n_t))
            for i, b in enumerate(blocks):
                big_v[i * n_t : (i + 1) * n_t, i * n_t : (i + 1) * n_t] = b
            info = big_x.T @ np.linalg.inv(big_v) @ big_x
            gls = np.linalg.pinv(info)[-1, -1]
            assert d.hussey_hughes_variance(x, sigma2, tau2) == pytest.approx(gls, rel=1e-8)
            assert d.gls_treatment_variance(x, sigma2, tau2) == pytest.approx(gls, rel=1e-8)


def test_parallel_design_in_hh_equals_crt_formula() -> None:
    # Hand algebra: for k treated and k control clusters over T periods, HH reduces to
    # Var = 2 (σ²/T + τ²) / k, the parallel CRT variance with cluster size T·m.
    k, t, m, icc, sd, delta = 12, 4, 25, 0.05, 40.0, 12.0
    x = np.vstack([np.ones((k, t)), np.zeros((k, t))])
    sigma2, tau2 = (1 - icc) * sd**2 / m, icc * sd**2
    assert d.hussey_hughes_variance(x, sigma2, tau2) == pytest.approx(2 * (sigma2 / t + tau2) / k)
    sw = d.stepped_wedge_power(x, difference=delta, total_sd=sd, icc=icc, cluster_period_size=m)
    crt = d.crt_power_continuous(delta, sd, k, t * m, icc, method="normal")
    assert sw == pytest.approx(crt, abs=1e-6)  # both are the normal approximation


def test_gls_allows_unobserved_cells_and_rejects_bad_designs() -> None:
    x = d.stepped_wedge_design(2, steps=3).astype(float)
    full = d.gls_treatment_variance(x, 1.0, 0.2)
    x[2, 2] = np.nan  # a transition period not measured
    assert d.gls_treatment_variance(x, 1.0, 0.2) > full
    with pytest.raises(ValueError, match="complete"):
        d.hussey_hughes_variance(x, 1.0, 0.2)
    with pytest.raises(ValueError, match="not estimable"):
        d.hussey_hughes_variance(np.ones((4, 3)), 1.0, 0.2)
    with pytest.raises(ValueError, match="0 \\(no CLM\\) or 1"):
        d.hussey_hughes_variance(np.array([[0, 2], [0, 1]]), 1.0, 0.2)


def test_stepped_wedge_schedule_is_seeded_and_consistent() -> None:
    ids = [f"F{i:02d}" for i in range(12)]
    a = d.stepped_wedge_schedule(
        ids, 3, seed=11, periods=[f"2025Q{q}" for q in range(1, 5)] + ["2026Q1"]
    )
    b = d.stepped_wedge_schedule(
        ids, 3, seed=11, periods=[f"2025Q{q}" for q in range(1, 5)] + ["2026Q1"]
    )
    c = d.stepped_wedge_schedule(
        ids, 3, seed=12, periods=[f"2025Q{q}" for q in range(1, 5)] + ["2026Q1"]
    )
    assert a.allocation.equals(b.allocation)
    assert not a.allocation["cluster_id"].equals(c.allocation["cluster_id"])
    assert sorted(a.allocation["cluster_id"]) == ids
    assert a.design.shape == (12, 5)
    # Row r of the design switches at the allocation's start period.
    for r, row in a.allocation.iterrows():
        first = a.periods[int(np.argmax(a.design[r]))]
        assert first == row["start_period"]
    long = a.to_frame()
    assert len(long) == 60 and long["clm"].sum() == a.design.sum()


def test_allocate_rollout_strata_are_spread_over_steps() -> None:
    ids = [f"F{i}" for i in range(12)]
    strata = ["urban"] * 6 + ["rural"] * 6
    a = d.allocate_rollout(ids, 4, seed=5, strata=strata)
    per_step = a.groupby(["step", "stratum"]).size().unstack()
    assert (per_step.to_numpy() == 2).all()  # 3 steps × 2 strata, 2 of each per step
    with pytest.raises(ValueError, match="cannot be split"):
        d.allocate_rollout(ids, 5, seed=1)


# --------------------------------------------------------------------------- simulation
def test_simulated_crt_power_agrees_with_closed_form() -> None:
    # Known truth: the exact power of the t-test on facility means (noncentral t, 2k − 2 df);
    # the normal closed form is optimistic by ≈ 0.024 at 28 df (bounded by 0.03 here).
    from scipy import stats

    k, m, icc, sd, delta, n_sims = 15, 20, 0.05, 1.0, 0.35, 400
    sim = d.simulate_crt_power(delta, sd, k, m, icc, n_sims=n_sims, seed=20240601, progress=False)
    se = math.sqrt(2 * sd**2 * (1 + (m - 1) * icc) / (k * m))
    df = 2 * k - 2
    crit = stats.t.ppf(0.975, df)
    exact = stats.nct.sf(crit, df, delta / se) + stats.nct.cdf(-crit, df, delta / se)
    closed = d.crt_power_continuous(delta, sd, k, m, icc, method="normal")
    assert d.crt_power_continuous(delta, sd, k, m, icc) == pytest.approx(exact, abs=1e-9)
    mc_se = math.sqrt(exact * (1 - exact) / n_sims)
    assert abs(sim.power - exact) < 3.5 * mc_se
    assert 0 < closed - exact < 0.03
    assert abs(sim.power - closed) < 3.5 * mc_se + 0.03
    assert sim.mean_estimate == pytest.approx(delta, abs=4 * se / math.sqrt(n_sims))


def test_simulated_did_power_agrees_with_closed_form_and_holds_size() -> None:
    kw = dict(
        sd=40.0,
        icc=0.05,
        cluster_period_size=30,
        clusters_treated=15,
        clusters_control=15,
        periods_pre=3,
        periods_post=3,
    )
    closed = d.did_power(5.0, **kw)  # hand form in the docstring
    sim = d.simulate_did_power(
        5.0, **kw, trend=-2.0, n_sims=300, seed=7, progress=False, check_size=True
    )
    mc_se = math.sqrt(closed * (1 - closed) / 300)
    # Clustered errors with 30 facilities lose a little power against the known-variance form.
    assert closed - 4 * mc_se - 0.05 < sim.power < closed + 4 * mc_se
    assert sim.type1_error is not None and sim.type1_error < 0.05 + 3 * math.sqrt(0.05 * 0.95 / 300)
    assert sim.mean_estimate == pytest.approx(5.0, abs=0.5)


def test_simulated_its_unbiased_and_reports_inflated_size() -> None:
    sim = d.simulate_its_power(
        12, 12, 2.0, sd=1.0, trend=0.3, n_sims=200, seed=3, progress=False, estimator="builtin"
    )
    assert sim.mean_estimate == pytest.approx(2.0, abs=0.2)
    assert sim.power > 0.7
    # Known property of Newey–West errors in 24-point series: a true null is rejected far
    # more often than 5 % (our own check gave ≈ 20 %); the result must say so.
    assert sim.type1_error is not None and sim.type1_error > 0.08


def test_its_simulation_reuses_the_evaluation_estimator() -> None:
    pytest.importorskip("clm_research.evaluation.its")
    kw = dict(sd=1.0, n_sims=30, seed=9, progress=False, check_size=False)
    a = d.simulate_its_power(8, 8, 1.5, estimator="builtin", **kw)
    b = d.simulate_its_power(8, 8, 1.5, estimator="evaluation", **kw)
    assert "evaluation" in b.estimator
    assert a.power == b.power and a.mean_estimate == pytest.approx(b.mean_estimate, abs=1e-9)


def test_naive_pre_post_is_biased_by_the_secular_trend() -> None:
    # Known truth: with a trend of −3 per round and rounds 0–3 before, 4–7 after, the
    # pre/post difference adds −3 · (5.5 − 1.5) = −12 to the true effect; DiD and ITS do not.
    t = d.compare_designs_under_trend(effect=-10, trend=-3, n_sims=150, seed=4, progress=False)
    t = t.set_index("design")
    assert t.loc["pre/post", "bias"] == pytest.approx(-12, abs=0.6)
    assert (
        abs(t.loc["difference-in-differences", "bias"])
        < 3 * t.loc["difference-in-differences", "empirical_se"] / math.sqrt(150) + 0.1
    )
    assert (
        abs(t.loc["interrupted time series", "bias"])
        < 3 * t.loc["interrupted time series", "empirical_se"] / math.sqrt(150) + 0.1
    )


# --------------------------------------------------------------------------- sampling
def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "facility_id": [f"F{i:03d}" for i in range(n)],
            "region": np.repeat(["North", "South", "East", "West"], n // 4),
            "tx_curr": rng.integers(100, 2000, n),
        }
    )


def test_pps_inclusion_probabilities_match_sizes() -> None:
    # Known truth: systematic PPS selects facility i with probability n · size_i / total.
    frame = _frame(20)
    n, draws = 5, 800
    counts = pd.Series(0, index=frame["facility_id"])
    for s in range(draws):
        sel = d.pps_systematic(frame, n, size="tx_curr", seed=s)
        assert len(sel) == n and sel["facility_id"].is_unique
        counts[sel["facility_id"]] += 1
    pi = n * frame["tx_curr"].to_numpy() / frame["tx_curr"].sum()
    assert (pi < 1).all()
    emp = counts.to_numpy() / draws
    assert np.all(np.abs(emp - pi) < 4 * np.sqrt(pi * (1 - pi) / draws) + 1e-9)
    sel = d.pps_systematic(frame, n, size="tx_curr", seed=1)
    assert sel["design_weight"].to_numpy() == pytest.approx(
        1 / sel["inclusion_probability"].to_numpy()
    )


def test_pps_certainty_units() -> None:
    # Total 2000, n = 2: interval 1000; E (1000) is certain; the other is drawn from A–D
    # with interval 1000 / 1 → probability size / 1000.
    frame = pd.DataFrame({"facility_id": list("ABCDE"), "tx_curr": [100, 200, 300, 400, 1000]})
    sel = d.pps_systematic(frame, 2, size="tx_curr", seed=0)
    assert sel.loc[sel["certainty"], "facility_id"].tolist() == ["E"]
    other = sel[~sel["certainty"]].iloc[0]
    assert other["inclusion_probability"] == pytest.approx(other["tx_curr"] / 1000)


def test_allocation_and_stratified_sample_with_reserves() -> None:
    # Largest remainder: 12 · (30, 20, 10)/60 = 6, 4, 2; 10 · (30, 20, 10)/60 = 5, 3.33, 1.67 → 5, 3, 2.
    assert d.allocate_sample({"a": 30, "b": 20, "c": 10}, 12) == {"a": 6, "b": 4, "c": 2}
    assert d.allocate_sample({"a": 30, "b": 20, "c": 10}, 10) == {"a": 5, "b": 3, "c": 2}
    s = d.stratified_sample(
        _frame(), 8, strata="region", size="tx_curr", seed=3, reserves_per_stratum=2
    )
    assert s.selected.groupby("stratum").size().to_dict() == {
        "East": 2,
        "North": 2,
        "South": 2,
        "West": 2,
    }
    assert not set(s.reserves["facility_id"]) & set(s.selected["facility_id"])
    gone = s.selected["facility_id"].iloc[0]
    stratum = s.selected["stratum"].iloc[0]
    first_reserve = (
        s.reserves.query("stratum == @stratum").sort_values("reserve_rank")["facility_id"].iloc[0]
    )
    s2 = s.replace(gone, "closed for renovation")
    assert gone not in set(s2.selected["facility_id"]) and first_reserve in set(
        s2.selected["facility_id"]
    )
    assert len(s2.selected) == 8 and len(s2.replacements) == 1
    assert s2.replacements.iloc[0].to_dict() == {
        "replaced": gone,
        "replacement": first_reserve,
        "stratum": stratum,
        "reason": "closed for renovation",
    }
    s3 = s2.replace(first_reserve, "insecure")
    with pytest.raises(ValueError, match="no reserve facility left"):
        s3.replace(s3.selected.query("stratum == @stratum")["facility_id"].iloc[-1], "refused")
    with pytest.raises(ValueError, match="reason"):
        s.replace(gone, " ")
    srs = d.stratified_sample(_frame(), 8, strata="region", method="srs", seed=1)
    assert srs.selected["inclusion_probability"].eq(0.2).all()


def test_sampling_bad_input_names_the_problem() -> None:
    frame = _frame()
    frame.loc[3, "tx_curr"] = 0
    with pytest.raises(ValueError, match="F003"):
        d.pps_systematic(frame, 4, size="tx_curr", seed=1)
    with pytest.raises(ValueError, match="size column"):
        d.stratified_sample(_frame(), 4, strata="region", seed=1)


# --------------------------------------------------------------------------- reporting
def test_table_one_hand_values_and_suppression() -> None:
    df = pd.DataFrame(
        {
            "arm": ["CLM"] * 12 + ["comparison"] * 12,
            "tx_curr": list(range(100, 1300, 100)) * 2,
            "type": ["clinic"] * 11 + ["hospital"] + ["clinic"] * 12,
            "wait": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, np.nan] * 2,
        }
    )
    t = d.table_one(df, "arm", continuous=["tx_curr"], categorical=["type"], skewed=["wait"])
    # mean 650, SD of 100..1200 = 100 · sqrt(13) = 360.6
    assert t.loc[("tx_curr", "mean (SD)"), "CLM (n=12)"] == "650.0 (360.6)"
    # 1 hospital: suppressed; 11 clinics would reveal it (12 − 11), so hidden too; the
    # overall hospital count (1) is small itself; comparison (12 clinics, 0 hospitals) is shown.
    assert t.loc[("type", "hospital"), "CLM (n=12)"] == "<10"
    assert t.loc[("type", "clinic"), "CLM (n=12)"] == "<10"
    assert t.loc[("type", "clinic"), "comparison (n=12)"] == "12 (100.0%)"
    assert t.loc[("type", "hospital"), "Overall (n=24)"] == "<10"
    # …and then overall clinics (23 = 24 − 1) would reveal overall hospitals: hidden.
    assert t.loc[("type", "clinic"), "Overall (n=24)"] == "<10"
    assert t.loc[("wait", "median [IQR]"), "CLM (n=12)"] == "60.0 [35.0–85.0]"
    assert t.loc[("wait", "missing"), "Overall (n=24)"] == "2"


def test_table_one_secondary_suppression_blocks_subtraction() -> None:
    # Hand-worked: A has 25 none, 3 msm, 2 sw; B has 20 none, 10 msm.
    # Primary: A-msm (3), A-sw (2), overall-sw (2). Column A: two hidden → fine. Column overall:
    # only sw hidden (60 − 45 − 13 would give it) → hide the smallest other, overall-msm (13).
    # Rows msm and sw now each have two hidden cells → stable.
    # Nothing hidden can be recovered: A-msm + A-sw = 5 but the split is unknown.
    df = pd.DataFrame(
        {
            "arm": ["A"] * 30 + ["B"] * 30,
            "kp": ["none"] * 25 + ["msm"] * 3 + ["sw"] * 2 + ["none"] * 20 + ["msm"] * 10,
        }
    )
    t = d.table_one(df, "arm", categorical=["kp"])
    hidden = (t == "<10").to_numpy()
    assert hidden.tolist() == [[True, False, True], [False, False, False], [True, False, True]]
    assert t.loc[("kp", "msm"), "B (n=30)"] == "10 (33.3%)"


def test_reporting_checklist_and_figures_at_300_dpi(tmp_path) -> None:
    import matplotlib.pyplot as plt
    from PIL import Image

    cl = d.reporting_checklist("stepped_wedge")
    assert {"STROBE", "TIDieR", "CONSORT-SW"} <= set(cl["guideline"])
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [0, 1])
    paths = d.save_figure(fig, "fig1", tmp_path / "figs")
    plt.close(fig)
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    dpi = Image.open(paths[0]).info["dpi"]
    assert dpi[0] == pytest.approx(300, abs=1)


def test_results_chain_from_the_framework() -> None:
    fw = pytest.importorskip("clm_research.framework").load_framework()
    chain = d.results_chain(fw, ["issues_resolved"])
    roles = dict(zip(chain["id"], chain["role"], strict=True))
    assert roles["issues_resolved"] == "selected"
    for i in fw.indicators:
        if "issues_resolved" in i.contributes_to:
            assert roles[i.id] == "feeds"
    assert set(fw.indicator("issues_resolved").contributes_to) <= {
        k for k, v in roles.items() if v == "fed"
    }
    with pytest.raises(KeyError):
        d.results_chain(fw, ["no_such_indicator"])


# --------------------------------------------------------------------------- docstrings
@pytest.mark.parametrize(
    "module",
    [
        "survey",
        "crt",
        "stepped_wedge",
        "sampling",
        "simulation",
        "reporting",
        "planning",
        "facilities",
        "registration",
    ],
)
def test_docstring_examples_are_correct(module: str) -> None:
    mod = importlib.import_module(f"clm_research.design.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
