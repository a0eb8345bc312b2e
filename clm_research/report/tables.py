"""Tables a report publishes: written next to the report as CSV and Parquet, full precision.

Every table a notebook shows is also saved (:func:`save_table`) so readers can reuse the
numbers; how a number is *printed* is :mod:`clm_research.report.format`'s one rule.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clm_research.files import write_csv, write_parquet

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SUPPRESSED", "save_table", "format_value"]

#: How a suppressed cell is shown in every published table.
SUPPRESSED = "suppressed"


def save_table(df: pd.DataFrame, name: str, output_dir: str | Path = ".") -> pd.DataFrame:
    """Write ``df`` as ``<output_dir>/tables/<name>.csv`` and ``.parquet``; return it.

    An empty ``output_dir`` (the notebooks' default when opened by hand) writes nothing.

    Rows keep their (deterministic) order, the index is dropped and floats are written with
    12 significant digits, so identical inputs give byte-identical CSV files.
    """
    if output_dir in ("", None):  # interactive use: show, do not write
        return df
    folder = Path(output_dir) / "tables"
    out = df.reset_index(drop=True)
    write_csv(folder / f"{name}.csv", out)
    flat = out.copy()
    for c in flat.columns:  # Parquet needs one type per column
        if flat[c].dtype == object:
            flat[c] = flat[c].map(
                lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            )
    write_parquet(folder / f"{name}.parquet", flat)
    return df


def format_value(value: Any, kind: str, digits: int = 1) -> str:
    """A number as a report prints it (kept for callers of the earlier API).

    Delegates to :class:`clm_research.report.format.IndicatorFormat` (the one rule; ``digits``
    fixes the decimals); a missing value is an empty string, as before.
    """
    from clm_research.report.format import IndicatorFormat, is_missing

    if is_missing(value):
        return ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    fixed = None if kind in ("proportion", "count") else digits
    return IndicatorFormat(kind, "", abs(v), fixed).value(v)
