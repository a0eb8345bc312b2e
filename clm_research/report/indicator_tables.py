"""Indicator tables for a country, written as CSV and Parquet under ``reports/<country>/``.

The tables are the published groupings (:data:`clm_research.disclosure.PUBLISHED_GROUPINGS`:
national, by round, facility × round for scorecards, district × round, district × round ×
sex × key population for equity tables, CLM arm × round), protected together: small cells
are suppressed and the disclosure audit adds the complementary suppressions that every table
taken together needs (:func:`clm_research.disclosure.protect_tables`).

A country that does not collect some tables or columns gets the tables of the indicators its
data can give, and ``not_computed.csv`` lists every other indicator with the reason
(:func:`clm_research.framework.resolve_availability`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from clm_research.disclosure import PUBLISHED_GROUPINGS
from clm_research.files import write_csv, write_parquet

if TYPE_CHECKING:
    from clm_research.framework import Availability

__all__ = ["DEFAULT_GROUPINGS", "write_indicator_tables"]

#: name of the table → group columns (the published groupings).
DEFAULT_GROUPINGS: dict[str, tuple[str, ...]] = PUBLISHED_GROUPINGS


def write_indicator_tables(
    country: str,
    by_sets: Sequence[str] | None = None,
    ci: Literal["wilson", "cluster"] = "cluster",
    folder: Path | None = None,
) -> tuple[list[Path], Availability]:
    """Compute the framework's indicators for ``country`` and write one table per grouping.

    Parameters
    ----------
    country
        Country code; its processed tables are read (``clm ingest`` writes them).
    by_sets
        Groupings as comma-separated column lists (``"district,round"``); default
        :data:`DEFAULT_GROUPINGS`. Extra groupings are audited together with the default ones
        (they are published beside them).
    ci
        ``"cluster"`` (facility-clustered intervals, default) or ``"wilson"``.
    folder
        Output folder; default ``reports/<country>/indicators/``.

    Returns
    -------
    paths, availability
        The CSV files written (a Parquet file sits beside each; ``not_computed.csv`` last, when
        some indicators cannot be computed) and which indicators were not computed, with the
        reason.

    Raises
    ------
    DisclosureError
        When the tables cannot be protected (nothing is written).
    """
    import pandas as pd

    from clm_research.config.country import load_country
    from clm_research.disclosure import protect_tables
    from clm_research.framework import load_framework, resolve_availability
    from clm_research.paths import country_report_dir
    from clm_research.tables import read_country

    params = load_country(country)
    framework = load_framework(country)
    tables = read_country(country)
    folder = folder or country_report_dir(country) / "indicators"
    wanted = dict(DEFAULT_GROUPINGS)
    if by_sets:
        wanted = {"by_" + s.replace(",", "_"): tuple(c for c in s.split(",") if c) for s in by_sets}
    audited = {**DEFAULT_GROUPINGS, **wanted}
    availability = resolve_availability(framework, tables)
    protected = protect_tables(framework, tables, audited, ci=ci, as_of=params.as_of)
    written = []
    for name in wanted:
        result = protected.tables[name]
        csv = write_csv(folder / f"{name}.csv", result)
        write_parquet(folder / f"{name}.parquet", result)
        written.append(csv)
    if not availability.not_computed:
        (folder / "not_computed.csv").unlink(missing_ok=True)  # from an earlier, smaller run
        return written, availability
    missing = pd.DataFrame(
        [
            (i, framework.indicator(i).label, framework.indicator(i).dataset, why)
            for i, why in availability.not_computed.items()
        ],
        columns=["indicator_id", "label", "dataset", "reason"],
    )
    written.append(write_csv(folder / "not_computed.csv", missing))
    return written, availability
