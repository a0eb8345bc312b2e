"""Proposed speed-ups for the indicator engine, measured against the engine as it is.

The engine (``clm_research/indicators.py``, ``clm_research/derived.py``) belongs to the lead;
this script does not change it. It applies the proposals below in-process (monkeypatching),
checks that the result table is *identical* to the current engine's, and times both on a cached
benchmark size, so the gain of each proposal is a measurement, not a guess::

    python benchmarks/engine_proposals.py --size 1M [--profile]

Proposals (hotspots found with pyinstrument on 1M interviews):

1. ``enrich``: the facility attributes are joined with ``DataFrame.merge`` (hash join of a
   million string keys, ~0.4 s per call); an ``Index.get_indexer`` + ``take`` does the same
   many-to-one lookup in ~0.05 s.
2. ``_Groups``: group codes are made unique with ``np.unique`` (a sort, O(n log n)) of the
   mixed-radix code; when the radix product is small (it is the product of the key
   cardinalities) a ``np.bincount`` presence table gives the same sorted codes in O(n). Each
   key column is also factorised once per call instead of once per grouping.
3. ``_suppress``: margins are numbered with ``np.unique(..., axis=0)`` on stacked key codes,
   a slow row-tuple sort repeated for every indicator; one int64 code per row does the same.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

__all__ = ["apply_proposals", "fast_enrich", "FastGroups"]


def fast_enrich(name: str, frame: Any, facilities: Any) -> Any:
    """``derived.enrich`` with the facility join done by position (same output)."""
    import pandas as pd

    from clm_research import derived

    if not (facilities is not None and "facility_id" in frame and name in derived.DERIVED_COLUMNS):
        return _ORIGINAL["enrich"](name, frame, facilities)
    if name == "facilities" or not facilities["facility_id"].is_unique:
        return _ORIGINAL["enrich"](name, frame, facilities)
    out = frame.copy()
    if name in ("routine", "outreach") and "period" in out:
        out["round"] = derived.period_to_round(out["period"].astype("string"))
    fac = facilities[["facility_id", "region", "district", "type", "ownership", "clm_start"]]
    fac = fac.rename(columns={"type": "facility_type"})
    out = out.drop(columns=[c for c in fac.columns if c != "facility_id" and c in out])
    pos = pd.Index(fac["facility_id"]).get_indexer(out["facility_id"])
    for c in fac.columns:
        if c != "facility_id":
            out[c] = pd.Series(fac[c].array.take(pos, allow_fill=True), index=out.index)
    out["clm_arm"] = out["clm_start"].notna().map({True: "clm", False: "comparison"})
    when = derived._row_time(name, out)
    active = (when >= out["clm_start"]).astype("boolean")
    out["clm_active"] = active.fillna(False)
    out = out.drop(columns=["clm_start"])
    if name == "organisations":  # pragma: no cover - organisations carry no facility_id
        return _ORIGINAL["enrich"](name, frame, facilities)
    return out


class FastGroups:
    """``indicators._Groups`` with O(n) compaction of the group codes and cached factorisation."""

    _factor_cache: dict[tuple[int, str], tuple[Any, Any]] = {}

    def __init__(self, frame: Any, keys: list[str]) -> None:
        import numpy as np
        import pandas as pd

        self.keys = keys
        n = len(frame)
        if not keys:
            self.codes = np.zeros(n, dtype=np.intp)
            self.index = pd.Index([0], name="_all")
            self.n = 1
            return
        combined = np.zeros(n, dtype=np.int64)
        radix = 1
        uniques = []
        for k in keys:
            ck = (id(frame), k)
            if ck not in self._factor_cache:
                self._factor_cache[ck] = pd.factorize(frame[k], sort=True, use_na_sentinel=False)
            codes, uniq = self._factor_cache[ck]
            combined = combined * (len(uniq) + 1) + codes
            radix *= len(uniq) + 1
            uniques.append((codes, uniq))
        if radix <= 8 * n + 1024:
            present = np.bincount(combined, minlength=radix) > 0
            remap = np.cumsum(present) - 1
            self.codes = remap[combined].astype(np.intp)
            self.n = int(present.sum())
        else:
            group_values, inv = np.unique(combined, return_inverse=True)
            self.codes = inv.astype(np.intp).ravel()
            self.n = len(group_values)
        first = np.zeros(self.n, dtype=np.intp)
        first[self.codes[::-1]] = np.arange(n - 1, -1, -1)
        arrays = [np.asarray(uniq)[codes[first]] for codes, uniq in uniques]
        self.index = (
            pd.MultiIndex.from_arrays(arrays, names=keys)
            if len(keys) > 1
            else pd.Index(arrays[0], name=keys[0])
        )

    def sum(self, values: Any) -> Any:
        import numpy as np

        return np.bincount(self.codes, weights=values, minlength=self.n)

    def parent_of(self, child: Any) -> Any:
        import numpy as np

        parent = np.zeros(child.n, dtype=np.intp)
        parent[child.codes] = self.codes
        return parent


def fast_suppress(res: Any, keys: list[str], min_size: int) -> Any:
    """``indicators._suppress`` with margins numbered from a 1-D mixed-radix code.

    ``np.unique(stacked, axis=0)`` (a lexicographic sort of row tuples) is replaced by
    ``np.unique`` of one int64 per row; the margins are the same groups, only numbered
    differently, and the cells chosen for secondary suppression are the same.
    """
    import numpy as np
    import pandas as pd

    n = res["n"].fillna(0).to_numpy(dtype=float)
    label = np.where(n < min_size, "primary", "").astype(object)
    if min_size <= 0 or not len(res):
        return label
    codes = {k: pd.factorize(res[k], use_na_sentinel=False)[0] for k in keys}
    split = [k for k in keys if codes[k].max(initial=0) > 0]
    margins: dict[str, Any] = {}
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
            rows = np.flatnonzero(need)
            order = rows[np.lexsort((n[rows], margin[rows]))]
            first = np.r_[True, margin[order][1:] != margin[order][:-1]]
            label[order[first]] = "secondary"
            changed = True
        if not changed:
            break
    return label


_ORIGINAL: dict[str, Any] = {}


def apply_proposals(which: set[str]) -> None:
    """Patch the engine in this process with the chosen proposals (enrich, groups, suppress)."""
    from clm_research import derived, indicators

    _ORIGINAL.setdefault("enrich", derived.enrich)
    _ORIGINAL.setdefault("groups", indicators._Groups)
    _ORIGINAL.setdefault("suppress", indicators._suppress)
    indicators.enrich = fast_enrich if "enrich" in which else _ORIGINAL["enrich"]
    indicators._Groups = FastGroups if "groups" in which else _ORIGINAL["groups"]
    indicators._suppress = fast_suppress if "suppress" in which else _ORIGINAL["suppress"]
    FastGroups._factor_cache.clear()


def main(argv: list[str] | None = None) -> int:
    import pandas as pd
    from _engine import GROUPINGS, INTERVIEW_INDICATORS, ensure_data, load_data

    from clm_research.framework import load_framework
    from clm_research.indicators import compute_indicators

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1M")
    p.add_argument("--cache", type=Path, default=HERE.parent / "reports" / "bench" / "cache")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--profile", action="store_true")
    a = p.parse_args(argv)
    tables = load_data(ensure_data(a.size, a.cache))
    fw = load_framework()
    variants = {
        "current": set(),
        "enrich": {"enrich"},
        "groups": {"groups"},
        "suppress": {"suppress"},
        "all three": {"enrich", "groups", "suppress"},
    }
    runs: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
    reference: dict[str, Any] = {}
    # variants interleaved within each repeat, so a busy machine slows them alike
    for _ in range(a.repeats):
        for variant, which in variants.items():
            apply_proposals(which)
            for gname, by in GROUPINGS.items():
                for scope, inds in (("all", None), ("interviews", INTERVIEW_INDICATORS)):
                    FastGroups._factor_cache.clear()
                    t = time.perf_counter()
                    res = compute_indicators(fw, tables, by=by, indicators=inds)
                    key = f"{gname}:{scope}"
                    runs[variant].setdefault(key, []).append(time.perf_counter() - t)
                    if variant == "current":
                        reference.setdefault(key, res)
                    else:
                        pd.testing.assert_frame_equal(res, reference[key])
    results = {v: {k: statistics.median(t) for k, t in r.items()} for v, r in runs.items()}
    apply_proposals(set())
    print(f"median seconds on {a.size} rows (results identical to the current engine):")
    keys = list(results["current"])
    print(f"{'variant':<10}" + "".join(f"{k:>34}" for k in keys))
    for variant, r in results.items():
        print(f"{variant:<10}" + "".join(f"{r[k]:>34.3f}" for k in keys))
    out = HERE.parent / "reports" / "bench" / f"engine_proposals_{a.size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"size": a.size, "repeats": a.repeats, "median_s": results}, indent=2)
    )
    if a.profile:
        from pyinstrument import Profiler

        apply_proposals({"enrich", "groups", "suppress"})
        prof = Profiler(interval=0.002)
        prof.start()
        for by in GROUPINGS.values():
            compute_indicators(fw, tables, by=by, indicators=INTERVIEW_INDICATORS)
        prof.stop()
        print(prof.output_text(unicode=False, color=False))
        apply_proposals(set())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
