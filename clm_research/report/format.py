"""The one formatting module: how every number, interval, p-value and table of a report is shown.

Every table a report prints is a :class:`PresentationTable` built with the rules here, so the
same number looks the same everywhere:

* proportions as percentages (``72.0%``), their differences in percentage points (``+5.8 pp``);
* decimals chosen once per indicator from its type and magnitude (:class:`IndicatorFormat`) and
  used for its baseline, latest value, target and effect alike; small rates rescaled (per
  1,000 person-months rather than ``0.013`` per person-month), the unit saying so;
* p-values as ``<0.001``, ``0.004``, ``0.03`` (journal style: three decimals below 0.01, two
  above);
* no row index, no ``NaN``: a missing cell is a dash with a footnote saying why (not
  evaluated, suppressed, no comparison facilities, …);
* labelled columns with their units, indicator labels never cut (cells wrap).

The numbers saved for reuse (:func:`clm_research.report.tables.save_table`) are never these
strings: the CSV and Parquet files keep full precision.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

    from clm_research.framework import Indicator

__all__ = [
    "DASH",
    "is_missing",
    "format_number",
    "format_p",
    "format_percent",
    "format_count",
    "IndicatorFormat",
    "Cell",
    "Column",
    "PresentationTable",
    "table_from_frame",
    "ratio_text",
    "show",
    "Record",
    "records",
]

#: What a missing cell shows (with a footnote marker saying why).
DASH = "–"

_MARKERS = "abcdefghijklmnopqrstuvwxyz"

Align = Literal["left", "right", "center"]


def is_missing(value: Any) -> bool:
    """``None``, ``pd.NA``, ``NaN``, infinities and empty strings are missing."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return True
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def format_number(value: float, decimals: int, *, sign: bool = False) -> str:
    """``value`` with ``decimals`` decimals and thousands separators (``+`` when ``sign``).

    A value that rounds to zero is shown without a sign (``0.0``, never ``-0.0``).
    """
    v = float(value)
    text = f"{v:,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        return f"{0:.{decimals}f}"
    if sign and v > 0:
        return "+" + text
    return text


def format_p(p: Any) -> str:
    """A p-value as a journal prints it: ``<0.001``, ``0.004``, ``0.03``, ``0.43``.

    Three decimals below 0.01 (so 0.004 is not shown as 0.00), two from 0.01 up; a missing
    p-value is :data:`DASH`.
    """
    if is_missing(p):
        return DASH
    v = float(p)
    if v < 0.001:
        return "<0.001"
    if v < 0.01:
        return f"{v:.3f}"
    if v > 0.99:
        return ">0.99"
    return f"{v:.2f}"


def format_percent(share: float, decimals: int = 1) -> str:
    """A share (0–1) as a percentage: ``0.4528`` → ``45.3%``."""
    return f"{format_number(100 * float(share), decimals)}%"


def format_count(value: Any) -> str:
    """A count with thousands separators (``1,800``); missing → :data:`DASH`."""
    if is_missing(value):
        return DASH
    return f"{int(round(float(value))):,}"


def _decimals_for(magnitude: float) -> int:
    """Decimals that keep two to three significant digits at this magnitude."""
    m = abs(magnitude)
    if not math.isfinite(m) or m >= 100:
        return 0
    if m >= 1:
        return 1
    if m >= 0.1:
        return 2
    return 3


def _plural_unit(unit: str) -> str:
    """``person-month on ART`` → ``person-months on ART`` (first word pluralised)."""
    head, _, tail = unit.partition(" ")
    if not head.endswith("s"):
        head += "s"
    return f"{head} {tail}".strip()


