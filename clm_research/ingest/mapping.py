"""Per-country column mappings: from an export's columns and answer labels to the canonical model.

A mapping is a YAML file, ``params/mappings/<country>.yaml``::

    country: KE
    format: kobo                      # canonical | kobo | odk | commcare | dhis2 (default for every table)
    personal:                         # personal data: dropped or pseudonymised at ingestion
      drop: [respondent_name, phone]  # names, phones, free text, GPS of people
      date_of_birth: dob              # age is derived from it (and the interview date), then dropped
      date_of_birth_formats: ["%d/%m/%Y"]
      pseudonymise: [national_id]     # replaced by HMAC-SHA256 with $CLM_PSEUDONYM_KEY
    tables:
      interviews:
        files: [survey.csv]           # under data/raw/<country>/ (glob patterns allowed)
        date_formats: ["%d-%b-%y", ISO]
        duplicate_submissions: {ignore: [_uuid, _index, _submission_time]}
        ignore: [start, end]          # export columns deliberately not used
        columns:                      # canonical column -> how to get it
          interview_id: _uuid         # short form: the export column
          sex: {from: "consent/sex", values: {Female: female, Male: male}}
          satisfaction: {from: satisfaction, likert: true}           # "4 satisfied" -> 4
          wait_minutes: {from: wait, bands: {"< 30mins": [0, 30], "30-45 mins": [30, 45], ">45 mins": [45, null]}}
          on_art: {from: services, multi_select: ";", contains: "ART medicine"}
          round: {derive: quarter, source: date}
          key_population: {constant: none}

Features for real exports (all per table)::

    routine:
      files: [art_number.csv]
      filter: "sex == 'both' and year >= 2015"   # rows kept; the others are counted as filtered
      not_collected: [interruptions, prep_new]   # canonical columns this country does not collect
      columns:
        facility_id: area_name
        period: {template: "{year}-12"}           # text built from export columns
        tests: {expr: "tested_negative + tested_positive"}   # arithmetic (+ - * /)
      aggregate:                                 # to the canonical grain, after typing
        by: [facility_id, period]
        columns: {tests: sum}                    # every other mapped column: sum | mean | first
        skip_missing: []                         # columns whose sum ignores missing parts
        checks: ["positives <= tests"]           # must hold in every part of a group

*Filters, expressions and templates read the export's columns* (source headers, after personal
data are removed), because a filter usually selects on a field the canonical table does not
have (``sex == 'both'`` on a table with no sex column). Names are resolved like ``from``
(exact, up to spacing/case, or the leaf of a group path); a header with spaces or slashes is
quoted with backticks (`` `consent/sex` == 'yes' ``). A cell whose non-empty values are all
numbers is compared as a number, blank cells are missing. A row is kept only when the filter is
true (false *or unknown* → filtered), and the manifest counts filtered rows per file with the
filter's text: rows in = accepted + quarantined + filtered (+ rows merged by ``aggregate``).

*Aggregation* runs on the typed canonical columns (``by`` and ``columns`` name canonical
columns): ``sum`` of a group with a missing part is missing unless the column is listed in
``skip_missing``; ``mean`` of the present values; ``first`` the first row's value. A group
fails every rule one of its parts failed (a part that could not be read makes the group's row
quarantined, never a smaller sum), and ``checks`` (the filter language over canonical columns)
must hold in every part: a sum can hide a part that exceeds its whole (Dowa, 2016: 767 of 751
adults suppressed), so a failing part marks its group ``inconsistent:<first column>``.

*Not collected*: a canonical column the country does not collect is listed in
``not_collected``; it may not also be mapped, and from staging on it is absent from the table
(downstream, an absent column means "not collected").

Answer labels (``values``) are matched after trimming, collapsing inner spaces and ignoring
case; ``Yes``/``No``/``Dont Know`` map to ``True``/``False``/missing by default for boolean
columns. A label the mapping does not know is kept as is, so the gate quarantines the row with
``allowed_values`` (or ``type``) and names the label — nothing is silently recoded.

Waiting-time bands: a banded answer is recorded as one representative number of minutes, the
band's midpoint; an open band (``>45 mins``, ``[45, null]``) gets its bound plus half the width
of the neighbouring closed band (45 + 7.5 = 52.5). Medians of banded data are therefore
approximate, but shares above or below a band edge (e.g. "waited more than 45 minutes") stay
exact. The band labels are listed in the manifest so readers know the data were banded.

Export columns that are neither mapped, ignored nor declared personal are reported as
*unmapped* by :func:`clm_research.ingest.staging.stage_table` (never silently used or lost).
The reverse is an error: an export column the mapping reads (``from``, a filter, an expression,
a template) that is not in the export names the mapping key and the export's closest headers,
and one whose header is repeated (or differs from another only in spacing or case) is refused
as ambiguous; name a repeated one by position (``Please specify.1`` is the second).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clm_research.config.loader import read_yaml_mapping, validate_model
from clm_research.errors import DataQualityError, IngestError
from clm_research.expressions import (
    Arith,
    Expr,
    ExpressionError,
    Not,
    arithmetic_columns,
    check_against_table,
    evaluate,
    evaluate_arithmetic,
    parse,
    parse_arithmetic,
)
from clm_research.expressions import columns as expr_columns
from clm_research.files import sha256_file
from clm_research.paths import display_path, params_dir
from clm_research.schema import Table
from clm_research.tables import StagedTable

__all__ = [
    "ColumnSpec",
    "TableSpec",
    "PersonalSpec",
    "Mapping",
    "MappedTable",
    "load_mapping",
    "mappings_dir",
    "normalise_label",
    "parse_likert",
    "band_values",
    "apply_mapping",
    "resolve_column",
    "YES_NO",
    "derive_columns",
    "content_duplicates",
    "AggregateSpec",
    "closest_headers",
    "template_columns",
    "source_values",
    "filter_rows",
    "aggregate_rows",
    "AggregateResult",
]

Format = Literal["canonical", "kobo", "odk", "commcare", "dhis2"]

#: Default labels of boolean answers (after :func:`normalise_label`).
YES_NO: dict[str, Any] = {
    "yes": True,
    "no": False,
    "dont know": None,
    "don't know": None,
    "do not know": None,
    "not applicable": None,
    "true": True,
    "false": False,
    "1": True,
    "0": False,
}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ColumnSpec(_Strict):
    """How one canonical column is obtained from the export."""

    from_: str | None = Field(None, alias="from", description="Export column (header text or path)")
    constant: str | int | float | bool | None = Field(None, description="Same value in every row")
    values: dict[str, Any] = Field(
        default_factory=dict, description="Answer label -> canonical value"
    )
    likert: bool = Field(False, description="Take the leading integer of labels such as '4 clean'")
    bands: dict[str, tuple[float | None, float | None]] | None = Field(
        None,
        description="Band label -> [low, high] (null = open); recorded as a representative value",
    )
    multi_select: str | None = Field(
        None, description="Separator of a joined multi-select (';' or ' ')"
    )
    contains: str | None = Field(
        None, description="With multi_select: True when this option is chosen"
    )
    derive: Literal["quarter", "month"] | None = Field(
        None, description="Derive from a date column"
    )
    source: str | None = Field(None, description="With derive: the canonical date column")
    expr: str | None = Field(
        None, description="Arithmetic over export columns (+ - * /, parentheses, numbers)"
    )
    template: str | None = Field(
        None, description="Text with export columns in braces, e.g. '{year}-12'"
    )
    date_formats: list[str] | None = None

    @field_validator("expr")
    @classmethod
    def _expr_parses(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_arithmetic(v)
            except ExpressionError as e:
                raise ValueError(f"expr {v!r}: {e}") from None
        return v

    @field_validator("template")
    @classmethod
    def _template_names(cls, v: str | None) -> str | None:
        if v is not None and not template_columns(v):
            raise ValueError(
                f"template {v!r} names no export column (write it in braces: {{year}})"
            )
        return v

    @model_validator(mode="after")
    def _one_source(self) -> ColumnSpec:
        sources = (self.from_, self.constant, self.derive, self.expr, self.template)
        n = sum(x is not None for x in sources)
        if n != 1:
            raise ValueError(
                "give exactly one of 'from', 'constant', 'derive', 'expr' or 'template'"
            )
        if self.derive and not self.source:
            raise ValueError("'derive' needs 'source' (the canonical date column)")
        if self.contains and not self.multi_select:
            raise ValueError("'contains' needs 'multi_select' (the separator)")
        return self


class DuplicateSpec(_Strict):
    """Submissions identical in every column but these are duplicates (``duplicate_key:submission``)."""

    ignore: list[str] = Field(default_factory=list)


class AggregateSpec(_Strict):
    """Rows summed (or averaged) to the canonical grain after typing (see the module docstring)."""

    by: list[str] = Field(min_length=1, description="Canonical key columns of a group")
    columns: dict[str, Literal["sum", "mean", "first"]] = Field(
        default_factory=dict, description="Canonical column -> sum | mean | first"
    )
    skip_missing: list[str] = Field(
        default_factory=list,
        description="Columns whose sum ignores missing parts (default: a missing part -> missing)",
    )
    checks: list[str] = Field(
        default_factory=list,
        description="Conditions (filter language, canonical columns) every part must meet",
    )

    @field_validator("checks")
    @classmethod
    def _checks_parse(cls, v: list[str]) -> list[str]:
        for text in v:
            try:
                parse(text)
            except ExpressionError as e:
                raise ValueError(f"check {text!r}: {e}") from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> AggregateSpec:
        both = sorted(set(self.by) & set(self.columns))
        if both:
            raise ValueError(f"{', '.join(both)}: in both 'by' and 'columns'")
        odd = sorted(c for c in self.skip_missing if self.columns.get(c) != "sum")
        if odd:
            raise ValueError(f"skip_missing: {', '.join(odd)} not summed in 'columns'")
        return self


class TableSpec(_Strict):
    """Where one canonical table comes from."""

    files: list[str]
    reader: Format | None = None
    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | int | None = None
    date_formats: list[str] = Field(default_factory=lambda: ["ISO"])
    columns: dict[str, ColumnSpec | str] = Field(default_factory=dict)
    ignore: list[str] = Field(default_factory=list)
    duplicate_submissions: DuplicateSpec | None = None
    distinct: bool = Field(
        False, description="A lookup derived from a survey: one row per primary key"
    )
    # DHIS2 data value sets
    data_elements: dict[str, str] = Field(
        default_factory=dict, description="dataElement uid/name -> column"
    )
    org_units: dict[str, str] = Field(
        default_factory=dict, description="orgUnit uid -> facility_id"
    )
    quarterly_periods: Literal["reject", "last_month"] = "reject"
    not_collected: list[str] = Field(
        default_factory=list, description="Canonical columns this country does not collect"
    )
    filter: str | None = Field(
        None, description="Rows kept (filter language over export columns); others are counted"
    )
    aggregate: AggregateSpec | None = None

    @field_validator("filter")
    @classmethod
    def _filter_parses(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse(v)
            except ExpressionError as e:
                raise ValueError(f"filter {v!r}: {e}") from None
        return v

    @model_validator(mode="after")
    def _not_collected_not_mapped(self) -> TableSpec:
        both = sorted(set(self.not_collected) & set(self.columns))
        if both:
            raise ValueError(
                f"{', '.join(both)}: declared not_collected and also mapped in 'columns' "
                "(remove one of the two)"
            )
        return self

    def filter_expr(self) -> Expr | None:
        """The parsed row filter (``None`` when every row is kept)."""
        return parse(self.filter) if self.filter else None

    def column_specs(self) -> dict[str, ColumnSpec]:
        return {
            k: ColumnSpec(**{"from": v}) if isinstance(v, str) else v
            for k, v in self.columns.items()
        }


class PersonalSpec(_Strict):
    """Personal data in the export: dropped, used to derive age, or pseudonymised."""

    drop: list[str] = Field(
        default_factory=list, description="Names, phones, free text, GPS of people"
    )
    date_of_birth: str | None = None
    date_of_birth_formats: list[str] = Field(default_factory=lambda: ["ISO"])
    age_reference: str = Field("date", description="Canonical date column the age is computed at")
    pseudonymise: list[str] = Field(default_factory=list)


class Mapping(_Strict):
    """A country's mapping from its exports to the canonical tables."""

    country: str
    format: Format = "canonical"
    description: str = ""
    personal: PersonalSpec = Field(default_factory=PersonalSpec)
    tables: dict[str, TableSpec]
    source: str = Field("", description="File the mapping was read from (set by load_mapping)")
    source_sha256: str | None = Field(
        None, description="SHA-256 of that file (set by load_mapping), for the manifest"
    )


