"""The facility list a study samples from: read, checked and turned into a sampling frame.

A workshop participant brings a list of the facilities of their programme as a CSV file with
one row per facility and (at least) these columns:

============== ====================================================================
``facility_id`` the facility's code, unique in the file (e.g. the DHIS2 org-unit code)
``district``    the district (or other area) the facility is in; used for strata
``size``        a positive number measuring the facility's size, e.g. the people on ART
                (TX_CURR); used for sampling with probability proportional to size
============== ====================================================================

Other columns (``region``, ``type``, ``ownership``…) are kept as they are and can be used as
strata or in Table 1. A template is ``notebooks/study_design/templates/facilities_template.csv``;
the workshop's default list is the fictional demo country's
(``notebooks/study_design/templates/demo_facilities_XA.csv``, written by
:func:`demo_facility_list` from the demo generator).

Nothing is changed silently: a list with a missing column, an empty or repeated facility id, a
size that is not a positive number, or a file that is not UTF-8 text is refused with every
problem named by file, row (as a spreadsheet numbers it: the header is row 1), column and rule.
No row is dropped, because dropping a facility would change every inclusion probability.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pandas as pd

from clm_research.errors import DesignInputError
from clm_research.paths import project_root

__all__ = [
    "FACILITY_LIST_COLUMNS",
    "templates_dir",
    "demo_facility_list_path",
    "read_facility_list",
    "sampling_frame",
    "demo_facility_list",
]

#: Columns every facility list must have, in the template's order.
FACILITY_LIST_COLUMNS: tuple[str, ...] = ("facility_id", "district", "size")

# a list with more problems than this is shown with the first ones and a count
_MAX_SHOWN = 10


def templates_dir() -> Path:
    """``notebooks/study_design/templates/``: the facility-list template and the demo list."""
    return project_root() / "notebooks" / "study_design" / "templates"


def demo_facility_list_path(country: str = "XA") -> Path:
    """The committed facility list of a fictional demo country (the workshop default)."""
    return templates_dir() / f"demo_facilities_{country}.csv"


def _problems_message(source: str, problems: list[str]) -> str:
    shown = problems[:_MAX_SHOWN]
    more = len(problems) - len(shown)
    head = f"facility list {source}: {len(problems)} problem(s); nothing was changed or dropped"
    lines = [head, *(f"  - {p}" for p in shown)]
    if more:
        lines.append(f"  - … and {more} more")
    return "\n".join(lines)


def _check(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate a facility list read as text; return it with ``size`` as a number."""
    columns = [str(c).strip() for c in frame.columns]
    dup_cols = sorted({c for c in columns if columns.count(c) > 1})
    if dup_cols:
        raise DesignInputError(
            f"facility list {source}: column(s) {', '.join(dup_cols)} appear more than once "
            "in the header (rule: one column per name)"
        )
    frame = frame.set_axis(columns, axis=1)
    missing = [c for c in FACILITY_LIST_COLUMNS if c not in frame.columns]
    if missing:
        raise DesignInputError(
            f"facility list {source}: row 1 (header) has no column {', '.join(missing)} "
            f"(rule: the columns {', '.join(FACILITY_LIST_COLUMNS)} are required; found "
            f"{', '.join(columns) or 'none'})"
        )
    if frame.empty:
        raise DesignInputError(f"facility list {source}: no facilities below the header row")
    problems: list[str] = []
    sizes: list[float] = []
    first_row: dict[str, int] = {}
    for i, rec in enumerate(frame.to_dict("records")):
        row = i + 2  # the header is row 1
        fid = str(rec["facility_id"]).strip()
        if not fid:
            problems.append(
                f"row {row}, column facility_id: empty (rule: every facility has an id)"
            )
        elif fid in first_row:
            problems.append(
                f"row {row}, column facility_id: {fid!r} is already used in row {first_row[fid]} "
                "(rule: each facility once)"
            )
        else:
            first_row[fid] = row
        if not str(rec["district"]).strip():
            problems.append(
                f"row {row}, column district: empty (rule: every facility is in a district)"
            )
        raw = str(rec["size"]).strip()
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not raw:
            problems.append(
                f"row {row}, column size: empty (rule: size is a positive number, e.g. the "
                "people on ART)"
            )
        elif not math.isfinite(value) or value <= 0:
            problems.append(
                f"row {row}, column size: {raw!r} is not a positive number (rule: size is a "
                "positive number written with digits and a decimal point, e.g. 1234 or 56.5)"
            )
        sizes.append(value)
    if problems:
        raise DesignInputError(_problems_message(source, problems))
    out = frame.copy()
    out["facility_id"] = out["facility_id"].str.strip()
    out["district"] = out["district"].str.strip()
    out["size"] = sizes
    return out.reset_index(drop=True)


