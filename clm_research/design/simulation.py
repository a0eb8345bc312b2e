"""Power by simulation (seeded, with a progress bar) and the bias of naive designs.

Where no formula applies — interrupted time series with autocorrelation, difference-in-
differences with a few facilities — power is estimated by simulating many studies from a simple
data-generating process with a known effect, analysing each one as it would be analysed for
real, and counting how often the effect is found (``p < alpha``). The Monte-Carlo standard error
``sqrt(power (1 − power) / n_sims)`` says how precise the estimate is.

Data-generating processes (all Gaussian on the indicator's scale, e.g. minutes or a proportion
averaged over a facility-round; suitable for planning, not for analysis):

* parallel cluster-randomised: ``y_ij = μ + δ·arm_i + u_i + e_ij`` at client level,
  ``u_i ~ N(0, ICC·sd²)``, ``e_ij ~ N(0, (1 − ICC)·sd²)``; analysed by a t-test on facility means;
* interrupted time series: ``y_t = b0 + b1·t + b2·post_t + b3·(t − t0)·post_t + ε_t`` with AR(1)
  errors of marginal SD ``sd``; analysed by segmented regression with Newey–West errors;
* difference-in-differences: facility-round means ``y_it = μ + a_i + trend·t + δ·D_it + ē_it``,
  ``a_i ~ N(0, ICC·sd²)``, ``ē_it ~ N(0, (1 − ICC)·sd²/m)``; analysed by two-way fixed effects
  with facility-clustered errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypedDict, Unpack

import numpy as np
import pandas as pd

from clm_research.design.survey import z_value
from clm_research.errors import DesignInputError

if TYPE_CHECKING:
    from clm_research.evaluation.its import ITSResult

__all__ = [
    "SimulationPower",
    "simulate_crt_power",
    "simulate_its_power",
    "simulate_did_power",
    "did_power",
    "simulate_panel",
    "compare_designs_under_trend",
]


@dataclass(frozen=True)
class SimulationPower:
    """Result of a power simulation.

    Attributes
    ----------
    power
        Share of simulated studies with ``p < alpha``.
    mc_se
        Monte-Carlo standard error of ``power``.
    n_sims
        Number of simulated studies.
    alpha
        Significance level.
    mean_estimate
        Average estimated effect (close to the true effect when the estimator is unbiased).
    estimator
        Which analysis was simulated.
    type1_error
        Share of studies simulated with *no* effect that still gave ``p < alpha`` (should be
        close to ``alpha``; when it is much larger the analysis over-states significance and
        the power is flattering). ``None`` when not checked.
    """

    power: float
    mc_se: float
    n_sims: int
    alpha: float
    mean_estimate: float
    estimator: str
    type1_error: float | None = None

    @property
    def ci(self) -> tuple[float, float]:
        """95 % Monte-Carlo interval for the power (normal approximation, clipped to [0, 1])."""
        h = 1.959964 * self.mc_se
        return max(0.0, self.power - h), min(1.0, self.power + h)


def _result(
    pvals: list[float],
    estimates: list[float],
    alpha: float,
    estimator: str,
    null_pvals: list[float] | None = None,
) -> SimulationPower:
    p = np.asarray(pvals, dtype=float)
    power = float(np.mean(p < alpha))
    n = len(p)
    return SimulationPower(
        power=power,
        mc_se=math.sqrt(power * (1 - power) / n),
        n_sims=n,
        alpha=alpha,
        mean_estimate=float(np.mean(estimates)),
        estimator=estimator,
        type1_error=None if null_pvals is None else float(np.mean(np.asarray(null_pvals) < alpha)),
    )


def _progress(n: int, desc: str, progress: bool) -> Iterable[int]:
    from tqdm import tqdm

    return tqdm(range(n), desc=desc, disable=not progress, leave=False)


def _check_common(n_sims: int, alpha: float, icc: float | None = None) -> None:
    if n_sims < 1:
        raise DesignInputError(f"n_sims must be at least 1, got {n_sims!r}")
    if not 0 < alpha < 1:
        raise DesignInputError(f"alpha must be between 0 and 1, got {alpha!r}")
    if icc is not None and not 0 <= icc < 1:
        raise DesignInputError(f"icc must be in [0, 1), got {icc!r}")


def simulate_crt_power(
    difference: float,
    sd: float,
    clusters_per_arm: int,
    cluster_size: int,
    icc: float,
    *,
    alpha: float = 0.05,
    n_sims: int = 500,
    seed: int = 1,
    progress: bool = True,
) -> SimulationPower:
    """Power of a parallel cluster-randomised comparison by simulating client-level data.

    Each simulated study draws facility effects and client outcomes, averages clients per
    facility, and compares the arms by OLS on facility means (a two-sample t-test with
    ``2k − 2`` degrees of freedom: the analysis recommended with few clusters).

    Examples
    --------
    >>> r = simulate_crt_power(0.5, 1.0, 10, 20, 0.05, n_sims=100, seed=3, progress=False)
    >>> 0.85 < r.power <= 1.0
    True
    """
    import statsmodels.api as sm

    _check_common(n_sims, alpha, icc)
    if clusters_per_arm < 2 or cluster_size < 1:
        raise DesignInputError("need at least 2 facilities per arm and 1 interview per facility")
    rng = np.random.default_rng(seed)
    k, m = clusters_per_arm, cluster_size
    arm = np.repeat([0.0, 1.0], k)
    x = sm.add_constant(arm)
    tau, sig = math.sqrt(icc) * sd, math.sqrt(1 - icc) * sd
    pvals, ests = [], []
    for _ in _progress(n_sims, "cluster RCT", progress):
        u = rng.normal(0, tau, 2 * k)
        e = rng.normal(0, sig, (2 * k, m)).mean(axis=1)
        y = difference * arm + u + e
        res = sm.OLS(y, x).fit()
        pvals.append(float(res.pvalues[1]))
        ests.append(float(res.params[1]))
    return _result(pvals, ests, alpha, "t-test on facility means (OLS)")


def _its_series(
    rng: np.random.Generator,
    n_pre: int,
    n_post: int,
    level_change: float,
    slope_change: float,
    baseline: float,
    trend: float,
    sd: float,
    ar1: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = n_pre + n_post
    t = np.arange(n, dtype=float)
    post = (t >= n_pre).astype(float)
    innov = rng.normal(0, sd * math.sqrt(1 - ar1**2), n)
    eps = np.empty(n)
    eps[0] = rng.normal(0, sd)
    for i in range(1, n):
        eps[i] = ar1 * eps[i - 1] + innov[i]
    y = baseline + trend * t + level_change * post + slope_change * (t - n_pre) * post + eps
    return t, post, y


def simulate_its_power(
    n_pre: int,
    n_post: int,
    level_change: float,
    slope_change: float = 0.0,
    *,
    sd: float = 1.0,
    baseline: float = 0.0,
    trend: float = 0.0,
    ar1: float = 0.0,
    test: Literal["level", "slope"] = "level",
    alpha: float = 0.05,
    n_sims: int = 500,
    seed: int = 1,
    progress: bool = True,
    estimator: Literal["auto", "builtin", "evaluation"] = "auto",
    check_size: bool = True,
) -> SimulationPower:
    """Power of an interrupted time series (segmented regression) by simulation.

    Parameters
    ----------
    n_pre, n_post
        Time points before and after CLM starts (e.g. months).
    level_change, slope_change
        True change in level at the start and in slope per time point afterwards.
    sd
        SD of the series around its trend (marginal SD of the AR(1) errors).
    baseline, trend
        Level at the first point and the secular trend per time point.
    ar1
        Lag-1 autocorrelation of the errors (0 = independent; monthly data often 0.2–0.5).
    test
        Which change is tested: the level change or the slope change (state it in advance).
    alpha, n_sims, seed, progress
        Significance level, number of simulated series, random seed, show a progress bar.
    estimator
        ``"evaluation"``: :func:`clm_research.evaluation.its.segmented_regression` with
        ``family="ols"`` (the analysis the reports run); ``"builtin"``: the same model
        (OLS, Newey–West errors, same lag rule) fitted directly, faster; ``"auto"``: the
        evaluation module when it is importable.
    check_size
        Also simulate ``n_sims`` series without any effect and report the type I error.
        Newey–West errors are known to be too small in short series (24 points at ``ar1 = 0``
        reject a true null about 20 % of the time at ``alpha = 0.05``): read the power together
        with ``type1_error``.

    Examples
    --------
    >>> r = simulate_its_power(12, 12, 2.0, sd=1.0, n_sims=80, seed=5, progress=False,
    ...                        estimator="builtin")
    >>> r.power > 0.8, r.type1_error > 0.1
    (True, True)
    """
    import statsmodels.api as sm

    _check_common(n_sims, alpha)
    if n_pre < 3 or n_post < 3:
        raise DesignInputError("an interrupted time series needs at least 3 points on each side")
    if not -1 < ar1 < 1:
        raise DesignInputError(f"ar1 must be between -1 and 1, got {ar1!r}")
    if test not in ("level", "slope"):
        raise DesignInputError(f"test must be 'level' or 'slope', got {test!r}")
    segmented: Callable[..., ITSResult] | None = None
    if estimator in ("auto", "evaluation"):
        try:
            from clm_research.evaluation.its import segmented_regression as segmented
        except ImportError:
            if estimator == "evaluation":
                raise
    rng = np.random.default_rng(seed)
    n = n_pre + n_post
    lags = max(1, int(math.floor(4 * (n / 100) ** (2 / 9))))
    name = "level_change" if test == "level" else "slope_change"

    def run(level: float, slope: float, desc: str) -> tuple[list[float], list[float]]:
        pvals, ests = [], []
        for _ in _progress(n_sims, desc, progress):
            t, post, y = _its_series(rng, n_pre, n_post, level, slope, baseline, trend, sd, ar1)
            if segmented is not None:
                frame = pd.DataFrame({"t": t, "y": y, "post": post.astype(int)})
                res = segmented(
                    frame, "y", time="t", intervention="post", family="ols", maxlags=lags
                )
                eff = next(e for e in res.effects if e.name == name)
                pvals.append(float(eff.p_value))
                ests.append(float(eff.estimate))
            else:
                x = np.column_stack([np.ones(n), t, post, (t - n_pre) * post])
                fit = sm.OLS(y, x).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
                j = 2 if test == "level" else 3
                pvals.append(float(fit.pvalues[j]))
                ests.append(float(fit.params[j]))
        return pvals, ests

    pvals, ests = run(level_change, slope_change, "interrupted time series")
    null = run(0.0, 0.0, "ITS, no effect")[0] if check_size else None
    used = "evaluation.segmented_regression (ols)" if segmented is not None else "builtin OLS + HAC"
    return _result(pvals, ests, alpha, f"segmented regression, {test} change: {used}", null)


def _did_frame(
    rng: np.random.Generator,
    clusters_treated: int,
    clusters_control: int,
    periods_pre: int,
    periods_post: int,
    effect: float,
    sd: float,
    icc: float,
    cluster_period_size: int,
    trend: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    g = clusters_treated + clusters_control
    t_all = periods_pre + periods_post
    a = rng.normal(0, math.sqrt(icc) * sd, g)
    treated = np.r_[np.ones(clusters_treated), np.zeros(clusters_control)]
    period = np.arange(t_all, dtype=float)
    post = (period >= periods_pre).astype(float)
    d = np.outer(treated, post)
    noise = rng.normal(0, math.sqrt((1 - icc) * sd**2 / cluster_period_size), (g, t_all))
    y = a[:, None] + trend * period[None, :] + effect * d + noise
    cluster = np.repeat(np.arange(g), t_all)
    per = np.tile(np.arange(t_all), g)
    return y.ravel(), d.ravel(), cluster, per


def did_power(
    effect: float,
    *,
    sd: float,
    icc: float,
    cluster_period_size: float,
    clusters_treated: int,
    clusters_control: int,
    periods_pre: int,
    periods_post: int,
    alpha: float = 0.05,
) -> float:
    """Closed-form power of the two-way fixed-effects DiD under the simulation's model.

    With facility and period fixed effects and balanced data, the facility effects cancel and
    ``Var(δ̂) = σ² (1/G₁ + 1/G₀)(1/T_pre + 1/T_post)`` with ``σ² = (1 − ICC) sd² / m`` the
    variance of a facility-round mean around its facility's level.

    Examples
    --------
    σ² = 0.95 · 1600 / 30 = 50.67; Var = 50.67 · (2/20) · (2/4) = 2.533; SE = 1.592;
    power = Φ(5 / 1.592 − 1.96) = Φ(1.18) = 0.881:

    >>> round(did_power(5, sd=40, icc=0.05, cluster_period_size=30, clusters_treated=20,
    ...                 clusters_control=20, periods_pre=4, periods_post=4), 3)
    0.881
    """
    from statistics import NormalDist

    sigma2 = (1 - icc) * sd**2 / cluster_period_size
    var = (
        sigma2
        * (1 / clusters_treated + 1 / clusters_control)
        * (1 / periods_pre + 1 / periods_post)
    )
    d = abs(effect) / math.sqrt(var)
    z = z_value(alpha)
    n = NormalDist()
    return n.cdf(d - z) + n.cdf(-d - z)


def simulate_did_power(
    effect: float,
    *,
    sd: float,
    icc: float,
    cluster_period_size: int,
    clusters_treated: int,
    clusters_control: int,
    periods_pre: int,
    periods_post: int,
    trend: float = 0.0,
    alpha: float = 0.05,
    n_sims: int = 500,
    seed: int = 1,
    progress: bool = True,
    check_size: bool = False,
) -> SimulationPower:
    """Power of a difference-in-differences comparison (CLM vs comparison facilities).

    Facility-round means are simulated (see the module docstring) and each study is analysed
    by two-way fixed effects (facility and round) with errors clustered by facility and a
    t reference distribution with ``G − 1`` degrees of freedom. ``check_size=True`` also
    simulates studies without an effect and reports the type I error.

    Examples
    --------
    >>> r = simulate_did_power(5, sd=40, icc=0.05, cluster_period_size=30, clusters_treated=20,
    ...                        clusters_control=20, periods_pre=4, periods_post=4,
    ...                        n_sims=60, seed=2, progress=False)
    >>> 0.75 < r.power <= 1.0
    True
    """
    import statsmodels.api as sm

    _check_common(n_sims, alpha, icc)
    if min(clusters_treated, clusters_control) < 1 or min(periods_pre, periods_post) < 1:
        raise DesignInputError("need facilities in both groups and periods before and after")
    g = clusters_treated + clusters_control
    t_all = periods_pre + periods_post
    rng = np.random.default_rng(seed)

    def run(delta: float, desc: str) -> tuple[list[float], list[float]]:
        pvals, ests = [], []
        for _ in _progress(n_sims, desc, progress):
            y, d, cluster, per = _did_frame(
                rng,
                clusters_treated,
                clusters_control,
                periods_pre,
                periods_post,
                delta,
                sd,
                icc,
                cluster_period_size,
                trend,
            )
            x = np.column_stack([d, np.eye(g)[cluster], np.eye(t_all)[per][:, 1:]])
            fit = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": cluster}, use_t=True)
            pvals.append(float(fit.pvalues[0]))
            ests.append(float(fit.params[0]))
        return pvals, ests

    pvals, ests = run(effect, "difference-in-differences")
    null = run(0.0, "DiD, no effect")[0] if check_size else None
    return _result(pvals, ests, alpha, "two-way fixed effects, facility-clustered errors", null)


class PanelSettings(TypedDict, total=False):
    """The settings of :func:`simulate_panel` other than the effect, the trend and the seed."""

    clm_facilities: int
    comparison_facilities: int
    periods: int
    start_period: int
    baseline: float
    sd_facility: float
    sd_noise: float


def simulate_panel(
    *,
    clm_facilities: int = 20,
    comparison_facilities: int = 20,
    periods: int = 8,
    start_period: int = 4,
    effect: float = -10.0,
    trend: float = -3.0,
    baseline: float = 90.0,
    sd_facility: float = 8.0,
    sd_noise: float = 6.0,
    seed: int = 1,
) -> pd.DataFrame:
    """A facility × round panel with a secular trend and a CLM effect (for teaching).

    Returns
    -------
    pandas.DataFrame
        ``facility_id``, ``group`` (``"CLM"``/``"comparison"``), ``period`` (0-based),
        ``clm_active`` (0/1), ``outcome``, and ``counterfactual`` (the outcome without CLM).

    Examples
    --------
    >>> p = simulate_panel(seed=1)
    >>> p.shape, int(p["clm_active"].sum())
    ((320, 6), 80)
    """
    rng = np.random.default_rng(seed)
    g = clm_facilities + comparison_facilities
    level = baseline + rng.normal(0, sd_facility, g)
    rows = []
    for i in range(g):
        clm = i < clm_facilities
        for t in range(periods):
            active = int(clm and t >= start_period)
            cf = level[i] + trend * t + rng.normal(0, sd_noise)
            rows.append(
                {
                    "facility_id": f"F{i + 1:03d}",
                    "group": "CLM" if clm else "comparison",
                    "period": t,
                    "clm_active": active,
                    "outcome": cf + effect * active,
                    "counterfactual": cf,
                }
            )
    return pd.DataFrame(rows)


def compare_designs_under_trend(
    *,
    effect: float = -10.0,
    trend: float = -3.0,
    n_sims: int = 200,
    seed: int = 1,
    progress: bool = True,
    **panel: Unpack[PanelSettings],
) -> pd.DataFrame:
    """Bias of naive pre/post versus ITS and DiD when everything improves anyway.

    Each simulated panel (:func:`simulate_panel`) is analysed three ways:

    * **pre/post**: mean of CLM facilities after minus before (ignores the trend);
    * **ITS**: segmented regression of the CLM facilities' average series (level change);
    * **DiD**: (CLM after − before) − (comparison after − before).

    Further keyword arguments (:class:`PanelSettings`: facilities, periods, start period,
    baseline, spreads) are passed on to :func:`simulate_panel`.

    Returns
    -------
    pandas.DataFrame
        One row per design: ``design``, ``true_effect``, ``mean_estimate``, ``bias``,
        ``empirical_se``, ``rmse``.

    Examples
    --------
    With a trend of −3 per round and 4 rounds on each side, pre/post adds about
    −3 × 4 = −12 to the true effect (the difference of the mean rounds, 5.5 − 1.5 = 4):

    >>> t = compare_designs_under_trend(n_sims=50, seed=2, progress=False)
    >>> round(float(t.set_index("design").loc["pre/post", "bias"]))
    -12
    """
    import statsmodels.api as sm

    rng = np.random.default_rng(seed)
    est: dict[str, list[float]] = {
        "pre/post": [],
        "interrupted time series": [],
        "difference-in-differences": [],
    }
    start = int(panel.get("start_period", 4))
    periods = int(panel.get("periods", 8))
    if start < 2 or periods - start < 2:
        raise DesignInputError(
            "comparing the designs needs at least 2 rounds before and 2 from the start of CLM "
            f"(the time series fits a trend); got {start} before and {periods - start} after"
        )
    for _ in _progress(n_sims, "designs", progress):
        p = simulate_panel(effect=effect, trend=trend, seed=int(rng.integers(2**31)), **panel)
        clm = p[p["group"] == "CLM"]
        cmp_ = p[p["group"] == "comparison"]
        after = clm["period"] >= start
        pre_post = clm.loc[after, "outcome"].mean() - clm.loc[~after, "outcome"].mean()
        series = clm.groupby("period")["outcome"].mean()
        t = series.index.to_numpy(float)
        post = (t >= start).astype(float)
        x = np.column_stack([np.ones_like(t), t, post])
        its = float(sm.OLS(series.to_numpy(), x).fit().params[2])
        c_after = cmp_["period"] >= start
        did = pre_post - (
            cmp_.loc[c_after, "outcome"].mean() - cmp_.loc[~c_after, "outcome"].mean()
        )
        est["pre/post"].append(float(pre_post))
        est["interrupted time series"].append(its)
        est["difference-in-differences"].append(float(did))
    rows = []
    for design, values in est.items():
        v = np.asarray(values)
        rows.append(
            {
                "design": design,
                "true_effect": effect,
                "mean_estimate": float(v.mean()),
                "bias": float(v.mean() - effect),
                "empirical_se": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
                "rmse": float(np.sqrt(np.mean((v - effect) ** 2))),
            }
        )
    return pd.DataFrame(rows)