@dataclass(frozen=True)
class IndicatorFormat:
    """How one indicator's values are shown: scale, decimals and unit, chosen once.

    Parameters
    ----------
    kind
        The indicator type (``proportion``, ``mean``, ``median``, ``rate``, ``count``,
        ``duration``) or an effect scale (``ratio``).
    unit
        The framework's unit (``minutes``, ``per person-month on ART``); empty for none.
    reference
        A typical value of the indicator (e.g. its latest estimate) that sets the magnitude.
    """

    kind: str
    unit: str = ""
    reference: float = math.nan
    digits: int | None = None

    @classmethod
    def of(cls, ind: Indicator, values: Iterable[Any] = ()) -> IndicatorFormat:
        """The format of a framework indicator, its magnitude taken from ``values``."""
        finite = [abs(float(v)) for v in values if not is_missing(v)]
        return cls(ind.type, ind.unit, max(finite) if finite else math.nan)

    # -- scale -------------------------------------------------------------------------
    @property
    def multiplier(self) -> float:
        """100 for proportions (percent); 1,000 for rates below 0.1 per unit; else 1."""
        if self.kind == "proportion":
            return 100.0
        if self.kind == "rate" and math.isfinite(self.reference) and 0 < self.reference < 0.1:
            return 1000.0
        return 1.0

    @property
    def decimals(self) -> int:
        """Decimals of every value of this indicator (percentages: one)."""
        if self.digits is not None:
            return self.digits
        if self.kind == "proportion":
            return 1
        if self.kind == "count":
            return 0
        if self.kind == "ratio":
            return 2
        return _decimals_for(self.reference * self.multiplier)

    @property
    def unit_text(self) -> str:
        """The unit as shown in headers and labels (``%``, ``per 1,000 person-months on ART``)."""
        if self.kind == "proportion":
            return "%"
        if self.multiplier == 1000.0:
            rest = self.unit.removeprefix("per ").strip() or "unit"
            return f"per 1,000 {_plural_unit(rest)}"
        return self.unit

    @property
    def effect_unit(self) -> str:
        """The unit of a difference: percentage points for proportions, else the unit."""
        return "percentage points" if self.kind == "proportion" else self.unit_text

    def label(self, text: str) -> str:
        """An indicator label with its unit, rescaled when the label names the unit.

        ``Treatment interruptions per person-month on ART`` becomes ``Treatment interruptions
        per 1,000 person-months on ART``; ``Median waiting time`` becomes ``Median waiting time
        (minutes)``; a proportion gets ``(%)``. A unit the label already states is not
        repeated.
        """
        unit = self.unit_text
        if self.multiplier == 1000.0 and self.unit and self.unit in text:
            return text.replace(self.unit, unit)
        low = text.lower()
        if not unit or unit.lower() in low:
            return text
        if self.kind == "rate" and " per " in low:  # "Condoms distributed per condom required"
            return text
        if any(f"({p})" in text for p in re.findall(r"\(([^)]*)\)", unit)):
            return text  # "Mean satisfaction (1-5)" already gives the scale of "points (1-5)"
        return f"{text} ({unit})"

    # -- values ------------------------------------------------------------------------
    def value(self, v: Any) -> str:
        """A level (estimate, target): ``72.0%``, ``74.0``, ``13.0`` (rescaled rate)."""
        if is_missing(v):
            return DASH
        x = float(v) * self.multiplier
        text = format_number(x, self.decimals)
        return f"{text}%" if self.kind == "proportion" else text

    def interval(self, low: Any, high: Any, *, sign: bool = False) -> str:
        """``59.0% to 61.3%`` (levels) or ``+1.2 to +10.4`` (differences, ``sign=True``)."""
        if is_missing(low) or is_missing(high):
            return DASH
        if sign:
            lo, hi = (
                format_number(float(b) * self.multiplier, self.decimals, sign=True)
                for b in (low, high)
            )
            return f"{lo} to {hi}"
        return f"{self.value(low)} to {self.value(high)}"

    def for_effect(self, *values: Any) -> IndicatorFormat:
        """The format of this indicator's effects: same scale and unit, and enough decimals
        for the effect's own magnitude (never fewer than the levels' decimals), so a small
        effect is not printed as ``+0.0 (-0.0 to +0.0)``."""
        finite = [abs(float(v)) * self.multiplier for v in values if not is_missing(v)]
        if not finite or self.kind == "proportion":
            return self
        needed = _decimals_for(max(finite))
        return IndicatorFormat(self.kind, self.unit, self.reference, max(self.decimals, needed))

    def difference(self, v: Any, *, with_unit: bool = True) -> str:
        """A difference: ``+5.8 pp`` for proportions, ``-13.8 minutes`` otherwise."""
        if is_missing(v):
            return DASH
        text = format_number(float(v) * self.multiplier, self.decimals, sign=True)
        if not with_unit:
            return text
        if self.kind == "proportion":
            return f"{text} pp"
        return f"{text} {self.unit_text}".strip()

    def effect(self, est: Any, low: Any, high: Any) -> str:
        """A difference with its interval: ``+5.8 pp (+1.2 to +10.4)`` (see :meth:`for_effect`)."""
        if is_missing(est):
            return DASH
        f = self.for_effect(est, low, high)
        return f"{f.difference(est)} ({f.interval(low, high, sign=True)})"


