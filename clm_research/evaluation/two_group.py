"""Facility-level comparisons: change before/after CLM and CLM versus control facilities.

The simplest designs a pre-registered plan can name, run on facility × round values (monthly
routine panels are first summed to rounds, weighted by their denominators):

- :func:`pre_post_change` — each CLM facility's change from the first to the last round (a
  one-sample t-interval), or the CLM facilities' change minus the comparison facilities' change
  (Welch's unequal-variance t-interval): a difference-in-differences on two time points;
- :func:`cluster_difference` — CLM minus control facility means in one round (Welch), the
  cluster-level analysis of a cluster-randomised trial (Hayes & Moulton, *Cluster Randomised
  Trials*, ch. 9: a t-test on cluster summaries is valid with few clusters).

t-tests are scipy's (``scipy.stats.ttest_1samp`` and ``ttest_ind(equal_var=False)``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from clm_research.evaluation._results import Effect, EvaluationError, EvaluationResult
from clm_research.periods import date_to_round, months_to_rounds

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["facility_by_round", "t_effect", "pre_post_change", "cluster_difference"]


def facility_by_round(panel: pd.DataFrame, time: str) -> pd.DataFrame:
    """Facility × round values of a panel (denominator-weighted for monthly routine panels).

    Parameters
    ----------
    panel
        A facility panel (:func:`clm_research.evaluation.facility_panel` columns ``facility_id``,
        ``outcome``, ``weight`` and the time column).
    time
        ``round`` or ``period`` (months, summed to rounds).

    Returns
    -------
    DataFrame
        One row per facility, one column per round.
    """
    rounds = months_to_rounds(panel[time]) if time == "period" else panel[time].astype(str)
    d = panel.assign(_round=rounds.to_numpy())
    d = d[np.isfinite(d["outcome"].astype(float))]
    d = d.assign(_wy=d["outcome"].astype(float) * d["weight"].astype(float))
    g = d.groupby(["facility_id", "_round"], sort=True)[["_wy", "weight"]].sum()
    g["value"] = g["_wy"] / g["weight"].where(g["weight"] > 0)
    return g["value"].unstack("_round")


def t_effect(
    name: str,
    label: str,
    values: np.ndarray,
    level: float,
    other: np.ndarray | None = None,
) -> tuple[Effect, int]:
    """Mean of ``values`` (one-sample t) or Welch difference ``values − other``, as an Effect.

    Missing values are left out. Returns the effect and the number of facilities used.

    Raises
    ------
    EvaluationError
        Fewer than 3 facilities (one sample) or fewer than 2 in an arm (two samples).
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if other is not None:
        y = np.asarray(other, dtype=float)
        y = y[np.isfinite(y)]
        if len(x) < 2 or len(y) < 2:
            raise EvaluationError(f"{label}: fewer than 2 facilities in an arm")
        res = stats.ttest_ind(x, y, equal_var=False)
        est, n = float(x.mean() - y.mean()), len(x) + len(y)
    else:
        if len(x) < 3:
            raise EvaluationError(f"{label}: fewer than 3 facilities with data in both rounds")
        res = stats.ttest_1samp(x, 0.0)
        est, n = float(x.mean()), len(x)
    ci = res.confidence_interval(confidence_level=level)
    crit = float(stats.t.ppf(0.5 + level / 2, res.df))
    se = (float(ci.high) - float(ci.low)) / (2 * crit) if crit > 0 else math.nan
    p = float(res.pvalue) if np.isfinite(res.pvalue) else math.nan
    eff = Effect(name, label, est, float(ci.low), float(ci.high), p, "difference", se, level)
    return eff, n


def _clm_round(starts: pd.Series) -> pd.Series:
    """The round in which each facility started CLM (missing for comparison facilities)."""
    return starts.dropna().map(date_to_round)


def pre_post_change(
    panel: pd.DataFrame, time: str, first: str, last: str, comparison: str, level: float
) -> EvaluationResult:
    """Facility-level change from round ``first`` to ``last`` at the facilities that started
    CLM in between; minus the never-monitored facilities' change unless ``comparison`` is
    ``"none"``.

    Raises
    ------
    EvaluationError
        No data in one of the two rounds, too few facilities, or no comparison facilities.
    """
    wide = facility_by_round(panel, time)
    if first not in wide.columns or last not in wide.columns:
        raise EvaluationError(f"pre/post needs data in both {first} and {last}")
    starts = panel.groupby("facility_id")["clm_start"].first()
    first_q = _clm_round(starts)
    clm = first_q[(first_q > first) & (first_q <= last)].index
    never = starts[starts.isna()].index
    change = wide[last] - wide[first]
    notes = []
    if comparison == "none":
        eff, n = t_effect(
            "pre_post_change",
            f"Change {first} → {last} at CLM facilities",
            change.reindex(clm).to_numpy(),
            level,
        )
        notes.append(
            "A pre/post comparison without a comparison group attributes every change over "
            "time (secular trend, seasonality) to CLM; see study-design notebook 02."
        )
    else:
        if len(never) == 0:
            raise EvaluationError("no never-monitored facilities to compare with")
        eff, n = t_effect(
            "pre_post_did",
            f"Change {first} → {last}, CLM minus comparison facilities",
            change.reindex(clm).to_numpy(),
            level,
            change.reindex(never).to_numpy(),
        )
    return EvaluationResult(
        method="Pre/post comparison (facility level)",
        effects=(eff,),
        diagnostics={"clm_facilities": len(clm), "comparison_facilities": len(never)},
        n_obs=int(n),
        notes=tuple(notes),
    )


def cluster_difference(panel: pd.DataFrame, time: str, last: str, level: float) -> EvaluationResult:
    """CLM minus control facility means in round ``last`` (Welch t-interval).

    Raises
    ------
    EvaluationError
        No data in ``last``, or no control facilities.
    """
    wide = facility_by_round(panel, time)
    if last not in wide.columns:
        raise EvaluationError(f"no data in the last round {last}")
    starts = panel.groupby("facility_id")["clm_start"].first()
    never = starts[starts.isna()].index
    if len(never) == 0:
        raise EvaluationError("no randomised control arm: every facility starts CLM")
    on = _clm_round(starts)
    clm = on[on <= last].index
    eff, n = t_effect(
        "cluster_difference",
        f"CLM minus control facilities in {last} (facility means)",
        wide[last].reindex(clm).to_numpy(),
        level,
        wide[last].reindex(never).to_numpy(),
    )
    return EvaluationResult(
        method="Cluster-level comparison (randomised arms)",
        effects=(eff,),
        diagnostics={"clm_facilities": len(clm), "control_facilities": len(never)},
        n_obs=int(n),
        notes=(
            "Assumes the allocation to the control arm was randomised, as the plan's design "
            "states; unadjusted for baseline.",
        ),
    )
