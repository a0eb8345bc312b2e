"""Time axes: turn months (``2024-03``), rounds (``2024Q1``), dates or numbers into a numeric index."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from clm_research.evaluation._results import EvaluationError

__all__ = ["TimeAxis", "time_axis"]

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")

TimeKind = Literal["month", "quarter", "date", "number"]


@dataclass(frozen=True)
class TimeAxis:
    """A numeric time axis: ``index`` counts months (dates, ``YYYY-MM``), quarters or raw numbers.

    ``season`` is the position within the year (month 1–12, quarter 1–4) when known, and
    ``period`` the number of steps in a year (12, 4, or ``None`` for plain numbers).
    """

    kind: TimeKind
    index: np.ndarray
    season: np.ndarray | None
    period: int | None

    def convert(self, value: Any) -> float:
        """Convert one label (same kind as the axis, e.g. ``"2024-03"``) to the numeric index."""
        return float(_to_index(pd.Series([value]), self.kind, "value")[0][0])

    def convert_many(self, values: pd.Series) -> np.ndarray:
        """Convert a column of labels (same kind as the axis) to the numeric index."""
        return _to_index(values.reset_index(drop=True), self.kind, "value")[0]

    @property
    def unit(self) -> str:
        return {"month": "month", "date": "month", "quarter": "quarter", "number": "time unit"}[
            self.kind
        ]


def _kind_of(s: pd.Series) -> TimeKind:
    if pd.api.types.is_datetime64_any_dtype(s):
        return "date"
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return "number"
    text = s.dropna().astype(str)
    if len(text) and text.str.match(_MONTH).all():
        return "month"
    if len(text) and text.str.match(_QUARTER).all():
        return "quarter"
    return "date"


def _to_index(s: pd.Series, kind: TimeKind, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    if kind == "number":
        vals = pd.to_numeric(s, errors="coerce").to_numpy(float)
        return vals, None
    if kind in ("month", "quarter"):
        text = s.astype(str)
        pat = _MONTH if kind == "month" else _QUARTER
        parts = text.str.extract(pat)
        if parts.isna().any().any():
            bad = parts.isna().any(axis=1).idxmax()
            value = s[parts.isna().any(axis=1)].iloc[0]
            raise EvaluationError(f"{what}: row {bad!r} value {value!r} is not a {kind} label")
        year = parts[0].astype(int).to_numpy()
        sub = parts[1].astype(int).to_numpy()
        per = 12 if kind == "month" else 4
        return (year * per + sub - 1).astype(float), sub
    dates = pd.to_datetime(s, errors="coerce")
    if dates.isna().any():
        bad = dates.isna().idxmax()
        raise EvaluationError(
            f"{what}: row {bad!r} value {s[dates.isna()].iloc[0]!r} is not a date"
        )
    month = dates.dt.month.to_numpy()
    return (dates.dt.year.to_numpy() * 12 + month - 1).astype(float), month


def time_axis(values: pd.Series, what: str = "time") -> TimeAxis:
    """Build a :class:`TimeAxis` from a column of months, rounds, dates or numbers."""
    if values.isna().any():
        bad = values.isna().idxmax()
        raise EvaluationError(f"{what}: time value missing in row {bad!r}")
    kind = _kind_of(values)
    index, season = _to_index(values, kind, what)
    period = {"month": 12, "date": 12, "quarter": 4, "number": None}[kind]
    return TimeAxis(kind, index, season, period)
