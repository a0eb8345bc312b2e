"""Read export files (CSV, Excel, Parquet) as text tables, detecting encoding, BOM and delimiter.

Every reader in :mod:`clm_research.ingest` starts here. Table-level problems — an empty file,
a header without rows, text that is not UTF-8, a workbook saved with a ``.csv`` name, a
truncated file — stop with a :class:`~clm_research.errors.DataQualityError` that names the file
and says how to fix it. Cells are kept as text: typing happens later, cell by cell, so that a
bad cell quarantines its row instead of failing the file.

Row numbers (``source_row``) are spreadsheet row numbers: the header is row 1, the first data
row is row 2 (row 3 when a KoboToolbox HXL hashtag row sits under the header).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clm_research.errors import DataQualityError

__all__ = ["RawTable", "read_table_file", "sniff_delimiter", "dedupe_headers"]

_DELIMITERS = (",", ";", "\t")
_XLSX_MAGIC = b"PK\x03\x04"
_BOM = b"\xef\xbb\xbf"


@dataclass
class RawTable:
    """One export file read as text.

    Attributes
    ----------
    frame
        Cells as text (``str``; missing trailing fields of a short row are ``NaN``), columns
        named by the header (repeated headers get ``.1``, ``.2`` … as pandas does).
    path
        The file read.
    source_row
        Spreadsheet row number of each row of ``frame``.
    encoding, delimiter, had_bom
        What was detected.
    duplicate_headers
        Header texts that occurred more than once.
    short_rows
        ``True`` for rows with fewer fields than the header (a truncated line).
    """

    frame: pd.DataFrame
    path: Path
    source_row: np.ndarray
    encoding: str = "utf-8"
    delimiter: str | None = None
    had_bom: bool = False
    duplicate_headers: list[str] = field(default_factory=list)
    short_rows: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def dedupe_headers(names: Sequence[object]) -> tuple[list[str], list[str]]:
    """Make header texts unique the pandas way (``x``, ``x.1``, ``x.2``).

    Returns the new names and the header texts that were repeated.
    """
    seen: dict[str, int] = {}
    out: list[str] = []
    repeated: list[str] = []
    for raw in names:
        name = "" if raw is None or (isinstance(raw, float) and np.isnan(raw)) else str(raw)
        if name in seen:
            seen[name] += 1
            if name not in repeated:
                repeated.append(name)
            new = f"{name}.{seen[name]}"
            while new in seen:
                seen[name] += 1
                new = f"{name}.{seen[name]}"
            seen[new] = 0
            out.append(new)
        else:
            seen[name] = 0
            out.append(name)
    return out, repeated


def sniff_delimiter(header_line: str) -> str:
    """Pick ``,``, ``;`` or tab: the one that splits the header line into the most fields."""
    best, best_n = ",", 0
    for d in _DELIMITERS:
        try:
            n = len(next(csv.reader([header_line], delimiter=d)))
        except (csv.Error, StopIteration):
            continue
        if n > best_n:
            best, best_n = d, n
    return best


_WIDE = ("utf-16", "utf-32")  # encodings whose text has NUL bytes (ASCII letters are 00-padded)


def _codec(path: Path, encoding: str) -> str:
    """The codec's canonical name; a name Python does not know is an error naming the file."""
    import codecs

    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise DataQualityError(
            f"{path}: the mapping declares `encoding: {encoding}`, which is not an encoding name "
            "[rule: encoding]. Fix: use utf-8 (the default), cp1252 (what Windows calls 'ANSI') "
            "or latin-1 in params/mappings/<country>.yaml."
        ) from None


