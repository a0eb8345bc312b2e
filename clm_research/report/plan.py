"""Report chapter "The pre-registered analysis plan": the plan in force, a box listing every
deviation (green when there is none), the plan next to what this run used, the primary result
in a plain sentence, the results table and the primary result's figure.

The analysis itself is :func:`~clm_research.evaluation.planned.run_plan`.
"""

from __future__ import annotations

import html
import math
import re
from typing import TYPE_CHECKING, Any

from clm_research.evaluation.planned import PlannedAnalysis, country_plan, run_plan
from clm_research.report.context import country_tables, framework_of
from clm_research.report.figures import ReportFigure, new_figure
from clm_research.report.format import (
    Cell,
    Column,
    IndicatorFormat,
    PresentationTable,
    format_p,
)
from clm_research.report.impact import its_result_figure

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "planned_analysis",
    "plan_status",
    "plan_table",
    "plan_table_display",
    "results_display",
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


#: How the plan's coded values read in a report.
_WORDS: dict[str, str] = {
    "did": "difference-in-differences",
    "its": "interrupted time series",
    "pre_post": "before and after",
    "stepped_wedge": "stepped wedge",
    "cluster_rct": "cluster randomised trial",
    "none": "none (each facility is its own control)",
    "never_monitored": "facilities never under CLM",
    "not_yet_monitored": "facilities not yet under CLM (later waves)",
    "randomised_control": "randomised control arm",
}


def _words(analysis: PlannedAnalysis, field: str, text: str) -> str:
    """A plan value in words: codes spelled out, indicator ids as their labels."""
    if not text or text == "as planned":
        return text
    if field in ("primary indicator", "secondary indicators"):
        fw = framework_of(analysis.country)
        parts = [p.strip() for p in text.split(",")]
        return "; ".join(fw.indicator(p).label if p in fw.ids else p for p in parts)
    return _WORDS.get(text, text)


def plan_table_display(analysis: PlannedAnalysis) -> PresentationTable:
    """The plan next to this run, as a table in words (a changed field is marked)."""
    t = PresentationTable(
        [
            Column("Field", align="left", width="22%"),
            Column("Pre-registered plan", align="left", wrap=True),
            Column("This run", align="left", wrap=True),
        ]
    )
    for rec in plan_table(analysis).to_dict("records"):
        planned = _words(analysis, str(rec["field"]), str(rec["planned"] or ""))
        used = _words(analysis, str(rec["field"]), str(rec["this run"] or ""))
        row: list[str | Cell] = [
            str(rec["field"]).capitalize(),
            planned if planned else t.missing("Not part of the plan."),
        ]
        if used == "as planned" or not used:
            row.append(Cell("as planned"))
        else:
            row.append(Cell(used, css="verdict-worse" if planned and used != planned else ""))
        t.add_row(row)
    return t


_PRETREND = re.compile(r"joint p = ([0-9.eE-]+)")


