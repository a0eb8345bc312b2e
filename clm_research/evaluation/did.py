"""Difference-in-differences for facility panels with staggered CLM roll-out.

Three estimators, all clustered by facility:

* :func:`twfe_did` — two-way fixed effects (facility and period effects) with one treatment
  dummy. Familiar, but under staggered adoption with effects that change with exposure it
  compares late adopters with early adopters already treated ("forbidden comparisons") and can
  be badly biased, even of the wrong sign (Goodman-Bacon 2021; de Chaisemartin & D'Haultfœuille 2020).
* :func:`event_study` — TWFE with leads and lags of adoption and a joint Wald test that the
  leads are zero (pre-trends).
* :func:`callaway_santanna` — the heterogeneity-robust estimator of Callaway & Sant'Anna (2021,
  *J Econometrics* 225:200–230): group-time ATTs from 2×2 comparisons with not-yet-treated (or
  never-treated) facilities only, aggregated to a simple ATT and an event-time profile.
  This is the estimator the reports use.

Inference for Callaway–Sant'Anna uses the analytic influence function of each ATT(g,t)
(unconditional parallel trends, no covariates), including the term for the estimated
aggregation weights, so standard errors are clustered at the facility and deterministic (no
bootstrap seed, and cheap enough for the 200-replicate simulation study that checks coverage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd

from clm_research.evaluation._results import (
    Effect,
    EvaluationError,
    EvaluationResult,
    fit_guard,
    new_axes,
    numeric_column,
    require_columns,
)
from clm_research.evaluation._time import TimeAxis, time_axis

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DiDResult",
    "EventStudyResult",
    "CallawaySantAnnaResult",
    "facility_panel",
    "twfe_did",
    "event_study",
    "callaway_santanna",
    "compare_did",
]


# ----------------------------------------------------------------------------- results
@dataclass(repr=False)
class DiDResult(EvaluationResult):
    """Result of :func:`twfe_did`; ``means`` holds the mean outcome by adoption cohort and period."""

    model: Any = None
    means: pd.DataFrame = field(default_factory=pd.DataFrame)

    def plot(self, ax: Axes | None = None) -> Figure:
        """Mean outcome over time by adoption cohort (never-treated facilities in grey)."""
        fig, ax = new_axes(ax, figsize=(8, 4.5))
        for key, part in self.means.groupby("cohort", sort=True, dropna=False):
            cohort = cast(float, key)  # first period under CLM as a time index; NaN = never
            never = not np.isfinite(cohort)
            ax.plot(
                part["time"],
                part["mean"],
                color="0.5" if never else None,
                linewidth=2 if never else 1,
                label="comparison" if never else f"adopted {cohort:g}",
            )
            if not never:
                ax.axvline(cohort, color="0.85", linewidth=0.8, zorder=0)
        ax.set_title(self.method)
        ax.set_xlabel("time index")
        ax.legend(fontsize="x-small", frameon=False, ncol=2)
        return fig


@dataclass(repr=False)
class EventStudyResult(EvaluationResult):
    """Result of :func:`event_study` or the dynamic profile of :func:`callaway_santanna`.

    ``profile`` has one row per event time ``e`` (0 = first period under CLM) with
    estimate, ci_low, ci_high, p_value and whether the row is a lead (pre-period).
    """

    profile: pd.DataFrame = field(default_factory=pd.DataFrame)
    model: Any = None

    def plot(self, ax: Axes | None = None) -> Figure:
        """Estimates by event time with their CIs; leads (pre-trends) in grey."""
        fig, ax = new_axes(ax, figsize=(8, 4.5))
        p = self.profile
        for pre, colour in ((True, "0.5"), (False, "tab:blue")):
            part = p[p["pre"] == pre]
            ax.errorbar(
                part["event_time"],
                part["estimate"],
                yerr=[part["estimate"] - part["ci_low"], part["ci_high"] - part["estimate"]],
                fmt="o",
                color=colour,
                capsize=2,
                label="before CLM" if pre else "after CLM start",
            )
        ax.axhline(0, color="0.4", linewidth=0.8)
        ax.axvline(-0.5, color="0.4", linestyle="--", linewidth=0.8)
        ax.set_xlabel("periods since CLM start")
        ax.set_ylabel("effect on outcome")
        ax.set_title(self.method)
        ax.legend(fontsize="small", frameon=False)
        return fig


@dataclass(repr=False)
class CallawaySantAnnaResult(EventStudyResult):
    """Result of :func:`callaway_santanna`: ``group_time`` holds every ATT(g,t) with its CI."""

    group_time: pd.DataFrame = field(default_factory=pd.DataFrame)


# ----------------------------------------------------------------------------- panel
@dataclass
class _Panel:
    unit: np.ndarray  # integer codes 0..N-1 per row
    units: pd.Index
    t: np.ndarray  # numeric time index per row
    times: np.ndarray  # sorted unique time values
    y: np.ndarray
    cohort_of_unit: np.ndarray  # first treated time per unit (inf = never)
    axis: TimeAxis
    w: np.ndarray | None


def _cohort_index(values: pd.Series, axis: TimeAxis, what: str) -> np.ndarray:
    """First treated time per row in the panel's time units (``inf`` = never treated)."""
    out = np.full(len(values), np.inf)
    present = values.notna().to_numpy()
    if not present.any():
        return out
    v = values[present]
    if pd.api.types.is_datetime64_any_dtype(v) or (
        axis.kind in ("month", "quarter", "date")
        and not pd.api.types.is_numeric_dtype(v)
        and not v.astype(str).str.match(r"^\d{4}(-\d{2}|Q\d)$").all()
    ):
        dates = pd.to_datetime(v, errors="coerce")
        if dates.isna().any():
            bad = dates.isna().idxmax()
            raise EvaluationError(
                f"{what}: adoption value {values[dates.isna()].iloc[0]!r} in row {bad!r} is not a date"
            )
        if axis.kind == "quarter":
            idx = dates.dt.year * 4 + (dates.dt.month - 1) // 3
        elif axis.kind in ("month", "date"):
            idx = dates.dt.year * 12 + dates.dt.month - 1
        else:
            raise EvaluationError(f"{what}: adoption dates need a month/round/date time column")
        out[present] = idx.to_numpy(float)
    else:
        out[present] = axis.convert_many(v)
    return out


