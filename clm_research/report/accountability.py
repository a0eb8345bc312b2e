"""Report chapter "The accountability loop": the issue funnel (identified → escalated → action
agreed → resolved) and time to resolution (Kaplan–Meier, open issues censored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clm_research.report.context import country_tables, params_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from clm_research.evaluation.accountability import FunnelResult, SurvivalResult

__all__ = ["issue_funnel", "funnel_figure", "resolution_curve"]


def issue_funnel(country: str) -> FunnelResult:
    """Issues identified → escalated → action agreed → resolved (evaluation API result)."""
    from clm_research.evaluation.accountability import issue_funnel as funnel

    return funnel(
        country_tables(country)["issues"], by=("category",), as_of=params_of(country).as_of
    )


def funnel_figure(country: str) -> Figure:
    """Bar chart of the issue funnel (all categories)."""
    import matplotlib.pyplot as plt

    res = issue_funnel(country)
    s = res.summary()
    s = s[s[s.columns[0]] == "all"]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.barh(s["stage"][::-1], s["issues"][::-1], color="#1f3a5f")
    for y, (n, share) in enumerate(
        zip(s["issues"][::-1], s["share_of_identified"][::-1], strict=True)
    ):
        ax.text(n, y, f" {n} ({share:.0%})", va="center", fontsize=8)
    ax.set_xlabel("issues")
    ax.set_title("The accountability loop: what happened to the issues found")
    fig.tight_layout()
    plt.close(fig)
    return fig


def resolution_curve(country: str, by: str | None = "severity") -> SurvivalResult:
    """Kaplan–Meier time to resolution, open issues censored at the extraction date."""
    from clm_research.evaluation.accountability import time_to_resolution

    return time_to_resolution(
        country_tables(country)["issues"], by=by, as_of=params_of(country).as_of
    )
