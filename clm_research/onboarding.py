"""Adding a country from its own export: ``clm new-country`` drafts the files, ``clm check-mapping``
tries them.

:func:`new_country` reads an export (KoboToolbox, ODK Central, CommCare, DHIS2 or a plain
CSV/XLSX), recognises its format from its headers, matches each header — its question path or
name, its XLSForm label when the form is given, its question text, a DHIS2 data element's
name — to the columns of the data model (:mod:`clm_research.schema`: names, descriptions and
the common names in :data:`HEADER_HINTS`), and writes ``params/countries/<CC>.yaml`` and a
draft ``params/mappings/<CC>.yaml`` (never over an existing file without ``force``; atomic
writes). Every match is a proposal to review: the draft says how each column was matched.

:func:`check_mapping` dry-runs a mapping on the raw files: per canonical column, where it comes
from, the share of values that parse and the first values that do not, and what the gate would
accept and quarantine — writing nothing.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clm_research.errors import CLMError, ParamsError
from clm_research.schema import TABLES, Column, Table

__all__ = [
    "HEADER_HINTS",
    "VALUE_HINTS",
    "DATE_FORMATS",
    "Match",
    "Draft",
    "detect_format",
    "read_xlsform",
    "draft_mapping",
    "new_country",
    "ColumnCheck",
    "MappingCheck",
    "check_mapping",
    "GUIDE",
]

#: The guide users are pointed to.
GUIDE = "docs/own-data.md"

#: Common export names of the data model's columns (besides the column's own name): ids and
#: timestamps of the survey tools, and the words CLM questionnaires and DHIS2 data elements use.
HEADER_HINTS: dict[str, tuple[str, ...]] = {
    "interview_id": (
        "_uuid",
        "formid",
        "instanceid",
        "meta instanceid",
        "key",
        "survey id",
        "submission id",
        "interview id",
        "record id",
        "response id",
    ),
    "facility_id": (
        "facility id",
        "facility code",
        "facility name",
        "health facility",
        "facility",
        "clinic",
        "mfl code",
        "orgunit",
        "org unit",
        "site code",
    ),
    "date": (
        "_submission_time",
        "submissiondate",
        "completed time",
        "interview date",
        "date of interview",
        "visit date",
        "created date",
        "today",
        "date",
    ),
    "sex": ("gender", "sex", "consider yourself", "sex of respondent"),
    "age": ("age", "age in years", "how old"),
    "key_population": ("key population", "kp", "population group"),
    "on_art": ("on art", "on arv", "taking arv", "on treatment", "art client"),
    "wait_minutes": ("waiting time", "wait time", "minutes waited", "how long did you wait"),
    "got_all_medicines": ("all medicines", "all your medicines", "received all medicines"),
    "treated_with_respect": ("treated with respect", "respect"),
    "confidentiality_breach": ("confidentiality", "privacy breach"),
    "vl_result_received": ("viral load result", "vl result"),
    "satisfaction": ("satisfied", "satisfaction", "how satisfied"),
    "denied_service": ("denied services", "denied service", "turned away"),
    "refill_months": ("months of art", "refill months", "multi month"),
    "period": ("period", "month", "reporting month"),
    "tx_curr": ("tx curr", "tx_curr", "currently on art", "art current", "art currently"),
    "tx_new": ("tx new", "tx_new", "new on art", "newly initiated", "art new"),
    "interruptions": ("iit", "interruption", "interrupted treatment", "tx ml"),
    "vl_tested": ("vl tested", "viral load tested", "tx pvls d", "vl_tested"),
    "vl_suppressed": ("vl suppressed", "viral load suppressed", "tx pvls n", "vl_suppressed"),
    "prep_new": ("prep new", "new on prep", "prep_new"),
    "tests": ("hts tst", "hiv tests", "tested for hiv", "tests"),
    "positives": ("hts tst pos", "positive", "positives"),
    "name": ("facility name", "name"),
    "region": ("region", "province", "county", "state"),
    "district": ("district", "sub county", "subcounty", "lga"),
    "type": ("facility type", "facility level", "level"),
    "ownership": ("ownership", "owner", "managing authority"),
}

#: Common answer labels of the categories (compared after :func:`_norm`).
VALUE_HINTS: dict[str, dict[str, str]] = {
    "sex": {"f": "female", "woman": "female", "m": "male", "man": "male", "intersex": "other"},
    "key_population": {
        "no": "none",
        "general population": "none",
        "not applicable": "none",
        "fsw": "sex_worker",
        "sex worker": "sex_worker",
        "sex workers": "sex_worker",
        "female sex worker": "sex_worker",
        "men who have sex with men": "msm",
        "gay": "msm",
        "pwid": "pwud",
        "pwud": "pwud",
        "people who inject drugs": "pwud",
        "people who use drugs": "pwud",
        "transgender person": "transgender",
        "trans": "transgender",
        "tg": "transgender",
        "prisoners": "prisoner",
        "inmate": "prisoner",
    },
}

#: Date formats tried on a date column's values (``ISO``: ISO 8601 dates and timestamps).
DATE_FORMATS: tuple[str, ...] = (
    "ISO",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d-%b-%y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%Y/%m/%d",
    "%d/%m/%y",
    "%m/%d/%y",
)

_NOT_ALNUM = re.compile(r"[^0-9a-z_]+")
_STOP = frozenset(
    "the a an of in at to for and or you your is are was were do did does this".split()
)


def _norm(text: object) -> str:
    """Lower case, accents and punctuation removed, spaces collapsed (``_`` kept)."""
    t = unicodedata.normalize("NFKD", str(text))
    t = "".join(c for c in t if not unicodedata.combining(c)).casefold()
    return " ".join(_NOT_ALNUM.sub(" ", t).split())


def _leaf(header: str) -> str:
    """The question name of a path: ``group/q`` (Kobo), ``g-q`` (ODK), ``form.g.q`` (CommCare)."""
    h = header.strip()
    if h.startswith("form."):
        h = h[5:]
    return re.split(r"[/.]", h)[-1] if re.search(r"[/.]", h) else h


@dataclass
class ExportColumn:
    """One export column as matched: its header, question name and label, and its values."""

    header: str
    leaf: str
    label: str | None = None
    qtype: str | None = None
    values: list[str] = field(default_factory=list)
    filled: int = 0
    rows: int = 0

    def texts(self) -> list[str]:
        out = [self.header, self.leaf]
        if self.label:
            out.append(self.label)
        normed = [_norm(t) for t in out if t]
        return list(dict.fromkeys(normed + [t.replace("_", " ") for t in normed]))


@dataclass
class Match:
    """A canonical column and the export column it is drafted from."""

    column: str
    header: str
    how: str
    spec: dict[str, Any]
    review: str = ""


@dataclass
class Draft:
    """What :func:`draft_mapping` found in an export."""

    fmt: str
    table: str
    rows: int
    headers: list[str]
    matches: list[Match]
    unmatched_required: list[str]
    unmatched_optional: list[str]
    personal: list[str]
    date_of_birth: str | None
    date_of_birth_formats: list[str]
    date_formats: list[str]
    unused: list[str]
    rounds: list[str]
    latest_date: str | None
    notes: list[str] = field(default_factory=list)
    data_elements: dict[str, str] = field(default_factory=dict)
    org_units: list[str] = field(default_factory=list)


def detect_format(columns: Sequence[str]) -> str:
    """The export tool, from its headers: ``commcare``, ``kobo``, ``odk``, ``dhis2`` or ``canonical``."""
    cols = {str(c) for c in columns}
    low = {c.lower() for c in cols}
    if {"dataelement", "period", "orgunit", "value"} <= low:
        return "dhis2"
    if "formid" in cols or any(c.startswith("form.") for c in cols):
        return "commcare"
    if {"_uuid", "_submission_time"} & cols or "_id" in cols and "_index" in cols:
        return "kobo"
    if {"SubmissionDate", "meta-instanceID", "KEY"} & cols:
        return "odk"
    return "canonical"


def read_xlsform(path: Path) -> tuple[dict[str, tuple[str, str]], dict[str, dict[str, str]]]:
    """The questions of an XLSForm: ``name -> (label, type)`` and ``list -> {choice: label}``.

    The label is the ``label`` column, or the first ``label::<language>`` column.

    Raises
    ------
    ParamsError
        The file is not a workbook with a ``survey`` sheet holding ``type`` and ``name``.
    """
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises several types for non-workbooks
        raise ParamsError(f"{path}: not an XLSForm workbook ({e}).") from None
    try:
        sheets = {ws.title.lower(): ws for ws in wb.worksheets}
        if "survey" not in sheets:
            raise ParamsError(f"{path}: an XLSForm needs a 'survey' sheet; found {list(sheets)}")

        def rows(name: str) -> list[dict[str, str]]:
            if name not in sheets:
                return []
            data = [
                ["" if v is None else str(v).strip() for v in r]
                for r in sheets[name].iter_rows(values_only=True)
            ]
            if not data:
                return []
            head = [h.lower() for h in data[0]]
            return [dict(zip(head, r, strict=False)) for r in data[1:]]

        survey, choices = rows("survey"), rows("choices")
    finally:
        wb.close()

    def label(row: dict[str, str]) -> str:
        if row.get("label"):
            return row["label"]
        return next((v for k, v in row.items() if k.startswith("label") and v), "")

    questions = {
        r["name"]: (label(r), r.get("type", "")) for r in survey if r.get("name") and r.get("type")
    }
    lists: dict[str, dict[str, str]] = {}
    for r in choices:
        if r.get("list_name") and r.get("name"):
            lists.setdefault(r["list_name"], {})[r["name"]] = label(r)
    return questions, lists


def _phrase_in(phrase: str, text: str) -> bool:
    return (
        bool(phrase)
        and re.search(rf"(?<![0-9a-z_]){re.escape(phrase)}(?![0-9a-z_])", text) is not None
    )


def _score(col: Column, ex: ExportColumn) -> tuple[float, str]:
    texts = ex.texts()
    own = [_norm(col.name), _norm(col.name.replace("_", " "))]
    hints = [_norm(h) for h in HEADER_HINTS.get(col.name, ())]
    for t in texts:
        if t in own:
            return 3.0, "its name"
    for t in texts:
        for h in hints:
            if t == h:
                return 2.5, f"the common name {h!r}"
    best: tuple[float, str] = (0.0, "")
    for t in texts:
        for h in hints:
            if len(h) >= 3 and _phrase_in(h, t):
                score = 1.5 + len(h) / 100 - len(t) / 1000
                if score > best[0]:
                    best = (score, f"the words {h!r} in {t[:60]!r}")
    if best[0] == 0:
        words = {w for w in _norm(col.description).split() if w not in _STOP and len(w) > 3}
        for t in texts:
            tw = {w for w in t.split() if w not in _STOP}
            common = words & tw
            if len(common) >= 2:
                return 1.0 + len(common) / 100, f"the description's words {sorted(common)}"
    return best


def _date_formats(values: Sequence[str]) -> tuple[list[str], str]:
    """Formats that read every value, and a warning when two of them disagree (day/month)."""
    from clm_research.ingest.parse import _parse_dates

    s = pd.Series(list(values), dtype="string").str.strip()
    s = s[s.notna() & (s != "")]
    if s.empty:
        return ["ISO"], ""
    ok: list[tuple[str, pd.Series]] = []
    for fmt in DATE_FORMATS:
        parsed = _parse_dates(s, [fmt])
        if parsed.notna().all():
            ok.append((fmt, parsed))
    if not ok:
        return ["ISO"], f"no known date format reads all of e.g. {list(s.head(3))}"
    first_fmt, first = ok[0]
    clash = [f for f, p in ok[1:] if not p.equals(first)]
    if clash:
        return [first_fmt], (
            f"the values read as {first_fmt} and as {clash[0]} with different dates (day/month "
            "order): confirm the format"
        )
    return [first_fmt], ""


#: Words of a header that announce a free-text answer (may name people: dropped).
FREE_TEXT_WORDS: tuple[str, ...] = (
    "comment",
    "comments",
    "remark",
    "remarks",
    "specify",
    "explain",
    "describe",
    "feedback",
    "notes",
    "why",
)


def _is_free_text(ex: ExportColumn) -> bool:
    if ex.qtype is not None:
        return ex.qtype.split()[0] in ("text", "geopoint", "geotrace", "geoshape")
    if any(_phrase_in(w, t) for w in FREE_TEXT_WORDS for t in ex.texts()[:2]):
        return True
    vals = [v for v in ex.values if v]
    if len(vals) < 3:
        return False
    wordy = sum(len(v.split()) >= 3 for v in vals) / len(vals)
    return wordy >= 0.5 and len(set(vals)) / len(vals) >= 0.5


def _looks_like_gps(ex: ExportColumn) -> bool:
    vals = [v for v in ex.values if v][:20]
    pat = re.compile(r"^-?\d{1,3}\.\d+[ ,]+-?\d{1,3}\.\d+([ ,]+[-\d.]+)*$")
    return bool(vals) and all(pat.match(v) for v in vals)


def _value_spec(
    col: Column, ex: ExportColumn, choices: dict[str, str]
) -> tuple[dict[str, Any], str]:
    """``values``/``likert`` for a category, boolean or Likert column, and what to review."""
    from clm_research.ingest.mapping import YES_NO

    labels = sorted({v for v in ex.values if v})
    if not labels:
        return {}, ""
    if col.dtype == "category" and col.allowed:
        allowed = {_norm(a): str(a) for a in col.allowed}
        hints = VALUE_HINTS.get(col.name, {})
        values: dict[str, str] = {}
        unknown: list[str] = []
        for lab in labels:
            key = _norm(choices.get(lab, lab))
            target = allowed.get(key) or allowed.get(key.replace(" ", "_")) or hints.get(key)
            if target is None:
                unknown.append(lab)
            elif lab != target:
                values[lab] = target
        review = f"labels with no canonical value: {unknown[:8]}" if unknown else ""
        return ({"values": values} if values else {}), review
    if col.dtype == "boolean":
        unknown = [lab for lab in labels if _norm(lab) not in YES_NO]
        return {}, (f"answers that are not yes/no: {unknown[:8]}" if unknown else "")
    if col.dtype == "integer" and col.allowed:
        if all(re.match(r"^\s*\d+(\s|$|[.):-])", lab) for lab in labels) and any(
            not lab.strip().isdigit() for lab in labels
        ):
            return {"likert": True}, ""
    return {}, ""


def _compatible(col: Column, ex: ExportColumn) -> bool:
    """Whether the export column's values can be the canonical column's (numbers, yes/no, dates)."""
    from clm_research.ingest.mapping import YES_NO

    vals = [v for v in ex.values if v][:500]
    if not vals:
        return True
    if col.dtype in ("integer", "float"):
        num = re.compile(r"^\s*-?\d+(\.\d+)?(\s|$|[.):-])")
        return sum(bool(num.match(v)) for v in vals) / len(vals) >= 0.8
    if col.dtype == "boolean":
        return sum(_norm(v) in YES_NO for v in vals) / len(vals) >= 0.8
    if col.dtype == "date":
        return not _date_formats(vals)[1].startswith("no known")
    return True


def _sample(frame: pd.DataFrame, col: str, limit: int = 2000) -> tuple[list[str], int]:
    s = frame[col].astype("string").str.strip()
    s = s[s.notna() & (s != "")]
    return s.head(limit).tolist(), int(len(s))


def draft_mapping(path: Path, xlsform: Path | None = None, table: str | None = None) -> Draft:
    """Read an export and match its headers to the data model (see the module docstring).

    Raises
    ------
    DataQualityError
        The export cannot be read (the readers' table-level errors).
    ParamsError
        ``table`` is not a canonical table.
    """
    from clm_research.ingest.canonical import read_table_file
    from clm_research.ingest.mapping import TableSpec
    from clm_research.ingest.privacy import personal_columns
    from clm_research.ingest.staging import _metadata, _reader

    if path.suffix.lower() == ".json":
        fmt = "dhis2"
    else:
        fmt = detect_format([str(c) for c in read_table_file(path).frame.columns])
    raw = _reader(fmt, path, TableSpec(files=[path.name]))
    frame = raw.frame
    questions, lists = read_xlsform(xlsform) if xlsform else ({}, {})
    meta, meta_personal = _metadata(fmt)
    notes: list[str] = list(raw.notes)
    if table is not None and table not in TABLES:
        raise ParamsError(f"unknown table {table!r}; known: {', '.join(TABLES)}")

    if fmt == "dhis2":
        return _draft_dhis2(frame, fmt, notes)

    declared = personal_columns([str(c) for c in frame.columns], list(meta_personal))
    exports: list[ExportColumn] = []
    for c in frame.columns:
        header = str(c)
        leaf = _leaf(header)
        label, qtype = questions.get(leaf, (None, None))
        if label is None:  # headers that are XLSForm labels (Kobo "labels" exports)
            hit = [n for n, (lab, _t) in questions.items() if _norm(lab) == _norm(header)]
            if len(hit) == 1:
                label, qtype = questions[hit[0]]
                leaf = hit[0]
        vals, filled = _sample(frame, header)
        exports.append(ExportColumn(header, leaf, label, qtype, vals, filled, len(frame)))

    dob = next((e for e in exports if "birth" in _norm(e.header)), None)
    personal = [h for h in declared if dob is None or h != dob.header]
    candidates = [
        e
        for e in exports
        if e.header not in declared and e.header not in meta_personal and e is not dob
    ]
    free = [e.header for e in candidates if _is_free_text(e) or _looks_like_gps(e)]

    def match_table(t: Table) -> list[Match]:
        scored: list[tuple[float, str, ExportColumn, str]] = []
        for col in t.columns:
            if col.name == "round" and "date" in t:
                continue
            for e in candidates:
                if e.header in free and col.dtype not in ("string",):
                    continue
                s, how = _score(col, e)
                if s > 0 and _compatible(col, e):
                    fill = e.filled / e.rows if e.rows else 0.0
                    if e.header in meta:  # an answer beats the tool's own metadata
                        s *= 0.9
                    scored.append((s * min(1.0, 0.3 + 1.4 * fill), col.name, e, how))
        scored.sort(key=lambda x: (-x[0], x[1], x[2].header))
        used_cols: set[str] = set()
        used_headers: set[str] = set()
        out: list[Match] = []
        for _s, name, e, how in scored:
            if name in used_cols or e.header in used_headers:
                continue
            col = t.column(name)
            if col.dtype == "string" and e.header in free and not name.endswith("_id"):
                continue
            used_cols.add(name)
            used_headers.add(e.header)
            spec: dict[str, Any] = {"from": e.header}
            extra, review = _value_spec(col, e, lists.get((e.qtype or " x").split()[-1], {}))
            spec.update(extra)
            if not how.startswith(("its name", "the common name")) and not review:
                review = (
                    f"matched on words: check that it records {col.description[:1].lower()}"
                    f"{col.description[1:]}"
                    + (" (and that 'yes' means true)" if col.dtype == "boolean" else "")
                )
            out.append(Match(name, e.header, how, spec, review))
        return out

    if table is None:
        ranked: list[tuple[float, int, str]] = []
        for name, t in TABLES.items():
            ms = match_table(t)
            got = {m.column for m in ms}
            if "date" in got:  # round and period are derived from the date
                got |= {"round", "period"}
            required = [c.name for c in t.columns if c.required]
            share = sum(c in got for c in required) / max(len(required), 1)
            key = list(t.primary_key)
            by_col = {m.column: m.header for m in ms}
            if set(key) <= set(by_col):  # a key is unique per row: not this table if it repeats
                # (a few repeats are duplicate submissions; most rows repeating is another grain)
                if frame[[by_col[k] for k in key]].duplicated().mean() > 0.2:
                    share /= 2
            ranked.append((share, len(ms), name))
        table = max(ranked)[2] if ranked else "interviews"
    t = TABLES[table]
    matches = match_table(t)
    matched = {m.column for m in matches}
    rounds: list[str] = []
    latest: str | None = None
    date_formats = ["ISO"]
    date_match = next((m for m in matches if m.column == "date"), None)
    if date_match is not None:
        from clm_research.ingest.parse import _parse_dates

        vals = [v for e in exports if e.header == date_match.header for v in e.values]
        date_formats, warn = _date_formats(vals)
        if warn:
            date_match.review = warn
            notes.append(f"{date_match.header}: {warn}")
        full = frame[date_match.header].astype("string").str.strip()
        parsed = _parse_dates(full, date_formats).dropna()
        if len(parsed):
            q = parsed.dt.year.astype(str) + "Q" + parsed.dt.quarter.astype(str)
            rounds = sorted(set(q))
            latest = parsed.max().strftime("%Y-%m-%d")
    if "round" in t and "date" in matched:
        matches.append(
            Match("round", "", "the quarter of date", {"derive": "quarter", "source": "date"})
        )
        matched.add("round")
    if "period" in t and "period" not in matched and "date" in matched:
        matches.append(
            Match("period", "", "the month of date", {"derive": "month", "source": "date"})
        )
        matched.add("period")
    dob_formats: list[str] = []
    if dob is not None:
        dob_formats, _ = _date_formats(dob.values)
    used = {m.header for m in matches}
    unused = [
        e.header
        for e in exports
        if e.header not in used
        and e.header not in meta
        and e.header not in personal
        and e.header not in free
        and e is not dob
    ]
    return Draft(
        fmt=fmt,
        table=table,
        rows=len(frame),
        headers=[e.header for e in exports],
        matches=matches,
        unmatched_required=[c.name for c in t.columns if c.required and c.name not in matched],
        unmatched_optional=[c.name for c in t.columns if not c.required and c.name not in matched],
        personal=personal + free,
        date_of_birth=dob.header if dob else None,
        date_of_birth_formats=dob_formats,
        date_formats=date_formats,
        unused=unused,
        rounds=rounds,
        latest_date=latest,
        notes=notes,
    )


def _draft_dhis2(frame: pd.DataFrame, fmt: str, notes: list[str]) -> Draft:
    """A DHIS2 data value set: data element names (or uids) matched to the routine columns."""
    t = TABLES["routine"]
    cols = {c.lower(): c for c in frame.columns}
    elements = sorted(frame[cols["dataelement"]].dropna().astype(str).unique())
    matches: list[Match] = []
    data_elements: dict[str, str] = {}
    for col in t.columns:
        if col.dtype != "integer":
            continue
        best: tuple[float, str, str] = (0.0, "", "")
        for de in elements:
            s, how = _score(col, ExportColumn(de, de))
            if s > best[0]:
                best = (s, de, how)
        if best[0] > 0 and best[1] not in data_elements:
            data_elements[best[1]] = col.name
            matches.append(Match(col.name, best[1], best[2], {}, ""))
    periods = sorted(frame[cols["period"]].dropna().astype(str).unique())
    rounds = sorted(
        {f"{p[:4]}Q{(int(p[4:6]) - 1) // 3 + 1}" for p in periods if re.fullmatch(r"\d{6}", p)}
    )
    matched = {m.column for m in matches} | {"facility_id", "period"}
    return Draft(
        fmt=fmt,
        table="routine",
        rows=len(frame),
        headers=list(frame.columns),
        matches=matches,
        unmatched_required=[c.name for c in t.columns if c.required and c.name not in matched],
        unmatched_optional=[c.name for c in t.columns if not c.required and c.name not in matched],
        personal=[],
        date_of_birth=None,
        date_of_birth_formats=[],
        date_formats=["ISO"],
        unused=[e for e in elements if e not in data_elements],
        rounds=rounds,
        latest_date=None,
        notes=notes,
        data_elements=data_elements,
        org_units=sorted(frame[cols["orgunit"]].dropna().astype(str).unique()),
    )


def _q(value: object) -> str:
    """A YAML scalar: JSON strings are valid double-quoted YAML."""
    return json.dumps(value, ensure_ascii=False)


def _flow(spec: dict[str, Any]) -> str:
    if set(spec) == {"from"}:
        return _q(spec["from"])
    parts = []
    for k, v in spec.items():
        if isinstance(v, dict):
            inner = ", ".join(f"{_q(a)}: {_q(b)}" for a, b in v.items())
            parts.append(f"{k}: {{{inner}}}")
        else:
            parts.append(f"{k}: {_q(v)}")
    return "{" + ", ".join(parts) + "}"


def mapping_text(code: str, draft: Draft, file_name: str, source: str) -> str:
    """The draft mapping as commented YAML."""
    from clm_research.ingest.mapping import TableSpec

    today = date.today().isoformat()
    lines = [
        f"# Mapping of {source} to the data model, drafted by `clm new-country` on {today}.",
        "# A draft: check every line marked REVIEW, then `clm check-mapping "
        f"{code}`. Guide: {GUIDE}.",
        f"country: {code}",
        f"format: {draft.fmt}",
    ]
    if draft.personal or draft.date_of_birth:
        lines.append("personal:                # dropped at ingestion, never stored")
        if draft.date_of_birth:
            lines.append(
                f"  date_of_birth: {_q(draft.date_of_birth)}   # age is derived, then dropped"
            )
            lines.append(f"  date_of_birth_formats: {_q(draft.date_of_birth_formats)}")
        if draft.personal:
            lines.append("  drop:                  # names, phone numbers, free text, GPS")
            lines.extend(f"    - {_q(h)}" for h in draft.personal)
    lines.append("tables:")
    lines.append(f"  {draft.table}:")
    lines.append(f"    files: [{_q(file_name)}]")
    if draft.fmt == "dhis2":
        lines.append("    data_elements:          # data element (name or uid) -> routine column")
        lines.extend(f"      {_q(k)}: {v}" for k, v in draft.data_elements.items())
        lines.append("    org_units:              # REVIEW: org unit uid -> facility_id")
        lines.extend(f"      {_q(o)}: {_q(o)}" for o in draft.org_units)
    else:
        lines.append(f"    date_formats: {_q(draft.date_formats)}")
        lines.append("    columns:")
        for m in draft.matches:
            how = f"from {m.how}" if m.header else m.how
            note = f"  # REVIEW: {m.review}" if m.review else f"  # {how}"
            lines.append(f"      {m.column}: {_flow(m.spec)}{note}")
        for c in draft.unmatched_required:
            lines.append(f'      # REVIEW required, not found: {c}: {{from: "<export column>"}}')
    if draft.unmatched_optional:
        if "not_collected" in TableSpec.model_fields:
            lines.append("    not_collected:          # not in this export: reports say so")
            lines.extend(f"      - {c}" for c in draft.unmatched_optional)
        else:
            lines.append(
                "    # not in this export (not collected): " + ", ".join(draft.unmatched_optional)
            )
    if draft.unused:
        lines.append("    # export columns not matched (list them under `ignore:` once reviewed):")
        lines.extend(f"    #   {h}" for h in draft.unused)
    return "\n".join(lines) + "\n"


def params_text(code: str, name: str, draft: Draft, source: str) -> str:
    """The draft country parameters as commented YAML (validated before it is written)."""
    from clm_research.config.country import CountryParams

    first = draft.rounds[0] if draft.rounds else None
    last = draft.rounds[-1] if draft.rounds else None
    if first is None or last is None:
        today = date.today()
        first = last = f"{today.year}Q{(today.month - 1) // 3 + 1}"
    values: dict[str, Any] = {"code": code, "name": name, "baseline_round": first, "period": last}
    if draft.latest_date:
        values["as_of"] = draft.latest_date
    CountryParams(**values)
    lines = [
        f"# Parameters of {name}, drafted by `clm new-country` from {source} on "
        f"{date.today().isoformat()}. Guide: {GUIDE}.",
        f"code: {code}",
        f"name: {_q(name)}",
        f"baseline_round: {first}    # first round (quarter) in the export",
        f"period: {last}            # reporting round: the latest in the export",
    ]
    if draft.latest_date:
        lines.append(
            f"as_of: {draft.latest_date}      # data extraction date: REVIEW (latest date seen)"
        )
    lines.append(
        "# boundaries: {file: data/raw/" + code + "/districts.geojson, "
        'district_property: name, filter: "level == 2"}   # for district maps'
    )
    return "\n".join(lines) + "\n"


def new_country(
    code: str,
    export: Path,
    *,
    xlsform: Path | None = None,
    name: str | None = None,
    table: str | None = None,
    force: bool = False,
) -> tuple[Draft, list[Path]]:
    """Draft ``params/countries/<code>.yaml`` and ``params/mappings/<code>.yaml`` from an export
    and copy the export into ``data/raw/<code>/``.

    Raises
    ------
    ParamsError
        The code is not two capital letters, the export is missing, or a file exists and
        ``force`` is not given.
    """
    from clm_research.files import sha256_file, write_bytes, write_text
    from clm_research.ingest.mapping import mappings_dir
    from clm_research.paths import countries_dir, display_path, raw_dir

    if not re.fullmatch(r"[A-Z]{2}", code):
        raise ParamsError(f"country code must be two capital letters (ISO 3166), got {code!r}")
    export = Path(export)
    if not export.is_file():
        raise ParamsError(f"{export}: export not found")
    params_path = countries_dir() / f"{code}.yaml"
    mapping_path = mappings_dir() / f"{code}.yaml"
    raw_path = raw_dir(code) / export.name
    existing = [p for p in (params_path, mapping_path) if p.exists()]
    if raw_path.exists() and sha256_file(raw_path) != sha256_file(export):
        existing.append(raw_path)
    if existing and not force:
        raise ParamsError(
            f"{', '.join(display_path(p) for p in existing)} already exist(s); nothing was "
            "written. Fix: add --force to replace, or choose another country code."
        )
    draft = draft_mapping(export, xlsform, table)
    source = export.name
    ptext = params_text(code, name or code, draft, source)
    mtext = mapping_text(code, draft, export.name, source)
    written = [write_text(params_path, ptext), write_text(mapping_path, mtext)]
    if not raw_path.exists() or sha256_file(raw_path) != sha256_file(export):
        # a raw export holds personal data: readable by its owner only, like the quarantine
        written.append(write_bytes(raw_path, export.read_bytes(), private=True))
    return draft, written


# --------------------------------------------------------------------------------------------
# check-mapping
# --------------------------------------------------------------------------------------------


@dataclass
class ColumnCheck:
    """One canonical column of a dry run."""

    column: str
    source: str
    filled: int
    parsed: int
    failing: list[str]

    @property
    def share(self) -> float:
        """Share of the filled cells that parse (1 when none is filled)."""
        return self.parsed / self.filled if self.filled else 1.0


@dataclass
class MappingCheck:
    """The dry run of a mapping: per table, per column; the gate's counts; table errors."""

    country: str
    source: str
    columns: dict[str, list[ColumnCheck]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, dict[str, int]] = field(default_factory=dict)
    unmapped: dict[str, list[str]] = field(default_factory=dict)
    unknown_labels: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and all(
            c.share == 1.0 for cols in self.columns.values() for c in cols
        )

    def lines(self) -> list[str]:
        out = [f"{self.country}: dry run of {self.source} (nothing written)"]
        for table, cols in self.columns.items():
            n = self.rows.get(table, 0)
            out.append(f"  {table}: {n} rows")
            width = max(len(c.column) for c in cols) if cols else 10
            for c in cols:
                pct = f"{100 * c.share:5.1f}% parse" if c.filled else "  (all empty)"
                line = f"    {c.column:<{width}}  {pct}  {c.filled:>6} filled  <- {c.source}"
                if c.failing:
                    line += f"; first failing: {', '.join(repr(v) for v in c.failing)}"
                out.append(line)
            for col, labels in self.unknown_labels.get(table, {}).items():
                shown = ", ".join(f"{k!r} ({v})" for k, v in list(labels.items())[:5])
                out.append(f"    {col}: labels the mapping does not know: {shown}")
            if self.unmapped.get(table):
                cols_ = self.unmapped[table]
                out.append(
                    f"    {len(cols_)} export column(s) not mapped: {', '.join(cols_[:6])}"
                    + (" …" if len(cols_) > 6 else "")
                )
            if table in self.accepted:
                q = self.quarantined.get(table, {})
                rules = ", ".join(f"{k} {v}" for k, v in sorted(q.items(), key=lambda x: -x[1]))
                out.append(
                    f"    the gate would accept {self.accepted[table]} and quarantine "
                    f"{n - self.accepted[table]}" + (f" ({rules})" if rules else "")
                )
        out.extend(f"  error: {e}" for e in self.errors)
        out.append(
            "  next: clm ingest " + self.country
            if not self.errors
            else f"  fix the mapping ({self.source}), then run clm check-mapping {self.country} again"
        )
        return out


def _failing_values(
    raw_values: pd.Series | None, mask: np.ndarray, column: str, k: int = 3
) -> list[str]:
    if raw_values is None:
        return []
    out: list[str] = []
    prefix = f"{column}="
    for text in raw_values[mask].astype(str):
        for piece in text.split("; "):
            if piece.startswith(prefix):
                v = piece[len(prefix) :].strip("'\"")
                if v not in out:
                    out.append(v)
        if len(out) >= k:
            break
    return out[:k]


def _describe(spec: dict[str, Any]) -> str:
    """Where a canonical column comes from, in words (any kind of column spec)."""
    if "from" in spec:
        extra = [k for k in spec if k != "from"]
        return repr(spec["from"]) + (f" ({', '.join(extra)})" if extra else "")
    if "derive" in spec:
        return f"{spec['derive']} of {spec.get('source')}"
    if "constant" in spec:
        return f"constant {spec['constant']!r}"
    return ", ".join(f"{k} {v!r}" for k, v in spec.items()) or "?"


def check_mapping(
    country: str, raw_folder: Path | None = None, mapping: Any = None, as_of: Any = None
) -> MappingCheck:
    """Dry-run a country's mapping on its raw files (see the module docstring); writes nothing."""
    from clm_research.config.country import list_countries, load_country
    from clm_research.ingest.mapping import Mapping, load_mapping
    from clm_research.ingest.staging import _files, stage_table
    from clm_research.paths import display_path, display_text, raw_dir
    from clm_research.pipeline import validate_country

    mp = mapping if isinstance(mapping, Mapping) else load_mapping(mapping or country)
    if as_of is None and country in list_countries():
        as_of = load_country(country).as_of
    folder = Path(raw_folder) if raw_folder is not None else raw_dir(country)
    result = MappingCheck(country, mp.source or "the mapping")
    for name in TABLES:
        spec = mp.tables.get(name)
        if spec is None:
            continue
        paths = _files(folder, spec.files)
        if not paths:
            result.errors.append(
                f"{name}: no file in {display_path(folder)} matches {spec.files} [rule: missing_file]"
            )
            continue
        try:
            staged, infos = stage_table(name, paths, spec, mp, as_of=as_of)
        except CLMError as e:
            result.errors.append(f"{name}: {display_text(str(e))}")
            continue
        result.rows[name] = len(staged.frame)
        specs = spec.column_specs()
        checks: list[ColumnCheck] = []
        for col in TABLES[name].columns:
            if col.name not in staged.frame.columns:
                continue
            cs = specs.get(col.name)
            if col.name == "age" and mp.personal.date_of_birth and cs is None:
                source = "completed years from the date of birth (then dropped)"
            elif cs is None:
                source = f"{col.name!r} (same name)"
            else:
                source = _describe(cs.model_dump(by_alias=True, exclude_defaults=True))
            mask = staged.prefailed.get(f"type:{col.name}", np.zeros(len(staged.frame), bool))
            parsed = int(staged.frame[col.name].notna().sum())
            failed = int(np.asarray(mask).sum())
            checks.append(
                ColumnCheck(
                    col.name,
                    source,
                    parsed + failed,
                    parsed,
                    _failing_values(staged.raw_values, np.asarray(mask, bool), col.name),
                )
            )
        result.columns[name] = checks
        result.unmapped[name] = [c for i in infos for c in i.unmapped_columns]
        labels: dict[str, dict[str, int]] = {}
        for i in infos:
            for k, v in i.unknown_labels.items():
                labels.setdefault(k, {}).update(v)
        if labels:
            result.unknown_labels[name] = labels
    if not result.errors:
        try:
            report = validate_country(
                country, mapping=mp, raw_folder=folder, as_of=as_of, use_gx=False, write=False
            )
        except CLMError as e:
            result.errors.append(display_text(str(e)))
        else:
            for name, tg in report.tables.items():
                result.rows[name] = tg.input_rows
                result.accepted[name] = tg.accepted
                result.quarantined[name] = dict(tg.by_rule)
            result.errors.extend(display_text(e) for e in report.errors)
    return result
