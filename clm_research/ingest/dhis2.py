"""DHIS2 data value sets (``/api/dataValueSets``, JSON or CSV) to the ``routine`` table.

A data value set is long: one row per ``dataElement × period × orgUnit × categoryOptionCombo``.
The mapping names which data elements feed which ``routine`` columns and which org unit is
which facility. Values of the category option combos of one data element are summed (the
total); a null, empty or absent value stays missing, and so does a total with a missing part
(a sum would read it as 0). Periods: monthly ``202403`` becomes ``2024-03``; quarterly ``2024Q1`` is rejected
(kept as ``2024Q1`` so the gate quarantines the row with ``pattern:period``) unless the mapping
says ``quarterly_periods: last_month`` — right for stocks such as TX_CURR reported at the end
of the quarter, wrong for flows, hence not the default. Any other period (``2024W13``,
``202413``) is kept as is and quarantined the same way. Data values of unmapped data elements
are counted and reported, not silently dropped; unknown org units keep their uid and fail the
facility checks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from clm_research.errors import DataQualityError
from clm_research.ingest.canonical import RawTable, read_table_file

__all__ = ["read_dhis2", "dhis2_to_routine", "Dhis2Result", "dhis2_period"]

_FIELDS = {
    "dataelement": "dataElement",
    "period": "period",
    "orgunit": "orgUnit",
    "categoryoptioncombo": "categoryOptionCombo",
    "catoptcombo": "categoryOptionCombo",
    "attributeoptioncombo": "attributeOptionCombo",
    "attroptcombo": "attributeOptionCombo",
    "value": "value",
    "storedby": "storedBy",
    "created": "created",
    "lastupdated": "lastUpdated",
    "comment": "comment",
    "followup": "followup",
}
_REQUIRED = ("dataElement", "period", "orgUnit", "value")


def read_dhis2(path: Path) -> RawTable:
    """Read a data value set (``.json`` with a ``dataValues`` list, or ``.csv``) as a long text table."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataQualityError(
                f"{path}: not a valid JSON data value set ({e}) [rule: wrong_file]. "
                "Fix: export /api/dataValueSets.json again."
            ) from None
        values = doc.get("dataValues") if isinstance(doc, dict) else None
        if values is None:
            raise DataQualityError(
                f"{path}: no 'dataValues' list [rule: wrong_file]. Fix: export a data "
                "value set (/api/dataValueSets), not an analytics table."
            )
        if not isinstance(values, list):
            raise DataQualityError(
                f"{path}: 'dataValues' is a {type(values).__name__}, not a list of data values "
                "[rule: wrong_file]. Fix: export /api/dataValueSets.json again (an edited or "
                "converted file)."
            )
        if not values:
            raise DataQualityError(
                f"{path}: the data value set has no data values [rule: header_only]."
            )
        bad = next((i for i, v in enumerate(values, 1) if not isinstance(v, dict)), None)
        if bad is not None:
            raise DataQualityError(
                f"{path}: dataValues item {bad} is not an object with dataElement, period, "
                "orgUnit and value [rule: wrong_file]. Fix: export /api/dataValueSets.json again."
            )
        frame = pd.DataFrame(values).astype(object)
        frame = frame.where(frame.notna(), "").astype(str)
        raw = RawTable(
            frame=frame,
            path=path,
            source_row=np.arange(1, len(frame) + 1),
            encoding="utf-8",
            short_rows=np.zeros(len(frame), bool),
        )
        raw.notes.append("source_row of a JSON data value set = position in dataValues (1-based)")
    else:
        raw = read_table_file(path)
    raw.frame.columns = [
        _FIELDS.get(str(c).replace("_", "").lower(), str(c)) for c in raw.frame.columns
    ]
    missing = [c for c in _REQUIRED if c not in raw.frame.columns]
    if missing:
        raise DataQualityError(
            f"{path}: not a DHIS2 data value set: column(s) {', '.join(missing)} missing "
            f"[rule: missing_column]. Fix: export /api/dataValueSets as JSON or CSV."
        )
    return raw


def dhis2_period(p: str, quarterly: str = "reject") -> str:
    """``202403`` -> ``2024-03``; ``2024Q1`` -> ``2024-03`` with ``quarterly='last_month'``.

    Anything else is returned unchanged (the gate then flags ``pattern:period``).
    """
    p = str(p).strip()
    m = re.fullmatch(r"(\d{4})(0[1-9]|1[0-2])", p)
    if m:
        return f"{m.group(1)}-{m.group(2)}"
    q = re.fullmatch(r"(\d{4})Q([1-4])", p)
    if q and quarterly == "last_month":
        return f"{q.group(1)}-{int(q.group(2)) * 3:02d}"
    return p