def ratio_text(est: Any, low: Any, high: Any, decimals: int = 2) -> str:
    """A ratio with its interval: ``0.78 (0.69 to 0.88)``."""
    if is_missing(est):
        return DASH
    if is_missing(low) or is_missing(high):
        return format_number(float(est), decimals)
    return (
        f"{format_number(float(est), decimals)} ({format_number(float(low), decimals)} to "
        f"{format_number(float(high), decimals)})"
    )


class Record:
    """A table row's fields as attributes (``r.estimate``), each typed ``Any`` like a cell.

    Rows of a data frame read through :func:`records` rather than ``itertuples``, whose
    fields a type checker sees as a union of every cell type.
    """

    def __init__(self, record: dict[Any, Any]) -> None:
        self.__dict__.update({str(k): v for k, v in record.items()})

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def records(frame: pd.DataFrame) -> list[Record]:
    """The rows of ``frame`` as :class:`Record` objects, in order."""
    return [Record(r) for r in frame.to_dict("records")]


# ---------------------------------------------------------------------------- tables
@dataclass
class Cell:
    """A table cell: its text, an optional CSS class (e.g. ``rag-red``) and footnote markers."""

    text: str
    css: str = ""
    markers: tuple[str, ...] = ()
    title: str = ""

    def plain(self) -> str:
        return self.text + "".join(self.markers)

    def html(self) -> str:
        body = html.escape(self.text)
        if self.markers:
            body += "".join(f"<sup>{html.escape(m)}</sup>" for m in self.markers)
        return body


@dataclass(frozen=True)
class Column:
    """A column: its header (with the unit), alignment and whether it may wrap."""

    header: str
    align: Align = "right"
    wrap: bool = False
    width: str = ""


@dataclass
class _Group:
    title: str


