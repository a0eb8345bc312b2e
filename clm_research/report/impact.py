"""Report chapter "Impact": routine programme outcomes in CLM and comparison facilities, the
CLM effects on them, the difference-in-differences estimators side by side, and the
interrupted time series of treatment interruptions (controlled by the never-monitored
facilities, as a table of rate ratios and a figure, with the single-series check).
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import TYPE_CHECKING

from clm_research.report.context import country_tables, effect_panel, framework_of
from clm_research.report.figures import ARM_STYLE, OKABE_ITO, ReportFigure, new_figure, wrap
from clm_research.report.format import (
    Column,
    IndicatorFormat,
    PresentationTable,
    format_count,
    format_p,
    ratio_text,
)
from clm_research.report.services import district_map, trend_figure

if TYPE_CHECKING:
    import pandas as pd

    from clm_research.evaluation import EvaluationResult
    from clm_research.evaluation.its import ITSResult

__all__ = [
    "impact_effects",
    "impact_effects_table",
    "impact_trends",
    "impact_map",
    "routine_did",
    "routine_did_display",
    "interrupted_time_series",
    "its_table",
    "its_caption",
    "its_figure",
    "its_result_caption",
    "its_result_figure",
]


def impact_effects(country: str) -> pd.DataFrame:
    """The CLM effects on the impact indicators (rows of the effects table at that level)."""
    from clm_research.report.context import clm_effects

    effects = clm_effects(country)
    return effects[effects["level"] == "impact"]


def impact_effects_table(country: str) -> PresentationTable:
    """The CLM effects on the impact indicators as a table (the outcomes' format)."""
    from clm_research.report.outcomes import effects_table

    return effects_table(country, "impact")


def impact_trends(country: str) -> ReportFigure | str:
    """Routine impact indicators by quarter, CLM vs comparison facilities."""
    ids = [i.id for i in framework_of(country).by_level("impact")]
    return trend_figure(country, ids[:4], by_arm=True)


def impact_map(
    country: str, period: str, indicator_id: str = "viral_suppression"
) -> ReportFigure | str:
    """A routine impact indicator by district at ``period`` (the services chapter's map rules:
    district boundaries only, suppressed districts hatched), or the note saying why not."""
    return district_map(country, indicator_id, period)


def routine_did(country: str, indicator_id: str = "viral_suppression") -> pd.DataFrame:
    """TWFE, event-study and Callaway–Sant'Anna side by side for one routine indicator."""
    from clm_research.evaluation.did import compare_did

    panel = effect_panel(country, indicator_id)
    if panel is None:
        from clm_research.evaluation import EvaluationError

        raise EvaluationError(f"{indicator_id}: no facility panel with a comparison design")
    return compare_did(panel)


_ESTIMATORS = {
    "att_twfe": (
        "Two-way fixed effects",
        "biased when effects grow over time and roll-out is staggered",
    ),
    "mean_post": (
        "Event study (two-way fixed effects)",
        "average over the months since CLM started",
    ),
    "att_simple": ("Callaway & Sant'Anna: average effect", "the estimate to read"),
    "att_dynamic": (
        "Callaway & Sant'Anna: averaged over time since start",
        "weights every exposure length equally",
    ),
}


def routine_did_display(did: pd.DataFrame, country: str, indicator_id: str) -> PresentationTable:
    """The estimators side by side in the indicator's unit, with what each one is."""
    ind = framework_of(country).indicator(indicator_id)
    fmt = IndicatorFormat(ind.type, ind.unit, 0.5)
    t = PresentationTable(
        [
            Column("Estimator", align="left", wrap=True, width="30%"),
            Column(f"Effect on {ind.short_label or ind.label} (95% CI)", wrap=True),
            Column("p"),
            Column("Note", align="left", wrap=True),
        ]
    )
    for _, r in did.iterrows():
        name, note = _ESTIMATORS.get(str(r["effect"]), (str(r["label"]), ""))
        f = fmt.for_effect(r["estimate"], r["ci_low"], r["ci_high"])
        unit = " pp" if fmt.kind == "proportion" else ""
        t.add_row(
            [
                name,
                f"{f.difference(r['estimate'], with_unit=False)}{unit} "
                f"({f.interval(r['ci_low'], r['ci_high'], sign=True)})",
                format_p(r["p_value"]),
                note or t.missing("No note."),
            ]
        )
    t.note(
        f"Facility × month panel of {format_count(did['n_obs'].iloc[0])} facility-months. "
        "Unadjusted 95% intervals: this is a comparison of methods, not a verdict."
    )
    return t


@cache
def interrupted_time_series(
    country: str, indicator_id: str = "treatment_interruption", controlled: bool = False
) -> ITSResult:
    """Interrupted time series of a routine indicator at the first CLM wave's facilities.

    Monthly counts summed over the facilities that started CLM first; level and slope change
    at their start; quasi-Poisson with the denominator (e.g. ``tx_curr``) as offset and two
    harmonic pairs for seasonality (see :func:`clm_research.evaluation.its.indicator_its`). With
    ``controlled=True`` the never-monitored facilities are the comparison series.
    Returns an :class:`~clm_research.evaluation.ITSResult` (``.summary()``, ``.plot()``).
    """
    from clm_research.evaluation.its import indicator_its

    return indicator_its(
        framework_of(country), country_tables(country), indicator_id, controlled=controlled
    )


#: The ITS effects a report shows, in order, with their plain names.
_ITS_EFFECTS: dict[str, str] = {
    "differential_level_change": "Level change when CLM started (CLM vs comparison)",
    "differential_slope_change": "Change in the monthly trend after CLM started (CLM vs comparison)",
    "differential_time": "Difference in trend before CLM (a check: 1 = parallel)",
    "level_change": "Level change when CLM started",
    "slope_change": "Change in the monthly trend after CLM started",
    "effect_at_end": "Effect at the end of the series (against the counterfactual)",
}


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.0f}%"


