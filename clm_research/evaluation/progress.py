"""Progress toward targets: baseline, latest, target, distance covered, projection and a verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from clm_research.evaluation._results import (
    Effect,
    EvaluationError,
    EvaluationResult,
    new_axes,
    numeric_column,
    require_columns,
)
from clm_research.evaluation._time import time_axis

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ProgressResult", "VERDICTS", "progress_to_target", "progress_table"]

#: The three verdicts a report may state.
VERDICTS: tuple[str, ...] = ("on track", "off track", "insufficient data")

Direction = Literal["higher_is_better", "lower_is_better"]


@dataclass(repr=False)
class ProgressResult(EvaluationResult):
    """Result of :func:`progress_to_target`; ``verdict`` is one of :data:`VERDICTS`."""

    verdict: str = "insufficient data"
    baseline: float = math.nan
    latest: float = math.nan
    target: float = math.nan
    share_covered: float = math.nan
    series: pd.DataFrame = field(default_factory=pd.DataFrame)
    target_index: float = math.nan
    direction: str = "higher_is_better"

    @property
    def target_met(self) -> bool | None:
        """Whether the latest value meets the target (``None`` without a target or a value)."""
        if not (np.isfinite(self.latest) and np.isfinite(self.target)):
            return None
        return _better(self.latest, self.target, self.direction)

    def summary(self) -> pd.DataFrame:
        """One row: baseline, latest, target, share covered, projection with CI, verdict."""
        p = self.effects[0] if self.effects else None
        return pd.DataFrame(
            [
                {
                    "baseline": self.baseline,
                    "latest": self.latest,
                    "target": self.target,
                    "share_of_distance_covered": self.share_covered,
                    "projected": p.estimate if p else math.nan,
                    "projected_ci_low": p.ci_low if p else math.nan,
                    "projected_ci_high": p.ci_high if p else math.nan,
                    "verdict": self.verdict,
                    "n_points": self.n_obs,
                    "direction": self.direction,
                    "note": " ".join(self.notes),
                }
            ]
        )

    def plot(self, ax: Axes | None = None) -> Figure:
        """Observed values, the linear projection to the target date with its CI, and the target."""
        fig, ax = new_axes(ax, figsize=(7, 4))
        s = self.series
        ax.plot(s["t"], s["value"], "o-", color="tab:blue", label="observed")
        if self.effects and np.isfinite(self.target_index):
            e = self.effects[0]
            ax.plot(
                [s["t"].iloc[-1], self.target_index],
                [s["fitted"].iloc[-1], e.estimate],
                "--",
                color="tab:blue",
                label="projection",
            )
            ax.errorbar(
                [self.target_index],
                [e.estimate],
                yerr=[[e.estimate - e.ci_low], [e.ci_high - e.estimate]],
                fmt="o",
                color="tab:blue",
                capsize=3,
            )
        if np.isfinite(self.target):
            ax.axhline(self.target, color="tab:green", linestyle=":", label="target")
        ax.set_title(f"{self.method}: {self.verdict}")
        ax.legend(frameon=False, fontsize="small")
        return fig


def _better(value: float, target: float, direction: str) -> bool:
    """Whether ``value`` is at or beyond ``target`` in the better direction."""
    return value >= target if direction == "higher_is_better" else value <= target


def progress_to_target(
    series: pd.DataFrame,
    *,
    time: str = "round",
    value: str = "estimate",
    target: float | None = None,
    target_time: Any = None,
    direction: Direction = "higher_is_better",
    se: str | None = None,
    min_points: int = 3,
    level: float = 0.95,
    label: str = "indicator",
) -> ProgressResult:
    """Assess progress of one indicator series toward its target.

    Parameters
    ----------
    series
        One row per time point (rounds ``YYYYQn``, months, dates or numbers), e.g. the output of
        the indicator engine filtered to one indicator.
    value
        The indicator value column.
    target
        Target value; when ``None`` the ``target`` column is used if present.
    target_time
        When the target is due (same units as ``time``, e.g. ``"2025Q4"``).
    direction
        ``higher_is_better`` or ``lower_is_better``.
    se
        Optional standard-error column: the trend is then fitted by weighted least squares (1/se²).
    min_points
        Fewer points than this gives the verdict "insufficient data".

    Returns
    -------
    ProgressResult
        ``projected_value`` (linear trend extrapolated to ``target_time``, CI of the mean
        prediction, t with n − 2 df); verdict "on track" when the target is already met or the
        projection meets it, "off track" otherwise, "insufficient data" when there are too few
        points, no target or no target date. The note says when the CI includes the target.
    """
    import statsmodels.api as sm

    what = f"progress_to_target({label})"
    require_columns(series, [time, value, se], what)
    df = series.copy()
    df["value"] = numeric_column(df, value, what)
    if target is None and "target" in df:
        t = pd.to_numeric(df["target"], errors="coerce").dropna().unique()
        target = float(t[0]) if len(t) else None
    if direction not in ("higher_is_better", "lower_is_better"):
        raise EvaluationError(
            f"{what}: direction must be higher_is_better or lower_is_better, not {direction!r}"
        )
    df = df[df["value"].notna()]
    n_missing = len(series) - len(df)
    notes: list[str] = []
    if n_missing:
        notes.append(f"{n_missing} time points without a value (e.g. suppressed small cells).")
    if df.empty:
        return ProgressResult(
            method=f"Progress: {label}",
            effects=(),
            n_obs=0,
            notes=tuple(notes),
            target=target if target is not None else math.nan,
            direction=direction,
        )
    axis = time_axis(df[time], what)
    df["t"] = axis.index
    df = df.sort_values("t")
    baseline, latest = float(df["value"].iloc[0]), float(df["value"].iloc[-1])
    tgt = math.nan if target is None else float(target)

    def better(a: float, b: float) -> bool:
        return _better(a, b, direction)

    share = (
        (latest - baseline) / (tgt - baseline) if np.isfinite(tgt) and tgt != baseline else math.nan
    )
    base: dict[str, Any] = dict(
        method=f"Progress: {label}",
        baseline=baseline,
        latest=latest,
        target=tgt,
        share_covered=share,
        direction=direction,
        n_obs=len(df),
    )
    df["fitted"] = df["value"]
    if len(df) < min_points or not np.isfinite(tgt) or target_time is None:
        why = (
            f"fewer than {min_points} points"
            if len(df) < min_points
            else "no target"
            if not np.isfinite(tgt)
            else "no target date"
        )
        notes.append(f"Insufficient data: {why}.")
        verdict = "on track" if np.isfinite(tgt) and better(latest, tgt) else "insufficient data"
        if verdict == "on track":
            notes.append("The target is already met.")
        return ProgressResult(effects=(), notes=tuple(notes), verdict=verdict, series=df, **base)
    X = sm.add_constant(df["t"].to_numpy(float))
    y = df["value"].to_numpy(float)
    if se is not None:
        w = 1 / numeric_column(df, se, what).to_numpy(float) ** 2
        res = sm.WLS(y, X, weights=w).fit()
    else:
        res = sm.OLS(y, X).fit()
    t_target = axis.convert(target_time)
    pred = res.get_prediction(np.array([[1.0, t_target]]))
    lo, hi = pred.conf_int(alpha=1 - level)[0]
    proj = float(pred.predicted_mean[0])
    df["fitted"] = res.fittedvalues
    eff = Effect(
        "projected_value",
        f"Projected {label} at {target_time}",
        proj,
        float(lo),
        float(hi),
        math.nan,
        "value",
        float(pred.se_mean[0]),
        level,
    )
    slope = Effect.from_coefficient(
        "trend",
        f"Trend per {axis.unit}",
        float(res.params[1]),
        float(res.bse[1]),
        level=level,
        df=max(len(df) - 2, 1),
    )
    if better(latest, tgt):
        verdict = "on track"
        notes.append("The target is already met.")
    elif better(proj, tgt):
        verdict = "on track"
    else:
        verdict = "off track"
    if lo <= tgt <= hi:
        notes.append(
            "The projection's confidence interval includes the target: the verdict is uncertain."
        )
    return ProgressResult(
        effects=(eff, slope),
        notes=tuple(notes),
        verdict=verdict,
        series=df,
        target_index=t_target,
        diagnostics={"r_squared": float(res.rsquared)},
        **base,
    )


def progress_table(
    indicators: pd.DataFrame,
    *,
    target_time: Any,
    by: str = "indicator_id",
    time: str = "round",
    value: str = "estimate",
    min_points: int = 3,
    level: float = 0.95,
) -> pd.DataFrame:
    """Apply :func:`progress_to_target` to every indicator of an indicator-engine table.

    Uses the ``target`` and ``direction`` columns of each indicator; returns one row per indicator.
    """
    require_columns(indicators, [by, time, value], "progress_table")
    rows = []
    for key, part in indicators.groupby(by, sort=True):
        given = part["direction"].iloc[0] if "direction" in part else "higher_is_better"
        direction: Direction = (
            "lower_is_better" if given == "lower_is_better" else "higher_is_better"
        )
        r = progress_to_target(
            part,
            time=time,
            value=value,
            target_time=target_time,
            direction=direction,
            min_points=min_points,
            level=level,
            label=str(key),
        )
        rows.append(r.summary().assign(**{by: key}))
    if not rows:
        return pd.DataFrame()
    out = pd.concat(rows, ignore_index=True)
    return out[[by, *[c for c in out.columns if c != by]]]
