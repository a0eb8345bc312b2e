"""CommCare form exports (CSV or XLSX) as text tables (the layout of CommCare HQ's form export).

A form export has one row per form submission. Answers are headed by their question path:
``form.<question>`` or ``form.<group>.<question>`` (``form.client.sex``); a question that updates
a case also appears as ``form.case.update.<property>``. CommCare adds metadata columns:
``number`` (the row number), ``formid`` (the submission's unique id), ``started_time``,
``completed_time`` (device clock), ``received_on`` (server clock), ``username``, ``form_link``,
the ``form.meta.*`` block (``timeStart``, ``timeEnd``, ``username``, ``userID``,
``instanceID``, ``deviceID``, ``appVersion``, ``location``) and, for case forms,
``form.case.@case_id`` (also exported as ``case_id``). A select-multiple answer is one cell of
space-separated choice values (``art prep``). A question that was not asked (skip logic) or not
part of the form version of a submission is written ``---``: it is read as a missing answer
(Dimagi, *Metadata Glossary* and *Form Data Exports*, CommCare Help Site).

Usernames, user and device ids, the GPS position of the submission (``form.meta.location``)
and case names are personal data of the mobile worker or the client: they are dropped at
ingestion like the enumerator columns of the other readers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clm_research.ingest.canonical import RawTable, read_table_file

__all__ = ["COMMCARE_METADATA", "COMMCARE_PERSONAL", "COMMCARE_BLANK", "read_commcare"]

#: How CommCare writes an answer that was not given (skipped question, other form version).
COMMCARE_BLANK = "---"

#: CommCare's own columns: not answers; ignored unless the mapping uses them.
COMMCARE_METADATA: tuple[str, ...] = (
    "number",
    "formid",
    "form_link",
    "started_time",
    "completed_time",
    "received_on",
    "case_id",
    "form.case.@case_id",
    "form.case.@date_modified",
    "form.case.@xmlns",
    "form.@xmlns",
    "form.@name",
    "form.@uiVersion",
    "form.@version",
    "form.#type",
    "form.meta.timeStart",
    "form.meta.timeEnd",
    "form.meta.instanceID",
    "form.meta.appVersion",
    "form.meta.commcare_version",
    "form.meta.app_build_version",
    "form.meta.drift",
    "form.meta.@xmlns",
)

#: CommCare columns identifying the mobile worker, the device, a position or a client by name:
#: always dropped (``fnmatch`` patterns).
COMMCARE_PERSONAL: tuple[str, ...] = (
    "username",
    "userID",
    "form.meta.username",
    "form.meta.userID",
    "form.meta.deviceID",
    "form.meta.location",
    "form.meta.location.*",
    "form.case.@user_id",
    "form.case.create.case_name",
    "form.case.create.owner_id",
    "form.case.update.case_name",
    "*.case_name",
)


def read_commcare(
    path: Path,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    sheet: str | int | None = None,
) -> RawTable:
    """Read a CommCare form export (CSV or the form's sheet of an XLSX export) as text.

    Cells holding ``---`` (no answer) become blank, so they are missing in the canonical
    table (never the text ``---``); their count is noted in the manifest.
    """
    raw = read_table_file(path, delimiter=delimiter, encoding=encoding, sheet=sheet)
    frame = raw.frame
    text = frame.apply(lambda s: s.astype("string").str.strip())
    blank = (text == COMMCARE_BLANK).fillna(False).to_numpy(dtype=bool)
    n = int(blank.sum())
    if n:
        raw.frame = frame.mask(pd.DataFrame(blank, index=frame.index, columns=frame.columns), "")
        raw.notes.append(f"{n} CommCare '---' cell(s) (no answer) read as missing")
    raw.source_row = np.asarray(raw.source_row)
    return raw