def results_display(analysis: PlannedAnalysis) -> PresentationTable:
    """The planned analysis' results: primary and secondary indicators, in their units, with
    the parallel-trends check of each as a column (its explanation once, under the table)."""
    s = analysis.summary()
    fw = framework_of(analysis.country)
    sig = next((c for c in s.columns if str(c).startswith("p <")), None)
    t = PresentationTable(
        [
            Column("Role", align="left"),
            Column("Indicator (unit)", align="left", wrap=True, width="30%"),
            Column("Effect (CI)", wrap=True),
            Column("p"),
            Column(f"p < {analysis.alpha:g}", align="left"),
            Column("Parallel-trends check (joint p)", wrap=True),
        ]
    )
    generic: list[str] = []
    for _, r in s.iterrows():
        iid = str(r["indicator_id"])
        ind = fw.indicator(iid) if iid in fw.ids else None
        est = r["estimate"]
        fmt = (
            IndicatorFormat(ind.type, ind.unit, abs(float(est)))
            if ind is not None and est == est
            else IndicatorFormat("value")
        )
        label = fmt.label(ind.label) if ind is not None else str(r["indicator"])
        if est == est:
            f = fmt.for_effect(est, r["ci_low"], r["ci_high"])
            unit = " pp" if fmt.kind == "proportion" else ""
            effect: str | Cell = (
                f"{f.difference(est, with_unit=False)}{unit} "
                f"({r['ci_level']} CI {f.interval(r['ci_low'], r['ci_high'], sign=True)})"
            )
        else:
            effect = t.missing(str(r.get("note") or "Not estimated."))
        note = str(r.get("note") or "")
        m = _PRETREND.search(note)
        pre: str | Cell = format_p(float(m.group(1))) if m else t.missing("No pre-period check.")
        if m:
            rest = _PRETREND.sub("joint p shown in the table", note)
            generic.append(rest)
        elif note and est == est:
            pre = t.missing(note)
        t.add_row(
            [
                str(r["role"]).capitalize(),
                label,
                effect,
                format_p(r["p_value"]),
                str(r[sig]) if sig is not None and r[sig] else t.missing("No p-value."),
                pre,
            ]
        )
    t.note(f"Method: {s['method'].iloc[0]}." if len(s) and s["method"].nunique() == 1 else "")
    for n in dict.fromkeys(generic):
        t.note(n)
    t.notes = [n for n in t.notes if n]
    return t


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
    ind = framework_of(analysis.country).indicator(analysis.plan.primary_indicator)
    fmt = IndicatorFormat(ind.type, ind.unit, abs(e.estimate)).for_effect(
        e.estimate, e.ci_low, e.ci_high
    )
    ptext = format_p(e.p_value)
    ptext = f"p {ptext[0]} {ptext[1:]}" if ptext[0] in "<>" else f"p = {ptext}"
    return (
        f"Primary analysis ({p.label}, "
        f"{_WORDS.get(str(analysis.run_config.get('design')), analysis.run_config.get('design'))}): "
        "CLM changed it by "
        f"{fmt.difference(e.estimate)} ({level} CI {fmt.interval(e.ci_low, e.ci_high, sign=True)}, "
        f"{ptext}) — {verdict} at the pre-registered alpha {analysis.alpha:g}. The plan "
        f"was powered for a minimum detectable effect of "
        f"{fmt.difference(analysis.plan.minimum_detectable_effect)}."
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


def plan_figure(analysis: PlannedAnalysis) -> ReportFigure | None:
    """The primary result's figure (event-time profile, ITS, …); ``None`` if not run."""
    if analysis.primary.result is None:
        return None
    from clm_research.evaluation.its import ITSResult

    res = analysis.primary.result
    if "intervention_start" in res.diagnostics and isinstance(res, ITSResult):
        return its_result_figure(res, analysis.primary.label)
    ind = framework_of(analysis.country).indicator(analysis.plan.primary_indicator)
    fmt = IndicatorFormat(ind.type, ind.unit, abs(res.primary.estimate))
    fig, ax = new_figure(height=3.8)
    res.plot(ax=ax)
    ax.set_title("")  # the method's own (centred) title: replaced by the one below
    unit = "percentage points" if fmt.kind == "proportion" else fmt.unit_text
    ax.set_ylabel(f"Effect on {ind.short_label or ind.label}" + (f" ({unit})" if unit else ""))
    ax.set_title(f"{analysis.primary.label}: {res.method}", loc="left")
    profile = getattr(res, "profile", None)
    if profile is not None and len(profile):
        ax.set_xlabel("Rounds since CLM started (negative: before, a check of parallel trends)")
        leg = ax.get_legend()
        if leg is not None:
            leg.set_title("Event time")
        pre = profile[profile["pre"].astype(bool)]
        post = profile[~profile["pre"].astype(bool)]
        alt = (
            f"Event-study chart of the effect of CLM on {ind.label} by rounds since CLM "
            f"started, with 95% intervals: {len(pre)} estimates before the start (between "
            f"{fmt.difference(pre['estimate'].min())} and {fmt.difference(pre['estimate'].max())}, "
            f"a check of parallel trends) and {len(post)} after (between "
            f"{fmt.difference(post['estimate'].min())} and {fmt.difference(post['estimate'].max())})."
            if len(pre) and len(post)
            else f"Chart of the effect of CLM on {ind.label} by rounds since CLM started."
        )
    else:
        alt = "Chart of the planned analysis' effects: " + "; ".join(res.statements())
    return ReportFigure(fig, alt)


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list | tuple):
        return ", ".join(_text(x) for x in v) or "(none)"
    if isinstance(v, dict) and {"upstream", "downstream"} <= set(v):  # a results-chain link
        lag = f" (lag {v['lag']})" if v.get("lag") is not None else ""
        return f"{v['upstream']} → {v['downstream']}{lag}"
    return str(v)
