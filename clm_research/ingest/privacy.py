"""Personal data stop at ingestion: dropped, pseudonymised, or masked (UNAIDS, Guidelines on protecting the confidentiality and security of HIV information, 2007).

Three lines of defence, in the order staging applies them:

1. **Personal columns are dropped.** Names, phone numbers, national ids, dates of birth, free
   text and GPS positions of people (declared in the mapping, or recognised by their column
   name) never reach the processed or quarantine tables. Before a date of birth is dropped the
   age in completed years at the interview date is derived from it.
2. **Linkable identifiers are pseudonymised.** Identifiers that must stay linkable (e.g. a
   national id used to find repeat visits) are replaced by ``HMAC-SHA256(key, value)``; the key
   comes from the environment variable ``CLM_PSEUDONYM_KEY`` and is never written next to the
   data, so the pseudonyms cannot be reversed or recomputed without it.
3. **Personal data typed into any other column are masked.** A name typed into ``sex``, a phone
   number into ``age``, an e-mail address into a yes/no answer: :func:`mask_personal_data`
   replaces every cell that looks like a name, phone number, e-mail address, national id or date
   of birth by a reason code such as ``[masked: phone number]`` before anything is written (the
   processed tables, the quarantine and its ``raw_values``, the manifest's unknown labels) or
   shown (the Great Expectations Data Docs). The row is quarantined with the rule
   ``personal_data:<column>``, so nothing is changed silently; ``source_file`` and
   ``source_row`` in the quarantine point the data manager to the cell in the raw export.

What the detectors look for depends on what the column may legitimately hold
(:func:`column_policy`), so that legitimate data are never masked:

========== ============================================ ===========================================
kind       columns                                      masked when the value looks like
========== ============================================ ===========================================
closed     categories, yes/no answers, coded strings    a name (words that are not answers of the
           (``round``, ``period``)                      column), a phone number, an e-mail
                                                        address, a national id, a date of birth
number     integers and decimals                        the same, but a number is a number: only a
                                                        leading ``+``, a leading ``0`` with nine
                                                        or more digits (a phone number) or eight
                                                        or more integer digits (an identifier,
                                                        e.g. a Kenyan national id: no count or
                                                        measure of the data model, per facility
                                                        or site and month, comes near 10 million)
                                                        is masked
date       dates                                        a name, phone number, e-mail address or
                                                        national id; a date is the column's data
identifier ``*_id`` columns (facility, interview, ...)  an e-mail address, a phone number written
                                                        with ``+`` or spaces, a whole value that is
                                                        a date of birth; ids of letters, digits and
                                                        dashes (``XA-F001``, uuids, Kobo ``_id``
                                                        numbers) are never masked
free       names of facilities, organisations,          a phone number, an e-mail address, a
           regions and districts                        national id, a date of birth; never a name
                                                        (places and organisations are often named
                                                        after people: no rule tells them apart)
========== ============================================ ===========================================

A *date of birth* is a full date (or a month and year) at least the data model's minimum age
(15 years, ``interviews.age``) and at most 120 years before the extraction date; a recent date
(an event typed into the wrong column) is shown as it is. A *name* is one to five words of
letters in which no word is an answer of the column, a known label, or a common answer word
(:data:`ANSWER_WORDS`), allowing one typing error in words of five letters or more; a single
word counts only when it is capitalised (``Amara``, not ``maybe``). Names cannot be recognised
in identifier and free-text columns; the Data Docs therefore never show sample values of the
tables whose rows are people or key-population sites (``Table.sensitive``), and the quarantine
files are readable by their owner only.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from clm_research.errors import IngestError
from clm_research.schema import KEY_POPULATIONS, PERSONAL_DATA_COLUMNS, TABLES, Column, Table

__all__ = [
    "PSEUDONYM_KEY_ENV",
    "pseudonym_key",
    "pseudonymise",
    "age_in_years",
    "personal_columns",
    "REASONS",
    "ANSWER_WORDS",
    "ColumnKind",
    "ColumnPolicy",
    "column_kind",
    "column_policy",
    "personal_data_in",
    "mask_text",
    "is_masked",
    "Masking",
    "mask_personal_data",
    "mask_label_counts",
    "make_private_folder",
]

PSEUDONYM_KEY_ENV = "CLM_PSEUDONYM_KEY"

#: Column-name fragments that always mean personal data, whatever the mapping says.
_PERSONAL_HINTS = (
    "name_of_client",
    "client_name",
    "respondent_name",
    "first_name",
    "last_name",
    "surname",
    "full_name",
    "username",
    "user_name",
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


# --------------------------------------------------------------------------------------------
# Masking personal data typed into the wrong column
# --------------------------------------------------------------------------------------------

#: The reason codes of masked cells, in the order they are listed in ``[masked: …]``.
REASONS: tuple[str, ...] = (
    "name",
    "phone number",
    "e-mail address",
    "national id",
    "date of birth",
)

_MASK_PREFIX = "[masked: "

ColumnKind = Literal["closed", "number", "date", "identifier", "free"]

_MONTH_NAMES: tuple[str, ...] = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)

#: Words of survey answers that are never a person's name: no/unknown answers, sex and gender,
#: key populations, Likert scales, units, numbers in words, months, function words, and the
#: yes/no and sex answers of French, Portuguese and Swahili exports. The column's own allowed
#: values and the mapping's labels are added per column (:func:`column_policy`).
ANSWER_WORDS: frozenset[str] = frozenset(
    """
    yes no true false none other others unknown missing refused refuse refusal declined decline
    prefer not to say applicable dont don't do does know sure unsure maybe perhaps skip skipped
    blank null nil empty nothing n/a na nk dk
    male female man woman men women boy girl boys girls adolescent adolescents youth young adult
    adults child children elderly transgender trans transwoman transman intersex nonbinary
    non binary gender diverse queer lesbian gay bisexual cisgender
    sex worker workers work msm who have has with without people person persons inject injects
    injecting drug drugs use uses using user users prisoner prisoners prison incarcerated closed
    setting settings client clients patient patients key population populations general public
    member members community fsw msw pwid pwud tg lgbt lgbtq lgbti plhiv hiv art arv prep pep
    never rarely sometimes often always usually very good poor bad fair okay ok excellent
    satisfied dissatisfied unsatisfied neutral neither nor agree disagree strongly somewhat
    average clean dirty kind rude respect respectful disrespectful
    and or of the a an in on at for by from into is are was were be been than more less about
    per over under above below not yet
    month months week weeks day days hour hours minute minutes mins min year years time times
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty
    ninety hundred
    jan feb mar apr jun jul aug sep sept oct nov dec
    oui non homme femme masculin feminin féminin autre sim não nao homem mulher masculino
    feminino outro outra ndiyo hapana mwanamke mwanaume
    hospital clinic dispensary health centre center facility private ngo faith based
    contact phone tel telephone mobile cell email e-mail mail number name id
    """.split()
) | frozenset(_MONTH_NAMES)


def _schema_words() -> frozenset[str]:
    """Every word of every allowed value of the data model (``sex_worker`` → sex, worker)."""
    words: set[str] = set()
    for table in TABLES.values():
        for col in table.columns:
            for value in col.allowed or ():
                words |= set(_split_words(str(value)))
    return frozenset(words | set(KEY_POPULATIONS))


def _split_words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s_/\-]+", text.casefold()) if w]


@dataclass(frozen=True)
class ColumnPolicy:
    """What the detectors look for in one canonical column (see the module docstring)."""

    column: str
    kind: ColumnKind
    #: Words that are answers, not names (lower case).
    vocabulary: frozenset[str] = field(default=frozenset(), repr=False)


def column_kind(column: Column) -> ColumnKind:
    """The kind of a canonical column: what it may legitimately hold.

    >>> from clm_research.schema import TABLES
    >>> [column_kind(TABLES["interviews"].column(c)) for c in ("sex", "age", "date", "interview_id")]
    ['closed', 'number', 'date', 'identifier']
    >>> column_kind(TABLES["facilities"].column("name"))
    'free'
    """
    if column.dtype == "date":
        return "date"
    if column.dtype in ("integer", "float"):
        return "number"
    if column.dtype in ("boolean", "category"):
        return "closed"
    if column.name.endswith("_id"):
        return "identifier"
    if column.pattern is not None:
        return "closed"
    return "free"


def column_policy(column: Column, labels: Iterable[object] = ()) -> ColumnPolicy:
    """The masking policy of ``column``; ``labels`` are the answer labels the mapping knows."""
    vocab = set(ANSWER_WORDS) | set(_schema_words())
    for label in labels:
        if isinstance(label, str):
            vocab |= set(_split_words(label))
    return ColumnPolicy(column.name, column_kind(column), frozenset(vocab))


def is_masked(value: object) -> bool:
    """``True`` for a cell already replaced by a reason code (``[masked: …]``)."""
    return isinstance(value, str) and value.startswith(_MASK_PREFIX)


def _marker(reasons: Iterable[str]) -> str:
    found = set(reasons)
    return _MASK_PREFIX + ", ".join(r for r in REASONS if r in found) + "]"


_EMAIL = re.compile(r"[\w.%+'-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_MONTH_NUMBER = {m[:3]: i + 1 for i, m in enumerate(_MONTH_NAMES)}
# full dates: 1961-03-14, 14/03/1961, 03.14.61, 14 March 1961, Mar 14, 1961
_YMD = re.compile(r"(?<![\d])(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?![\d])")
_DMY = re.compile(r"(?<![\d])(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})(?![\d])")
_D_MON_Y = re.compile(
    rf"(?<![\w])(\d{{1,2}})(?:st|nd|rd|th)?[\s./-]*({_MONTH})\.?[\s,./-]*(\d{{4}}|\d{{2}})(?![\d])",
    re.IGNORECASE,
)
_MON_D_Y = re.compile(
    rf"(?<![\w])({_MONTH})\.?\s*(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}}|\d{{2}})(?![\d])",
    re.IGNORECASE,
)
# a month and a year, only as the whole value: 1961-03, 03/1961, March 1961
_YM = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})\s*$")
_MY = re.compile(r"^\s*(\d{1,2})[-/.](\d{4})\s*$")
_MON_Y = re.compile(rf"^\s*({_MONTH})\.?[\s,./-]*(\d{{4}})\s*$", re.IGNORECASE)
_YEAR_RANGE = re.compile(r"^\s*\d{4}\s*[-/]\s*\d{2,4}\s*$")
# digit runs: +999 555 010 7341, (021) 555-0107, 0825551234
_PHONE_RUN = re.compile(r"(?<![\w+\-])\+?\s?\(?\d(?:[\s().\-]{0,3}\d)+\)?")
_NUMBER = re.compile(r"^\s*([-+]?)(\d+)(?:[.,]\d+)?\s*$")
# national ids mixing letters and digits: 63-123456X42, A1234567, CM90012345ABCD
_ALNUM_ID = re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[^\W\d_])[^\W_][\w-]{6,24}(?![\w-])")
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*")
_NOT_NAME = re.compile(r"[^\w\s'\u2019.,\-]|_")


def _years(text: str) -> list[int]:
    y = int(text)
    return [y] if len(text) == 4 else [1900 + y, 2000 + y]


def _is_birth_year(years: list[int], month_ok: bool, as_of: date, min_age: int) -> bool:
    """Old enough to be a client's birth (and not a plausible recent event)."""
    if not month_ok:
        return False
    ages = [as_of.year - y for y in years]
    return any(min_age <= a <= 120 for a in ages) and not any(-1 <= a < min_age for a in ages)


