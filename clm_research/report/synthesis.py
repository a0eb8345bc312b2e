"""Report "Multi-country synthesis": the countries' CLM effects pooled per indicator
(random-effects meta-analysis, :func:`~clm_research.evaluation.meta.pool_effects`), a table
with I², τ² and the number of countries, and a forest plot per pooled indicator. Each
country's effects are read from its published report tables (the unadjusted 95% intervals:
pooling adjusted intervals would double-count the adjustment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clm_research.paths import country_report_dir
from clm_research.report.figures import OKABE_ITO, ReportFigure, new_figure, wrap
from clm_research.report.format import (
    Column,
    IndicatorFormat,
    PresentationTable,
    format_p,
    format_percent,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "country_effects",
    "pooled_effects",
    "pooled_display",
    "headline_html",
    "forest_figure",
    "forest_figures",
]


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


def _format(effects: pd.DataFrame, indicator_id: str) -> IndicatorFormat:
    """The indicator's format from its type and the default framework's unit; the magnitude
    (and so a rate's per-1,000 scale) from the effects themselves."""
    from clm_research.framework import load_framework

    rows = effects[effects["indicator_id"] == indicator_id]
    kind = str(rows["type"].iloc[0]) if "type" in rows and len(rows) else "value"
    try:
        unit = load_framework().indicator(indicator_id).unit
    except KeyError:
        unit = ""
    raw = rows[["estimate", "ci_low", "ci_high"]].astype(float).abs().to_numpy().ravel()
    vals = [float(v) for v in raw if math.isfinite(v)]
    return IndicatorFormat(kind, unit, max(vals) if vals else math.nan)


def headline_html(
    pooled: pd.DataFrame, effects: pd.DataFrame, countries: Sequence[str], period: str
) -> str:
    """The synthesis' first screen: which pooled effects are clear, which are not.

    "Clear" means the pooled 95% interval excludes no change, in the better or the worse
    direction of the indicator (read from the countries' effects tables); there is no
    multiplicity adjustment across the pooled indicators, which the box says.
    """
    import html

    esc = html.escape
    direction = (
        effects.drop_duplicates("indicator_id").set_index("indicator_id")["direction"]
        if "direction" in effects
        else None
    )
    better: list[str] = []
    worse: list[str] = []
    unclear: list[str] = []
    for _, r in pooled.iterrows():
        fmt = _format(effects, str(r["indicator_id"]))
        f = fmt.for_effect(r["pooled"], r["ci_low"], r["ci_high"])
        text = f"{r['indicator']} ({f.difference(r['pooled'])})"
        if r["ci_low"] > 0 or r["ci_high"] < 0:
            up = r["pooled"] > 0
            hib = direction is None or direction.get(r["indicator_id"]) != "lower_is_better"
            (better if up == hib else worse).append(text)
        else:
            unclear.append(str(r["indicator"]))
    items = [
        f"<li class='verdict-improved'><b>▲ Better with CLM in the pooled estimate:</b> "
        f"{esc('; '.join(better)) if better else 'none'}.</li>",
        f"<li class='verdict-worse'><b>▼ Worse with CLM:</b> "
        f"{esc('; '.join(worse)) if worse else 'none'}.</li>",
        f"<li class='verdict-null'><b>● No clear pooled change:</b> {esc('; '.join(unclear)) if unclear else 'none'}.</li>",
    ]
    return (
        f'<div class="clm-headline"><p class="clm-headline-q">CLM effects pooled over '
        f"{len(countries)} countries ({esc(', '.join(countries))}), {esc(period)}: "
        f"{len(pooled)} indicators estimated in at least two countries.</p>"
        f"<ul>{''.join(items)}</ul><p>Clear = the pooled 95% interval excludes no change "
        "(not adjusted for the number of indicators pooled).</p></div>"
    )


def pooled_display(pooled: pd.DataFrame, effects: pd.DataFrame) -> PresentationTable:
    """One row per pooled indicator: countries, pooled effect (95% CI), p, I², τ²."""
    t = PresentationTable(
        [
            Column("Indicator (unit)", align="left", wrap=True, width="34%"),
            Column("Countries"),
            Column("Pooled CLM effect (95% CI)", wrap=True),
            Column("p"),
            Column("I² (heterogeneity)", wrap=True),
            Column("τ² (between-country variance)", wrap=True),
        ]
    )
    for _, r in pooled.iterrows():
        fmt = _format(effects, str(r["indicator_id"]))
        f = fmt.for_effect(r["pooled"], r["ci_low"], r["ci_high"])
        unit = " pp" if fmt.kind == "proportion" else ""
        tau2 = float(r["tau2"]) * fmt.multiplier**2
        t.add_row(
            [
                fmt.label(str(r["indicator"])),
                str(int(r["countries"])),
                f"{f.difference(r['pooled'], with_unit=False)}{unit} "
                f"({f.interval(r['ci_low'], r['ci_high'], sign=True)})",
                format_p(r["p_value"]),
                format_percent(r["i2"], 0),
                "0" if tau2 == 0 else f"{tau2:.2g}",
            ]
        )
    t.note(
        "Random-effects meta-analysis (REML) of each country's difference-in-differences "
        "effect and its unadjusted 95% interval. I² is the share of the spread between "
        "countries beyond chance; τ² is in the squared unit of the effect (percentage points "
        "squared for proportions)."
    )
    k = int(pooled["countries"].max()) if len(pooled) else 0
    if 0 < k < 5:
        t.note(
            f"With {k} countries, I² and τ² are estimated very imprecisely: read them as "
            "descriptions, not as evidence of (no) heterogeneity."
        )
    return t


def forest_figure(
    countries: Sequence[str], period: str, indicator_id: str, effects: Any = None
) -> ReportFigure:
    """Forest plot of one indicator's CLM effect across countries with the pooled diamond."""
    from clm_research.evaluation.meta import meta_analysis

    effects = country_effects(countries, period) if effects is None else effects
    g = effects[effects["indicator_id"] == indicator_id].dropna(subset=["estimate"])
    res = meta_analysis(g, label="country")
    fmt = _format(effects, indicator_id)
    m = fmt.multiplier
    s = res.studies
    e = res.primary
    n = len(s)
    fig, ax = new_figure(height=1.3 + 0.42 * (n + 2))
    y = list(range(n + 1, 1, -1))
    sizes = 30 + 170 * s["weight"].to_numpy(float) / max(float(s["weight"].max()), 1e-12)
    ax.hlines(y, s["ci_low"] * m, s["ci_high"] * m, color="#333333", linewidth=1.4)
    ax.scatter(s["estimate"] * m, y, s=sizes, marker="s", color=OKABE_ITO["blue"], zorder=3)
    ax.fill(
        [e.ci_low * m, e.estimate * m, e.ci_high * m, e.estimate * m],
        [0.8, 1.1, 0.8, 0.5],
        color=OKABE_ITO["orange"],
        zorder=3,
    )
    ax.axvline(0, color="#8c959f", linestyle="--", linewidth=1)
    ax.set_yticks([*y, 0.8], [*s["label"].astype(str), "Pooled (random effects)"])
    ax.set_ylim(0.2, n + 1.8)
    unit = "percentage points" if fmt.kind == "proportion" else fmt.unit_text
    per = str(g["time_unit"].iloc[0]) if "time_unit" in g and len(g) else ""
    if fmt.kind == "count" and per:
        unit = f"{unit} per facility per {per}".strip()
    label = str(g["label"].iloc[0]) if "label" in g and len(g) else indicator_id
    ax.set_xlabel(f"CLM effect{f' ({unit})' if unit else ''}; 0 = no change")
    i2, tau2 = res.diagnostics["I2"], res.diagnostics["tau2"] * m**2
    fig.suptitle(
        f"{wrap(fmt.label(label), 80)}\nI² = {i2:.0%}, τ² = {tau2:.2g}, {n} countries",
        x=0.01,
        ha="left",
        fontsize=10.5,
    )
    ax.grid(axis="y", visible=False)
    f = fmt.for_effect(e.estimate, e.ci_low, e.ci_high)
    each = "; ".join(
        f"{r.label} {f.difference(r.estimate)} ({f.interval(r.ci_low, r.ci_high, sign=True)})"
        for r in s.itertuples(index=False)
    )
    alt = (
        f"Forest plot of the CLM effect on {label} in {n} countries: {each}; pooled "
        f"{f.difference(e.estimate)} ({f.interval(e.ci_low, e.ci_high, sign=True)}); "
        f"I² = {i2:.0%}."
    )
    return ReportFigure(fig, alt)


def forest_figures(
    countries: Sequence[str], period: str, pooled: pd.DataFrame
) -> list[ReportFigure]:
    """One forest plot per pooled indicator, in the pooled table's order."""
    effects = country_effects(countries, period)
    return [forest_figure(countries, period, str(i), effects) for i in pooled["indicator_id"]]