def mappings_dir() -> Path:
    """``params/mappings/``: one ``<country>.yaml`` per country."""
    return params_dir() / "mappings"


def load_mapping(country_or_path: str | Path) -> Mapping:
    """Load and validate a mapping: a country code (``params/mappings/<code>.yaml``) or a path.

    Raises
    ------
    IngestError
        Missing file, invalid YAML, an unknown key or a canonical table that does not exist.
    """
    p = Path(country_or_path)
    path = p if p.suffix in (".yaml", ".yml") else mappings_dir() / f"{country_or_path}.yaml"
    if not path.is_file():
        raise IngestError(
            f"no column mapping for {country_or_path!r} ({display_path(path)}). Fix: draft one "
            f"from your export with `clm new-country {country_or_path} --from-export FILE`, "
            f"then try it with `clm check-mapping {country_or_path}`; the mapping file's keys "
            "are explained in docs/own-data.md."
        )
    raw = read_yaml_mapping(path, what="mapping", error=IngestError)
    raw["source"] = display_path(path)
    raw["source_sha256"] = sha256_file(path)
    mapping = validate_model(Mapping, raw, display_path(path), error=IngestError)
    from clm_research.schema import TABLES

    for name, spec in mapping.tables.items():
        if name not in TABLES:
            raise IngestError(f"{path}: unknown table {name!r}; known tables: {', '.join(TABLES)}")
        table = TABLES[name]
        known = ", ".join(table.column_names)
        for col in spec.columns:
            if col not in table:
                raise IngestError(
                    f"{path}: tables.{name}.columns: {col!r} is not a column of {name}; "
                    f"known: {known}"
                )
        for col in spec.not_collected:
            if col not in table:
                raise IngestError(
                    f"{path}: tables.{name}.not_collected: {col!r} is not a column of {name}; "
                    f"known: {known}"
                )
            if col in _essential(table):
                raise IngestError(
                    f"{path}: tables.{name}.not_collected: {col!r} identifies a row of {name} "
                    "(ids, dates and keys must be collected) [rule: not_null]"
                )
        if spec.aggregate is not None:
            _check_aggregate(path, name, spec, table)
    return mapping


