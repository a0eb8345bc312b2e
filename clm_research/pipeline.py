"""The ingestion pipeline, once: stage the raw exports → run the data-quality gate → write.

``clm ingest`` and ``clm validate`` (and ``clm run``, before any notebook) call
:func:`ingest_country`/:func:`validate_country`, which share one implementation: the staging of
:mod:`clm_research.ingest.staging`, the gate of :mod:`clm_research.quality.gate`, then the
accepted rows to ``data/processed/<country>/<table>.parquet``, the refused rows with their
failed rules to ``data/quarantine/<country>/<table>.parquet`` and a ``manifest.json`` (input
file hashes, row counts, mapping, unmapped columns, the gate's verdict). Raw files are only ever
read; every file is written atomically (:mod:`clm_research.files`).

Only a passing gate publishes, as dbt and Great Expectations checkpoints stop a pipeline before
anything is published: the processed tables and their manifest are written into a temporary
folder and swapped in as one set (a reader sees the last passing set or the new one, never a
mix), then the quarantine, then the Data Docs. A failing gate leaves all of them untouched;
the candidate tables, quarantine, manifest and expectation results go to
``data/rejected/<country>/<time>/`` (owner-only: the candidate may hold personal data) for
inspection, the last :data:`KEEP_REJECTED` of them kept. A country's lock
(:mod:`clm_research.locks`) keeps two runs from writing at once.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from clm_research.config.country import list_countries, load_country
from clm_research.errors import CLMError, DataQualityError, IngestError
from clm_research.files import clean_leftovers, swap_folder, tmp_name, write_json, write_parquet
from clm_research.ingest.mapping import Mapping
from clm_research.ingest.staging import InputFile, stage_country
from clm_research.locks import country_lock
from clm_research.paths import (
    country_report_dir,
    display_path,
    processed_dir,
    quarantine_dir,
    rejected_dir,
)
from clm_research.periods import parse_as_of
from clm_research.quality.gate import GateReport, run_gate
from clm_research.schema import TABLES

__all__ = [
    "IngestReport",
    "finish_publication",
    "ingest_country",
    "validate_country",
    "write_outputs",
    "ensure_country_data",
    "cli_ingest",
    "cli_validate",
    "rejected_dir",
    "KEEP_REJECTED",
]

#: Rejected candidates kept per country (the oldest go first: they may hold personal data).
KEEP_REJECTED = 3


@dataclass
class IngestReport:
    """What ingestion did for one country: the files read, the gate's verdict, what was written."""

    country: str
    mapping: str
    inputs: list[InputFile]
    gate: GateReport
    written: dict[str, str] = field(default_factory=dict)
    rejected: str | None = None

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
        if self.rejected:
            lines.append(
                f"  nothing published: the last passing tables stay; the candidate and the "
                f"gate's results are in {self.rejected}"
            )
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
    if isinstance(as_of, str):
        as_of = parse_as_of(as_of)  # the format named in the error, never a guess
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
    if not write:
        return _stage_gate(country, mapping, raw_folder, as_of_ts, share, use_gx, data_docs)[0]
    with country_lock(country, command="clm ingest"):
        finish_publication(country)
        for folder in (processed_dir(country), quarantine_dir(country), rejected_dir(country)):
            clean_leftovers(folder.parent)
        clean_leftovers(rejected_dir(country))
        report, mp = _stage_gate(country, mapping, raw_folder, as_of_ts, share, use_gx, data_docs)
        manifest = _manifest(report, mp)
        if report.gate.passed:
            report.written = write_outputs(country, report.gate, manifest=manifest)
        else:
            report.rejected = display_path(reject_outputs(country, report.gate, manifest))
    return report


