"""Report chapter "The accountability loop": the issue funnel (each issue counted once, at the
furthest stage it reached) for this round and for all time, and time to resolution
(Kaplan–Meier, open issues censored) with the median and its CI in the caption.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clm_research.report.context import country_tables, params_of
from clm_research.report.figures import OKABE_ITO, ReportFigure, new_figure, percent_axis
from clm_research.report.format import (
    Cell,
    Column,
    PresentationTable,
    format_count,
    format_number,
    format_percent,
    is_missing,
    records,
)

if TYPE_CHECKING:
    import pandas as pd

    from clm_research.evaluation.accountability import FunnelResult, SurvivalResult

__all__ = [
    "issue_funnel",
    "funnel_scopes",
    "funnel_frame",
    "funnel_table",
    "funnel_figure",
    "resolution_curve",
    "resolution_table",
    "resolution_figure",
]


def issue_funnel(country: str, period: str | None = None) -> FunnelResult:
    """The issue funnel: all issues in the log, or those identified in round ``period``."""
    from clm_research.evaluation.accountability import issue_funnel as funnel

    return funnel(
        country_tables(country)["issues"],
        by=("category",),
        as_of=params_of(country).as_of,
        rounds=None if period is None else [period],
    )


def _all_time_scope(country: str) -> str:
    rounds = sorted(country_tables(country)["issues"]["round"].dropna().astype(str).unique())
    return f"all time ({rounds[0]}–{rounds[-1]})" if rounds else "all time"


def funnel_scopes(country: str, period: str) -> dict[str, FunnelResult]:
    """The funnel for this round and for all time, keyed by the scope's label."""
    return {
        f"this round ({period})": issue_funnel(country, period),
        _all_time_scope(country): issue_funnel(country),
    }


def funnel_frame(scopes: dict[str, FunnelResult]) -> pd.DataFrame:
    """Every scope's funnel in one tidy table (``scope`` column first), for saving."""
    import pandas as pd

    return pd.concat(
        [f.summary().assign(scope=s) for s, f in scopes.items()], ignore_index=True
    ).pipe(lambda d: d[["scope", *[c for c in d.columns if c != "scope"]]])


def funnel_table(scopes: dict[str, FunnelResult]) -> PresentationTable:
    """Issues reaching each stage (or further), with shares, for each scope side by side."""
    from clm_research.evaluation.accountability import STAGE_LABELS

    cols = [Column("Stage reached (or further)", align="left", wrap=True, width="30%")]
    for scope in scopes:
        cols += [Column(f"Issues, {scope}"), Column(f"% of identified, {scope}", wrap=True)]
    t = PresentationTable(cols)
    overall = {s: f.overall().set_index("stage") for s, f in scopes.items()}
    first = next(iter(overall.values()))
    for stage in first.index:
        row: list[str | Cell] = [STAGE_LABELS.get(stage, stage)]
        for s in scopes:
            o = overall[s].loc[stage]
            n, skipped = int(o["issues"]), int(o["without_own_date"])
            markers: tuple[str, ...] = ()
            if skipped:
                markers = (
                    t.marker(
                        "Includes issues that reached a later stage without this stage's date "
                        "recorded (e.g. resolved at the facility without escalation): each issue "
                        "is counted once, at the furthest stage it reached."
                    ),
                )
            row.append(Cell(format_count(n), markers=markers))
            row.append(format_percent(o["share_of_identified"]))
        t.add_row(row)
    any_f = next(iter(scopes.values()))
    as_of = any_f.as_of.date().isoformat() if any_f.as_of is not None else "the extraction date"
    t.note(
        f"Stages as recorded by {as_of}. This round: issues identified in the reporting round; "
        "all time: every issue in the log. Shares are of the issues identified in the same "
        "scope, so they never exceed 100%."
    )
    return t


def funnel_figure(scopes: dict[str, FunnelResult]) -> ReportFigure:
    """Side-by-side bars of the share of identified issues reaching each stage, per scope."""
    import numpy as np

    from clm_research.evaluation.accountability import STAGE_LABELS

    fig, ax = new_figure(height=3.9)
    names = list(scopes)
    colours = [OKABE_ITO["sky"], OKABE_ITO["blue"]]
    stages = list(next(iter(scopes.values())).overall()["stage"])
    y = np.arange(len(stages))[::-1]
    h = 0.38
    alt = []
    for k, name in enumerate(names):
        o = scopes[name].overall()
        shares = o["share_of_identified"].to_numpy(float)
        bars = ax.barh(
            y + (h / 2 if k == 0 else -h / 2),
            shares,
            height=h,
            color=colours[k % 2],
            label=f"{name}: {int(o['issues'].iloc[0]):,} issues identified",
            hatch="" if k else "//",
            edgecolor="white",
        )
        for bar, n, s in zip(bars, o["issues"], shares, strict=True):
            ax.text(
                bar.get_width() + 0.01,
                bar.get_y() + bar.get_height() / 2,
                f"{int(n):,} ({s:.0%})",
                va="center",
                fontsize=9,
            )
        alt.append(
            f"{name}: "
            + ", ".join(
                f"{STAGE_LABELS.get(st, st).lower()} {int(n):,} ({s:.0%})"
                for st, n, s in zip(o["stage"], o["issues"], shares, strict=True)
            )
        )
    ax.set_yticks(y, [STAGE_LABELS.get(s, s) for s in stages])
    ax.set_xlim(0, 1.28)
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])  # room for the labels, no ticks beyond 100%
    percent_axis(ax, "x")
    ax.set_xlabel("Share of identified issues that reached the stage or a later one")
    fig.legend(loc="outside upper center", ncols=1, frameon=False, title="Scope")
    ax.grid(axis="y", visible=False)
    return ReportFigure(
        fig,
        "Bar chart of the accountability funnel, each issue counted once at the furthest "
        "stage it reached. " + "; ".join(alt) + ".",
    )


