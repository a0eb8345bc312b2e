"""Indicator data shaped for the estimators: facility panels and aggregated series.

The framework declares each indicator once (dataset, filters, value column); these functions
turn it into what the evaluation methods take: the row-level outcome of a client indicator
(:func:`row_outcome`), the facility × time panel of the difference-in-differences estimators
(:func:`indicator_panel`) and the aggregated CLM and comparison series of an interrupted time
series (:func:`interrupted_series`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from clm_research.derived import enrich
from clm_research.errors import CLMError
from clm_research.expressions import evaluate, parse
from clm_research.periods import date_to_round

if TYPE_CHECKING:
    import pandas as pd

    from clm_research.framework import Framework, Indicator

__all__ = [
    "has_row_outcome",
    "row_outcome",
    "indicator_panel",
    "first_wave",
    "interrupted_series",
]


def has_row_outcome(ind: Indicator) -> bool:
    """Whether ``ind`` has a per-row outcome: a counted proportion, or a mean or median."""
    if ind.type == "proportion":
        return bool(ind.numerator) and not ind.numerator_sum and not ind.denominator_sum
    return ind.type in ("mean", "median") and bool(ind.value)


def row_outcome(ind: Indicator, frame: pd.DataFrame) -> tuple[pd.Series, pd.Series] | None:
    """Row-level (in scope, value) of an indicator: a 0/1 or numeric value per row.

    ``None`` for indicators that are not a row-level proportion, mean or median (counts, rates,
    sums, durations): they have no per-client outcome.
    """
    import pandas as pd

    scope = (
        evaluate(parse(ind.denominator), frame)
        if ind.denominator
        else pd.Series(True, index=frame.index)
    )
    if not has_row_outcome(ind):
        return None
    if ind.type == "proportion":
        value = evaluate(parse(str(ind.numerator)), frame).astype(float)
        return scope.astype(bool), value
    value = frame[str(ind.value)].astype("float64")
    return scope.astype(bool) & value.notna(), value


def indicator_panel(
    framework: Framework, tables: Mapping[str, pd.DataFrame], indicator_id: str
) -> pd.DataFrame | None:
    """Facility × time panel of one indicator (``None`` when it has no comparison design).

    Interview indicators are aggregated to facility × round (mean, or median for medians);
    routine indicators with summed numerator and denominator give facility × month ratios
    weighted by the denominator (:func:`clm_research.evaluation.facility_panel` columns:
    ``facility_id``, time, ``outcome``, ``weight``, ``clm_start``, ``treated``). Checklist
    observations, issues, organisations and outreach have no comparison facilities.
    """
    import pandas as pd

    from clm_research.evaluation.did import facility_panel

    ind = framework.indicator(indicator_id)
    fac = tables["facilities"]
    if ind.dataset == "routine" and ind.numerator_sum and not ind.denominator_dataset:
        routine = enrich("routine", tables["routine"], fac)
        if ind.denominator:
            routine = routine[evaluate(parse(ind.denominator), routine)]
        return facility_panel(routine, fac, ind.numerator_sum, ind.denominator_sum, time="period")
    if ind.dataset != "interviews":
        return None
    frame = enrich("interviews", tables["interviews"], fac)
    got = row_outcome(ind, frame)
    if got is None:
        return None
    scope, value = got
    d = pd.DataFrame({"facility_id": frame["facility_id"], "round": frame["round"], "v": value})
    d = d[scope.to_numpy(dtype=bool)]
    agg = "median" if ind.type == "median" else "mean"
    g = d.groupby(["facility_id", "round"], sort=True)["v"].agg([agg, "size"]).reset_index()
    g = g.rename(columns={agg: "value", "size": "rows"})
    return facility_panel(g, fac, "value", None, time="round")


def first_wave(facilities: pd.DataFrame) -> tuple[pd.Timestamp, list[str]]:
    """Start date of the first CLM wave and its facilities."""
    starts = facilities["clm_start"].dropna()
    if starts.empty:
        raise CLMError("no facility has a CLM start date: there is no interruption to analyse")
    first = starts.min()
    ids = facilities.loc[facilities["clm_start"] == first, "facility_id"].astype(str).tolist()
    return first, sorted(ids)


def interrupted_series(
    framework: Framework,
    tables: Mapping[str, pd.DataFrame],
    indicator_id: str,
    *,
    first_round: str | None = None,
    last_round: str | None = None,
) -> pd.DataFrame:
    """Aggregated series of one indicator for an interrupted time series.

    The intervention series sums the facilities of the **first CLM wave** (a clean start
    date); the comparison series sums the never-monitored facilities. Routine indicators are
    monthly (numerator and denominator sums: ``count`` and ``exposure``), interview
    indicators by round (``count`` = numerator rows, ``exposure`` = rows in scope for
    proportions; ``value`` = mean of the value for means and medians).

    Returns
    -------
    DataFrame
        ``time, group ("clm" / "comparison"), value, count, exposure, facilities``, with
        ``attrs["intervention_start"]`` (label on the series' time axis),
        ``attrs["time"]`` (``period`` or ``round``) and ``attrs["n_facilities"]``.
    """
    import numpy as np
    import pandas as pd

    ind = framework.indicator(indicator_id)
    fac = tables["facilities"]
    start, wave = first_wave(fac)
    never = set(fac.loc[fac["clm_start"].isna(), "facility_id"].astype(str))
    group_of = {**{f: "comparison" for f in never}, **{f: "clm" for f in wave}}
    if ind.dataset == "routine" and ind.numerator_sum:
        d = enrich("routine", tables["routine"], fac)
        if ind.denominator:
            d = d[evaluate(parse(ind.denominator), d).to_numpy(dtype=bool)]
        time = "period"
        num = pd.to_numeric(d[ind.numerator_sum], errors="coerce").astype("float64")
        den = (
            pd.to_numeric(d[ind.denominator_sum], errors="coerce").astype("float64")
            if ind.denominator_sum
            else pd.Series(1.0, index=d.index)
        )
        rows = pd.DataFrame(
            {
                "time": d["period"].astype(str),
                "round": d["round"].astype(str),
                "facility_id": d["facility_id"].astype(str),
                "count": num,
                "exposure": den,
            }
        )
        kind = "count"
        label = f"{start.year}-{start.month:02d}"
    elif ind.dataset == "interviews":
        d = enrich("interviews", tables["interviews"], fac)
        got = row_outcome(ind, d)
        if got is None:
            raise CLMError(f"{indicator_id}: no row-level outcome for a time series")
        scope, value = got
        keep = scope.to_numpy(dtype=bool)
        time = "round"
        rows = pd.DataFrame(
            {
                "time": d["round"].astype(str),
                "round": d["round"].astype(str),
                "facility_id": d["facility_id"].astype(str),
                "count": value.astype(float),
                "exposure": 1.0,
            }
        )[keep]
        kind = "count" if ind.type == "proportion" else "mean"
        label = date_to_round(start)
    else:
        raise CLMError(
            f"{indicator_id}: dataset {ind.dataset!r} has no facility time series for an ITS"
        )
    if first_round:
        rows = rows[rows["round"] >= first_round]
    if last_round:
        rows = rows[rows["round"] <= last_round]
    rows = rows.assign(group=rows["facility_id"].map(group_of)).dropna(subset=["group"])
    agg = rows.groupby(["group", "time"], sort=True).agg(
        count=("count", "sum"),
        exposure=("exposure", "sum"),
        facilities=("facility_id", "nunique"),
    )
    if kind == "mean":
        agg["value"] = rows.groupby(["group", "time"], sort=True)["count"].mean()
    else:
        agg["value"] = agg["count"] / agg["exposure"].where(agg["exposure"] > 0)
    out = agg.reset_index()[["time", "group", "value", "count", "exposure", "facilities"]]
    out["count"] = np.round(out["count"]) if kind == "count" else out["count"]
    out.attrs.update(
        intervention_start=label,
        time=time,
        kind=kind,
        n_facilities=len(wave),
        n_comparison=len(never),
        start_date=str(start.date()),
    )
    return out
