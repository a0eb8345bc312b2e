"""Staging: raw exports → personal data removed → canonical columns, typed cell by cell.

:func:`stage_country` reads ``data/raw/<country>/`` as the country's mapping says, removes
personal data, maps columns and labels, and types every cell, remembering the cells that could
not be read. The result, one :class:`~clm_research.tables.StagedTable` per canonical table, goes
to the data-quality gate (:mod:`clm_research.quality.gate`); :mod:`clm_research.pipeline` runs
the two and writes the outputs. Raw files are only ever read.
"""

from __future__ import annotations

import fnmatch
import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clm_research.errors import DataQualityError, IngestError
from clm_research.files import sha256_file
from clm_research.ingest.canonical import RawTable
from clm_research.ingest.mapping import (
    Format,
    Mapping,
    TableSpec,
    aggregate_rows,
    apply_mapping,
    content_duplicates,
    derive_columns,
    filter_rows,
    load_mapping,
)
from clm_research.ingest.parse import EXCEL_ERRORS, ambiguous_dates, check_mojibake, parse_table
from clm_research.ingest.privacy import (
    age_in_years,
    mask_label_counts,
    mask_personal_data,
    personal_columns,
    pseudonym_key,
    pseudonymise,
)
from clm_research.paths import display_path, display_text, raw_dir
from clm_research.schema import TABLES, Table
from clm_research.tables import StagedTable

__all__ = [
    "InputFile",
    "stage_table",
    "stage_country",
]


@dataclass
class InputFile:
    """One raw file read: what it was and what was found in it (no cell values)."""

    table: str
    path: str
    sha256: str
    bytes: int
    rows: int
    reader: str
    encoding: str = ""
    delimiter: str | None = None
    had_bom: bool = False
    duplicate_headers: list[str] = field(default_factory=list)
    personal_columns_removed: list[str] = field(default_factory=list)
    #: canonical column -> reason -> cells masked as personal data typed into the wrong column
    masked_cells: dict[str, dict[str, int]] = field(default_factory=dict)
    pseudonymised_columns: list[str] = field(default_factory=list)
    unmapped_columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    unknown_labels: dict[str, dict[str, int]] = field(default_factory=dict)
    banded_columns: dict[str, dict[str, float]] = field(default_factory=dict)
    #: (spreadsheet row, column) of Excel error cells (#NAME?, #DIV/0!…), any column
    excel_error_cells: list[tuple[int, str]] = field(default_factory=list)
    blank_rows: int = 0
    duplicate_submissions: int = 0
    #: the mapping's row filter and how many rows of this file it left out (never silently)
    filter: str | None = None
    filtered_rows: int = 0
    #: rows of the table combined to the canonical grain: {"rows_in", "rows_out", "by", ...}
    aggregate: dict[str, Any] | None = None
    #: canonical columns the mapping declares not collected (absent from the staged table)
    not_collected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _reader(fmt: str, path: Path, spec: TableSpec) -> RawTable:
    kw: dict[str, Any] = {
        "delimiter": spec.delimiter,
        "encoding": spec.encoding,
        "sheet": spec.sheet,
    }
    if fmt == "kobo":
        from clm_research.ingest.kobo import read_kobo

        return read_kobo(path, **kw)
    if fmt == "odk":
        from clm_research.ingest.odk import read_odk

        return read_odk(path, **kw)
    if fmt == "commcare":
        from clm_research.ingest.commcare import read_commcare

        return read_commcare(path, **kw)
    if fmt == "dhis2":
        from clm_research.ingest.dhis2 import read_dhis2

        return read_dhis2(path)
    from clm_research.ingest.canonical import read_table_file

    return read_table_file(path, **kw)


