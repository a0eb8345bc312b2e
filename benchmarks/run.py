"""The benchmark suite: start-up, engine, gate, mappings, country runs, results chain, disclosure audit, many countries.

``make bench`` runs ``python benchmarks/run.py`` (every section). Results go to
``reports/bench/results.json`` (every run of every figure, the machine and its load) and
``reports/bench/results.md`` (a short table). Each figure is the median of several runs with
min and max; each ratio compares figures measured in the same command, never against a stored
number, and nothing here asserts a time (targets are reported as met or missed).

Examples
--------
python benchmarks/run.py                              # everything (~15 min on 2 cores)
python benchmarks/run.py --only startup,engine --quick --out /tmp/bench
python benchmarks/run.py --only many --cores 8        # on a bigger machine
python benchmarks/run.py --only country,chain         # results-chain share of a country's run
python benchmarks/run.py --only mapping               # rich vs plain mapping on a 1M-row export
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _timing import loglog_slope, machine, ratio, summary, time_command  # noqa: E402

SECTIONS = (
    "startup",
    "engine",
    "gate",
    "mapping",
    "country",
    "chain",
    "disclosure",
    "atomic",
    "many",
)

#: Performance targets: (figure, comparison, limit).
TARGETS: dict[str, tuple[str, float]] = {
    "startup_import_vs_pandas": ("<=", 1.5),
    "startup_framework_vs_pandas": ("<=", 1.5),
    "engine_loglog_slope": ("<=", 1.1),
    "engine_speedup_vs_naive": (">=", 5.0),
    "engine_time_vs_duckdb": ("<=", 2.0),
    "engine_peak_memory_vs_input": ("<=", 3.0),
    "gate_vs_handwritten": ("<=", 3.0),
    "gate_with_gx_vs_handwritten": ("<=", 3.0),
    # ingest + gate of a Kobo-style export: filtering, aggregating, deriving mapping vs plain
    "mapping_rich_vs_plain": ("<=", 1.5),
    "country_overhead_share_ritshidze": ("<=", 0.30),
    "country_render_share": ("<=", 0.15),
    "chain_share_of_country_run_ritshidze": ("<=", 0.10),
    # the disclosure audit of every published table, as a share of the country's run
    "disclosure_audit_share_ritshidze": ("<=", 0.10),
    "many_parallel_efficiency": (">=", 0.8),
    # atomic writes (temporary file, fsync, rename, folder swap) and the country's lock, as a
    # ratio to writing the same files in place without a lock
    "atomic_writes_and_locking_ratio": ("<=", 1.05),
}


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _python() -> str:
    return sys.executable


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["GX_ANALYTICS_ENABLED"] = "false"
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _script_result(
    script: str, args: list[str], what: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run one benchmark script of this folder in its own process; its last line is JSON."""
    proc = subprocess.run(
        [_python(), str(HERE / script), *args],
        env=_env() if env is None else env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{what} benchmark failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- 1. start-up


def bench_startup(repeats: int) -> dict[str, Any]:
    """Fresh-process wall time of three imports, interleaved so drift hits all alike."""
    py = _python()
    cmds = {
        "import_pandas": [py, "-c", "import pandas"],
        "import_clm_research": [py, "-c", "import clm_research"],
        "import_and_load_framework": [
            py,
            "-c",
            "import clm_research; clm_research.load_framework()",
        ],
    }
    env = _env()
    for argv in cmds.values():  # warm the file cache once
        subprocess.run(argv, check=True, env=env)
    runs: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(repeats):
        for k, argv in cmds.items():
            runs[k].extend(time_command(argv, 1, env=env)["runs"])
    out: dict[str, Any] = {k: summary(v) for k, v in runs.items()}
    out["import_vs_pandas"] = ratio(out["import_clm_research"], out["import_pandas"])
    out["framework_vs_pandas"] = ratio(out["import_and_load_framework"], out["import_pandas"])
    return out


# --------------------------------------------------------------------------- 2. engine


def bench_engine(sizes: list[str], cache: Path, quick: bool) -> dict[str, Any]:
    """One process per size (its own peak memory); then slopes and ratios across sizes."""
    plan = {  # size: (engine repeats, naive repeats)
        "3k": (2, 1),
        "10k": (3, 3),
        "100k": (3, 3),
        "1M": (3, 3),
        "10M": (2, 1),
    }
    out: dict[str, Any] = {"sizes": {}}
    for size in sizes:
        reps, base_reps = (2, 1) if quick else plan[size]
        _log(f"engine {size}")
        out["sizes"][size] = _script_result(
            "_engine.py",
            [
                "--size",
                size,
                "--cache",
                str(cache),
                "--repeats",
                str(reps),
                "--baseline-repeats",
                str(base_reps),
            ],
            f"engine {size}",
        )
    rows = [out["sizes"][s]["rows"] for s in sizes]
    out["loglog_slope"] = {}
    for g in ("facility_round", "district_round_sex_kp"):
        for which in ("engine_all", "engine_interviews", "naive_pandas", "duckdb"):
            times = [out["sizes"][s]["groupings"][g][which]["median"] for s in sizes]
            out["loglog_slope"][f"{g}:{which}"] = (
                loglog_slope(rows, times) if len(rows) > 1 else None
            )
    # slope over the sizes where fixed costs no longer dominate (>= 100k rows)
    big = [s for s in sizes if out["sizes"][s]["rows"] >= 90_000]
    if len(big) > 1:
        for g in ("facility_round", "district_round_sex_kp"):
            times = [out["sizes"][s]["groupings"][g]["engine_all"]["median"] for s in big]
            out["loglog_slope"][f"{g}:engine_all>=100k"] = loglog_slope(
                [out["sizes"][s]["rows"] for s in big], times
            )
    return out


# --------------------------------------------------------------------------- 3. gate


def bench_gate(cache: Path, quick: bool) -> dict[str, Any]:
    fac, per_round = (60, 20) if quick else (400, 312)
    argv = [
        "--cache",
        str(cache),
        "--facilities",
        str(fac),
        "--per-round",
        str(per_round),
        "--repeats",
        "2" if quick else "3",
        "--gx-repeats",
        "1" if quick else "2",
    ]
    return _script_result("_gate.py", argv, "gate")


# --------------------------------------------------------------------------- 3b. mapping


def bench_mapping(cache: Path, quick: bool) -> dict[str, Any]:
    argv = [
        "--cache",
        str(cache),
        "--rows",
        "100000" if quick else "1000000",
        "--repeats",
        "1" if quick else "3",
    ]
    return _script_result("_mapping.py", argv, "mapping")


# --------------------------------------------------------------------------- atomic writes


def bench_atomic(cache: Path, quick: bool, country: dict[str, Any]) -> dict[str, Any]:
    """Atomic writes and locking on a Ritshidze-scale ingestion (``_atomic.py``), and the same
    extra seconds as a share of a Ritshidze-scale ``clm run`` when the country section ran."""
    fac, per_round = (60, 30) if quick else (400, 100)
    argv = [
        "--cache",
        str(cache),
        "--facilities",
        str(fac),
        "--per-round",
        str(per_round),
        "--repeats",
        "2" if quick else "3",
    ]
    res = _script_result("_atomic.py", argv, "atomic-write")
    run = country.get("ritshidze", {}).get("clm_run_wall")
    if run:
        res["ratio_country_run"] = round((run["median"] + res["extra_seconds"]) / run["median"], 4)
    return res


# --------------------------------------------------------------------------- 4. country


def bench_country(cache: Path, quick: bool) -> dict[str, Any]:
    from _country import country_env, prepare_country, run_clm, stage_summary

    scales = {"default": (None, None, 1 if quick else 2)}
    if not quick:
        scales["ritshidze"] = (400, 100, 1)
    out: dict[str, Any] = {}
    for scale, (fac, per_round, reps) in scales.items():
        base = cache / f"country-{scale}"
        env = country_env(base / "data", base / "reports")
        _log(f"country {scale}: demo data")
        prep = prepare_country(env, ["XA"], fac, per_round)
        walls, stage_runs = [], []
        for _ in range(reps):
            _log(f"country {scale}: clm run XA")
            walls.append(run_clm(env, ["XA"]))
            stage_runs.append(stage_summary(base / "reports", "XA"))
        names = sorted({k for s in stage_runs for k in s["stages"]})
        res: dict[str, Any] = {
            "facilities": fac,
            "interviews_per_round": per_round,
            "demo_data_seconds": round(prep, 2),
            "clm_run_wall": summary(walls),
            "country_total": summary([s["country_total"] for s in stage_runs]),
            "stages": {k: summary([s["stages"].get(k, 0.0) for s in stage_runs]) for k in names},
            "overhead": summary([s["overhead"] for s in stage_runs]),
            "overhead_share": round(
                sorted(s["overhead_share"] for s in stage_runs)[len(stage_runs) // 2], 3
            ),
            "notebooks": stage_runs[-1]["notebooks"],
            "render_html": summary([s["render"].get("html", 0.0) for s in stage_runs]),
            "render_pdf": summary([s["render"].get("pdf", 0.0) for s in stage_runs]),
            "run_seconds": summary([s["run_seconds"] or 0.0 for s in stage_runs]),
            "render_share": round(
                sorted(s["render_share"] or 0.0 for s in stage_runs)[len(stage_runs) // 2], 3
            ),
        }
        out[scale] = res
    return out


# --------------------------------------------------------------------------- 5. results chain


def bench_chain(cache: Path, quick: bool, country: dict[str, Any] | None) -> dict[str, Any]:
    """The results-chain analysis of a Ritshidze-scale country as a share of its ``clm run``.

    Reuses the ``country`` section's data and run when it ran in the same command; otherwise
    writes the demo data and runs ``clm run XA`` once itself. The chain analysis is timed in a
    fresh process on the processed tables that run left (median of 3 after a warm-up).
    """
    from _country import country_env, prepare_country, run_clm, stage_summary

    scale, fac, per_round = ("default", None, None) if quick else ("ritshidze", 400, 100)
    base = cache / f"country-{scale}"
    env = country_env(base / "data", base / "reports")
    if country and scale in country:
        run = country[scale]
        run_total, run_wall = run["country_total"], run["clm_run_wall"]
    else:
        _log(f"chain: demo data and clm run XA ({scale})")
        prepare_country(env, ["XA"], fac, per_round)
        wall = run_clm(env, ["XA"])
        stages = stage_summary(base / "reports", "XA")
        run_total, run_wall = summary([stages["country_total"]]), summary([wall])
    _log(f"chain: chain_analysis on XA ({scale})")
    res = _script_result(
        "_chain.py",
        ["--country", "XA", "--repeats", "1" if quick else "3"],
        "chain",
        env={**env, "PYTHONPATH": _env()["PYTHONPATH"]},
    )
    res.update(
        {
            "scale": scale,
            "country_run_total": run_total,
            "country_run_wall": run_wall,
            "share_of_country_run": ratio(res["chain_analysis"], run_total),
            "share_of_country_wall": ratio(res["chain_analysis"], run_wall),
        }
    )
    return res


# --------------------------------------------------------------------------- disclosure audit


def bench_disclosure(cache: Path, quick: bool, country: dict[str, Any]) -> dict[str, Any]:
    """The audit of every published table of one country (Ritshidze scale unless ``quick``).

    Its share is taken of the country's ``clm run`` wall time: from the country section of this
    command when it ran at this scale (same data), else from one run made here.
    """
    from _country import BIN, country_env, prepare_country, run_clm

    scale, fac, per_round = ("quick", 60, 20) if quick else ("ritshidze", 400, 100)
    base = cache / f"country-{scale}"
    env = country_env(base / "data", base / "reports")
    _log(f"disclosure {scale}: demo data and ingest")
    prepare_country(env, ["XA"], fac, per_round)
    subprocess.run(
        [str(BIN / "clm"), "ingest", "XA"], check=True, env=env, stdout=subprocess.DEVNULL
    )
    _log(f"disclosure {scale}: protect_tables vs tables alone")
    res = _script_result(
        "_disclosure.py", ["--repeats", "1" if quick else "3"], "disclosure", env=env
    )
    res.update(scale=scale, facilities=fac, interviews_per_round=per_round)
    run = country.get(scale, {}).get("clm_run_wall")
    if run is None:
        _log(f"disclosure {scale}: clm run XA (the country's run time)")
        run = summary([run_clm(env, ["XA"])])
        res["clm_run_source"] = "this section"
    else:
        res["clm_run_source"] = "country section"
    res["clm_run_wall"] = run
    res["audit_share_of_run"] = round(res["audit"]["median"] / run["median"], 4)
    res["protect_extra_share_of_run"] = round(
        (res["protect"]["median"] - res["tables"]["median"]) / run["median"], 4
    )
    d = res["audit_detail"]
    _log(
        f"disclosure {scale}: audit {res['audit']['median']:.2f} s "
        f"({res['audit_share_of_run']:.1%} of clm run {run['median']:.1f} s); LP "
        f"{d['lp_variables']:,} variables, {d['lp_constraints']:,} constraints, "
        f"{d['lp_blocks']:,} blocks, {d['lp_solves']} solves in {d['lp_seconds']:.2f} s"
    )
    return res


# --------------------------------------------------------------------------- 6. many countries

_MANY_SCRIPT = r"""
import json, sys, time
from clm_research.run.many import run_countries
codes, jobs, scheduler = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3] or None
cluster = None
t0 = time.perf_counter()
if scheduler == "local":
    from distributed import LocalCluster
    cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    scheduler = cluster.scheduler_address
t = time.perf_counter()
summary = run_countries(codes, jobs=jobs, scheduler=scheduler, synthesis=False, progress=False)
wall = time.perf_counter() - t
if cluster is not None:
    cluster.close()
print(json.dumps({"wall": wall, "cluster_start": t - t0, "exit_code": summary.exit_code,
                  "country_seconds": {r.country: r.seconds for r in summary.results},
                  "failed": {r.country: r.message() for r in summary.results
                             if r.status != "succeeded"}}))
"""


def bench_many(cache: Path, cores: int, quick: bool) -> dict[str, Any]:
    from _country import country_env, make_project_copy, prepare_country

    codes = ["XC", "XD"] if quick else ["XC", "XD", "XE", "XF", "XG", "XH", "XI", "XJ"]
    fac, per_round = (12, 10) if quick else (20, 15)
    base = cache / "many"
    tmp = Path(tempfile.mkdtemp(prefix="clm-bench-project-"))
    try:
        project = make_project_copy(tmp / "project", codes, fac, per_round)
        env = country_env(base / "data", base / "reports", project=project)
        _log(f"many: demo data for {len(codes)} countries")
        prep = prepare_country(env, codes, None, None)
        modes = {"jobs_1": (1, "")}
        if cores > 1:
            modes[f"jobs_{cores}"] = (cores, "")
            modes[f"dask_local_{cores}"] = (cores, "local")
        out: dict[str, Any] = {
            "countries": codes,
            "facilities": fac,
            "interviews_per_round": per_round,
            "cores": cores,
            "demo_data_seconds": round(prep, 2),
            "modes": {},
        }
        for mode, (jobs, scheduler) in modes.items():
            _log(f"many: {mode}")
            proc = subprocess.run(
                [_python(), "-c", _MANY_SCRIPT, json.dumps(codes), str(jobs), scheduler],
                env=env,
                cwd=project,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"many countries ({mode}) failed:\n{proc.stderr[-4000:]}")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            if res["exit_code"] != 0:
                raise RuntimeError(f"many countries ({mode}): countries failed: {res['failed']}")
            out["modes"][mode] = {
                "wall": summary([res["wall"]]),
                "workers": jobs,
                "cluster_start": round(res["cluster_start"], 3),
                "country_seconds": {k: round(v, 2) for k, v in res["country_seconds"].items()},
            }
        t1 = out["modes"]["jobs_1"]["wall"]["median"]
        for r in out["modes"].values():
            r["speedup"] = round(t1 / r["wall"]["median"], 3)
            r["parallel_efficiency"] = round(t1 / (r["workers"] * r["wall"]["median"]), 3)
        return out
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- report


def _check(name: str, value: float | None) -> dict[str, Any]:
    op, limit = TARGETS[name]
    met = None if value is None else (value <= limit if op == "<=" else value >= limit)
    return {"value": value, "target": f"{op} {limit}", "met": met}


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """Every target of the issue with its measured value and verdict (where measured)."""
    t: dict[str, Any] = {}
    if "startup" in results:
        s = results["startup"]
        t["startup_import_vs_pandas"] = _check("startup_import_vs_pandas", s["import_vs_pandas"])
        t["startup_framework_vs_pandas"] = _check(
            "startup_framework_vs_pandas", s["framework_vs_pandas"]
        )
    if "engine" in results:
        e = results["engine"]
        sizes = list(e["sizes"])
        largest = e["sizes"][sizes[-1]]
        slopes = [
            v for k, v in e["loglog_slope"].items() if k.endswith(":engine_all") and v is not None
        ]
        t["engine_loglog_slope"] = _check("engine_loglog_slope", max(slopes) if slopes else None)
        gs = largest["groupings"].values()
        t["engine_speedup_vs_naive"] = _check(
            "engine_speedup_vs_naive", min(g["speedup_vs_naive"] for g in gs)
        )
        t["engine_time_vs_duckdb"] = _check(
            "engine_time_vs_duckdb", max(g["time_vs_duckdb"] for g in gs)
        )
        t["engine_peak_memory_vs_input"] = _check(
            "engine_peak_memory_vs_input", largest["peak_extra_over_input"]
        )
        for k in (
            "engine_speedup_vs_naive",
            "engine_time_vs_duckdb",
            "engine_peak_memory_vs_input",
        ):
            t[k]["at"] = sizes[-1]
    if "atomic" in results:
        at = results["atomic"]
        t["atomic_writes_and_locking_ratio"] = _check(
            "atomic_writes_and_locking_ratio", at.get("ratio_country_run", at["ratio_ingest"])
        )
    if "gate" in results:
        g = results["gate"]
        t["gate_vs_handwritten"] = _check("gate_vs_handwritten", g["ratio_gate_checks"])
        t["gate_with_gx_vs_handwritten"] = _check(
            "gate_with_gx_vs_handwritten", g["ratio_gate_with_gx"]
        )
    if "mapping" in results:
        t["mapping_rich_vs_plain"] = _check(
            "mapping_rich_vs_plain", results["mapping"]["ratio_rich_vs_plain"]
        )
    if "country" in results:
        # the worst scale: rendering must stay a small part of every country's run
        shares = [c["render_share"] for c in results["country"].values() if c.get("render_share")]
        t["country_render_share"] = _check("country_render_share", max(shares) if shares else None)
    if "country" in results and "ritshidze" in results["country"]:
        t["country_overhead_share_ritshidze"] = _check(
            "country_overhead_share_ritshidze", results["country"]["ritshidze"]["overhead_share"]
        )
    if "chain" in results and results["chain"]["scale"] == "ritshidze":
        t["chain_share_of_country_run_ritshidze"] = _check(
            "chain_share_of_country_run_ritshidze", results["chain"]["share_of_country_run"]
        )
    if "disclosure" in results and results["disclosure"].get("scale") == "ritshidze":
        t["disclosure_audit_share_ritshidze"] = _check(
            "disclosure_audit_share_ritshidze", results["disclosure"]["audit_share_of_run"]
        )
    if "many" in results:
        effs = [
            r["parallel_efficiency"] for k, r in results["many"]["modes"].items() if k != "jobs_1"
        ]
        t["many_parallel_efficiency"] = _check(
            "many_parallel_efficiency", min(effs) if effs else None
        )
    return t


def _fmt(s: dict[str, Any], unit: str = "s") -> str:
    u = f" {unit}" if unit else ""
    return f"{s['median']:.3g}{u} ({s['min']:.3g}–{s['max']:.3g})"


def markdown(results: dict[str, Any]) -> str:
    """The short Markdown table of ``results.md``."""
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {m['nproc']} cores, {m['cpu_model']}, {m['ram_gb']} GB RAM; Python "
        f"{m['python']}, pandas {m['pandas']}, numpy {m['numpy']}; load average at start "
        f"{m['loadavg'][0]}. Median of several runs (min–max); ratios are measured in the same "
        f"run. Generated {results['generated']}{' (quick mode)' if results['quick'] else ''}.",
        "",
        "| benchmark | measured | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    tg = results.get("targets", {})

    def verdict(key: str) -> tuple[str, str]:
        if key not in tg:
            return "", ""
        v = tg[key]
        return v["target"], {True: "yes", False: "**no**", None: "n/a"}[v["met"]]

    if "startup" in results:
        s = results["startup"]
        lines.append(
            f"| `import clm_research` | {_fmt(s['import_clm_research'])} | `import pandas` "
            f"{_fmt(s['import_pandas'])} | {s['import_vs_pandas']}× | "
            + " | ".join(verdict("startup_import_vs_pandas"))
            + " |"
        )
        lines.append(
            f"| import + `load_framework()` | {_fmt(s['import_and_load_framework'])} | "
            f"`import pandas` | {s['framework_vs_pandas']}× | "
            + " | ".join(verdict("startup_framework_vs_pandas"))
            + " |"
        )
    if "engine" in results:
        e = results["engine"]
        slopes = ", ".join(
            f"{k.replace(':engine_all', '')} {v}"
            for k, v in e["loglog_slope"].items()
            if v is not None and "engine_all" in k
        )
        lines.append(
            f"| engine: log-log slope of time vs rows (all indicators) | {slopes} | | | "
            + " | ".join(verdict("engine_loglog_slope"))
            + " |"
        )
        largest = list(e["sizes"])[-1]
        for key, label in (
            ("engine_speedup_vs_naive", "engine vs naive pandas loop (interview indicators)"),
            ("engine_time_vs_duckdb", "engine time / DuckDB time (interview indicators)"),
            ("engine_peak_memory_vs_input", "engine peak extra memory / input size"),
        ):
            v = tg.get(key)
            if v:
                lines.append(
                    f"| {label}, {largest} rows (worst grouping) | | | {v['value']}× | "
                    + " | ".join(verdict(key))
                    + " |"
                )
    if "atomic" in results:
        at = results["atomic"]
        lines.append(
            f"| atomic writes + lock, publishing {at['facilities']} facilities × "
            f"{at['interviews_per_round']} interviews/round | {_fmt(at['publish_atomic'])} | "
            f"plain writes {_fmt(at['publish_plain'])}, stage + gate {at['stage_and_gate_seconds']} s"
            f" | {at.get('ratio_country_run', at['ratio_ingest'])}× | "
            + " | ".join(verdict("atomic_writes_and_locking_ratio"))
            + " |"
        )
    if "gate" in results:
        g = results["gate"]
        lines.append(
            f"| gate, own checks + quarantine, {g['interview_rows']:,} interviews | "
            f"{_fmt(g['gate_checks'])} | hand-written pandas {_fmt(g['handwritten_pandas'])} | "
            f"{g['ratio_gate_checks']}× | " + " | ".join(verdict("gate_vs_handwritten")) + " |"
        )
        lines.append(
            f"| gate with Great Expectations validation | {_fmt(g['gate_with_gx'])} (GX "
            f"{_fmt(g['gx_validation'])}) | hand-written pandas | {g['ratio_gate_with_gx']}× | "
            + " | ".join(verdict("gate_with_gx_vs_handwritten"))
            + " |"
        )
    if "mapping" in results:
        mp = results["mapping"]
        lines.append(
            f"| ingest + gate, Kobo-style export of {mp['rows']:,} rows, mapping that filters, "
            f"aggregates and derives | {_fmt(mp['rich'])} | same export, plain mapping "
            f"{_fmt(mp['plain'])} | {mp['ratio_rich_vs_plain']}× | "
            + " | ".join(verdict("mapping_rich_vs_plain"))
            + " |"
        )
    if "country" in results:
        for scale, c in results["country"].items():
            st = c["stages"]
            parts = ", ".join(f"{k} {v['median']:.2g}" for k, v in st.items())
            key = "country_overhead_share_ritshidze" if scale == "ritshidze" else ""
            tv = verdict(key) if key else ("", "")
            lines.append(
                f"| `clm run XA`, {scale} scale | {_fmt(c['clm_run_wall'])} wall; stages (s): "
                f"{parts} | | notebook overhead (kernel start + papermill) "
                f"{c['overhead_share']:.0%} of {c['country_total']['median']:.3g} s | "
                f"{tv[0]} | {tv[1]} |"
            )
            if "render_share" in c:
                rv = verdict("country_render_share")
                lines.append(
                    f"| render HTML + PDF, {scale} scale | HTML {_fmt(c['render_html'])}, PDF "
                    f"{_fmt(c['render_pdf'])} | the country's run {_fmt(c['run_seconds'])} | "
                    f"{c['render_share']:.0%} of the run | {rv[0]} | {rv[1]} |"
                )
    if "chain" in results:
        ch = results["chain"]
        tv = verdict("chain_share_of_country_run_ritshidze")
        lines.append(
            f"| results-chain analysis, XA {ch['scale']} scale ({ch['facilities']} facilities, "
            f"{ch['interviews']:,} interviews, {ch['links_estimated']} of {ch['links_declared']} "
            f"links estimated) | {_fmt(ch['chain_analysis'])} | `clm run XA` stages "
            f"{_fmt(ch['country_run_total'])} | {ch['share_of_country_run']:.1%} of the run | "
            f"{tv[0]} | {tv[1]} |"
        )
    if "disclosure" in results:
        d = results["disclosure"]
        lp = d["audit_detail"]
        tv = verdict("disclosure_audit_share_ritshidze") if d["scale"] == "ritshidze" else ("", "")
        lines.append(
            f"| disclosure audit of {len(lp['tables'])} published tables ({d['published_cells']:,} "
            f"cells), `clm run XA` {d['scale']} scale | audit {_fmt(d['audit'])} (tables alone "
            f"{_fmt(d['tables'])}; protected tables {_fmt(d['protect'])}); LP "
            f"{lp['lp_variables']:,} variables, {lp['lp_constraints']:,} constraints, "
            f"{lp['lp_blocks']:,} blocks, {lp['lp_solves']} solves in {lp['lp_seconds']} s; "
            f"{lp['suppressed_complementary']} complementary cells | `clm run XA` "
            f"{_fmt(d['clm_run_wall'])} | audit {d['audit_share_of_run']:.1%} of the run | "
            f"{tv[0]} | {tv[1]} |"
        )
    if "many" in results:
        mny = results["many"]
        for mode, r in mny["modes"].items():
            key = "" if mode == "jobs_1" else "many_parallel_efficiency"
            lines.append(
                f"| {len(mny['countries'])} countries, {mode} | {_fmt(r['wall'])} | `--jobs 1` | "
                f"speed-up {r['speedup']}×, efficiency {r['parallel_efficiency']} | "
                f"{'≥ 0.8' if key else ''} | "
                f"{('yes' if r['parallel_efficiency'] >= 0.8 else '**no**') if key else ''} |"
            )
    if "engine" in results:
        lines += [
            "",
            "Indicator engine: seconds, median (min–max). *all* = the 36 framework indicators; "
            "*interview* = the 10 interview indicators, which the baselines compute too (naive = "
            "one indicator at a time in pandas; DuckDB = one SQL query, default threads).",
            "",
            "| rows | grouping | all indicators | rows/s | interview indicators | naive pandas | "
            "DuckDB | DuckDB 1 thread | × faster than naive | × DuckDB time | peak memory / input |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results["engine"]["sizes"].values():
            for g, v in r["groupings"].items():
                lines.append(
                    f"| {r['rows']:,} | {g} | {_fmt(v['engine_all'], '')} | "
                    f"{v['engine_all']['rows_per_s']:,} | {_fmt(v['engine_interviews'], '')} | "
                    f"{_fmt(v['naive_pandas'], '')} | {_fmt(v['duckdb'], '')} | "
                    f"{_fmt(v['duckdb_1thread'], '') if 'duckdb_1thread' in v else '–'} | "
                    f"{v['speedup_vs_naive']} | "
                    f"{v['time_vs_duckdb']} | {r['peak_extra_over_input']} |"
                )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(SECTIONS), help=f"sections: {','.join(SECTIONS)}")
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (smoke test)")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "bench", help="output folder")
    p.add_argument("--cache", type=Path, help="data cache (default <out>/cache)")
    p.add_argument("--cores", type=int, default=2, help="workers for the many-countries run")
    p.add_argument("--sizes", help="engine sizes, e.g. 10k,100k,1M,10M")
    a = p.parse_args(argv)
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        p.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    out_dir = a.out.resolve()
    cache = (a.cache or out_dir / "cache").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    sizes = (
        a.sizes.split(",")
        if a.sizes
        else (["3k", "10k"] if a.quick else ["10k", "100k", "1M", "10M"])
    )
    results: dict[str, Any] = {
        "schema": 1,
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "quick": a.quick,
        "sections": only,
        "machine": machine(),
    }
    t0 = time.perf_counter()
    if "startup" in only:
        _log("startup")
        results["startup"] = bench_startup(3 if a.quick else 9)
    if "engine" in only:
        results["engine"] = bench_engine(sizes, cache, a.quick)
    if "gate" in only:
        _log("gate")
        results["gate"] = bench_gate(cache, a.quick)
    if "mapping" in only:
        _log("mapping")
        results["mapping"] = bench_mapping(cache, a.quick)
    if "country" in only:
        results["country"] = bench_country(cache, a.quick)
    if "chain" in only:
        results["chain"] = bench_chain(cache, a.quick, results.get("country"))
    if "disclosure" in only:
        results["disclosure"] = bench_disclosure(cache, a.quick, results.get("country", {}))
    if "atomic" in only:
        _log("atomic writes and locking")
        results["atomic"] = bench_atomic(cache, a.quick, results.get("country", {}))
    if "many" in only:
        results["many"] = bench_many(cache, a.cores, a.quick)
    results["targets"] = targets(results)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out_dir / "results.md").write_text(markdown(results))
    _log(f"wrote {out_dir / 'results.json'} and results.md in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