def _panel(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    cohort: str | None,
    treated: str | None,
    weights: str | None,
    what: str,
) -> _Panel:
    require_columns(data, [outcome, unit, time, cohort, treated, weights], what)
    if cohort is None and treated is None:
        raise EvaluationError(
            f"{what}: give cohort (first period under CLM, empty = comparison) or treated (0/1)"
        )
    df = data.reset_index(drop=True)
    if df.duplicated([unit, time]).any():
        row = int(np.argmax(df.duplicated([unit, time]).to_numpy()))  # df has a RangeIndex
        raise EvaluationError(
            f"{what}: duplicate {unit} × {time} in row {row} "
            f"({df[unit].iloc[row]!r}, {df[time].iloc[row]!r})"
        )
    axis = time_axis(df[time], what)
    y = numeric_column(df, outcome, what).to_numpy(float)
    codes, units = pd.factorize(df[unit], sort=True)
    if cohort is not None:
        c = _cohort_index(df[cohort], axis, what)
        per_unit = pd.Series(c).groupby(codes).agg(["min", "max"])
        inconsistent = per_unit.index[per_unit["min"] != per_unit["max"]]
        if len(inconsistent):
            raise EvaluationError(
                f"{what}: {cohort!r} differs between rows of {unit} {units[inconsistent[0]]!r}"
            )
        cohort_of_unit = per_unit["min"].to_numpy(float)
    else:
        assert treated is not None  # checked above: cohort or treated is given
        d = numeric_column(df, treated, what).to_numpy()
        first = pd.Series(np.where(d == 1, axis.index, np.inf)).groupby(codes).min()
        cohort_of_unit = first.to_numpy(float)
        # treatment must be absorbing (once on, stays on)
        on = axis.index >= cohort_of_unit[codes]
        if np.any(on & (d == 0)):
            row = int(np.argmax(on & (d == 0)))
            raise EvaluationError(
                f"{what}: treatment switches off in row {row} ({df[unit].iloc[row]!r}); "
                "staggered DiD needs CLM to stay on once started"
            )
    w = None
    if weights is not None:
        w = numeric_column(df, weights, what).to_numpy(float)
    n_units = len(units)
    if n_units < 2:
        raise EvaluationError(f"{what}: a single facility (cluster); DiD needs several facilities")
    return _Panel(codes, units, axis.index, np.unique(axis.index), y, cohort_of_unit, axis, w)


