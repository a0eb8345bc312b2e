"""Report section "The results chain": does progress at each level carry through to the next?

The analysis is :func:`~clm_research.evaluation.chain.chain_analysis` on the country's tables:
every declared ``contributes_to`` link tested as the association of upstream progress with
later downstream change within facilities. This module shows it on the summary page: the
diagram (levels as columns, indicators as boxes coloured by their red/amber/green status in the
reporting round, links drawn with their estimated strength, broken links marked), its
alternative text, the paragraph saying where the chain holds and where it breaks, and the links
that could not be tested, with the reason ("not collected" when a table or column is absent).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from clm_research.report.context import country_tables, framework_of, indicator_table

if TYPE_CHECKING:
    import pandas as pd

    from clm_research.evaluation.chain import ChainResult
    from clm_research.report.figures import ReportFigure

__all__ = [
    "chain_result",
    "progress_status",
    "chain_figure",
    "chain_links_figure",
    "chain_alt_text",
    "chain_paragraph",
    "chain_links",
    "untested_links",
    "untested_markdown",
]


@cache
def chain_result(country: str, seed: int) -> ChainResult:
    """The results-chain analysis of the country (``seed``: the Monte Carlo intervals of the
    mediated shares, the report's ``seed`` parameter)."""
    from clm_research.evaluation.chain import chain_analysis

    return chain_analysis(country_tables(country), framework_of(country), seed=seed)


def progress_status(country: str, period: str) -> dict[str, str]:
    """Each indicator's red/amber/green status in round ``period`` (suppressed cells: none)."""
    t = indicator_table(country, ("round",))
    t = t[(t["round"] == period) & ~t["suppressed"].astype(bool) & t["rag"].notna()]
    return {str(i): str(r) for i, r in zip(t["indicator_id"], t["rag"], strict=True)}


def chain_figure(country: str, period: str, seed: int) -> ReportFigure:
    """The results-chain diagram, boxes coloured by their status in ``period``, numbered links
    drawn by strength, with its alternative text (:func:`chain_alt_text`) and a caption saying
    how to read it."""
    from clm_research.evaluation.chain import plot_chain
    from clm_research.report.figures import FIGURE_WIDTH_IN, MIN_FONT_PT, ReportFigure

    status = progress_status(country, period)
    result = chain_result(country, seed)
    fig = plot_chain(
        result,
        status,
        width=FIGURE_WIDTH_IN,
        fontsize=MIN_FONT_PT,
        status_title=f"status in {period}",
    )
    caption = (
        "Boxes: the framework's indicators by level, coloured by their red/amber/green status "
        f"in {period} (the framework's thresholds). Arrows: the declared links, drawn solid "
        "where the chain holds (wider for a larger effect), dashed red with ✕ in the legend "
        "where it breaks or cannot be confirmed, dotted where the link could not be tested. "
        "The numbers refer to the chart of link strengths below."
    )
    return ReportFigure(fig, result.alt_text(status=status), caption)


def chain_links_figure(country: str, seed: int) -> ReportFigure:
    """The estimate and 95% confidence interval of each numbered link of :func:`chain_figure`
    (standardised, positive = progress carried through), or why it was not tested."""
    from clm_research.evaluation.chain import chain_links_alt_text, plot_chain_links
    from clm_research.report.figures import FIGURE_WIDTH_IN, MIN_FONT_PT, ReportFigure

    result = chain_result(country, seed)
    caption = (
        "Standardised effect: the change in the downstream indicator, in its standard "
        "deviations within facilities, per standard deviation of upstream progress, turned so "
        "that positive means the progress carried through (e.g. fewer stock-outs after "
        "stock-out issues were resolved). An interval crossing zero: no evidence of a link."
    )
    return ReportFigure(
        plot_chain_links(result, width=FIGURE_WIDTH_IN, fontsize=MIN_FONT_PT),
        chain_links_alt_text(result),
        caption,
    )


def chain_alt_text(country: str, period: str, seed: int) -> str:
    """Alternative text of :func:`chain_figure`: the boxes by level and every link in words."""
    return chain_result(country, seed).alt_text(status=progress_status(country, period))


def chain_paragraph(country: str, seed: int) -> str:
    """Where the chain holds and where it breaks, in plain words."""
    return chain_result(country, seed).paragraph()


def chain_links(country: str, seed: int) -> pd.DataFrame:
    """Every declared link with its estimate, CI, facilities and rounds, strength and reason."""
    return chain_result(country, seed).summary()


def untested_links(country: str, seed: int) -> pd.DataFrame:
    """The links that could not be tested in this country, with the reason."""
    return chain_result(country, seed).not_estimable()


def untested_markdown(country: str, seed: int) -> str:
    """The untested links as a Markdown list, numbered as in the diagram ("not collected"
    where a table or column is absent), or a sentence saying every drawn link was tested."""
    from clm_research.evaluation.chain import chain_link_numbers

    result = chain_result(country, seed)
    links = chain_link_numbers(result)
    links = links[links["status"] != "estimated"]
    hidden = int((result.links["reason_kind"] == "not per facility and round").sum())
    lines = []
    if links.empty:
        lines.append("Every link drawn in the diagram could be tested with this country's data.")
    else:
        lines.append("Links that could not be tested here, and why:")
        for r in links.itertuples():
            lines.append(
                f"- Link {r.number}, {r.upstream_label} → {r.downstream_label}: {r.reason}"
            )
    if hidden:
        lines.append(
            f"\n{hidden} further declared links start from indicators measured per "
            "implementing organisation, outreach site or once per facility; facility-round data "
            "cannot test them, so they are not drawn."
        )
    return "\n".join(lines)
