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
A cell whose size is below the indicator's ``min_cell_size`` is suppressed — *primary*
suppression. The size is the denominator for proportions, the number of rows for means, medians
and durations, and the numerator for counts and rates. Then, within every margin of the grouping
(all groups that differ only in one ``by`` column), a single suppressed cell could be recovered
from the margin's total, so the next-smallest cell of that margin is suppressed too — *secondary*
suppression — repeated until no margin has exactly one suppressed cell. A suppressed row keeps
its group columns and blanks everything that reveals the cell (:data:`REVEALING_COLUMNS`:
numerator, denominator, estimate, interval, ``n``, ``n_clusters``, design effect, RAG status).

This is one table's protection. Published tables are protected together (every grouping, round
and national total at once, audited by linear programming) by
:func:`clm_research.disclosure.protect_tables`, which uses :class:`Tabulation` to compute every
grouping from one preparation of the data and :func:`indicator_quantities` for the additive
quantities (row weights) that tie the tables together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from clm_research.derived import enrich
from clm_research.expressions import evaluate, parse
from clm_research.framework import Availability, Framework, Indicator, resolve_availability

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "ALL",
    "RESULT_COLUMNS",
    "REVEALING_COLUMNS",
    "Tabulation",
    "blank_suppressed",
    "compute_indicators",
    "indicator_quantities",
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

