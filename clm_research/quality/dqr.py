"""WHO Data Quality Review (DQR) routine checks and a facility × period scorecard (WHO, Data Quality Review: a toolkit for facility data quality assessment, 2017, module 2; the DHIS2 WHO Data Quality app).

Four dimensions, with the defaults of the WHO DQR toolkit and the DHIS2 WHO Data Quality app:

1. **Completeness and timeliness of reporting** — expected reports are every facility × month
   of the period range; completeness ≥ 90% is the usual target. A report is timely when
   submitted within ``deadline_days`` (15) days after the end of its month; the canonical
   ``routine`` table carries no submission date, so timeliness is computed only when a
   submission-date column is given.
2. **Outliers** — per facility and indicator over its own series: moderate at ≥ 2 SD or
   modified z ≥ 3.5, extreme at ≥ 3 SD or modified z ≥ 5, with modified z
   ``0.6745·(x − median)/MAD``; when MAD = 0, ``0.7979·(x − median)/MeanAD`` (MeanAD = mean
   absolute deviation from the mean; 0.7979 = √(2/π) makes it comparable to an SD).
3. **Consistency over time** — the value against the mean of the preceding periods, flagged
   beyond ±33%. The WHO DQR compares a year with the mean of the 3 preceding years. For monthly
   data we compare a month with the mean of the preceding **12 months** (one full seasonal cycle,
   at least 6 of them reported); pass ``window=3`` with annual data for the WHO definition.
4. **Internal consistency** — related numbers must agree: suppressed ≤ tested,
   positives ≤ tests, interruptions ≤ currently on treatment (:data:`rules.CONSISTENCY`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clm_research.quality.rules import CONSISTENCY

__all__ = [
    "ROUTINE_INDICATORS",
    "completeness",
    "timeliness",
    "outliers",
    "modified_z",
    "consistency_over_time",
    "internal_consistency",
    "scorecard",
    "COMPLETENESS_TARGET",
]

ROUTINE_INDICATORS: tuple[str, ...] = (
    "tx_curr",
    "tx_new",
    "interruptions",
    "vl_tested",
    "vl_suppressed",
    "prep_new",
    "tests",
    "positives",
)
COMPLETENESS_TARGET = 0.90


def _months(first: str, last: str) -> list[str]:
    return [str(p) for p in pd.period_range(pd.Period(first, "M"), pd.Period(last, "M"), freq="M")]


def completeness(
    routine: pd.DataFrame,
    facilities: Sequence[str] | pd.Series | None = None,
    periods: Sequence[str] | None = None,
    value_columns: Sequence[str] = ROUTINE_INDICATORS,
) -> pd.DataFrame:
    """Expected facility × month reports and whether each was received.

    Parameters
    ----------
    routine
        The ``routine`` table (``facility_id``, ``period`` ``YYYY-MM`` and the indicators).
    facilities
        Facilities expected to report (default: every facility in ``routine``).
    periods
        Months expected (default: first to last month in ``routine``).
    value_columns
        Indicators; a report counts as received when at least one of them is filled.

    Returns
    -------
    DataFrame
        One row per expected facility × period: ``reported`` (bool) and ``values_complete``
        (share of indicators filled, 0 when not reported).
    """
    cols = [c for c in value_columns if c in routine.columns]
    fac = pd.Index(
        pd.unique(
            pd.Series(facilities if facilities is not None else routine["facility_id"]).dropna()
        )
    )
    if periods is None:
        p = routine["period"].dropna()
        periods = _months(p.min(), p.max()) if len(p) else []
    grid = pd.MultiIndex.from_product(
        [fac, list(periods)], names=["facility_id", "period"]
    ).to_frame(index=False)
    r = routine.drop_duplicates(["facility_id", "period"])[["facility_id", "period", *cols]].copy()
    r["_filled"] = r[cols].notna().sum(axis=1) if cols else 0
    out = grid.merge(
        r[["facility_id", "period", "_filled"]], on=["facility_id", "period"], how="left"
    )
    out["reported"] = out["_filled"].fillna(0) > 0
    out["values_complete"] = (out["_filled"].fillna(0) / max(len(cols), 1)).astype(float)
    return out.drop(columns="_filled")


def timeliness(
    reports: pd.DataFrame, submitted: str = "submitted_on", deadline_days: int = 15
) -> pd.Series:
    """``True`` when a monthly report was submitted within ``deadline_days`` after its month ended."""
    end = pd.PeriodIndex(reports["period"], freq="M").end_time.normalize()
    due = end + pd.to_timedelta(deadline_days, unit="D")
    sub = pd.to_datetime(reports[submitted], errors="coerce")
    return pd.Series((sub <= due).to_numpy(), index=reports.index).where(sub.notna())


def modified_z(x: pd.Series) -> pd.Series:
    """Modified z-score ``0.6745·(x − median)/MAD``; ``0.7979·(x − median)/MeanAD`` when MAD = 0.

    >>> modified_z(pd.Series([10.0, 10, 10, 10, 30])).round(4).tolist()
    [0.0, 0.0, 0.0, 0.0, 2.4934]
    """
    v = x.astype(float)
    med = v.median()
    mad = (v - med).abs().median()
    if mad and not np.isnan(mad):
        return 0.6745 * (v - med) / mad
    mean_ad = (v - v.mean()).abs().mean()
    if not mean_ad or np.isnan(mean_ad):
        return pd.Series(0.0, index=v.index).where(v.notna())
    return 0.7979 * (v - med) / mean_ad


def _grade(z: pd.Series, moderate: float, extreme: float) -> pd.Series:
    a = z.abs()
    out = pd.Series("none", index=z.index, dtype=object)
    out[a >= moderate] = "moderate"
    out[a >= extreme] = "extreme"
    return out.where(z.notna(), None)


def outliers(
    data: pd.DataFrame,
    value_columns: Sequence[str] = ROUTINE_INDICATORS,
    by: Sequence[str] = ("facility_id",),
    period: str = "period",
) -> pd.DataFrame:
    """SD and modified-z outliers of every value within its own series (``by`` groups).

    Returns
    -------
    DataFrame
        Long: ``by`` columns, ``period``, ``indicator``, ``value``, ``z_sd``, ``z_mod``,
        ``outlier_sd`` and ``outlier_mod`` (``none``/``moderate``/``extreme``) and
        ``outlier`` (the worse of the two).
    """
    cols = [c for c in value_columns if c in data.columns]
    long = data[[*by, period, *cols]].melt(
        id_vars=[*by, period], var_name="indicator", value_name="value"
    )
    long["value"] = pd.to_numeric(long["value"], errors="coerce").astype(float)
    long = long.dropna(subset=["value"]).reset_index(drop=True)
    g = long.groupby([*by, "indicator"], sort=False)["value"]
    mean, sd = g.transform("mean"), g.transform("std")
    long["z_sd"] = ((long["value"] - mean) / sd).where(sd > 0, 0.0)
    long["z_mod"] = g.transform(modified_z)
    long["outlier_sd"] = _grade(long["z_sd"], 2.0, 3.0)
    long["outlier_mod"] = _grade(long["z_mod"], 3.5, 5.0)
    rank = {"none": 0, "moderate": 1, "extreme": 2, None: -1}
    worse = np.maximum(long["outlier_sd"].map(rank), long["outlier_mod"].map(rank))
    long["outlier"] = pd.Series(worse).map({0: "none", 1: "moderate", 2: "extreme"})
    return long


def consistency_over_time(
    data: pd.DataFrame,
    value_columns: Sequence[str] = ROUTINE_INDICATORS,
    by: Sequence[str] = ("facility_id",),
    period: str = "period",
    window: int = 12,
    min_periods: int = 6,
    threshold: float = 0.33,
) -> pd.DataFrame:
    """Each value against the mean of its ``window`` preceding periods; flagged beyond ±``threshold``.

    Periods are taken in sort order of ``period`` within each ``by`` group (pass complete,
    regularly spaced series: a missing month shortens the window rather than breaking it).

    Returns
    -------
    DataFrame
        Long: ``by``, ``period``, ``indicator``, ``value``, ``reference`` (mean of preceding
        periods), ``ratio`` (value/reference) and ``flag`` (``True`` when
        ``|ratio − 1| > threshold``; missing when there is no reference).
    """
    cols = [c for c in value_columns if c in data.columns]
    long = data[[*by, period, *cols]].melt(
        id_vars=[*by, period], var_name="indicator", value_name="value"
    )
    long["value"] = pd.to_numeric(long["value"], errors="coerce").astype(float)
    long = long.sort_values([*by, "indicator", period], kind="stable").reset_index(drop=True)
    g = long.groupby([*by, "indicator"], sort=False)["value"]
    long["reference"] = g.transform(
        lambda s: s.shift(1).rolling(window, min_periods=min_periods).mean()
    )
    ref = long["reference"]
    long["ratio"] = (long["value"] / ref).where(ref > 0)
    flag = (long["ratio"] - 1).abs() > threshold
    # a reference of zero with a positive value is an infinite change: flagged
    flag = flag | ((ref == 0) & (long["value"] > 0))
    long["flag"] = flag.where(ref.notna() & long["value"].notna())
    return long


def internal_consistency(
    data: pd.DataFrame,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Rows where a part exceeds its whole (``smaller > larger``), one row per broken pair.

    Parameters
    ----------
    data
        Any table with the columns of ``pairs``.
    pairs
        ``(smaller, larger)`` column pairs; default: the routine pairs of
        :data:`clm_research.quality.rules.CONSISTENCY`.

    Returns
    -------
    DataFrame
        The failing rows of ``data`` (original index kept) with ``check``
        (``"vl_suppressed <= vl_tested"``), ``smaller`` and ``larger`` values.
    """
    if pairs is None:
        pairs = [(c.smaller, c.larger) for c in CONSISTENCY if c.table == "routine"]
    out = []
    for small, large in pairs:
        if small not in data.columns or large not in data.columns:
            continue
        s = pd.to_numeric(data[small], errors="coerce")
        big = pd.to_numeric(data[large], errors="coerce")
        bad = (s > big).fillna(False)
        if bad.any():
            part = data[bad].copy()
            part["check"] = f"{small} <= {large}"
            part["smaller"] = s[bad]
            part["larger"] = big[bad]
            out.append(part)
    if not out:
        return data.iloc[0:0].assign(
            check=pd.Series(dtype=object),
            smaller=pd.Series(dtype=float),
            larger=pd.Series(dtype=float),
        )
    return pd.concat(out)


