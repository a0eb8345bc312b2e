"""ODK Central CSV exports as text tables (the layout of ODK Central's CSV export).

Central joins group names with ``-`` (``g1-q2``), writes select_multiple answers space-separated
(optionally with split 0/1 columns ``q1/a``), starts with ``SubmissionDate`` and
``meta-instanceID`` and ends with ``KEY, SubmitterID, SubmitterName, AttachmentsPresent,
AttachmentsExpected, Status, ReviewState, DeviceID, Edits, FormVersion``.
``SubmissionDate`` is an ISO 8601 timestamp (read as a date by the ``ISO`` date format).
"""

from __future__ import annotations

from pathlib import Path

from clm_research.ingest.canonical import RawTable, read_table_file

__all__ = ["ODK_METADATA", "ODK_PERSONAL", "read_odk"]

#: Central's own columns: not answers; ignored unless the mapping uses them.
ODK_METADATA: tuple[str, ...] = (
    "SubmissionDate",
    "meta-instanceID",
    "KEY",
    "AttachmentsPresent",
    "AttachmentsExpected",
    "Status",
    "ReviewState",
    "Edits",
    "FormVersion",
    "start",
    "end",
    "today",
    "meta-audit",
)
#: Central columns identifying the data collector or the device: always dropped.
ODK_PERSONAL: tuple[str, ...] = (
    "SubmitterID",
    "SubmitterName",
    "DeviceID",
    "deviceid",
    "phonenumber",
)


def read_odk(
    path: Path,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    sheet: str | int | None = None,
) -> RawTable:
    """Read an ODK Central CSV export as text (``,``-separated, UTF-8)."""
    return read_table_file(path, delimiter=delimiter or None, encoding=encoding, sheet=sheet)
