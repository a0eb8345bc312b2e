"""Disclosure-audit benchmark: the audit of every published table of a Ritshidze-scale country.

Runs in its own process (``python benchmarks/_disclosure.py``, with ``CLM_DATA_DIR`` pointing
at a folder where ``clm ingest XA`` has written the processed tables) and prints JSON. Two
figures, interleaved run by run so that machine load hits both alike:

* ``tables``: every grouping of ``PUBLISHED_GROUPINGS`` computed by the indicator engine with
  per-table suppression only (what publishing costs without the audit);
* ``protect``: the same tables protected together (``protect_tables``: tables, the attacker's
  model, the linear programmes and complementary suppression).

``audit`` is the audit's own time as it reports it (model and programmes, not the tables); the
size of the attacker's problem (free variables, constraints, blocks, solves) comes with it.
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--country", default="XA")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)

    from clm_research.config.country import load_country
    from clm_research.disclosure import PUBLISHED_GROUPINGS, protect_tables
    from clm_research.framework import load_framework
    from clm_research.indicators import Tabulation
    from clm_research.tables import read_country

    params = load_country(a.country)
    framework = load_framework(a.country)
    tables = read_country(a.country)
    rows = {name: len(t) for name, t in tables.items()}

    def tables_only() -> dict[str, Any]:
        tab = Tabulation(framework, tables, "cluster", None, None, params.as_of)
        return {name: tab.table(by) for name, by in PUBLISHED_GROUPINGS.items()}

    t_tables, t_protect, t_audit = [], [], []
    audit = None
    for _ in range(a.repeats):
        t = time.perf_counter()
        tables_only()
        t_tables.append(time.perf_counter() - t)
        t = time.perf_counter()
        audit = protect_tables(framework, tables, ci="cluster", as_of=params.as_of).audit
        t_protect.append(time.perf_counter() - t)
        t_audit.append(audit.seconds)
    assert audit is not None
    out = {
        "country": a.country,
        "input_rows": rows,
        "published_cells": audit.rows,
        "tables": summary(t_tables),
        "protect": summary(t_protect),
        "audit": summary(t_audit),
        "audit_detail": audit.as_dict(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