def _stage_gate(
    country: str,
    mapping: Mapping | str | Path | None,
    raw_folder: Path | None,
    as_of_ts: pd.Timestamp | None,
    share: float | None,
    use_gx: bool,
    data_docs: bool,
) -> tuple[IngestReport, Mapping]:
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
    return IngestReport(country=country, mapping=mp.source, inputs=inputs, gate=gate), mp


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
        kept = f"\n(nothing published; details in {report.rejected})" if report.rejected else ""
        raise DataQualityError(
            f"{country}: {len(errors)} table-level problem(s):\n  - " + "\n  - ".join(errors) + kept
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


def _write_tables(folder: Path, report: GateReport, *, private: bool) -> dict[str, Path]:
    """Accepted (``processed/``) and quarantined (``quarantine/``) rows of every table."""
    from clm_research.ingest.privacy import make_private_folder

    written: dict[str, Path] = {}
    for name, frame in report.accepted.items():
        key = list(TABLES[name].primary_key)
        out = frame.sort_values(key, kind="stable").reset_index(drop=True)
        written[f"processed/{name}"] = write_parquet(
            folder / "processed" / f"{name}.parquet", out, private=private
        )
        make_private_folder(folder / "quarantine")
        written[f"quarantine/{name}"] = write_parquet(
            folder / "quarantine" / f"{name}.parquet", report.quarantine[name], private=True
        )
    return written


def _gate_record(report: GateReport, docs: Path | None) -> dict[str, Any]:
    return {
        "passed": report.passed,
        "max_share": report.max_share,
        "errors": report.errors,
        "warnings": report.warnings,
        "data_docs": display_path(docs) if docs else None,
    }


def write_outputs(
    country: str, report: GateReport, manifest: dict[str, Any] | None = None
) -> dict[str, str]:
    """Publish a passing gate's tables: processed set, quarantine, Data Docs; return the paths.

    Processed tables are sorted by their primary key, so identical inputs give identical files.
    The processed tables and the manifest are swapped in as one folder, the quarantine likewise
    (owner-only); the Data Docs page last (:func:`clm_research.quality.docs.write_data_docs`).
    """
    from clm_research.ingest.privacy import make_private_folder

    pdir, qdir = processed_dir(country), quarantine_dir(country)
    docs = None
    if report.docs_records is not None:
        docs = country_report_dir(country) / "data_docs" / "index.html"
    # everything is written beside its target first; the swaps come last, back to back
    stage = pdir.parent / f"{tmp_name()}{country}"
    new_q = qdir.parent / f"{tmp_name()}{country}"
    new_docs = docs.parent.with_name(f"{tmp_name()}data_docs") if docs else None
    try:
        files = _write_tables(stage, report, private=False)
        if manifest is not None:
            manifest = dict(manifest)
            manifest["gate"] = _gate_record(report, docs)
            write_json(stage / "processed" / "manifest.json", manifest)
        if (stage / "quarantine").is_dir():
            make_private_folder(qdir.parent)
            os.replace(stage / "quarantine", new_q)
        if docs is not None and new_docs is not None:
            from clm_research.quality.docs import write_data_docs

            if docs.parent.is_dir():  # the history goes on
                shutil.copytree(docs.parent, new_docs)
            write_data_docs(
                country, report.docs_records or [], new_docs, created=report.docs_created
            )
        swaps = [(stage / "processed", pdir)]
        if new_q.is_dir():
            swaps.append((new_q, qdir))
        if docs is not None and new_docs is not None:
            swaps.append((new_docs, docs.parent))
        # The three folders cannot be exchanged in one step: a journal of the swaps lets the
        # next ingestion or run finish them (:func:`finish_publication`) if this process dies
        # between two, so processed tables never stand beside another run's quarantine.
        journal = _journal_path(country)
        write_json(
            journal,
            {
                "pid": os.getpid(),
                # each new folder by path and inode: a rename keeps the inode, so the next
                # start can tell which swaps happened
                "swaps": [[_rel(n, journal), _rel(f, journal), n.stat().st_ino] for n, f in swaps],
            },
        )
        for new, final in swaps:
            swap_folder(new, final)
        journal.unlink(missing_ok=True)
        if docs is not None:
            report.data_docs = docs
    except OSError as e:
        from clm_research.files import output_error

        _journal_path(country).unlink(missing_ok=True)
        raise output_error(getattr(e, "filename", None) or pdir, e) from None
    finally:
        for leftover in (stage, new_q, new_docs):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)
    written = {
        k: display_path((pdir if k.startswith("processed/") else qdir) / Path(v).name)
        for k, v in files.items()
    }
    if manifest is not None:
        written["manifest"] = display_path(pdir / "manifest.json")
    if docs is not None:
        written["data_docs"] = display_path(docs)
    return written


