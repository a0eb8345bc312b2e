"""Report chapter "Outcomes": the CLM effect on each outcome indicator (difference-in-
differences, :func:`~clm_research.evaluation.effects.clm_effects`) and, as a check, client-level
GEE models of the interview indicators (clustered by facility).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from clm_research.report.context import clm_effects, country_tables, framework_of

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["outcome_effects", "client_models"]


def outcome_effects(country: str) -> pd.DataFrame:
    """The CLM effects on the outcome indicators (rows of the effects table at that level)."""
    effects = clm_effects(country)
    return effects[effects["level"] == "outcomes"]


@cache
def client_models(country: str, indicator_ids: tuple[str, ...]) -> pd.DataFrame:
    """Client-level GEE (clustered by facility) for interview indicators: effect of CLM exposure.

    One row per indicator with a client-level outcome (:func:`~clm_research.evaluation.client.
    indicator_gee`): the exposure effect (an odds ratio for proportions, a difference for
    means), its 95% CI and p-value, the interviews used and the method.
    """
    import pandas as pd

    from clm_research.evaluation.client import indicator_gee
    from clm_research.evaluation.panels import has_row_outcome

    framework, tables = framework_of(country), country_tables(country)
    out = []
    for iid in indicator_ids:
        if not has_row_outcome(framework.indicator(iid)):
            continue  # not a client-level indicator: it has no row in this table
        res = indicator_gee(framework, tables, iid)
        s = (
            res.summary()
            .iloc[[0]]
            .assign(indicator_id=iid, indicator=framework.indicator(iid).label)
        )
        out.append(s)
    if not out:
        return pd.DataFrame()
    df = pd.concat(out, ignore_index=True)
    return df[
        ["indicator_id", "indicator", "estimate", "ci_low", "ci_high", "p_value", "n_obs", "method"]
    ]
