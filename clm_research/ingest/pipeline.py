"""``clm ingest``: raw exports -> personal data removed -> canonical tables -> gate -> Parquet.

:func:`stage_country` reads ``data/raw/<country>/`` as the country's mapping says, removes
personal data, maps columns and labels, and types every cell (remembering unreadable cells).
:func:`ingest_country` then runs the gate (:mod:`clm_research.quality.gate`), writes the
accepted rows to ``data/processed/<country>/<table>.parquet``, the refused rows with their
failed rules to ``data/quarantine/<country>/<table>.parquet`` and a ``manifest.json`` (input
file hashes, row counts, mapping, unmapped columns). Raw files are only ever read.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clm_research.errors import CLMError, DataQualityError, IngestError
from clm_research.ingest.canonical import RawTable
from clm_research.ingest.mapping import (
    Mapping,
    TableSpec,
    apply_mapping,
    content_duplicates,
    derive_columns,
    load_mapping,
)
from clm_research.ingest.parse import EXCEL_ERRORS, _parse_dates, parse_table
from clm_research.ingest.privacy import age_in_years, personal_columns, pseudonym_key, pseudonymise
from clm_research.paths import raw_dir
from clm_research.schema import TABLES, Table

if TYPE_CHECKING:
    from clm_research.quality.gate import GateReport

__all__ = [
    "StagedTable",
    "InputFile",
    "IngestReport",
    "stage_table",
    "stage_country",
    "ingest_country",
    "cli_ingest",
    "sha256_file",
]


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file (read in chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    pseudonymised_columns: list[str] = field(default_factory=list)
    unmapped_columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    unknown_labels: dict[str, dict[str, int]] = field(default_factory=dict)
    banded_columns: dict[str, dict[str, float]] = field(default_factory=dict)
    #: (spreadsheet row, column) of Excel error cells (#NAME?, #DIV/0!…), any column
    excel_error_cells: list[tuple[int, str]] = field(default_factory=list)
    blank_rows: int = 0
    duplicate_submissions: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class StagedTable:
    """A canonical table before the gate: typed cells plus what ingestion already found wrong.

    Attributes
    ----------
    name
        Canonical table name.
    frame
        Canonical columns in canonical dtypes (cells that could not be read are missing).
    source_file, source_row
        Where each row came from (spreadsheet row numbers: the header is row 1).
    prefailed
        ``"rule:column"`` -> mask of failures found while reading (``type``, duplicate
        submissions, short rows).
    raw_values
        Text of the cells that failed ``type`` (``"age='abc'"``), for the quarantine.
    """

    name: str
    frame: pd.DataFrame
    source_file: np.ndarray
    source_row: np.ndarray
    prefailed: dict[str, np.ndarray] = field(default_factory=dict)
    raw_values: pd.Series | None = None

    def __len__(self) -> int:
        return len(self.frame)


@dataclass
class IngestReport:
    """What ``clm ingest`` did for one country."""

    country: str
    mapping: str
    inputs: list[InputFile]
    gate: GateReport | None = None
    written: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """A short human summary (one line per input file and table)."""
        lines = [f"{self.country}: ingested with mapping {self.mapping}"]
        for f in self.inputs:
            extra = []
            if f.personal_columns_removed:
                extra.append(f"personal data removed: {len(f.personal_columns_removed)} column(s)")
            if f.unmapped_columns:
                extra.append(
                    f"UNMAPPED: {', '.join(f.unmapped_columns[:6])}"
                    f"{' …' if len(f.unmapped_columns) > 6 else ''}"
                )
            if f.excel_error_cells:
                extra.append(f"{len(f.excel_error_cells)} Excel error cell(s)")
            if f.duplicate_submissions:
                extra.append(f"{f.duplicate_submissions} duplicate submission(s)")
            lines.append(
                f"  {Path(f.path).name} -> {f.table}: {f.rows} rows"
                + (f"; {'; '.join(extra)}" if extra else "")
            )
        if self.gate is not None:
            lines.append(self.gate.summary())
        return "\n".join(lines)


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


def stage_table(
    name: str,
    paths: list[Path],
    spec: TableSpec,
    mapping: Mapping,
) -> tuple[StagedTable, list[InputFile]]:
    """Read, de-identify, map and type one canonical table from its export file(s).

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
            path=str(path),
            sha256=sha256_file(path),
            bytes=path.stat().st_size,
            rows=len(text),
            reader=fmt,
            encoding=raw.encoding,
            delimiter=raw.delimiter,
            had_bom=raw.had_bom,
            duplicate_headers=list(raw.duplicate_headers),
            notes=list(raw.notes),
        )
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
            fmt_map = "canonical"
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
            dob = _parse_dates(
                text[dob_col].astype("string").str.strip(), mapping.personal.date_of_birth_formats
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

        mapped = apply_mapping(text, spec, table, fmt_map, path)
        typed, type_fail = parse_table(mapped.frame, table, spec.date_formats)
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
            if c in meta_cols or any(fnmatch.fnmatchcase(str(c), p) for p in spec.ignore)
        }
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
) -> tuple[dict[str, StagedTable], list[InputFile], list[str], Mapping]:
    """Stage every table of a country's mapping.

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
                f"{folder}: no file matches {spec.files} for table {name} [rule: missing_file]. "
                f"Fix: put the export in {folder} or correct `files` in {mapping.source or 'the mapping'}."
            )
            continue
        try:
            table, infos = stage_table(name, paths, spec, mapping)
        except DataQualityError as e:
            errors.append(str(e))
            continue
        staged[name] = table
        inputs.extend(infos)
    return staged, inputs, errors, mapping


def ingest_country(
    country: str,
    mapping: Mapping | str | Path | None = None,
    raw_folder: Path | None = None,
    *,
    as_of: str | pd.Timestamp | None = None,
    max_share: float | None = None,
    use_gx: bool = False,
    data_docs: bool = False,
) -> IngestReport:
    """Ingest one country: stage, gate, write processed tables, quarantine and manifest.

    Parameters
    ----------
    country
        Country code; raw files are read from ``data/raw/<country>/`` (or ``raw_folder``).
    mapping
        A :class:`Mapping`, a mapping file, or ``None`` for ``params/mappings/<country>.yaml``.
    as_of
        Data extraction date for ``future_date`` (default: the country's ``as_of``, else today).
    max_share
        Gate threshold (default: the country's ``quarantine_max_share``, else 0.05).
    use_gx, data_docs
        Also run the Great Expectations suites (and build Data Docs); ``clm validate`` does.

    Raises
    ------
    DataQualityError
        Any table-level failure (all of them are listed in the message); nothing is written.
    """
    from clm_research.quality.gate import run_gate, write_outputs

    staged, inputs, errors, mp = stage_country(country, mapping, raw_folder)
    if errors:
        raise DataQualityError(
            f"{country}: {len(errors)} table-level problem(s):\n  - " + "\n  - ".join(errors)
        )
    gate = run_gate(
        country, staged, as_of=as_of, max_share=max_share, use_gx=use_gx, data_docs=data_docs
    )
    report = IngestReport(country=country, mapping=mp.source, inputs=inputs, gate=gate)
    report.written = write_outputs(country, gate, manifest=_manifest(report, mp))
    return report


def _manifest(report: IngestReport, mp: Mapping) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    try:
        version = _version("clm-research")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = "unknown"
    src = Path(mp.source) if mp.source else None
    gate = report.gate
    return {
        "country": report.country,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "clm_research_version": version,
        "mapping": {
            "file": mp.source,
            "sha256": sha256_file(src) if src and src.is_file() else None,
            "format": mp.format,
        },
        "inputs": [asdict(f) for f in report.inputs],
        "tables": {k: asdict(v) for k, v in gate.tables.items()} if gate else {},
        "raw_files_modified": False,
        "note": "Personal data columns were removed before any table or quarantine was written; "
        "only their names are listed here.",
    }


def cli_ingest(countries: list[str]) -> int:
    """``clm ingest COUNTRY…``: ingest each country, print a summary, return the exit code.

    Returns 0 when every country ingested and passed the gate, 1 otherwise. User errors
    (:class:`~clm_research.errors.CLMError`) are printed without a traceback.
    """
    code = 0
    for country in countries:
        try:
            report = ingest_country(country)
        except CLMError as e:
            print(f"clm ingest {country}: FAILED\n{e}")
            code = 1
            continue
        print(report.summary())
        if report.gate is not None and not report.gate.passed:
            code = 1
    return code


def _json_default(o: object) -> object:  # pragma: no cover - used by write_outputs
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    return str(o)


def dump_json(obj: Any, path: Path) -> None:
    """Write ``obj`` as indented JSON (numpy scalars converted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(obj, indent=2, default=_json_default, ensure_ascii=False), encoding="utf-8"
    )