@dataclass
class PresentationTable:
    """A table as a report prints it: headers with units, formatted cells, footnotes, no index.

    Build it with :meth:`add_row` (cells as text or :class:`Cell`), :meth:`missing` (a dash
    with a footnote giving the reason; identical reasons share one marker), :meth:`group` (a
    row spanning the table, e.g. "Impact") and :meth:`note` (a general note). It renders as
    HTML in notebooks and reports (``_repr_html_``) and as text elsewhere.
    """

    columns: list[Column]
    caption: str = ""
    css: str = ""
    notes: list[str] = field(default_factory=list)
    rows: list[list[Cell] | _Group] = field(default_factory=list)
    footnotes: dict[str, str] = field(default_factory=dict)  # reason -> marker

    # -- building ----------------------------------------------------------------------
    def marker(self, reason: str) -> str:
        """The footnote marker of ``reason`` (a new letter for a new reason)."""
        if reason not in self.footnotes:
            self.footnotes[reason] = _MARKERS[len(self.footnotes) % len(_MARKERS)]
        return self.footnotes[reason]

    def missing(self, reason: str, text: str = DASH, css: str = "missing") -> Cell:
        """A dash (or ``text``) with a footnote marker for ``reason``."""
        return Cell(text, css=css, markers=(self.marker(reason),))

    def add_row(self, cells: Sequence[str | Cell]) -> None:
        """Append one row; every cell must be text or a :class:`Cell` (no raw numbers)."""
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells, the table {len(self.columns)} columns")
        row = []
        for c in cells:
            if isinstance(c, Cell):
                row.append(c)
            elif isinstance(c, str):
                if not c.strip() or c.strip() == DASH:
                    row.append(self.missing("No value in the data for this cell."))
                else:
                    row.append(Cell(c))
            else:
                raise TypeError(f"cells are text or Cell, got {type(c).__name__}: format it first")
        self.rows.append(row)

    def group(self, title: str) -> None:
        """A full-width row introducing the rows below it (e.g. "Outcomes")."""
        self.rows.append(_Group(title))

    def note(self, text: str) -> None:
        """A general note printed under the table."""
        self.notes.append(text)

    # -- reading -----------------------------------------------------------------------
    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def data_rows(self) -> list[list[Cell]]:
        return [r for r in self.rows if not isinstance(r, _Group)]

    def to_frame(self) -> pd.DataFrame:
        """The table as text, one column per header (group rows left out)."""
        import pandas as pd

        return pd.DataFrame(
            [[c.plain() for c in r] for r in self.data_rows()], columns=self.headers
        )

    def split(self, key_columns: int, max_columns: int) -> list[PresentationTable]:
        """Split a wide table into tables of at most ``max_columns`` columns.

        The first ``key_columns`` columns (e.g. the facility) are repeated in every part;
        footnotes and notes go with every part that uses them.
        """
        rest = list(range(key_columns, len(self.columns)))
        per = max(1, max_columns - key_columns)
        n_parts = max(1, math.ceil(len(rest) / per))
        # balanced: 16 columns in 4 parts of 4 (not 5+5+5+1), 17 as 5+4+4+4
        sizes = [len(rest) // n_parts + (k < len(rest) % n_parts) for k in range(n_parts)]
        starts = [sum(sizes[:k]) for k in range(n_parts)]
        chunks = [rest[a : a + n] for a, n in zip(starts, sizes, strict=True)] or [[]]
        parts = []
        for k, chunk in enumerate(chunks):
            idx = list(range(key_columns)) + chunk
            cap = self.caption
            if len(chunks) > 1 and cap:
                cap = f"{cap} (part {k + 1} of {len(chunks)})"
            part = PresentationTable([self.columns[i] for i in idx], caption=cap, css=self.css)
            for r in self.rows:
                if isinstance(r, _Group):
                    part.rows.append(r)
                    continue
                cells = [r[i] for i in idx]
                for c in cells:
                    for m in c.markers:
                        reason = next(k for k, v in self.footnotes.items() if v == m)
                        part.footnotes.setdefault(reason, m)
                part.rows.append(cells)
            part.notes = list(self.notes)
            parts.append(part)
        return parts

    # -- rendering ---------------------------------------------------------------------
    def html(self) -> str:
        """The table as a self-contained HTML block (``<table class="clm-table">`` + notes)."""
        esc = html.escape
        cls = " ".join(filter(None, ["clm-table", self.css]))
        out = [f'<div class="clm-table-block"><table class="{cls}">']
        if self.caption:
            out.append(f"<caption>{esc(self.caption)}</caption>")
        out.append("<thead><tr>")
        for c in self.columns:
            style = f' style="width:{esc(c.width)}"' if c.width else ""
            out.append(f'<th class="al-{c.align}" scope="col"{style}>{esc(c.header)}</th>')
        out.append("</tr></thead><tbody>")
        n = len(self.columns)
        for r in self.rows:
            if isinstance(r, _Group):
                out.append(
                    f'<tr class="group"><th colspan="{n}" scope="colgroup">{esc(r.title)}</th></tr>'
                )
                continue
            out.append("<tr>")
            for cell, col in zip(r, self.columns, strict=True):
                classes = " ".join(
                    filter(None, [f"al-{col.align}", "wrap" if col.wrap else "", cell.css])
                )
                title = f' title="{esc(cell.title)}"' if cell.title else ""
                out.append(f'<td class="{classes}"{title}>{cell.html()}</td>')
            out.append("</tr>")
        out.append("</tbody></table>")
        notes = [
            f"<p><sup>{esc(m)}</sup> {esc(reason)}</p>"
            for reason, m in sorted(self.footnotes.items(), key=lambda kv: kv[1])
        ] + [f"<p>{esc(t)}</p>" for t in self.notes]
        if notes:
            out.append(f'<div class="clm-notes">{"".join(notes)}</div>')
        out.append("</div>")
        return "".join(out)

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        rows = [self.headers] + [[c.plain() for c in r] for r in self.data_rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.columns))]
        lines = [self.caption] if self.caption else []
        for k, r in enumerate(rows):
            lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        for reason, m in sorted(self.footnotes.items(), key=lambda kv: kv[1]):
            lines.append(f"{m} {reason}")
        lines += self.notes
        return "\n".join(lines)


