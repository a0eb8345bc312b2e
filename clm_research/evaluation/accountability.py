"""The accountability loop: issue funnel, time to resolution (Kaplan–Meier) and Cox regression.

An issue is *identified*, may be *escalated* beyond the facility, an *action agreed* with duty
bearers, and *resolved*; the funnel counts each issue once, at the furthest stage it reached. Issues still open at the as-of date are right-censored: their time to
resolution is at least the time they have been open, never "unresolved = failed".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clm_research.evaluation._results import (
    Effect,
    EvaluationError,
    EvaluationResult,
    fit_guard,
    new_axes,
    require_columns,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FUNNEL_STAGES",
    "STAGE_LABELS",
    "FunnelResult",
    "furthest_stage",
    "SurvivalResult",
    "CoxResult",
    "issue_funnel",
    "resolution_times",
    "time_to_resolution",
    "resolution_cox",
]

#: Stages of the loop and the date column that marks each (``None`` = every logged issue).
FUNNEL_STAGES: tuple[tuple[str, str | None], ...] = (
    ("identified", None),
    ("escalated", "escalated_on"),
    ("action_agreed", "action_agreed_on"),
    ("resolved", "resolved_on"),
)


# ----------------------------------------------------------------------------- funnel
#: Plain labels of the funnel's stages (for tables and figures).
STAGE_LABELS: dict[str, str] = {
    "identified": "Identified",
    "escalated": "Escalated beyond the facility",
    "action_agreed": "Action agreed with duty bearers",
    "resolved": "Resolved",
}


@dataclass
class FunnelResult:
    """Issues by the furthest stage of the loop they reached, overall and by group.

    ``scope`` says which issues were counted (e.g. "issues identified in 2024Q4" or "all
    issues identified 2023Q1–2024Q4") and ``as_of`` the date their stage was read at.
    """

    table: pd.DataFrame
    by: tuple[str, ...]
    as_of: pd.Timestamp | None
    scope: str = "all issues in the log"

    def summary(self) -> pd.DataFrame:
        """Tidy table: group columns, stage, issues (reached at least this stage),
        stopped_here (furthest stage), without_own_date, share_of_identified,
        share_of_previous."""
        return self.table.copy()

    def overall(self) -> pd.DataFrame:
        """The rows of the whole scope (every ``by`` column equal to ``all``)."""
        t = self.table
        for c in self.by:
            t = t[t[c] == "all"]
        return t.reset_index(drop=True)

    def plot(self, ax: Axes | None = None) -> Figure:
        """Horizontal bars: share of identified issues that reached each stage (or further)."""
        from matplotlib.ticker import PercentFormatter

        fig, ax = new_axes(ax, figsize=(7, 3.2))
        overall = self.overall()
        labels = [STAGE_LABELS.get(s, s) for s in overall["stage"]][::-1]
        shares = overall["share_of_identified"].to_numpy(float)[::-1]
        ax.barh(labels, shares, color="#0072B2")
        for y, (v, n) in enumerate(zip(shares, overall["issues"].to_numpy()[::-1], strict=True)):
            ax.text(v, y, f" {n:,} ({v:.0%})", va="center")
        ax.set_xlim(0, 1.25)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel(f"Share of identified issues reaching the stage or further ({self.scope})")
        return fig


def _as_of(issues: pd.DataFrame, as_of: Any, date_columns: Sequence[str]) -> pd.Timestamp:
    if as_of is not None:
        return pd.Timestamp(as_of)
    dates = [pd.to_datetime(issues[c], errors="coerce").max() for c in date_columns if c in issues]
    dates = [d for d in dates if pd.notna(d)]
    if not dates:
        raise EvaluationError("issues: no dates to infer the as-of date from; pass as_of")
    return max(dates)


def furthest_stage(
    issues: pd.DataFrame,
    *,
    as_of: Any = None,
    escalated_column: str = "escalated_on",
    action_column: str = "action_agreed_on",
    resolved_column: str = "resolved_on",
) -> pd.Series:
    """The furthest stage each issue reached by ``as_of`` (0 identified … 3 resolved).

    A stage counts when its date is recorded on or before ``as_of``; the furthest such stage
    is the issue's. An issue resolved at the facility without a recorded escalation has
    reached "resolved": it is counted once, there, and in the funnel it has passed the earlier
    stages (the loop is closed whichever way it was closed).
    """
    cols = [escalated_column, action_column, resolved_column]
    require_columns(issues, cols, "furthest_stage")
    cutoff = _as_of(issues, as_of, cols)
    stage = np.zeros(len(issues), dtype=int)
    for k, c in enumerate(cols, start=1):
        d = pd.to_datetime(issues[c], errors="coerce")
        stage = np.where((d.notna() & (d <= cutoff)).to_numpy(), k, stage)
    return pd.Series(stage, index=issues.index, name="furthest_stage")


def issue_funnel(
    issues: pd.DataFrame,
    by: Sequence[str] = ("category",),
    *,
    as_of: Any = None,
    rounds: Sequence[str] | None = None,
    escalated_column: str = "escalated_on",
    action_column: str = "action_agreed_on",
    resolved_column: str = "resolved_on",
) -> FunnelResult:
    """Issues identified → escalated → action agreed → resolved, each counted once.

    Every issue is placed at the furthest stage it reached by ``as_of`` (default: the latest
    date in the log; :func:`furthest_stage`), and a stage's count is the number of issues that
    reached it *or a later one*, so identified ≥ escalated ≥ action agreed ≥ resolved by
    construction and no share exceeds 100%. ``stopped_here`` counts each issue once, at its
    furthest stage (the column sums to the issues identified); ``without_own_date`` counts the
    issues counted at a stage that passed it without its date recorded (e.g. resolved at the
    facility without escalation). Each ``by`` column is tabulated separately, plus an ``all``
    row.

    Parameters
    ----------
    rounds
        Keep the issues identified in these rounds (column ``round``), e.g. the reporting round
        only; default every issue in the log. The scope is stated in :attr:`FunnelResult.scope`.

    Returns
    -------
    FunnelResult
        ``summary()`` columns: ``<by columns>``, ``stage``, ``issues``, ``stopped_here``,
        ``without_own_date``, ``share_of_identified``, ``share_of_previous``.
    """
    what = "issue_funnel"
    cols = [escalated_column, action_column, resolved_column]
    require_columns(issues, [*by, *cols], what)
    if issues.empty:
        raise EvaluationError(f"{what}: the issue log is empty")
    cutoff = _as_of(issues, as_of, cols)
    scope = "all issues in the log"
    if rounds is not None:
        require_columns(issues, ["round"], what)
        wanted = [str(r) for r in rounds]
        issues = issues[issues["round"].astype("string").isin(wanted)]
        span = wanted[0] if len(wanted) == 1 else f"{min(wanted)}–{max(wanted)}"
        scope = f"issues identified in {span}"
        if issues.empty:
            raise EvaluationError(f"{what}: no issue was identified in {span}")
    stage = furthest_stage(
        issues,
        as_of=cutoff,
        escalated_column=escalated_column,
        action_column=action_column,
        resolved_column=resolved_column,
    ).to_numpy()
    own = np.ones((len(issues), len(FUNNEL_STAGES)), dtype=bool)
    for k, c in enumerate(cols, start=1):
        d = pd.to_datetime(issues[c], errors="coerce")
        own[:, k] = (d.notna() & (d <= cutoff)).to_numpy()
    stages = [s for s, _ in FUNNEL_STAGES]
    rows: list[dict[str, Any]] = []
    groupings: list[str | None] = [None, *by]
    for g in groupings:
        keys = (
            pd.Series("all", index=issues.index)
            if g is None
            else issues[g].astype("string").fillna("not recorded")
        ).to_numpy()
        for level_value in sorted(pd.unique(keys)):
            sel = keys == level_value
            st, ow = stage[sel], own[sel]
            identified = int(sel.sum())
            prev: int | None = None
            for k, s in enumerate(stages):
                n = int((st >= k).sum())
                rec: dict[str, Any] = dict.fromkeys(by, "all")
                if g is not None:
                    rec[g] = level_value
                rec.update(
                    {
                        "stage": s,
                        "issues": n,
                        "stopped_here": int((st == k).sum()),
                        "without_own_date": int(((st >= k) & ~ow[:, k]).sum()),
                        "share_of_identified": n / identified if identified else math.nan,
                        "share_of_previous": 1.0
                        if prev is None
                        else (n / prev if prev else math.nan),
                    }
                )
                rows.append(rec)
                prev = n
    return FunnelResult(pd.DataFrame(rows), tuple(by), cutoff, scope)


# ----------------------------------------------------------------------------- durations
def resolution_times(
    issues: pd.DataFrame,
    *,
    as_of: Any = None,
    start: str = "identified_on",
    end: str = "resolved_on",
) -> pd.DataFrame:
    """Days from identification to resolution, with open issues censored at ``as_of``.

    Returns
    -------
    DataFrame
        The issues with ``days`` (float) and ``resolved`` (1 = event, 0 = censored) added.

    Raises
    ------
    EvaluationError
        Missing identification date, resolution before identification (naming the issue).
    """
    what = "resolution_times"
    require_columns(issues, [start, end], what)
    cutoff = _as_of(issues, as_of, [start, end])
    s = pd.to_datetime(issues[start], errors="coerce")
    e = pd.to_datetime(issues[end], errors="coerce")
    if s.isna().any():
        row = s.isna().idxmax()
        raise EvaluationError(f"{what}: row {row!r} has no {start!r} date")
    event = e.notna() & (e <= cutoff)
    stop = e.where(event, cutoff)
    days = (stop - s).dt.days.astype(float)
    bad = days < 0
    if bad.any():
        row = bad.idxmax()
        ident = issues["issue_id"][bad].iloc[0] if "issue_id" in issues else row
        raise EvaluationError(
            f"{what}: issue {ident!r} ends before it starts ({end} < {start}, or identified after as_of)"
        )
    out = issues.copy()
    out["days"] = days.to_numpy()
    out["resolved"] = event.astype(int).to_numpy()
    return out


@dataclass(repr=False)
class SurvivalResult(EvaluationResult):
    """Kaplan–Meier time to resolution; ``curves`` has the step function per group."""

    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)

    def summary(self) -> pd.DataFrame:
        """Per group: issues, resolved, open (censored), median days with CI, share resolved by day 30/90."""
        return self.table.copy()

    def plot(self, ax: Axes | None = None) -> Figure:
        """Share of issues still open over time (Kaplan–Meier), one curve per group."""
        fig, ax = new_axes(ax, figsize=(7, 4))
        for g, part in self.curves.groupby("group", sort=False):
            ax.step(part["days"], part["still_open"], where="post", label=str(g))
        ax.set_xlabel("days since identified")
        ax.set_ylabel("share of issues still open")
        ax.set_ylim(0, 1.02)
        ax.set_title(self.method)
        ax.legend(frameon=False, fontsize="small")
        return fig


def _km(days: np.ndarray, event: np.ndarray, level: float) -> tuple[Any, dict[str, float]]:
    import statsmodels.api as sm

    sf = sm.SurvfuncRight(days, event)
    out: dict[str, float] = {
        "issues": len(days),
        "resolved": int(event.sum()),
        "open": int(len(days) - event.sum()),
    }
    # The median is the first time S(t) <= 0.5, as the indicator engine's duration indicators
    # (clm_research.indicators, same tolerance): statsmodels' quantile() follows SAS's strict
    # S(t) < 0.5, which moves the median to the next event time whenever S reaches exactly 0.5.
    from clm_research.indicators import KM_TOLERANCE

    reached = np.flatnonzero(np.asarray(sf.surv_prob) <= 0.5 + KM_TOLERANCE)
    med = float(sf.surv_times[reached[0]]) if len(reached) else math.nan
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            lo, hi = sf.quantile_ci(0.5, alpha=1 - level)
        lo, hi = float(lo), float(hi)
    except Exception:
        lo, hi = math.nan, math.nan
    out.update({"median_days": med, "median_ci_low": lo, "median_ci_high": hi})
    for d in (30, 90):
        idx = np.searchsorted(sf.surv_times, d, side="right") - 1
        out[f"resolved_by_day_{d}"] = float(1 - sf.surv_prob[idx]) if idx >= 0 else 0.0
    return sf, out


def time_to_resolution(
    issues: pd.DataFrame,
    by: str | None = None,
    *,
    as_of: Any = None,
    level: float = 0.95,
) -> SurvivalResult:
    """Kaplan–Meier curve of days to resolution, open issues censored at ``as_of``.

    The median and its CI use statsmodels ``SurvfuncRight`` (Greenwood variance, CI by
    inverting the complementary log-log transformed test, Brookmeyer–Crowley style). When
    fewer than half the issues are resolved the median is not reached and reported as ``nan``.

    Parameters
    ----------
    issues
        Canonical ``issues`` table (``identified_on``, ``resolved_on``).
    by
        Optional grouping column (e.g. ``escalation_level``, ``category``).
    as_of
        Censoring date (default: latest date in the log).

    Returns
    -------
    SurvivalResult
        Effect ``median_days`` (overall), ``summary()`` per group, ``curves`` for plotting.
    """
    what = "time_to_resolution"
    d = resolution_times(issues, as_of=as_of)
    if d.empty:
        raise EvaluationError(f"{what}: the issue log is empty")
    if d["resolved"].sum() == 0:
        raise EvaluationError(
            f"{what}: no issue has been resolved yet (no events); time to resolution "
            "cannot be estimated, only that every issue is still open"
        )
    groups: list[tuple[str, pd.DataFrame]] = [("all", d)]
    if by is not None:
        require_columns(d, [by], what)
        groups += [
            (str(k), part) for k, part in d.groupby(d[by].astype("string").fillna("not recorded"))
        ]
    rows, curves = [], []
    sf_all = None
    for name, part in groups:
        sf, stats_ = _km(part["days"].to_numpy(float), part["resolved"].to_numpy(int), level)
        if name == "all":
            sf_all = stats_
        rows.append({"group": name, **stats_})
        curves.append(
            pd.DataFrame(
                {
                    "group": name,
                    "days": np.r_[0.0, sf.surv_times],
                    "still_open": np.r_[1.0, sf.surv_prob],
                }
            )
        )
    table = pd.DataFrame(rows)
    assert sf_all is not None
    eff = Effect(
        "median_days",
        "Median days to resolution (Kaplan–Meier)",
        sf_all["median_days"],
        sf_all["median_ci_low"],
        sf_all["median_ci_high"],
        math.nan,
        "days",
        math.nan,
        level,
    )
    notes = []
    if not np.isfinite(sf_all["median_days"]):
        notes.append(
            "Fewer than half the issues are resolved: the median time to resolution is not reached."
        )
    if by is not None and len(groups) > 2:
        notes.append(f"Log-rank test across {by}: p = {_logrank(d, by):.3g}.")
    return SurvivalResult(
        method="Time to resolution (Kaplan–Meier, open issues censored)",
        effects=(eff,),
        diagnostics={
            "as_of": str(_as_of(issues, as_of, ["identified_on", "resolved_on"]).date()),
            "issues": len(d),
            "resolved": int(d["resolved"].sum()),
            "open": int((1 - d["resolved"]).sum()),
        },
        n_obs=len(d),
        notes=tuple(notes),
        curves=pd.concat(curves, ignore_index=True),
        table=table,
    )


def _logrank(d: pd.DataFrame, by: str) -> float:
    from statsmodels.duration.survfunc import survdiff

    g = d[by].astype("string").fillna("not recorded").to_numpy()
    try:
        _, p = survdiff(d["days"].to_numpy(float), d["resolved"].to_numpy(int), g)
    except Exception:
        return math.nan
    return float(p)


# ----------------------------------------------------------------------------- Cox
@dataclass(repr=False)
class CoxResult(EvaluationResult):
    """Cox proportional-hazards model of resolution (hazard ratio > 1 = resolved faster)."""

    model: Any = None


def resolution_cox(
    issues: pd.DataFrame,
    covariates: Sequence[str] = ("severity", "escalation_level"),
    *,
    as_of: Any = None,
    strata: str | None = None,
    ties: str = "breslow",
    level: float = 0.95,
) -> CoxResult:
    """Cox regression of time to resolution (statsmodels ``PHReg``), open issues censored.

    Text/category covariates are dummy-coded against their first level (sorted); hazard ratios
    above 1 mean faster resolution.

    Returns
    -------
    CoxResult
        One effect per coefficient (hazard ratios with Wald CIs).

    Raises
    ------
    EvaluationError
        No resolved issue, a covariate with one value only, missing covariate values.
    """
    import statsmodels.api as sm

    what = "resolution_cox"
    d = resolution_times(issues, as_of=as_of)
    require_columns(d, [*covariates, strata], what)
    if d["resolved"].sum() == 0:
        raise EvaluationError(
            f"{what}: no issue has been resolved yet (no events); a Cox model needs events"
        )
    X_parts = []
    for c in covariates:
        s = d[c]
        if s.isna().any():
            row = s.isna().idxmax()
            raise EvaluationError(f"{what}: covariate {c!r} missing in row {row!r}")
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            X_parts.append(s.astype(float).rename(c).to_frame())
        else:
            cat = s.astype("string")
            levels = sorted(cat.unique())
            if len(levels) < 2:
                raise EvaluationError(
                    f"{what}: covariate {c!r} takes one value only ({levels[0]!r})"
                )
            X_parts.append(
                pd.get_dummies(cat, prefix=c, prefix_sep="=", dtype=float).drop(
                    columns=f"{c}={levels[0]}"
                )
            )
    if not X_parts:
        raise EvaluationError(f"{what}: give at least one covariate")
    X = pd.concat(X_parts, axis=1)
    model = sm.PHReg(
        d["days"].to_numpy(float),
        X,
        status=d["resolved"].to_numpy(int),
        ties=ties,
        strata=None if strata is None else d[strata].to_numpy(),
    )
    res = fit_guard(what, model.fit)
    effects = tuple(
        Effect.from_coefficient(
            name,
            f"Hazard ratio of resolution: {name}",
            float(b),
            float(se),
            scale="hazard_ratio",
            level=level,
        )
        for name, b, se in zip(X.columns, res.params, res.bse, strict=True)
    )
    return CoxResult(
        method="Cox regression of time to resolution",
        effects=effects,
        diagnostics={
            "issues": len(d),
            "resolved": int(d["resolved"].sum()),
            "ties": ties,
            "log_likelihood": float(res.llf),
        },
        n_obs=len(d),
        notes=("Hazard ratios above 1 mean faster resolution; proportional hazards are assumed.",),
        model=res,
    )