def resolution_curve(country: str, by: str | None = "severity") -> SurvivalResult:
    """Kaplan–Meier time to resolution, open issues censored at the extraction date."""
    from clm_research.evaluation.accountability import time_to_resolution

    return time_to_resolution(
        country_tables(country)["issues"], by=by, as_of=params_of(country).as_of
    )


def _days(v: Any) -> str:
    """Days, or "not reached" for a limit the curve never reaches (``nan`` or ``inf``)."""
    import math

    x = float(v)
    return format_number(x, 0) if math.isfinite(x) else "not reached"


def resolution_table(km: SurvivalResult) -> PresentationTable:
    """Per severity and overall: issues, resolved, still open, median days (95% CI), share
    resolved within 30 and 90 days (all time)."""
    s = km.summary()
    t = PresentationTable(
        [
            Column("Issues (all time)", align="left"),
            Column("Issues"),
            Column("Resolved"),
            Column("Still open (censored)", wrap=True),
            Column("Median days to resolution (95% CI)", wrap=True),
            Column("Resolved within 30 days", wrap=True),
            Column("Resolved within 90 days", wrap=True),
        ]
    )
    order = ["all", *[g for g in s["group"] if g != "all"]]
    s = s.set_index("group").loc[order].reset_index()
    for r in records(s):
        name = "All issues" if r.group == "all" else f"Severity: {r.group}"
        med: str | Cell
        if not is_missing(r.median_days):
            lo = _days(r.median_ci_low)
            hi = _days(r.median_ci_high)
            text = f"{_days(r.median_days)} ({lo} to {hi})"
            med = text
            if "not reached" in text:
                med = Cell(
                    text,
                    markers=(
                        t.marker(
                            "'Not reached': too few issues resolved for that limit to be estimated."
                        ),
                    ),
                )
        else:
            med = t.missing("Fewer than half the issues are resolved: the median is not reached.")
        t.add_row(
            [
                name,
                format_count(r.issues),
                format_count(r.resolved),
                format_count(r.open),
                med,
                format_percent(r.resolved_by_day_30, 0),
                format_percent(r.resolved_by_day_90, 0),
            ]
        )
    t.note(
        "Kaplan–Meier estimates: issues still open at the extraction date count as waiting "
        "(censored), not as failures."
    )
    return t


def resolution_figure(km: SurvivalResult) -> ReportFigure:
    """Share of issues still open by days since identification (Kaplan–Meier), overall and
    by severity; the caption gives the median and its 95% CI."""
    fig, ax = new_figure(height=3.8)
    palette = [OKABE_ITO[c] for c in ("black", "blue", "orange", "vermillion", "green", "purple")]
    styles = ["-", "--", "-.", ":", "--", "-."]
    summary = km.summary().set_index("group")
    groups = list(dict.fromkeys(km.curves["group"]))
    for k, g in enumerate(groups):
        part = km.curves[km.curves["group"] == g]
        name = "All issues" if g == "all" else f"{g} severity"
        med = summary.loc[g, "median_days"]
        ax.step(
            part["days"],
            part["still_open"],
            where="post",
            color=palette[k % len(palette)],
            linestyle=styles[k % len(styles)],
            linewidth=2.2 if g == "all" else 1.5,
            label=f"{name} (median {_days(med)} days)",
        )
    ax.axhline(0.5, color="#8c959f", linewidth=0.8, linestyle=":")
    ax.set_xlabel("Days since the issue was identified")
    ax.set_ylabel("Issues still open (%)")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    percent_axis(ax)
    ax.legend(title="Issues", frameon=False, loc="upper right")
    a: Any = summary.loc["all"]
    d = km.diagnostics
    caption = (
        f"Median time to resolution: {_days(a['median_days'])} days (95% CI "
        f"{_days(a['median_ci_low'])} to {_days(a['median_ci_high'])}), all "
        f"{int(a['issues']):,} issues logged since monitoring began; {int(a['open']):,} still "
        f"open on {d.get('as_of', 'the extraction date')} are counted as waiting (censored). "
        "The dotted line marks half of the issues resolved."
    )
    alt = (
        "Kaplan–Meier curves of the share of issues still open against days since "
        f"identification. All issues: median {_days(a['median_days'])} days (95% CI "
        f"{_days(a['median_ci_low'])} to {_days(a['median_ci_high'])}). "
        + "; ".join(
            f"{g} severity: median {_days(summary.at[g, 'median_days'])} days"
            for g in groups
            if g != "all"
        )
        + "."
    )
    return ReportFigure(fig, alt, caption)
