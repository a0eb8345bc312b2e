"""Time the results-chain analysis on one country's processed tables (run in a fresh process).

Prints one JSON line: the seconds of ``read_country`` + ``load_framework`` (once) and of
``chain_analysis`` (``--repeats`` runs after one untimed warm-up that pays the imports), and
how many links were declared and estimated.
"""

from __future__ import annotations

import argparse
import json
import time

from _timing import summary


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--country", default="XA")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    from clm_research.evaluation import chain_analysis
    from clm_research.framework import load_framework
    from clm_research.tables import read_country

    t = time.perf_counter()
    tables = read_country(a.country)
    framework = load_framework(a.country)
    load = time.perf_counter() - t
    result = chain_analysis(tables, framework)  # warm-up: lazy imports (scipy, statsmodels)
    runs = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        result = chain_analysis(tables, framework)
        runs.append(time.perf_counter() - t)
    links = result.links
    print(
        json.dumps(
            {
                "load_tables_seconds": round(load, 3),
                "chain_analysis": summary(runs),
                "facilities": int(tables["facilities"].shape[0]),
                "interviews": int(tables["interviews"].shape[0]),
                "links_declared": int(len(links)),
                "links_estimated": int((links["status"] == "estimated").sum()),
            }
        )
    )


if __name__ == "__main__":
    main()
