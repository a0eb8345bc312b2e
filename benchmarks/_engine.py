"""Indicator-engine benchmark: the engine against a naive pandas loop and DuckDB SQL.

Run one size per process (``python benchmarks/_engine.py --rows 1000000 …``) so that the peak
memory of each size is measured on its own; :mod:`benchmarks.run` starts these processes and
collects the JSON they print.

The data are demo countries from the project's generator (400 facilities, 8 quarterly rounds),
cached as Parquet under ``reports/bench/cache/``. The 10M-row table is the 1M-row table repeated
ten times with fresh interview ids (same facilities, rounds and groups as a 400 × 3125 country):
the generator itself peaks at ~1.7 GB RSS and ~10 s per million rows, so a direct 10M draw would
need ~16 GB.

Baselines compute the ten interview indicators (count, six proportions with Wilson intervals,
two means with t intervals, a median with the Woodruff interval) with primary suppression:

* ``naive`` — one indicator at a time, pandas boolean filters and ``groupby``, the way an
  analyst writes it in a notebook;
* ``duckdb`` — the same aggregates in one SQL query per grouping (DuckDB over the pandas
  frames), intervals computed in SQL (t and Poisson quantiles of the few thousand groups in
  scipy afterwards).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import peak_rss_bytes, reset_peak_rss, rss_bytes, summary, time_call

__all__ = [
    "GROUPINGS",
    "INTERVIEW_INDICATORS",
    "SIZES",
    "ensure_data",
    "load_data",
    "naive_indicators",
    "duckdb_indicators",
]

#: The two groupings of the issue.
GROUPINGS: dict[str, list[str]] = {
    "facility_round": ["facility_id", "round"],
    "district_round_sex_kp": ["district", "round", "sex", "key_population"],
}

#: Interview-level indicators of the default framework (the ones the baselines implement).
INTERVIEW_INDICATORS: tuple[str, ...] = (
    "interviews_completed",
    "wait_time_median",
    "wait_time_mean",
    "medicine_stockout_experienced",
    "treated_with_respect",
    "confidentiality_breach",
    "vl_result_received",
    "multi_month_dispensing",
    "satisfaction_mean",
    "denied_service",
)

#: rows label -> (facilities, interviews per facility-round, repeat factor of the 1M table)
SIZES: dict[str, tuple[int, int, int]] = {
    "3k": (400, 1, 1),
    "10k": (400, 3, 1),
    "100k": (400, 31, 1),
    "1M": (400, 312, 1),
    "10M": (400, 312, 10),
}

Z95 = 1.959963984540054
MIN_CELL = 10


def ensure_data(label: str, cache: Path) -> Path:
    """Generate (once) and cache the demo tables of one size; return the folder."""
    from clm_research.demo import generate_country
    from clm_research.tables import write_tables

    folder = cache / f"engine-{label}"
    if (folder / "interviews.parquet").is_file():
        return folder
    facilities, per_round, repeat = SIZES[label]
    if repeat > 1:
        import pandas as pd

        base = ensure_data("1M", cache)
        folder.mkdir(parents=True, exist_ok=True)
        for p in base.glob("*.parquet"):
            if p.name != "interviews.parquet":
                (folder / p.name).write_bytes(p.read_bytes())
        one = pd.read_parquet(base / "interviews.parquet")
        parts = []
        for k in range(repeat):
            part = one.copy()
            part["interview_id"] = part["interview_id"] + f"-{k}"
            parts.append(part)
        tmp = folder / "interviews.parquet.tmp"
        pd.concat(parts, ignore_index=True).to_parquet(tmp, index=False)
        tmp.rename(folder / "interviews.parquet")
        return folder
    demo = generate_country("XA", facilities=facilities, interviews_per_round=per_round)
    tmp = cache / f".engine-{label}.tmp"
    write_tables(demo.clean, tmp)
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def load_data(folder: Path) -> dict[str, Any]:
    """Read a cached size in canonical dtypes."""
    import pandas as pd

    from clm_research.schema import TABLES
    from clm_research.tables import coerce

    return {
        name: coerce(pd.read_parquet(folder / f"{name}.parquet"), name)
        for name in TABLES
        if (folder / f"{name}.parquet").is_file()
    }


# --------------------------------------------------------------------------- baseline (a)


def naive_indicators(tables: dict[str, Any], by: list[str]) -> Any:
    """The ten interview indicators, one at a time, as an analyst would write them in pandas."""
    import numpy as np
    import pandas as pd
    from scipy import stats

    df = tables["interviews"].merge(
        tables["facilities"][["facility_id", "district"]], on="facility_id", how="left"
    )
    z = Z95
    results = []

    def wilson(x, n):
        p = x / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        return centre - half, centre + half

    def proportion(name, numerator, denominator):
        sub = df[denominator.fillna(False)].copy()
        sub["hit"] = numerator[denominator.fillna(False)].fillna(False).astype(int)
        g = sub.groupby(by, observed=True)["hit"]
        res = pd.DataFrame({"numerator": g.sum(), "n": g.size()})
        res["estimate"] = res["numerator"] / res["n"]
        res["ci_low"], res["ci_high"] = wilson(res["numerator"], res["n"])
        res["indicator_id"] = name
        results.append(res.reset_index())

    def mean(name, column):
        sub = df[df[column].notna()]
        g = sub.groupby(by, observed=True)[column]
        res = g.agg(["mean", "std", "count"])
        t = stats.t.ppf(0.975, res["count"] - 1)
        se = res["std"] / np.sqrt(res["count"])
        res = pd.DataFrame(
            {
                "estimate": res["mean"],
                "ci_low": res["mean"] - t * se,
                "ci_high": res["mean"] + t * se,
                "n": res["count"],
            }
        )
        res["indicator_id"] = name
        results.append(res.reset_index())

    def median(name, column):
        sub = df[df[column].notna()]

        def woodruff(s):
            v = np.sort(s.to_numpy(dtype=float))
            n = len(v)
            se = np.sqrt(0.25 / n)
            lo = int(max(np.floor((0.5 - z * se) * n), 0))
            hi = int(min(np.ceil((0.5 + z * se) * n) - 1, n - 1))
            return pd.Series({"estimate": np.median(v), "ci_low": v[lo], "ci_high": v[hi], "n": n})

        res = sub.groupby(by, observed=True)[column].apply(woodruff).unstack()
        res["indicator_id"] = name
        results.append(res.reset_index())

    # output: interviews completed (a count with a Poisson interval)
    g = df[df["interview_id"].notna()].groupby(by, observed=True)
    res = pd.DataFrame({"n": g.size()})
    res["estimate"] = res["n"]
    res["ci_low"] = stats.chi2.ppf(0.025, 2 * res["n"]) / 2
    res["ci_high"] = stats.chi2.ppf(0.975, 2 * (res["n"] + 1)) / 2
    res["indicator_id"] = "interviews_completed"
    results.append(res.reset_index())

    median("wait_time_median", "wait_minutes")
    mean("wait_time_mean", "wait_minutes")
    proportion(
        "medicine_stockout_experienced",
        df["got_all_medicines"] == False,  # noqa: E712 - nullable boolean, as analysts write it
        df["on_art"] & df["got_all_medicines"].notna(),
    )
    proportion(
        "treated_with_respect",
        df["treated_with_respect"] >= 4,
        df["treated_with_respect"].notna(),
    )
    proportion(
        "confidentiality_breach",
        df["confidentiality_breach"] == True,  # noqa: E712
        df["confidentiality_breach"].notna(),
    )
    proportion(
        "vl_result_received",
        df["vl_result_received"] == True,  # noqa: E712
        df["on_art"] & df["vl_result_received"].notna(),
    )
    proportion(
        "multi_month_dispensing",
        df["refill_months"] >= 3,
        df["on_art"] & df["refill_months"].notna(),
    )
    mean("satisfaction_mean", "satisfaction")
    proportion(
        "denied_service",
        df["denied_service"] == True,  # noqa: E712
        df["denied_service"].notna(),
    )

    out = pd.concat(results, ignore_index=True)
    small = out["n"] < MIN_CELL
    out.loc[small, ["estimate", "ci_low", "ci_high", "numerator"]] = np.nan
    return out


# --------------------------------------------------------------------------- baseline (b)

_PROPORTIONS = {
    # id: (numerator, denominator) as SQL
    "medicine_stockout_experienced": (
        "NOT got_all_medicines",
        "on_art AND got_all_medicines IS NOT NULL",
    ),
    "treated_with_respect": ("treated_with_respect >= 4", "treated_with_respect IS NOT NULL"),
    "confidentiality_breach": ("confidentiality_breach", "confidentiality_breach IS NOT NULL"),
    "vl_result_received": ("vl_result_received", "on_art AND vl_result_received IS NOT NULL"),
    "multi_month_dispensing": ("refill_months >= 3", "on_art AND refill_months IS NOT NULL"),
    "denied_service": ("denied_service", "denied_service IS NOT NULL"),
}
_MEANS = {"wait_time_mean": "wait_minutes", "satisfaction_mean": "satisfaction"}


def duckdb_sql(by: list[str]) -> str:
    """One query: every interview indicator for one grouping, with its interval."""
    keys = ", ".join(by)
    aggs = ["count(interview_id) AS interviews_completed_n"]
    outer = [
        "interviews_completed_n",
        # median and the Woodruff interval from the sorted values (1-based list index)
        "wait_median AS wait_time_median_estimate",
        f"CASE WHEN wait_n >= {MIN_CELL} THEN wait_sorted[CAST(greatest(floor((0.5 - {Z95} * "
        f"sqrt(0.25 / wait_n)) * wait_n), 0) AS BIGINT) + 1] END AS wait_time_median_ci_low",
        f"CASE WHEN wait_n >= {MIN_CELL} THEN wait_sorted[CAST(least(ceil((0.5 + {Z95} * "
        f"sqrt(0.25 / wait_n)) * wait_n) - 1, wait_n - 1) AS BIGINT) + 1] END "
        "AS wait_time_median_ci_high",
        "wait_n AS wait_time_median_n",
    ]
    aggs += [
        "count(wait_minutes) AS wait_n",
        "median(wait_minutes) AS wait_median",
        "list_sort(list(wait_minutes) FILTER (WHERE wait_minutes IS NOT NULL)) AS wait_sorted",
    ]
    for ind, col in _MEANS.items():
        aggs += [
            f"count({col}) AS {ind}_n",
            f"avg({col}) AS {ind}_mean",
            f"stddev_samp({col}) / sqrt(count({col})) AS {ind}_se",
        ]
        outer += [
            f"CASE WHEN {ind}_n >= {MIN_CELL} THEN {ind}_mean END AS {ind}_estimate",
            f"{ind}_se",
            f"{ind}_n",
        ]
    for ind, (num, den) in _PROPORTIONS.items():
        aggs += [
            f"count(*) FILTER (WHERE {den}) AS {ind}_n",
            f"count(*) FILTER (WHERE ({den}) AND ({num})) AS {ind}_x",
        ]
        p, n = f"({ind}_x / {ind}_n)", f"{ind}_n"
        centre = f"(({p} + {Z95**2} / (2 * {n})) / (1 + {Z95**2} / {n}))"
        half = f"({Z95} * sqrt({p} * (1 - {p}) / {n} + {Z95**2} / (4 * {n} * {n})) / (1 + {Z95**2} / {n}))"
        ok = f"{n} >= {MIN_CELL}"
        outer += [
            f"CASE WHEN {ok} THEN {p} END AS {ind}_estimate",
            f"CASE WHEN {ok} THEN {centre} - {half} END AS {ind}_ci_low",
            f"CASE WHEN {ok} THEN {centre} + {half} END AS {ind}_ci_high",
            f"{n} AS {ind}_n",
        ]
    return (
        "WITH d AS (SELECT i.*, f.district FROM interviews i "
        "LEFT JOIN fac f ON i.facility_id = f.facility_id), "
        f"agg AS (SELECT {keys}, {', '.join(aggs)} FROM d GROUP BY {keys}) "
        f"SELECT {keys}, {', '.join(outer)} FROM agg ORDER BY {keys}"
    )


def duckdb_indicators(con: Any, tables: dict[str, Any], by: list[str]) -> Any:
    """Run :func:`duckdb_sql` over the pandas frames; t and Poisson quantiles in scipy."""
    import numpy as np
    from scipy import stats

    con.register("interviews", tables["interviews"])
    con.register("fac", tables["facilities"][["facility_id", "district"]])
    res = con.execute(duckdb_sql(by)).df()
    for ind in _MEANS:
        n = res[f"{ind}_n"].to_numpy(dtype=float)
        t = stats.t.ppf(0.975, np.where(n > 1, n - 1, np.nan))
        est, se = res[f"{ind}_estimate"], res[f"{ind}_se"]
        res[f"{ind}_ci_low"], res[f"{ind}_ci_high"] = est - t * se, est + t * se
    k = res["interviews_completed_n"].to_numpy(dtype=float)
    res["interviews_completed_ci_low"] = stats.chi2.ppf(0.025, 2 * k) / 2
    res["interviews_completed_ci_high"] = stats.chi2.ppf(0.975, 2 * (k + 1)) / 2
    return res


# --------------------------------------------------------------------------- agreement


def agreement(engine: Any, naive: Any, duck: Any, by: list[str]) -> dict[str, float]:
    """Largest absolute difference of the estimates, engine vs each baseline (unsuppressed cells)."""
    import numpy as np

    e = engine[engine["indicator_id"].isin(INTERVIEW_INDICATORS) & ~engine["suppressed"]]
    e = e.set_index(["indicator_id", *by])["estimate"]
    nv = naive.assign(**{k: naive[k].astype("string") for k in by})
    nv = nv.set_index(["indicator_id", *by])["estimate"]
    both = e.to_frame("e").join(nv.rename("n"), how="inner").dropna()
    out = {
        "naive_max_abs_diff": float(
            np.max(np.abs((both["e"] - both["n"]).to_numpy(dtype=float)), initial=0.0)
        )
    }
    diffs = []
    d = duck.assign(**{k: duck[k].astype("string") for k in by}).set_index(by)
    for ind in INTERVIEW_INDICATORS:
        col = f"{ind}_estimate" if f"{ind}_estimate" in d else f"{ind}_n"
        if ind == "interviews_completed":
            col = "interviews_completed_n"
        sub = e.xs(ind, level="indicator_id") if ind in e.index.get_level_values(0) else None
        if sub is None:
            continue
        j = sub.to_frame("e").join(d[col].rename("d"), how="inner").dropna()
        if len(j):
            diffs.append(
                float(np.max(np.abs((j["e"] - j["d"].astype(float)).to_numpy(dtype=float))))
            )
    out["duckdb_max_abs_diff"] = max(diffs, default=0.0)
    out["cells_compared"] = int(len(both))
    return out


# --------------------------------------------------------------------------- one size


def bench_size(label: str, cache: Path, repeats: int, baseline_repeats: int) -> dict[str, Any]:
    """Time and memory of the engine and both baselines on one size (this process only)."""
    import duckdb
    import numpy as np

    from clm_research.framework import load_framework
    from clm_research.indicators import compute_indicators

    folder = ensure_data(label, cache)
    tables = load_data(folder)
    fw = load_framework()
    rows = len(tables["interviews"])
    input_bytes = int(sum(t.memory_usage(deep=True).sum() for t in tables.values()))
    interview_bytes = int(tables["interviews"].memory_usage(deep=True).sum())
    # warm imports (scipy.stats, statistics) on a small slice, then measure the peak
    compute_indicators(fw, {**tables, "interviews": tables["interviews"].head(1000)}, by=["round"])
    gc.collect()
    before = rss_bytes()
    reset_ok = reset_peak_rss()
    first_runs: dict[str, tuple[float, Any]] = {}
    for gname, by in GROUPINGS.items():
        t = time.perf_counter()
        res = compute_indicators(fw, tables, by=by)
        first_runs[gname] = (time.perf_counter() - t, res)
    peak = peak_rss_bytes()
    out: dict[str, Any] = {
        "label": label,
        "rows": rows,
        "input_bytes": input_bytes,
        "interviews_bytes": interview_bytes,
        "rss_before_bytes": before,
        "peak_rss_bytes": peak,
        "peak_extra_bytes": max(peak - before, 0),
        "peak_extra_over_input": round(max(peak - before, 0) / input_bytes, 3),
        "peak_reset": reset_ok,
        "groupings": {},
    }
    con = duckdb.connect()
    con1 = duckdb.connect(config={"threads": 1})
    # Warm-up run per figure (the first call of a grouping pays one-off costs), except at 10M
    # rows, where one run takes 5-25 s: there the baselines and the interview-only engine run
    # ``baseline_repeats`` times and the all-indicator engine ``repeats`` times.
    # At 10M rows the memory pass above is the all-indicator engine's (only) timed run.
    warm = 1 if rows < 2_000_000 else 0
    for gname, by in GROUPINGS.items():
        g: dict[str, Any] = {}
        if warm:
            g["engine_all"], res_all = time_call(
                lambda by=by: compute_indicators(fw, tables, by=by), repeats, warmup=warm
            )
        else:
            g["engine_all"], res_all = summary([first_runs[gname][0]]), first_runs[gname][1]
        g["engine_all"]["rows_per_s"] = round(rows / g["engine_all"]["median"])
        g["engine_all"]["result_rows"] = len(res_all)
        g["engine_interviews"], res_iv = time_call(
            lambda by=by: compute_indicators(fw, tables, by=by, indicators=INTERVIEW_INDICATORS),
            repeats if warm else baseline_repeats,
            warmup=warm,
        )
        g["engine_interviews"]["rows_per_s"] = round(rows / g["engine_interviews"]["median"])
        g["naive_pandas"], res_naive = time_call(
            lambda by=by: naive_indicators(tables, by), baseline_repeats
        )
        g["duckdb"], res_duck = time_call(
            lambda by=by: duckdb_indicators(con, tables, by),
            repeats if warm else baseline_repeats,
            warmup=warm,
        )
        if warm:  # skipped at 10M rows (time budget of `make bench`)
            g["duckdb_1thread"], _ = time_call(
                lambda by=by: duckdb_indicators(con1, tables, by), repeats
            )
            g["time_vs_duckdb_1thread"] = round(
                g["engine_interviews"]["median"] / g["duckdb_1thread"]["median"], 2
            )
        med = g["engine_interviews"]["median"]
        g["speedup_vs_naive"] = round(g["naive_pandas"]["median"] / med, 2)
        g["time_vs_duckdb"] = round(med / g["duckdb"]["median"], 2)
        g["agreement"] = agreement(res_iv, res_naive, res_duck, by)
        g["groups"] = int(np.sum(res_iv["indicator_id"] == "interviews_completed"))
        out["groupings"][gname] = g
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", required=True, choices=list(SIZES))
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--baseline-repeats", type=int, default=3)
    p.add_argument("--prepare-only", action="store_true", help="only generate the cached data")
    a = p.parse_args(argv)
    a.cache.mkdir(parents=True, exist_ok=True)
    if a.prepare_only:
        t = time.perf_counter()
        ensure_data(a.size, a.cache)
        print(json.dumps({"prepared": a.size, "seconds": round(time.perf_counter() - t, 2)}))
        return 0
    print(json.dumps(bench_size(a.size, a.cache, a.repeats, a.baseline_repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
