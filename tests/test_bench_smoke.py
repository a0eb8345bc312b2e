"""Smoke test of the benchmark suite: `benchmarks/run.py --quick` runs and writes its JSON schema.

No timing is asserted (timings depend on the machine and its load); only that the suite runs end
to end, that every figure is a median with min and max of its runs, and that the baselines agree
with the engine on the numbers they both compute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("duckdb", reason="the benchmark's DuckDB baseline needs the `bench` extra")


def _is_summary(s: object) -> bool:
    return (
        isinstance(s, dict)
        and {"median", "min", "max", "runs"} <= set(s)
        and s["min"] <= s["median"] <= s["max"]
        and len(s["runs"]) >= 1
    )


def test_quick_benchmark_writes_results(tmp_path: Path) -> None:
    env = dict(os.environ, GX_ANALYTICS_ENABLED="false", MPLBACKEND="Agg")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--only",
            "startup,engine",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["quick"] is True and res["sections"] == ["startup", "engine"]
    m = res["machine"]
    assert m["nproc"] >= 1 and m["cpu_model"] and len(m["loadavg"]) == 3 and m["ram_gb"] > 0

    s = res["startup"]
    for k in ("import_pandas", "import_clm_research", "import_and_load_framework"):
        assert _is_summary(s[k]), k
    assert s["import_vs_pandas"] > 0

    e = res["engine"]
    assert list(e["sizes"]) == ["3k", "10k"]
    for size in e["sizes"].values():
        assert size["rows"] > 0 and size["input_bytes"] > 0 and size["peak_rss_bytes"] > 0
        assert set(size["groupings"]) == {"facility_round", "district_round_sex_kp"}
        for g in size["groupings"].values():
            for k in (
                "engine_all",
                "engine_interviews",
                "naive_pandas",
                "duckdb",
                "duckdb_1thread",
            ):
                assert _is_summary(g[k]), k
            # the baselines compute the same estimates as the engine where cells are published
            assert g["agreement"]["naive_max_abs_diff"] < 1e-9
            assert g["agreement"]["duckdb_max_abs_diff"] < 1e-9
    assert set(e["loglog_slope"]) >= {
        "facility_round:engine_all",
        "district_round_sex_kp:engine_all",
    }

    for name, t in res["targets"].items():
        assert {"value", "target", "met"} <= set(t), name
    md = (tmp_path / "results.md").read_text()
    assert md.startswith("# Benchmarks") and "| benchmark |" in md