def _decode(data: bytes, path: Path, encoding: str | None) -> tuple[str, str, bool]:
    had_bom = data.startswith(_BOM)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16", True
    if encoding and encoding.lower().replace("_", "-") not in ("utf-8", "utf8", "utf-8-sig"):
        codec = _codec(path, encoding)
        if codec.startswith(_WIDE) and b"\x00" not in data[:4096]:
            # UTF-8 bytes decoded as UTF-16 give one line of CJK-looking text, not an error
            raise DataQualityError(
                f"{path}: the mapping declares `encoding: {encoding}`, but the file has no "
                f"{codec.upper()} byte pattern (no NUL bytes, no byte-order mark): it is "
                "probably UTF-8 [rule: encoding]. Fix: remove the `encoding` line for this file "
                "in params/mappings/<country>.yaml."
            )
        try:
            return data.decode(codec), codec, had_bom
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise DataQualityError(
                f"{path}: line {line}: bytes that are not {encoding} text ({e.reason}) "
                f"[rule: encoding]. Fix: correct `encoding: {encoding}` in "
                "params/mappings/<country>.yaml or re-export the file as UTF-8."
            ) from None
    try:
        return data.decode("utf-8-sig"), "utf-8", had_bom
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataQualityError(
            f"{path}: line {line}: the file is not UTF-8 text (byte 0x{data[e.start]:02X}); "
            "it looks like Latin-1/Windows-1252 [rule: encoding]. Fix: save it as 'CSV UTF-8' "
            "(Excel) or re-export as UTF-8, or declare `encoding: latin-1` for this file in "
            "params/mappings/<country>.yaml."
        ) from None


def _field_lengths(text: str, sep: str) -> np.ndarray:
    """Fields per record, counted with the csv module (its cell limit lifted for this file).

    The csv module refuses a cell over 131,072 characters by default; pandas reads it. A long
    cell (a pasted note) is read like any other, so the limit is raised to the file's length
    for this count and restored afterwards.
    """
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, len(text) + 1))
    try:
        return np.fromiter(
            (len(r) for r in csv.reader(io.StringIO(text), delimiter=sep)), dtype=np.int64
        )
    finally:
        csv.field_size_limit(old)


def _read_csv(path: Path, delimiter: str | None, encoding: str | None) -> RawTable:
    data = path.read_bytes()
    if data.startswith(_XLSX_MAGIC):
        raise DataQualityError(
            f"{path}: this is an Excel workbook (or another zip file), not CSV text [rule: wrong_file]. "
            "Fix: give it the .xlsx extension or export the sheet as CSV."
        )
    wide = bool(encoding) and encoding.lower().replace("_", "-").startswith(_WIDE)  # type: ignore[union-attr]
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")) and not wide:
        raise DataQualityError(
            f"{path}: binary data, not a CSV text file [rule: wrong_file]. Fix: export the table as CSV."
        )
    text, enc, had_bom = _decode(data, path, encoding)
    if not text.strip():
        raise DataQualityError(
            f"{path}: the file is empty [rule: empty_file]. Fix: re-export the data; an export "
            "with no submissions should not be delivered."
        )
    old_mac = "\r" in text and "\n" not in text
    if old_mac:  # classic Mac OS line endings (CR only): read as line breaks, said in the notes
        text = text.replace("\r", "\n")
    first_line = text.splitlines()[0]
    sep = delimiter or sniff_delimiter(first_line)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_values=[],
            skip_blank_lines=False,
            engine="c",
        )
    except pd.errors.ParserError as e:
        msg = str(e)
        if "EOF inside string" in msg:
            raise DataQualityError(
                f"{path}: the file ends inside a quoted value ({msg.strip()}): it is truncated "
                "[rule: truncated_file]. Fix: download or copy the export again."
            ) from None
        raise DataQualityError(
            f"{path}: rows do not match the header ({msg.strip()}); usually a value contains the "
            f"delimiter {sep!r} without quotes [rule: wrong_delimiter]. Fix: re-export with quoting."
        ) from None
    except pd.errors.EmptyDataError:
        raise DataQualityError(
            f"{path}: the file is empty [rule: empty_file]. Fix: re-export the data."
        ) from None
    header = frame.iloc[0].tolist()
    body = frame.iloc[1:].reset_index(drop=True)
    # a trailing newline-only line is not a row; blank lines inside the file are kept
    while len(body) and body.iloc[-1].isna().all():
        body = body.iloc[:-1]
    names, repeated = dedupe_headers(header)
    body.columns = names
    # pandas pads a short record with "" like an empty field: count the fields with the csv module
    lens = _field_lengths(text, sep)
    short = np.zeros(len(body), bool)
    if len(lens) >= len(body) + 1:
        body_lens = lens[1 : len(body) + 1]
        short = (body_lens > 0) & (body_lens < len(header))
    else:  # pragma: no cover - parsers disagree on records; skip the check rather than guess
        pass
    raw = RawTable(
        frame=body,
        path=path,
        source_row=np.arange(2, len(body) + 2),
        encoding=enc,
        delimiter=sep,
        had_bom=had_bom,
        duplicate_headers=repeated,
        short_rows=short,
    )
    if old_mac:
        raw.notes.append("line endings were carriage returns only (classic Mac OS): read as lines")
    return raw