def _essential(table: Table) -> set[str]:
    """Columns no country can leave out: the key, the time column, the references."""
    out = set(table.primary_key) | {fk.column for fk in table.foreign_keys}
    if table.time_column:
        out.add(table.time_column)
    return out


def _check_aggregate(path: Path, name: str, spec: TableSpec, table: Table) -> None:
    agg = spec.aggregate
    assert agg is not None
    where = f"{display_path(path)}: tables.{name}.aggregate"
    for key, cols in (("by", agg.by), ("columns", list(agg.columns))):
        for col in cols:
            if col not in table:
                raise IngestError(
                    f"{where}.{key}: {col!r} is not a column of {name}; "
                    f"known: {', '.join(table.column_names)}"
                )
            if col in spec.not_collected:
                raise IngestError(f"{where}.{key}: {col!r} is declared not_collected")
    for col, how in agg.columns.items():
        if how in ("sum", "mean") and table.column(col).dtype not in ("integer", "float"):
            raise IngestError(
                f"{where}.columns.{col}: {how} needs a number column; {col} is "
                f"{table.column(col).dtype} (use first)"
            )
    loose = sorted(c for c in spec.columns if c not in agg.by and c not in agg.columns)
    if loose:
        raise IngestError(
            f"{where}: mapped column(s) {', '.join(loose)} are neither in 'by' nor in "
            "'columns'; say how each is combined (sum, mean or first)"
        )
    for i, text in enumerate(agg.checks):
        try:
            check_against_table(parse(text), table)
        except ExpressionError as e:
            raise IngestError(f"{where}.checks[{i}]: {text!r}: {e}") from None


