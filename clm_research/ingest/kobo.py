"""KoboToolbox exports (CSV or XLSX) as text tables (the layout of KoboToolbox's export engine, formpack).

Kobo writes ``;``-separated, quoted CSV (``,`` when chosen), joins group paths with ``/``
(``group/question``), writes a select_multiple both as one space-separated column and as one
0/1 column per option (``question/option``), ends with metadata columns (``_id``, ``_uuid``,
``_submission_time``, ``_validation_status``, ``_notes``, ``_status``, ``_submitted_by``,
``_tags``, ``_index``) and may put an HXL hashtag row (``#adm1``…) under the header.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clm_research.ingest.canonical import RawTable, read_table_file

__all__ = ["KOBO_METADATA", "KOBO_PERSONAL", "read_kobo", "drop_hxl_row"]

#: Kobo's own columns: not answers; ignored unless the mapping uses them.
KOBO_METADATA: tuple[str, ...] = (
    "_id",
    "_uuid",
    "_submission_time",
    "_validation_status",
    "_notes",
    "_status",
    "_tags",
    "_index",
    "__version__",
    "_version_",
    "start",
    "end",
    "today",
    "deviceid",
    "meta/instanceID",
    "meta/rootUuid",
    "formhub/uuid",
    "_attachments",
    "_geolocation",
    "_parent_index",
)
#: Kobo columns that identify a person (the enumerator's account): always dropped.
KOBO_PERSONAL: tuple[str, ...] = (
    "_submitted_by",
    "username",
    "phonenumber",
    "simserial",
    "subscriberid",
)


def drop_hxl_row(raw: RawTable) -> RawTable:
    """Remove an HXL hashtag row (every filled cell starts with ``#``) directly under the header."""
    if len(raw.frame) == 0:
        return raw
    first = raw.frame.iloc[0].fillna("").astype(str).str.strip()
    filled = first[first != ""]
    if len(filled) and filled.str.match(r"^#[a-z]").all():
        raw.frame = raw.frame.iloc[1:].reset_index(drop=True)
        raw.source_row = raw.source_row[1:]
        if raw.short_rows is not None:
            raw.short_rows = raw.short_rows[1:]
        raw.notes.append("HXL hashtag row under the header skipped")
    return raw


def read_kobo(
    path: Path,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    sheet: str | int | None = None,
) -> RawTable:
    """Read a KoboToolbox CSV/XLSX export as text (see the module docstring for the layout)."""
    raw = read_table_file(path, delimiter=delimiter, encoding=encoding, sheet=sheet)
    raw = drop_hxl_row(raw)
    raw.source_row = np.asarray(raw.source_row)
    return raw