def facility_panel(
    routine: pd.DataFrame,
    facilities: pd.DataFrame,
    numerator: str,
    denominator: str | None = None,
    *,
    unit: str = "facility_id",
    time: str = "period",
    start: str = "clm_start",
) -> pd.DataFrame:
    """Build a facility × period panel from the canonical ``routine`` and ``facilities`` tables.

    Parameters
    ----------
    routine
        Canonical routine table (facility × month).
    facilities
        Canonical facilities table; ``clm_start`` empty marks a comparison facility.
    numerator, denominator
        Outcome = numerator ÷ denominator (e.g. ``vl_suppressed`` / ``vl_tested``) or the
        numerator alone. A zero denominator gives a missing outcome (reported, not dropped).

    Returns
    -------
    DataFrame
        Columns ``facility_id``, ``period``, ``outcome``, ``weight`` (the denominator or 1),
        ``clm_start`` and ``treated`` (1 from the month CLM started).
    """
    what = "facility_panel"
    require_columns(routine, [unit, time, numerator, denominator], what)
    require_columns(facilities, [unit, start], what)
    unknown = set(routine[unit]) - set(facilities[unit])
    if unknown:
        raise EvaluationError(
            f"{what}: routine rows refer to unknown facilities {sorted(unknown)[:5]}"
        )
    df = routine[[unit, time, numerator] + ([denominator] if denominator else [])].merge(
        facilities[[unit, start]], on=unit, how="left"
    )
    num = numeric_column(df, numerator, what)
    if denominator:
        den = numeric_column(df, denominator, what)
        df["outcome"] = np.where(den > 0, num / den.where(den > 0), np.nan)
        df["weight"] = den
    else:
        df["outcome"] = num
        df["weight"] = 1.0
    axis = time_axis(df[time], what)
    first = _cohort_index(df[start], axis, what)
    df["treated"] = (axis.index >= first).astype(int)
    return df[[unit, time, "outcome", "weight", start, "treated"]]


# ----------------------------------------------------------------------------- TWFE
def _demean_two_way(
    arrs: np.ndarray,
    unit: np.ndarray,
    tcode: np.ndarray,
    w: np.ndarray,
    tol: float = 1e-11,
    max_iter: int = 10_000,
) -> np.ndarray:
    """Sweep out facility and period means (weighted alternating projections; exact in one pass when balanced)."""
    out = arrs.copy()
    wu = np.bincount(unit, weights=w)
    wt = np.bincount(tcode, weights=w)
    for _ in range(max_iter):
        prev = out.copy()
        for codes, tot in ((unit, wu), (tcode, wt)):
            for j in range(out.shape[1]):
                means = np.bincount(codes, weights=w * out[:, j]) / tot
                out[:, j] -= means[codes]
        if np.max(np.abs(out - prev)) < tol:
            break
    return out