_SPACES = re.compile(r"\s+")


def normalise_label(value: object) -> str:
    """Trim, collapse inner whitespace and lower-case an answer label (``'3  Ok '`` -> ``'3 ok'``)."""
    return _SPACES.sub(" ", str(value)).strip().casefold()


_LEADING_INT = re.compile(r"^\s*(\d+)(?:\s|$|[.):-])")


def parse_likert(s: pd.Series) -> pd.Series:
    """The leading integer of Likert labels (``'4 clean'`` -> ``'4'``); other text is kept as is."""
    t = s.astype("string")
    num = t.str.extract(_LEADING_INT, expand=False)
    return num.fillna(t)


def band_values(bands: dict[str, tuple[float | None, float | None]]) -> dict[str, float]:
    """Representative value of each band: the midpoint; open bands extend by half a neighbour's width.

    >>> band_values({"< 30mins": (0, 30), "30-45 mins": (30, 45), ">45 mins": (45, None)})
    {'< 30mins': 15.0, '30-45 mins': 37.5, '>45 mins': 52.5}
    """
    closed = sorted((lo, hi) for lo, hi in bands.values() if lo is not None and hi is not None)
    out: dict[str, float] = {}
    for label, (lo, hi) in bands.items():
        if lo is not None and hi is not None:
            out[label] = (lo + hi) / 2
        elif lo is not None:  # open upwards: neighbour is the closed band ending at lo
            nb = [h - low for low, h in closed if h == lo]
            out[label] = lo + (nb[0] / 2 if nb else 0.0)
        elif hi is not None:  # open downwards
            nb = [h - low for low, h in closed if low == hi]
            out[label] = max(hi - (nb[0] / 2 if nb else hi / 2), 0.0)
        else:
            raise IngestError(f"band {label!r} has neither a lower nor an upper bound")
    return out


def resolve_column(name: str, columns: list[str], path: Path | str = "") -> str | None:
    """Find an export column by its exact name, its name up to spacing/case, or its leaf name.

    The leaf of ``group/question`` (KoboToolbox) or ``g1-question`` (ODK Central) is
    ``question``; a leaf that matches several columns is ambiguous and not resolved.
    """
    if name in columns:
        return name
    norm = normalise_label(name)
    hits = [c for c in columns if normalise_label(c) == norm]
    if len(hits) == 1:
        return hits[0]
    leaf = [c for c in columns if re.split(r"[/-]", c)[-1] == name]
    if len(leaf) == 1:
        return leaf[0]
    return None


