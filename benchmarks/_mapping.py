"""Mapping benchmark: ingest + gate of a Kobo-style export with a filtering, aggregating and
deriving mapping, as a ratio to the same export with a plain mapping.

Runs in its own process (``python benchmarks/_mapping.py --cache DIR --rows N``) and prints JSON.
The export (``;``-separated, Kobo metadata columns, group paths) is a routine form filled once
per facility × month × sex (``female``, ``male``, ``both``) × age group (4), with fake counts,
written once under ``<cache>/``. Both mappings read every row and type the same counts:

- *plain*: each export column to its canonical column (the rows stay at the export's grain;
  the gate quarantines the repeated facility-months as duplicates, as it would);
- *rich*: ``filter: sex == 'both'``, ``tests`` derived as ``tested_negative + tested_positive``,
  ``period`` from a template, and the age groups summed to one row per facility × month with a
  part-level check ``vl_suppressed <= vl_tested``.

Each run stages and gates from the CSV (``stage_country`` + ``run_gate`` without Great
Expectations); the two mappings alternate so that load on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import summary

SEXES = ("female", "male", "both")
AGES = ("Y000_014", "Y015_024", "Y025_049", "Y050_999")

COMMON = {
    "facility_id": "grp_site/facility",
    "tx_curr": "grp_art/on_art",
    "tx_new": "grp_art/new_on_art",
    "vl_tested": "grp_vl/vl_tested",
    "vl_suppressed": "grp_vl/vl_suppressed",
    "positives": "grp_tests/tested_positive",
}
NOT_COLLECTED = ["interruptions", "prep_new"]


def write_export(cache: Path, rows: int) -> tuple[Path, int]:
    """The Kobo-style CSV with about ``rows`` rows (cached); its path and exact row count."""
    import numpy as np
    import pandas as pd

    per_fm = len(SEXES) * len(AGES)
    months = 60
    facilities = max(1, round(rows / (per_fm * months)))
    folder = cache / f"mapping-{facilities}x{months}"
    path = folder / "routine_form.csv"
    n = facilities * months * per_fm
    if path.is_file():
        return folder, n
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240)
    fac = np.repeat(np.arange(1, facilities + 1), months * per_fm)
    month = np.tile(np.repeat(np.arange(months), per_fm), facilities)
    sex = np.tile(np.repeat(np.array(SEXES), len(AGES)), facilities * months)
    age = np.tile(np.array(AGES), facilities * months * len(SEXES))
    on_art = rng.poisson(120, n)
    tested = rng.binomial(on_art, 0.3)
    suppressed = rng.binomial(tested, 0.9)
    neg = rng.poisson(80, n)
    pos = rng.binomial(neg, 0.05)
    period = pd.period_range("2020-01", periods=months, freq="M").astype(str).to_numpy()
    frame = pd.DataFrame(
        {
            "start": "2024-06-01T08:00:00.000+02:00",
            "end": "2024-06-01T08:10:00.000+02:00",
            "grp_site/facility": pd.Series(fac).map(lambda i: f"XT-F{i:04d}"),
            "grp_site/year": (2020 + month // 12).astype(str),
            "grp_site/month": pd.Series(month % 12 + 1).map(lambda m: f"{m:02d}"),
            "grp_site/period": period[month],
            "grp_site/sex": sex,
            "grp_site/age_group": age,
            "grp_art/on_art": on_art,
            "grp_art/new_on_art": rng.poisson(5, n),
            "grp_vl/vl_tested": tested,
            "grp_vl/vl_suppressed": suppressed,
            "grp_tests/tested_negative": neg - pos,
            "grp_tests/tested_positive": pos,
            "grp_tests/tests_total": neg,
            "_id": np.arange(1, n + 1),
            "_uuid": [f"u{i:08d}" for i in range(n)],
            "_submission_time": "2024-06-01T08:10:00",
            "_index": np.arange(1, n + 1),
        }
    )
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, sep=";", index=False)
    tmp.rename(path)
    return folder, n


def mappings() -> dict[str, Any]:
    """The plain and the rich mapping of the same export."""
    from clm_research.ingest.mapping import Mapping

    ignore = ["grp_site/age_group", "grp_site/year", "grp_site/month", "grp_site/sex"]
    plain = {
        "files": ["routine_form.csv"],
        "not_collected": NOT_COLLECTED,
        "ignore": [*ignore, "grp_tests/tested_negative"],
        "columns": {**COMMON, "period": "grp_site/period", "tests": "grp_tests/tests_total"},
    }
    rich = {
        "files": ["routine_form.csv"],
        "not_collected": NOT_COLLECTED,
        "ignore": [*ignore, "grp_site/period", "grp_tests/tests_total"],
        "filter": "`grp_site/sex` == 'both'",
        "columns": {
            **COMMON,
            "period": {"template": "{grp_site/year}-{grp_site/month}"},
            "tests": {"expr": "`grp_tests/tested_negative` + `grp_tests/tested_positive`"},
        },
        "aggregate": {
            "by": ["facility_id", "period"],
            "columns": {
                c: "sum"
                for c in ("tx_curr", "tx_new", "vl_tested", "vl_suppressed", "tests", "positives")
            },
            "checks": ["vl_suppressed <= vl_tested"],
        },
    }
    return {
        name: Mapping.model_validate(
            {"country": "XT", "format": "kobo", "tables": {"routine": spec}}
        )
        for name, spec in (("plain", plain), ("rich", rich))
    }


def run(folder: Path, mapping: Any) -> dict[str, Any]:
    """Stage and gate once; the row accounting of the run."""
    from clm_research.ingest.staging import stage_country
    from clm_research.quality.gate import run_gate

    t = time.perf_counter()
    staged, inputs, errors, _ = stage_country("XT", mapping, folder)
    if errors:
        raise RuntimeError(f"staging failed: {errors}")
    stage_seconds = time.perf_counter() - t
    gate = run_gate("XT", staged, use_gx=False, data_docs=False)
    info = inputs[0]
    t = gate.tables["routine"]
    return {
        "rows_in": info.rows,
        "filtered": info.filtered_rows,
        "combined_into": (info.aggregate or {}).get("rows_out"),
        "accepted": t.accepted,
        "quarantined": t.quarantined,
        "stage_seconds": round(stage_seconds, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    t = time.perf_counter()
    folder, n = write_export(a.cache, a.rows)
    write_seconds = round(time.perf_counter() - t, 2)
    maps = mappings()
    times: dict[str, list[float]] = {"plain": [], "rich": []}
    stages: dict[str, list[float]] = {"plain": [], "rich": []}
    counts: dict[str, Any] = {}
    for _ in range(a.repeats):
        for name in ("plain", "rich"):
            t = time.perf_counter()
            counts[name] = run(folder, maps[name])
            times[name].append(time.perf_counter() - t)
            stages[name].append(counts[name].pop("stage_seconds"))
    plain, rich = summary(times["plain"]), summary(times["rich"])
    out = {
        "rows": n,
        "write_export_seconds": write_seconds,
        "plain": plain,
        "rich": rich,
        "ratio_rich_vs_plain": round(rich["median"] / plain["median"], 3),
        # staging alone (reading, filter, mapping, typing, aggregation): the gate of the plain
        # mapping handles every row, the rich one a twelfth of them
        "plain_staging": summary(stages["plain"]),
        "rich_staging": summary(stages["rich"]),
        "ratio_staging_rich_vs_plain": round(
            summary(stages["rich"])["median"] / summary(stages["plain"])["median"], 3
        ),
        "counts": counts,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