#: Columns that reveal a cell: blank on every suppressed row, in every published table. ``n`` is
#: the numerator (counts, rates) or the denominator (the others); the interval, the design effect
#: and the RAG status are functions of the estimate; ``n_clusters`` bounds the denominator.
REVEALING_COLUMNS: tuple[str, ...] = (
    "numerator",
    "denominator",
    "estimate",
    "ci_low",
    "ci_high",
    "n",
    "n_clusters",
    "design_effect",
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
        hi = np.asarray(chi2.ppf(1 - alpha / 2, 2 * (k + 1)) / 2)
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


class _Groups:
    """Integer group codes of a frame for a list of key columns, computed once.

    ``codes[i]`` is the group of row ``i``; ``index`` lists the groups in sorted key order.
    Sums per group are ``np.bincount`` calls, far cheaper than a pandas groupby per sum.
    """

    def __init__(self, factors: list[tuple[np.ndarray, pd.Index]], keys: list[str], n: int) -> None:
        """``factors`` holds (codes, sorted uniques) of each key column, as ``pd.factorize``."""
        import numpy as np
        import pandas as pd

        self.keys = keys
        if not keys:
            self.codes = np.zeros(n, dtype=np.intp)
            self.index = pd.Index([0], name="_all")
            self.n = 1
            return
        combined = np.zeros(n, dtype=np.int64)
        radix = 1
        for codes, uniq in factors:
            combined = combined * (len(uniq) + 1) + codes
            radix *= len(uniq) + 1
        if radix <= 8 * n + 1024:
            # O(n): a presence table over the mixed-radix codes, numbered in key order
            present = np.bincount(combined, minlength=radix) > 0
            self.codes = (np.cumsum(present) - 1)[combined].astype(np.intp)
            self.n = int(present.sum())
        else:  # too many key combinations for a table: sort instead
            group_values, inverse = np.unique(combined, return_inverse=True)
            self.codes = inverse.astype(np.intp).ravel()
            self.n = len(group_values)
        first = np.zeros(self.n, dtype=np.intp)
        first[self.codes[::-1]] = np.arange(n - 1, -1, -1)  # first row of each group
        arrays = [np.asarray(uniq)[codes[first]] for codes, uniq in factors]
        self.index = (
            pd.MultiIndex.from_arrays(arrays, names=keys)
            if len(keys) > 1
            else pd.Index(arrays[0], name=keys[0])
        )

    def sum(self, values: np.ndarray) -> np.ndarray:
        import numpy as np

        return np.bincount(self.codes, weights=values, minlength=self.n)

    def parent_of(self, child: _Groups) -> np.ndarray:
        """For each group of ``child`` (a finer grouping), the group here that contains it."""
        import numpy as np

        parent = np.zeros(child.n, dtype=np.intp)
        parent[child.codes] = self.codes
        return parent


def _design_effect(
    y_c: np.ndarray, m_c: np.ndarray, parent: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Design effect of ratio estimates p = Σy/Σm per group from cluster totals.

    ``y_c``, ``m_c`` are cluster totals, ``parent[c]`` the group of cluster ``c`` and ``p`` the
    estimate per group. The cluster-robust (linearisation) variance
    ``k/(k-1) · Σ_c (y_c − p·m_c)² / (Σ_c m_c)²`` is divided by the simple random sampling
    variance ``p(1−p)/Σ m_c``. Returns (DE, number of clusters); DE = 1 where undefined.
    """
    import numpy as np

    n = len(p)
    keep = m_c > 0
    y_c, m_c, parent = y_c[keep], m_c[keep], parent[keep]
    r2 = (y_c - p[parent] * m_c) ** 2
    k = np.bincount(parent, minlength=n).astype(float)
    big_r = np.bincount(parent, weights=r2, minlength=n)
    big_m = np.bincount(parent, weights=m_c, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_cluster = k / (k - 1) * big_r / big_m**2
        var_srs = p * (1 - p) / big_m
        de = var_cluster / var_srs
    return np.where((k >= 2) & (var_srs > 0), de, 1.0), k


class _Context:
    """Enriched datasets and their groupings, built once and shared by every grouping."""

    def __init__(self, tables: Mapping[str, pd.DataFrame]) -> None:
        self.tables = tables
        self._frames: dict[str, pd.DataFrame] = {}
        self._groups: dict[tuple[str, tuple[str, ...]], _Groups] = {}
        self._factors: dict[tuple[str, str], tuple[np.ndarray, pd.Index]] = {}
        self._masks: dict[tuple[str, str | None], np.ndarray] = {}

    def frame(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            if name not in self.tables:
                from clm_research.errors import DataQualityError

                raise DataQualityError(
                    f"table {name!r} is needed by the framework but was not given; "
                    f"tables given: {', '.join(self.tables)}"
                )
            self._frames[name] = enrich(name, self.tables[name], self.tables.get("facilities"))
        return self._frames[name]

    def keys(self, name: str, by: Sequence[str]) -> list[str]:
        """The ``by`` columns dataset ``name`` has (the others hold :data:`ALL`)."""
        frame = self.frame(name)
        return [c for c in by if c in frame.columns]

    def factor(self, name: str, column: str) -> tuple[np.ndarray, pd.Index]:
        """Integer codes and sorted unique values of one column, computed once per call."""
        import pandas as pd

        key = (name, column)
        if key not in self._factors:
            self._factors[key] = pd.factorize(
                self.frame(name)[column], sort=True, use_na_sentinel=False
            )
        return self._factors[key]

    def groups(self, name: str, keys: Sequence[str]) -> _Groups:
        key = (name, tuple(keys))
        if key not in self._groups:
            factors = [self.factor(name, k) for k in keys]
            self._groups[key] = _Groups(factors, list(keys), len(self.frame(name)))
        return self._groups[key]

    def mask(self, name: str, text: str | None) -> np.ndarray:
        """Rows where the filter holds (all rows when there is none), cached."""
        import numpy as np

        key = (name, text)
        if key not in self._masks:
            frame = self.frame(name)
            if text is None:
                self._masks[key] = np.ones(len(frame), dtype=bool)
            else:
                self._masks[key] = evaluate(parse(text), frame).to_numpy(dtype=bool)
        return self._masks[key]

    def column(self, name: str, column: str) -> np.ndarray:
        """A numeric column as float64 with NaN for missing values."""
        return self.frame(name)[column].to_numpy(dtype="float64", na_value=float("nan"))


def _weights(ctx: _Context, name: str, mask: np.ndarray, column: str | None) -> np.ndarray:
    """Per-row contribution: 1 per selected row, or the column's value on selected rows."""
    import numpy as np

    if column is None:
        return mask.astype("float64")
    values = ctx.column(name, column)
    return np.where(mask & ~np.isnan(values), values, 0.0)


def _cell_keys(ind: Indicator, ctx: _Context, by: Sequence[str]) -> list[str]:
    """The ``by`` columns an indicator is split by (its dataset's, and its denominator's)."""
    keys = ctx.keys(ind.dataset, by)
    if ind.denominator_dataset:
        keys = [k for k in keys if k in ctx.keys(ind.denominator_dataset, by)]
    return keys


def _proportion_weights(
    ind: Indicator, ctx: _Context
) -> tuple[np.ndarray, tuple[str, np.ndarray] | None]:
    """Row weights of a proportion, rate or count: numerator, and (dataset, denominator)."""
    import numpy as np

    name = ind.dataset
    pop = ctx.mask(name, None if ind.denominator_dataset else ind.denominator)
    if ind.numerator_sum and ind.denominator_sum and not ind.denominator_dataset:
        # A ratio of two reported counts (suppressed / tested) takes a row only when both are
        # reported: a count left unreported is missing, not zero, and one side alone would
        # bias the ratio (WHO Data Quality Review: internal consistency of paired numbers).
        pop = (
            pop
            & ~np.isnan(ctx.column(name, ind.numerator_sum))
            & ~np.isnan(ctx.column(name, ind.denominator_sum))
        )
    num_mask = pop & ctx.mask(name, ind.numerator) if ind.numerator else pop
    num_w = _weights(ctx, name, num_mask, ind.numerator_sum)
    if ind.type == "count":
        return num_w, None
    if ind.denominator_dataset:
        dname = ind.denominator_dataset
        dmask = ctx.mask(dname, ind.denominator)
        return num_w, (dname, _weights(ctx, dname, dmask, ind.denominator_sum))
    return num_w, (name, _weights(ctx, name, pop, ind.denominator_sum))


def _value_scope(ind: Indicator, ctx: _Context) -> tuple[np.ndarray, np.ndarray]:
    """Value column of a mean or median, and the rows in scope (filter holds, value present)."""
    import numpy as np

    values = ctx.column(ind.dataset, ind.value)  # type: ignore[arg-type]
    scope = ctx.mask(ind.dataset, ind.denominator) & ~np.isnan(values)
    return values, scope


def _duration_rows(
    ind: Indicator, ctx: _Context, as_of: pd.Timestamp | None
) -> tuple[np.ndarray, np.ndarray, pd.Timestamp]:
    """Rows of a duration (filter holds, start known), its events by ``as_of``, and ``as_of``.

    ``as_of`` defaults to the latest start or end date among those rows.
    """
    import pandas as pd

    frame = ctx.frame(ind.dataset)
    pop = ctx.mask(ind.dataset, ind.denominator) & frame[ind.start].notna().to_numpy()
    start, end = frame[ind.start][pop], frame[ind.end][pop]
    if as_of is None:
        as_of = max(start.max(), end.max()) if pop.any() else pd.Timestamp.now()
    event = pop & (frame[ind.end].notna() & (frame[ind.end] <= as_of)).to_numpy(dtype=bool)
    return pop, event, as_of


def indicator_quantities(
    ind: Indicator, ctx: _Context | Tabulation, as_of: pd.Timestamp | None = None
) -> dict[str, tuple[str, np.ndarray]]:
    """The additive quantities of an indicator, as row weights of a dataset.

    Every published ``numerator`` and ``denominator`` (and ``n``, which equals one of them) is
    the sum of one of these weight vectors over the rows of a cell, so a coarser cell is the sum
    of the finer cells it contains — the relations a disclosure audit must assume an attacker
    uses (:mod:`clm_research.disclosure`).

    Returns
    -------
    dict
        ``{"numerator": (dataset, weights), "denominator": (dataset, weights)}`` as far as the
        type has them: proportion and rate both (a rate's denominator may come from another
        dataset), count the numerator, mean the sum of values and the number of rows, median the
        number of rows, duration the events (resolved by ``as_of``) and the number of rows.
    """
    import numpy as np

    c = ctx._ctx if isinstance(ctx, Tabulation) else ctx
    if ind.type in ("proportion", "rate", "count"):
        num_w, den = _proportion_weights(ind, c)
        out: dict[str, tuple[str, np.ndarray]] = {"numerator": (ind.dataset, num_w)}
        if den is not None:
            out["denominator"] = den
        return out
    if ind.type in ("mean", "median"):
        values, scope = _value_scope(ind, c)
        rows: dict[str, tuple[str, np.ndarray]] = {
            "denominator": (ind.dataset, scope.astype("float64"))
        }
        if ind.type == "median":
            return rows
        return {"numerator": (ind.dataset, np.where(scope, values, 0.0)), **rows}
    pop, event, _ = _duration_rows(ind, c, as_of)
    return {
        "numerator": (ind.dataset, event.astype("float64")),
        "denominator": (ind.dataset, pop.astype("float64")),
    }


def _proportion_like(
    ind: Indicator, ctx: _Context, by: Sequence[str], ci: CIMethod, confidence: float
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    name = ind.dataset
    frame = ctx.frame(name)
    keys = _cell_keys(ind, ctx, by)
    groups = ctx.groups(name, keys)
    num_w, den = _proportion_weights(ind, ctx)
    num = pd.Series(groups.sum(num_w), index=groups.index)
    if ind.type == "count" or den is None:
        out = pd.DataFrame({"numerator": num, "denominator": np.nan, "n": num})
        out["estimate"] = out["numerator"]
        out["ci_low"], out["ci_high"] = poisson_interval(out["numerator"], confidence)
        return out
    dname, den_w = den
    if ind.denominator_dataset:
        dgroups = ctx.groups(dname, keys)
        den_s = pd.Series(dgroups.sum(den_w), index=dgroups.index)
        num = num.reindex(den_s.index, fill_value=0.0)
        out = pd.DataFrame({"numerator": num, "denominator": den_s})
    else:
        out = pd.DataFrame({"numerator": num, "denominator": groups.sum(den_w)}, index=groups.index)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["estimate"] = out["numerator"] / out["denominator"]
    if ind.type == "rate":
        out["n"] = out["numerator"]
        lo, hi = poisson_interval(out["numerator"], confidence)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["ci_low"], out["ci_high"] = lo / out["denominator"], hi / out["denominator"]
        return out
    # the size of a proportion is its denominator: the number of rows in scope, or the sum of
    # the denominator column (which is the row count when there is no such column)
    out["n"] = out["denominator"]
    n_eff = out["denominator"].to_numpy()
    if "facility_id" in frame.columns and "facility_id" not in keys:
        clusters = ctx.groups(name, [*keys, "facility_id"])
        parent = groups.parent_of(clusters)
        m_c = clusters.sum(den_w)
        out["n_clusters"] = np.bincount(parent, weights=(m_c > 0), minlength=groups.n)
        if ci == "cluster":
            de, _ = _design_effect(clusters.sum(num_w), m_c, parent, out["estimate"].to_numpy())
            out["design_effect"] = de
            n_eff = n_eff / np.maximum(de, 1.0)
    elif "facility_id" in keys:
        out["n_clusters"] = (out["denominator"] > 0).astype(float)
    out["ci_low"], out["ci_high"] = wilson_interval(
        out["estimate"].to_numpy() * n_eff, n_eff, confidence
    )
    return out


def _cluster_parent(
    ind: Indicator, ctx: _Context, groups: _Groups
) -> tuple[_Groups, np.ndarray] | None:
    keys = groups.keys
    if "facility_id" not in ctx.frame(ind.dataset).columns or "facility_id" in keys:
        return None
    clusters = ctx.groups(ind.dataset, [*keys, "facility_id"])
    return clusters, groups.parent_of(clusters)


def _mean(
    ind: Indicator, ctx: _Context, by: Sequence[str], ci: CIMethod, confidence: float
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd
    from scipy.stats import t as student_t

    groups = ctx.groups(ind.dataset, ctx.keys(ind.dataset, by))
    values, scope = _value_scope(ind, ctx)
    w = scope.astype("float64")
    x = np.where(scope, values, 0.0)
    n = groups.sum(w)
    total = groups.sum(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        dev = np.where(scope, values - mean[groups.codes], 0.0)
        sd = np.sqrt(groups.sum(dev**2) / (n - 1))
        se = sd / np.sqrt(n)
    df = n - 1
    out = pd.DataFrame(
        {"numerator": total, "denominator": n, "n": n, "estimate": mean}, index=groups.index
    )
    cl = _cluster_parent(ind, ctx, groups)
    if cl is not None:
        clusters, parent = cl
        m_c = clusters.sum(w)
        out["n_clusters"] = np.bincount(parent, weights=(m_c > 0), minlength=groups.n)
        if ci == "cluster":
            r2 = clusters.sum(dev) ** 2  # Σ_c (s_c − mean·m_c)² = Σ_c (Σ_i∈c dev_i)²
            k = np.bincount(parent, weights=(m_c > 0), minlength=groups.n)
            with np.errstate(invalid="ignore", divide="ignore"):
                se_c = (
                    np.sqrt(k / (k - 1) * np.bincount(parent, weights=r2, minlength=groups.n)) / n
                )
                out["design_effect"] = (se_c / se) ** 2
            se, df = np.where(k >= 2, se_c, np.nan), k - 1
    with np.errstate(invalid="ignore"):
        tq = student_t.ppf(0.5 + confidence / 2, np.where(df >= 1, df, np.nan))
    out["ci_low"], out["ci_high"] = mean - tq * se, mean + tq * se
    return out


def _median(
    ind: Indicator, ctx: _Context, by: Sequence[str], ci: CIMethod, confidence: float
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    groups = ctx.groups(ind.dataset, ctx.keys(ind.dataset, by))
    values, scope = _value_scope(ind, ctx)
    rows = np.flatnonzero(scope)
    codes, v = groups.codes[rows], values[rows]
    order = np.lexsort((v, codes))
    v_sorted = v[order]
    n = np.bincount(codes, minlength=groups.n)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    has = n > 0
    lo_mid = start + np.maximum(n - 1, 0) // 2
    hi_mid = start + n // 2
    median = (
        np.where(
            has,
            (
                v_sorted[np.minimum(lo_mid, len(v_sorted) - 1)]
                + v_sorted[np.minimum(hi_mid, len(v_sorted) - 1)]
            )
            / 2,
            np.nan,
        )
        if len(v_sorted)
        else np.full(groups.n, np.nan)
    )
    out = pd.DataFrame(
        {"estimate": median, "n": n.astype(float), "numerator": np.nan}, index=groups.index
    )
    out["denominator"] = out["n"]
    de = np.ones(groups.n)
    cl = _cluster_parent(ind, ctx, groups)
    if cl is not None:
        clusters, parent = cl
        in_scope = scope.astype("float64")
        m_c = clusters.sum(in_scope)
        out["n_clusters"] = np.bincount(parent, weights=(m_c > 0), minlength=groups.n)
        if ci == "cluster":
            below = (scope & (values <= median[groups.codes])).astype("float64")
            p = groups.sum(below) / np.maximum(n, 1)
            de, _ = _design_effect(clusters.sum(below), m_c, parent, p)
            de = np.maximum(np.nan_to_num(de, nan=1.0), 1.0)
            out["design_effect"] = de
    # Woodruff: the interval for the 50% point, mapped back through the order statistics
    z = _z(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        se_p = np.sqrt(de * 0.25 / n)
        lo_rank = np.clip(np.floor((0.5 - z * se_p) * n), 0, None)
        hi_rank = np.minimum(np.ceil((0.5 + z * se_p) * n) - 1, n - 1)
    for col, rank in (("ci_low", lo_rank), ("ci_high", hi_rank)):
        pos = start + np.nan_to_num(rank, nan=0).astype(np.int64)
        ok = has & (pos < len(v_sorted))
        out[col] = np.where(ok, v_sorted[np.where(ok, pos, 0)] if len(v_sorted) else np.nan, np.nan)
    return out


#: Rounding tolerance of a Kaplan–Meier survival probability compared with 0.5.
KM_TOLERANCE = 1e-9


def _duration(
    ind: Indicator,
    ctx: _Context,
    by: Sequence[str],
    confidence: float,
    as_of: pd.Timestamp | None,
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    frame = ctx.frame(ind.dataset)
    keys = ctx.keys(ind.dataset, by)
    pop, event_rows, as_of = _duration_rows(ind, ctx, as_of)
    sub = frame.loc[pop, [*keys, ind.start, ind.end]].copy()
    event = pd.Series(event_rows[pop], index=sub.index)
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

    # the median is the first time S(t) <= 0.5; the tolerance makes an exact 0.5 (e.g. 2 of 4
    # resolved) count whatever the rounding of the running product, as in
    # evaluation.accountability (tests/test_km_agreement.py checks the two agree)
    half = 0.5 + KM_TOLERANCE
    out = pd.DataFrame({"estimate": first_time(at["surv"] <= half)})
    # the lower band reaches 0.5 first: it gives the lower limit of the median
    out["ci_low"] = first_time(at["s_lo"] <= half)
    out["ci_high"] = first_time(at["s_hi"] <= half)
    counts = sub.groupby(keys, sort=True, dropna=False).agg(
        n=("_d", "size"), numerator=("_d", "sum")
    )
    out = out.join(counts)
    out["denominator"] = out["n"]
    return out


def _suppress(res: pd.DataFrame, keys: list[str], min_size: int) -> np.ndarray:
    """Suppression labels: "primary", "secondary" or "" for each row of ``res``."""
    import numpy as np
    import pandas as pd

    n = res["n"].fillna(0).to_numpy(dtype=float)
    label = np.where(n < min_size, "primary", "").astype(object)
    if min_size <= 0 or not len(res):
        return label
    codes = {k: pd.factorize(res[k], use_na_sentinel=False)[0] for k in keys}
    split = [k for k in keys if codes[k].max(initial=0) > 0]
    margins: dict[str, np.ndarray] = {}  # for each dimension, the margin of every cell
    for dim in split:
        combined = np.zeros(len(res), dtype=np.int64)
        for k in split:
            if k != dim:
                combined = combined * (int(codes[k].max()) + 1) + codes[k]
        margins[dim] = np.unique(combined, return_inverse=True)[1].ravel()
    for _ in range(50):
        changed = False
        for dim in split:
            margin = margins[dim]
            sup = label != ""
            n_sup = np.bincount(margin, weights=sup)[margin]
            size = np.bincount(margin)[margin]
            need = (n_sup == 1) & (size > 1) & ~sup
            if not need.any():
                continue
            # the smallest unsuppressed cell of each margin that needs a second suppression
            rows = np.flatnonzero(need)
            order = rows[np.lexsort((n[rows], margin[rows]))]
            first = np.r_[True, margin[order][1:] != margin[order][:-1]]
            label[order[first]] = "secondary"
            changed = True
        if not changed:
            break
    return label


def blank_suppressed(result: pd.DataFrame) -> pd.DataFrame:
    """Blank every column that reveals a suppressed cell (:data:`REVEALING_COLUMNS`), in place.

    Parameters
    ----------
    result
        An indicator table with a boolean ``suppressed`` column.

    Returns
    -------
    pandas.DataFrame
        ``result`` itself: suppressed rows keep only their group, labels and target.
    """
    import numpy as np
    import pandas as pd

    sup = result["suppressed"].to_numpy(dtype=bool)
    if sup.any():
        numeric = [c for c in REVEALING_COLUMNS if c in result.columns and c != "rag"]
        result.loc[sup, numeric] = np.nan
        if "rag" in result.columns:
            result["rag"] = result["rag"].astype("string").mask(pd.Series(sup, index=result.index))
    return result


class Tabulation:
    """A country's tables prepared once, for indicator tables by any number of groupings.

    The datasets are enriched (derived columns), their filters evaluated and their group codes
    computed once and shared by every :meth:`table` call, so the published groupings of a
    country cost little more than the largest of them.

    Parameters
    ----------
    framework
        The validated framework.
    tables
        Canonical tables by name.
    ci, confidence, indicators, as_of
        As for :func:`compute_indicators`.

    Attributes
    ----------
    indicators
        The indicators computed: those the data can give (see ``availability``).
    availability
        :func:`~clm_research.framework.resolve_availability` of the requested indicators on
        ``tables``: what is not computed, and why (a table or column not collected).
    """

    def __init__(
        self,
        framework: Framework,
        tables: Mapping[str, pd.DataFrame],
        ci: CIMethod = "wilson",
        confidence: float | None = None,
        indicators: Sequence[str] | None = None,
        as_of: str | pd.Timestamp | None = None,
    ) -> None:
        import pandas as pd

        self.framework = framework
        self.ci: CIMethod = ci
        self.confidence = confidence or framework.confidence
        self.as_of = pd.Timestamp(as_of) if as_of is not None else None
        self.availability: Availability = resolve_availability(framework, tables, indicators)
        self.indicators: tuple[Indicator, ...] = tuple(
            framework.indicator(i) for i in self.availability.computable
        )
        self._ctx = _Context(tables)

    def frame(self, dataset: str) -> pd.DataFrame:
        """Dataset ``dataset`` with its derived columns (district, ``clm_arm``, ``round``…)."""
        return self._ctx.frame(dataset)

    def cell_keys(self, indicator: Indicator, by: Sequence[str]) -> list[str]:
        """The columns of ``by`` an indicator is split by; the others hold :data:`ALL`."""
        return _cell_keys(indicator, self._ctx, by)

    def groups(self, dataset: str, keys: Sequence[str]) -> tuple[np.ndarray, pd.Index, int]:
        """Group of every row of ``dataset`` by ``keys``: (codes, group index, number of groups).

        The index lists the groups in sorted key order, with the key values as the data hold
        them (before the string conversion of :meth:`table`).
        """
        g = self._ctx.groups(dataset, keys)
        return g.codes, g.index, g.n

    def quantities(self, indicator: Indicator) -> dict[str, tuple[str, np.ndarray]]:
        """:func:`indicator_quantities` of one indicator, at this tabulation's ``as_of``."""
        return indicator_quantities(indicator, self._ctx, self.as_of)

    def table(self, by: Sequence[str] = (), blank: bool = True) -> pd.DataFrame:
        """One indicator table (see :func:`compute_indicators`).

        ``blank=False`` keeps the values of suppressed cells (for the disclosure audit only:
        such a table must never be published).
        """
        import numpy as np
        import pandas as pd

        by = list(by)
        ctx = self._ctx
        parts: list[pd.DataFrame] = []
        for order, ind in enumerate(self.indicators):
            if ind.type in ("proportion", "rate", "count"):
                res = _proportion_like(ind, ctx, by, self.ci, self.confidence)
            elif ind.type == "mean":
                res = _mean(ind, ctx, by, self.ci, self.confidence)
            elif ind.type == "median":
                res = _median(ind, ctx, by, self.ci, self.confidence)
            else:
                res = _duration(ind, ctx, by, self.confidence, self.as_of)
            res = res.reset_index()
            res = res.drop(columns=[c for c in ("_all",) if c in res.columns])
            keys = [k for k in by if k in res.columns]
            for k in by:
                if k not in res.columns:
                    res[k] = ALL
            res["suppression"] = _suppress(res, keys, self.framework.cell_size(ind))
            res["suppressed"] = res["suppression"] != ""
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
            out = pd.DataFrame(columns=[*RESULT_COLUMNS[:3], *by, *RESULT_COLUMNS[3:]])
            out.attrs["not_computed"] = dict(self.availability.not_computed)
            return out
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
        out["suppression"] = out["suppression"].astype(object)
        out = blank_suppressed(out) if blank else out
        out.attrs["not_computed"] = dict(self.availability.not_computed)
        return out


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

    Small cells are suppressed within this one table (primary and secondary suppression, see
    the module docstring). Tables that are published together must be protected together:
    :func:`clm_research.disclosure.protect_tables` adds the complementary suppressions that an
    audit of all of them needs.

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
        suppression, target, rag``, sorted by indicator (framework order) and group. A
        suppressed row has every column of :data:`REVEALING_COLUMNS` blank. Only the
        indicators the data can give are computed (a country collects a subset of the tables
        and columns); ``result.attrs["not_computed"]`` maps every other requested indicator
        to the reason (:func:`clm_research.framework.resolve_availability`).
    """
    return Tabulation(framework, tables, ci, confidence, indicators, as_of).table(by)