def closest_headers(name: str, columns: list[str], n: int = 5) -> list[str]:
    """The export headers most like ``name`` (spelling, then shared words), for error messages."""
    norm = {normalise_label(c): c for c in columns}
    hits = difflib.get_close_matches(normalise_label(name), list(norm), n=n, cutoff=0.5)
    out = [norm[h] for h in hits]
    words = set(re.findall(r"[a-z0-9]+", normalise_label(name)))
    for c in columns:
        if len(out) >= n:
            break
        if c not in out and words & set(re.findall(r"[a-z0-9]+", normalise_label(c))):
            out.append(c)
    return out


def _missing_source(
    what: str, name: str, columns: list[str], path: Path | str, mapping_source: str
) -> DataQualityError:
    same = [c for c in columns if normalise_label(c) == normalise_label(name)]
    leaf = [c for c in columns if re.split(r"[/-]", c)[-1] == name]
    if len(same) > 1:
        why = (
            f"matches {len(same)} headers that differ only in spacing or case "
            f"({', '.join(repr(c) for c in same[:6])}) [rule: duplicate_header]: write one exactly"
        )
    elif len(leaf) > 1:
        why = f"matches {len(leaf)} columns ({', '.join(leaf[:6])}): write the full path"
    else:
        near = closest_headers(name, columns)
        why = "is not in the export; closest headers: " + (
            ", ".join(repr(c) for c in near) if near else "(none alike)"
        )
    return DataQualityError(
        f"{path}: {mapping_source or 'the mapping'}: {what} reads column {name!r}, which {why} "
        f"[rule: missing_column]. Fix: correct {what} or re-export with the column."
    )


_DUP_SUFFIX = re.compile(r"\.\d+$")


def _check_not_duplicated(
    name: str,
    resolved: str,
    duplicates: set[str],
    what: str,
    path: Path | str,
    mapping_source: str,
) -> None:
    base = _DUP_SUFFIX.sub("", resolved) if resolved not in duplicates else resolved
    if base in duplicates and normalise_label(name) == normalise_label(base):
        raise DataQualityError(
            f"{path}: {mapping_source or 'the mapping'}: {what} reads column {name!r}, but the "
            f"export has several columns headed {base!r} [rule: duplicate_header]. Fix: rename "
            f"them in the export, or name one by position ({base!r}.1 is the second)."
        )


_TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")


def template_columns(template: str) -> list[str]:
    """Export columns named in braces in a template (``'{year}-12'`` -> ``['year']``)."""
    return _TEMPLATE_FIELD.findall(template)


def source_values(
    text: pd.DataFrame,
    names: set[str] | list[str],
    what: str,
    path: Path | str = "",
    mapping_source: str = "",
    duplicates: set[str] | frozenset[str] = frozenset(),
    *,
    numeric: bool = True,
) -> tuple[pd.DataFrame, set[str]]:
    """The export columns an expression reads, under the names it uses, for evaluation.

    Blank cells (``''``, ``NA``…) are missing; with ``numeric``, a column whose present cells
    are all numbers becomes numeric (templates keep the text: month ``03`` stays ``03``).
    Returns the frame and the export columns used.

    Raises
    ------
    DataQualityError
        A name that is not in the export (with the closest headers) or that is repeated.
    """
    from clm_research.ingest.parse import empty_text

    columns = [str(c) for c in text.columns]
    out: dict[str, pd.Series] = {}
    used: set[str] = set()
    for name in sorted(names):
        src = resolve_column(name, columns)
        if src is None:
            raise _missing_source(what, name, columns, path, mapping_source)
        _check_not_duplicated(name, src, set(duplicates), what, path, mapping_source)
        used.add(src)
        t = text[src].astype("string").str.strip()
        t = t.mask(empty_text(t))
        if not numeric:
            out[name] = t
            continue
        num = pd.to_numeric(t, errors="coerce")
        out[name] = num if bool((num.notna() == t.notna()).all()) else t
    return pd.DataFrame(out, index=text.index), used


