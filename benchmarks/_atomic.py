"""Cost of atomic writes and locking: publishing a Ritshidze-scale country's ingestion.

``clm ingest`` (and the gate step of ``clm run``) publishes every processed table, the
quarantine, the manifest and the Data Docs through :mod:`clm_research.files` (temporary file,
fsync, rename; folders swapped in one step) under the country's lock. This benchmark stages
and gates a Ritshidze-scale demo country once (400 facilities × 100 interviews per round: the
computation a publication follows), then times, in the same process and alternately:

- **atomic**: ``country_lock`` + ``write_outputs`` (what the project does);
- **plain**: the same tables sorted the same way and written in place with
  ``DataFrame.to_parquet`` and ``json.dump``: no temporary files, no fsync, no swap, no lock.

The ratio is (stage + gate + atomic publication) / (stage + gate + plain publication), the
goal ≤ 1.05; the extra seconds are also reported against a whole ``clm run`` of that country
when the ``country`` section ran in the same command. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import summary


def plain_write(report: Any, manifest: dict[str, Any], folder: Path) -> None:
    """The baseline: the same files written in place, nothing atomic."""
    from clm_research.schema import TABLES

    (folder / "processed").mkdir(parents=True, exist_ok=True)
    (folder / "quarantine").mkdir(parents=True, exist_ok=True)
    for name, frame in report.accepted.items():
        key = list(TABLES[name].primary_key)
        out = frame.sort_values(key, kind="stable").reset_index(drop=True)
        out.to_parquet(folder / "processed" / f"{name}.parquet", index=False)
        report.quarantine[name].to_parquet(folder / "quarantine" / f"{name}.parquet", index=False)
    with open(folder / "processed" / "manifest.json", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True, default=str)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--facilities", type=int, default=400)
    p.add_argument("--per-round", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    base = a.cache / f"atomic-{a.facilities}x{a.per_round}"
    os.environ["CLM_DATA_DIR"] = str(base / "data")
    os.environ["CLM_REPORTS_DIR"] = str(base / "reports")
    os.environ["GX_ANALYTICS_ENABLED"] = "false"

    from clm_research.demo import write_demo
    from clm_research.ingest.staging import stage_country
    from clm_research.locks import country_lock
    from clm_research.pipeline import IngestReport, _manifest, write_outputs
    from clm_research.quality.gate import run_gate

    write_demo(["XA"], facilities=a.facilities, interviews_per_round=a.per_round)
    t = time.perf_counter()
    staged, inputs, errors, mp = stage_country("XA")
    report = run_gate("XA", staged, use_gx=False, data_docs=False, errors=errors)
    compute = time.perf_counter() - t
    manifest = _manifest(
        IngestReport(country="XA", mapping=mp.source, inputs=inputs, gate=report), mp
    )

    def atomic() -> None:
        with country_lock("XA", command="benchmark"):
            write_outputs("XA", report, manifest=manifest)

    plain_dir = base / "plain"
    atomic_runs, plain_runs, lock_runs = [], [], []
    for _ in range(a.repeats):  # alternate, so a change of machine load hits both
        t = time.perf_counter()
        atomic()
        atomic_runs.append(time.perf_counter() - t)
        t = time.perf_counter()
        plain_write(report, manifest, plain_dir)
        plain_runs.append(time.perf_counter() - t)
        t = time.perf_counter()
        with country_lock("XA"):
            pass
        lock_runs.append(time.perf_counter() - t)
    at, pl = summary(atomic_runs), summary(plain_runs)
    rows = {k: len(v) for k, v in report.accepted.items()}
    size = sum(p.stat().st_size for p in (base / "data" / "processed" / "XA").glob("*.parquet"))
    res = {
        "facilities": a.facilities,
        "interviews_per_round": a.per_round,
        "rows": rows,
        "processed_bytes": size,
        "stage_and_gate_seconds": round(compute, 3),
        "publish_atomic": at,
        "publish_plain": pl,
        "lock_acquire_release": summary(lock_runs, digits=6),
        "extra_seconds": round(at["median"] - pl["median"], 4),
        "ratio_ingest": round((compute + at["median"]) / (compute + pl["median"]), 4),
    }
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
