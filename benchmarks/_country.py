"""Country-run benchmarks: ``clm run`` for one country, and for many countries in parallel.

Each run uses its own ``CLM_DATA_DIR`` / ``CLM_REPORTS_DIR`` under the benchmark cache, so the
project's demo reports are never touched. The many-countries run also needs its own
``CLM_PROJECT_ROOT``: a temporary copy of ``params/``, ``notebooks/`` and ``pyproject.toml``
with eight extra demo countries (XC…XJ, copies of XA's parameters with new codes, seeds and
sizes), so nothing is added to the project's ``params/countries/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["country_env", "prepare_country", "run_clm", "make_project_copy", "stage_summary"]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: Stages of timings.json that are notebook machinery rather than analysis.
OVERHEAD_STAGES = ("kernel_start", "papermill_overhead")


def country_env(
    data: Path, reports: Path, project: Path | None = None, threads: int | None = 1
) -> dict[str, str]:
    """Environment of a benchmark run (own data and reports folders; optional project root)."""
    env = dict(os.environ)
    env.update(
        {
            "CLM_DATA_DIR": str(data),
            "CLM_REPORTS_DIR": str(reports),
            "GX_ANALYTICS_ENABLED": "false",
            "MPLBACKEND": "Agg",
            "TQDM_DISABLE": "1",
        }
    )
    if threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    if project is not None:
        env["CLM_PROJECT_ROOT"] = str(project)
    return env


def prepare_country(
    env: dict[str, str], codes: list[str], facilities: int | None, per_round: int | None
) -> float:
    """Write the demo raw exports for ``codes`` (skipped when up to date); seconds taken."""
    argv = [str(BIN / "clm"), "demo-data", *codes]
    if facilities:
        argv += ["--facilities", str(facilities)]
    if per_round:
        argv += ["--interviews-per-round", str(per_round)]
    t = time.perf_counter()
    subprocess.run(
        argv, check=True, env=env, cwd=env.get("CLM_PROJECT_ROOT", ROOT), stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - t


def run_clm(env: dict[str, str], args: list[str]) -> float:
    """Run ``clm run …`` in a fresh process; wall seconds (raises when it fails)."""
    t = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "clm"), "run", *args],
        env=env,
        cwd=env.get("CLM_PROJECT_ROOT", ROOT),
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(
            f"clm run {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return wall


def stage_summary(reports: Path, country: str) -> dict[str, Any]:
    """The stages of the country's latest timings.json, with totals and the overhead share."""
    paths = sorted((reports / country).glob("*/timings.json"), key=lambda p: p.stat().st_mtime)
    if not paths:
        raise FileNotFoundError(f"no timings.json under {reports / country}")
    data = json.loads(paths[-1].read_text())
    stages = data["stages"]
    total = sum(stages.values())
    overhead = sum(stages.get(k, 0.0) for k in OVERHEAD_STAGES)
    # HTML + PDF as a share of the country's run (its wall time from start to publish)
    render = data.get("render", {})
    run_seconds = data.get("seconds_to_publish")
    render_total = sum(render.values()) if render else stages.get("render", 0.0)
    return {
        "stages": stages,
        "notebooks": data.get("notebooks", {}),
        "country_total": round(total, 3),
        "overhead": round(overhead, 3),
        "overhead_share": round(overhead / total, 3) if total else None,
        "render": render,
        "run_seconds": run_seconds,
        "render_share": round(render_total / run_seconds, 3) if run_seconds else None,
    }


def make_project_copy(dest: Path, codes: list[str], facilities: int, per_round: int) -> Path:
    """A project root with ``params/`` (plus ``codes`` as demo countries) and ``notebooks/``.

    The new countries copy XA's parameters with a new code, name, seed and size (the project's
    own countries stay: analysis plans refer to them).
    """
    import yaml

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(ROOT / "params", dest / "params")
    shutil.copytree(
        ROOT / "notebooks", dest / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints")
    )
    countries = dest / "params" / "countries"
    base = yaml.safe_load((countries / "XA.yaml").read_text())
    mappings = dest / "params" / "mappings"
    for i, code in enumerate(codes):
        spec = dict(base)
        spec["code"] = code
        spec["name"] = f"Benchmark country {code} (fictional)"
        spec["demo"] = {
            **base["demo"],
            "seed": 9100 + i,
            "facilities": facilities,
            "interviews_per_round": per_round,
        }
        (countries / f"{code}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        xa_map = mappings / "XA.yaml"
        if xa_map.is_file() and not (mappings / f"{code}.yaml").is_file():
            text = xa_map.read_text().replace("XA", code)
            (mappings / f"{code}.yaml").write_text(text)
    return dest
