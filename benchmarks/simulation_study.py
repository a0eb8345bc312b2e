"""Simulation study: bias and 95% CI coverage of the evaluation estimators against a known truth.

Run by ``make bench`` (or ``python benchmarks/simulation_study.py [--reps 200] [--demo-reps 200]``).
Writes ``reports/bench/simulation.json`` and ``reports/bench/simulation.md``.

Scenarios (each replicate draws new data with the truth known by construction):

* ``its`` — monthly counts, 24 months before and 24 after, seasonality, over-dispersion
  (gamma-Poisson), population offset; true level change RR 0.85. Estimator: quasi-Poisson
  segmented regression with two harmonic pairs (the reports' ITS).
* ``did_staggered`` — 60 facilities × 36 months, three adoption waves and 30% never-treated,
  facility random effects, a common random-walk trend, effects growing with exposure
  (0.05·(e+1)). Estimators: Callaway–Sant'Anna simple ATT (the reports' DiD) and two-way FE.
* ``did_demo`` — the project's demo generator (clm_research.demo, country XA) with a new seed per
  replicate: facility × round mean waiting time; truth = ``truth["att"]["wait_time_mean"]["overall"]``.
* ``chain_link`` — the results-chain link estimator (:func:`clm_research.evaluation.link_effect`):
  40 facilities × 8 rounds, CLM in two waves with a ramping effect (absorbed by cohort × round
  effects), facility effects, AR(1) errors within facilities (ρ = 0.5), downstream =
  −2 × upstream one round earlier. Facility-cluster jackknife (CV3) intervals.
* ``chain_demo`` — the demo generator's planted results chain (country XA, new seed per
  replicate): the links with an exact truth (waiting-time issues resolved → waiting time,
  −15 min; stock-outs → treatment interruption, +0.01; viral-load results → suppression, +0.05;
  waiting time → treatment interruption, the planted broken link, 0), estimated by
  :func:`clm_research.evaluation.chain_analysis` from the canonical tables.
* ``gee_binary`` / ``gee_gaussian`` — 40 facilities × 4 rounds × 30 interviews, CLM in half the
  facilities from round 3, persistent facility effects; targets the marginal log-OR (0.5) and
  the mean difference (−10 minutes). Estimator: GEE exchangeable with the Mancl–DeRouen
  bias-reduced sandwich.
* ``verdicts_demo`` — the reports' whole verdict rule (:func:`clm_research.evaluation.effects.
  clm_effects`: Callaway–Sant'Anna per indicator, Benjamini–Hochberg at FDR 5%,
  Benjamini–Yekutieli FCR-adjusted intervals) on demo country XA with a new seed per replicate.
  The stated error rate is the FDR, 5%: a true null of the demo truth (an effect planted as
  "none (true null)") must be reported as improved or worse in at most 5% of reports (under
  BH, a null's rejection probability is at most q), and the adjusted intervals of the
  reported effects must miss the true ATT in at most 5% of them (the FCR).
"""

from __future__ import annotations

import os

# One BLAS thread per process: small matrices, and oversubscription slows statsmodels badly.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, logit

from clm_research.evaluation import (
    Effect,
    callaway_santanna,
    client_gee,
    link_effect,
    segmented_regression,
    twfe_did,
)
from clm_research.paths import reports_dir

#: Coverage band the estimator used in reports must fall in.
COVERAGE_BAND = (0.92, 0.98)


# ----------------------------------------------------------------------------- data generators
def its_series(
    rng: np.random.Generator,
    rr: float = 0.85,
    n_pre: int = 24,
    n_post: int = 24,
    shape: float = 200.0,
) -> pd.DataFrame:
    t = np.arange(n_pre + n_post)
    pop = 50_000 * (1 + 0.002 * t)
    season = 0.08 * np.sin(2 * np.pi * t / 12) + 0.04 * np.cos(2 * np.pi * t / 12)
    mu = pop * 0.004 * np.exp(0.003 * t + season + np.log(rr) * (t >= n_pre))
    lam = rng.gamma(shape, mu / shape)  # over-dispersion: variance mu + mu^2/shape
    months = pd.period_range("2021-01", periods=len(t), freq="M").astype(str)
    return pd.DataFrame({"period": months, "events": rng.poisson(lam), "population": pop})


