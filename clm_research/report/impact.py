"""Report chapter "Impact": routine programme outcomes in CLM and comparison facilities, the
difference-in-differences estimators side by side, and the interrupted time series of treatment
interruptions (controlled by the never-monitored facilities, with the single-series check).
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from clm_research.report.context import country_tables, effect_panel, framework_of
from clm_research.report.figures import pyplot_axes
from clm_research.report.services import trend_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from clm_research.evaluation import Effect, EvaluationResult
    from clm_research.evaluation.its import ITSResult

__all__ = [
    "impact_effects",
    "impact_trends",
    "routine_did",
    "interrupted_time_series",
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


def impact_trends(country: str) -> Figure:
    """Routine impact indicators by quarter, CLM vs comparison facilities."""
    ids = [i.id for i in framework_of(country).by_level("impact")]
    return trend_figure(country, ids[:4], by_arm=True)


def routine_did(country: str, indicator_id: str = "viral_suppression") -> pd.DataFrame:
    """TWFE, event-study and Callaway–Sant'Anna side by side for one routine indicator."""
    from clm_research.evaluation.did import compare_did

    panel = effect_panel(country, indicator_id)
    if panel is None:
        from clm_research.evaluation import EvaluationError

        raise EvaluationError(f"{indicator_id}: no facility panel with a comparison design")
    return compare_did(panel)


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


def its_caption(country: str, result: EvaluationResult, indicator_id: str) -> str:
    """Plain-language caption of an interrupted-time-series figure."""
    ind = framework_of(country).indicator(indicator_id)
    return its_result_caption(result, ind.label, ind.unit)


def its_figure(country: str, result: ITSResult, indicator_id: str) -> Figure:
    """The interrupted-time-series figure: observed, fitted and counterfactual, calendar axis."""
    ind = framework_of(country).indicator(indicator_id)
    return its_result_figure(result, ind.label, ind.unit)


def _time_label(index: float, unit: str) -> str:
    i = int(round(index))
    if unit == "quarter":
        return f"{i // 4}Q{i % 4 + 1}"
    return f"{i // 12}-{i % 12 + 1:02d}"


def its_result_figure(result: ITSResult, label: str, unit: str = "") -> Figure:
    """The ITS figure with calendar labels on the time axis and the rate's unit on the y axis."""
    import numpy as np

    fig, ax = pyplot_axes()
    result.plot(ax=ax)
    t = result.fitted["time"].to_numpy(dtype=float)
    tu = getattr(result, "time_unit", "month")
    step = 6 if tu == "month" else 1
    ticks = np.arange(t.min(), t.max() + 1, step)
    ax.set_xticks(ticks)
    ax.set_xticklabels([_time_label(x, tu) for x in ticks], rotation=45, fontsize=8)
    ax.set_xlabel(tu)
    mult = float(result.diagnostics.get("rate_multiplier", 1.0) or 1.0)
    if mult == 100:
        ax.set_ylabel(f"{label} (%)")
    elif mult != 1:
        ax.set_ylabel(f"per {mult:,.0f} {unit.removeprefix('per ')}".strip())
    else:
        ax.set_ylabel(f"{label}{f' ({unit})' if unit else ''}")
    start = result.diagnostics.get("intervention_start", "")
    ax.set_title(f"{label}\n{result.method}, CLM from {start}", fontsize=9)
    return fig


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.0f}%"


def its_result_caption(result: EvaluationResult, label: str, unit: str = "") -> str:
    """One plain-language paragraph under an ITS figure: what changed, how sure, the caveat."""
    d = result.diagnostics
    n = d.get("clm_facilities (first wave)", "the")
    start = d.get("intervention_start", "the start of CLM")
    ratio = result.primary.scale in ("rate_ratio", "odds_ratio", "ratio")
    lvl: Effect | None
    slope: Effect | None
    end: Effect | None
    try:
        lvl, slope = result.effect("level_change"), result.effect("slope_change")
        end = result.effect("effect_at_end")
    except KeyError:
        lvl = slope = end = None
    per = "month" if re.match(r"^\d{4}-\d{2}$", str(start)) else "quarter"
    lines = [
        f"**{label}** at the {n} facilities that started CLM in {start}: dots are observed "
        f"values, the solid line the fitted model and the dashed line the counterfactual — "
        f"what the trend before CLM predicts had nothing changed."
    ]
    if lvl is not None and end is not None and slope is not None:
        if ratio:
            lines.append(
                f"At the start the level changed by {_pct(lvl.estimate)} (95% CI "
                f"{_pct(lvl.ci_low)} to {_pct(lvl.ci_high)}) and the trend by "
                f"{_pct(slope.estimate)} per {per}; by the end of the series it was "
                f"{_pct(end.estimate)} against the counterfactual (95% CI {_pct(end.ci_low)} "
                f"to {_pct(end.ci_high)})."
            )
        else:
            u = f" {unit}" if unit else ""
            lines.append(
                f"At the start the level changed by {lvl.estimate:+.3g}{u} (95% CI "
                f"{lvl.ci_low:+.3g} to {lvl.ci_high:+.3g}) and the trend by {slope.estimate:+.3g}"
                f"{u} per {per}; by the end of the series the difference from the counterfactual "
                f"was {end.estimate:+.3g}{u} (95% CI {end.ci_low:+.3g} to {end.ci_high:+.3g})."
            )
        lines.append(
            "The interval includes no change: the data cannot tell this effect from chance."
            if end.is_null
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
