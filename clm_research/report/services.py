"""Report chapter "Service quality": indicator estimates in the reporting round, the facility
scorecard (red / amber / green against the framework's thresholds), trends in CLM and
comparison facilities, and district maps.

Privacy: cells below the minimum cell size read "suppressed"; maps are drawn at district level
from the district boundaries only (never facility or outreach-site coordinates).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clm_research.paths import project_root, raw_dir
from clm_research.report.context import country_tables, indicator_table, params_of
from clm_research.report.tables import SUPPRESSED, format_value

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from pandas.io.formats.style import Styler

__all__ = [
    "indicator_display",
    "facility_scorecard",
    "facility_scorecard_display",
    "trend_figure",
    "district_map",
]

_RAG_COLOURS = {"red": "#f8d0cc", "amber": "#fde7b0", "green": "#cfe8cf"}


def indicator_display(
    country: str,
    period: str,
    level: str | Sequence[str] | None = None,
    by: tuple[str, ...] = ("round",),
) -> pd.DataFrame:
    """Indicators at ``period``: estimate with 95% CI, n, target and RAG, in words.

    Suppressed cells read ``"suppressed"``.
    """
    import pandas as pd

    t = indicator_table(country, by)
    if "round" in t.columns:
        t = t[t["round"] == period]
    if level is not None:
        levels = [level] if isinstance(level, str) else list(level)
        t = t[t["level"].isin(levels)]
    rows = []
    r: Any  # one row of the indicator table: columns of mixed types
    for r in t.itertuples(index=False):
        sup = bool(r.suppressed)
        est = SUPPRESSED if sup else format_value(r.estimate, r.type)
        ci = (
            ""
            if sup or pd.isna(r.ci_low)
            else f"{format_value(r.ci_low, r.type)} to {format_value(r.ci_high, r.type)}"
        )
        row = {"indicator": r.label, "level": r.level}
        for b in by:
            if b != "round":
                row[b] = getattr(r, b)
        row.update(
            {
                "estimate": est,
                "95% CI": ci,
                "n": "" if sup or pd.isna(r.n) else f"{int(r.n):,}",
                "target": "" if pd.isna(r.target) else format_value(r.target, r.type),
                "status": "" if sup or pd.isna(r.rag) else str(r.rag),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def facility_scorecard(
    country: str, period: str, indicators: Sequence[str] | None = None
) -> pd.DataFrame:
    """Facility × indicator estimates at ``period`` with their red/amber/green status.

    Returns a long table (facility, indicator, estimate text, rag); see
    :func:`facility_scorecard_display` for the coloured wide view.
    """
    import pandas as pd

    t = indicator_table(country, ("facility_id", "round"))
    t = t[(t["round"] == period) & (t["level"] == "outcomes")]
    if indicators is not None:
        t = t[t["indicator_id"].isin(list(indicators))]
    t = t[t["facility_id"] != "(all)"]
    names = country_tables(country)["facilities"].set_index("facility_id")["name"]
    rows = []
    r: Any  # one row of the indicator table: columns of mixed types
    for r in t.itertuples(index=False):
        sup = bool(r.suppressed)
        rows.append(
            {
                "facility": f"{names.get(r.facility_id, r.facility_id)} ({r.facility_id})",
                "indicator": r.label,
                "estimate": SUPPRESSED if sup else format_value(r.estimate, r.type),
                "rag": "" if sup or pd.isna(r.rag) else str(r.rag),
            }
        )
    return pd.DataFrame(rows, columns=["facility", "indicator", "estimate", "rag"])


def facility_scorecard_display(long: pd.DataFrame) -> Styler:
    """Wide, coloured facility scorecard (rows facilities, columns indicators)."""
    est = long.pivot(index="facility", columns="indicator", values="estimate").fillna("")
    rag = long.pivot(index="facility", columns="indicator", values="rag").fillna("")

    def colours(_: Any) -> Any:
        return rag.map(
            lambda v: f"background-color: {_RAG_COLOURS[v]}" if v in _RAG_COLOURS else ""
        )

    return est.style.apply(colours, axis=None)


def trend_figure(country: str, indicator_ids: Sequence[str], by_arm: bool = True) -> Figure:
    """Trends by round (95% CI bands), CLM vs comparison facilities, one panel per indicator."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    by = ("clm_arm", "round") if by_arm else ("round",)
    t = indicator_table(country, by)
    t = t[t["indicator_id"].isin(list(indicator_ids)) & ~t["suppressed"].astype(bool)]
    n = len(indicator_ids)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, iid in zip(axes[0], indicator_ids, strict=True):
        d = t[t["indicator_id"] == iid].sort_values("round")
        if d.empty:
            ax.set_title(f"{iid}: no data")
            continue
        hue = "clm_arm" if by_arm else None
        sns.lineplot(data=d, x="round", y="estimate", hue=hue, marker="o", ax=ax, sort=False)
        for _arm, g in d.groupby("clm_arm") if by_arm else [(None, d)]:
            ax.fill_between(
                g["round"], g["ci_low"].astype(float), g["ci_high"].astype(float), alpha=0.15
            )
        ax.set_title(str(d["label"].iloc[0])[:60], fontsize=9)
        ax.set_xlabel("round")
        ax.set_ylabel("estimate")
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    fig.tight_layout()
    plt.close(fig)
    return fig


def district_map(country: str, indicator_id: str, period: str) -> Figure:
    """Choropleth of one indicator by district at ``period``; suppressed districts hatched.

    Only district boundaries are drawn: no facility, outreach-site or key-population location
    is ever plotted.
    """
    import geopandas as gpd
    import matplotlib.pyplot as plt

    p = params_of(country)
    path = (
        project_root() / p.district_boundaries
        if p.district_boundaries
        else raw_dir(country) / "districts.geojson"
    )
    shapes = gpd.read_file(path)
    key = next((c for c in ("district", "name", "NAME") if c in shapes.columns), shapes.columns[0])
    t = indicator_table(country, ("district", "round"))
    t = t[(t["indicator_id"] == indicator_id) & (t["round"] == period)]
    merged = shapes.merge(
        t[["district", "estimate", "suppressed", "label"]],
        left_on=key,
        right_on="district",
        how="left",
    )
    fig, ax = plt.subplots(figsize=(6.5, 5))
    is_sup = merged["suppressed"].fillna(True).astype(bool)
    shown, hidden = merged[~is_sup], merged[is_sup]
    if not shown.empty:
        shown.plot(
            column="estimate",
            ax=ax,
            legend=True,
            cmap="viridis",
            edgecolor="white",
            legend_kwds={"shrink": 0.7},
        )
    if not hidden.empty:
        hidden.plot(ax=ax, color="#dddddd", hatch="///", edgecolor="white")
    hidden_mask = merged["suppressed"].fillna(True).astype(bool)
    for (_, row), is_hidden in zip(merged.iterrows(), hidden_mask, strict=True):
        c = row.geometry.representative_point()
        txt = SUPPRESSED if is_hidden else ""
        ax.annotate(f"{row[key]}\n{txt}".strip(), (c.x, c.y), ha="center", fontsize=7)
    label = t["label"].iloc[0] if not t.empty else indicator_id
    ax.set_title(f"{label}, {period}, by district", fontsize=10)
    ax.set_axis_off()
    fig.tight_layout()
    plt.close(fig)
    return fig