def staggered_panel(
    rng: np.random.Generator,
    n: int = 60,
    periods: int = 36,
    waves=(12, 18, 24),
    never_share: float = 0.3,
    slope: float = 0.05,
    sd: float = 1.0,
) -> tuple[pd.DataFrame, float]:
    n_never = int(round(n * never_share))
    n_t = n - n_never
    cohorts = np.r_[
        np.repeat(waves, int(np.ceil(n_t / len(waves))))[:n_t], np.full(n_never, np.inf)
    ]
    a = rng.normal(0, 1, n)
    trend = np.cumsum(rng.normal(0, 0.2, periods))
    u, t = np.repeat(np.arange(n), periods), np.tile(np.arange(periods), n)
    e = np.where(np.isfinite(cohorts[u]), t - np.nan_to_num(cohorts[u], posinf=0.0), -np.inf)
    tau = np.where(e >= 0, slope * (np.maximum(e, 0) + 1), 0.0)
    y = a[u] + trend[t] + tau + rng.normal(0, sd, n * periods)
    df = pd.DataFrame(
        {
            "facility_id": u,
            "period": t,
            "outcome": y,
            "cohort": np.where(np.isfinite(cohorts[u]), cohorts[u], np.nan),
        }
    )
    return df, float(tau[e >= 0].mean())


