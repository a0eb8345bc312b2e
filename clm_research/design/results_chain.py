"""From a research question to the framework's results chain, drawn as a diagram.

The framework (``params/framework.yaml``) links indicators level to level with
``contributes_to``: inputs → activities → outputs → outcomes → impact. A study picks a primary
indicator; :func:`results_chain` collects what feeds it and what it feeds, and
:func:`plot_results_chain` draws those indicators in their levels with the links as arrows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["LEVEL_ORDER", "results_chain", "plot_results_chain"]

LEVEL_ORDER: tuple[str, ...] = ("inputs", "activities", "outputs", "outcomes", "impact")


def _edges(framework: Any) -> list[tuple[str, str]]:
    return [(i.id, j) for i in framework.indicators for j in i.contributes_to]


def results_chain(framework: Any, indicator_ids: Iterable[str]) -> pd.DataFrame:
    """Indicators linked to the given ones through ``contributes_to`` (up- and downstream).

    Parameters
    ----------
    framework
        A :class:`clm_research.framework.Framework`.
    indicator_ids
        Starting indicators (e.g. the study's primary and secondary indicators).

    Returns
    -------
    pandas.DataFrame
        ``id``, ``label``, ``level``, ``role`` (``"selected"``, ``"feeds"`` = upstream,
        ``"fed"`` = downstream), ``type``, ``dataset``, ordered by level.

    Raises
    ------
    KeyError
        For an id that is not in the framework (the message lists the known ids).
    """
    start = list(indicator_ids)
    for i in start:
        framework.indicator(i)
    edges = _edges(framework)
    up: set[str] = set()
    frontier = set(start)
    while frontier:
        nxt = {a for a, b in edges if b in frontier} - up - set(start)
        up |= nxt
        frontier = nxt
    down: set[str] = set()
    frontier = set(start)
    while frontier:
        nxt = {b for a, b in edges if a in frontier} - down - set(start)
        down |= nxt
        frontier = nxt
    rows = []
    for ind in framework.indicators:
        if ind.id in start:
            role = "selected"
        elif ind.id in up:
            role = "feeds"
        elif ind.id in down:
            role = "fed"
        else:
            continue
        rows.append(
            {
                "id": ind.id,
                "label": ind.label,
                "level": ind.level,
                "role": role,
                "type": ind.type,
                "dataset": ind.dataset,
            }
        )
    out = pd.DataFrame(rows)
    out["level"] = pd.Categorical(out["level"], categories=LEVEL_ORDER, ordered=True)
    return out.sort_values(["level", "role", "id"]).reset_index(drop=True)


def plot_results_chain(
    framework: Any,
    indicator_ids: Iterable[str],
    *,
    ax: Axes | None = None,
    wrap: int = 22,
) -> Axes:
    """Draw the results chain around the selected indicators (boxes by level, arrows as links).

    Selected indicators are dark boxes; the indicators feeding them and fed by them are light.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import textwrap

    import matplotlib.pyplot as plt

    chain = results_chain(framework, indicator_ids)
    if ax is None:
        height = max(3.0, 1.1 * chain.groupby("level", observed=False).size().max() + 1)
        _, ax = plt.subplots(figsize=(13, height))
    pos: dict[str, tuple[float, float]] = {}
    for x, level in enumerate(LEVEL_ORDER):
        part = chain[chain["level"] == level]
        ax.text(
            x, 0.6, level.capitalize(), ha="center", va="bottom", fontsize=11, fontweight="bold"
        )
        for k, row in enumerate(part.itertuples()):
            y = -k * 1.1
            pos[str(row.id)] = (x, y)
            selected = row.role == "selected"
            ax.text(
                x,
                y,
                textwrap.fill(str(row.label), wrap),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if selected else "black",
                bbox={
                    "boxstyle": "round,pad=0.4",
                    "facecolor": "#1f4e79" if selected else "#dbe8f5",
                    "edgecolor": "#1f4e79",
                },
            )
    for a, b in _edges(framework):
        if a in pos and b in pos:
            (x0, y0), (x1, y1) = pos[a], pos[b]
            ax.annotate(
                "",
                xy=(x1 - 0.36, y1),
                xytext=(x0 + 0.36, y0),
                arrowprops={"arrowstyle": "->", "color": "#555555", "lw": 0.8},
            )
    lowest = min((y for _, y in pos.values()), default=0.0)
    ax.set_xlim(-0.6, len(LEVEL_ORDER) - 0.4)
    ax.set_ylim(lowest - 0.8, 1.2)
    ax.axis("off")
    return ax