_NUMERIC_TEXT = re.compile(r"^[+-]?[\d,]*\.?\d+%?$")


def table_from_frame(
    df: pd.DataFrame,
    headers: dict[str, str] | None = None,
    *,
    caption: str = "",
    formats: dict[str, Any] | None = None,
    missing_reason: str = "Not recorded.",
    wrap: Sequence[str] = (),
) -> PresentationTable:
    """A :class:`PresentationTable` from a small data frame of text and numbers.

    Parameters
    ----------
    df
        The data (its index is ignored).
    headers
        Column → header with unit; only these columns are shown, in this order (default all,
        their names as headers).
    formats
        Column → callable turning a value into text (default: counts for integers, two
        decimals for other numbers, text as is).
    missing_reason
        Footnote of a missing cell.
    wrap
        Columns whose text may wrap (labels); they are left-aligned.
    """
    import pandas as pd

    headers = headers or {c: str(c) for c in df.columns}
    formats = formats or {}
    cols = []
    for c, h in headers.items():
        s = df[c]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        cols.append(Column(h, align="right" if numeric else "left", wrap=c in wrap or not numeric))
    t = PresentationTable(cols, caption=caption)
    for rec in df[list(headers)].itertuples(index=False):
        cells: list[str | Cell] = []
        for c, v in zip(headers, rec, strict=True):
            if c in formats:
                text = formats[c](v)
            elif is_missing(v):
                text = ""
            elif isinstance(v, bool):
                text = "yes" if v else "no"
            elif isinstance(v, int) or (
                isinstance(v, float) and float(v).is_integer() and abs(v) >= 1
            ):
                text = format_count(v)
            elif isinstance(v, float):
                text = format_number(v, 2)
            else:
                text = str(v)
            cells.append(t.missing(missing_reason) if text in ("", DASH) else text)
        t.add_row(cells)
    return t


def show(*objects: Any) -> None:
    """Display report objects in a notebook: text as Markdown, lists one by one, the rest as is.

    A cell whose last value is a plain string would show only a Python repr (which reports
    leave out); this displays every piece as the reader should see it.
    """
    from IPython.display import Markdown, display

    for obj in objects:
        if obj is None or (isinstance(obj, str) and not obj.strip()):
            continue
        if isinstance(obj, str):
            display(Markdown(obj))
        elif isinstance(obj, list | tuple):
            show(*obj)
        else:
            display(obj)
