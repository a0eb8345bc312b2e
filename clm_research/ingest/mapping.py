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
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from clm_research.config.loader import read_yaml_mapping, validate_model
from clm_research.errors import DataQualityError, IngestError
from clm_research.files import sha256_file
from clm_research.paths import display_path, params_dir
from clm_research.schema import Table

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
    date_formats: list[str] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ColumnSpec:
        n = sum(x is not None for x in (self.from_, self.constant, self.derive))
        if n != 1:
            raise ValueError("give exactly one of 'from', 'constant' or 'derive'")
        if self.derive and not self.source:
            raise ValueError("'derive' needs 'source' (the canonical date column)")
        if self.contains and not self.multi_select:
            raise ValueError("'contains' needs 'multi_select' (the separator)")
        return self


class DuplicateSpec(_Strict):
    """Submissions identical in every column but these are duplicates (``duplicate_key:submission``)."""

    ignore: list[str] = Field(default_factory=list)


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
        for col in spec.columns:
            if col not in TABLES[name]:
                raise IngestError(
                    f"{path}: tables.{name}.columns: {col!r} is not a column of {name}; "
                    f"known: {', '.join(TABLES[name].column_names)}"
                )
    return mapping


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


def _map_values(s: pd.Series, spec: ColumnSpec, boolean: bool) -> tuple[pd.Series, dict[str, int]]:
    table: dict[str, Any] = {}
    if boolean:
        table.update(YES_NO)
    table.update({normalise_label(k): v for k, v in spec.values.items()})
    bands: dict[str, float] = {}
    if spec.bands:
        bands = band_values(spec.bands)
        table.update({normalise_label(k): v for k, v in bands.items()})
    if not table:
        return s, {}
    keys = s.astype("string").map(lambda x: normalise_label(x) if isinstance(x, str) else x)
    known = keys.isin(list(table))
    mapped = keys.map(lambda k: table.get(k) if isinstance(k, str) else None)
    out = s.astype(object).where(~known, mapped.astype(object))
    out = out.where(~(known & mapped.isna()), None)
    unknown = s[~known & s.notna() & (s.astype("string").str.strip() != "")]
    return out, {str(k): int(v) for k, v in unknown.value_counts().items()}


def apply_mapping(
    text: pd.DataFrame, spec: TableSpec, table: Table, fmt: Format, path: Path | str
) -> MappedTable:
    """Rename and recode the export's columns to the canonical columns of ``table``.

    For the ``canonical`` format every canonical column present under its own name is taken
    as is, unless the mapping says otherwise.

    Raises
    ------
    DataQualityError
        A required canonical column has no source in the file: the message names the file,
        the column, the rule ``missing_column`` and the fix.
    """
    specs = spec.column_specs()
    columns = [str(c) for c in text.columns]
    if fmt == "canonical":
        for own in table.column_names:
            if own not in specs and own in columns:
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
        if cs.constant is not None:
            out[name] = pd.Series([cs.constant] * n, index=text.index, dtype=object)
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
            if col.required:
                raise DataQualityError(
                    f"{path}: column {cs.from_!r} (canonical {table.name}.{name}) not found "
                    f"[rule: missing_column]. The file has {len(columns)} columns: "
                    f"{', '.join(columns[:12])}{' …' if len(columns) > 12 else ''}. Fix: add the column "
                    "to the export or correct the mapping in params/mappings/<country>.yaml."
                )
            continue
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
            if c.required and c.name not in out and c.name not in derived
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