def its_table(result: EvaluationResult) -> PresentationTable:
    """Level and slope change as rate ratios with 95% CIs, the change in percent, p."""
    ratio = result.primary.scale in ("rate_ratio", "odds_ratio", "ratio")
    t = PresentationTable(
        [
            Column("Effect", align="left", wrap=True, width="42%"),
            Column("Rate ratio (95% CI)" if ratio else "Estimate (95% CI)", wrap=True),
            Column("Change (%)" if ratio else "Scale", wrap=True),
            Column("p"),
        ]
    )
    by_name = {e.name: e for e in result.effects}
    for name, label in _ITS_EFFECTS.items():
        e = by_name.get(name)
        if e is None:
            continue
        if ratio:
            est = ratio_text(e.estimate, e.ci_low, e.ci_high)
            change = f"{_pct(e.estimate)} ({_pct(e.ci_low)} to {_pct(e.ci_high)})"
        else:
            est = f"{e.estimate:+.3g} ({e.ci_low:+.3g} to {e.ci_high:+.3g})"
            change = e.scale.replace("_", " ")
        t.add_row([label, est, change, format_p(e.p_value)])
    first = next((by_name[n] for n in _ITS_EFFECTS if n in by_name), None)
    if ratio and first is not None:
        t.note(
            "A rate ratio below 1 means fewer events than expected had the trend before CLM "
            f"continued (e.g. {first.estimate:.2f} = {abs(first.estimate - 1):.0%} "
            f"{'fewer' if first.estimate < 1 else 'more'})."
        )
    d = result.diagnostics
    if d.get("autocorrelation_flag"):
        t.note(
            "The residuals are autocorrelated (Ljung–Box p < 0.05): intervals may be too narrow."
        )
    return t


def its_caption(country: str, result: EvaluationResult, indicator_id: str) -> str:
    """Plain-language caption of an interrupted-time-series figure."""
    ind = framework_of(country).indicator(indicator_id)
    return its_result_caption(result, ind.label, ind.unit)


def its_figure(country: str, result: ITSResult, indicator_id: str) -> ReportFigure:
    """The interrupted-time-series figure: observed, fitted and counterfactual, calendar axis."""
    ind = framework_of(country).indicator(indicator_id)
    return its_result_figure(result, ind.label, ind.unit)


def _time_label(index: float, unit: str) -> str:
    i = int(round(index))
    if unit == "quarter":
        return f"{i // 4}Q{i % 4 + 1}"
    return f"{i // 12}-{i % 12 + 1:02d}"


def _rate_label(label: str, unit: str, mult: float) -> str:
    if mult == 100:
        return f"{label} (%)"
    if mult != 1:
        fmt = IndicatorFormat("rate", unit, 0.01)
        scaled = fmt.unit_text if unit.startswith("per ") else f"per {mult:,.0f}"
        return label.replace(unit, scaled) if unit and unit in label else f"{label} ({scaled})"
    return f"{label} ({unit})" if unit and unit not in label else label