def read_facility_list(path: str | Path) -> pd.DataFrame:
    """Read and check a facility list CSV (see the module docstring for the columns and rules).

    Parameters
    ----------
    path
        The CSV file (UTF-8, comma-separated, header in the first row).

    Returns
    -------
    pandas.DataFrame
        One row per facility in the file's order: ``facility_id``, ``district``, ``size``
        (float) and any other columns as text.

    Raises
    ------
    DesignInputError
        Naming the file, and for each problem the row, the column and the rule.

    Examples
    --------
    >>> frame = read_facility_list(demo_facility_list_path("XA"))
    >>> list(frame.columns[:3]), frame["facility_id"].is_unique
    (['facility_id', 'district', 'size'], True)
    """
    p = Path(path)
    if not p.is_file():
        raise DesignInputError(
            f"facility list {p}: no such file (copy "
            "notebooks/study_design/templates/facilities_template.csv and fill it in)"
        )
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DesignInputError(
            f"facility list {p}: byte {e.start} is not UTF-8 text (rule: save the CSV as "
            "'CSV UTF-8' from your spreadsheet)"
        ) from None
    if not text.strip():
        raise DesignInputError(
            f"facility list {p}: the file is empty (rule: a header row "
            f"with {', '.join(FACILITY_LIST_COLUMNS)}, then one row per facility)"
        )
    rows = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
    header, body = rows[0], rows[1:]
    ragged = [
        f"row {i + 2}: {len(r)} values but the header has {len(header)} columns (rule: one "
        "value per column; a comma inside a value, such as a decimal comma, needs quotes)"
        for i, r in enumerate(body)
        if len(r) != len(header)
    ]
    if ragged:
        raise DesignInputError(_problems_message(str(p), ragged))
    frame = pd.DataFrame(body, columns=header, dtype=str)
    return _check(frame, str(p))


def sampling_frame(facility_list: str | Path | pd.DataFrame | None = None) -> pd.DataFrame:
    """The sampling frame of a study: the checked facility list, one row per facility.

    The one entry point the workshop notebooks use (sampling in ``04_sampling_facilities``,
    Table 1 in ``06_publishing``), so both read a list the same way.

    Parameters
    ----------
    facility_list
        A CSV path, a table with the same columns, or ``None`` for the demo list of the
        fictional country XA (:func:`demo_facility_list_path`).

    Returns
    -------
    pandas.DataFrame
        ``facility_id``, ``district``, ``size`` and the list's other columns.

    Raises
    ------
    DesignInputError
        When the list breaks a rule (file, row, column and rule named).

    Examples
    --------
    >>> table = pd.DataFrame({"facility_id": ["F1", "F2"], "district": ["North", "South"],
    ...                       "size": ["120", "80.5"]})
    >>> sampling_frame(table)["size"].tolist()
    [120.0, 80.5]
    """
    if facility_list is None:
        return read_facility_list(demo_facility_list_path())
    if isinstance(facility_list, pd.DataFrame):
        text = facility_list.astype(object).where(facility_list.notna(), "").astype(str)
        return _check(text, "(table)")
    return read_facility_list(facility_list)


def demo_facility_list(country: str) -> pd.DataFrame:
    """The facility list of a fictional demo country, from the demo generator.

    ``size`` is the mean number of people on ART (``tx_curr``) over the last 12 months of the
    country's routine data, rounded to a whole number; ``region`` and ``type`` are kept for
    strata and Table 1. Coordinates and names are left out: a sampling frame does not need them.

    Examples
    --------
    >>> frame = demo_facility_list("XA")                                # doctest: +SKIP
    >>> frame.columns.tolist()                                          # doctest: +SKIP
    ['facility_id', 'district', 'size', 'region', 'type']
    """
    from clm_research.demo import generate_country

    clean = generate_country(country).clean
    routine = clean["routine"]
    last12 = sorted(routine["period"].unique())[-12:]
    size = (
        routine[routine["period"].isin(last12)]
        .groupby("facility_id")["tx_curr"]
        .mean()
        .round()
        .astype(int)
        .rename("size")
    )
    facilities = clean["facilities"][["facility_id", "district", "region", "type"]]
    frame = facilities.merge(size, on="facility_id", how="left")
    if frame["size"].isna().any():
        raise DesignInputError(f"demo country {country}: a facility has no routine data")
    frame = frame[["facility_id", "district", "size", "region", "type"]]
    return frame.astype({"district": str, "region": str, "type": str}).reset_index(drop=True)