@dataclass
class Dhis2Result:
    """The data value set pivoted to one text row per facility × period."""

    frame: pd.DataFrame
    source_row: np.ndarray
    prefailed: dict[str, np.ndarray]
    long_rows: int
    unmapped_data_elements: dict[str, int] = field(default_factory=dict)
    unknown_org_units: dict[str, int] = field(default_factory=dict)


def dhis2_to_routine(
    raw: RawTable,
    data_elements: dict[str, str],
    org_units: dict[str, str],
    quarterly: str = "reject",
) -> Dhis2Result:
    """Pivot a long data value set to ``routine`` rows (text cells; typing happens later)."""
    long = raw.frame.copy()
    long["_row"] = raw.source_row
    n_long = len(long)
    long["column"] = long["dataElement"].map(lambda d: data_elements.get(str(d).strip()))
    unmapped = long.loc[long["column"].isna(), "dataElement"].value_counts()
    long = long[long["column"].notna()].copy()
    long["facility_id"] = long["orgUnit"].map(
        lambda o: org_units.get(str(o).strip(), str(o).strip())
    )
    unknown_ou = long.loc[
        ~long["orgUnit"].str.strip().isin(list(org_units)), "orgUnit"
    ].value_counts()
    long["period_c"] = long["period"].map(lambda p: dhis2_period(p, quarterly))
    value = long["value"].astype("string").str.strip()
    num = pd.to_numeric(value, errors="coerce")
    long["num"] = num
    # a null, empty or absent value is missing (not 0); only unreadable text is a type failure
    empty = value.isna() | value.str.lower().isin(["", "null", "none", "nan"])
    long["bad"] = (num.isna() & ~empty).to_numpy(dtype=bool)
    long["gap"] = num.isna().to_numpy(dtype=bool)
    coc = long["categoryOptionCombo"] if "categoryOptionCombo" in long else ""
    aoc = long["attributeOptionCombo"] if "attributeOptionCombo" in long else ""
    long["_coc"] = coc
    long["_aoc"] = aoc
    long["dup"] = long.duplicated(
        ["dataElement", "period", "orgUnit", "_coc", "_aoc"], keep="first"
    )
    keys = ["facility_id", "period_c"]
    grouped = long.groupby(keys, sort=False, dropna=False)
    first_row = grouped["_row"].min()
    wide_num = long.pivot_table(
        index=keys, columns="column", values="num", aggfunc="sum", dropna=False, sort=False
    )
    # pivot_table's sum turns a missing value into 0: a total with a missing part is missing
    gaps = long.pivot_table(
        index=keys, columns="column", values="gap", aggfunc="any", dropna=False, sort=False
    )
    wide_num = wide_num.mask(gaps.reindex_like(wide_num).fillna(False).astype(bool))
    bad = long.pivot_table(
        index=keys, columns="column", values="bad", aggfunc="any", dropna=False, sort=False
    ).reindex(first_row.index)
    dup = grouped["dup"].any().reindex(first_row.index)
    wide_num = wide_num.reindex(first_row.index)
    present = long.pivot_table(
        index=keys, columns="column", values="_row", aggfunc="count", dropna=False, sort=False
    ).reindex(first_row.index)
    out = pd.DataFrame(index=first_row.index)
    for col in wide_num.columns:
        v = wide_num[col]
        txt = v.map(
            lambda x: (
                "" if pd.isna(x) else (str(int(x)) if float(x).is_integer() else repr(float(x)))
            )
        )
        # a column with no data value for this facility-month stays empty (not 0)
        txt = txt.where(present[col].fillna(0) > 0, "")
        out[col] = txt
    out = out.reset_index().rename(columns={"period_c": "period"})
    order = np.argsort(first_row.to_numpy(), kind="stable")
    out = out.iloc[order].reset_index(drop=True)
    prefailed: dict[str, np.ndarray] = {}
    for col in bad.columns:
        m = bad[col].fillna(False).to_numpy(dtype=bool)[order]
        if m.any():
            prefailed[f"type:{col}"] = m
            out.loc[m, col] = ""
    d = dup.fillna(False).to_numpy(dtype=bool)[order]
    if d.any():
        prefailed["duplicate_key:facility_id+period"] = d
    return Dhis2Result(
        frame=out,
        source_row=first_row.to_numpy()[order],
        prefailed=prefailed,
        long_rows=n_long,
        unmapped_data_elements={str(k): int(v) for k, v in unmapped.items()},
        unknown_org_units={str(k): int(v) for k, v in unknown_ou.items()},
    )
