"""Indicator tables for a country, written as CSV and Parquet under ``reports/<country>/``.

The default groupings are the ones programme reports use: national, facility × round (for
facility scorecards) and district × round × sex × key population (for equity tables; small
cells suppressed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from clm_research.files import write_csv, write_parquet

__all__ = ["DEFAULT_GROUPINGS", "write_indicator_tables"]

#: name of the table → group columns.
DEFAULT_GROUPINGS: dict[str, tuple[str, ...]] = {
    "national": (),
    "national_round": ("round",),
    "facility_round": ("facility_id", "round"),
    "district_round_sex_kp": ("district", "round", "sex", "key_population"),
    "arm_round": ("clm_arm", "round"),
}


def write_indicator_tables(
    country: str,
    by_sets: Sequence[str] | None = None,
    ci: Literal["wilson", "cluster"] = "cluster",
    folder: Path | None = None,
) -> list[Path]:
    """Compute the framework's indicators for ``country`` and write one table per grouping.

    Parameters
    ----------
    country
        Country code; its processed tables are read (``clm ingest`` writes them).
    by_sets
        Groupings as comma-separated column lists (``"district,round"``); default
        :data:`DEFAULT_GROUPINGS`.
    ci
        ``"cluster"`` (facility-clustered intervals, default) or ``"wilson"``.
    folder
        Output folder; default ``reports/<country>/indicators/``.

    Returns
    -------
    list of Path
        The CSV files written (a Parquet file sits beside each).
    """
    from clm_research.config.country import load_country
    from clm_research.framework import load_framework
    from clm_research.paths import country_report_dir
    from clm_research.tables import read_country

    params = load_country(country)
    framework = load_framework(country)
    tables = read_country(country)
    folder = folder or country_report_dir(country) / "indicators"
    if by_sets:
        groupings = {
            "by_" + s.replace(",", "_"): tuple(c for c in s.split(",") if c) for s in by_sets
        }
    else:
        groupings = DEFAULT_GROUPINGS
    from clm_research.indicators import compute_indicators

    written = []
    for name, by in groupings.items():
        result = compute_indicators(framework, tables, by=list(by), ci=ci, as_of=params.as_of)
        csv = write_csv(folder / f"{name}.csv", result, float_format="%.6g")
        write_parquet(folder / f"{name}.parquet", result)
        written.append(csv)
    return written
