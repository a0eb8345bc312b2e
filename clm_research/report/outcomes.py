"""Report chapter "Outcomes": the CLM effect on each outcome indicator (difference-in-
differences, :func:`~clm_research.evaluation.effects.clm_effects`) and, as a check, client-level
GEE models of the interview indicators (clustered by facility).

:func:`effects_display` is the one table of CLM effects (outcomes here, impact in
:mod:`clm_research.report.impact`): each effect in its indicator's unit with the unadjusted
95% interval and the multiplicity-adjusted interval the verdict follows.
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING

from clm_research.evaluation.effects import EFFECT_VERDICTS, verdict_rule
from clm_research.report.context import clm_effects, country_tables, framework_of
from clm_research.report.format import (
    Cell,
    Column,
    IndicatorFormat,
    PresentationTable,
    format_count,
    format_p,
    ratio_text,
)

if TYPE_CHECKING:
    import pandas as pd

    from clm_research.framework import Framework

__all__ = [
    "outcome_effects",
    "effects_display",
    "effects_table",
    "client_models",
    "client_models_display",
]

_VERDICT_CSS = {
    EFFECT_VERDICTS["improved"]: ("▲", "verdict-improved"),
    EFFECT_VERDICTS["worse"]: ("▼", "verdict-worse"),
    EFFECT_VERDICTS["null"]: ("●", "verdict-null"),
    EFFECT_VERDICTS["not_evaluated"]: ("○", "verdict-none"),
}


def outcome_effects(country: str) -> pd.DataFrame:
    """The CLM effects on the outcome indicators (rows of the effects table at that level)."""
    effects = clm_effects(country)
    return effects[effects["level"] == "outcomes"]


def _reference(
    framework: Framework, iid: str, row: pd.Series, levels: pd.DataFrame | None
) -> float:
    """The indicator's typical level (sets its decimals and the scale of a small rate)."""
    if levels is not None:
        v = levels.loc[levels["indicator_id"] == iid, "estimate"].astype(float).abs()
        if v.notna().any():
            return float(v.max())
    return abs(float(row["estimate"])) if row["estimate"] == row["estimate"] else math.nan


def effects_display(
    effects: pd.DataFrame,
    framework: Framework,
    *,
    all_effects: pd.DataFrame | None = None,
    levels: pd.DataFrame | None = None,
) -> PresentationTable:
    """A table of CLM effects: indicator, effect (95% CI), adjusted CI, p, adjusted p,
    facilities and verdict; no codes, no NaN, small rates per 1,000.

    Parameters
    ----------
    effects
        Rows of :func:`~clm_research.evaluation.effects.clm_effects` to show.
    all_effects
        The whole effects table (the adjustment's ``m``); default ``effects``.
    levels
        Indicator estimates by round (their magnitude sets decimals and rate scale, so the
        effect is in the same unit as the scorecard's levels).
    """
    everything = effects if all_effects is None else all_effects
    lv = everything["ci_level_adjusted"].dropna()
    level = float(lv.iloc[0]) if len(lv) else math.nan
    adj_header = f"{level:.1%} adjusted CI" if math.isfinite(level) else "Adjusted CI"
    t = PresentationTable(
        [
            Column("Indicator (unit)", align="left", wrap=True, width="28%"),
            Column("CLM effect (95% CI)", wrap=True),
            Column(adj_header, wrap=True),
            Column("p"),
            Column("Adjusted p"),
            Column("Facilities"),
            Column("Verdict", align="left", wrap=True),
        ]
    )
    for _, r in effects.iterrows():
        ind = framework.indicator(str(r["indicator_id"]))
        fmt = IndicatorFormat(ind.type, ind.unit, _reference(framework, ind.id, r, levels))
        row: list[str | Cell] = [fmt.label(ind.label)]
        if r["estimate"] == r["estimate"]:
            f = fmt.for_effect(r["estimate"], r["ci_low"], r["ci_high"])
            unit = " pp" if fmt.kind == "proportion" else ""
            markers: tuple[str, ...] = ()
            if fmt.kind == "count" and r.get("time_unit"):
                markers = (t.marker(f"Effect per facility per {r['time_unit']}."),)
            row.append(
                Cell(
                    f"{f.difference(r['estimate'], with_unit=False)}{unit} "
                    f"({f.interval(r['ci_low'], r['ci_high'], sign=True)})",
                    markers=markers,
                )
            )
            row.append(f.interval(r["ci_low_adjusted"], r["ci_high_adjusted"], sign=True))
            row.append(format_p(r["p_value"]))
            row.append(format_p(r["p_adjusted"]))
            row.append(format_count(r["n_facilities"]))
        else:
            note = str(r.get("note") or "not evaluated")
            reason = note[:1].upper() + note[1:] + ("" if note.endswith(".") else ".")
            miss = t.missing(reason)
            row += [miss, miss, miss, miss, miss]
        symbol, css = _VERDICT_CSS.get(str(r["verdict"]), ("", ""))
        row.append(Cell(f"{symbol} {r['verdict']}".strip(), css=css))
        t.add_row(row)
    t.note(verdict_rule(everything))
    t.note(
        "Effects are differences (CLM minus comparison, Callaway & Sant'Anna) in the "
        "indicator's unit; pp = percentage points."
    )
    return t


