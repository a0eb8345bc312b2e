"""Reading and writing canonical tables with the data model's types.

Types: ``string``/``category`` → pandas ``string``; ``integer`` → ``Int64``; ``float`` →
``float64``; ``boolean`` → ``boolean``; ``date`` → ``datetime64`` (midnight). Columns outside
the data model are not carried into canonical tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from clm_research.errors import DataQualityError
from clm_research.paths import display_path, processed_dir
from clm_research.schema import TABLES, Table

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CANONICAL_DTYPES",
    "TRUE_TEXT",
    "FALSE_TEXT",
    "coerce",
    "read_country",
    "write_tables",
    "empty_table",
    "pandas_dtype",
    "StagedTable",
]

#: The pandas dtype each logical type of the data model is stored in.
#: The pandas dtypes canonical tables are stored in.
PandasDtype = Literal["string", "Int64", "float64", "boolean", "datetime64[ns]"]

CANONICAL_DTYPES: dict[str, PandasDtype] = {
    "string": "string",
    "category": "string",
    "integer": "Int64",
    "float": "float64",
    "boolean": "boolean",
    "date": "datetime64[ns]",
}
#: Texts read as yes / no in boolean columns (compared after stripping, lower case).
TRUE_TEXT: frozenset[str] = frozenset({"true", "1", "yes", "y", "t"})
FALSE_TEXT: frozenset[str] = frozenset({"false", "0", "no", "n", "f"})


def pandas_dtype(dtype: str) -> PandasDtype:
    """The pandas dtype used for a data-model type."""
    return CANONICAL_DTYPES[dtype]


def _to_boolean(s: pd.Series, where: str) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_bool_dtype(s):
        return s.astype("boolean")
    if pd.api.types.is_numeric_dtype(s):
        bad = s.notna() & ~s.isin([0, 1])
        if bad.any():
            raise DataQualityError(f"{where}: {s[bad].iloc[0]!r} is not a yes/no value (0/1)")
        return s.astype("boolean")
    text = s.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[text.isin(TRUE_TEXT).fillna(False)] = True
    out[text.isin(FALSE_TEXT).fillna(False)] = False
    bad = text.notna() & (text != "") & out.isna()
    if bad.any():
        raise DataQualityError(
            f"{where}: {s[bad].iloc[0]!r} is not a yes/no value (true/false, yes/no, 1/0)"
        )
    return out


def coerce(
    frame: pd.DataFrame, table_name: str, source: str = "", *, add_missing: bool = True
) -> pd.DataFrame:
    """Return ``frame`` restricted to the data model's columns, with canonical dtypes.

    Parameters
    ----------
    frame
        Rows of table ``table_name``.
    table_name
        A canonical table name.
    source
        File name for error messages.
    add_missing
        Add absent optional columns empty (the generator's and tests' convenience); ``False``
        keeps them absent, as processed tables are read: an absent column was not collected.

    Raises
    ------
    DataQualityError
        A required column is missing, or a value cannot be read as the column's type
        (the message names the column and the first offending value).
    """
    import pandas as pd

    table = TABLES[table_name]
    where_base = f"{source or table_name}"
    missing = [c.name for c in table.columns if c.required and c.name not in frame.columns]
    if missing:
        raise DataQualityError(
            f"{where_base}: required column(s) missing: {', '.join(missing)} "
            f"(rule: not_null; table {table_name!r} needs {', '.join(table.column_names)})"
        )
    out = pd.DataFrame(index=frame.index)
    for col in table.columns:
        if not add_missing and col.name not in frame.columns:
            continue
        where = f"{where_base}, column {col.name!r}"
        s = frame[col.name] if col.name in frame.columns else pd.Series(pd.NA, index=frame.index)
        if col.dtype in ("string", "category"):
            out[col.name] = s.astype("string")
        elif col.dtype == "integer":
            num = pd.to_numeric(s, errors="coerce")
            bad = s.notna() & (num.isna() | (num.notna() & (num != num.round())))
            if bad.any():
                raise DataQualityError(
                    f"{where}: {s[bad].iloc[0]!r} is not a whole number (rule: type)"
                )
            out[col.name] = num.astype("Int64")
        elif col.dtype == "float":
            num = pd.to_numeric(s, errors="coerce")
            bad = s.notna() & num.isna()
            if bad.any():
                raise DataQualityError(f"{where}: {s[bad].iloc[0]!r} is not a number (rule: type)")
            out[col.name] = num.astype("float64")
        elif col.dtype == "boolean":
            out[col.name] = _to_boolean(s, where)
        elif col.dtype == "date":
            d = (
                pd.to_datetime(s, errors="coerce", format="mixed")
                if s.dtype == object or pd.api.types.is_string_dtype(s)
                else pd.to_datetime(s, errors="coerce")
            )
            bad = s.notna() & d.isna()
            if bad.any():
                raise DataQualityError(f"{where}: {s[bad].iloc[0]!r} is not a date (rule: type)")
            out[col.name] = d.dt.normalize().astype("datetime64[ns]")
    return out.reset_index(drop=True)


def empty_table(table_name: str) -> pd.DataFrame:
    """An empty frame with the canonical columns and dtypes of ``table_name``."""
    import pandas as pd

    table: Table = TABLES[table_name]
    return pd.DataFrame({c.name: pd.Series(dtype=pandas_dtype(c.dtype)) for c in table.columns})


def write_tables(frames: dict[str, pd.DataFrame], folder: Path) -> dict[str, Path]:
    """Write canonical tables as ``<folder>/<table>.parquet`` (sorted by primary key)."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, frame in frames.items():
        table = TABLES[name]
        out = frame.sort_values(list(table.primary_key), kind="stable").reset_index(drop=True)
        path = folder / f"{name}.parquet"
        out.to_parquet(path, index=False)
        written[name] = path
    return written


