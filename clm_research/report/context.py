"""One country's data and analyses for its report, computed once per process.

The runner executes every notebook of a country in one kernel, chapters first and the summary
last, so the summary's scorecard reuses the effects the outcome and impact chapters computed; a
notebook opened on its own computes what it needs. Caches are keyed by the country code (and,
for the processed tables, by their modification times, so a new ingest is seen).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from clm_research.config.country import CountryParams, load_country
from clm_research.framework import Framework, load_framework
from clm_research.paths import processed_dir

if TYPE_CHECKING:
    import pandas as pd

    from clm_research.disclosure import ProtectedTables

__all__ = [
    "params_of",
    "framework_of",
    "country_tables",
    "published_tables",
    "indicator_table",
    "not_computed",
    "effect_panel",
    "clm_effects",
    "rounds_with_data",
    "require_period_data",
]


def params_of(country: str) -> CountryParams:
    """The country's validated parameters."""
    return load_country(country)


def framework_of(country: str) -> Framework:
    """The country's framework (the default one with its overrides and extra indicators)."""
    return load_framework(country)


@cache
def _tables(country: str, stamp: float) -> dict[str, pd.DataFrame]:
    from clm_research.tables import read_country

    return read_country(country)


def country_tables(country: str) -> dict[str, pd.DataFrame]:
    """The country's processed canonical tables (cached until ``data/processed`` changes)."""
    folder = processed_dir(country)
    stamp = max((p.stat().st_mtime for p in folder.glob("*.parquet")), default=0.0)
    return _tables(country, stamp)


@cache
def _not_computed(country: str, stamp: float) -> dict[str, str]:
    from clm_research.framework import resolve_availability

    return resolve_availability(framework_of(country), country_tables(country)).not_computed


def not_computed(country: str) -> dict[str, str]:
    """Indicators the country's data cannot give, with the reason (a table or column not
    collected; :func:`clm_research.framework.resolve_availability`)."""
    folder = processed_dir(country)
    stamp = max((p.stat().st_mtime for p in folder.glob("*.parquet")), default=0.0)
    return _not_computed(country, stamp)


@cache
def _published(country: str, stamp: float) -> ProtectedTables:
    from clm_research.disclosure import protect_tables

    return protect_tables(
        framework_of(country), country_tables(country), ci="cluster", as_of=params_of(country).as_of
    )


def published_tables(country: str) -> ProtectedTables:
    """The country's published indicator tables, protected together, with their audit.

    Every grouping a report or ``clm indicators`` publishes
    (:data:`~clm_research.disclosure.PUBLISHED_GROUPINGS`), small cells suppressed and
    complementary cells added until the linear-programming audit shows that no combination of
    the tables reveals a suppressed cell (``.tables``, ``.audit``). Computed once per process
    until ``data/processed`` changes.

    Raises
    ------
    DisclosureError
        When the tables cannot be made safe: nothing may be published.
    """
    folder = processed_dir(country)
    stamp = max((p.stat().st_mtime for p in folder.glob("*.parquet")), default=0.0)
    return _published(country, stamp)


def indicator_table(country: str, by: tuple[str, ...] = ("round",)) -> pd.DataFrame:
    """Every framework indicator by ``by`` (facility-clustered CIs), as published.

    ``by`` must be one of the published groupings
    (:data:`~clm_research.disclosure.PUBLISHED_GROUPINGS`): small cells are suppressed across
    all of them together, so no combination of the report's tables reveals one.

    Raises
    ------
    DisclosureError
        For a grouping that is not published (and so not audited).
    """
    from clm_research.disclosure import PUBLISHED_GROUPINGS
    from clm_research.errors import DisclosureError

    name = next((n for n, b in PUBLISHED_GROUPINGS.items() if b == tuple(by)), None)
    if name is None:
        raise DisclosureError(
            f"indicators by {', '.join(by) or 'nothing'} are not a published grouping; add it "
            "to PUBLISHED_GROUPINGS in clm_research/disclosure.py so that it is audited"
        )
    return published_tables(country).tables[name]


@cache
def effect_panel(country: str, indicator_id: str) -> pd.DataFrame | None:
    """Facility × time panel of one indicator (``None`` without a comparison design)."""
    from clm_research.evaluation.panels import indicator_panel

    return indicator_panel(framework_of(country), country_tables(country), indicator_id)


@cache
def clm_effects(country: str) -> pd.DataFrame:
    """The CLM effect on every outcome and impact indicator (:func:`~clm_research.evaluation.
    effects.clm_effects`)."""
    from clm_research.evaluation.effects import clm_effects as effects

    return effects(framework_of(country), country_tables(country))


#: Tables with a reporting round (``round``) or month (``period``) column.
_TIMED_TABLES: tuple[tuple[str, str], ...] = (
    ("interviews", "round"),
    ("observations", "round"),
    ("issues", "round"),
    ("routine", "period"),
    ("outreach", "period"),
)


def rounds_with_data(country: str) -> dict[str, list[str]]:
    """The reporting rounds each timed table has rows in (months mapped to their quarter)."""
    from clm_research.periods import months_to_rounds

    out: dict[str, list[str]] = {}
    tables = country_tables(country)
    for name, col in _TIMED_TABLES:
        frame = tables.get(name)
        if frame is None or col not in frame.columns or frame.empty:
            continue
        values = frame[col].dropna().astype(str)
        rounds = months_to_rounds(values) if col == "period" else values
        out[name] = sorted(set(rounds.astype(str)))
    return out


def require_period_data(country: str, period: str) -> None:
    """Fail clearly when no table of ``country`` has a row in reporting round ``period``.

    A report for a round without data would show an empty scorecard next to verdicts computed
    from other rounds; the run must fail instead (and the last good report stay linked).

    Raises
    ------
    ParamsError
        Naming the round and, per table, the rounds that do have data.
    """
    from clm_research.errors import ParamsError

    have = rounds_with_data(country)
    if any(period in rounds for rounds in have.values()):
        return
    spans = "; ".join(
        f"{name}: {r[0]}–{r[-1]}" if len(r) > 1 else f"{name}: {r[0]}"
        for name, r in have.items()
        if r
    )
    raise ParamsError(
        f"{country}: no data for reporting round {period} in any table "
        f"({spans or 'no dated rows at all'}); choose a round with data (--period) or add "
        f"the round's exports to data/raw/{country}/"
    )