def filter_rows(
    text: pd.DataFrame,
    spec: TableSpec,
    path: Path | str = "",
    mapping_source: str = "",
    duplicates: set[str] | frozenset[str] = frozenset(),
) -> tuple[np.ndarray | None, set[str]]:
    """``True`` for the rows the table's ``filter`` keeps (``None`` when there is no filter),
    and the export columns the filter reads."""
    expr = spec.filter_expr()
    if expr is None:
        return None, set()
    frame, used = source_values(
        text, expr_columns(expr), f"filter {spec.filter!r}", path, mapping_source, duplicates
    )
    try:
        return evaluate(expr, frame).to_numpy(dtype=bool), used
    except (TypeError, ValueError) as e:
        raise DataQualityError(
            f"{path}: {mapping_source or 'the mapping'}: filter {spec.filter!r} cannot be "
            f"evaluated on the export ({e}) [rule: type]. Fix: compare numbers with numbers "
            "and text with 'text'."
        ) from None


class MappedTable:
    """The export's rows in canonical column names, still as text (or mapped values)."""

    def __init__(
        self,
        frame: pd.DataFrame,
        used: set[str],
        derived: dict[str, ColumnSpec],
        labels: dict[str, dict[str, int]],
        bands: dict[str, dict[str, float]],
    ):
        self.frame = frame
        self.used = used
        self.derived = derived
        #: canonical column -> {unknown label: count} (kept as is; the gate will flag them)
        self.unknown_labels = labels
        self.bands = bands


_WHOLE_NUMBER = re.compile(r"^(-?\d+)\.0+$")


def _label_key(value: object) -> str:
    """:func:`normalise_label`, and a whole number written by a spreadsheet as ``2.0`` is ``2``."""
    return _WHOLE_NUMBER.sub(r"\1", normalise_label(value))


def _map_values(s: pd.Series, spec: ColumnSpec, boolean: bool) -> tuple[pd.Series, dict[str, int]]:
    table: dict[str, Any] = {}
    if boolean:
        table.update(YES_NO)
    table.update({_label_key(k): v for k, v in spec.values.items()})
    bands: dict[str, float] = {}
    if spec.bands:
        bands = band_values(spec.bands)
        table.update({_label_key(k): v for k, v in bands.items()})
    if not table:
        return s, {}
    text = s.astype("string")
    # each distinct label is normalised once (a long export repeats a few labels)
    keys = text.map({u: _label_key(u) for u in pd.unique(text.dropna())})
    known = keys.isin(list(table)).fillna(False).astype(bool)
    mapped = keys.map(lambda k: table.get(k) if isinstance(k, str) else None)
    out = s.astype(object).where(~known, mapped.astype(object))
    out = out.where(~(known & mapped.isna()), None)
    unknown = s[~known & s.notna() & (s.astype("string").str.strip() != "")]
    return out, {str(k): int(v) for k, v in unknown.value_counts().items()}


def apply_mapping(
    text: pd.DataFrame,
    spec: TableSpec,
    table: Table,
    fmt: Format,
    path: Path | str,
    *,
    mapping_source: str = "",
    duplicates: set[str] | frozenset[str] = frozenset(),
) -> MappedTable:
    """Rename and recode the export's columns to the canonical columns of ``table``.

    For the ``canonical`` format every canonical column present under its own name is taken
    as is, unless the mapping says otherwise.

    Raises
    ------
    DataQualityError
        A mapped export column that is not in the file (naming the mapping key and the
        closest headers), a repeated header that is mapped, or a required canonical column
        with no source: the message names the file, the column, the rule and the fix.
    """
    specs = spec.column_specs()
    columns = [str(c) for c in text.columns]
    if fmt == "canonical":
        for own in table.column_names:
            if own not in specs and own in columns and own not in spec.not_collected:
                specs[own] = ColumnSpec(**{"from": own})
    out: dict[str, pd.Series] = {}
    used: set[str] = set()
    derived: dict[str, ColumnSpec] = {}
    unknown: dict[str, dict[str, int]] = {}
    bands: dict[str, dict[str, float]] = {}
    n = len(text)
    for name, cs in specs.items():
        col = table.column(name)
        if cs.derive:
            derived[name] = cs
            continue
        key = f"tables.{table.name}.columns.{name}"
        if cs.constant is not None:
            out[name] = pd.Series([cs.constant] * n, index=text.index, dtype=object)
            continue
        if cs.expr is not None:
            arith: Arith = parse_arithmetic(cs.expr)
            frame, src_used = source_values(
                text, arithmetic_columns(arith), key, path, mapping_source, duplicates
            )
            used |= src_used
            out[name] = _number_text(evaluate_arithmetic(arith, frame))
            continue
        if cs.template is not None:
            fields = template_columns(cs.template)
            frame, src_used = source_values(
                text, fields, key, path, mapping_source, duplicates, numeric=False
            )
            used |= src_used
            out[name] = _fill_template(cs.template, fields, text, frame)
            continue
        src = resolve_column(cs.from_ or "", columns)
        if cs.contains and src is None:
            # KoboToolbox/ODK split 0/1 column for the option
            src = resolve_column(f"{cs.from_}/{cs.contains}", columns)
            if src is not None:
                used.add(src)
                out[name] = text[src]
                continue
        if src is None:
            # a mapped column absent from the export is an error even when the canonical
            # column is optional: leaving it empty would read as "nobody answered"
            raise _missing_source(key, cs.from_ or "", columns, path, mapping_source)
        _check_not_duplicated(cs.from_ or "", src, set(duplicates), key, path, mapping_source)
        used.add(src)
        s = text[src]
        if cs.multi_select:
            parts = s.astype("string").str.split(re.escape(cs.multi_select), regex=True)
            target = normalise_label(cs.contains)
            has = parts.map(
                lambda xs, t=target: (
                    None if not isinstance(xs, list) else any(normalise_label(x) == t for x in xs)
                )
            )
            blank = s.astype("string").str.strip().fillna("") == ""
            out[name] = has.astype(object).where(~blank, None)
            continue
        if cs.likert:
            s = parse_likert(s)
        s, unk = _map_values(s, cs, boolean=col.dtype == "boolean")
        if cs.bands:
            bands[name] = band_values(cs.bands)
        if unk:
            unknown[name] = unk
        out[name] = s
    if fmt == "canonical":
        missing = [
            c.name
            for c in table.columns
            if c.required
            and c.name not in out
            and c.name not in derived
            and c.name not in spec.not_collected
        ]
        if missing:
            hint = ""
            if len(columns) == 1:
                hint = (
                    " Only one column was found: the file's delimiter is not , ; or tab "
                    "[rule: wrong_delimiter]; export it as CSV with , or ;."
                )
            raise DataQualityError(
                f"{path}: required column(s) {', '.join(missing)} missing from the {table.name} table "
                f"[rule: missing_column]. Found: {', '.join(columns)[:300]}.{hint} Fix: add the column(s) "
                "with these exact names (see `clm schema`) or map them in params/mappings/<country>.yaml."
            )
    frame = pd.DataFrame(out, index=text.index)
    return MappedTable(frame.reset_index(drop=True), used, derived, unknown, bands)


