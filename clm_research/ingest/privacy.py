"""Personal data stop at ingestion: dropped, or replaced by a keyed pseudonym (UNAIDS, Guidelines on protecting the confidentiality and security of HIV information, 2007).

Names, phone numbers, national ids, dates of birth, free text and GPS positions of people never
reach the processed or quarantine tables. Before a date of birth is dropped the age in completed
years at the interview date is derived from it. Identifiers that must stay linkable (e.g. a
national id used to find repeat visits) are replaced by ``HMAC-SHA256(key, value)``; the key comes
from the environment variable ``CLM_PSEUDONYM_KEY`` and is never written next to the data, so the
pseudonyms cannot be reversed or recomputed without it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence

import pandas as pd

from clm_research.errors import IngestError
from clm_research.schema import PERSONAL_DATA_COLUMNS

__all__ = [
    "PSEUDONYM_KEY_ENV",
    "pseudonym_key",
    "pseudonymise",
    "age_in_years",
    "personal_columns",
]

PSEUDONYM_KEY_ENV = "CLM_PSEUDONYM_KEY"

#: Column-name fragments that always mean personal data, whatever the mapping says.
_PERSONAL_HINTS = (
    "name_of_client",
    "client_name",
    "respondent_name",
    "phone",
    "telephone",
    "mobile_number",
    "date_of_birth",
    "birth_date",
    "national_id",
    "gps",
    "geopoint",
)


def pseudonym_key() -> bytes:
    """The secret key from ``$CLM_PSEUDONYM_KEY``.

    Raises
    ------
    IngestError
        When it is not set or shorter than 16 characters.
    """
    key = os.environ.get(PSEUDONYM_KEY_ENV, "")
    if len(key) < 16:
        raise IngestError(
            f"the mapping asks to pseudonymise columns but ${PSEUDONYM_KEY_ENV} is "
            f"{'not set' if not key else 'shorter than 16 characters'}. Fix: export "
            f"{PSEUDONYM_KEY_ENV}=<a long random secret> (keep it out of the project folder; the "
            "same key gives the same pseudonyms next time)."
        )
    return key.encode("utf-8")


def pseudonymise(values: pd.Series, key: bytes, length: int = 16) -> pd.Series:
    """Replace each value by the first ``length`` hex digits of ``HMAC-SHA256(key, value)``.

    Missing values stay missing; values are trimmed first so ``' 123'`` and ``'123'`` agree.
    """

    def one(v: object) -> object:
        if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
            return pd.NA
        text = str(v).strip()
        if not text:
            return pd.NA
        return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:length]

    return values.map(one).astype("string")


def age_in_years(birth: pd.Series, at: pd.Series) -> pd.Series:
    """Age in completed years at ``at`` (a birthday on the day counts), ``Int64``.

    >>> import pandas as pd
    >>> age_in_years(pd.Series(pd.to_datetime(["2000-03-05", "2000-03-06"])),
    ...              pd.Series(pd.to_datetime(["2024-03-05", "2024-03-05"]))).tolist()
    [24, 23]
    """
    b = pd.to_datetime(birth, errors="coerce")
    a = pd.to_datetime(at, errors="coerce")
    years = a.dt.year - b.dt.year
    before = (a.dt.month < b.dt.month) | ((a.dt.month == b.dt.month) & (a.dt.day < b.dt.day))
    age = years - before.astype("Int64")
    return age.astype("Int64")


def personal_columns(columns: Iterable[str], declared: Sequence[str] = ()) -> list[str]:
    """Export columns holding personal data: declared ones (``fnmatch`` patterns allowed, e.g.
    ``Please specify*``), canonical personal column names and obvious names (phone, GPS…)."""
    out: list[str] = []
    for c in columns:
        low = str(c).strip().lower()
        hit = any(c == d or fnmatch.fnmatchcase(str(c), d) for d in declared)
        if hit or low in PERSONAL_DATA_COLUMNS or any(h in low for h in _PERSONAL_HINTS):
            out.append(c)
    return out
