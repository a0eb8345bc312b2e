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
    """The results-chain diagram, boxes coloured by their status in ``period``, with its
    alternative text (:func:`chain_alt_text`)."""
    from clm_research.report.figures import ReportFigure

    status = progress_status(country, period)
    result = chain_result(country, seed)
    return ReportFigure(result.plot(status=status), result.alt_text(status=status))


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
    """The untested links as a Markdown list ("not collected" where a table or column is
    absent), or a sentence saying every declared link was tested."""
    result = chain_result(country, seed)
    links = result.links[result.links["status"] != "estimated"]
    if links.empty:
        return "Every link of the results chain could be tested with this country's data."
    lines = ["Links that could not be tested here, and why:"]
    for up, down, reason in zip(
        links["upstream_label"], links["downstream_label"], links["reason"], strict=True
    ):
        lines.append(f"- {up} → {down}: {reason}")
    return "\n".join(lines)
