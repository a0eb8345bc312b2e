"""Report chapter "The pre-registered analysis plan": the plan in force, a box listing every
deviation (green when there is none), the plan next to what this run used, the primary result
in a plain sentence, the results table and the primary result's figure.

The analysis itself is :func:`~clm_research.evaluation.planned.run_plan`.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from clm_research.evaluation.planned import PlannedAnalysis, country_plan, run_plan
from clm_research.report.context import country_tables, framework_of
from clm_research.report.figures import pyplot_axes
from clm_research.report.impact import its_result_figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "planned_analysis",
    "plan_status",
    "plan_table",
    "statement",
    "deviations_html",
    "deviations_markdown",
    "plan_figure",
]


def planned_analysis(country: str) -> PlannedAnalysis | None:
    """The country's planned analysis, run on its processed tables (``None`` without a plan)."""
    plan = country_plan(country)
    if plan is None:
        return None
    return run_plan(plan, country, country_tables(country), framework_of(country))


def plan_status(analysis: PlannedAnalysis | None, country: str) -> str:
    """One Markdown line: the plan in force, or that none is configured."""
    if analysis is None:
        return (
            f"No analysis plan is configured for {country} (add "
            f"`plan: params/plans/<study>.yaml` to `params/countries/{country}.yaml`)."
        )
    p = analysis.plan
    when = f", registered {p.registered_on}" if p.registered_on else ""
    title = f" — {p.title}" if p.title else ""
    return f"**Pre-registered plan `{p.study_id}`{title}**{when}. *Question:* {p.question}"


def plan_table(analysis: PlannedAnalysis) -> pd.DataFrame:
    """The pre-registered plan, one row per field, next to what the run used."""
    import pandas as pd

    shown = (
        "study_id",
        "question",
        "design",
        "primary_indicator",
        "secondary_indicators",
        "chain_links",
        "comparison_group",
        "first_round",
        "last_round",
        "model",
        "alpha",
        "minimum_detectable_effect",
        "power",
        "countries",
        "registered_on",
    )
    planned = analysis.plan.model_dump(mode="json")
    rows = []
    for k in shown:
        used = analysis.run_config.get(k, "")
        rows.append(
            {
                "field": k.replace("_", " "),
                "planned": _text(planned.get(k)),
                "this run": _text(used) if k in analysis.run_config else "as planned",
            }
        )
    rows.append(
        {"field": "estimator run", "planned": "", "this run": analysis.estimator_description}
    )
    return pd.DataFrame(rows)


def statement(analysis: PlannedAnalysis) -> str:
    """The primary result in one plain sentence, with the planned minimum effect."""
    p = analysis.primary
    if p.result is None:
        return f"The primary analysis ({p.label}) could not be run as planned: {p.message}"
    e = p.result.primary
    level = f"{1 - analysis.alpha:.0%}"
    verdict = (
        "a change unlikely under no effect"
        if math.isfinite(e.p_value) and e.p_value < analysis.alpha
        else "compatible with no change"
    )
    return (
        f"Primary analysis ({p.label}, {analysis.run_config.get('design')}): CLM changed it by "
        f"{e.estimate:+.3g} ({level} CI {e.ci_low:+.3g} to {e.ci_high:+.3g}, p = "
        f"{e.p_value:.2g}) — {verdict} at the pre-registered alpha {analysis.alpha:g}. The plan "
        f"was powered for a minimum detectable effect of {analysis.plan.minimum_detectable_effect:+g}."
    )


def deviations_html(analysis: PlannedAnalysis) -> str:
    """A prominent box listing the deviations (green when there are none)."""
    if not analysis.deviations:
        return (
            '<div style="border:2px solid #2e7d32;background:#e8f5e9;padding:0.8em 1em;'
            'margin:0.5em 0;font-size:1.05em"><strong>No deviations from the '
            "pre-registered plan.</strong> The analysis below is exactly the one "
            f"registered as <code>{html.escape(analysis.plan.study_id)}</code>.</div>"
        )
    items = "".join(f"<li>{html.escape(d)}</li>" for d in analysis.deviations)
    return (
        '<div style="border:3px solid #c62828;background:#fdecea;padding:0.8em 1em;'
        'margin:0.5em 0;font-size:1.05em"><strong>&#9888; '
        f"{len(analysis.deviations)} deviation(s) from the pre-registered plan "
        f"<code>{html.escape(analysis.plan.study_id)}</code></strong> — read the results below "
        f"with these in mind:<ul>{items}</ul></div>"
    )


def deviations_markdown(analysis: PlannedAnalysis) -> str:
    """The deviations as Markdown (for text reports)."""
    if not analysis.deviations:
        return "**No deviations from the pre-registered plan.**"
    return (
        f"**{len(analysis.deviations)} deviation(s) from the pre-registered plan:**\n"
        + "\n".join(f"- {d}" for d in analysis.deviations)
    )


def plan_figure(analysis: PlannedAnalysis) -> Figure | None:
    """The primary result's figure (event-time profile, ITS, …); ``None`` if not run."""
    if analysis.primary.result is None:
        return None
    from clm_research.evaluation.its import ITSResult

    res = analysis.primary.result
    if "intervention_start" in res.diagnostics and isinstance(res, ITSResult):
        return its_result_figure(res, analysis.primary.label)
    fig, ax = pyplot_axes()
    res.plot(ax=ax)
    ax.set_title(f"{analysis.primary.label}: {res.method}", fontsize=10)
    return fig


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return ", ".join(_text(x) for x in v) or "(none)"
    if isinstance(v, dict) and {"upstream", "downstream"} <= set(v):  # a results-chain link
        lag = f" (lag {v['lag']})" if v.get("lag") is not None else ""
        return f"{v['upstream']} → {v['downstream']}{lag}"
    return str(v)