def _twfe_fit(p: _Panel, D: np.ndarray, what: str) -> Any:
    """OLS/WLS of y on D after absorbing facility and period fixed effects; SEs clustered by facility."""
    import statsmodels.api as sm

    ok = np.isfinite(p.y)
    w = np.ones(ok.sum()) if p.w is None else p.w[ok]
    if np.any(w < 0):
        raise EvaluationError(f"{what}: negative weights")
    unit = pd.factorize(p.unit[ok])[0]
    tcode = pd.factorize(p.t[ok])[0]
    Z = _demean_two_way(np.column_stack([p.y[ok], D[ok]]), unit, tcode, w)
    if np.any(np.sqrt(np.sum(w[:, None] * Z[:, 1:] ** 2, axis=0)) < 1e-10):
        raise EvaluationError(
            f"{what}: the treatment indicator is absorbed by the fixed effects "
            "(no variation within facilities over time)"
        )
    model = sm.WLS(Z[:, 0], Z[:, 1:], weights=w)
    return fit_guard(
        what, model.fit, cov_type="cluster", cov_kwds={"groups": p.unit[ok]}, use_t=True
    )


def _cohort_means(p: _Panel) -> pd.DataFrame:
    df = pd.DataFrame({"cohort": p.cohort_of_unit[p.unit], "time": p.t, "y": p.y})
    return df.groupby(["cohort", "time"], dropna=False)["y"].mean().rename("mean").reset_index()


def _comparison_check(p: _Panel, what: str) -> None:
    c = p.cohort_of_unit
    treated_in_window = np.isfinite(c) & (c <= p.times.max())
    if not treated_in_window.any():
        raise EvaluationError(
            f"{what}: no facility starts CLM within the panel's periods (nothing to evaluate)"
        )
    if np.all(np.isfinite(c) & (c <= p.times.min())):
        raise EvaluationError(
            f"{what}: every facility is under CLM from the first period (no comparison units)"
        )


def twfe_did(
    panel: pd.DataFrame,
    outcome: str = "outcome",
    *,
    unit: str = "facility_id",
    time: str = "period",
    cohort: str | None = "clm_start",
    treated: str | None = None,
    weights: str | None = None,
    level: float = 0.95,
) -> DiDResult:
    """Two-way fixed-effects DiD: ``y_it = a_i + l_t + b·D_it + e_it``, SEs clustered by facility.

    Parameters
    ----------
    panel
        Facility × period rows (see :func:`facility_panel`).
    outcome
        Outcome column.
    unit, time
        Facility id and period columns (months, rounds, dates or numbers).
    cohort
        Column with the adoption date/period (empty = comparison facility). Ignored when
        ``treated`` is given.
    treated
        Alternatively a 0/1 column, on from the first period under CLM.
    weights
        Optional weights (e.g. the denominator of a proportion) for WLS.

    Returns
    -------
    DiDResult
        One effect ``att_twfe`` (difference on the outcome scale), t-based CI with G − 1 df.

    Notes
    -----
    Under staggered adoption with effects that grow with exposure this estimate is biased;
    report :func:`callaway_santanna` as the main estimate and this one for comparison.
    """
    what = "twfe_did"
    p = _panel(panel, outcome, unit, time, None if treated else cohort, treated, weights, what)
    _comparison_check(p, what)
    D = (p.t >= p.cohort_of_unit[p.unit]).astype(float)
    res = _twfe_fit(p, D[:, None], what)
    G = len(p.units)
    eff = Effect.from_coefficient(
        "att_twfe",
        "CLM effect (two-way fixed effects)",
        float(res.params[0]),
        float(res.bse[0]),
        level=level,
        df=G - 1,
    )
    n_missing = int((~np.isfinite(p.y)).sum())
    notes = [
        "Two-way FE is biased under staggered roll-out when effects change with exposure; "
        "compare with the Callaway–Sant'Anna estimate."
    ]
    if n_missing:
        notes.append(
            f"{n_missing} facility-periods with a missing outcome were left out of the fit."
        )
    return DiDResult(
        method="Difference-in-differences (two-way fixed effects)",
        effects=(eff,),
        diagnostics={
            "n_facilities": G,
            "n_periods": len(p.times),
            "n_missing_outcome": n_missing,
            "n_treated_facilities": int(np.isfinite(p.cohort_of_unit).sum()),
            "cluster_df": G - 1,
        },
        n_obs=int(np.isfinite(p.y).sum()),
        notes=tuple(notes),
        model=res,
        means=_cohort_means(p),
    )