def _dates(value: str, as_of: date, min_age: int, whole: bool) -> tuple[bool, str]:
    """(a date of birth was found, the value with every date removed)."""
    found = False
    rest = value
    for pattern in (_YMD, _DMY, _D_MON_Y, _MON_D_Y):
        for m in list(pattern.finditer(rest)):
            if whole and m.group(0).strip() != value.strip():
                continue
            g = m.groups()
            if pattern is _YMD:
                years, month_ok = _years(g[0]), 1 <= int(g[1]) <= 12 and 1 <= int(g[2]) <= 31
            elif pattern is _DMY:
                a, b = int(g[0]), int(g[1])
                years = _years(g[2])
                month_ok = (1 <= b <= 12 and 1 <= a <= 31) or (1 <= a <= 12 and 1 <= b <= 31)
            elif pattern is _D_MON_Y:
                years, month_ok = _years(g[2]), 1 <= int(g[0]) <= 31
            else:
                years, month_ok = _years(g[2]), 1 <= int(g[1]) <= 31
            if not month_ok:
                continue
            found = found or _is_birth_year(years, month_ok, as_of, min_age)
            rest = rest.replace(m.group(0), " ")
    for pattern in (_YM, _MY, _MON_Y):
        month_year = pattern.match(rest)
        if month_year is None:
            continue
        g = month_year.groups()
        if pattern is _YM:
            years, month_ok = _years(g[0]), 1 <= int(g[1]) <= 12
        elif pattern is _MY:
            years, month_ok = _years(g[1]), 1 <= int(g[0]) <= 12
        else:
            years, month_ok = _years(g[1]), g[0][:3].lower() in _MONTH_NUMBER
        if month_ok:
            found = found or _is_birth_year(years, month_ok, as_of, min_age)
            rest = " "
    return found, rest


