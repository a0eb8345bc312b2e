"""Turn text cells into the canonical dtypes, remembering which cells could not be read.

A cell that cannot be read as its column's type (``abc`` in a number column, an Excel error such
as ``#NAME?`` or ``#DIV/0!``, ``2.5`` in an integer column, ``31/02/2024`` as a date) becomes
missing in the typed table and is reported as a ``type:<column>`` failure of its row, so the
gate quarantines the row instead of silently losing the value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clm_research.schema import Column, Table
from clm_research.tables import CANONICAL_DTYPES, FALSE_TEXT, TRUE_TEXT, PandasDtype

__all__ = [
    "EXCEL_ERRORS",
    "MISSING_TEXT",
    "parse_column",
    "parse_table",
    "canonical_dtype",
    "empty_text",
]

#: Error values spreadsheets write into cells (and that survive into CSV exports).
EXCEL_ERRORS: frozenset[str] = frozenset(
    {"#NAME?", "#DIV/0!", "#VALUE!", "#REF!", "#N/A", "#NUM!", "#NULL!", "#GETTING_DATA", "#SPILL!"}
)
#: Cell texts read as "no answer" in every column (compared after stripping, case-insensitive).
MISSING_TEXT: frozenset[str] = frozenset({"", "na", "n/a", "nan", "null", "-"})


def canonical_dtype(column: Column) -> PandasDtype:
    """The pandas dtype a canonical column is stored in."""
    return CANONICAL_DTYPES[column.dtype]


def empty_text(s: pd.Series) -> pd.Series:
    """``True`` where a text cell means "no answer" (blank, NA, N/A, null…)."""
    t = s.astype("string").str.strip().str.lower()
    return t.isna() | t.isin(list(MISSING_TEXT))


def _parse_dates(text: pd.Series, formats: Sequence[str]) -> pd.Series:
    out: pd.Series[pd.Timestamp] = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    todo = text.notna()
    for fmt in formats:
        if not todo.any():
            break
        if fmt == "ISO":
            # ISO 8601 dates or timestamps (2024-03-05, 2024-03-05T10:11:12.000Z)
            sub = text[todo]
            iso = sub.str.fullmatch(r"\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?")
            sub = sub[iso.fillna(False)].str.slice(0, 10)
            parsed = pd.to_datetime(sub, format="%Y-%m-%d", errors="coerce")
        else:
            parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        ok = parsed.notna()
        idx = ok[ok].index
        out.loc[idx] = parsed.loc[idx].astype("datetime64[ns]")
        todo.loc[idx] = False
    return out.dt.normalize()


def parse_column(
    text: pd.Series, column: Column, date_formats: Sequence[str] = ("ISO",)
) -> tuple[pd.Series, np.ndarray]:
    """Read a text column as the canonical type of ``column``.

    Parameters
    ----------
    text
        Cells as text (``str`` or missing). Numbers already produced by a mapping are accepted.
    column
        The canonical column (its ``dtype`` decides the parsing).
    date_formats
        For dates: ``strptime`` formats tried in order; ``"ISO"`` means ISO 8601 dates or
        timestamps. Ambiguous day/month formats are never guessed.

    Returns
    -------
    typed, failed
        The typed series (unreadable cells missing) and a boolean array, ``True`` where a
        non-empty cell could not be read.
    """
    dtype = canonical_dtype(column)
    if not (pd.api.types.is_object_dtype(text) or pd.api.types.is_string_dtype(text)):
        # already typed (a mapping produced numbers or booleans)
        typed: pd.Series = text.astype(dtype) if dtype != "datetime64[ns]" else pd.to_datetime(text)
        return typed, np.zeros(len(text), dtype=bool)
    s = text.astype("string").str.strip()
    blank = empty_text(s)
    s = s.mask(blank)
    present = s.notna()
    if dtype == "string":
        return s, np.zeros(len(s), dtype=bool)
    if dtype in ("Int64", "float64"):
        num = pd.to_numeric(s, errors="coerce")
        failed = present & num.isna()
        if dtype == "Int64":
            frac = (num % 1).fillna(0) != 0
            failed = failed | frac
            num = num.mask(frac)
        typed = num.astype("Float64").astype("Int64") if dtype == "Int64" else num.astype("float64")
        return typed, failed.fillna(False).to_numpy(dtype=bool)
    if dtype == "boolean":
        low = s.str.lower()
        typed = pd.Series(pd.NA, index=s.index, dtype="boolean")
        typed[low.isin(list(TRUE_TEXT)).fillna(False)] = True
        typed[low.isin(list(FALSE_TEXT)).fillna(False)] = False
        failed = present & typed.isna()
        return typed, failed.fillna(False).to_numpy(dtype=bool)
    if dtype == "datetime64[ns]":
        typed = _parse_dates(s, date_formats)
        failed = present & typed.isna()
        return typed, failed.fillna(False).to_numpy(dtype=bool)
    raise AssertionError(f"unhandled dtype {dtype}")  # pragma: no cover


def parse_table(
    text: pd.DataFrame,
    table: Table,
    date_formats: Sequence[str] = ("ISO",),
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Parse every canonical column present in ``text``.

    Returns
    -------
    typed, type_failures
        The typed frame (canonical columns in schema order) and ``"type:<column>"`` -> mask
        for the columns where some cell could not be read.
    """
    typed: dict[str, pd.Series] = {}
    failures: dict[str, np.ndarray] = {}
    for col in table.columns:
        if col.name not in text.columns:
            continue
        values, failed = parse_column(text[col.name], col, date_formats)
        typed[col.name] = values.reset_index(drop=True)
        if failed.any():
            failures[f"type:{col.name}"] = failed
    return pd.DataFrame(typed), failures