def _metadata(fmt: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if fmt == "kobo":
        from clm_research.ingest.kobo import KOBO_METADATA, KOBO_PERSONAL

        return KOBO_METADATA, KOBO_PERSONAL
    if fmt == "odk":
        from clm_research.ingest.odk import ODK_METADATA, ODK_PERSONAL

        return ODK_METADATA, ODK_PERSONAL
    if fmt == "commcare":
        from clm_research.ingest.commcare import COMMCARE_METADATA, COMMCARE_PERSONAL

        return COMMCARE_METADATA, COMMCARE_PERSONAL
    return (), ()


def _excel_errors(text: pd.DataFrame, rows: np.ndarray) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for col in text.columns:
        s = text[col]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        m = s.astype("string").str.strip().isin(list(EXCEL_ERRORS)).fillna(False).to_numpy()
        out.extend((int(r), str(col)) for r in rows[m])
    return sorted(out)


def _known_labels(spec: TableSpec) -> dict[str, list[object]]:
    """Canonical column -> the answer labels (and their codes) the mapping declares for it."""
    out: dict[str, list[object]] = {}
    for col, cs in spec.column_specs().items():
        labels: list[object] = [*cs.values, *cs.values.values(), *(cs.bands or {})]
        if cs.contains:
            labels.append(cs.contains)
        out[col] = labels
    return out


def stage_table(
    name: str,
    paths: list[Path],
    spec: TableSpec,
    mapping: Mapping,
    *,
    as_of: object = None,
) -> tuple[StagedTable, list[InputFile]]:
    """Read, de-identify, map and type one canonical table from its export file(s).

    Personal data typed into any column are masked (:func:`~clm_research.ingest.privacy.
    mask_personal_data`, dates of birth measured from ``as_of``, default today) before the cells
    are typed, so neither the typed table, the quarantine's ``raw_values`` nor the unknown labels
    of the manifest carry them; the rows get the rule ``personal_data:<column>``.

    Raises
    ------
    DataQualityError
        A table-level failure (empty file, header only, wrong encoding, missing required
        column…): the message names the file, the column and the rule.
    """
    table: Table = TABLES[name]
    fmt = spec.reader or mapping.format
    meta_cols, meta_personal = _metadata(fmt)
    parts: list[StagedTable] = []
    infos: list[InputFile] = []
    for path in paths:
        raw = _reader(fmt, path, spec)
        text = raw.frame
        info = InputFile(
            table=name,
            path=display_path(path),
            sha256=sha256_file(path),
            bytes=path.stat().st_size,
            rows=len(text),
            reader=fmt,
            encoding=raw.encoding,
            delimiter=raw.delimiter,
            had_bom=raw.had_bom,
            duplicate_headers=list(raw.duplicate_headers),
            notes=list(raw.notes),
            not_collected=list(spec.not_collected),
        )
        duplicates = frozenset(raw.duplicate_headers)
        check_mojibake(text, path, spec.encoding)
        keep, filter_used = filter_rows(text, spec, path, mapping.source, duplicates)
        if keep is not None:
            info.filter = spec.filter
            info.filtered_rows = int((~keep).sum())
            text = text[keep].reset_index(drop=True)
            raw.frame = text
            raw.source_row = np.asarray(raw.source_row)[keep]
            if raw.short_rows is not None:
                raw.short_rows = np.asarray(raw.short_rows)[keep]
        rows = np.asarray(raw.source_row)
        prefailed: dict[str, np.ndarray] = {}
        info.excel_error_cells = _excel_errors(text, rows)
        if raw.short_rows is not None and raw.short_rows.any():
            prefailed["type:_row"] = raw.short_rows.copy()
            info.notes.append(
                f"{int(raw.short_rows.sum())} row(s) with fewer fields than the header (truncated)"
            )
        blank = (
            (text.fillna("").astype(str).apply(lambda s: s.str.strip()) == "")
            .all(axis=1)
            .to_numpy()
            if fmt != "dhis2" and len(text.columns)
            else np.zeros(len(text), bool)
        )
        info.blank_rows = int(blank.sum())

        if fmt == "dhis2":
            from clm_research.ingest.dhis2 import dhis2_to_routine

            if name != "routine":
                raise IngestError(
                    f"{path}: DHIS2 data value sets feed the routine table only, not {name}"
                )
            res = dhis2_to_routine(raw, spec.data_elements, spec.org_units, spec.quarterly_periods)
            text = res.frame
            rows = res.source_row
            prefailed = res.prefailed
            if res.unmapped_data_elements:
                info.unmapped_columns = [
                    f"dataElement {k} ({v} values)" for k, v in res.unmapped_data_elements.items()
                ]
            if res.unknown_org_units:
                info.notes.append(
                    f"org units without a facility_id in the mapping: {res.unknown_org_units}"
                )
            info.notes.append(f"{res.long_rows} data values -> {len(text)} facility-months")
            fmt_map: Format = "canonical"
        else:
            fmt_map = fmt

        # personal data: find, derive age, pseudonymise, then drop before anything else
        declared = list(mapping.personal.drop) + list(meta_personal)
        dob_col = mapping.personal.date_of_birth
        if dob_col is None and "date_of_birth" in text.columns:
            dob_col = "date_of_birth"
        personal = personal_columns(text.columns, declared)
        if dob_col and dob_col in text.columns and dob_col not in personal:
            personal.append(dob_col)
        pseudo = [c for c in mapping.personal.pseudonymise if c in text.columns]
        if spec.duplicate_submissions is not None:
            ign = set(spec.duplicate_submissions.ignore) | set(meta_cols)
            dup = content_duplicates(text, [c for c in text.columns if c in ign]) & ~blank
            if dup.any():
                prefailed["duplicate_key:submission"] = dup
            info.duplicate_submissions = int(dup.sum())
        dob = None
        if dob_col and dob_col in text.columns:
            dob, clashes = ambiguous_dates(
                text[dob_col].astype("string").str.strip(), mapping.personal.date_of_birth_formats
            )
            if clashes:  # the values are birth dates: the message names formats, never values
                formats = sorted({f for _, a, b in clashes for f in (a, b)})
                raise DataQualityError(
                    f"{display_path(path)}: column {dob_col!r} (date of birth): some dates are "
                    f"read differently by the declared formats {', '.join(formats)} "
                    "[rule: ambiguous_date]. Fix: keep only the format the export uses in "
                    "personal.date_of_birth_formats (day/month order is never guessed)."
                )
        if pseudo:
            key = pseudonym_key()
            text = text.copy()
            for c in pseudo:
                text[c] = pseudonymise(text[c], key)
            info.pseudonymised_columns = pseudo
        personal = [c for c in personal if c not in pseudo]
        text = text.drop(columns=personal)
        info.personal_columns_removed = personal

        mapped = apply_mapping(
            text,
            spec,
            table,
            fmt_map,
            path,
            mapping_source=mapping.source,
            duplicates=duplicates if fmt != "dhis2" else frozenset(),
        )
        # personal data typed into any column: masked before anything is typed, kept or shown
        labels = _known_labels(spec)
        masking = mask_personal_data(mapped.frame, table, labels, as_of=as_of)
        mapped.frame = masking.frame
        mapped.unknown_labels = mask_label_counts(mapped.unknown_labels, table, labels, as_of=as_of)
        info.masked_cells = masking.counts
        prefailed.update(masking.rule_masks())
        try:
            typed, type_fail = parse_table(mapped.frame, table, spec.date_formats)
        except DataQualityError as e:
            raise DataQualityError(f"{display_path(path)}: {e}") from None
        typed = derive_columns(typed, mapped.derived)
        if dob is not None and "age" in table and mapping.personal.age_reference in typed.columns:
            derived_age = age_in_years(
                dob.reset_index(drop=True), typed[mapping.personal.age_reference]
            )
            if "age" in typed.columns:
                typed["age"] = typed["age"].fillna(derived_age)
            else:
                typed["age"] = derived_age
        raw_vals = _raw_values(mapped.frame, type_fail)
        prefailed.update(type_fail)
        info.unknown_labels = mapped.unknown_labels
        info.banded_columns = mapped.bands
        ignored = {
            c
            for c in text.columns
            if c in meta_cols
            or c
            in spec.not_collected  # a canonical file's column the country declares not collected
            or any(fnmatch.fnmatchcase(str(c), p) for p in spec.ignore)
        }
        mapped.used |= filter_used  # read by the filter: used, not "unmapped"
        info.ignored_columns = sorted(
            c for c in text.columns if c in ignored and c not in mapped.used
        )
        if fmt != "dhis2":
            info.unmapped_columns = [
                c for c in text.columns if c not in mapped.used and c not in ignored
            ]
        infos.append(info)
        parts.append(
            StagedTable(
                name,
                typed,
                np.full(len(typed), str(path), dtype=object),
                np.asarray(rows, dtype=np.int64),
                prefailed,
                raw_vals,
            )
        )
    staged = _concat(name, parts)
    if spec.aggregate is not None:
        try:
            staged, done = aggregate_rows(staged, spec, table)
        except DataQualityError as e:
            raise DataQualityError(f"{mapping.source or 'mapping'}: tables.{name}.{e}") from None
        for info in infos:
            info.aggregate = done.model_dump()
    if spec.distinct:
        staged = _distinct(staged, table)
    return staged, infos


def _raw_values(text: pd.DataFrame, type_fail: dict[str, np.ndarray]) -> pd.Series | None:
    if not type_fail:
        return None
    out = np.full(len(text), "", dtype=object)
    for label, m in type_fail.items():
        col = label.split(":", 1)[1]
        vals = text[col].astype("string").to_numpy()
        for i in np.flatnonzero(m):
            piece = f"{col}={str(vals[i]).strip()!r}"
            out[i] = piece if not out[i] else out[i] + "; " + piece
    return pd.Series(out, dtype="string")


def _concat(name: str, parts: list[StagedTable]) -> StagedTable:
    if len(parts) == 1:
        return parts[0]
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    labels = sorted({k for p in parts for k in p.prefailed})
    pre = {
        k: np.concatenate([p.prefailed.get(k, np.zeros(len(p), bool)) for p in parts])
        for k in labels
    }
    rv = None
    if any(p.raw_values is not None for p in parts):
        rv = pd.concat(
            [
                p.raw_values
                if p.raw_values is not None
                else pd.Series([""] * len(p), dtype="string")
                for p in parts
            ],
            ignore_index=True,
        )
    return StagedTable(
        name,
        frame,
        np.concatenate([p.source_file for p in parts]),
        np.concatenate([p.source_row for p in parts]),
        pre,
        rv,
    )


def _distinct(staged: StagedTable, table: Table) -> StagedTable:
    """One row per primary key (a lookup derived from a survey): first non-missing value per column."""
    key = list(table.primary_key)
    f = staged.frame.copy()
    for label, masked in staged.prefailed.items():  # a masked cell is no value for the lookup
        column = label.split(":", 1)[1]
        if label.startswith("personal_data:") and column in f.columns:
            f.loc[masked, column] = pd.NA
    f["_source_row"] = staged.source_row
    f["_source_file"] = staged.source_file
    f = f[f[key].notna().all(axis=1)]
    g = f.groupby(key, sort=False, dropna=True).first().reset_index()
    rows = g.pop("_source_row").to_numpy()
    files = g.pop("_source_file").to_numpy()
    cols = [c for c in staged.frame.columns]
    return StagedTable(staged.name, g[cols], files, rows, {}, None)


def _files(folder: Path, patterns: list[str]) -> list[Path]:
    out: list[Path] = []
    for pat in patterns:
        hits = sorted(Path(p) for p in glob.glob(str(folder / pat)))
        out.extend(h for h in hits if h.is_file() and h not in out)
    return out


def stage_country(
    country: str,
    mapping: Mapping | str | Path | None = None,
    raw_folder: Path | None = None,
    *,
    as_of: object = None,
) -> tuple[dict[str, StagedTable], list[InputFile], list[str], Mapping]:
    """Stage every table of a country's mapping (``as_of``: the extraction date, see
    :func:`stage_table`).

    Returns
    -------
    staged, inputs, errors, mapping
        Staged tables by name; the input files read; table-level error messages (tables with
        an error are absent from ``staged``); the mapping used.
    """
    if not isinstance(mapping, Mapping):
        mapping = load_mapping(mapping if mapping is not None else country)
    folder = Path(raw_folder) if raw_folder is not None else raw_dir(country)
    staged: dict[str, StagedTable] = {}
    inputs: list[InputFile] = []
    errors: list[str] = []
    for name in TABLES:  # referenced tables first
        spec = mapping.tables.get(name)
        if spec is None:
            continue
        paths = _files(folder, spec.files)
        if not paths:
            errors.append(
                f"{display_path(folder)}: no file matches {spec.files} for table {name} "
                f"[rule: missing_file]. Fix: put the export in {display_path(folder)} or correct "
                f"`files` in {mapping.source or 'the mapping'}."
            )
            continue
        try:
            table, infos = stage_table(name, paths, spec, mapping, as_of=as_of)
        except DataQualityError as e:
            errors.append(display_text(str(e)))  # kept in status files and manifests
            continue
        staged[name] = table
        inputs.extend(infos)
    return staged, inputs, errors, mapping
