"""Report "Multi-country synthesis": the countries' CLM effects pooled per indicator
(random-effects meta-analysis, :func:`~clm_research.evaluation.meta.pool_effects`) with forest
plots. Each country's effects are read from its published report tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from clm_research.paths import country_report_dir

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["country_effects", "pooled_effects", "forest_figure"]


def country_effects(countries: Sequence[str], period: str) -> pd.DataFrame:
    """Every country's published ``clm_effects`` table for ``period``, stacked with ``country``."""
    import pandas as pd

    frames = []
    for c in countries:
        path = country_report_dir(c, period) / "tables" / "clm_effects.parquet"
        if path.is_file():
            frames.append(pd.read_parquet(path).assign(country=c))
    if not frames:
        return pd.DataFrame(columns=["indicator_id", "label", "estimate", "ci_low", "ci_high"])
    return pd.concat(frames, ignore_index=True)


def pooled_effects(countries: Sequence[str], period: str) -> pd.DataFrame:
    """Random-effects meta-analysis (REML), per indicator, of the countries' CLM effects."""
    from clm_research.evaluation.meta import pool_effects

    return pool_effects(country_effects(countries, period))


def forest_figure(countries: Sequence[str], period: str, indicator_id: str) -> Figure:
    """Forest plot of one indicator's CLM effect across countries with the pooled estimate."""
    from clm_research.evaluation.meta import meta_analysis

    effects = country_effects(countries, period)
    g = effects[effects["indicator_id"] == indicator_id].dropna(subset=["estimate"])
    return meta_analysis(g, label="country").plot()
