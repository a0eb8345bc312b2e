"""Interrupted time series: segmented regression with level and slope change, single or controlled.

Follows Lopez Bernal, Cummins & Gasparrini (2017), *Int J Epidemiol* 46:348–355: counts are
modelled with a log link (Poisson, quasi-Poisson or negative binomial) and the population as an
offset; continuous outcomes with OLS and Newey–West (HAC) errors; seasonality with harmonic
(Fourier) terms; residual autocorrelation is checked (Ljung–Box, Durbin–Watson).

Model (``impact="level_and_slope"``)::

    g(E[y_t]) = b0 + b1·t + b2·post_t + b3·(t − t0)·post_t + harmonics + log(offset_t)

``t0`` is the first time point under the intervention, so ``b2`` is the change in level at
``t0`` and ``b3`` the change in slope per time unit afterwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from clm_research.evaluation._results import (
    Effect,
    EffectScale,
    EvaluationError,
    EvaluationResult,
    fit_guard,
    new_axes,
    numeric_column,
    require_columns,
)
from clm_research.evaluation._time import TimeAxis, time_axis

if TYPE_CHECKING:
    from collections.abc import Mapping

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from clm_research.framework import Framework

__all__ = [
    "ITSResult",
    "segmented_regression",
    "controlled_its",
    "harmonic_terms",
    "indicator_its",
    "MIN_POINTS_PER_SIDE",
]

Family = Literal["poisson", "quasipoisson", "negbin", "ols"]
Impact = Literal["level", "slope", "level_and_slope"]

#: Fewer points than this on either side of the interruption is allowed but flagged as underpowered.
MIN_POINTS_PER_SIDE = 12
#: Below this the model is not fitted at all.
_HARD_MIN_PER_SIDE = 3


def harmonic_terms(season: np.ndarray, n_pairs: int, period: int) -> pd.DataFrame:
    """Fourier terms ``sin(2πk·s/P)``, ``cos(2πk·s/P)`` for k = 1..n_pairs (like R ``tsModel::harmonic``)."""
    cols: dict[str, np.ndarray] = {}
    for k in range(1, n_pairs + 1):
        cols[f"sin{k}"] = np.sin(2 * np.pi * k * season / period)
        cols[f"cos{k}"] = np.cos(2 * np.pi * k * season / period)
    return pd.DataFrame(cols)


@dataclass(repr=False)
class ITSResult(EvaluationResult):
    """Result of :func:`segmented_regression` or :func:`controlled_its`.

    ``fitted`` holds, per row of the input, the time index, observed value, fitted value and
    the counterfactual (the model with the intervention terms set to zero), on the rate scale
    when an offset was given. ``model`` is the statsmodels results object.
    """

    family: str = "quasipoisson"
    fitted: pd.DataFrame = field(default_factory=pd.DataFrame)
    model: Any = None
    intervention_index: float = math.nan
    time_unit: str = "time unit"

    def plot(self, ax: Axes | None = None) -> Figure:
        """Observed points, fitted segments and the counterfactual (dashed) after the interruption."""
        fig, ax = new_axes(ax, figsize=(8, 4.5))
        f = self.fitted
        groups = f["series"].unique() if "series" in f else [None]
        colours = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
        for i, g in enumerate(groups):
            part = f if g is None else f[f["series"] == g]
            colour = colours[i % len(colours)]
            label = "" if g is None else f" ({g})"
            ax.scatter(
                part["time"],
                part["observed"],
                s=12,
                color=colour,
                alpha=0.6,
                label=f"observed{label}",
            )
            ax.plot(part["time"], part["fitted"], color=colour, label=f"fitted{label}")
            if "deseasonalised" in part:
                ax.plot(
                    part["time"], part["deseasonalised"], color=colour, linewidth=0.8, alpha=0.7
                )
            post = part[part["post"] == 1]
            if post["counterfactual"].notna().any():
                ax.plot(
                    post["time"],
                    post["counterfactual"],
                    color=colour,
                    linestyle="--",
                    label=f"counterfactual{label}",
                )
        ax.axvspan(self.intervention_index - 0.5, f["time"].max() + 0.5, color="0.92", zorder=0)
        ax.set_xlabel(self.time_unit)
        ax.set_ylabel("rate" if self.diagnostics.get("offset") else "outcome")
        ax.set_title(self.method)
        ax.legend(fontsize="small", frameon=False)
        return fig


# ----------------------------------------------------------------------------- design
def _prepare(
    data: pd.DataFrame,
    outcome: str,
    time: str,
    intervention: str | None,
    intervention_start: Any,
    offset: str | None,
    what: str,
) -> tuple[pd.DataFrame, TimeAxis, float]:
    require_columns(data, [outcome, time, intervention, offset], what)
    if intervention is None and intervention_start is None:
        raise EvaluationError(
            f"{what}: give intervention_start (a time label) or an intervention column"
        )
    df = data.reset_index(drop=True)
    axis = time_axis(df[time], what)
    y = numeric_column(df, outcome, what)
    if y.isna().any():
        bad = y.isna().idxmax()
        raise EvaluationError(
            f"{what}: outcome {outcome!r} missing in row {bad} ({time}={df[time][y.isna()].iloc[0]!r}); "
            "impute or restrict the series explicitly, rows are never dropped silently"
        )
    out = pd.DataFrame({"y": y.to_numpy(float), "t": axis.index})
    if axis.season is not None:
        out["season"] = axis.season
    if intervention is not None:
        post = numeric_column(df, intervention, what).to_numpy()
        if not set(np.unique(post)) <= {0.0, 1.0}:
            raise EvaluationError(f"{what}: intervention column {intervention!r} must be 0/1")
        if post.sum() == 0:
            raise EvaluationError(f"{what}: intervention column {intervention!r} is never 1")
        t0 = float(out["t"][post == 1].min())
    else:
        t0 = axis.convert(intervention_start)
    out["post"] = (out["t"] >= t0).astype(float)
    if offset is not None:
        off = numeric_column(df, offset, what).to_numpy(float)
        if np.any(~np.isfinite(off)) or np.any(off <= 0):
            bad = int(np.argmax(~np.isfinite(off) | (off <= 0)))
            raise EvaluationError(
                f"{what}: offset {offset!r} must be positive; row {bad} is {off[bad]!r}"
            )
        out["exposure"] = off
    return out, axis, t0


def _check_points(post: np.ndarray, what: str, notes: list[str]) -> tuple[int, int]:
    n_post = int(post.sum())
    n_pre = len(post) - n_post
    if min(n_pre, n_post) < _HARD_MIN_PER_SIDE:
        raise EvaluationError(
            f"{what}: too few time points ({n_pre} before, {n_post} after the interruption); "
            f"at least {_HARD_MIN_PER_SIDE} on each side are needed to estimate a level and slope change"
        )
    if min(n_pre, n_post) < MIN_POINTS_PER_SIDE:
        notes.append(
            f"Short series ({n_pre} points before, {n_post} after; fewer than {MIN_POINTS_PER_SIDE} on a side): "
            "the test is likely underpowered and a null result is weak evidence of no effect."
        )
    return n_pre, n_post


def _design(
    d: pd.DataFrame,
    t0: float,
    impact: Impact,
    harmonics: int,
    period: int | None,
    season_from_time: bool,
) -> pd.DataFrame:
    X = pd.DataFrame({"const": 1.0, "time": d["t"] - d["t"].min()}, index=d.index)
    if impact in ("level", "level_and_slope"):
        X["level_change"] = d["post"]
    if impact in ("slope", "level_and_slope"):
        X["slope_change"] = (d["t"] - t0) * d["post"]
    if harmonics:
        if period is None:
            raise EvaluationError("harmonic seasonality needs a period (e.g. period=12 for months)")
        season = (
            d["t"].to_numpy() if season_from_time or "season" not in d else d["season"].to_numpy()
        )
        X = pd.concat([X, harmonic_terms(season, harmonics, period).set_index(X.index)], axis=1)
    return X


def _fit(
    y: np.ndarray,
    X: pd.DataFrame,
    exposure: np.ndarray | None,
    family: Family,
    maxlags: int | None,
    what: str,
) -> tuple[Any, dict[str, Any]]:
    import statsmodels.api as sm

    diag: dict[str, Any] = {}
    offset = None if exposure is None else np.log(exposure)
    if family in ("poisson", "quasipoisson"):
        if np.any(y < 0) or np.any(np.abs(y - np.round(y)) > 1e-9):
            raise EvaluationError(f"{what}: family {family!r} needs non-negative whole counts")
        if y.sum() == 0:
            raise EvaluationError(f"{what}: the outcome is zero at every time point (no events)")
        model = sm.GLM(y, X, family=sm.families.Poisson(), offset=offset)
        res = fit_guard(what, model.fit, scale="X2" if family == "quasipoisson" else None)
        diag["dispersion"] = float(res.pearson_chi2 / res.df_resid)
        if family == "poisson" and diag["dispersion"] > 1.5:
            diag["warning"] = (
                "overdispersion (Pearson chi2/df > 1.5): prefer quasipoisson or negbin"
            )
        resid = np.asarray(res.resid_deviance)
    elif family == "negbin":
        if np.any(y < 0):
            raise EvaluationError(f"{what}: family 'negbin' needs non-negative counts")
        if y.sum() == 0:
            raise EvaluationError(f"{what}: the outcome is zero at every time point (no events)")
        model = sm.NegativeBinomial(y, X, offset=offset)
        res = fit_guard(what, model.fit, disp=0, maxiter=200)
        diag["alpha (NB2 overdispersion)"] = float(res.params.iloc[-1])
        mu = np.asarray(res.predict())
        resid = (y - mu) / np.sqrt(mu + res.params.iloc[-1] * mu**2)
    elif family == "ols":
        if offset is not None:
            raise EvaluationError(
                f"{what}: an offset needs a count family (poisson, quasipoisson, negbin)"
            )
        n = len(y)
        lags = maxlags if maxlags is not None else max(1, int(math.floor(4 * (n / 100) ** (2 / 9))))
        res = fit_guard(what, sm.OLS(y, X).fit, cov_type="HAC", cov_kwds={"maxlags": lags})
        diag["newey_west_maxlags"] = lags
        resid = np.asarray(res.resid)
    else:
        raise EvaluationError(
            f"{what}: unknown family {family!r}; use poisson, quasipoisson, negbin or ols"
        )
    diag.update(_autocorrelation(resid))
    return res, diag


def _autocorrelation(resid: np.ndarray) -> dict[str, Any]:
    from statsmodels.stats.diagnostic import acorr_ljungbox
    from statsmodels.stats.stattools import durbin_watson

    lag = int(max(1, min(12, len(resid) // 4)))
    lb = acorr_ljungbox(resid, lags=[lag])
    p = float(lb["lb_pvalue"].iloc[0])
    out: dict[str, Any] = {
        "durbin_watson": float(durbin_watson(resid)),
        f"ljung_box_p (lag {lag})": p,
        "lag1_autocorrelation": float(np.corrcoef(resid[:-1], resid[1:])[0, 1])
        if len(resid) > 2
        else math.nan,
    }
    out["autocorrelation_flag"] = bool(p < 0.05)
    return out


def _coef_effect(res: Any, name: str, label: str, scale: EffectScale, level: float) -> Effect:
    coef = float(res.params[name])
    se = float(res.bse[name])
    df = None
    return Effect.from_coefficient(name, label, coef, se, scale=scale, level=level, df=df)


def _linear_effect(
    res: Any, weights: dict[str, float], name: str, label: str, scale: EffectScale, level: float
) -> Effect:
    names = list(res.params.index)
    w = np.array([weights.get(n, 0.0) for n in names])
    coef = float(w @ res.params.to_numpy())
    cov = np.asarray(res.cov_params())
    se = float(math.sqrt(max(w @ cov @ w, 0.0)))
    return Effect.from_coefficient(name, label, coef, se, scale=scale, level=level)


def _predict(res: Any, X: pd.DataFrame, family: Family) -> np.ndarray:
    beta: np.ndarray = res.params.reindex(X.columns).to_numpy()
    eta: np.ndarray = X.to_numpy(float) @ beta
    return eta if family == "ols" else np.exp(eta)


# ----------------------------------------------------------------------------- public
def segmented_regression(
    data: pd.DataFrame,
    outcome: str,
    *,
    time: str = "period",
    intervention_start: Any = None,
    intervention: str | None = None,
    offset: str | None = None,
    family: Family = "quasipoisson",
    impact: Impact = "level_and_slope",
    harmonics: int = 0,
    period: int | None = None,
    season_from_time: bool = False,
    maxlags: int | None = None,
    rate_multiplier: float = 1.0,
    level: float = 0.95,
) -> ITSResult:
    """Fit a single-series interrupted time series (segmented regression).

    Parameters
    ----------
    data
        One row per time point (e.g. a monthly series summed over facilities).
    outcome
        Column with the outcome: counts for ``poisson``/``quasipoisson``/``negbin``, any number for ``ols``.
    time
        Time column: month labels ``YYYY-MM`` (canonical ``period``), rounds ``YYYYQn``, dates or numbers.
    intervention_start
        First time point under the intervention, in the time column's units (e.g. ``"2023-07"``).
    intervention
        Alternatively, a 0/1 column marking the intervention period.
    offset
        Exposure column (population, people on ART, tests); its log enters as an offset (count families).
    family
        ``quasipoisson`` (default; Poisson with Pearson-scaled errors), ``poisson``, ``negbin`` (NB2)
        or ``ols`` (Newey–West errors).
    impact
        The impact model stated in advance: ``level``, ``slope`` or ``level_and_slope``.
    harmonics
        Number of sine/cosine pairs for seasonality (0 = none; 2 as in the tutorial).
    period
        Season length in time steps (defaults to 12 for months, 4 for rounds).
    season_from_time
        Use the time index itself for the harmonics (numeric time) instead of the calendar month.
    maxlags
        Newey–West lag truncation for ``ols`` (default ``floor(4(n/100)^(2/9))``).
    rate_multiplier
        Scale of rates in ``fitted`` and the plot (e.g. ``1e5`` for per 100,000).
    level
        Confidence level.

    Returns
    -------
    ITSResult
        Effects ``level_change`` and/or ``slope_change`` (rate ratios for count families,
        differences for OLS) and, with both, ``effect_at_end`` (ratio or difference between the
        fitted and counterfactual values at the last time point).

    Raises
    ------
    EvaluationError
        Missing columns, missing outcome values, fewer than 3 points on a side, no events.
    """
    what = "segmented_regression"
    d, axis, t0 = _prepare(data, outcome, time, intervention, intervention_start, offset, what)
    notes: list[str] = []
    n_pre, n_post = _check_points(d["post"].to_numpy(), what, notes)
    if harmonics and period is None:
        period = axis.period
    X = _design(d, t0, impact, harmonics, period, season_from_time or axis.season is None)
    exposure = d["exposure"].to_numpy() if "exposure" in d else None
    res, diag = _fit(d["y"].to_numpy(), X, exposure, family, maxlags, what)
    diag.update(
        {
            "n_pre": n_pre,
            "n_post": n_post,
            "family": family,
            "impact": impact,
            "harmonic_pairs": harmonics,
            "offset": offset or "",
        }
    )
    if diag.get("autocorrelation_flag"):
        notes.append(
            "Residual autocorrelation detected (Ljung–Box p < 0.05): CIs may be too narrow; "
            "consider family='ols' with Newey–West errors or more seasonal terms."
        )
    if "warning" in diag:
        notes.append(str(diag["warning"]))

    ratio: EffectScale = "difference" if family == "ols" else "rate_ratio"
    effects: list[Effect] = []
    if "level_change" in X:
        effects.append(
            _coef_effect(res, "level_change", "Level change at the interruption", ratio, level)
        )
    if "slope_change" in X:
        effects.append(
            _coef_effect(res, "slope_change", f"Change in slope per {axis.unit}", ratio, level)
        )
    if "level_change" in X and "slope_change" in X:
        t_end = float(d["t"].max())
        effects.append(
            _linear_effect(
                res,
                {"level_change": 1.0, "slope_change": t_end - t0},
                "effect_at_end",
                "Effect at the end of the series (fitted vs counterfactual)",
                ratio,
                level,
            )
        )
    effects.append(
        _coef_effect(res, "time", f"Pre-intervention trend per {axis.unit}", ratio, level)
    )

    fitted = _fitted_frame(d, X, res, family, rate_multiplier, harmonics)
    return ITSResult(
        method=f"Interrupted time series ({family})",
        effects=tuple(effects),
        diagnostics=diag,
        n_obs=len(d),
        notes=tuple(notes),
        family=family,
        fitted=fitted,
        model=res,
        intervention_index=t0,
        time_unit=axis.unit,
    )


def _fitted_frame(
    d: pd.DataFrame,
    X: pd.DataFrame,
    res: Any,
    family: Family,
    mult: float,
    harmonics: int,
    series: str | None = None,
    zero: tuple[str, ...] = ("level_change", "slope_change"),
) -> pd.DataFrame:
    # predictions leave the offset out, so with an exposure they are rates per unit of exposure;
    # observed counts are turned into the same rates; both are shown per ``mult`` units
    expo = d["exposure"].to_numpy() if "exposure" in d else None
    factor = mult if expo is not None else 1.0
    observed = d["y"].to_numpy() / expo * mult if expo is not None else d["y"].to_numpy()
    fit = _predict(res, X, family) * factor
    Xcf = X.copy()
    for c in zero:
        if c in Xcf:
            Xcf[c] = 0.0
    cf = _predict(res, Xcf, family) * factor
    out = pd.DataFrame(
        {
            "time": d["t"].to_numpy(),
            "post": d["post"].to_numpy(),
            "observed": observed,
            "fitted": fit,
            "counterfactual": np.where(d["post"].to_numpy() == 1, cf, np.nan),
        }
    )
    if harmonics:
        Xd = X.copy()
        for c in X.columns:
            if c.startswith(("sin", "cos")):
                Xd[c] = X[c].mean()
        out["deseasonalised"] = _predict(res, Xd, family) * factor
    if series is not None:
        out["series"] = series
    return out


def controlled_its(
    data: pd.DataFrame,
    outcome: str,
    *,
    group: str,
    treated: Any,
    time: str = "period",
    intervention_start: Any = None,
    offset: str | None = None,
    family: Family = "quasipoisson",
    impact: Impact = "level_and_slope",
    harmonics: int = 0,
    period: int | None = None,
    season_from_time: bool = False,
    maxlags: int | None = None,
    rate_multiplier: float = 1.0,
    level: float = 0.95,
) -> ITSResult:
    """Controlled interrupted time series: the intervention series against a comparison series.

    Both series share the time trend, seasonality and the period effects; the effects reported are
    the *differential* level and slope changes (intervention minus comparison), which remove
    shocks common to both series (Lopez Bernal et al. 2018, *J Clin Epidemiol*).

    Parameters
    ----------
    data
        Long format: one row per series × time point.
    group
        Column naming the series; ``treated`` is the value of the intervention series. Every other
        value is pooled as the comparison.
    Other parameters
        As in :func:`segmented_regression`.

    Raises
    ------
    EvaluationError
        No comparison series, the two series on different time points, too few points.
    """
    what = "controlled_its"
    require_columns(data, [group], what)
    if intervention_start is None:
        raise EvaluationError(f"{what}: give intervention_start (a time label)")
    is_t = (data[group] == treated).to_numpy()
    if not is_t.any():
        raise EvaluationError(
            f"{what}: no rows with {group} == {treated!r} (the intervention series)"
        )
    if is_t.all():
        raise EvaluationError(
            f"{what}: no comparison series (every row has {group} == {treated!r})"
        )
    d, axis, t0 = _prepare(data, outcome, time, None, intervention_start, offset, what)
    d["g"] = is_t.astype(float)
    notes: list[str] = []
    n_pre, n_post = _check_points(d.loc[d["g"] == 1, "post"].to_numpy(), what, notes)
    _check_points(d.loc[d["g"] == 0, "post"].to_numpy(), what + " (comparison series)", notes)
    if harmonics and period is None:
        period = axis.period
    base = _design(d, t0, impact, harmonics, period, season_from_time or axis.season is None)
    X = base.copy()
    X["group"] = d["g"]
    X["group:time"] = d["g"] * base["time"]
    for c in ("level_change", "slope_change"):
        if c in base:
            X[f"group:{c}"] = d["g"] * base[c]
    exposure = d["exposure"].to_numpy() if "exposure" in d else None
    res, diag = _fit(d["y"].to_numpy(), X, exposure, family, maxlags, what)
    diag.update(
        {
            "n_pre": n_pre,
            "n_post": n_post,
            "family": family,
            "impact": impact,
            "harmonic_pairs": harmonics,
            "offset": offset or "",
            "n_comparison_rows": int((d["g"] == 0).sum()),
        }
    )
    if diag.get("autocorrelation_flag"):
        notes.append(
            "Residual autocorrelation detected (Ljung–Box p < 0.05): CIs may be too narrow."
        )
    ratio: EffectScale = "difference" if family == "ols" else "rate_ratio"
    effects: list[Effect] = []
    if "group:level_change" in X:
        effects.append(
            _coef_effect(
                res, "group:level_change", "Level change, intervention vs comparison", ratio, level
            )
        )
    if "group:slope_change" in X:
        effects.append(
            _coef_effect(
                res,
                "group:slope_change",
                f"Slope change per {axis.unit}, intervention vs comparison",
                ratio,
                level,
            )
        )
    effects.append(
        _coef_effect(res, "group:time", "Pre-intervention trend difference", ratio, level)
    )
    # rename effects to stable names
    effects = [replace(e, name=e.name.replace("group:", "differential_")) for e in effects]
    parts = []
    for g, label in ((1.0, str(treated)), (0.0, "comparison")):
        m = (d["g"] == g).to_numpy()
        zero = ("group:level_change", "group:slope_change") if g == 1.0 else ()
        parts.append(
            _fitted_frame(d[m], X[m], res, family, rate_multiplier, harmonics, label, zero)
        )
    return ITSResult(
        method=f"Controlled interrupted time series ({family})",
        effects=tuple(effects),
        diagnostics=diag,
        n_obs=len(d),
        notes=tuple(notes),
        family=family,
        fitted=pd.concat(parts, ignore_index=True),
        model=res,
        intervention_index=t0,
        time_unit=axis.unit,
    )


def indicator_its(
    framework: Framework,
    tables: Mapping[str, pd.DataFrame],
    indicator_id: str = "treatment_interruption",
    *,
    controlled: bool = False,
    family: str = "",
    harmonics: int | None = None,
    first_round: str | None = None,
    last_round: str | None = None,
    level: float = 0.95,
) -> ITSResult:
    """Interrupted time series of one framework indicator at the first CLM wave's facilities.

    Level and slope change at the wave's start (Lopez Bernal et al. 2017): quasi-Poisson with
    the denominator as offset for counts and proportions from counts (two harmonic pairs for
    monthly seasonality), OLS with Newey–West errors for means; with ``controlled=True`` the
    never-monitored facilities' series is the comparison (differential changes).

    Returns
    -------
    ITSResult
        ``attrs``-like details in ``diagnostics``: ``series`` (facilities in each series),
        ``intervention_start``.

    Raises
    ------
    EvaluationError
        When the series is too short on a side, or the indicator has no time series.
    """
    from clm_research.errors import CLMError
    from clm_research.evaluation.panels import interrupted_series

    try:
        s = interrupted_series(
            framework, tables, indicator_id, first_round=first_round, last_round=last_round
        )
    except CLMError as e:
        raise EvaluationError(str(e)) from None
    kind, t0 = s.attrs["kind"], s.attrs["intervention_start"]
    fam = family or ("quasipoisson" if kind == "count" else "ols")
    counts = fam != "ols"
    monthly = s.attrs["time"] == "period"
    pairs = (2 if monthly else 0) if harmonics is None else harmonics
    ind = framework.indicator(indicator_id)
    mult = 100.0 if ind.type == "proportion" else (1000.0 if ind.type == "rate" else 1.0)
    kw: dict[str, Any] = {
        "time": "time",
        "intervention_start": t0,
        "family": fam,
        "harmonics": pairs,
        "period": (12 if monthly else 4) if pairs else None,
        "level": level,
    }
    if counts:
        kw.update(offset="exposure", rate_multiplier=mult)
        outcome = "count"
    else:
        outcome = "value"
    what = f"{indicator_id}: interrupted time series"
    clm = s[s["group"] == "clm"].reset_index(drop=True)
    if clm.empty:
        raise EvaluationError(f"{what}: no data from the first CLM wave's facilities")
    if controlled:
        if not (s["group"] == "comparison").any():
            raise EvaluationError(f"{what}: no never-monitored facilities to compare with")
        res = controlled_its(s, outcome, group="group", treated="clm", **kw)
    else:
        res = segmented_regression(clm, outcome, **kw)
    res.diagnostics.update(
        {
            "indicator": indicator_id,
            "intervention_start": t0,
            "clm_facilities (first wave)": s.attrs["n_facilities"],
            "comparison_facilities": s.attrs["n_comparison"] if controlled else 0,
            "rate_multiplier": mult if counts else 1.0,
        }
    )
    return res