def _number_text(values: pd.Series) -> pd.Series:
    """Numbers as text (``3.0`` -> ``'3'``), missing as missing: typed later like any cell."""
    v = values.astype("float64")
    whole = (v % 1 == 0) & v.notna()
    out = pd.Series(pd.NA, index=v.index, dtype="string")
    out[whole] = v[whole].astype("int64").astype("string")
    frac = v.notna() & ~whole
    out[frac] = v[frac].map(repr).astype("string")
    return out


def _fill_template(
    template: str, fields: list[str], text: pd.DataFrame, frame: pd.DataFrame
) -> pd.Series:
    """Fill a template row by row; a row with a missing field gets a missing value."""
    parts = _TEMPLATE_FIELD.split(template)  # literal, field, literal, field, ...
    out = pd.Series("", index=text.index, dtype="string")
    missing = pd.Series(False, index=text.index)
    for i, piece in enumerate(parts):
        if i % 2 == 0:
            out = out + piece
            continue
        v = frame[piece]
        missing = missing | v.isna()
        out = out + v.astype("string")
    return out.mask(missing)


def derive_columns(typed: pd.DataFrame, derived: dict[str, ColumnSpec]) -> pd.DataFrame:
    """Fill derived columns (``round`` = quarter of ``date``, ``period`` = month of ``date``)."""
    for name, cs in derived.items():
        src = typed.get(cs.source)
        if src is None:
            typed[name] = pd.Series(pd.NA, index=typed.index, dtype="string")
            continue
        d = pd.to_datetime(src, errors="coerce")
        if cs.derive == "quarter":
            vals = (
                d.dt.year.astype("Int64").astype("string")
                + "Q"
                + d.dt.quarter.astype("Int64").astype("string")
            )
        else:
            vals = d.dt.strftime("%Y-%m").astype("string")
        typed[name] = vals.astype("string")
    return typed


def content_duplicates(text: pd.DataFrame, ignore: list[str]) -> np.ndarray:
    """``True`` for a row identical to an earlier row in every column but ``ignore``."""
    cols = [c for c in text.columns if c not in set(ignore)]
    if not cols:
        return np.zeros(len(text), bool)
    norm: pd.DataFrame = text[cols].fillna("").astype(str).apply(lambda s: s.str.strip())
    return norm.duplicated(keep="first").to_numpy()


class AggregateResult(BaseModel):
    """What :func:`aggregate_rows` did (for the manifest)."""

    model_config = ConfigDict(frozen=True)

    rows_in: int
    rows_out: int
    by: list[str]
    failed_checks: dict[str, int] = Field(default_factory=dict)