def its_result_figure(result: ITSResult, label: str, unit: str = "") -> ReportFigure:
    """The ITS figure with calendar labels, the rate's unit on the y axis and alt text."""
    import numpy as np

    f = result.fitted
    tu = getattr(result, "time_unit", "month")
    mult = float(result.diagnostics.get("rate_multiplier", 1.0) or 1.0)
    ylab = _rate_label(label, unit, mult)
    fig, ax = new_figure(height=4.4)
    series = list(f["series"].unique()) if "series" in f else ["clm"]
    for s in series:
        part = f if "series" not in f else f[f["series"] == s]
        style = ARM_STYLE.get(str(s), ARM_STYLE["clm"])
        name = "CLM (first wave)" if s == "clm" else "Comparison"
        ax.scatter(
            part["time"],
            part["observed"],
            s=14,
            color=style["color"],
            alpha=0.55,
            marker=style["marker"],
            label=f"{name}: observed",
        )
        ax.plot(
            part["time"],
            part["fitted"],
            color=style["color"],
            linewidth=1.8,
            label=f"{name}: fitted",
        )
        post = part[part["post"] == 1]
        if s == "clm" and post["counterfactual"].notna().any():
            ax.plot(
                post["time"],
                post["counterfactual"],
                color=style["color"],
                linestyle="--",
                linewidth=1.6,
                label=f"{name}: expected without CLM",
            )
    start_idx = getattr(result, "intervention_index", math.nan)
    if start_idx == start_idx:
        ax.axvline(start_idx - 0.5, color=OKABE_ITO["black"], linewidth=0.9, linestyle=":")
    t = f["time"].to_numpy(dtype=float)
    step = 6 if tu == "month" else 1
    ticks = np.arange(t.min(), t.max() + 1, step)
    ax.set_xticks(ticks, [_time_label(x, tu) for x in ticks], rotation=45, ha="right")
    ax.set_xlabel("Month" if tu == "month" else tu.capitalize())
    ax.set_ylabel(wrap(ylab, 38))
    ax.set_ylim(bottom=0)
    fig.legend(
        title="Dotted line: CLM starts",
        ncols=2,
        frameon=False,
        loc="outside lower center",
    )
    start = result.diagnostics.get("intervention_start", "")
    method = result.method.replace("quasipoisson", "quasi-Poisson regression")
    ax.set_title(wrap(f"{ylab}: {method}, CLM from {start}", 70), loc="left")
    alt = (
        f"Time series chart of {ylab} by {tu}, {_time_label(t.min(), tu)} to "
        f"{_time_label(t.max(), tu)}, with CLM starting {start}: observed values, the fitted "
        "model and the counterfactual expected without CLM"
        + (" for CLM and comparison facilities" if len(series) > 1 else "")
        + ". "
        + "; ".join(
            f"{_ITS_EFFECTS.get(e.name, e.label)}: {ratio_text(e.estimate, e.ci_low, e.ci_high)}"
            for e in result.effects
            if e.name in _ITS_EFFECTS
        )
        + "."
    )
    return ReportFigure(fig, alt)


def its_result_caption(result: EvaluationResult, label: str, unit: str = "") -> str:
    """One plain-language paragraph under an ITS figure: what changed, how sure, the caveat."""
    d = result.diagnostics
    n = d.get("clm_facilities (first wave)", "the")
    start = d.get("intervention_start", "the start of CLM")
    ratio = result.primary.scale in ("rate_ratio", "odds_ratio", "ratio")
    by_name = {e.name: e for e in result.effects}
    lvl = by_name.get("differential_level_change") or by_name.get("level_change")
    slope = by_name.get("differential_slope_change") or by_name.get("slope_change")
    end = by_name.get("effect_at_end")
    per = "month" if re.match(r"^\d{4}-\d{2}$", str(start)) else "quarter"
    lines = [
        f"**{label}** at the {n} facilities that started CLM in {start}: dots are observed "
        f"values, solid lines the fitted model and the dashed line what the trend before CLM "
        f"predicts had nothing changed."
    ]
    if lvl is not None and slope is not None:
        if ratio:
            lines.append(
                f"When CLM started the level changed by {_pct(lvl.estimate)} (rate ratio "
                f"{ratio_text(lvl.estimate, lvl.ci_low, lvl.ci_high)}) and the trend by "
                f"{_pct(slope.estimate)} per {per} (95% CI {_pct(slope.ci_low)} to "
                f"{_pct(slope.ci_high)})."
            )
        else:
            u = f" {unit}" if unit else ""
            lines.append(
                f"When CLM started the level changed by {lvl.estimate:+.3g}{u} (95% CI "
                f"{lvl.ci_low:+.3g} to {lvl.ci_high:+.3g}) and the trend by {slope.estimate:+.3g}"
                f"{u} per {per} (95% CI {slope.ci_low:+.3g} to {slope.ci_high:+.3g})."
            )
        if end is not None and ratio:
            lines.append(
                f"By the end of the series it was {_pct(end.estimate)} against the "
                f"counterfactual (95% CI {_pct(end.ci_low)} to {_pct(end.ci_high)})."
            )
        main = end or lvl
        lines.append(
            "The interval includes no change: the data cannot tell this effect from chance."
            if main.is_null
            else "The interval excludes no change."
        )
    if d.get("autocorrelation_flag"):
        lines.append(
            "The residuals are autocorrelated (Ljung–Box p < 0.05), so the intervals may be "
            "too narrow."
        )
    if d.get("comparison_facilities"):
        lines.append(
            f"Changes are relative to the {d['comparison_facilities']} facilities never under "
            "CLM, which removes shocks common to both (controlled ITS)."
        )
    else:
        lines.append(
            "Caveat: an interrupted time series has no comparison group, so anything else that "
            "changed at the same time would look the same; the difference-in-differences above "
            "compares with facilities not yet under CLM."
        )
    return " ".join(lines)
