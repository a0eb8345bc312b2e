"""Rounds, months and dates: the one definition of how the project writes and converts time.

A CLM *round* is a calendar quarter written ``2024Q1``; a routine reporting *month* is written
``2024-03``; a date parameter (``as_of``) is an ISO date ``2025-01-15``. Every conversion between
them (month → round, round → first day) is here, once, and every parse error names the format
expected.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

from clm_research.errors import ParamsError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ROUND_RE",
    "MONTH_RE",
    "ISO_DATE_RE",
    "check_round",
    "check_month",
    "check_iso_date",
    "check_period",
    "parse_as_of",
    "month_to_round",
    "date_to_round",
    "months_to_rounds",
    "round_start",
    "rounds_start",
    "round_end",
]

#: A round (calendar quarter): ``2024Q1``.
ROUND_RE = re.compile(r"^\d{4}Q[1-4]$")
#: A month: ``2024-03``.
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
#: An ISO 8601 calendar date: ``2025-01-15``.
ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_round(value: str) -> str:
    """Return ``value`` if it is a round like ``2024Q1``; raise ``ValueError`` otherwise."""
    if not isinstance(value, str) or not ROUND_RE.match(value):
        raise ValueError(f"round must look like 2024Q1 (year, Q, quarter 1-4), got {value!r}")
    return value


def check_month(value: str) -> str:
    """Return ``value`` if it is a month like ``2024-03``; raise ``ValueError`` otherwise."""
    if not isinstance(value, str) or not MONTH_RE.match(value):
        raise ValueError(f"month must look like 2024-03 (year-month, 01-12), got {value!r}")
    return value


def check_iso_date(value: str | date) -> str:
    """Return an ISO date ``YYYY-MM-DD`` as text; raise ``ValueError`` naming the format.

    ``01/02/2025`` (day/month order unknowable), ``2025-13-01`` (month 13) and ``2025-02-30``
    are all refused: a date parameter is never guessed.
    """
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    if not ISO_DATE_RE.match(text):
        raise ValueError(f"date must be written YYYY-MM-DD (e.g. 2025-01-15), got {value!r}")
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError(
            f"{text!r} is not a calendar date (format YYYY-MM-DD: month 01-12, a day that exists "
            "in that month)"
        ) from None


def check_period(value: str) -> str:
    """Return ``value`` if it is a round like ``2024Q4``; raise :class:`ParamsError` otherwise."""
    try:
        return check_round(value)
    except ValueError:
        raise ParamsError(f"period must be a round like 2024Q4, got {value!r}") from None


def parse_as_of(value: str | date) -> date:
    """The data extraction date as a :class:`datetime.date` (see :func:`check_iso_date`).

    Raises
    ------
    ParamsError
        Naming the format, for anything but a real ``YYYY-MM-DD`` date.
    """
    try:
        return date.fromisoformat(check_iso_date(value))
    except ValueError as e:
        raise ParamsError(f"as_of: {e}") from None


def month_to_round(month: str) -> str:
    """The round (quarter) of a month: ``2024-03`` → ``2024Q1``."""
    check_month(month)
    return f"{month[:4]}Q{(int(month[5:7]) - 1) // 3 + 1}"


def date_to_round(when: date | pd.Timestamp) -> str:
    """The round (quarter) a date falls in: 2024-05-17 → ``2024Q2``."""
    return f"{when.year}Q{(when.month - 1) // 3 + 1}"


def months_to_rounds(months: pd.Series) -> pd.Series:
    """Vectorised :func:`month_to_round` for a text series of months ``YYYY-MM``."""
    text = months.astype("string")
    quarter = ((text.str.slice(5, 7).astype(int) - 1) // 3 + 1).astype(str)
    return text.str.slice(0, 4) + "Q" + quarter


def round_start(round_: str) -> date:
    """First day of a round: ``2024Q2`` → 2024-04-01."""
    check_round(round_)
    return date(int(round_[:4]), 3 * (int(round_[5]) - 1) + 1, 1)


def round_end(round_: str) -> date:
    """Last day of a round: ``2024Q2`` → 2024-06-30."""
    start = round_start(round_)
    if start.month == 10:
        return date(start.year, 12, 31)
    return date.fromordinal(date(start.year, start.month + 3, 1).toordinal() - 1)


def rounds_start(rounds: pd.Series) -> pd.Series:
    """Vectorised :func:`round_start` (as ``datetime64``)."""
    import pandas as pd

    text = rounds.astype("string")
    year = text.str.slice(0, 4).astype(int)
    month = (text.str.slice(5, 6).astype(int) - 1) * 3 + 1
    return pd.to_datetime({"year": year, "month": month, "day": 1})
