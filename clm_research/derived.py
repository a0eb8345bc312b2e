"""Columns derived from the canonical tables before indicators are computed.

Facility-linked datasets gain the facility's region, district, type, ownership and CLM status
(``clm_arm``: ``clm`` or ``comparison``; ``clm_active``: the row falls on or after the
facility's ``clm_start``). Monthly datasets gain the quarter ``round``. Organisations gain
``community_led``: the UNAIDS definition as assessed criterion by criterion in
:func:`community_led_criteria` — no criterion failed, with the accountability mechanism and the
constituency's own agenda both reported and met (a role nobody reported does not count against).

These columns can be used in framework filters and as disaggregations, exactly like the
canonical ones; :func:`dataset_table` exposes them to the framework validator.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from clm_research.periods import months_to_rounds, rounds_start
from clm_research.schema import TABLES, Column, Table

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DERIVED_COLUMNS",
    "derived_sources",
    "COMMUNITY_LED_ROLES",
    "COMMUNITY_LED_CRITERIA",
    "community_led_criteria",
    "dataset_table",
    "enrich",
]

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

#: Facility-linked derived column -> the ``facilities`` column it is looked up from.
_FACILITY_SOURCES: dict[str, str] = {
    "region": "region",
    "district": "district",
    "facility_type": "type",
    "ownership": "ownership",
    "clm_arm": "clm_start",
    "clm_active": "clm_start",
}


def derived_sources(dataset: str, column: str) -> tuple[tuple[str, str], ...]:
    """The ``(table, column)`` pairs a derived column of ``dataset`` is computed from.

    Empty for a canonical column of the dataset or an unknown name. A country that lacks one
    of them (no facilities table, ``clm_start`` not collected) cannot have the derived column,
    and the indicators that read it are not computed
    (:func:`clm_research.framework.resolve_availability`).
    """
    names = {c.name for c in DERIVED_COLUMNS.get(dataset, ())}
    if column not in names or column in TABLES[dataset]:
        return ()
    if column == "round":
        return ((dataset, "period"),)
    if column == "community_led":
        # the two criteria that must be met (a role nobody reported does not count against)
        return (
            ("organisations", "accountability_mechanism"),
            ("organisations", "agenda_set_by_constituency"),
        )
    if dataset == "facilities":
        return (("facilities", _FACILITY_SOURCES[column]),)
    return (("facilities", "facility_id"), ("facilities", _FACILITY_SOURCES[column]))


#: Roles whose majority must come from the constituency (``<role>_total`` and
#: ``<role>_constituency``): the UNAIDS and Stop AIDS Alliance definition of community-led
#: organisations names governance, leadership, staff, spokespeople, membership and volunteers.
COMMUNITY_LED_ROLES: tuple[str, ...] = (
    "governance",
    "leadership",
    "staff",
    "spokespeople",
    "members",
    "volunteers",
)
#: Every criterion of the definition, in report order.
COMMUNITY_LED_CRITERIA: tuple[str, ...] = (
    *(f"majority_{r}" for r in COMMUNITY_LED_ROLES),
    "accountability_mechanism",
    "autonomy_agenda",
    "autonomy_funding",
)


def community_led_criteria(
    organisations: pd.DataFrame, *, majority: float = 0.5, funding_threshold: float | None = None
) -> pd.DataFrame:
    """Each organisation's status on each community-led criterion (the one rule, vectorised).

    Parameters
    ----------
    organisations
        Canonical ``organisations`` rows.
    majority
        A role meets its criterion when constituency / total is strictly above this share.
    funding_threshold
        When given, ``autonomy_funding`` is met if government + donor share ≤ this value; by
        default funding is "for information" only: the definition asks for autonomy from
        funders' *agendas*, not for a funding source.

    Returns
    -------
    DataFrame
        Same index, one column per :data:`COMMUNITY_LED_CRITERIA`, each ``"meets"``,
        ``"does not meet"``, ``"not reported"`` or ``"for information"``. A role with nobody in
        it (total 0) or without counts is "not reported"; a missing yes/no is "not reported".
    """
    import numpy as np
    import pandas as pd

    out = pd.DataFrame(index=organisations.index)

    def column(name: str) -> pd.Series:  # a column not collected: every value not reported
        if name in organisations.columns:
            return organisations[name]
        return pd.Series(pd.NA, index=organisations.index, dtype="object")

    for role in COMMUNITY_LED_ROLES:
        total = pd.to_numeric(column(f"{role}_total"), errors="coerce").astype(float)
        const = pd.to_numeric(column(f"{role}_constituency"), errors="coerce").astype(float)
        known = total.notna() & const.notna() & (total > 0)
        met = const > majority * total
        out[f"majority_{role}"] = np.where(
            ~known, "not reported", np.where(met, "meets", "does not meet")
        )
    for criterion, source in (
        ("accountability_mechanism", "accountability_mechanism"),
        ("autonomy_agenda", "agenda_set_by_constituency"),
    ):
        flag = column(source).astype("boolean")
        out[criterion] = np.where(
            flag.isna(), "not reported", np.where(flag.fillna(False), "meets", "does not meet")
        )
    gov = pd.to_numeric(column("funding_government_share"), errors="coerce")
    don = pd.to_numeric(column("funding_donor_share"), errors="coerce")
    known = gov.notna() & don.notna()
    if funding_threshold is None:
        funding = np.where(known, "for information", "not reported")
    else:
        ok = (gov + don) <= funding_threshold
        funding = np.where(~known, "not reported", np.where(ok, "meets", "does not meet"))
    out["autonomy_funding"] = funding
    return out


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


def _row_time(name: str, frame: pd.DataFrame) -> pd.Series:
    import pandas as pd

    if name == "routine":
        return pd.to_datetime(frame["period"] + "-01")
    if name == "observations":
        start = rounds_start(frame["round"])
        return frame["date"].fillna(start) if "date" in frame else start
    return frame[TABLES[name].time_column]


def enrich(name: str, frame: pd.DataFrame, facilities: pd.DataFrame | None) -> pd.DataFrame:
    """Return ``frame`` with the derived columns of dataset ``name`` added (a new frame)."""
    import pandas as pd

    out = frame.copy()
    if name in ("routine", "outreach") and "period" in out:
        out["round"] = months_to_rounds(out["period"])
    if name == "facilities":
        if "clm_start" in out:  # not collected: no arms
            out["clm_arm"] = out["clm_start"].notna().map({True: "clm", False: "comparison"})
    elif facilities is not None and "facility_id" in out and name in DERIVED_COLUMNS:
        # only the attributes the country collects (an absent one stays absent downstream)
        wanted = ["facility_id", "region", "district", "type", "ownership", "clm_start"]
        fac = facilities[[c for c in wanted if c in facilities.columns]]
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
        if "clm_start" in out:
            out["clm_arm"] = out["clm_start"].notna().map({True: "clm", False: "comparison"})
            when = _row_time(name, out)
            active = (when >= out["clm_start"]).astype("boolean")
            out["clm_active"] = active.fillna(False)
            out = out.drop(columns=["clm_start"])
    if name == "organisations":
        status = community_led_criteria(out)
        ok = (status != "does not meet").all(axis=1)
        ok &= status["accountability_mechanism"] == "meets"
        ok &= status["autonomy_agenda"] == "meets"
        out["community_led"] = ok.astype("boolean")
    return out