def _phones(value: str, kind: ColumnKind) -> tuple[set[str], str]:
    """Reasons found among the digit runs (phone number, national id) and the rest."""
    reasons: set[str] = set()
    rest = value
    for m in list(_PHONE_RUN.finditer(value)):
        run = m.group(0).strip()
        digits = re.sub(r"\D", "", run)
        if not 7 <= len(digits) <= 15 or _YEAR_RANGE.match(run):
            continue
        seps = re.findall(r"(?<=\d)([\s().\-]+)(?=\d)", run)
        spaced = any(s.strip() == "" or "(" in s or ")" in s for s in seps)
        plus = run.startswith("+")
        if kind == "identifier":
            phone = plus or spaced
            national = False
        else:
            grouped = spaced or any("-" in s for s in seps) or run.count(".") >= 2
            phone = plus or grouped or digits.startswith("00")
            phone = phone or (digits.startswith("0") and len(digits) >= 9 and not seps)
            national = not phone and not seps and len(digits) >= 8
        if phone or national:
            reasons.add("phone number" if phone else "national id")
            rest = rest.replace(m.group(0), " ")
    return reasons, rest


def _edit_distance_at_most(a: str, b: str, limit: int) -> bool:
    """Levenshtein distance of ``a`` and ``b`` is at most ``limit`` (small limits, short words)."""
    if abs(len(a) - len(b)) > limit:
        return False
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > limit:
            return False
        prev = cur
    return prev[-1] <= limit