# ----------------------------------------------------------------------------- event study
def event_study(
    panel: pd.DataFrame,
    outcome: str = "outcome",
    *,
    unit: str = "facility_id",
    time: str = "period",
    cohort: str | None = "clm_start",
    treated: str | None = None,
    leads: int = 4,
    lags: int = 8,
    weights: str | None = None,
    level: float = 0.95,
) -> EventStudyResult:
    """TWFE event study with ``leads`` pre-period and ``lags`` post-period indicators (e = −1 omitted).

    Event times beyond the window are binned into the end points. The pre-trend test is a joint
    Wald F-test that every lead (e ≤ −2) is zero, with facility-clustered covariance.

    Returns
    -------
    EventStudyResult
        Primary effect ``mean_post`` (average of the lag coefficients e = 0..lags), then
        ``pretrend_test`` diagnostics and the per-event-time ``profile``.
    """
    what = "event_study"
    if leads < 1 or lags < 0:
        raise EvaluationError(f"{what}: need leads >= 1 and lags >= 0")
    p = _panel(panel, outcome, unit, time, None if treated else cohort, treated, weights, what)
    _comparison_check(p, what)
    g = p.cohort_of_unit[p.unit]
    ev = np.where(np.isfinite(g), np.clip(p.t - g, -leads - 1, lags), np.nan)
    event_times = [e for e in range(-leads - 1, lags + 1) if e != -1]
    cols = [(ev == e).astype(float) for e in event_times]
    D = np.column_stack(cols)
    keep = np.asarray(D.any(axis=0))
    event_times = [e for e, k in zip(event_times, keep, strict=True) if k]
    D = D[:, keep]
    res = _twfe_fit(p, D, what)
    from scipy import stats

    G = len(p.units)
    crit = float(stats.t.ppf(0.5 + level / 2, G - 1))
    k = len(event_times)
    est = np.asarray(res.params[:k])
    se = np.asarray(res.bse[:k])
    prof = pd.DataFrame(
        {
            "event_time": event_times,
            "estimate": est,
            "se": se,
            "ci_low": est - crit * se,
            "ci_high": est + crit * se,
            "p_value": 2 * stats.t.sf(np.abs(est / np.where(se > 0, se, np.nan)), G - 1),
            "pre": [e < 0 for e in event_times],
            "binned": [e in (-leads - 1, lags) for e in event_times],
        }
    )
    lead_idx = [i for i, e in enumerate(event_times) if e < -1]
    diag: dict[str, Any] = {"n_facilities": G, "leads": leads, "lags": lags}
    notes: list[str] = []
    if lead_idx:
        R = np.zeros((len(lead_idx), len(res.params)))
        for r, i in enumerate(lead_idx):
            R[r, i] = 1.0
        wt = res.wald_test(R, use_f=True, scalar=True)
        diag["pretrend_F"] = float(wt.statistic)
        diag["pretrend_p"] = float(wt.pvalue)
        diag["pretrend_df"] = len(lead_idx)
        if wt.pvalue < 0.05:
            notes.append(
                f"Pre-trends: the leads are jointly different from zero (p = {wt.pvalue:.3g}); "
                "parallel trends are doubtful."
            )
        else:
            notes.append(
                f"Pre-trends: no evidence against parallel trends (joint p = {wt.pvalue:.3g}); "
                "this does not prove them."
            )
    post_idx = [i for i, e in enumerate(event_times) if e >= 0]
    w = np.zeros(len(res.params))
    w[post_idx] = 1.0 / len(post_idx)
    cov = np.asarray(res.cov_params())
    eff = Effect.from_coefficient(
        "mean_post",
        f"Average effect over event times 0..{lags} (event study)",
        float(w @ np.asarray(res.params)),
        float(math.sqrt(w @ cov @ w)),
        level=level,
        df=G - 1,
    )
    notes.append(
        "TWFE event-study coefficients can be contaminated by effects from other periods under "
        "heterogeneous effects (Sun & Abraham 2021); the Callaway–Sant'Anna profile avoids this."
    )
    return EventStudyResult(
        method="Event study (two-way fixed effects)",
        effects=(eff,),
        diagnostics=diag,
        n_obs=int(np.isfinite(p.y).sum()),
        notes=tuple(notes),
        profile=prof,
        model=res,
    )


