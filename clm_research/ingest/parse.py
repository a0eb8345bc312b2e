"""Turn text cells into the canonical dtypes, remembering which cells could not be read.

A cell that cannot be read as its column's type (``abc`` in a number column, an Excel error such
as ``#NAME?`` or ``#DIV/0!``, ``2.5`` in an integer column, ``31/02/2024`` as a date) becomes
missing in the typed table and is reported as a ``type:<column>`` failure of its row, so the
gate quarantines the row instead of silently losing the value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from clm_research.errors import DataQualityError
from clm_research.schema import Column, Table
from clm_research.tables import CANONICAL_DTYPES, FALSE_TEXT, TRUE_TEXT, PandasDtype

__all__ = [
    "EXCEL_ERRORS",
    "MISSING_TEXT",
    "parse_column",
    "parse_table",
    "canonical_dtype",
    "empty_text",
    "check_mojibake",
    "ambiguous_dates",
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


def _parse_one(text: pd.Series, fmt: str) -> pd.Series:
    if fmt == "ISO":
        # ISO 8601 dates or timestamps (2024-03-05, 2024-03-05T10:11:12.000Z)
        iso = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?")
        sub = text.where(iso.fillna(False)).str.slice(0, 10)
        return pd.to_datetime(sub, format="%Y-%m-%d", errors="coerce")
    return pd.to_datetime(text, format=fmt, errors="coerce")


def ambiguous_dates(
    text: pd.Series, formats: Sequence[str]
) -> tuple[pd.Series, list[tuple[str, str, str]]]:
    """Parse ``text`` with every format; report values two formats read as different dates.

    Returns
    -------
    parsed, conflicts
        The dates (first format that reads each value) and up to five
        ``(value, format a, format b)`` where both formats read the value differently.
    """
    out: pd.Series = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    conflicts: list[tuple[str, str, str]] = []
    seen: list[tuple[str, pd.Series]] = []
    for fmt in formats:
        parsed = _parse_one(text, fmt).astype("datetime64[ns]").dt.normalize()
        for other, prev in seen:
            clash = (parsed.notna() & prev.notna() & (parsed != prev)).to_numpy()
            for v in pd.unique(text[clash])[: 5 - len(conflicts)]:
                conflicts.append((str(v), other, fmt))
        seen.append((fmt, parsed))
        out = out.fillna(parsed) if len(seen) > 1 else parsed
    return out, conflicts


def _parse_dates(text: pd.Series, formats: Sequence[str]) -> pd.Series:
    if len(formats) == 1:  # the common case: nothing to compare
        return _parse_one(text, formats[0]).astype("datetime64[ns]").dt.normalize()
    out, _ = ambiguous_dates(text, formats)
    return out


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
        if len(date_formats) > 1:
            typed, conflicts = ambiguous_dates(s, date_formats)
            if conflicts:
                examples = "; ".join(f"{v!r} is {a} and {b}" for v, a, b in conflicts)
                raise DataQualityError(
                    f"column {column.name}: dates read differently by two declared formats "
                    f"({examples}) [rule: ambiguous_date]. Fix: keep only the format the "
                    "export uses in date_formats (day/month order is never guessed)."
                )
        else:
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


#: Mojibake: UTF-8 bytes shown as Windows-1252/Latin-1 (``â€™``, ``Ã©``, ``Â ``).
_MOJIBAKE = re.compile(r"[ÂÃ][\u0080-\u00bf\u0152-\u0178\u2018-\u203a\u20ac\u2122]|â€")
#: C1 control characters: Windows-1252 text (’ “ ” – …) decoded as Latin-1.
_C1 = re.compile(r"[\u0080-\u009f]")


def _repairs(value: str) -> str | None:
    for enc in ("cp1252", "latin-1"):
        try:
            return value.encode(enc).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return None


def check_mojibake(frame: pd.DataFrame, path: Path | str, declared: str | None = None) -> None:
    """Refuse text that decoded but is visibly mis-decoded, naming the likely right encoding.

    Two signatures are recognised: UTF-8 read as Windows-1252/Latin-1 (``Ã©`` for ``é``,
    ``â€™`` for ``’``; confirmed by re-decoding the cell) and C1 control characters, which
    Windows-1252 punctuation becomes when read as Latin-1. Distinct values are checked, so
    a long export costs little.

    Raises
    ------
    DataQualityError
        Rule ``encoding``, with the column, an example and the encoding to declare.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for col in frame.columns:
        s = frame[col]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        # vectorised pre-filter: only cells with a non-ASCII character can be mojibake
        try:
            texts = pa.array(s, type=pa.string(), from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            continue  # values a reader produced as numbers: no text to check
        ascii_ = pc.string_is_ascii(texts).fill_null(True)
        if pc.all(ascii_).as_py():
            continue
        wide = pc.invert(ascii_).to_numpy(zero_copy_only=False)
        values = [v for v in pd.unique(s[wide]) if isinstance(v, str)]
        for v in values:
            if _MOJIBAKE.search(v) and (fixed := _repairs(v)) is not None and fixed != v:
                raise DataQualityError(
                    f"{path}: column {col!r}: text looks mis-decoded ({v[:60]!r}, likely "
                    f"{fixed[:60]!r}) [rule: encoding]. The file is most likely UTF-8 read as "
                    f"{declared or 'Windows-1252'}. Fix: set `encoding: utf-8` in the mapping, or "
                    "re-export it as UTF-8 from the original (it may have been re-saved)."
                )
            if _C1.search(v):
                try:
                    fixed = v.encode("latin-1").decode("cp1252")
                except (UnicodeEncodeError, UnicodeDecodeError):
                    fixed = v
                raise DataQualityError(
                    f"{path}: column {col!r}: control characters in the text ({v[:60]!r}, "
                    f"likely {fixed[:60]!r}) [rule: encoding]. The file is most likely "
                    "Windows-1252 (cp1252) read as Latin-1. Fix: set `encoding: cp1252` in the "
                    "mapping."
                )
