"""Report chapter "Service quality": indicator estimates in the reporting round, the facility
scorecard (red / amber / green against the framework's thresholds, each with a symbol), trends
in CLM and comparison facilities, and district maps.

Privacy: cells below the minimum cell size read "suppressed"; maps are drawn at district level
from the district boundaries only (never facility or outreach-site coordinates).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from clm_research.report.boundaries import DistrictShapes, country_boundaries, estimates_by_feature
from clm_research.report.context import country_tables, framework_of, indicator_table, params_of
from clm_research.report.figures import (
    ARM_STYLE,
    ReportFigure,
    arm_label,
    new_figure,
    percent_axis,
    wrap,
)
from clm_research.report.format import (
    Cell,
    Column,
    IndicatorFormat,
    PresentationTable,
    Record,
    format_count,
    is_missing,
)
from clm_research.report.tables import SUPPRESSED

if TYPE_CHECKING:
    import pandas as pd

    from clm_research.framework import Indicator

__all__ = [
    "RAG_SYMBOLS",
    "LEVEL_NAMES",
    "indicator_display",
    "facility_scorecard",
    "facility_scorecard_display",
    "rag_legend",
    "trend_figure",
    "district_map",
    "choropleth",
    "MAP_LABEL_LIMIT",
]

#: Red / amber / green as a symbol and a word (colour is never the only cue).
RAG_SYMBOLS: dict[str, str] = {"green": "✔", "amber": "!", "red": "✖"}

#: Largest number of districts named on a map (more would overlap).
MAP_LABEL_LIMIT = 20

#: Results-chain levels as a report names them.
LEVEL_NAMES: dict[str, str] = {
    "inputs": "Inputs",
    "activities": "Activities",
    "outputs": "Outputs",
    "outcomes": "Outcomes",
    "impact": "Impact",
}


def _fmt(ind_type: str, unit: str, values: Iterable[Any]) -> IndicatorFormat:
    finite = [abs(float(v)) for v in values if not is_missing(v)]
    return IndicatorFormat(ind_type, unit or "", max(finite) if finite else math.nan)


def _rag_cell(text: str, rag: Any) -> Cell:
    r = str(rag) if isinstance(rag, str) else ""
    if r in RAG_SYMBOLS:
        return Cell(f"{RAG_SYMBOLS[r]} {text}", css=f"rag-{r}", title=r)
    return Cell(text)


def indicator_display(
    country: str,
    period: str,
    level: str | Sequence[str] | None = None,
    by: tuple[str, ...] = ("round",),
    *,
    ids: Sequence[str] | None = None,
) -> PresentationTable:
    """Indicators at ``period``: estimate with 95% CI, respondents, target and status.

    Grouped by results-chain level; suppressed cells say so with a footnote; the status is a
    symbol and a word (✔ green, ! amber, ✖ red against the framework's thresholds).
    """
    t = indicator_table(country, by)
    if "round" in t.columns:
        t = t[t["round"] == period]
    if level is not None:
        levels = [level] if isinstance(level, str) else list(level)
        t = t[t["level"].isin(levels)]
    if ids is not None:
        t = t[t["indicator_id"].isin(list(ids))]
    min_cell = params_of(country).min_cell_size
    extra = [b for b in by if b != "round"]
    table = PresentationTable(
        [
            Column("Indicator (unit)", align="left", wrap=True, width="38%"),
            *[Column(b.replace("_", " ").capitalize(), align="left") for b in extra],
            Column(f"Estimate {period}"),
            Column("95% CI", wrap=True),
            Column("n"),
            Column("Target"),
            Column("Status", align="left"),
        ]
    )
    current = None
    for rec in t.to_dict("records"):
        r = Record(rec)
        if r.level != current:
            current = r.level
            table.group(LEVEL_NAMES.get(str(r.level), str(r.level)))
        sup = bool(r.suppressed)
        fmt = _fmt(str(r.type), str(r.unit), [r.estimate, r.ci_low, r.ci_high])
        small_reason = (
            f"Suppressed: fewer than {min_cell} respondents or a cell that would reveal one "
            "(privacy)."
        )
        small = table.missing(small_reason, text=SUPPRESSED) if sup else Cell("")
        cells: list[str | Cell] = [fmt.label(str(r.label))]
        cells += [str(getattr(r, b)) for b in extra]
        if sup:
            cells += [small, small, small]
        else:
            cells.append(fmt.value(r.estimate))
            cells.append(
                fmt.interval(r.ci_low, r.ci_high)
                if not is_missing(r.ci_low)
                else table.missing("No interval for this indicator type (a complete count).")
            )
            cells.append(format_count(r.n))
        cells.append(
            fmt.value(r.target)
            if not is_missing(r.target)
            else table.missing("No target set in the framework.")
        )
        if sup:
            cells.append(small)
        elif isinstance(r.rag, str) and r.rag in RAG_SYMBOLS:
            cells.append(_rag_cell(str(r.rag), r.rag))
        else:
            cells.append(table.missing("No red/amber/green thresholds in the framework."))
        table.add_row(cells)
    table.note(
        "95% CIs allow for clients clustered within facilities. n: respondents, visits, "
        "issues or facility-months in the indicator's denominator."
    )
    return table


def facility_scorecard(
    country: str, period: str, indicators: Sequence[str] | None = None
) -> pd.DataFrame:
    """Facility × indicator estimates at ``period`` with their red/amber/green status.

    Returns a long table with full-precision numbers (saved for reuse): ``facility_id,
    facility, district, indicator_id, indicator, estimate, suppressed, rag``; see
    :func:`facility_scorecard_display` for what a reader sees.
    """
    import pandas as pd

    t = indicator_table(country, ("facility_id", "round"))
    t = t[(t["round"] == period) & (t["level"] == "outcomes")]
    if indicators is not None:
        t = t[t["indicator_id"].isin(list(indicators))]
    t = t[t["facility_id"] != "(all)"]
    # without a facility list (or its names, districts) a facility is shown by its id
    fac = country_tables(country).get("facilities", pd.DataFrame(columns=["facility_id"]))
    fac = fac.set_index("facility_id")

    def attribute(column: str, fid: str, default: str) -> str:
        value = fac[column].get(fid) if column in fac else None
        return default if value is None or value != value else str(value)

    rows = []
    for rec in t.to_dict("records"):
        r = Record(rec)
        sup = bool(r.suppressed)
        fid = str(r.facility_id)
        rows.append(
            {
                "facility_id": fid,
                "facility": attribute("name", fid, fid),
                "district": attribute("district", fid, ""),
                "indicator_id": r.indicator_id,
                "indicator": r.label,
                "estimate": math.nan if sup else float(r.estimate),
                "suppressed": sup,
                "rag": "" if sup or is_missing(r.rag) else str(r.rag),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "facility_id",
            "facility",
            "district",
            "indicator_id",
            "indicator",
            "estimate",
            "suppressed",
            "rag",
        ],
    )


def facility_scorecard_display(
    long: pd.DataFrame, country: str, *, per_table: int = 5
) -> list[PresentationTable] | list[str]:
    """The facility scorecard as tables that fit the page: facilities down, at most
    ``per_table`` indicators across per table; each cell a value, a symbol and a colour."""
    if long.empty:
        return [
            "**Not collected in this country.** No outcome indicator of this chapter can be "
            "computed per facility from this country's data."
        ]
    fw = framework_of(country)
    min_cell = params_of(country).min_cell_size
    ids = list(dict.fromkeys(long["indicator_id"]))
    inds = {i: fw.indicator(i) for i in ids}
    fmts = {
        i: _fmt(inds[i].type, inds[i].unit, long.loc[long["indicator_id"] == i, "estimate"])
        for i in ids
    }
    headers = [Column(_short_header(inds[i], fmts[i]), wrap=True, align="right") for i in ids]
    table = PresentationTable(
        [Column("Facility (district)", align="left", wrap=True, width="24%"), *headers],
        caption="Facility scorecard",
        css="facility-scorecard",
    )
    cells = {
        (str(rec["facility_id"]), str(rec["indicator_id"])): Record(rec)
        for rec in long.to_dict("records")
    }
    facilities = (
        long[["facility_id", "facility", "district"]]
        .drop_duplicates("facility_id")
        .sort_values(["district", "facility_id"])
    )
    for rec in facilities.to_dict("records"):
        f = Record(rec)
        row: list[str | Cell] = [f"{f.facility} ({f.district})" if f.district else str(f.facility)]
        for i in ids:
            c = cells.get((str(f.facility_id), str(i)))
            if c is None:
                row.append(table.missing("No data for this facility in the round."))
            elif bool(c.suppressed):
                row.append(
                    table.missing(
                        f"Suppressed: fewer than {min_cell} respondents (privacy).",
                        text="supp.",
                    )
                )
            elif is_missing(c.estimate):
                row.append(
                    table.missing(
                        "No observation for this facility in the round (no visit or respondent)."
                    )
                )
            else:
                row.append(_rag_cell(fmts[i].value(c.estimate), c.rag))
        table.add_row(row)
    table.note(
        "✔ green, ! amber, ✖ red: the facility's value against the framework's thresholds "
        "(see the legend below); no symbol: the indicator has no thresholds."
    )
    return table.split(key_columns=1, max_columns=per_table + 1)


def _short_header(ind: Indicator, fmt: IndicatorFormat) -> str:
    # the full label: a short label may name the good side ("clients getting all their
    # medicines") of an indicator that counts the bad one (those who could not)
    return fmt.label(ind.label)


def rag_legend(country: str, indicator_ids: Sequence[str]) -> PresentationTable:
    """The thresholds behind every red / amber / green symbol, one row per indicator."""
    fw = framework_of(country)
    t = PresentationTable(
        [
            Column("Indicator", align="left", wrap=True, width="40%"),
            Column(f"{RAG_SYMBOLS['green']} Green", align="left"),
            Column(f"{RAG_SYMBOLS['amber']} Amber", align="left"),
            Column(f"{RAG_SYMBOLS['red']} Red", align="left"),
        ],
        caption="Red / amber / green thresholds (from the measurement framework)",
    )
    for i in indicator_ids:
        ind = fw.indicator(i)
        if ind.thresholds is None:
            continue
        fmt = IndicatorFormat(
            ind.type, ind.unit, max(abs(ind.thresholds.green), abs(ind.thresholds.amber))
        )
        g, a = fmt.value(ind.thresholds.green), fmt.value(ind.thresholds.amber)
        if ind.direction == "higher_is_better":
            cells = [f"{g} or more", f"{a} to below {g}", f"below {a}"]
        else:
            cells = [f"{g} or less", f"above {g} to {a}", f"above {a}"]
        t.add_row([fmt.label(ind.label), *cells])
    return t


# ----------------------------------------------------------------------------- figures
def _axis_unit(fmt: IndicatorFormat) -> str:
    if fmt.kind == "proportion":
        return "Share (%)"
    unit = fmt.unit_text
    if unit.startswith("per 1,000 "):  # "per 1,000 person-months on ART" → two lines
        unit = wrap(unit, 24)
    return unit[:1].upper() + unit[1:] if unit else "Value"


def trend_figure(
    country: str, indicator_ids: Sequence[str], by_arm: bool = True
) -> ReportFigure | str:
    """Trends by round with 95% CI bands: CLM vs comparison facilities, one panel per indicator.

    Percent axes for proportions, the unit on every y axis, one legend for the figure, and an
    alt text giving each line's first and last value.
    """
    from clm_research.report.chapters import comparison_note, computed_ids, indicators_note

    note = indicators_note(country, indicator_ids, "This figure")
    if note:
        return note
    indicator_ids = computed_ids(country, indicator_ids)
    by_arm = by_arm and comparison_note(country) is None  # no arms: one line per indicator
    by = ("clm_arm", "round") if by_arm else ("round",)
    t = indicator_table(country, by)
    t = t[t["indicator_id"].isin(list(indicator_ids)) & ~t["suppressed"].astype(bool)]
    if by_arm:
        t = t[t["clm_arm"] != "(all)"]
    fw = framework_of(country)
    n = len(indicator_ids)
    ncols = 1 if n == 1 else 2
    nrows = math.ceil(n / ncols)
    fig, axes = new_figure(nrows, ncols, height=0.6 + 2.7 * nrows, squeeze=False)
    flat = list(axes.ravel())
    alt_parts = []
    handles: dict[str, Any] = {}
    for ax, iid in zip(flat, indicator_ids, strict=False):
        ind = fw.indicator(iid)
        d = t[t["indicator_id"] == iid].sort_values("round")
        fmt = _fmt(ind.type, ind.unit, d["estimate"])
        title = wrap(fmt.label(ind.label), 30 if ncols > 1 else 70)
        ax.set_title(title, loc="left")
        if d.empty:
            ax.text(0.5, 0.5, "no publishable data", ha="center", transform=ax.transAxes)
            alt_parts.append(f"{ind.label}: no publishable data")
            continue
        groups = list(d.groupby("clm_arm", sort=True)) if by_arm else [("all", d)]
        rounds = sorted(d["round"].unique())
        x_of = {r: k for k, r in enumerate(rounds)}
        for arm, g in groups:
            style = ARM_STYLE.get(str(arm), {"color": "#0072B2", "marker": "o", "linestyle": "-"})
            x = [x_of[r] for r in g["round"]]
            y = g["estimate"].astype(float) * fmt.multiplier
            lo = g["ci_low"].astype(float) * fmt.multiplier
            hi = g["ci_high"].astype(float) * fmt.multiplier
            (line,) = ax.plot(
                x,
                y,
                color=style["color"],
                marker=style["marker"],
                linestyle=style["linestyle"],
                linewidth=1.8,
                markersize=4.5,
                label=arm_label(arm) if by_arm else "All (no comparison group)",
            )
            ax.fill_between(x, lo, hi, color=style["color"], alpha=0.15, linewidth=0)
            handles[line.get_label()] = line
            who = arm_label(arm) if by_arm else "all"
            alt_parts.append(
                f"{ind.label}, {who}: {fmt.value(g['estimate'].iloc[0])} in {g['round'].iloc[0]}, "
                f"{fmt.value(g['estimate'].iloc[-1])} in {g['round'].iloc[-1]}"
            )
        step = 2 if len(rounds) > 8 else 1  # 12 quarters: every other label, still readable
        ax.set_xticks(
            range(len(rounds)),
            [r if k % step == 0 else "" for k, r in enumerate(rounds)],
            rotation=45,
            ha="right",
        )
        ax.set_xlabel("Monitoring round" if ind.dataset != "routine" else "Quarter")
        ax.set_ylabel(_axis_unit(fmt))
        if fmt.kind == "proportion":
            percent_axis(ax, scale=100, decimals=None)
    for ax in flat[n:]:
        ax.set_visible(False)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside upper center",
            ncols=len(handles),
            frameon=False,
            title="Shaded bands: 95% confidence intervals",
        )
    kind = "Line chart" if n == 1 else f"{n} line charts"
    alt = (
        f"{kind} by monitoring round"
        + (", CLM facilities against comparison facilities" if by_arm else "")
        + ". "
        + "; ".join(alt_parts)
        + "."
    )
    return ReportFigure(fig, alt)


def district_map(country: str, indicator_id: str, period: str) -> ReportFigure | str:
    """Choropleth of one indicator by district at ``period``; suppressed districts hatched.

    Direction-aware: the colour scale runs from light (worse) to dark blue (better) whether
    high or low is good, so a darker district is always doing better; the colour bar is
    titled with the indicator, its unit and which way is better. The palette (ColorBrewer
    YlGnBu) is sequential and colour-blind safe. District names carry a white halo so they
    read on every fill. Only district boundaries are drawn: no facility, outreach-site or
    key-population location is ever plotted.

    Returns the note in place of the map when the country has no districts or boundaries, or
    has not collected the indicator.
    """
    from clm_research.report.chapters import indicators_note, map_note

    note = map_note(country) or indicators_note(country, [indicator_id], "This map")
    if note:
        return note
    ind = framework_of(country).indicator(indicator_id)
    shapes = country_boundaries(params_of(country))
    t = indicator_table(country, ("district", "round"))
    t = t[(t["indicator_id"] == indicator_id) & (t["round"] == period)]
    return choropleth(shapes, t[["district", "estimate", "suppressed"]], ind, period)


def choropleth(
    shapes: DistrictShapes, table: pd.DataFrame, ind: Indicator, period: str
) -> ReportFigure:
    """The map of :func:`district_map`: ``table`` (``district``, ``estimate``, ``suppressed``)
    drawn on the chosen boundary features, joined on normalised district names.

    Districts of the data with no boundary are named in the caption, the alt text and a
    warning; boundaries without data are drawn plain grey ("no data").
    """
    import matplotlib.patheffects as pe
    from matplotlib.colors import Normalize
    from matplotlib.ticker import FuncFormatter

    merged, match = estimates_by_feature(shapes, table)
    match.warn(shapes.source)
    key = "district"
    no_data = merged["suppressed"].isna().to_numpy()
    is_sup = merged["suppressed"].astype("boolean").fillna(False).to_numpy(dtype=bool) & ~no_data
    has_value = ~is_sup & ~no_data
    fmt = _fmt(ind.type, ind.unit, merged.loc[has_value, "estimate"])
    better_high = ind.direction == "higher_is_better"
    cmap = "YlGnBu" if better_high else "YlGnBu_r"
    values = merged.loc[has_value, "estimate"].astype(float) * fmt.multiplier
    fig, ax = new_figure(height=5.0)
    lo_v, hi_v = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    if lo_v == hi_v:  # one value: a scale around it
        lo_v, hi_v = lo_v - 1, hi_v + 1
    norm = Normalize(lo_v, hi_v)
    shown = merged[has_value].assign(_v=values)
    if not shown.empty:
        shown.plot(column="_v", ax=ax, cmap=cmap, norm=norm, edgecolor="white", linewidth=0.8)
        from matplotlib.cm import ScalarMappable

        sm = ScalarMappable(norm=norm, cmap=cmap)
        cbar = fig.colorbar(sm, ax=ax, shrink=0.75, pad=0.02)
        direction = "higher is better" if better_high else "lower is better"
        cbar.set_label(wrap(f"{fmt.label(ind.label)} — {direction} (darker = better)", 40))
        if fmt.kind == "proportion":
            cbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}%"))
    hidden = merged[is_sup]
    if not hidden.empty:
        hidden.plot(ax=ax, color="#e5e5e5", hatch="///", edgecolor="white", linewidth=0.8)
    empty = merged[no_data]
    if not empty.empty:
        empty.plot(ax=ax, color="#f2f2f2", edgecolor="#bbbbbb", linewidth=0.6)
    labelled = len(merged) <= MAP_LABEL_LIMIT
    if labelled:
        halo = [pe.withStroke(linewidth=3, foreground="white")]
        for i, row in enumerate(merged.itertuples()):
            c = row.geometry.representative_point()
            val = (
                "no data" if no_data[i] else "suppressed" if is_sup[i] else fmt.value(row.estimate)
            )
            ax.annotate(
                f"{getattr(row, key)}\n{val}",
                (c.x, c.y),
                ha="center",
                va="center",
                fontsize=9,
                path_effects=halo,
            )
    # a figure title, not an axes title: a tall country's map is narrower than its title
    fig.suptitle(wrap(f"{fmt.label(ind.label)} by district, {period}", 70), x=0.02, ha="left")
    ax.set_axis_off()
    ordered = merged[has_value].sort_values("estimate", ascending=not better_high)
    best = ordered.iloc[0] if len(ordered) else None
    worst = ordered.iloc[-1] if len(ordered) else None
    alt = (
        f"Map of {len(merged)} districts shaded by {ind.label} in {period} "
        f"({'higher' if better_high else 'lower'} is better; darker is better)."
    )
    if best is not None and worst is not None:
        alt += (
            f" Best: {best[key]} ({fmt.value(best['estimate'])}); worst: {worst[key]} "
            f"({fmt.value(worst['estimate'])})."
        )
    n_sup = int(is_sup.sum())
    if n_sup:
        alt += (
            f" {n_sup} district(s) suppressed (too few people, or hidden to protect a small "
            "number elsewhere), shown hatched grey."
        )
    n_empty = int(no_data.sum())
    if n_empty:
        alt += f" {n_empty} district(s) without data, shown plain light grey."
    caption = (
        "Darker districts are doing better on this indicator; hatched grey districts are "
        "suppressed (too few people to publish, or hidden to protect a small number elsewhere)"
        + ("; plain light grey districts have no data" if n_empty else "")
        + ". District boundaries only: no facility or outreach location is shown."
    )
    if not labelled:
        caption += " Too many districts to name on the map: the values are in the tables."
    unmatched = match.note(shapes.source)
    if unmatched:
        alt += " " + unmatched
        caption += " " + unmatched
    return ReportFigure(fig, alt, caption)
