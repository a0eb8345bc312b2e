"""Row-level data-quality rules of the canonical model as vectorised pandas masks.

Every mask is derived from :mod:`clm_research.schema` (and the consistency pairs below), the same
definitions the Great Expectations suites in :mod:`clm_research.quality.suites` are built from.
A mask is ``True`` where a row *fails* the rule. Rule labels are ``"<rule>:<column>"`` with rule
names from :data:`clm_research.schema.RULES`, e.g. ``"range:wait_minutes"``.

Missing values are never a range, pattern or allowed-value failure; they fail only
``not_null`` when the column is required (the Great Expectations convention too).

Two rules are checked here only, row by row (no Great Expectations expectation compares a text
period with a date): ``future_date`` of a reporting month or round that starts after the
extraction date (:data:`ROW_ONLY_RULES`), and ``outside_round``, a dated row (interview,
visit, issue) whose date is not in its round.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clm_research.schema import MONTH_PATTERN, ROUND_PATTERN, RULES, Table

__all__ = [
    "Consistency",
    "CONSISTENCY",
    "rule_label",
    "ROW_ONLY_RULES",
    "row_masks",
    "failed_rules_column",
]


@dataclass(frozen=True)
class Consistency:
    """``smaller`` must not exceed ``larger`` in the same row (rule ``inconsistent``).

    The failure is labelled with ``smaller`` (the number that should be the part of the whole).
    """

    table: str
    smaller: str
    larger: str


def _org_pairs() -> tuple[Consistency, ...]:
    roles = ("governance", "leadership", "staff", "spokespeople", "members", "volunteers")
    return tuple(Consistency("organisations", f"{r}_constituency", f"{r}_total") for r in roles)


#: Internal consistency between related numbers (WHO DQR dimension 3) checked row by row.
#: Dates follow the same logic: an issue cannot be escalated or resolved before it was found.
CONSISTENCY: tuple[Consistency, ...] = (
    Consistency("routine", "vl_suppressed", "vl_tested"),
    Consistency("routine", "positives", "tests"),
    Consistency("routine", "interruptions", "tx_curr"),
    Consistency("routine", "tx_new", "tx_curr"),
    Consistency("outreach", "referrals_completed", "referrals_made"),
    Consistency("outreach", "violence_responded_24h", "violence_reported"),
    Consistency("issues", "identified_on", "escalated_on"),
    Consistency("issues", "identified_on", "action_agreed_on"),
    Consistency("issues", "identified_on", "resolved_on"),
    *_org_pairs(),
)


#: Rule labels the gate checks row by row without a Great Expectations expectation: a month or
#: round after the extraction date, a date outside its round.
ROW_ONLY_RULES: tuple[str, ...] = (
    "future_date:period",
    "future_date:round",
    "outside_round:date",
    "outside_round:identified_on",
)


def _period_start(s: pd.Series, pattern: str) -> pd.Series:
    """First day of each well-formed month (``2024-03``) or round (``2024Q1``); else NaT."""
    text = s.astype("string")
    ok = text.str.fullmatch(pattern.strip("^$")).fillna(False)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    if not ok.any():
        return out
    good = text[ok]
    year = good.str.slice(0, 4).astype(int)
    if pattern == MONTH_PATTERN:
        month = good.str.slice(5, 7).astype(int)
    else:
        month = (good.str.slice(5, 6).astype(int) - 1) * 3 + 1
    out[ok] = pd.to_datetime({"year": year, "month": month, "day": 1}).astype("datetime64[ns]")
    return out


def rule_label(rule: str, column: str) -> str:
    """Return ``"rule:column"``, checking that ``rule`` is one of :data:`schema.RULES`."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; known rules: {', '.join(RULES)}")
    return f"{rule}:{column}"


def _as_bool(mask: pd.Series | np.ndarray) -> np.ndarray:
    if isinstance(mask, pd.Series):
        return mask.fillna(False).to_numpy(dtype=bool)
    return np.asarray(mask, dtype=bool)


