"""The ingestion pipeline, once: stage the raw exports → run the data-quality gate → write.

``clm ingest`` and ``clm validate`` (and ``clm run``, before any notebook) call
:func:`ingest_country`/:func:`validate_country`, which share one implementation: the staging of
:mod:`clm_research.ingest.staging`, the gate of :mod:`clm_research.quality.gate`, then the
accepted rows to ``data/processed/<country>/<table>.parquet``, the refused rows with their
failed rules to ``data/quarantine/<country>/<table>.parquet`` and a ``manifest.json`` (input
file hashes, row counts, mapping, unmapped columns, the gate's verdict). Raw files are only ever
read; every file is written atomically (:mod:`clm_research.files`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from clm_research.config.country import list_countries, load_country
from clm_research.errors import CLMError, DataQualityError, IngestError
from clm_research.files import write_json, write_parquet
from clm_research.ingest.mapping import Mapping
from clm_research.ingest.privacy import make_private_folder
from clm_research.ingest.staging import InputFile, stage_country
from clm_research.paths import display_path, processed_dir, quarantine_dir
from clm_research.quality.gate import GateReport, run_gate
from clm_research.schema import TABLES

__all__ = [
    "IngestReport",
    "ingest_country",
    "validate_country",
    "write_outputs",
    "ensure_country_data",
    "cli_ingest",
    "cli_validate",
]


@dataclass
class IngestReport:
    """What ingestion did for one country: the files read, the gate's verdict, what was written."""

    country: str
    mapping: str
    inputs: list[InputFile]
    gate: GateReport
    written: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """A short human summary (one line per input file, then the gate's summary)."""
        lines = [f"{self.country}: ingested with mapping {self.mapping}"]
        for f in self.inputs:
            extra = []
            if f.personal_columns_removed:
                extra.append(f"personal data removed: {len(f.personal_columns_removed)} column(s)")
            if f.masked_cells:
                extra.append(f"personal data masked in {', '.join(f.masked_cells)}")
            if f.unmapped_columns:
                extra.append(
                    f"UNMAPPED: {', '.join(f.unmapped_columns[:6])}"
                    f"{' …' if len(f.unmapped_columns) > 6 else ''}"
                )
            if f.excel_error_cells:
                extra.append(f"{len(f.excel_error_cells)} Excel error cell(s)")
            if f.filtered_rows:
                extra.append(f"{f.filtered_rows} row(s) left out by the filter {f.filter!r}")
            if f.aggregate:
                extra.append(
                    f"{f.aggregate['rows_in']} rows combined into {f.aggregate['rows_out']} "
                    f"({' x '.join(f.aggregate['by'])})"
                )
            if f.duplicate_submissions:
                extra.append(f"{f.duplicate_submissions} duplicate submission(s)")
            lines.append(
                f"  {Path(f.path).name} -> {f.table}: {f.rows} rows"
                + (f"; {'; '.join(extra)}" if extra else "")
            )
        lines.append(self.gate.summary())
        return "\n".join(lines)


def _settings(
    country: str, as_of: Any, max_share: float | None
) -> tuple[pd.Timestamp | None, float | None]:
    """The extraction date and pass threshold: arguments first, then the country's parameters.

    A parameters file that exists must be valid: ``clm ingest`` refuses a broken one, like
    ``clm run`` (a country without one, e.g. a mapping tried on its own, gets the gate's defaults).
    """
    if country in list_countries():
        params = load_country(country)
        if as_of is None and params.as_of:
            as_of = params.as_of
        if max_share is None:
            max_share = params.quarantine_max_share
    return (pd.Timestamp(as_of) if as_of is not None else None), max_share


def _stage_gate_write(
    country: str,
    mapping: Mapping | str | Path | None,
    raw_folder: Path | None,
    *,
    as_of: Any,
    max_share: float | None,
    use_gx: bool,
    data_docs: bool,
    write: bool,
) -> IngestReport:
    as_of_ts, share = _settings(country, as_of, max_share)
    staged, inputs, errors, mp = stage_country(country, mapping, raw_folder, as_of=as_of_ts)
    gate = run_gate(
        country,
        staged,
        as_of=as_of_ts,
        max_share=share,
        use_gx=use_gx and not errors,
        data_docs=data_docs and not errors,
        errors=errors,
    )
    report = IngestReport(country=country, mapping=mp.source, inputs=inputs, gate=gate)
    if write and not errors:
        report.written = write_outputs(country, gate, manifest=_manifest(report, mp))
    return report


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
        A :class:`~clm_research.ingest.mapping.Mapping`, a mapping file, or ``None`` for
        ``params/mappings/<country>.yaml``.
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
    report = _stage_gate_write(
        country,
        mapping,
        raw_folder,
        as_of=as_of,
        max_share=max_share,
        use_gx=use_gx,
        data_docs=data_docs,
        write=True,
    )
    if report.gate.errors:
        errors = report.gate.errors
        raise DataQualityError(
            f"{country}: {len(errors)} table-level problem(s):\n  - " + "\n  - ".join(errors)
        )
    return report