def read_country(country: str, folder: Path | None = None) -> dict[str, pd.DataFrame]:
    """Read a country's processed canonical tables (``data/processed/<country>/*.parquet``).

    A country collects any non-empty subset of the canonical tables and, within a table, may
    not collect some optional columns: an absent table is absent from the result and an
    absent column absent from its frame ("not collected"; see
    :func:`clm_research.framework.resolve_availability`).

    Raises
    ------
    DataQualityError
        When the folder holds no processed table: run ``clm ingest <country>`` first.
    """
    import pandas as pd

    folder = folder or processed_dir(country)
    frames: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        path = folder / f"{name}.parquet"
        if not path.is_file():
            continue
        try:
            frame = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises ArrowInvalid, OSError… for a damaged file
            raise DataQualityError(
                f"{display_path(path)}: the processed table cannot be read ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:200] if str(e) else 'damaged'}) "
                f"[rule: damaged_file]; run `clm ingest {country}` again to rewrite it"
            ) from None
        frames[name] = coerce(frame, name, source=display_path(path), add_missing=False)
    if not frames:
        raise DataQualityError(
            f"{display_path(folder)}: no processed table; run `clm ingest {country}` "
            f"(or `make report`, which ingests the demo data) first"
        )
    return frames


@dataclass
class StagedTable:
    """A canonical table before the gate: typed cells plus what ingestion already found wrong.

    Attributes
    ----------
    name
        Canonical table name.
    frame
        Canonical columns in canonical dtypes (cells that could not be read are missing).
    source_file, source_row
        Where each row came from (spreadsheet row numbers: the header is row 1).
    prefailed
        ``"rule:column"`` -> mask of failures found while reading (``type``, duplicate
        submissions, short rows).
    raw_values
        Text of the cells that failed ``type`` (``"age='abc'"``), for the quarantine.
    """

    name: str
    frame: pd.DataFrame
    source_file: np.ndarray
    source_row: np.ndarray
    prefailed: dict[str, np.ndarray] = field(default_factory=dict)
    raw_values: pd.Series | None = None

    def __len__(self) -> int:
        return len(self.frame)