def row_masks(
    frame: pd.DataFrame,
    table: Table,
    references: Mapping[str, pd.Series] | None = None,
    as_of: pd.Timestamp | None = None,
) -> dict[str, np.ndarray]:
    """Compute the failing-row mask of every row-level rule for one canonical table.

    Parameters
    ----------
    frame
        The table in canonical dtypes (integers ``Int64``, booleans ``boolean``, dates
        ``datetime64``). Columns absent from ``frame`` are skipped (a missing required column is
        a table-level failure, reported elsewhere).
    table
        The schema definition of the table.
    references
        ``"ref_table.ref_column"`` -> the known ids, for referential integrity. A foreign key
        whose referenced ids are not given is not checked.
    as_of
        Data extraction date; dates after it fail ``future_date``. ``None``: not checked.

    Returns
    -------
    dict
        ``"rule:column"`` -> boolean ndarray (``True`` = the row fails). Only rules with at
        least one failing row are included.
    """
    references = references or {}
    out: dict[str, np.ndarray] = {}

    def add(rule: str, column: str, mask: pd.Series | np.ndarray) -> None:
        m = _as_bool(mask)
        if m.any():
            label = rule_label(rule, column)
            out[label] = out[label] | m if label in out else m

    for col in table.columns:
        if col.name not in frame.columns:
            continue
        s = frame[col.name]
        present = s.notna()
        if col.required:
            add("not_null", col.name, ~present)
        if col.allowed is not None:
            if col.dtype == "integer":
                allowed = pd.Series(s).isin([int(a) for a in col.allowed])
            else:
                allowed = s.astype("string").isin([str(a) for a in col.allowed])
            add("allowed_values", col.name, present & ~allowed.fillna(False))
        if col.minimum is not None or col.maximum is not None:
            if col.dtype == "date":
                continue
            num = pd.to_numeric(s, errors="coerce")
            bad = pd.Series(False, index=s.index)
            if col.minimum is not None:
                bad = bad | (num < col.minimum).fillna(False)
            if col.maximum is not None:
                bad = bad | (num > col.maximum).fillna(False)
            add("range", col.name, bad)
        if col.pattern is not None:
            ok = s.astype("string").str.fullmatch(col.pattern.strip("^$"))
            add("pattern", col.name, present & ~ok.fillna(False))
        if col.dtype == "date" and as_of is not None:
            d = pd.to_datetime(s, errors="coerce")
            add("future_date", col.name, (d > as_of).fillna(False))
        if col.pattern in (MONTH_PATTERN, ROUND_PATTERN) and as_of is not None:
            # a DHIS2 period 203105 or a round 2031Q2 that starts after the extraction date
            add("future_date", col.name, (_period_start(s, col.pattern) > as_of).fillna(False))

    time_col = table.time_column
    if (
        time_col is not None
        and "round" in frame.columns
        and time_col in frame.columns
        and table.column(time_col).dtype == "date"
        and "round" in table
        and table.column("round").pattern == ROUND_PATTERN
    ):
        # the round names a quarter: a date outside it is a wrong date or a wrong round
        start = _period_start(frame["round"], ROUND_PATTERN)
        when = pd.to_datetime(frame[time_col], errors="coerce")
        end = start + pd.DateOffset(months=3)
        add("outside_round", time_col, ((when < start) | (when >= end)).fillna(False))

    key = list(table.primary_key)
    if all(k in frame.columns for k in key):
        complete = frame[key].notna().all(axis=1)
        dup = frame[key].duplicated(keep="first") & complete
        add("duplicate_key", "+".join(key), dup)

    for fk in table.foreign_keys:
        ref = references.get(f"{fk.ref_table}.{fk.ref_column}")
        if ref is None or fk.column not in frame.columns:
            continue
        s = frame[fk.column]
        known = s.isin(pd.Index(ref.dropna().unique()))
        add("unknown_reference", fk.column, s.notna() & ~known.fillna(False))

    for pair in CONSISTENCY:
        if pair.table != table.name:
            continue
        if pair.smaller not in frame.columns or pair.larger not in frame.columns:
            continue
        small, large = frame[pair.smaller], frame[pair.larger]
        if table.column(pair.smaller).dtype == "date":
            # identified_on must not come after the later date
            bad = (pd.to_datetime(small) > pd.to_datetime(large)).fillna(False)
            add("inconsistent", pair.larger, bad)
        else:
            bad = (pd.to_numeric(small) > pd.to_numeric(large)).fillna(False)
            add("inconsistent", pair.smaller, bad)
    return out


def failed_rules_column(masks: Mapping[str, np.ndarray], n_rows: int) -> pd.Series:
    """Join the failing rule labels of every row with ``"; "`` (``""`` for a clean row).

    Labels are written in a stable order: the order of ``masks``.
    """
    out = np.full(n_rows, "", dtype=object)
    for label, mask in masks.items():
        m = np.asarray(mask, dtype=bool)
        if not m.any():
            continue
        cur = out[m]
        out[m] = np.where(cur == "", label, cur + "; " + label)
    return pd.Series(out, dtype="string")