def _cell_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if hasattr(v, "isoformat"):
        text: str = v.isoformat()  # datetime -> 2024-03-05T00:00:00
        return text[:10] if text.endswith("T00:00:00") else text
    return str(v)


def _read_excel(path: Path, sheet: str | int | None) -> RawTable:
    """Read a workbook with openpyxl: error cells (``#DIV/0!``, ``#NAME?``) stay visible as text
    (``pandas.read_excel`` would turn them into blanks, losing the fault silently)."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises several types for non-workbooks
        raise DataQualityError(
            f"{path}: cannot be read as an Excel workbook ({e}) [rule: wrong_file]. "
            "Fix: open it in Excel and save as .xlsx."
        ) from None
    try:
        names = list(wb.sheetnames)
        if isinstance(sheet, str) and sheet not in names:
            raise DataQualityError(
                f"{path}: no sheet named {sheet!r}; the workbook has {names} [rule: missing_sheet]. "
                "Fix: correct `sheet:` for this file in params/mappings/<country>.yaml."
            )
        if isinstance(sheet, int) and not 0 <= sheet < len(names):
            raise DataQualityError(
                f"{path}: no sheet number {sheet} (sheets are counted from 0; the workbook has "
                f"{len(names)}: {names}) [rule: missing_sheet]. Fix: correct `sheet:` for this "
                "file in params/mappings/<country>.yaml."
            )
        ws = wb[sheet] if isinstance(sheet, str) else wb.worksheets[sheet or 0]
        rows = [[_cell_text(v) for v in r] for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()
    while rows and all(c == "" for c in rows[-1]):
        rows.pop()
    if not rows:
        raise DataQualityError(
            f"{path}: the sheet is empty [rule: empty_file]. Fix: re-export the data."
        )
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    names, repeated = dedupe_headers(rows[0])
    body = pd.DataFrame(rows[1:], columns=names, dtype=object)
    return RawTable(
        frame=body,
        path=path,
        source_row=np.arange(2, len(body) + 2),
        encoding="xlsx",
        duplicate_headers=repeated,
        short_rows=np.zeros(len(body), bool),
    )


def _read_parquet(path: Path) -> RawTable:
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types
        raise DataQualityError(
            f"{path}: cannot be read as Parquet ({e}) [rule: wrong_file]."
        ) from None
    frame = frame.reset_index(drop=True)
    return RawTable(
        frame=frame,
        path=path,
        source_row=np.arange(2, len(frame) + 2),
        encoding="parquet",
        short_rows=np.zeros(len(frame), bool),
    )


def read_table_file(
    path: Path,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    sheet: str | int | None = None,
) -> RawTable:
    """Read a CSV, Excel or Parquet export as a text table.

    Parameters
    ----------
    path
        The file (``.csv``/``.txt``/``.tsv``, ``.xlsx``/``.xlsm``, ``.parquet``).
    delimiter
        Force a delimiter; by default ``,``, ``;`` or tab is detected from the header line.
    encoding
        Force an encoding (e.g. ``latin-1``); by default UTF-8 (with or without BOM) is required.
    sheet
        Excel sheet name or index (default: the first sheet).

    Raises
    ------
    DataQualityError
        Empty file, header only, not UTF-8, a workbook or binary file named ``.csv``, a
        truncated file: the message names the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise DataQualityError(
            f"{path}: file not found [rule: missing_file]. Fix: put the export there "
            "or correct the file name in params/mappings/<country>.yaml."
        )
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        raw = _read_excel(path, sheet)
    elif suffix == ".parquet":
        raw = _read_parquet(path)
    else:
        raw = _read_csv(path, delimiter, encoding)
    if len(raw.frame) == 0:
        raise DataQualityError(
            f"{path}: the file has a header but no data rows [rule: header_only]. Fix: check the "
            "export's filters (date range, form version) and export again."
        )
    return raw
