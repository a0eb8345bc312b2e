"""Small-sample power, the one stepped-wedge entry point, facility lists, planning on the
learner's indicator, plan drafts and registration.

Numbers come from outside the code: a hand computation written out here (with the noncentral
t integrated numerically from its definition, not with scipy's ``nct``), the documented
examples of R clusterPower and swCRTdesign, reference values from the NIH GRT sample-size
calculator and PASS 11 that clusterPower's test suite quotes, and Hayes & Bennett's formula.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clm_research import design as d
from clm_research.errors import CLMError, DesignInputError

Z975 = 1.959963984540054  # qnorm(0.975)
T975_18 = 2.100922040  # qt(0.975, 18); printed tables: 2.101


def phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def noncentral_t_power(ncp: float, df: int, crit: float) -> float:
    """P(|T| > crit) for T = (Z + ncp) / sqrt(W / df), W ~ χ²(df), by numerical integration.

    P(T > c) = E_W[Φ(ncp − c·sqrt(W/df))] and P(T < −c) = E_W[Φ(−ncp − c·sqrt(W/df))]; the
    χ² density is written out, so nothing is shared with scipy's noncentral t.
    """
    w = np.linspace(1e-9, 40 * df, 400_001)
    log_f = (df / 2 - 1) * np.log(w) - w / 2 - (df / 2) * math.log(2) - math.lgamma(df / 2)
    f = np.exp(log_f)
    scale = crit * np.sqrt(w / df)
    cdf = np.vectorize(phi)
    integrand = f * (cdf(ncp - scale) + cdf(-ncp - scale))
    return float(np.trapezoid(integrand, w))


# --------------------------------------------------------------------------- cluster RCT, t
def test_crt_power_t_hand_computation_10_per_arm() -> None:
    # 10 facilities per arm, 20 interviews each, ICC 0.05, a difference of 0.5 SD:
    # DE = 1 + 19 · 0.05 = 1.95; SE = sqrt(2 · 1.95 / (10 · 20)) = sqrt(0.0195) = 0.139642;
    # δ/SE = 0.5 / 0.139642 = 3.58057.
    se = math.sqrt(2 * 1.95 / 200)
    ncp = 0.5 / se
    assert ncp == pytest.approx(3.58057, abs=1e-5)
    # Normal approximation: Φ(3.58057 − 1.95996) = Φ(1.62061) = 0.9474.
    normal = phi(ncp - Z975) + phi(-ncp - Z975)
    assert round(normal, 3) == 0.947
    # t with 2(k − 1) = 18 degrees of freedom, critical value 2.1009: 0.923.
    from scipy import stats

    assert float(stats.t.ppf(0.975, 18)) == pytest.approx(T975_18, abs=1e-8)
    exact = noncentral_t_power(ncp, 18, T975_18)
    assert round(exact, 3) == 0.923
    assert d.crt_power_continuous(0.5, 1.0, 10, 20, 0.05) == pytest.approx(exact, abs=1e-6)
    assert d.crt_power_continuous(0.5, 1.0, 10, 20, 0.05, method="normal") == pytest.approx(
        normal, abs=1e-12
    )
    # the t is the default
    assert d.crt_power_continuous(0.5, 1.0, 10, 20, 0.05, method="t") == (
        d.crt_power_continuous(0.5, 1.0, 10, 20, 0.05)
    )


def test_crt_t_matches_clusterpower_documented_examples() -> None:
    # R clusterPower, help page of cpa.normal (t with 2(nclusters − 1) df):
    #   cpa.normal(nsubjects=10, d=1, ICC=.1, vart=5) "nclusters greater than 15, suggests 16"
    #   cpa.normal(power=NA, nclusters=16, nsubjects=10, d=1, sigma_b_sq=.5, vart=5) → 0.801766
    # (clusterPower counts the near tail only; the far tail adds 9e-7 here.)
    sd = math.sqrt(5)
    assert d.crt_clusters_per_arm_continuous(1, sd, 10, 0.1) == 16
    assert d.crt_power_continuous(1, sd, 16, 10, 0.1) == pytest.approx(0.801766, abs=2e-6)
    assert d.crt_power_continuous(1, sd, 15, 10, 0.1) < 0.8


def test_crt_matches_nih_calculator_and_pass_values_quoted_by_clusterpower() -> None:
    # clusterPower's tests (tests/testthat.R) compare with the NIH Research Methods Resources
    # GRT Sample Size Calculator and PASS 11:
    # continuous, d = 0.4804988 SD, 150 per cluster, ICC 0.05, 80 %: ceiling(nclusters) = 5.
    assert d.crt_clusters_per_arm_continuous(0.4804988, 1.0, 150, 0.05) == 5
    # binary 0.1 vs 0.2, 150 per cluster, ICC 0.05, t: round(nclusters) = 12, i.e. the
    # continuous solution lies in [11.5, 12.5); the smallest whole number is therefore 13.
    from scipy.optimize import brentq

    root = brentq(lambda k: d.crt_power_binary(0.1, 0.2, k, 150, 0.05) - 0.8, 2.5, 100)
    assert round(root) == 12
    assert d.crt_clusters_per_arm_binary(0.1, 0.2, 150, 0.05) == 13
    # PASS 11: 13 clusters per arm, normal approximation: power 0.86 (to 3 decimals 0.860).
    pw = d.crt_power_binary(0.1, 0.2, 13, 150, 0.05, method="normal")
    assert round(pw, 2) == 0.86 and round(pw, 3) == 0.86


def test_crt_rate_matches_hayes_bennett_and_clusterpower_example() -> None:
    # Hayes & Bennett (1999): c = 1 + (z + z)² [(λ0 + λ1)/y + k² (λ0² + λ1²)] / (λ0 − λ1)².
    # clusterPower's crtpwr.2rate example: py = 10, r1 = 0.1, r2 = 0.2, cvb = 0.1 → "greater
    # than 24, suggests 25". By hand: 7.849 · (0.3/10 + 0.01 · 0.05) / 0.01 = 23.94; + 1 = 24.94.
    z = Z975 + 0.8416212335729143
    c = 1 + z**2 * (0.3 / 10 + 0.01 * 0.05) / 0.01
    assert c == pytest.approx(24.94, abs=0.01)
    got = d.crt_clusters_per_arm_rate(
        0.1, 0.2, 10, 0.1, method="normal", small_sample_correction=True
    )
    assert got == math.ceil(c) == 25
    # the t method needs at least as many, and its power straddles the target
    k = d.crt_clusters_per_arm_rate(0.1, 0.2, 10, 0.1)
    assert k >= 24
    assert (
        d.crt_power_rate(0.1, 0.2, k, 10, 0.1) >= 0.8 > d.crt_power_rate(0.1, 0.2, k - 1, 10, 0.1)
    )


@pytest.mark.parametrize(
    "delta,sd,m,icc", [(10, 40, 30, 0.05), (0.3, 1, 10, 0.2), (5, 45, 50, 0.01)]
)
def test_t_sample_size_is_the_smallest_meeting_the_power(
    delta: float, sd: float, m: int, icc: float
) -> None:
    k = d.crt_clusters_per_arm_continuous(delta, sd, m, icc)
    normal = d.crt_clusters_per_arm_continuous(delta, sd, m, icc, method="normal")
    assert k >= normal
    assert d.crt_power_continuous(delta, sd, k, m, icc) >= 0.8
    assert k == 2 or d.crt_power_continuous(delta, sd, k - 1, m, icc) < 0.8
    mde = d.crt_minimum_detectable_difference(sd, k, m, icc)
    assert d.crt_power_continuous(mde, sd, k, m, icc) == pytest.approx(0.8, abs=1e-8)
    assert mde > d.crt_minimum_detectable_difference(sd, k, m, icc, method="normal")


def test_crt_bad_method_and_double_correction_are_refused() -> None:
    with pytest.raises(DesignInputError, match="method must be"):
        d.crt_power_continuous(1, 1, 10, 10, 0.1, method="z")  # type: ignore[arg-type]
    with pytest.raises(DesignInputError, match="already accounts for few facilities"):
        d.crt_clusters_per_arm_binary(0.2, 0.1, 30, 0.05, small_sample_correction=True)
    with pytest.raises(DesignInputError, match="at least 2 facilities"):
        d.crt_power_continuous(1, 1, 1, 10, 0.1)
    assert d.crt_power_continuous(1, 1, 1, 10, 0.1, method="normal") > 0


# --------------------------------------------------------------------------- stepped wedge
def test_one_stepped_wedge_entry_point_names_each_sd() -> None:
    sw = d.stepped_wedge_design([6, 6, 6, 6])
    sd, icc, m, delta = 45.0, 0.05, 30, -10.0
    sigma_e, tau = math.sqrt(1 - icc) * sd, math.sqrt(icc) * sd
    total = d.stepped_wedge_power(sw, difference=delta, total_sd=sd, icc=icc, cluster_period_size=m)
    same = [
        d.stepped_wedge_power(
            sw, difference=delta, sigma_e=sigma_e, tau=tau, cluster_period_size=m
        ),
        d.stepped_wedge_power(
            sw, difference=delta, sigma_e=sigma_e, icc=icc, cluster_period_size=m
        ),
        d.stepped_wedge_power(sw, difference=delta, total_sd=sd, tau=tau, cluster_period_size=m),
    ]
    assert same == pytest.approx([total] * 3, abs=1e-12)
    # Hand: σ² = 0.95 · 2025 / 30 = 64.125, τ² = 101.25, through the closed form.
    var = d.hussey_hughes_variance(sw, 0.95 * 2025 / 30, 0.05 * 2025)
    a = 10 / math.sqrt(var)
    assert total == pytest.approx(phi(a - Z975) + phi(-a - Z975), abs=1e-12)
    # The trap the old pair of functions set: the within-facility SD taken as the total SD
    # gives another (too high) power; now each SD has its own name.
    wrong = d.stepped_wedge_power(
        sw, difference=delta, total_sd=sigma_e, icc=icc, cluster_period_size=m
    )
    assert wrong > total
    with pytest.raises(TypeError):
        d.stepped_wedge_power(sw, difference=delta, sd=sd, icc=icc, cluster_period_size=m)  # type: ignore[call-arg]
    assert not hasattr(d, "hussey_hughes_power") and not hasattr(d, "stepped_wedge_power_binary")


def test_stepped_wedge_refuses_ambiguous_inputs() -> None:
    sw = d.stepped_wedge_design([6, 6, 6, 6])
    with pytest.raises(DesignInputError, match="exactly two"):
        d.stepped_wedge_power(sw, difference=1, icc=0.05, cluster_period_size=10)
    with pytest.raises(DesignInputError, match="exactly two"):
        d.stepped_wedge_power(sw, difference=1, sigma_e=1, tau=1, icc=0.5, cluster_period_size=10)
    with pytest.raises(DesignInputError, match="cannot be combined"):
        d.stepped_wedge_power(sw, difference=1, sigma_e=1, total_sd=2, cluster_period_size=10)
    with pytest.raises(DesignInputError, match="set by the proportions"):
        d.stepped_wedge_power(
            sw, p_control=0.2, p_intervention=0.1, sigma_e=0.4, cluster_period_size=10
        )
    with pytest.raises(DesignInputError, match="not both"):
        d.stepped_wedge_power(
            sw, difference=0.1, p_control=0.2, p_intervention=0.1, tau=0.1, cluster_period_size=10
        )


def test_binary_stepped_wedge_with_icc_is_the_continuous_case_with_pbar() -> None:
    # swPwr's binomial case sets σe² = p̄(1 − p̄) and, with an ICC, τ² = ICC σe² / (1 − ICC).
    sw = d.stepped_wedge_design(3, steps=4)
    p0, p1, icc, m = 0.30, 0.40, 0.05, 50
    pbar = 0.35
    binary = d.stepped_wedge_power(
        sw, p_control=p0, p_intervention=p1, icc=icc, cluster_period_size=m
    )
    cont = d.stepped_wedge_power(
        sw, difference=0.1, sigma_e=math.sqrt(pbar * (1 - pbar)), icc=icc, cluster_period_size=m
    )
    assert binary == pytest.approx(cont, abs=1e-12)


# --------------------------------------------------------------------------- facility lists
def test_template_and_demo_lists_read_and_the_demo_list_is_the_generators() -> None:
    template = d.read_facility_list(d.templates_dir() / "facilities_template.csv")
    assert list(template.columns[:3]) == list(d.FACILITY_LIST_COLUMNS)
    demo = d.sampling_frame()
    generated = d.demo_facility_list("XA")
    assert demo["facility_id"].tolist() == generated["facility_id"].tolist()
    assert demo["size"].tolist() == generated["size"].astype(float).tolist()
    assert demo["district"].tolist() == generated["district"].tolist()
    assert len(demo) == 60 and (demo["size"] > 0).all()


def _write(tmp_path: Path, text: str, name: str = "facilities.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_facility_list_errors_name_file_row_column_and_rule(tmp_path: Path) -> None:
    p = _write(tmp_path, "facility_id,district\nF1,North\n")
    with pytest.raises(
        DesignInputError, match=r"facilities.csv: row 1 \(header\) has no column size"
    ):
        d.read_facility_list(p)
    p = _write(
        tmp_path,
        'facility_id,district,size\nF1,North,120\nF2,,80\nF1,South,"1,5"\nF4,South,abc\nF5,East,\n',
    )
    with pytest.raises(DesignInputError) as info:
        d.read_facility_list(p)
    msg = str(info.value)
    assert isinstance(info.value, CLMError)
    assert "facilities.csv" in msg and "nothing was changed or dropped" in msg
    assert "row 3, column district: empty" in msg
    assert "row 4, column facility_id: 'F1' is already used in row 2" in msg
    assert "row 5, column size: 'abc' is not a positive number" in msg
    assert "row 6, column size: empty" in msg
    assert "row 4, column size: '1,5' is not a positive number" in msg
    p = _write(tmp_path, "facility_id,district,size\nF1,North,1,5\n")
    with pytest.raises(DesignInputError, match="row 2: 4 values but the header has 3 columns"):
        d.read_facility_list(p)


def test_facility_list_refuses_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DesignInputError, match="no such file"):
        d.read_facility_list(tmp_path / "missing.csv")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("facility_id,district,size\nF1,Bénoué,10\n".encode("latin-1"))
    with pytest.raises(DesignInputError, match="not UTF-8"):
        d.read_facility_list(latin)
    with pytest.raises(DesignInputError, match="empty"):
        d.read_facility_list(_write(tmp_path, "\n"))
    with pytest.raises(DesignInputError, match="no facilities"):
        d.read_facility_list(_write(tmp_path, "facility_id,district,size\n"))
    with pytest.raises(DesignInputError, match="more than once"):
        d.read_facility_list(_write(tmp_path, "facility_id,district,size,size\nF1,N,1,2\n"))
    # a byte-order mark (Excel's "CSV UTF-8") is fine; zero size is not
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbffacility_id,district,size\nF1,North,10\n")
    assert d.read_facility_list(bom)["facility_id"].tolist() == ["F1"]
    with pytest.raises(DesignInputError, match="row 2, column size: '0'"):
        d.sampling_frame(pd.DataFrame({"facility_id": ["F1"], "district": ["N"], "size": [0]}))


# --------------------------------------------------------------------------- planning
def _scale(indicator: str, country: str | None = None) -> d.OutcomeScale:
    from clm_research.framework import load_framework

    return d.OutcomeScale.from_indicator(load_framework(country).indicator(indicator))


def test_indicator_type_decides_units_and_effect_scale() -> None:
    wait = _scale("wait_time_median")
    assert (wait.kind, wait.unit, wait.effect_unit) == ("continuous", "minutes", "minutes")
    assert wait.effect_text(-10) == "-10 minutes" and wait.value_text(45) == "45 minutes"
    respect = _scale("treated_with_respect")
    assert (respect.kind, respect.effect_unit) == ("proportion", "percentage points")
    assert respect.effect_text(5) == "+5 percentage points" and respect.value_text(60) == "60%"
    assert respect.to_plan_scale(5) == pytest.approx(0.05)
    rate = _scale("treatment_interruption")
    assert rate.kind == "rate" and rate.effect_unit == "events per person-month on ART"
    assert rate.axis_label == "Treatment interruptions per person-month on ART"
    assert respect.measured_in == "percent" and wait.axis_label == "Median waiting time (minutes)"
    count = _scale("high_severity_issues")
    assert count.kind == "rate" and count.unit == "issues per facility and round"
    days = _scale("days_to_resolution")
    assert days.kind == "continuous" and days.unit == "days"


def test_planning_numbers_are_checked_in_words() -> None:
    wait, respect, rate = (
        _scale("wait_time_median"),
        _scale("treated_with_respect"),
        _scale("treatment_interruption"),
    )
    with pytest.raises(DesignInputError, match="give the SD of the clients' values in minutes"):
        d.PlanningNumbers(wait, baseline=60, effect=-10)
    with pytest.raises(DesignInputError, match="between 0 and 100"):
        d.PlanningNumbers(respect, baseline=160, effect=5)
    with pytest.raises(DesignInputError, match="gives 105%"):
        d.PlanningNumbers(respect, baseline=100 - 0.5 + 0.5 - 5, effect=10)
    with pytest.raises(DesignInputError, match="exposure_per_round"):
        d.PlanningNumbers(rate, baseline=0.02, effect=-0.005)
    with pytest.raises(DesignInputError, match="non-zero"):
        d.PlanningNumbers(wait, baseline=60, effect=0, sd=40)
    small = d.PlanningNumbers(respect, baseline=60, effect=0.05)
    assert any("percentage points" in n for n in small.notes)


def test_power_check_reproduces_the_design_formulas() -> None:
    wait = _scale("wait_time_median")
    n = d.PlanningNumbers(wait, baseline=60, effect=-10, sd=40, icc=0.05, interviews_per_round=30)
    # cluster RCT with equal arms: the crt functions (t), cluster size = interviews × rounds
    crt = d.power_check(
        n, "cluster_rct", facilities_clm=12, facilities_comparison=12, rounds_after=2
    )
    assert crt.power == pytest.approx(d.crt_power_continuous(-10, 40, 12, 60, 0.05), abs=1e-12)
    assert "22 degrees of freedom" in crt.method
    # DiD: σ² = 0.95 · 1600 / 30 = 50.667; Var = σ² (1/20 + 1/10)(1/2 + 1/4) = 5.7
    did = d.power_check(
        n, "did", facilities_clm=20, facilities_comparison=10, rounds_before=2, rounds_after=4
    )
    var = 0.95 * 1600 / 30 * (1 / 20 + 1 / 10) * (1 / 2 + 1 / 4)
    assert var == pytest.approx(5.7)
    a = 10 / math.sqrt(var)
    assert did.power == pytest.approx(phi(a - Z975) + phi(-a - Z975), abs=1e-12)
    # stepped wedge: 24 facilities in 4 steps of 6, one round before, 4 from the start
    sw = d.power_check(n, "stepped_wedge", facilities_clm=24, rounds_before=1, rounds_after=4)
    assert sw.power == pytest.approx(
        d.stepped_wedge_power(
            d.stepped_wedge_design([6, 6, 6, 6]),
            difference=-10,
            total_sd=40,
            icc=0.05,
            cluster_period_size=30,
        ),
        abs=1e-12,
    )
    # pre/post: Var = σ² (1/2 + 1/2) / 15
    pp = d.power_check(n, "pre_post", facilities_clm=15, rounds_before=2, rounds_after=2)
    a = 10 / math.sqrt(0.95 * 1600 / 30 / 15)
    assert pp.power == pytest.approx(phi(a - Z975) + phi(-a - Z975), abs=1e-12)
    assert any("bias" in note for note in pp.notes)
    # ITS: OLS level change of the facilities' average, (X'X)⁻¹ from statsmodels
    import statsmodels.api as sm

    t = np.arange(8.0)
    post = (t >= 4).astype(float)
    x = np.column_stack([np.ones(8), t, post, (t - 4) * post])
    unscaled = sm.OLS(np.zeros(8), x).fit().normalized_cov_params[2, 2]
    its = d.power_check(n, "its", facilities_clm=5, rounds_before=4, rounds_after=4)
    a = 10 / math.sqrt(0.95 * 1600 / 30 / 5 * unscaled)
    assert its.power == pytest.approx(phi(a - Z975) + phi(-a - Z975), abs=1e-12)


def test_power_check_on_a_proportion_and_a_rate() -> None:
    respect = _scale("treated_with_respect")
    n = d.PlanningNumbers(respect, baseline=60, effect=5, icc=0.05, interviews_per_round=20)
    crt = d.power_check(n, "cluster_rct", facilities_clm=10, facilities_comparison=10)
    assert crt.power == pytest.approx(d.crt_power_binary(0.60, 0.65, 10, 20, 0.05), abs=1e-12)
    assert "+5 percentage points" in crt.sentence()
    sw = d.power_check(n, "stepped_wedge", facilities_clm=12, rounds_before=1, rounds_after=3)
    assert sw.power == pytest.approx(
        d.stepped_wedge_power(
            d.stepped_wedge_design([4, 4, 4]),
            p_control=0.6,
            p_intervention=0.65,
            icc=0.05,
            cluster_period_size=20,
        ),
        abs=1e-12,
    )
    rate = _scale("treatment_interruption")
    r = d.PlanningNumbers(
        rate, baseline=0.02, effect=-0.005, cv_between=0.25, exposure_per_round=3000
    )
    crt_rate = d.power_check(r, "cluster_rct", facilities_clm=8, facilities_comparison=8)
    assert crt_rate.power == pytest.approx(d.crt_power_rate(0.02, 0.015, 8, 3000, 0.25), abs=1e-12)
    assert "per person-month on ART" in crt_rate.sentence()


def test_power_below_target_is_a_warning_in_words() -> None:
    respect = _scale("treated_with_respect")
    n = d.PlanningNumbers(respect, baseline=60, effect=2, icc=0.05, interviews_per_round=20)
    check = d.power_check(
        n, "did", facilities_clm=6, facilities_comparison=6, rounds_before=1, rounds_after=1
    )
    assert not check.meets_target
    warning = check.warning()
    assert warning is not None and warning.startswith("Warning:")
    assert "+2 percentage points" in warning and "below the 80% target" in warning
    missed = round(100 * (1 - check.power))
    assert f"about {missed} in 100" in warning
    big = d.power_check(
        n, "did", facilities_clm=300, facilities_comparison=300, rounds_before=4, rounds_after=4
    )
    assert big.meets_target and big.warning() is None


def test_facilities_per_arm_and_round_labels() -> None:
    stock = _scale("medicine_stockout_experienced")
    n = d.PlanningNumbers(stock, baseline=20, effect=-10, icc=0.05, interviews_per_round=30)
    # normal: 7.85 · (0.16 + 0.09) · 2.45 / (30 · 0.01) = 16.03 → 17; t: 18 (0.799 at 17)
    assert d.facilities_per_arm(n, method="normal") == 17
    assert d.facilities_per_arm(n) == 18
    assert d.round_labels("2024Q3", 3) == ["2024Q3", "2024Q4", "2025Q1"]
    with pytest.raises(DesignInputError, match="2025Q1"):
        d.round_labels("2024-07", 3)


def test_rehearsal_data_carry_the_planned_effect() -> None:
    frame = d.sampling_frame()
    respect = _scale("treated_with_respect")
    n = d.PlanningNumbers(respect, baseline=60, effect=10, icc=0.02, interviews_per_round=40)
    clm = frame["facility_id"].iloc[::2].tolist()
    rounds = d.round_labels("2025Q1", 4)
    data = d.rehearsal_data(
        frame, n, clm_facilities=clm, rounds=rounds, start_round="2025Q3", seed=3
    )
    assert len(data) == len(frame) * 4 * 40
    means = data.groupby(["arm", data["round"] >= "2025Q3"])["value"].mean()
    did = (means["CLM", True] - means["CLM", False]) - (
        means["comparison", True] - means["comparison", False]
    )
    assert did == pytest.approx(0.10, abs=0.03)
    assert set(data["key_population"]) <= {"none", "msm", "sex_worker", "pwud"}
    with pytest.raises(DesignInputError, match="not in the facility list"):
        d.rehearsal_data(
            frame, n, clm_facilities=["nope"], rounds=rounds, start_round="2025Q3", seed=1
        )


# --------------------------------------------------------------------------- plans
def _plan(**changes: object) -> object:
    fields = dict(
        study_id="learner_study",
        question="Do clients feel more respected where CLM works?",
        design="did",
        primary_indicator="treated_with_respect",
        comparison_group="not_yet_monitored",
        first_round="2023Q1",
        last_round="2024Q4",
        estimator="twfe",
        model="two-way fixed effects, errors clustered by facility",
        minimum_detectable_effect=0.05,
        countries=("XA",),
    )
    fields.update(changes)
    return d.build_plan(**fields)


def test_build_plan_reports_problems_as_one_sentence() -> None:
    with pytest.raises(DesignInputError) as info:
        _plan(design="its")
    msg = str(info.value)
    assert msg == (
        "The analysis plan is not valid: design 'its' cannot use comparison_group "
        "'not_yet_monitored'."
    )
    with pytest.raises(DesignInputError, match="first_round round must look like 2024Q1"):
        _plan(first_round="2023-01")
    with pytest.raises(DesignInputError, match="colour is not a field"):
        _plan(colour="blue")


def test_drafts_registration_dates_and_no_overwrite(tmp_path: Path) -> None:
    from clm_research.plans import load_plan, plans_dir

    today = date(2025, 3, 12)
    plan = _plan(planned_power=0.62, power_warning="Warning: only 62%")
    saved, path = d.save_plan(plan, directory=tmp_path / "drafts", today=today)
    assert saved.registered_on == today and path == tmp_path / "drafts" / "learner_study.yaml"
    assert path.read_text().startswith("# DRAFT, not registered")
    back = load_plan(path)
    assert back.planned_power == 0.62 and back.power_warning == "Warning: only 62%"
    d.save_plan(plan, directory=tmp_path / "drafts", today=today)  # a draft may be rewritten
    # registering writes once, then refuses
    _, reg = d.save_plan(plan, register=True, directory=tmp_path / "plans", today=today)
    before = reg.read_bytes()
    with pytest.raises(DesignInputError, match="never overwritten"):
        d.save_plan(plan, register=True, directory=tmp_path / "plans", today=today)
    assert reg.read_bytes() == before
    # the project's registered demo plan is refused too, and left as it is
    demo = plans_dir() / "demo_wait_time.yaml"
    demo_bytes = demo.read_bytes()
    with pytest.raises(DesignInputError, match="never overwritten"):
        d.save_plan(_plan(study_id="demo_wait_time"), register=True, today=today)
    assert demo.read_bytes() == demo_bytes
    # dates: past needs a reason, future never
    past = _plan(registered_on=today - timedelta(days=30))
    with pytest.raises(DesignInputError, match="registered_on_reason"):
        d.save_plan(past, directory=tmp_path, today=today)
    with_reason = _plan(
        registered_on=today - timedelta(days=30),
        registered_on_reason="agreed on paper at the February meeting",
    )
    saved, path = d.save_plan(with_reason, directory=tmp_path, today=today)
    assert load_plan(path).registered_on_reason == "agreed on paper at the February meeting"
    with pytest.raises(DesignInputError, match="after today"):
        d.save_plan(_plan(registered_on=today + timedelta(days=1)), directory=tmp_path, today=today)
    assert d.drafts_dir() == plans_dir() / "drafts"
