"""Data-quality gate benchmark: the gate (own checks, and with Great Expectations) on ~1M interviews.

Runs in its own process (``python benchmarks/_gate.py --cache DIR``) and prints JSON. The raw
exports are the demo generator's (country XA at 400 facilities × 312 interviews per round, with
its planted faults), written once under ``<cache>/gate-data/`` and staged once (CSV reading and
mapping are ingestion, not the gate); the staged facilities and interviews are cached as a
pickle. The baseline is the same rules written by hand as vectorised pandas, with the same
quarantine split and ``failed_rules`` text.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import summary, time_call

__all__ = ["ensure_staged", "handwritten_gate"]

AS_OF = "2025-01-15"


def ensure_staged(cache: Path, facilities: int, per_round: int) -> tuple[dict[str, Any], dict]:
    """Raw demo exports → staged facilities + interviews (cached); info on how they were made."""
    path = cache / f"gate-staged-{facilities}x{per_round}.pkl"
    if path.is_file():
        with path.open("rb") as f:
            return pickle.load(f), {"cached": True}
    os.environ["CLM_DATA_DIR"] = str(cache / f"gate-data-{facilities}x{per_round}")
    from clm_research.demo import write_demo
    from clm_research.ingest.staging import stage_country

    info: dict[str, Any] = {"cached": False}
    t = time.perf_counter()
    write_demo(["XA"], facilities=facilities, interviews_per_round=per_round)
    info["write_raw_seconds"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    staged, _, errors, _ = stage_country("XA")
    info["staging_seconds"] = round(time.perf_counter() - t, 2)
    if errors:
        raise RuntimeError(f"staging failed: {errors}")
    staged = {k: staged[k] for k in ("facilities", "interviews")}
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        pickle.dump(staged, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.rename(path)
    return staged, info


def _interview_masks(df: Any, facility_ids: Any, as_of: Any) -> dict[str, Any]:
    """The interviews rules, written out by hand (True = the row fails)."""
    import pandas as pd

    m: dict[str, Any] = {}
    for col in ("interview_id", "facility_id", "date", "round", "sex", "key_population", "on_art"):
        m[f"not_null:{col}"] = df[col].isna().to_numpy()
    m["allowed_values:sex"] = (
        df["sex"].notna() & ~df["sex"].isin(["female", "male", "other"])
    ).to_numpy()
    m["age_range"] = ((df["age"] < 15) | (df["age"] > 100)).fillna(False).to_numpy()
    kp = ["none", "msm", "sex_worker", "pwud", "transgender", "prisoner"]
    m["allowed_values:key_population"] = (
        df["key_population"].notna() & ~df["key_population"].isin(kp)
    ).to_numpy()
    m["range:wait_minutes"] = (
        ((df["wait_minutes"] < 0) | (df["wait_minutes"] > 720)).fillna(False).to_numpy()
    )
    for col, allowed in (
        ("treated_with_respect", [1, 2, 3, 4, 5]),
        ("satisfaction", [1, 2, 3, 4, 5]),
        ("refill_months", [1, 2, 3, 4, 5, 6]),
    ):
        m[f"allowed_values:{col}"] = (
            (df[col].notna() & ~df[col].isin(allowed)).fillna(False).to_numpy()
        )
    m["pattern:round"] = (
        df["round"].notna() & ~df["round"].str.fullmatch(r"\d{4}Q[1-4]").fillna(False)
    ).to_numpy()
    m["future_date:date"] = (df["date"] > pd.Timestamp(as_of)).fillna(False).to_numpy()
    m["duplicate_key:interview_id"] = (
        df["interview_id"].duplicated(keep="first") & df["interview_id"].notna()
    ).to_numpy()
    m["unknown_reference:facility_id"] = (
        df["facility_id"].notna() & ~df["facility_id"].isin(facility_ids)
    ).to_numpy()
    m["range:age"] = m.pop("age_range")
    return m


def _facility_masks(df: Any) -> dict[str, Any]:
    m: dict[str, Any] = {}
    for col in ("facility_id", "name", "region", "district", "type", "ownership"):
        m[f"not_null:{col}"] = df[col].isna().to_numpy()
    m["allowed_values:type"] = (
        df["type"].notna() & ~df["type"].isin(["hospital", "health_centre", "clinic", "dispensary"])
    ).to_numpy()
    m["allowed_values:ownership"] = (
        df["ownership"].notna() & ~df["ownership"].isin(["public", "faith_based", "private", "ngo"])
    ).to_numpy()
    m["range:latitude"] = ((df["latitude"] < -90) | (df["latitude"] > 90)).fillna(False).to_numpy()
    m["range:longitude"] = (
        ((df["longitude"] < -180) | (df["longitude"] > 180)).fillna(False).to_numpy()
    )
    m["pattern:facility_id"] = (
        df["facility_id"].notna()
        & ~df["facility_id"].str.fullmatch(r"[A-Z]{2}-F\d{3,5}").fillna(False)
    ).to_numpy()
    m["future_date:clm_start"] = (df["clm_start"] > pd_ts(AS_OF)).fillna(False).to_numpy()
    m["duplicate_key:facility_id"] = (
        df["facility_id"].duplicated(keep="first") & df["facility_id"].notna()
    ).to_numpy()
    return m


def pd_ts(x: str) -> Any:
    import pandas as pd

    return pd.Timestamp(x)


def handwritten_gate(staged: dict[str, Any], as_of: str = AS_OF) -> dict[str, Any]:
    """Same rules and quarantine as the gate, by hand: accepted and quarantined frames per table."""
    import numpy as np
    import pandas as pd

    out: dict[str, Any] = {}
    fac_ids = staged["facilities"].frame["facility_id"].dropna().unique()
    for name, st in staged.items():
        df = st.frame
        masks = dict(st.prefailed)
        found = (
            _interview_masks(df, fac_ids, as_of) if name == "interviews" else _facility_masks(df)
        )
        for label, mk in found.items():
            if mk.any():
                masks[label] = masks[label] | mk if label in masks else mk
        failed = np.full(len(df), "", dtype=object)
        for label, mk in masks.items():
            if mk.any():
                cur = failed[mk]
                failed[mk] = np.where(cur == "", label, cur + "; " + label)
        bad = failed != ""
        q = df[bad].reset_index(drop=True)
        q.insert(0, "failed_rules", pd.Series(failed[bad], dtype="string"))
        q.insert(0, "source_row", pd.Series(st.source_row[bad], dtype="Int64"))
        out[name] = (df[~bad].reset_index(drop=True), q)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--facilities", type=int, default=400)
    p.add_argument("--per-round", type=int, default=312)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--gx-repeats", type=int, default=2)
    p.add_argument("--profile", type=Path, help="write a pyinstrument profile of one GX run here")
    a = p.parse_args(argv)
    a.cache.mkdir(parents=True, exist_ok=True)
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    staged, info = ensure_staged(a.cache, a.facilities, a.per_round)
    os.environ["CLM_REPORTS_DIR"] = str(a.cache / "gate-reports")

    from clm_research.quality.gate import _references, run_gate, run_gx

    rows = len(staged["interviews"].frame)
    as_of = pd_ts(AS_OF)
    refs = _references(staged)
    # warm the GX import and context once, on a small slice
    small = {k: v for k, v in staged.items()}
    run_gx("XA", {"facilities": small["facilities"]}, refs, as_of, data_docs=False)

    res: dict[str, Any] = {"interview_rows": rows, "staging": info}
    res["handwritten_pandas"], hand = time_call(lambda: handwritten_gate(staged), a.repeats)
    res["gate_checks"], rep = time_call(
        lambda: run_gate("XA", staged, as_of=as_of, use_gx=False, data_docs=False), a.repeats
    )
    res["gx_validation"], (gx_results, _) = time_call(
        lambda: run_gx("XA", staged, refs, as_of, data_docs=False), a.gx_repeats
    )
    gate_gx = [
        res["gate_checks"]["runs"][i % len(res["gate_checks"]["runs"])] + g
        for i, g in enumerate(res["gx_validation"]["runs"])
    ]
    res["gate_with_gx"] = summary(gate_gx)
    base = res["handwritten_pandas"]["median"]
    res["ratio_gate_checks"] = round(res["gate_checks"]["median"] / base, 2)
    res["ratio_gate_with_gx"] = round(res["gate_with_gx"]["median"] / base, 2)
    q_gate = {k: t.quarantined for k, t in rep.tables.items()}
    q_hand = {k: len(v[1]) for k, v in hand.items()}
    res["quarantined"] = {"gate": q_gate, "handwritten": q_hand, "agree": q_gate == q_hand}
    gx_iv = gx_results["interviews"][1]
    gate_iv = rep.tables["interviews"].by_rule
    # GX counts every member of a duplicated key, the quarantine only the later copies
    ids = staged["interviews"].frame["interview_id"]
    expected = {
        label: int(ids.duplicated(keep=False).sum()) if label.startswith("duplicate_key") else n
        for label, n in gate_iv.items()
        if not label.startswith("type:")
    }
    res["gx_agrees_with_gate"] = gx_iv == expected
    res["gx_failed_expectations"] = {k: v[1] for k, v in gx_results.items()}
    if a.profile:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.005)
        prof.start()
        run_gx("XA", staged, refs, as_of, data_docs=False)
        prof.stop()
        a.profile.write_text(prof.output_text(unicode=False, color=False))
    print(json.dumps(res, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