def aggregate_rows(
    staged: StagedTable, spec: TableSpec, table: Table
) -> tuple[StagedTable, AggregateResult]:
    """Combine the staged rows of each group (``aggregate.by``) into one row.

    ``sum`` keeps a group's total missing when a part is missing (unless the column is in
    ``skip_missing``, or every part is missing); ``mean`` averages the present parts; ``first``
    takes the first row's value. A group fails every rule one of its parts failed, plus
    ``inconsistent:<column>`` when a part breaks one of ``checks``. Rows with a missing key
    are not combined: each stays its own row (the gate flags the missing key). The group's
    source row is its first part's.
    """
    agg = spec.aggregate
    assert agg is not None
    f = staged.frame
    n = len(f)
    missing_by = [c for c in agg.by if c not in f.columns]
    if missing_by:
        raise DataQualityError(
            f"aggregate: key column(s) {', '.join(missing_by)} of {table.name} are not mapped "
            "[rule: missing_column]"
        )
    loose = [c for c in f.columns if c not in agg.by and c not in agg.columns]
    if loose:
        raise DataQualityError(
            f"aggregate: column(s) {', '.join(loose)} of {table.name} are neither in 'by' nor "
            "in 'columns' [rule: missing_column]. Fix: say how each is combined."
        )
    keys = f[agg.by]
    complete = keys.notna().all(axis=1).to_numpy()
    gid = np.full(n, -1, dtype=np.int64)
    if complete.any():
        gid[complete] = keys[complete].groupby(agg.by, sort=False).ngroup().to_numpy()
    n_groups = int(gid.max()) + 1 if complete.any() else 0
    # a row with an incomplete key is a group of its own
    gid[~complete] = n_groups + np.arange(int((~complete).sum()))
    n_out = n_groups + int((~complete).sum())
    groups = pd.Series(gid)
    first_pos = pd.Series(np.arange(n)).groupby(groups, sort=True).min().to_numpy()

    out: dict[str, pd.Series] = {}
    for c in f.columns:
        s = f[c].reset_index(drop=True)
        how = agg.columns.get(c, "first")
        if c in agg.by or how == "first":
            out[c] = s.iloc[first_pos].reset_index(drop=True)
            continue
        g = s.astype("float64").groupby(groups, sort=True)
        if how == "mean":
            v = g.mean()
        else:
            v = g.sum(min_count=1)
            if c not in agg.skip_missing:
                any_missing = s.isna().groupby(groups, sort=True).any()
                v = v.mask(any_missing)
        v = v.reset_index(drop=True)
        if table.column(c).dtype == "integer":
            out[c] = v.round().astype("Int64") if how == "mean" else v.astype("Int64")
        else:
            out[c] = v.astype("float64")
    frame = pd.DataFrame(out)[list(f.columns)]

    def any_by_group(mask: np.ndarray) -> np.ndarray:
        return pd.Series(mask).groupby(groups, sort=True).any().to_numpy(dtype=bool)

    prefailed = {k: any_by_group(np.asarray(m, bool)) for k, m in staged.prefailed.items()}
    notes = np.full(n, "", dtype=object)
    if staged.raw_values is not None:
        notes[:] = staged.raw_values.fillna("").to_numpy(dtype=object)
    failed_checks: dict[str, int] = {}
    for text in agg.checks:
        expr = parse(text)
        cols = sorted(expr_columns(expr))
        if any(c not in f.columns for c in cols):
            continue
        bad = evaluate(Not(expr), f.reset_index(drop=True)).to_numpy(dtype=bool)
        if not bad.any():
            continue
        first_col = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)[0]
        label = f"inconsistent:{first_col}"
        m = any_by_group(bad)
        prefailed[label] = prefailed.get(label, np.zeros(n_out, bool)) | m
        failed_checks[text] = int(bad.sum())
        for i in np.flatnonzero(bad):
            vals = ", ".join(f"{c}={f[c].iloc[i]}" for c in cols)
            piece = f"part at row {staged.source_row[i]} breaks {text} ({vals})"
            notes[i] = piece if not notes[i] else f"{notes[i]}; {piece}"
    raw_values = None
    if (notes != "").any():
        joined = (
            pd.Series(notes)
            .groupby(groups, sort=True)
            .agg(lambda xs: "; ".join(x for x in xs if x))
        )
        raw_values = pd.Series(joined.to_numpy(dtype=object), dtype="string")
    result = StagedTable(
        staged.name,
        frame,
        np.asarray(staged.source_file)[first_pos],
        np.asarray(staged.source_row)[first_pos],
        prefailed,
        raw_values,
    )
    return result, AggregateResult(
        rows_in=n, rows_out=n_out, by=list(agg.by), failed_checks=failed_checks
    )
