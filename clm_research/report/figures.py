"""Figures of a report: one style, one size, colour-blind-safe colours and alt text from content.

Every figure a report shows is a :class:`ReportFigure`: the matplotlib figure drawn in
:func:`report_style` (text at least :data:`MIN_FONT_PT` points at the printed size), at most
:data:`FIGURE_WIDTH_IN` inches wide (the text width of an A4 page, so it is shown at its
drawn size on screen and on paper), with an alternative text built from the numbers it shows
and an optional caption. In a notebook it displays as a PNG whose output metadata carry the
alt text and the display width (read by :mod:`clm_research.report.html`).

Colours: the Okabe & Ito palette (Okabe M, Ito K. Color Universal Design, 2008), distinct under
the common colour-vision deficiencies, with markers and line styles as a second cue.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FIGURE_WIDTH_IN",
    "MIN_FONT_PT",
    "OKABE_ITO",
    "ARM_STYLE",
    "ReportFigure",
    "report_style",
    "new_figure",
    "pyplot_axes",
    "percent_axis",
    "arm_label",
    "wrap",
]

#: Widest figure (inches): the text width of an A4 page with 14 mm margins, minus a little.
FIGURE_WIDTH_IN = 7.0

#: Smallest text in a figure at its printed size (points).
MIN_FONT_PT = 9.0

#: Resolution of the embedded PNG (pixels per inch); shown at 96 CSS pixels per inch.
DPI = 150

#: Okabe–Ito colours.
OKABE_ITO: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}

#: How the two arms are drawn everywhere: colour, marker, line style and the legend's words.
ARM_STYLE: dict[str, dict[str, str]] = {
    "clm": {"color": OKABE_ITO["blue"], "marker": "o", "linestyle": "-", "label": "CLM facilities"},
    "comparison": {
        "color": OKABE_ITO["orange"],
        "marker": "s",
        "linestyle": "--",
        "label": "Comparison facilities (never under CLM)",
    },
}

_RC: Any = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5,
    "legend.fontsize": 9.5,
    "legend.title_fontsize": 9.5,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "savefig.dpi": DPI,
}


def wrap(text: str, width: int) -> str:
    """``text`` on lines of at most ``width`` characters, never splitting a word or a
    hyphenated word ("viral-load", "person-months")."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False))


def arm_label(value: Any) -> str:
    """The legend words of a ``clm_arm`` value (``clm`` → "CLM facilities")."""
    key = str(value).lower()
    return ARM_STYLE.get(key, {}).get("label", str(value))


@contextmanager
def report_style() -> Iterator[None]:
    """Matplotlib settings of every report figure (font sizes ≥ :data:`MIN_FONT_PT`)."""
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        yield


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    *,
    height: float = 3.6,
    width: float = FIGURE_WIDTH_IN,
    **kwargs: Any,
) -> tuple[Figure, Any]:
    """A figure of the report's width (no pyplot state), with ``nrows × ncols`` axes.

    Returns the figure and the axes (one ``Axes`` or an array, as ``subplots`` does).
    """
    from matplotlib.figure import Figure

    with report_style():
        fig = Figure(figsize=(min(width, FIGURE_WIDTH_IN), height), layout="constrained")
        axes = fig.subplots(nrows, ncols, **kwargs)
    return fig, axes


def pyplot_axes(height: float = 3.8) -> tuple[Figure, Axes]:
    """One axes on a new report-size figure (kept for callers of the earlier API)."""
    fig, ax = new_figure(height=height)
    return fig, ax


def percent_axis(
    ax: Axes, axis: str = "y", *, scale: float = 1.0, decimals: int | None = 0
) -> None:
    """Show a share (0–1, or 0–100 with ``scale=100``) as a percentage on ``axis``
    (``decimals=None``: as many as the axis range needs, e.g. 3.5%, 4.0%)."""
    from matplotlib.ticker import PercentFormatter

    fmt = PercentFormatter(xmax=scale, decimals=decimals)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _restyle(fig: Figure) -> None:
    """Raise any text below the minimum size (e.g. set by a library's plot method)."""
    from matplotlib.text import Text

    for t in fig.findobj(Text):
        if isinstance(t, Text) and t.get_text() and float(t.get_fontsize()) < MIN_FONT_PT:
            t.set_fontsize(MIN_FONT_PT)


@dataclass
class ReportFigure:
    """A report figure: the drawing, its alternative text and an optional caption.

    Parameters
    ----------
    figure
        The matplotlib figure.
    alt
        What the figure shows, in words and numbers (for screen readers and when images are
        off); required, never a placeholder.
    caption
        Plain text shown under the figure (e.g. the median and its CI).
    """

    figure: Figure
    alt: str
    caption: str = ""

    def __post_init__(self) -> None:
        if not self.alt.strip():
            raise ValueError("a report figure needs an alternative text describing its content")
        w, _ = self.figure.get_size_inches()
        if w > FIGURE_WIDTH_IN + 1e-6:
            self.figure.set_size_inches(FIGURE_WIDTH_IN, self.figure.get_size_inches()[1])
        _restyle(self.figure)

    def png(self) -> bytes:
        """The figure as PNG bytes at :data:`DPI`."""
        buf = io.BytesIO()
        with report_style():
            self.figure.savefig(buf, format="png", dpi=DPI, facecolor="white")
        return buf.getvalue()

    @property
    def width_px(self) -> int:
        """Display width in CSS pixels (96 per inch: the drawn size)."""
        return int(round(self.figure.get_size_inches()[0] * 96))

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        data = {
            "image/png": base64.b64encode(self.png()).decode("ascii"),
            "text/plain": self.alt,
        }
        meta = {"image/png": {"alt": self.alt, "width": self.width_px}}
        return data, meta

    def _ipython_display_(self) -> None:
        import html

        from IPython.display import HTML, display

        data, meta = self._repr_mimebundle_()
        display(data, raw=True, metadata=meta)
        if self.caption:
            display(HTML(f'<p class="clm-caption">{html.escape(self.caption)}</p>'))