def _known_word(word: str, vocabulary: frozenset[str]) -> bool:
    w = word.casefold().replace("\u2019", "'")
    if w in vocabulary:
        return True
    parts = [p for p in re.split(r"[-']", w) if p]
    if len(parts) > 1 and all(p in vocabulary for p in parts):
        return True
    # one typing error in a word of five letters or more (femal, transgender → transgnder);
    # shorter words must match exactly, or names such as Mary (may) would pass as answers
    if len(w) >= 5:
        limit = 2 if len(w) >= 8 else 1
        return any(
            len(v) >= 5 and _edit_distance_at_most(w, v, limit)
            for v in vocabulary
            if abs(len(v) - len(w)) <= limit
        )
    return False


def _looks_like_name(text: str, vocabulary: frozenset[str]) -> bool:
    s = text.strip(" \t\r\n,;:()[]\"'")
    if not s or any(ch.isdigit() for ch in s) or _NOT_NAME.search(s):
        return False
    tokens = _WORD.findall(s)
    if not tokens or len(tokens) > 5:
        return False
    words = [t for t in tokens if len(t) >= 2]  # initials (A. Moyo) neither make nor break a name
    if not words:
        return False
    unknown = [w for w in words if not _known_word(w, vocabulary)]
    if len(tokens) == 1:
        w = tokens[0]
        short_code = w.isupper() and len(w) <= 4  # MSM, FSW, PWID, DK
        return bool(unknown) and len(w) >= 3 and w[0].isupper() and not short_code
    if len(unknown) == len(words):
        return True
    return sum(1 for w in unknown if w[0].isupper()) >= 2