def survey(
    rng: np.random.Generator,
    k: int = 40,
    m: int = 30,
    rounds: int = 4,
    log_or: float = 0.5,
    icc_rho: float = 0.08,
) -> pd.DataFrame:
    fac = np.repeat(np.arange(k), m * rounds)
    rnd = np.tile(np.repeat(np.arange(rounds), m), k)
    clm = (fac < k // 2).astype(int)
    active = clm * (rnd >= 2)
    p_marg = expit(logit(0.55) + 0.05 * rnd + 0.1 * clm + log_or * active)
    u = stats.norm.cdf(rng.normal(size=k))[fac]
    p_fac = stats.beta.ppf(
        u, p_marg * (1 - icc_rho) / icc_rho, (1 - p_marg) * (1 - icc_rho) / icc_rho
    )
    return pd.DataFrame(
        {
            "facility_id": fac,
            "round": [f"2024Q{r + 1}" for r in rnd],
            "clm_facility": clm,
            "clm_active": active,
            "y": (rng.random(len(fac)) < p_fac).astype(int),
            "wait": 60
            - 10 * active
            + 5 * rnd
            + rng.normal(0, 6, k)[fac]
            + rng.normal(0, 20, len(fac)),
        }
    )


def chain_panel(
    rng: np.random.Generator, n: int = 40, rounds: int = 8, beta: float = -2.0
) -> tuple[pd.DataFrame, float]:
    """Facility × round panel with a lag-1 link of known slope ``beta`` (see the module doc)."""
    cohort = rng.choice([2.0, 4.0, np.inf], n)
    f = np.repeat(np.arange(n), rounds)
    t = np.tile(np.arange(rounds), n)
    x = rng.normal(0, 1, n)[f] + 0.3 * t + rng.normal(0, 1, n * rounds)
    z = rng.normal(0, 1, (n, rounds))
    for k in range(1, rounds):
        z[:, k] += 0.5 * z[:, k - 1]  # AR(1) within facility: clustering matters
    started = np.isfinite(cohort[f]) & (t >= cohort[f])
    ramp = np.where(started, 1.0 + 0.5 * (t - np.where(np.isfinite(cohort[f]), cohort[f], 0)), 0)
    x_lag = np.where(t >= 1, np.r_[np.nan, x[:-1]], np.nan)
    y = rng.normal(0, 2, n)[f] + 0.2 * t + ramp + beta * x_lag + z.ravel()
    frame = pd.DataFrame(
        {
            "facility_id": f,
            "round": t,
            "up": x,
            "down": y,
            "cohort": np.where(np.isfinite(cohort[f]), cohort[f], np.nan),
        }
    )
    return frame, beta


#: Links of the demo chain whose planted size is exact (no averaging over clients).
CHAIN_DEMO_LINKS: tuple[tuple[str, str], ...] = (
    ("issues_resolved", "wait_time_mean"),
    ("medicine_stockout_experienced", "treatment_interruption"),
    ("vl_result_received", "viral_suppression"),
    ("wait_time_mean", "treatment_interruption"),
)


def chain_demo_study(reps: int, seed: int = 6) -> list[dict]:
    """Bias and coverage of chain_analysis on the demo's planted chain (exact-truth links)."""
    from clm_research.config.country import load_country
    from clm_research.demo import generate_country
    from clm_research.evaluation import chain_analysis
    from clm_research.framework import load_framework

    base = load_country("XA")
    fw = load_framework("XA")
    rng = np.random.default_rng(seed)
    rec: dict[tuple[str, str], list] = {k: [] for k in CHAIN_DEMO_LINKS}
    skipped: dict[tuple[str, str], int] = {k: 0 for k in CHAIN_DEMO_LINKS}
    t0 = time.time()
    for _ in range(reps):
        s = int(rng.integers(1, 2**31 - 1))
        params = base.model_copy(update={"demo": base.demo.model_copy(update={"seed": s})})
        demo = generate_country("XA", params=params)
        truth = {(x["upstream"], x["downstream"]): x["truth"] for x in demo.truth["chain"]["links"]}
        res = chain_analysis(demo.clean, fw, links=CHAIN_DEMO_LINKS, mediation=False)
        for row in res.links.itertuples():
            key = (row.upstream, row.downstream)
            if row.status != "estimated":  # too few facilities changed in this replicate
                skipped[key] += 1
                continue
            rec[key].append((truth[key], row.estimate, row.ci_low, row.ci_high, row.se))
    secs = time.time() - t0
    out = []
    for key, vals in rec.items():
        a = np.array(vals, float)
        row = summarise(
            "chain_demo",
            f"link {key[0]} → {key[1]}",
            a[:, 0],
            a[:, 1],
            a[:, 2],
            a[:, 3],
            a[:, 4],
            "difference",
            True,
            secs,
        )
        row["not_estimable_replicates"] = skipped[key]
        out.append(row)
    return out


# ----------------------------------------------------------------------------- study
def summarise(
    name: str,
    estimator: str,
    truth: np.ndarray,
    est: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    se: np.ndarray,
    scale: str,
    used_in_reports: bool,
    seconds: float,
) -> dict:
    err = est - truth
    cover = (lo <= truth) & (truth <= hi)
    n = len(est)
    return {
        "scenario": name,
        "estimator": estimator,
        "scale": scale,
        "replicates": n,
        "truth_mean": float(truth.mean()),
        "bias": float(err.mean()),
        "bias_mc_se": float(err.std(ddof=1) / np.sqrt(n)),
        "relative_bias": float(err.mean() / truth.mean()) if truth.mean() else float("nan"),
        "empirical_se": float(est.std(ddof=1)),
        "mean_model_se": float(np.nanmean(se)),
        "coverage": float(cover.mean()),
        "coverage_mc_se": float(np.sqrt(cover.mean() * (1 - cover.mean()) / n)),
        "used_in_reports": used_in_reports,
        "seconds": round(seconds, 1),
    }


def run(
    name: str,
    reps: int,
    seed: int,
    draw: Callable,
    estimators: dict[str, tuple[Callable, bool]],
    log_scale: bool = False,
) -> list[dict]:
    rng = np.random.default_rng(seed)
    rec: dict[str, list] = {k: [] for k in estimators}
    t0 = time.time()
    for _ in range(reps):
        data, truth = draw(rng)
        for k, (fit, _) in estimators.items():
            e: Effect = fit(data)
            vals = (
                (np.log(e.estimate), np.log(e.ci_low), np.log(e.ci_high))
                if log_scale
                else (e.estimate, e.ci_low, e.ci_high)
            )
            rec[k].append((truth, *vals, e.se))
    secs = time.time() - t0
    out = []
    for k, (_, used) in estimators.items():
        a = np.array(rec[k], float)
        out.append(
            summarise(
                name,
                k,
                a[:, 0],
                a[:, 1],
                a[:, 2],
                a[:, 3],
                a[:, 4],
                "log ratio" if log_scale else "difference",
                used,
                secs,
            )
        )
    return out


def demo_draw_factory() -> Callable:
    from clm_research.config.country import load_country
    from clm_research.demo import generate_country

    base = load_country("XA")

    def draw(rng: np.random.Generator) -> tuple[pd.DataFrame, float]:
        seed = int(rng.integers(1, 2**31 - 1))
        params = base.model_copy(update={"demo": base.demo.model_copy(update={"seed": seed})})
        demo = generate_country("XA", params=params)
        c = demo.clean
        panel = (
            c["interviews"]
            .groupby(["facility_id", "round"], as_index=False)["wait_minutes"]
            .mean()
            .merge(c["facilities"][["facility_id", "clm_start"]], on="facility_id")
        )
        return panel, float(demo.truth["att"]["wait_time_mean"]["overall"])

    return draw


def study(reps: int, demo_reps: int, chain_demo_reps: int = 0) -> list[dict]:
    rows: list[dict] = []
    rows += run(
        "its",
        reps,
        1,
        lambda r: (its_series(r), np.log(0.85)),
        {
            "quasi-Poisson segmented regression, 2 harmonic pairs": (
                lambda d: (
                    segmented_regression(
                        d,
                        "events",
                        intervention_start="2023-01",
                        offset="population",
                        family="quasipoisson",
                        impact="level",
                        harmonics=2,
                    ).primary
                ),
                True,
            ),
        },
        log_scale=True,
    )
    print("its done", flush=True)
    rows += run(
        "did_staggered",
        reps,
        2,
        staggered_panel,
        {
            "Callaway-Sant'Anna simple ATT (not-yet-treated)": (
                lambda d: callaway_santanna(d, time="period", cohort="cohort").primary,
                True,
            ),
            "two-way fixed effects": (
                lambda d: twfe_did(d, time="period", cohort="cohort").primary,
                False,
            ),
        },
    )
    print("did done", flush=True)
    if demo_reps:
        rows += run(
            "did_demo",
            demo_reps,
            3,
            demo_draw_factory(),
            {
                "Callaway-Sant'Anna simple ATT (not-yet-treated)": (
                    lambda d: callaway_santanna(d, "wait_minutes", time="round").primary,
                    True,
                ),
                "two-way fixed effects": (
                    lambda d: twfe_did(d, "wait_minutes", time="round").primary,
                    False,
                ),
            },
        )
        print("demo did done", flush=True)
    rows += run(
        "chain_link",
        reps,
        7,
        chain_panel,
        {
            "within-facility link, facility + cohort × round effects, CV3": (
                lambda d: link_effect(d, "up", "down", time="round", cohort="cohort").primary,
                True,
            ),
        },
    )
    if chain_demo_reps:
        rows += chain_demo_study(chain_demo_reps)
    print("chain done", flush=True)
    rows += run(
        "gee_binary",
        reps,
        4,
        lambda r: (survey(r), 0.5),
        {
            "GEE binomial exchangeable, bias-reduced SE": (
                lambda d: client_gee(d, "y").primary,
                True,
            ),
        },
        log_scale=True,
    )
    rows += run(
        "gee_gaussian",
        reps,
        5,
        lambda r: (survey(r), -10.0),
        {
            "GEE gaussian exchangeable, bias-reduced SE": (
                lambda d: client_gee(d, "wait").primary,
                True,
            ),
        },
    )
    print("gee done", flush=True)
    return rows


def verdict_study(reps: int, seed: int = 6) -> dict:
    """Replicates of the reports' verdict rule on demo data with a known truth (see module)."""
    from clm_research.config.country import load_country
    from clm_research.demo import EFFECTS, generate_country
    from clm_research.evaluation.effects import EFFECT_VERDICTS, FDR, clm_effects
    from clm_research.framework import load_framework

    base = load_country("XA")
    framework = load_framework("XA")
    nulls = sorted(e["indicator"] for e in EFFECTS.values() if str(e["scale"]).startswith("none"))
    rng = np.random.default_rng(seed)
    null_cases = null_false = 0
    selected = missed = 0
    t0 = time.time()
    for _ in range(reps):
        s_ = int(rng.integers(1, 2**31 - 1))
        params = base.model_copy(update={"demo": base.demo.model_copy(update={"seed": s_})})
        demo = generate_country("XA", params=params)
        eff = clm_effects(framework, demo.clean).set_index("indicator_id")
        truth = demo.truth["att"]
        for ind in nulls:
            if ind in eff.index and np.isfinite(eff.at[ind, "p_adjusted"]):
                null_cases += 1
                null_false += eff.at[ind, "verdict"] != EFFECT_VERDICTS["null"]
        for ind, t in truth.items():
            if ind not in eff.index or eff.at[ind, "verdict"] not in (
                EFFECT_VERDICTS["improved"],
                EFFECT_VERDICTS["worse"],
            ):
                continue
            selected += 1
            lo, hi = eff.at[ind, "ci_low_adjusted"], eff.at[ind, "ci_high_adjusted"]
            missed += not (lo <= float(t["overall"]) <= hi)
    rate = null_false / null_cases if null_cases else float("nan")
    fcr = missed / selected if selected else float("nan")

    def upper(k: int, n: int) -> float:  # exact (Clopper-Pearson) one-sided 95% upper bound
        return float(stats.beta.ppf(0.95, k + 1, n - k)) if n and k < n else 1.0

    return {
        "scenario": "verdicts_demo",
        "replicates": reps,
        "stated_rate": FDR,
        "true_nulls": nulls,
        "null_cases": null_cases,
        "null_reported_as_effect": int(null_false),
        "null_error_rate": rate,
        "null_error_rate_upper95": upper(null_false, null_cases),
        "selected_with_truth": selected,
        "adjusted_ci_missed_truth": int(missed),
        "fcr": fcr,
        "fcr_upper95": upper(missed, selected),
        "seconds": round(time.time() - t0, 1),
    }


def verdicts_markdown(v: dict) -> str:
    ok_null = v["null_error_rate"] <= v["stated_rate"]
    ok_fcr = not v["selected_with_truth"] or v["fcr"] <= v["stated_rate"]
    return (
        "\n## The reports' verdict rule against the demo truth\n\n"
        f"{v['replicates']} demo countries (XA's parameters, new seeds). True nulls "
        f"({', '.join(v['true_nulls'])}): reported as improved or worse in "
        f"{v['null_reported_as_effect']} of {v['null_cases']} cases = "
        f"{v['null_error_rate']:.1%} (one-sided 95% upper bound {v['null_error_rate_upper95']:.1%}); "
        f"stated rate {v['stated_rate']:.0%}: {'within' if ok_null else 'ABOVE'}. "
        f"Reported effects with a known truth: {v['selected_with_truth']}; their adjusted interval "
        f"missed the true ATT {v['adjusted_ci_missed_truth']} times = {v['fcr']:.1%} "
        f"(upper bound {v['fcr_upper95']:.1%}): {'within' if ok_fcr else 'ABOVE'} the "
        f"{v['stated_rate']:.0%} false-coverage rate.\n"
    )


def to_markdown(rows: list[dict]) -> str:
    lines = [
        "# Simulation study: bias and 95% CI coverage",
        "",
        "Generated by `benchmarks/simulation_study.py` (`make bench`). Each scenario draws new data per "
        "replicate with a known true effect. Coverage should lie in "
        f"{COVERAGE_BAND[0]:.2f}–{COVERAGE_BAND[1]:.2f} for the estimators the reports use; two-way fixed "
        "effects is shown to make its bias under staggered, growing effects visible.",
        "",
        "| scenario | estimator | scale | reps | truth | bias (MC se) | empirical SE | model SE | coverage (MC se) | in reports | within band |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ok = COVERAGE_BAND[0] <= r["coverage"] <= COVERAGE_BAND[1]
        lines.append(
            f"| {r['scenario']} | {r['estimator']} | {r['scale']} | {r['replicates']} | {r['truth_mean']:.3f} | "
            f"{r['bias']:+.4f} ({r['bias_mc_se']:.4f}) | {r['empirical_se']:.4f} | {r['mean_model_se']:.4f} | "
            f"{r['coverage']:.3f} ({r['coverage_mc_se']:.3f}) | {'yes' if r['used_in_reports'] else 'no'} | "
            f"{'yes' if ok else 'NO'} |"
        )
    skipped = [r for r in rows if r.get("not_estimable_replicates")]
    if skipped:
        lines += [
            "",
            "chain_demo: replicates where a link could not be estimated (too few facilities whose "
            "upstream changed) are left out of its row: "
            + "; ".join(f"{r['estimator']} {r['not_estimable_replicates']}" for r in skipped)
            + ".",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--reps", type=int, default=200, help="replicates per synthetic scenario (default 200)"
    )
    ap.add_argument(
        "--demo-reps", type=int, default=200, help="replicates from the demo generator (0 = skip)"
    )
    ap.add_argument(
        "--verdict-reps",
        type=int,
        default=100,
        help="demo countries for the verdict rule's error rates (0 = skip; ~5 s each)",
    )
    ap.add_argument(
        "--chain-demo-reps",
        type=int,
        default=200,
        help="replicates of the demo's planted results chain (0 = skip)",
    )
    ap.add_argument("--out", type=Path, default=None, help="output folder (default reports/bench)")
    args = ap.parse_args(argv)
    t0 = time.time()
    rows = study(args.reps, args.demo_reps, args.chain_demo_reps)
    verdicts = verdict_study(args.verdict_reps) if args.verdict_reps else None
    out = args.out or reports_dir() / "bench"
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "seconds": round(time.time() - t0, 1),
        "coverage_band": COVERAGE_BAND,
        "results": rows,
        "verdicts": verdicts,
    }
    (out / "simulation.json").write_text(json.dumps(meta, indent=2))
    text = to_markdown(rows) + (verdicts_markdown(verdicts) if verdicts else "")
    (out / "simulation.md").write_text(text)
    print(text)
    failed = [
        r
        for r in rows
        if r["used_in_reports"] and not COVERAGE_BAND[0] <= r["coverage"] <= COVERAGE_BAND[1]
    ]
    bad = False
    if failed:
        print(
            "coverage outside the band for: "
            + ", ".join(f"{r['scenario']}/{r['estimator']}" for r in failed)
        )
        bad = True
    if verdicts and verdicts["null_error_rate"] > verdicts["stated_rate"]:
        print("true nulls were reported as effects more often than the stated rate")
        bad = True
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