def _journal_path(country: str) -> Path:
    """The journal of a publication in progress (beside the processed folders)."""
    return processed_dir(country).parent / f".publishing-{country}.json"


def _rel(path: Path, journal: Path) -> str:
    return os.path.relpath(path, journal.parent)


def finish_publication(country: str) -> list[str]:
    """Finish the folder swaps of a publication whose process died between two; return them.

    :func:`write_outputs` journals its swaps (processed tables, quarantine, Data Docs: each new
    folder's path and inode) before the first and removes the journal after the last. A
    journal left behind means its process was killed part-way. If no swap happened, nothing
    was published and the journal goes (the new folders are leftovers of a dead process). If
    some did, the folders already in place are the new set, so the ones still waiting — fully
    written before the first swap — are swapped in too: processed tables never stand beside
    another ingestion's quarantine. Called with the country's lock held, before leftovers are
    cleaned (the waiting folders carry the dead process' id).
    """
    import json

    journal = _journal_path(country)
    if not journal.is_file():
        return []
    try:
        entry = json.loads(journal.read_text(encoding="utf-8"))
        pid = int(entry["pid"])
        swaps = [(journal.parent / n, journal.parent / f, int(i)) for n, f, i in entry["swaps"]]
    except (OSError, ValueError, KeyError, TypeError):
        journal.unlink(missing_ok=True)  # unreadable: written only part-way, before any swap
        return []
    from clm_research.files import pid_alive

    if pid != os.getpid() and pid_alive(pid):
        return []  # a live publication (its lock is elsewhere held): not ours to finish

    def inode(p: Path) -> int | None:
        try:
            return p.stat().st_ino
        except OSError:
            return None

    finished = []
    if any(inode(final) == ino for _, final, ino in swaps):
        for new, final, ino in swaps:
            if inode(final) != ino and inode(new) == ino:
                swap_folder(new, final)
                finished.append(display_path(final))
    journal.unlink(missing_ok=True)
    return finished


def reject_outputs(country: str, report: GateReport, manifest: dict[str, Any]) -> Path:
    """Keep a failing gate's candidate for inspection; return its folder.

    ``data/rejected/<country>/<UTC time>/`` (owner-only) gets the candidate processed tables and
    quarantine, the manifest with the gate's verdict and the expectation results (the Data
    Docs page and its records); only the last :data:`KEEP_REJECTED` candidates are kept.
    """
    from clm_research.ingest.privacy import make_private_folder

    base = make_private_folder(rejected_dir(country))
    make_private_folder(base.parent)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    stage = make_private_folder(base / f"{tmp_name()}{stamp}")
    try:
        _write_tables(stage, report, private=True)
        docs = None
        if report.docs_records is not None:
            from clm_research.quality.docs import write_data_docs

            docs = write_data_docs(
                country,
                report.docs_records,
                stage / "data_docs",
                created=report.docs_created,
                keep=1,
            )
        final = base / stamp
        manifest = dict(manifest)
        manifest["gate"] = _gate_record(
            report, final / "data_docs" / "index.html" if docs else None
        )
        manifest["gate"]["summary"] = report.summary()
        write_json(stage / "manifest.json", manifest, private=True)
        os.rename(stage, final)
    except OSError as e:
        from clm_research.files import output_error

        raise output_error(base / stamp, e) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    for old in sorted(p for p in base.iterdir() if p.name[:1].isdigit())[:-KEEP_REJECTED]:
        shutil.rmtree(old, ignore_errors=True)
    return final


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
            print(
                "  nothing published: the last passing tables and Data Docs stay; the candidate "
                f"and the gate's results are in {display_path(rejected_dir(country))}/"
            )
            code = 1
    return code