def personal_data_in(
    value: str,
    policy: ColumnPolicy,
    as_of: date | None = None,
    *,
    min_age: int | None = None,
) -> tuple[str, ...]:
    """The kinds of personal data ``value`` looks like in a column of ``policy``'s kind.

    Parameters
    ----------
    value
        One cell, as text.
    policy
        The column's policy (:func:`column_policy`).
    as_of
        The extraction date dates of birth are measured from (default: today).
    min_age
        The youngest client's age (default: the data model's minimum of ``interviews.age``).

    Returns
    -------
    tuple of str
        Reasons from :data:`REASONS` (empty: nothing personal found).

    Examples
    --------
    >>> from clm_research.schema import TABLES
    >>> sex = column_policy(TABLES["interviews"].column("sex"))
    >>> personal_data_in("Amara Moyo", sex), personal_data_in("sex worker", sex)
    (('name',), ())
    >>> age = column_policy(TABLES["interviews"].column("age"))
    >>> personal_data_in("+999 555 010 7341", age), personal_data_in("34", age)
    (('phone number',), ())
    """
    if not isinstance(value, str) or is_masked(value) or not value.strip():
        return ()
    kind = policy.kind
    as_of = as_of or date.today()
    if min_age is None:
        minimum = TABLES["interviews"].column("age").minimum
        min_age = int(minimum) if minimum is not None else 15
    reasons: set[str] = set()
    number = _NUMBER.match(value)
    if number is not None and kind != "identifier":
        sign, integer = number.groups()
        if sign == "+" and len(integer) >= 7:
            return ("phone number",)
        if integer.startswith("0") and len(integer) >= 9:
            return ("phone number",)
        if len(integer) >= 8:
            return ("national id",)
        return ()  # a number is a number
    rest = value
    if "@" in rest:
        if _EMAIL.search(rest):
            reasons.add("e-mail address")
            rest = _EMAIL.sub(" ", rest)
    # dates are taken out first so that their digits are not read as a phone number; in a
    # date column a date is the column's own data, never masked
    dob, rest = _dates(rest, as_of, min_age, whole=kind == "identifier")
    if dob and kind != "date":
        reasons.add("date of birth")
    if kind != "identifier":  # ids mix letters and digits by design (XA-I0000001)
        for m in list(_ALNUM_ID.finditer(rest)):
            # seven digits or more: DHIS2 periods (2024W13, 2024BiW10) and codes have fewer
            if sum(ch.isdigit() for ch in m.group(0)) >= 7:
                reasons.add("national id")
                rest = rest.replace(m.group(0), " ")
    found, rest = _phones(rest, kind)
    reasons |= found
    if kind in ("closed", "number", "date") and _looks_like_name(rest, policy.vocabulary):
        reasons.add("name")
    return tuple(r for r in REASONS if r in reasons)


def mask_text(
    value: str, policy: ColumnPolicy, as_of: date | None = None, *, min_age: int | None = None
) -> str | None:
    """``[masked: <reasons>]`` when ``value`` looks like personal data, else ``None``."""
    reasons = personal_data_in(value, policy, as_of, min_age=min_age)
    return _marker(reasons) if reasons else None


@dataclass
class Masking:
    """What :func:`mask_personal_data` did to one table (counts only, never the values)."""

    frame: pd.DataFrame
    #: column → boolean array, ``True`` where the cell was masked
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    #: column → reason code → cells masked
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def rule_masks(self) -> dict[str, np.ndarray]:
        """``personal_data:<column>`` → rows to quarantine (the gate's prefailed rules)."""
        return {f"personal_data:{c}": m for c, m in self.masks.items() if m.any()}


def _as_date(as_of: object) -> date:
    if as_of is None:
        return date.today()
    return pd.Timestamp(as_of).date()  # type: ignore[arg-type]


#: Cheap, vectorised first pass for identifier columns (a million distinct interview ids): a
#: superset of what the detectors find in such a column (RE2 syntax, run by pyarrow). Other
#: columns hold few distinct values (numbers take the detectors' fast path), all examined.
_PREFILTER: dict[str, str] = {
    "identifier": (
        r"@|\+|\d[\s()]+\d|^\s*\d{1,4}[-/.]\d{1,4}([-/.]\d{1,4})?\s*$"
        r"|^\s*\d{1,2}(st|nd|rd|th)?[\s./-]*(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"
        r"|^\s*(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[A-Za-z]*\.?[\s,./-]*\d"
    ),
}
#: Columns with fewer rows are examined without the first pass.
_PREFILTER_ROWS = 2_000