def scorecard(
    routine: pd.DataFrame,
    facilities: Sequence[str] | pd.Series | None = None,
    periods: Sequence[str] | None = None,
    value_columns: Sequence[str] = ROUTINE_INDICATORS,
    window: int = 12,
) -> pd.DataFrame:
    """Facility × period data-quality scorecard (the table the reports show).

    Returns
    -------
    DataFrame
        One row per expected facility × month: ``reported``, ``values_complete``,
        ``outliers_moderate``, ``outliers_extreme`` (indicators flagged by SD or modified z),
        ``inconsistent`` (broken internal-consistency pairs), ``time_flags`` (indicators beyond
        ±33% of the preceding-period mean) and ``ok`` (reported, complete and no flag).
    """
    # a data element the country does not collect is absent: it is not a check of its data
    value_columns = [c for c in value_columns if c in routine.columns]
    grid = completeness(routine, facilities, periods, value_columns)
    keys = ["facility_id", "period"]
    r = routine.drop_duplicates(keys)
    out = outliers(r, value_columns)
    o = (
        out.assign(
            outliers_moderate=out["outlier"] == "moderate",
            outliers_extreme=out["outlier"] == "extreme",
        )
        .groupby(keys, as_index=False)[["outliers_moderate", "outliers_extreme"]]
        .sum()
    )
    ic = internal_consistency(r)
    icn = (
        ic.groupby(keys, as_index=False).size().rename(columns={"size": "inconsistent"})
        if len(ic)
        else pd.DataFrame({"facility_id": [], "period": [], "inconsistent": []})
    )
    ct = consistency_over_time(r, value_columns, window=window)
    ctn = (
        ct[ct["flag"].fillna(False).astype(bool)]
        .groupby(keys, as_index=False)
        .size()
        .rename(columns={"size": "time_flags"})
    )
    card = grid
    for part in (o, icn, ctn):
        card = card.merge(
            part.astype({"facility_id": object, "period": object}), on=keys, how="left"
        )
    for c in ("outliers_moderate", "outliers_extreme", "inconsistent", "time_flags"):
        card[c] = card[c].fillna(0).astype(int)
    card["ok"] = (
        card["reported"]
        & (card["values_complete"] == 1.0)
        & (
            card[["outliers_moderate", "outliers_extreme", "inconsistent", "time_flags"]].sum(
                axis=1
            )
            == 0
        )
    )
    return card