# ----------------------------------------------------------------------------- Callaway–Sant'Anna
def callaway_santanna(
    panel: pd.DataFrame,
    outcome: str = "outcome",
    *,
    unit: str = "facility_id",
    time: str = "period",
    cohort: str | None = "clm_start",
    treated: str | None = None,
    control: Literal["not_yet_treated", "never_treated"] = "not_yet_treated",
    anticipation: int = 0,
    pretrend_leads: int = 4,
    level: float = 0.95,
) -> CallawaySantAnnaResult:
    """Callaway & Sant'Anna (2021) group-time ATTs, aggregated to a simple ATT and an event-time profile.

    For adoption cohort ``g`` and period ``t`` the estimate is the 2×2 DiD between ``t`` and the
    base period ``g − 1 − anticipation`` (a universal base), comparing cohort ``g`` with
    facilities not yet under CLM at ``max(t, base)`` (or never treated). Pre-period cells
    (t < base) are placebo tests of parallel trends.

    Parameters
    ----------
    panel, outcome, unit, time, cohort, treated
        As in :func:`twfe_did`.
    control
        ``not_yet_treated`` (default; uses more comparisons) or ``never_treated``.
    anticipation
        Periods before ``g`` in which CLM may already act (shifts the base period back).
    pretrend_leads
        Number of pre-adoption event times (e = −2, −3, …) in the joint pre-trend test.
    level
        Confidence level.

    Returns
    -------
    CallawaySantAnnaResult
        Effects: ``att_simple`` (cohort-size-weighted average of all post-adoption ATT(g,t),
        the primary estimate), ``att_dynamic`` (average of the event-time effects e ≥ 0);
        ``profile`` by event time, ``group_time`` per cell; ``pretrend_p`` in diagnostics.

    Raises
    ------
    EvaluationError
        No comparison units, no adoption inside the panel, a single facility.
    """
    from scipy import stats

    what = "callaway_santanna"
    p = _panel(panel, outcome, unit, time, None if treated else cohort, treated, None, what)
    _comparison_check(p, what)
    N = len(p.units)
    times = p.times
    # wide outcome matrix (units × times); NaN where missing
    Y = np.full((N, len(times)), np.nan)
    Y[p.unit, np.searchsorted(times, p.t)] = p.y
    G = p.cohort_of_unit.copy()
    G[G > times.max()] = np.inf  # adopting after the panel ends = not treated within it
    notes: list[str] = []
    always = np.isfinite(G) & (G - anticipation <= times.min())
    if always.any():
        notes.append(
            f"{int(always.sum())} facilities under CLM from the first period have no pre-period "
            "and are not used as a treated cohort or as controls."
        )
    usable = ~always
    cohorts = np.unique(G[np.isfinite(G) & usable])
    pos = {v: i for i, v in enumerate(times)}

    rows: list[dict[str, Any]] = []
    ifs: list[np.ndarray] = []
    for g in cohorts:
        base = g - 1 - anticipation
        if base not in pos:
            notes.append(f"cohort {g:g}: base period {base:g} not in the panel; cohort skipped")
            continue
        b = pos[base]
        in_g = (G == g) & usable
        for t in times:
            if t == base:
                continue
            j = pos[t]
            if control == "never_treated":
                ctrl = ~np.isfinite(G) & usable
            else:
                ctrl = (G > max(t, base) + anticipation) & (G != g) & usable
            dy = Y[:, j] - Y[:, b]
            tr_ok = in_g & np.isfinite(dy)
            c_ok = ctrl & np.isfinite(dy)
            if tr_ok.sum() == 0 or c_ok.sum() == 0:
                continue
            mt, mc = dy[tr_ok].mean(), dy[c_ok].mean()
            nt, nc = int(tr_ok.sum()), int(c_ok.sum())
            # influence function; the sqrt(n/(n-1)) factors give the unbiased within-group variance
            psi = np.zeros(N)
            psi[tr_ok] = N / nt * (dy[tr_ok] - mt) * math.sqrt(nt / max(nt - 1, 1))
            psi[c_ok] = -N / nc * (dy[c_ok] - mc) * math.sqrt(nc / max(nc - 1, 1))
            rows.append(
                {
                    "cohort": g,
                    "time": t,
                    "event_time": t - g,
                    "att": mt - mc,
                    "n_treated": int(tr_ok.sum()),
                    "n_control": int(c_ok.sum()),
                }
            )
            ifs.append(psi)
    if not rows:
        raise EvaluationError(
            f"{what}: no cohort has comparison facilities (not yet treated or never treated) "
            "in any period; the effect cannot be estimated"
        )
    gt = pd.DataFrame(rows)
    Psi = np.column_stack(ifs)  # N × cells
    crit = float(stats.norm.ppf(0.5 + level / 2))
    gt["se"] = np.sqrt((Psi**2).sum(axis=0)) / N
    gt["ci_low"] = gt["att"] - crit * gt["se"]
    gt["ci_high"] = gt["att"] + crit * gt["se"]
    gt["post"] = gt["event_time"] >= 0

    # cohort shares and their influence functions (for the estimated aggregation weights)
    pi = {g: float(((G == g) & usable).mean()) for g in cohorts}
    pi_if = {g: ((G == g) & usable).astype(float) - pi[g] for g in cohorts}

    def aggregate(mask: np.ndarray) -> tuple[float, float]:
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return math.nan, math.nan
        pis = np.array([pi[g] for g in gt["cohort"].to_numpy()[idx]])
        S = pis.sum()
        wts = pis / S
        att = gt["att"].to_numpy()[idx]
        theta = float(wts @ att)
        if_main = Psi[:, idx] @ wts
        pif = np.column_stack([pi_if[g] for g in gt["cohort"].to_numpy()[idx]])
        if_w = (pif / S - np.outer(pif.sum(axis=1), pis) / S**2) @ att
        infl = if_main + if_w
        return theta, float(np.sqrt((infl**2).sum()) / N)

    post_mask = gt["post"].to_numpy()
    theta, se = aggregate(post_mask)
    effects = [
        Effect.from_coefficient(
            "att_simple", "CLM effect (Callaway–Sant'Anna, simple ATT)", theta, se, level=level
        )
    ]
    prof_rows = []
    dyn_if: list[np.ndarray] = []
    for e in sorted(gt["event_time"].unique()):
        m = (gt["event_time"] == e).to_numpy()
        th, s = aggregate(m)
        prof_rows.append(
            {
                "event_time": int(e),
                "estimate": th,
                "se": s,
                "ci_low": th - crit * s,
                "ci_high": th + crit * s,
                "p_value": float(2 * stats.norm.sf(abs(th / s))) if s > 0 else math.nan,
                "pre": e < 0,
                "n_cohorts": int(m.sum()),
            }
        )
        # influence function of each event-time aggregate (for the dynamic average)
        idx = np.flatnonzero(m)
        pis = np.array([pi[g] for g in gt["cohort"].to_numpy()[idx]])
        S = pis.sum()
        pif = np.column_stack([pi_if[g] for g in gt["cohort"].to_numpy()[idx]])
        att = gt["att"].to_numpy()[idx]
        dyn_if.append(
            Psi[:, idx] @ (pis / S) + (pif / S - np.outer(pif.sum(axis=1), pis) / S**2) @ att
        )
    prof = pd.DataFrame(prof_rows)
    post_e = prof["event_time"].to_numpy() >= 0
    if post_e.any():
        dyn = float(prof.loc[post_e, "estimate"].mean())
        dif = np.column_stack([dyn_if[i] for i in np.flatnonzero(post_e)]).mean(axis=1)
        effects.append(
            Effect.from_coefficient(
                "att_dynamic",
                "CLM effect averaged over exposure lengths (Callaway–Sant'Anna)",
                dyn,
                float(np.sqrt((dif**2).sum()) / N),
                level=level,
            )
        )
    diag: dict[str, Any] = {
        "n_facilities": N,
        "n_cohorts": len(cohorts),
        "control": control,
        "anticipation": anticipation,
        "base_period": "universal (g - 1)",
        "n_group_time_cells": len(gt),
        "n_never_treated": int((~np.isfinite(G) & usable).sum()),
    }
    pre_e = [
        i
        for i, e in enumerate(prof["event_time"])
        if -2 - anticipation - pretrend_leads < e < -1 - anticipation
    ]
    if pre_e:
        a = prof["estimate"].to_numpy()[pre_e]
        P = np.column_stack([dyn_if[i] for i in pre_e])
        V = (P.T @ P) / N**2
        stat = float(a @ np.linalg.pinv(V) @ a)
        dfree = int(np.linalg.matrix_rank(V))
        pval = float(stats.chi2.sf(stat, dfree)) if dfree else math.nan
        diag.update({"pretrend_chi2": stat, "pretrend_df": dfree, "pretrend_p": pval})
        notes.append(
            f"Pre-trends (placebo effects at the {len(pre_e)} event times before adoption, joint Wald): "
            f"p = {pval:.3g}"
            + (
                "; parallel trends are doubtful."
                if pval < 0.05
                else "; no evidence against parallel trends."
            )
        )
    if np.isfinite(p.y).sum() < len(p.y):
        notes.append(
            f"{int((~np.isfinite(p.y)).sum())} facility-periods with a missing outcome: the cells that "
            "need them use the facilities with both periods observed."
        )
    return CallawaySantAnnaResult(
        method="Difference-in-differences (Callaway–Sant'Anna, not-yet-treated controls)"
        if control == "not_yet_treated"
        else "Difference-in-differences (Callaway–Sant'Anna, never-treated controls)",
        effects=tuple(effects),
        diagnostics=diag,
        n_obs=int(np.isfinite(p.y).sum()),
        notes=tuple(notes),
        profile=prof,
        group_time=gt,
    )


def compare_did(
    panel: pd.DataFrame,
    outcome: str = "outcome",
    *,
    unit: str = "facility_id",
    time: str = "period",
    cohort: str | None = "clm_start",
    leads: int = 4,
    lags: int = 8,
) -> pd.DataFrame:
    """TWFE, event-study and Callaway–Sant'Anna estimates side by side (one row per estimate)."""
    parts = [
        twfe_did(panel, outcome, unit=unit, time=time, cohort=cohort).summary(),
        event_study(
            panel, outcome, unit=unit, time=time, cohort=cohort, leads=leads, lags=lags
        ).summary(),
        callaway_santanna(panel, outcome, unit=unit, time=time, cohort=cohort).summary(),
    ]
    return pd.concat(parts, ignore_index=True)
