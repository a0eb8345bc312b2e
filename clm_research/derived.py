"""Columns derived from the canonical tables before indicators are computed.

Facility-linked datasets gain the facility's region, district, type, ownership and CLM status
(``clm_arm``: ``clm`` or ``comparison``; ``clm_active``: the row falls on or after the
facility's ``clm_start``). Monthly datasets gain the quarter ``round``. Organisations gain
``community_led``: the UNAIDS definition (seed 001) in its simplest reading — a majority of
governance, leadership and staff from the constituency (where reported), a transparent
accountability mechanism and an agenda set by the constituency.

These columns can be used in framework filters and as disaggregations, exactly like the
canonical ones; :func:`dataset_table` exposes them to the framework validator.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from clm_research.schema import TABLES, Column, Table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DERIVED_COLUMNS", "dataset_table", "enrich", "period_to_round", "round_start"]

_FACILITY_COLUMNS: tuple[Column, ...] = (
    Column("region", "string", "Region of the facility"),
    Column("district", "string", "District of the facility"),
    Column(
        "facility_type",
        "category",
        "Facility type",
        allowed=TABLES["facilities"].column("type").allowed,
    ),
    Column(
        "ownership",
        "category",
        "Facility ownership",
        allowed=TABLES["facilities"].column("ownership").allowed,
    ),
    Column(
        "clm_arm", "category", "CLM facility or comparison facility", allowed=("clm", "comparison")
    ),
    Column("clm_active", "boolean", "The row falls on or after the facility's CLM start"),
)
_ROUND = Column("round", "string", "Quarter of the reporting month, e.g. 2024Q1")

#: Derived columns by dataset name.
DERIVED_COLUMNS: dict[str, tuple[Column, ...]] = {
    "facilities": (_FACILITY_COLUMNS[4],),
    "interviews": _FACILITY_COLUMNS,
    "observations": _FACILITY_COLUMNS,
    "issues": _FACILITY_COLUMNS,
    "routine": (*_FACILITY_COLUMNS, _ROUND),
    "outreach": (_ROUND,),
    "organisations": (
        Column(
            "community_led", "boolean", "Meets the UNAIDS community-led definition (simple reading)"
        ),
    ),
}

#: Roles whose majority must come from the constituency for ``community_led``.
COMMUNITY_LED_ROLES: tuple[str, ...] = ("governance", "leadership", "staff")


@cache
def dataset_table(name: str) -> Table:
    """The canonical table ``name`` extended with its derived columns (for validation)."""
    base = TABLES[name]
    extra = tuple(c for c in DERIVED_COLUMNS.get(name, ()) if c.name not in base)
    return Table(
        name=base.name,
        description=base.description,
        columns=base.columns + extra,
        primary_key=base.primary_key,
        foreign_keys=base.foreign_keys,
        grain=base.grain,
        time_column=base.time_column,
    )


def period_to_round(period: pd.Series) -> pd.Series:
    """Map months ``YYYY-MM`` to quarters ``YYYYQn``."""
    year = period.str.slice(0, 4)
    quarter = ((period.str.slice(5, 7).astype(int) - 1) // 3 + 1).astype(str)
    return year + "Q" + quarter


def round_start(rounds: pd.Series) -> pd.Series:
    """First day of each quarter ``YYYYQn``."""
    import pandas as pd

    year = rounds.str.slice(0, 4).astype(int)
    month = (rounds.str.slice(5, 6).astype(int) - 1) * 3 + 1
    return pd.to_datetime({"year": year, "month": month, "day": 1})


def _row_time(name: str, frame: pd.DataFrame) -> pd.Series:
    import pandas as pd

    if name == "routine":
        return pd.to_datetime(frame["period"] + "-01")
    if name == "observations":
        start = round_start(frame["round"])
        return frame["date"].fillna(start) if "date" in frame else start
    return frame[TABLES[name].time_column]


def enrich(name: str, frame: pd.DataFrame, facilities: pd.DataFrame | None) -> pd.DataFrame:
    """Return ``frame`` with the derived columns of dataset ``name`` added (a new frame)."""
    import pandas as pd

    out = frame.copy()
    if name in ("routine", "outreach") and "period" in out:
        out["round"] = period_to_round(out["period"].astype("string"))
    if name == "facilities":
        out["clm_arm"] = out["clm_start"].notna().map({True: "clm", False: "comparison"})
    elif facilities is not None and "facility_id" in out and name in DERIVED_COLUMNS:
        fac = facilities[["facility_id", "region", "district", "type", "ownership", "clm_start"]]
        fac = fac.rename(columns={"type": "facility_type"})
        out = out.drop(columns=[c for c in fac.columns if c != "facility_id" and c in out])
        if not fac["facility_id"].is_unique:
            from clm_research.errors import DataQualityError

            dup = fac.loc[fac["facility_id"].duplicated(), "facility_id"].iloc[0]
            raise DataQualityError(
                f"facilities: facility_id {dup!r} appears twice (rule: duplicate_key); "
                "each facility must be listed once"
            )
        # a positional lookup, not a merge: unknown facility ids get empty attributes
        pos = pd.Index(fac["facility_id"]).get_indexer(out["facility_id"])
        for col in fac.columns.drop("facility_id"):
            out[col] = pd.Series(fac[col].array.take(pos, allow_fill=True), index=out.index)
        out["clm_arm"] = out["clm_start"].notna().map({True: "clm", False: "comparison"})
        when = _row_time(name, out)
        active = (when >= out["clm_start"]).astype("boolean")
        out["clm_active"] = active.fillna(False)
        out = out.drop(columns=["clm_start"])
    if name == "organisations":
        ok = pd.Series(True, index=out.index, dtype="boolean")
        for role in COMMUNITY_LED_ROLES:
            total, constituency = out[f"{role}_total"], out[f"{role}_constituency"]
            majority = (2 * constituency > total).astype("boolean")
            ok &= majority.mask(total.isna() | (total == 0), True)
        ok &= out["accountability_mechanism"].astype("boolean").fillna(False)
        ok &= out["agenda_set_by_constituency"].astype("boolean").fillna(False)
        out["community_led"] = ok.fillna(False)
    return out
