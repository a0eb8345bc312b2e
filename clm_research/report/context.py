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

__all__ = [
    "params_of",
    "framework_of",
    "country_tables",
    "indicator_table",
    "effect_panel",
    "clm_effects",
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
def indicator_table(country: str, by: tuple[str, ...] = ("round",)) -> pd.DataFrame:
    """Every framework indicator by ``by`` (facility-clustered CIs, small cells suppressed)."""
    from clm_research.indicators import compute_indicators

    return compute_indicators(
        framework_of(country),
        country_tables(country),
        by=list(by),
        ci="cluster",
        as_of=params_of(country).as_of,
    )


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
