"""The indicator engine: every framework indicator, by any disaggregation, as one tidy table.

``compute_indicators(framework, tables, by=[...])`` returns one row per indicator and group
with numerator, denominator, estimate, a 95% confidence interval, ``n`` and a ``suppressed``
flag. All computation is vectorised (``groupby``); there is no per-row Python loop.

Confidence intervals
--------------------
* proportion — Wilson score interval (Wilson 1927), as ``statsmodels``' ``proportion_confint
  (method="wilson")``. With ``ci="cluster"`` the interval accounts for clustering by facility:
  the design effect is estimated per group from the facility totals (ratio-estimator
  linearisation, Kish) and the Wilson interval is computed at the effective sample size
  ``n / max(DE, 1)``.
* mean — t interval; with ``ci="cluster"``, cluster-robust (facility) standard error with
  ``k − 1`` degrees of freedom.
* median — distribution-free interval from order statistics (Woodruff: the interval for the
  50% point, mapped back through the empirical quantiles); with ``ci="cluster"`` the 50% point's
  standard error is inflated by the design effect of ``1[x ≤ median]``.
* count and rate — exact Poisson (Garwood) interval on the numerator, divided by the
  denominator for rates.
* duration — Kaplan–Meier median with censoring at ``as_of`` (open issues), interval by the
  Brookmeyer–Crowley method on the log–log scale (as R ``survival``).

Small cells
-----------
A cell whose size is below the indicator's ``min_cell_size`` is suppressed (estimate and
interval blanked, numerator and denominator too) — *primary* suppression. The size is the
denominator for proportions, the number of rows for means, medians and durations, and the
numerator for counts and rates. Then, within every margin of the grouping (all groups that
differ only in one ``by`` column), a single suppressed cell could be recovered from the margin's
total, so the next-smallest cell of that margin is suppressed too — *secondary* suppression —
repeated until no margin has exactly one suppressed cell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from clm_research.derived import enrich
from clm_research.expressions import evaluate, parse
from clm_research.framework import Framework, Indicator

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "ALL",
    "RESULT_COLUMNS",
    "compute_indicators",
    "wilson_interval",
    "poisson_interval",
    "rag_status",
]

#: Value of a ``by`` column for an indicator whose dataset cannot be split by it.
ALL = "(all)"

#: Columns of the tidy result, besides the ``by`` columns (which follow ``level``).
RESULT_COLUMNS: tuple[str, ...] = (
    "indicator_id",
    "label",
    "level",
    "type",
    "unit",
    "direction",
    "numerator",
    "denominator",
    "estimate",
    "ci_low",
    "ci_high",
    "n",
    "n_clusters",
    "design_effect",
    "suppressed",
    "suppression",
    "target",
    "rag",
)

CIMethod = Literal["wilson", "cluster"]


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(
    successes: np.ndarray | pd.Series, n: np.ndarray | pd.Series, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for ``successes / n`` (vectorised; ``n`` may be fractional).

    Examples
    --------
    >>> lo, hi = wilson_interval([8], [10])
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (0.4902, 0.9433)
    """
    import numpy as np

    x = np.asarray(successes, dtype=float)
    n_ = np.asarray(n, dtype=float)
    z = _z(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n_
        denom = 1 + z**2 / n_
        centre = (p + z**2 / (2 * n_)) / denom
        half = z * np.sqrt(p * (1 - p) / n_ + z**2 / (4 * n_**2)) / denom
    lo, hi = centre - half, centre + half
    bad = ~(n_ > 0)
    return np.where(bad, np.nan, np.clip(lo, 0, 1)), np.where(bad, np.nan, np.clip(hi, 0, 1))


def poisson_interval(
    count: np.ndarray | pd.Series, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) interval for a Poisson count.

    Examples
    --------
    >>> lo, hi = poisson_interval([10])
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (4.795, 18.39)
    """
    import numpy as np
    from scipy.stats import chi2

    k = np.asarray(count, dtype=float)
    alpha = 1 - confidence
    with np.errstate(invalid="ignore"):
        lo = np.where(k > 0, chi2.ppf(alpha / 2, 2 * k) / 2, 0.0)
        hi = chi2.ppf(1 - alpha / 2, 2 * (k + 1)) / 2
    return lo, hi


def rag_status(estimate: pd.Series, ind: Indicator) -> pd.Series:
    """Red/amber/green from the indicator's thresholds (empty where there are none)."""
    import numpy as np
    import pandas as pd

    if ind.thresholds is None:
        return pd.Series(pd.NA, index=estimate.index, dtype="string")
    g, a = ind.thresholds.green, ind.thresholds.amber
    e = estimate.to_numpy(dtype=float)
    if ind.direction == "higher_is_better":
        out = np.where(e >= g, "green", np.where(e >= a, "amber", "red"))
    else:
        out = np.where(e <= g, "green", np.where(e <= a, "amber", "red"))
    return pd.Series(out, index=estimate.index, dtype="string").mask(np.isnan(e))


def _design_effect(
    y_c: pd.Series, m_c: pd.Series, keys: list[str], p: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """Per-group design effect of a ratio estimate p = Σy/Σm from cluster totals.

    ``y_c``/``m_c`` are indexed by ``keys`` + facility; ``p`` by ``keys``. Returns (DE, k).
    """
    import numpy as np

    frame = y_c.rename("y").to_frame().join(m_c.rename("m"))
    if keys:
        frame = frame.join(p.rename("p"), on=keys)
    else:
        frame["p"] = float(p.iloc[0])
    frame["r2"] = (frame["y"] - frame["p"] * frame["m"]) ** 2
    grouped = frame.groupby(level=keys, sort=False) if keys else frame.groupby(lambda _: 0)
    agg = grouped.agg(k=("m", "size"), r2=("r2", "sum"), msum=("m", "sum"), p=("p", "first"))
    k = agg["k"].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_cluster = k / (k - 1) * agg["r2"] / agg["msum"] ** 2
        var_srs = agg["p"] * (1 - agg["p"]) / agg["msum"]
        de = var_cluster / var_srs
    de = de.where((k >= 2) & (var_srs > 0), 1.0)
    if not keys:
        de.index = p.index
        k.index = p.index
    return de, k


class _Context:
    """Enriched datasets, built once per call."""

    def __init__(self, tables: Mapping[str, pd.DataFrame]) -> None:
        self.tables = tables
        self._cache: dict[str, pd.DataFrame] = {}

    def frame(self, name: str) -> pd.DataFrame:
        if name not in self._cache:
            if name not in self.tables:
                from clm_research.errors import DataQualityError

                raise DataQualityError(
                    f"table {name!r} is needed by the framework but was not given; "
                    f"tables given: {', '.join(self.tables)}"
                )
            self._cache[name] = enrich(name, self.tables[name], self.tables.get("facilities"))
        return self._cache[name]


def _group_keys(frame: pd.DataFrame, by: Sequence[str]) -> list[str]:
    return [c for c in by if c in frame.columns]


def _mask(frame: pd.DataFrame, text: str | None) -> pd.Series:
    import pandas as pd

    if text is None:
        return pd.Series(True, index=frame.index)
    return evaluate(parse(text), frame)


def _sum_or_count(frame: pd.DataFrame, mask: pd.Series, column: str | None) -> pd.Series:
    if column is None:
        return mask.astype("float64")
    return frame[column].astype("float64").where(mask, 0.0).fillna(0.0)


def _grouped_sum(values: pd.Series, frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    import pandas as pd

    if not keys:
        return pd.Series([values.sum()], index=pd.Index([0], name="_all"))
    return values.groupby([frame[k] for k in keys], sort=True, dropna=False).sum()


def _proportion_like(
    ind: Indicator, ctx: _Context, keys_by: Sequence[str], ci: CIMethod, confidence: float
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    frame = ctx.frame(ind.dataset)
    keys = _group_keys(frame, keys_by)
    pop = _mask(frame, ind.denominator if not ind.denominator_dataset else None)
    num_mask = pop & _mask(frame, ind.numerator) if ind.numerator else pop
    num_rows = _sum_or_count(frame, num_mask, ind.numerator_sum)
    if ind.type == "count":
        num = _grouped_sum(num_rows, frame, keys)
        out = pd.DataFrame({"numerator": num, "denominator": np.nan, "n": num})
        out["estimate"] = out["numerator"]
        out["ci_low"], out["ci_high"] = poisson_interval(out["numerator"], confidence)
        return out
    if ind.denominator_dataset:
        dframe = ctx.frame(ind.denominator_dataset)
        dkeys = _group_keys(dframe, keys)
        keys = [k for k in keys if k in dkeys]
        dpop = _mask(dframe, ind.denominator)
        den = _grouped_sum(_sum_or_count(dframe, dpop, ind.denominator_sum), dframe, keys)
        num = _grouped_sum(num_rows, frame, keys).reindex(den.index, fill_value=0.0)
        n_rows = den
    else:
        den_rows = _sum_or_count(frame, pop, ind.denominator_sum)
        num = _grouped_sum(num_rows, frame, keys)
        den = _grouped_sum(den_rows, frame, keys)
        n_rows = _grouped_sum(pop.astype("float64"), frame, keys)
    out = pd.DataFrame({"numerator": num, "denominator": den})
    with np.errstate(invalid="ignore", divide="ignore"):
        out["estimate"] = out["numerator"] / out["denominator"]
    if ind.type == "rate":
        out["n"] = out["numerator"]
        lo, hi = poisson_interval(out["numerator"], confidence)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["ci_low"], out["ci_high"] = lo / out["denominator"], hi / out["denominator"]
        return out
    out["n"] = out["denominator"] if (ind.numerator_sum or ind.denominator_sum) else n_rows
    n_eff = out["denominator"]
    if ci == "cluster" and "facility_id" in frame.columns and "facility_id" not in keys:
        ckeys = [*keys, "facility_id"]
        y_c = _grouped_sum(num_rows, frame, ckeys)
        m_c = _grouped_sum(_sum_or_count(frame, pop, ind.denominator_sum), frame, ckeys)
        de, k = _design_effect(y_c, m_c, keys, out["estimate"])
        out["design_effect"] = de
        out["n_clusters"] = k
        n_eff = out["denominator"] / np.maximum(de, 1.0)
    elif "facility_id" in frame.columns:
        facs = frame.loc[pop, list(dict.fromkeys([*keys, "facility_id"]))].drop_duplicates()
        out["n_clusters"] = _grouped_sum(pd.Series(1.0, index=facs.index), facs, keys).reindex(
            out.index
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        out["ci_low"], out["ci_high"] = wilson_interval(out["estimate"] * n_eff, n_eff, confidence)
    return out


def _values(
    ind: Indicator, ctx: _Context, keys_by: Sequence[str]
) -> tuple[pd.DataFrame, list[str]]:
    frame = ctx.frame(ind.dataset)
    keys = _group_keys(frame, keys_by)
    pop = _mask(frame, ind.denominator) & frame[ind.value].notna()
    cols = [*keys, ind.value] + (["facility_id"] if "facility_id" in frame.columns else [])
    sub = frame.loc[pop, list(dict.fromkeys(cols))].copy()
    sub["_v"] = sub[ind.value].astype("float64")
    if not keys:
        sub["_all"] = 0
        keys = ["_all"]
    return sub, keys


def _mean(
    ind: Indicator, ctx: _Context, keys_by: Sequence[str], ci: CIMethod, confidence: float
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd
    from scipy.stats import t as student_t

    sub, keys = _values(ind, ctx, keys_by)
    g = sub.groupby(keys, sort=True, dropna=False)["_v"]
    out = pd.DataFrame({"numerator": g.sum(), "n": g.count(), "sd": g.std(ddof=1)})
    out["denominator"] = out["n"]
    out["estimate"] = out["numerator"] / out["n"]
    se = out["sd"] / np.sqrt(out["n"])
    df = out["n"] - 1
    if "facility_id" in sub.columns and "facility_id" not in keys:
        c = sub.groupby([*keys, "facility_id"], sort=True, dropna=False)["_v"].agg(["sum", "count"])
        c = c.join(out["estimate"].rename("mean"), on=keys)
        c["r2"] = (c["sum"] - c["mean"] * c["count"]) ** 2
        agg = c.groupby(level=keys, sort=True, dropna=False).agg(
            k=("count", "size"), r2=("r2", "sum")
        )
        out["n_clusters"] = agg["k"].astype(float)
        if ci == "cluster":
            k = agg["k"].astype(float)
            se_c = np.sqrt(k / (k - 1) * agg["r2"]) / out["n"]
            out["design_effect"] = (se_c / se) ** 2
            se, df = se_c.where(k >= 2, np.nan), k - 1
    tq = student_t.ppf(0.5 + confidence / 2, df.where(df >= 1, np.nan))
    out["ci_low"], out["ci_high"] = out["estimate"] - tq * se, out["estimate"] + tq * se
    return out.drop(columns=["sd"])


def _median(
    ind: Indicator, ctx: _Context, keys_by: Sequence[str], ci: CIMethod, confidence: float
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    sub, keys = _values(ind, ctx, keys_by)
    sub = sub.sort_values([*keys, "_v"], kind="stable")
    g = sub.groupby(keys, sort=True, dropna=False)["_v"]
    out = pd.DataFrame({"estimate": g.median(), "n": g.count()})
    out["numerator"] = np.nan
    out["denominator"] = out["n"]
    de = pd.Series(1.0, index=out.index)
    has_fac = "facility_id" in sub.columns and "facility_id" not in keys
    if has_fac:
        out["n_clusters"] = (
            sub.groupby(keys, sort=True, dropna=False)["facility_id"].nunique().astype(float)
        )
    if ci == "cluster" and has_fac:
        below = (sub["_v"] <= sub.join(out["estimate"].rename("_m"), on=keys)["_m"]).astype(float)
        ckeys = [*keys, "facility_id"]
        y_c = below.groupby([sub[k] for k in ckeys], sort=True, dropna=False).sum()
        m_c = below.groupby([sub[k] for k in ckeys], sort=True, dropna=False).size().astype(float)
        p = y_c.groupby(level=keys, sort=True).sum() / m_c.groupby(level=keys, sort=True).sum()
        de, _ = _design_effect(y_c, m_c, keys, p)
        de = np.maximum(de.reindex(out.index).fillna(1.0), 1.0)
        out["design_effect"] = de
    # Woodruff: interval for the 50% point, mapped back through order statistics
    z = _z(confidence)
    n = out["n"].astype(float)
    se_p = np.sqrt(de * 0.25 / n)
    lo_rank = np.floor((0.5 - z * se_p) * n).clip(lower=0)
    hi_rank = (np.ceil((0.5 + z * se_p) * n) - 1).clip(upper=n - 1)
    sub["_pos"] = sub.groupby(keys, sort=False, dropna=False).cumcount()
    ranked = sub.set_index([*keys, "_pos"])["_v"]
    for name, rank in (("ci_low", lo_rank), ("ci_high", hi_rank)):
        idx = (
            pd.MultiIndex.from_arrays(
                [
                    *(out.index.get_level_values(i) for i in range(out.index.nlevels)),
                    rank.astype(int),
                ]
            )
            if len(out)
            else None
        )
        out[name] = ranked.reindex(idx).to_numpy() if idx is not None else np.nan
    return out


def _duration(
    ind: Indicator,
    ctx: _Context,
    keys_by: Sequence[str],
    confidence: float,
    as_of: pd.Timestamp | None,
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    frame = ctx.frame(ind.dataset)
    keys = _group_keys(frame, keys_by)
    pop = _mask(frame, ind.denominator) & frame[ind.start].notna()
    sub = frame.loc[pop, [*keys, ind.start, ind.end]].copy()
    if as_of is None:
        as_of = max(sub[ind.start].max(), sub[ind.end].max()) if len(sub) else pd.Timestamp.now()
    event = sub[ind.end].notna() & (sub[ind.end] <= as_of)
    stop = sub[ind.end].where(event, as_of)
    sub["_t"] = (stop - sub[ind.start]).dt.days.clip(lower=0).astype(float)
    sub["_d"] = event.astype(float)
    if not keys:
        sub["_all"] = 0
        keys = ["_all"]
    # Kaplan–Meier by group: distinct times, events d and exits c at each
    at = sub.groupby([*keys, "_t"], sort=True, dropna=False).agg(d=("_d", "sum"), c=("_d", "size"))
    grp = at.groupby(level=keys, sort=False, dropna=False)
    total = grp["c"].transform("sum")
    at["n_risk"] = total - grp["c"].cumsum() + at["c"]
    with np.errstate(divide="ignore", invalid="ignore"):
        at["surv"] = (
            (1 - at["d"] / at["n_risk"]).groupby(level=keys, sort=False, dropna=False).cumprod()
        )
        gw = (at["d"] / (at["n_risk"] * (at["n_risk"] - at["d"]))).replace(np.inf, np.nan)
        at["gw"] = gw.fillna(0).groupby(level=keys, sort=False, dropna=False).cumsum()
        # log-log interval for S(t)
        log_s = np.log(at["surv"])
        se = np.sqrt(at["gw"]) / np.abs(log_s)
        z = _z(confidence)
        at["s_lo"] = at["surv"] ** np.exp(z * se)
        at["s_hi"] = at["surv"] ** np.exp(-z * se)
    at.loc[at["surv"] <= 0, ["s_lo"]] = 0.0
    at.loc[at["surv"] >= 1, ["s_lo", "s_hi"]] = 1.0
    times = at.index.get_level_values("_t")

    def first_time(cond: pd.Series) -> pd.Series:
        t = pd.Series(np.where(cond, times, np.inf), index=at.index)
        m = t.groupby(level=keys, sort=True, dropna=False).min()
        return m.replace(np.inf, np.nan)

    out = pd.DataFrame({"estimate": first_time(at["surv"] <= 0.5)})
    # the lower band reaches 0.5 first: it gives the lower limit of the median
    out["ci_low"] = first_time(at["s_lo"] <= 0.5)
    out["ci_high"] = first_time(at["s_hi"] <= 0.5)
    counts = sub.groupby(keys, sort=True, dropna=False).agg(
        n=("_d", "size"), numerator=("_d", "sum")
    )
    out = out.join(counts)
    out["denominator"] = out["n"]
    return out


def _suppress(res: pd.DataFrame, keys: list[str], min_size: int) -> pd.DataFrame:
    import numpy as np

    res["suppression"] = np.where(res["n"].fillna(0) < min_size, "primary", "")
    if min_size <= 0 or not len(res):
        return res
    split = [k for k in keys if res[k].nunique(dropna=False) > 1]
    for _ in range(20):
        changed = False
        for dim in split:
            others = [k for k in split if k != dim]
            sup = res["suppression"] != ""
            grp = (
                res.groupby(others, sort=False, dropna=False)
                if others
                else res.groupby(lambda _: 0)
            )
            n_sup = sup.groupby(
                [res[k] for k in others] if others else np.zeros(len(res)), dropna=False
            ).transform("sum")
            size = grp["n"].transform("size")
            need = (n_sup == 1) & (size > 1) & ~sup
            if not need.any():
                continue
            # in each margin that needs it, the unsuppressed cell with the smallest n
            cand = res.loc[need, [*others, "n"]].copy()
            cand["_rank"] = (
                cand.groupby(others, sort=False, dropna=False)["n"].rank(method="first")
                if others
                else cand["n"].rank(method="first")
            )
            pick = cand.index[cand["_rank"] == 1]
            res.loc[pick, "suppression"] = "secondary"
            changed = True
        if not changed:
            break
    return res


def compute_indicators(
    framework: Framework,
    tables: Mapping[str, pd.DataFrame],
    by: Sequence[str] = (),
    ci: CIMethod = "wilson",
    confidence: float | None = None,
    indicators: Sequence[str] | None = None,
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Compute framework indicators as one tidy table.

    Parameters
    ----------
    framework
        The validated framework (:func:`clm_research.framework.load_framework`).
    tables
        Canonical tables by name (as from :func:`clm_research.tables.read_country`).
    by
        Group columns, e.g. ``["facility_id", "round"]`` or
        ``["district", "round", "sex", "key_population"]``. An indicator whose dataset has no
        such column is computed across it, and the column holds :data:`ALL`.
    ci
        ``"wilson"`` (default) or ``"cluster"`` to account for clustering by facility.
    confidence
        Confidence level; default the framework's (0.95).
    indicators
        Indicator ids to compute; default all.
    as_of
        Extraction date for durations (open issues are censored here); default the latest
        date in the data.

    Returns
    -------
    pandas.DataFrame
        Columns ``indicator_id, label, level, <by…>, type, unit, direction, numerator,
        denominator, estimate, ci_low, ci_high, n, n_clusters, design_effect, suppressed,
        suppression, target, rag``, sorted by indicator (framework order) and group.
    """
    import numpy as np
    import pandas as pd

    confidence = confidence or framework.confidence
    ctx = _Context(tables)
    by = list(by)
    as_of_ts = pd.Timestamp(as_of) if as_of is not None else None
    chosen = (
        framework.indicators
        if indicators is None
        else tuple(framework.indicator(i) for i in indicators)
    )
    parts: list[pd.DataFrame] = []
    for order, ind in enumerate(chosen):
        if ind.type in ("proportion", "rate", "count"):
            res = _proportion_like(ind, ctx, by, ci, confidence)
        elif ind.type == "mean":
            res = _mean(ind, ctx, by, ci, confidence)
        elif ind.type == "median":
            res = _median(ind, ctx, by, ci, confidence)
        else:
            res = _duration(ind, ctx, by, confidence, as_of_ts)
        res = res.reset_index()
        res = res.drop(columns=[c for c in ("_all",) if c in res.columns])
        keys = [k for k in by if k in res.columns]
        for k in by:
            if k not in res.columns:
                res[k] = ALL
        res = _suppress(res, keys, framework.cell_size(ind))
        res["suppressed"] = res["suppression"] != ""
        blank = ["estimate", "ci_low", "ci_high", "numerator", "denominator"]
        res.loc[res["suppressed"], blank] = np.nan
        res["indicator_id"] = ind.id
        res["label"] = ind.label
        res["level"] = ind.level
        res["type"] = ind.type
        res["unit"] = ind.unit
        res["direction"] = ind.direction
        res["target"] = ind.target if ind.target is not None else np.nan
        res["rag"] = rag_status(res["estimate"], ind)
        res["_order"] = order
        for col in ("n_clusters", "design_effect"):
            if col not in res.columns:
                res[col] = np.nan
        parts.append(res)
    if not parts:
        return pd.DataFrame(columns=[*RESULT_COLUMNS[:3], *by, *RESULT_COLUMNS[3:]])
    out = pd.concat(parts, ignore_index=True)
    for k in by:
        out[k] = out[k].astype("string").fillna("(missing)")
    out = out.sort_values(["_order", *by], kind="stable").reset_index(drop=True)
    cols = [*RESULT_COLUMNS[:3], *by, *RESULT_COLUMNS[3:]]
    out = out[cols]
    for c in (
        "numerator",
        "denominator",
        "estimate",
        "ci_low",
        "ci_high",
        "n",
        "n_clusters",
        "design_effect",
        "target",
    ):
        out[c] = out[c].astype("float64")
    return out