def _candidates(s: pd.Series, kind: ColumnKind) -> list[str]:
    """Distinct text values of ``s`` worth examining in a column of ``kind``."""
    regex = _PREFILTER.get(kind)
    if regex is not None and len(s) > _PREFILTER_ROWS:
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            texts = pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            texts = None  # values a mapping produced (booleans, numbers): examine them all
        if texts is not None:
            hit = pc.match_substring_regex(texts, regex).fill_null(False)
            s = s[hit.to_numpy(zero_copy_only=False)]
    return [v for v in pd.unique(s.to_numpy(dtype=object)) if isinstance(v, str)]


def mask_personal_data(
    frame: pd.DataFrame,
    table: Table | str,
    labels: Mapping[str, Iterable[object]] | None = None,
    *,
    as_of: object = None,
) -> Masking:
    """Mask every text cell of ``frame`` that looks like personal data (see the module docstring).

    Parameters
    ----------
    frame
        Cells in canonical columns, as text (or values a mapping produced: only ``str`` cells
        are examined).
    table
        The canonical table (decides each column's policy).
    labels
        Canonical column → answer labels the mapping knows (they are answers, not names).
    as_of
        Extraction date dates of birth are measured from (default: today).

    Returns
    -------
    Masking
        The masked copy of ``frame`` (unchanged columns are shared), which cells were masked and
        how many per reason. Each distinct value is examined once.
    """
    t = TABLES[table] if isinstance(table, str) else table
    ref = _as_date(as_of)
    labels = labels or {}
    out = frame.copy(deep=False)
    result = Masking(out)
    for name in frame.columns:
        if name not in t:
            continue
        s = frame[name]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        policy = column_policy(t.column(name), labels.get(name, ()))
        own = re.compile(t.column(name).pattern or r"(?!)")
        markers: dict[str, str] = {}
        for v in _candidates(s, policy.kind):
            # a value in the column's own format (a reporting month 2009-12) is its data, like
            # a date in a date column, even when it could be a birth month
            if own.fullmatch(v.strip()):
                continue
            marker = mask_text(v, policy, ref)
            if marker is not None:
                markers[v] = marker
        if not markers:
            continue
        mapped = s.map(lambda v, m=markers: m.get(v) if isinstance(v, str) else None)
        mask = mapped.notna().to_numpy(dtype=bool)
        new = s.copy()
        new[mask] = mapped[mask].astype(str)
        out[name] = new
        result.masks[name] = mask
        counts: dict[str, int] = {}
        for shown, n in mapped[mask].value_counts().items():
            for reason in str(shown)[len(_MASK_PREFIX) : -1].split(", "):
                counts[reason] = counts.get(reason, 0) + int(n)
        result.counts[name] = dict(sorted(counts.items()))
    return result


def mask_label_counts(
    unknown: Mapping[str, Mapping[str, int]],
    table: Table | str,
    labels: Mapping[str, Iterable[object]] | None = None,
    *,
    as_of: object = None,
) -> dict[str, dict[str, int]]:
    """The mapping's unknown labels (column → label → count) with personal labels masked.

    Masked labels of one column are merged: ``{"[masked: name]": 3}``.
    """
    t = TABLES[table] if isinstance(table, str) else table
    ref = _as_date(as_of)
    labels = labels or {}
    out: dict[str, dict[str, int]] = {}
    for name, counts in unknown.items():
        policy = (
            column_policy(t.column(name), labels.get(name, ()))
            if name in t
            else ColumnPolicy(name, "closed", ANSWER_WORDS)
        )
        merged: dict[str, int] = {}
        for label, n in counts.items():
            shown = mask_text(label, policy, ref) or label
            merged[shown] = merged.get(shown, 0) + int(n)
        out[name] = merged
    return out


def make_private_folder(path: str | Path) -> Path:
    """Create ``path`` (and parents) and make it accessible to its owner only (``0700``).

    The quarantine may hold personal data the detectors did not recognise; other users of the
    machine must not be able to list or read it.
    """
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    os.chmod(p, 0o700)
    return p