def validate_country(
    country: str,
    max_share: float | None = None,
    *,
    mapping: Mapping | str | Path | None = None,
    raw_folder: Path | None = None,
    as_of: Any = None,
    use_gx: bool = True,
    data_docs: bool = True,
    write: bool = True,
) -> GateReport:
    """``clm validate``: the same pipeline with Great Expectations and Data Docs; the gate's report.

    Table-level failures do not raise here: they are listed in ``GateReport.errors`` (and the
    gate fails) so that the user sees every problem at once.
    """
    return _stage_gate_write(
        country,
        mapping,
        raw_folder,
        as_of=as_of,
        max_share=max_share,
        use_gx=use_gx,
        data_docs=data_docs,
        write=write,
    ).gate


def write_outputs(
    country: str, report: GateReport, manifest: dict[str, Any] | None = None
) -> dict[str, str]:
    """Write accepted rows (processed), quarantined rows and the manifest; return the paths.

    Processed tables are sorted by their primary key, so identical inputs give identical files.
    """
    pdir, qdir = processed_dir(country), quarantine_dir(country)
    written: dict[str, str] = {}
    # A table this ingestion did not produce is not collected: a file left by an earlier
    # ingestion (with another mapping) would make it look collected.
    for name in TABLES:
        if name not in report.accepted:
            (pdir / f"{name}.parquet").unlink(missing_ok=True)
            (qdir / f"{name}.parquet").unlink(missing_ok=True)
    for name, frame in report.accepted.items():
        key = list(TABLES[name].primary_key)
        out = frame.sort_values(key, kind="stable").reset_index(drop=True)
        path = write_parquet(pdir / f"{name}.parquet", out)
        written[f"processed/{name}"] = display_path(path)
        # the quarantine may hold personal data no detector recognised: owner-only (0700/0600)
        make_private_folder(qdir)
        qpath = write_parquet(qdir / f"{name}.parquet", report.quarantine[name], private=True)
        written[f"quarantine/{name}"] = display_path(qpath)
    if manifest is not None:
        manifest = dict(manifest)
        manifest["gate"] = {
            "passed": report.passed,
            "max_share": report.max_share,
            "errors": report.errors,
            "warnings": report.warnings,
            "data_docs": display_path(report.data_docs) if report.data_docs else None,
        }
        write_json(pdir / "manifest.json", manifest)
        written["manifest"] = display_path(pdir / "manifest.json")
    return written


def _manifest(report: IngestReport, mp: Mapping) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    try:
        version = _version("clm-research")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = "unknown"
    return {
        "country": report.country,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "clm_research_version": version,
        "mapping": {
            "file": mp.source,
            "sha256": mp.source_sha256,
            "format": mp.format,
        },
        "inputs": [asdict(f) for f in report.inputs],
        "tables": {k: asdict(v) for k, v in report.gate.tables.items()},
        # canonical tables and columns the country does not collect (absent downstream)
        "not_collected": {k: v.not_collected for k, v in report.gate.tables.items()},
        "tables_not_collected": [t for t in TABLES if t not in report.gate.tables],
        "raw_files_modified": False,
        "note": "Personal data columns were removed before any table or quarantine was written; "
        "only their names are listed here. Personal data typed into other columns were masked "
        "(masked_cells: counts per column and reason, never the values).",
    }


def ensure_country_data(country: str) -> Path:
    """Make sure the country's processed tables exist; return their folder.

    Opened on its own (JupyterLab, ``pytest --nbval-lax``) a report notebook may find no
    ``data/processed/<country>/``. For a fictional demo country the demo raw exports are
    generated (if missing) and ingested through the row-level gate, without Great
    Expectations (``clm ingest``'s fast path); nothing happens when the tables exist.

    Raises
    ------
    IngestError
        For a real country without processed tables (run ``clm ingest <country>``).
    """
    folder = processed_dir(country)
    if any((folder / f"{name}.parquet").is_file() for name in TABLES):
        return folder  # a country may collect any non-empty subset of the tables
    if not load_country(country).is_demo:
        raise IngestError(
            f"{country}: no processed tables in {display_path(folder)}; run "
            f"`clm ingest {country}` first"
        )
    from clm_research.demo import write_demo

    write_demo([country])
    ingest_country(country)
    return folder


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
        if not report.gate.passed:
            code = 1
    return code


def cli_validate(countries: list[str], max_share: float | None = None) -> int:
    """``clm validate COUNTRY…``: print a summary per country; 0 when all pass, 1 otherwise."""
    code = 0
    for country in countries:
        try:
            report = validate_country(country, max_share)
        except CLMError as e:
            print(f"clm validate {country}: FAILED\n{e}")
            code = 1
            continue
        print(report.summary())
        if not report.passed:
            code = 1
    return code