def effects_table(country: str, level: str) -> PresentationTable:
    """:func:`effects_display` of a country's effects at ``level`` (``outcomes``/``impact``),
    adjusted over all its indicators and in the units of its scorecard."""
    from clm_research.report.context import indicator_table

    effects = clm_effects(country)
    return effects_display(
        effects[effects["level"] == level],
        framework_of(country),
        all_effects=effects,
        levels=indicator_table(country, ("round",)),
    )


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
    from clm_research.report.chapters import comparison_note, computed_ids

    framework, tables = framework_of(country), country_tables(country)
    if comparison_note(country) is not None:  # no CLM exposure to model
        return pd.DataFrame()
    out = []
    for iid in computed_ids(country, indicator_ids):  # those the country collects
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
        [
            "indicator_id",
            "indicator",
            "scale",
            "estimate",
            "ci_low",
            "ci_high",
            "p_value",
            "n_obs",
            "method",
        ]
    ]


_MEASURES = {
    "odds_ratio": "Odds ratio (CLM vs not yet)",
    "difference": "Difference",
    "risk_ratio": "Risk ratio",
    "rate_ratio": "Rate ratio",
}


def client_models_display(models: pd.DataFrame, framework: Framework) -> PresentationTable | str:
    """The GEE check as a table: one measure per row, named, in its unit (odds ratios and
    minutes are never in one unlabelled column)."""
    if models.empty:
        return (
            "No interview indicator has a client-level outcome to model here (the indicators "
            "are not collected in this country, or CLM and comparison facilities cannot be "
            "told apart)."
        )
    t = PresentationTable(
        [
            Column("Indicator (unit)", align="left", wrap=True, width="32%"),
            Column("Measure", align="left", wrap=True),
            Column("Estimate (95% CI)", wrap=True),
            Column("p"),
            Column("Interviews"),
        ]
    )
    for _, r in models.iterrows():
        ind = framework.indicator(str(r["indicator_id"]))
        scale = str(r.get("scale", "difference"))
        if scale in ("odds_ratio", "risk_ratio", "rate_ratio", "ratio"):
            fmt = IndicatorFormat(ind.type, ind.unit)
            est = ratio_text(r["estimate"], r["ci_low"], r["ci_high"])
            measure = _MEASURES.get(scale, "Ratio")
        else:
            fmt = IndicatorFormat(ind.type, ind.unit, abs(float(r["estimate"])))
            f = fmt.for_effect(r["estimate"], r["ci_low"], r["ci_high"])
            est = (
                f"{f.difference(r['estimate'], with_unit=False)} "
                f"({f.interval(r['ci_low'], r['ci_high'], sign=True)})"
            )
            unit = fmt.effect_unit
            measure = f"Difference ({unit})" if unit else "Difference"
        t.add_row(
            [fmt.label(ind.label), measure, est, format_p(r["p_value"]), format_count(r["n_obs"])]
        )
    t.note(
        "Generalised estimating equations on individual interviews, exchangeable correlation "
        "within facilities; an odds ratio above 1 means more clients with the outcome under CLM."
    )
    return t
