"""The data-quality gate: every row is accepted or quarantined with its failed rules; none is lost.

Row-level verdicts come from vectorised pandas masks (:mod:`clm_research.quality.rules`) plus
what ingestion found while reading (unreadable cells, duplicate submissions, truncated rows).
The same rules, as Great Expectations 1.x suites generated from the schema
(:mod:`clm_research.quality.suites`), are run on the same rows in an ephemeral GX context to give
the table verdicts and the records of the Data Docs (one offline page, written by the pipeline once the verdict is known:
:mod:`clm_research.quality.docs`); a test checks
that GX's unexpected counts and the quarantine agree. Per-row failures go to
``data/quarantine/<country>/<table>.parquet`` with ``failed_rules`` (``"range:wait_minutes;
not_null:sex"``), ``source_file`` and ``source_row``. ``accepted + quarantined == input`` is
checked on every run. GX is imported only when it is used (``GX_ANALYTICS_ENABLED=false`` first).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clm_research.paths import display_path
from clm_research.quality.docs import expectation_record
from clm_research.quality.rules import failed_rules_column, row_masks
from clm_research.quality.suites import build_suite, expectation_specs, framework_columns, import_gx
from clm_research.schema import TABLES
from clm_research.tables import empty_table

if TYPE_CHECKING:
    from clm_research.tables import StagedTable

__all__ = [
    "TableGate",
    "GateReport",
    "run_gate",
    "run_gx",
    "QUARANTINE_COLUMNS",
    "missing_required",
    "not_collected",
]

#: Columns the quarantine adds in front of the canonical columns.
QUARANTINE_COLUMNS: tuple[str, ...] = ("source_file", "source_row", "failed_rules", "raw_values")


@dataclass
class TableGate:
    """The gate's verdict on one table."""

    table: str
    input_rows: int
    accepted: int
    quarantined: int
    by_rule: dict[str, int] = field(default_factory=dict)
    gx_success: bool | None = None
    gx_failed: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Optional canonical columns absent from the data: the country does not collect them.
    not_collected: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.quarantined / self.input_rows if self.input_rows else 0.0


@dataclass
class GateReport:
    """The gate's verdict on a country."""

    country: str
    max_share: float
    tables: dict[str, TableGate] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: What the user must know although the gate may pass (e.g. facility ids checked against
    #: a list derived from the data, or not checked, for want of a facilities table).
    warnings: list[str] = field(default_factory=list)
    accepted: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    quarantine: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    data_docs: Path | None = None
    seconds: float = 0.0
    #: Every expectation's result for the Data Docs (``None`` when none were built); the
    #: pipeline writes them where they belong: published after a passing gate, beside the
    #: rejected candidate after a failing one.
    docs_records: list[dict[str, Any]] | None = field(default=None, repr=False)
    docs_created: str = ""

    @property
    def passed(self) -> bool:
        """No table-level error and every table's quarantined share at most ``max_share``."""
        return not self.errors and all(t.share <= self.max_share for t in self.tables.values())

    def by_rule(self) -> pd.DataFrame:
        """Long table: table, rule label, rows failing it."""
        rows = [(t.table, k, v) for t in self.tables.values() for k, v in t.by_rule.items()]
        return pd.DataFrame(rows, columns=["table", "rule", "rows"])

    def summary(self) -> str:
        """A human summary: a line per table, then every failing rule with its rows, the
        columns not collected and the notes (e.g. facility ids checked against a derived list).
        """
        lines = [
            f"{self.country}: gate {'PASSED' if self.passed else 'FAILED'} "
            f"(max quarantined share {self.max_share:.0%})"
        ]
        for e in self.errors:
            lines.append(f"  ERROR {e}")
        for w in self.warnings:
            lines.append(f"  WARNING {w}")
        for t in self.tables.values():
            flag = " > max" if t.share > self.max_share else ""
            lines.append(
                f"  {t.table:<13} {t.input_rows:>8} in {t.accepted:>8} accepted {t.quarantined:>6} "
                f"quarantined ({t.share:.1%}{flag})"
            )
            # every failing rule, most rows first (a row may fail several rules)
            for rule, rows in sorted(t.by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"      {rule:<40} {rows:>8} row(s)")
            if t.not_collected:
                lines.append(f"      not collected: {', '.join(t.not_collected)}")
            for note in t.notes:
                lines.append(f"      note: {note}")
        if self.data_docs:
            lines.append(f"  Data Docs: {display_path(self.data_docs)}")
        return "\n".join(lines)


def _country_defaults(
    country: str, as_of: Any, max_share: float | None
) -> tuple[pd.Timestamp, float]:
    from clm_research.config.country import list_countries, load_country

    # A country without a parameters file (a mapping tried on its own) gets the defaults; a
    # parameters file that exists but is broken is an error, never silently ignored.
    params = load_country(country) if country in list_countries() else None
    if as_of is None:
        as_of = (
            params.as_of
            if params is not None and params.as_of
            else pd.Timestamp.today().normalize()
        )
    if max_share is None:
        max_share = params.quarantine_max_share if params is not None else 0.05
    return pd.Timestamp(as_of), float(max_share)


#: Where a facility list is derived from when a country has no facilities table: the routine
#: data's reporting facilities (the programme's register, e.g. DHIS2 organisation units).
FACILITY_LIST_SOURCE = "routine"


def _references(
    staged: dict[str, StagedTable], warnings: list[str] | None = None
) -> dict[str, pd.Series]:
    """Known ids per ``"table.column"`` for referential integrity.

    Without a facilities table, facility ids are checked against the facilities of the
    routine data (a list derived from the data), and a warning says so; without either, they
    cannot be checked, and a warning says that an unknown id (a typo such as ``ZZ-F999``) is
    not caught.
    """
    refs: dict[str, pd.Series] = {}
    for name, t in TABLES.items():
        if name in staged:
            for k in t.primary_key:
                if len(t.primary_key) == 1:
                    refs[f"{name}.{k}"] = staged[name].frame[k]
    linked = sorted(
        name
        for name in staged
        if any(fk.ref_table == "facilities" for fk in TABLES[name].foreign_keys)
    )
    if "facilities.facility_id" not in refs and linked:
        source = staged.get(FACILITY_LIST_SOURCE)
        checked = [n for n in linked if n != FACILITY_LIST_SOURCE]
        if source is not None and checked:
            ids = source.frame["facility_id"].dropna().drop_duplicates()
            refs["facilities.facility_id"] = ids
            if warnings is not None:
                warnings.append(
                    f"no facilities table: facility ids of {', '.join(checked)} checked against "
                    f"the {len(ids)} facilities of the {FACILITY_LIST_SOURCE} data (a list "
                    "derived from the data); add a facilities table to check them against the "
                    "facility register"
                )
        elif warnings is not None:
            warnings.append(
                f"no facilities table: facility ids of {', '.join(linked)} are not checked, so "
                "an unknown id (a typo such as ZZ-F999) is accepted; add a facilities table "
                "(or routine data) to check them"
            )
    return refs


def _canonical_frame(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """The canonical columns the data have, in schema order, in their canonical dtypes.

    An absent optional column stays absent: the country does not collect it, and downstream
    an absent column means "not collected" (an empty column would read as "asked, never
    answered").
    """
    empty = empty_table(name)
    out = pd.DataFrame(index=frame.index)
    for c in empty.columns:
        if c in frame.columns:
            out[c] = frame[c]
    return out


def missing_required(name: str, columns: Iterable[str]) -> list[str]:
    """Required columns of table ``name`` absent from ``columns`` (in schema order)."""
    have = set(columns)
    return [c.name for c in TABLES[name].columns if c.required and c.name not in have]


def not_collected(name: str, columns: Iterable[str]) -> list[str]:
    """Optional columns of table ``name`` absent from ``columns``: not collected (schema order)."""
    have = set(columns)
    return [c.name for c in TABLES[name].columns if not c.required and c.name not in have]


def run_gate(
    country: str,
    staged: dict[str, StagedTable],
    *,
    as_of: Any = None,
    max_share: float | None = None,
    use_gx: bool = True,
    data_docs: bool = True,
    errors: list[str] | None = None,
) -> GateReport:
    """Split every staged table into accepted and quarantined rows.

    Parameters
    ----------
    country
        Country code (for defaults and the Data Docs folder).
    staged
        Staged tables by name (:func:`clm_research.ingest.staging.stage_country`).
    as_of, max_share
        Extraction date and pass threshold; defaults from the country's parameters.
    use_gx, data_docs
        Run the Great Expectations suites / build Data Docs in ``reports/<country>/data_docs``.
    errors
        Table-level errors already found (they make the gate fail).

    Returns
    -------
    GateReport
        Verdicts, the accepted and the quarantine frames (not yet written).
    """
    t0 = time.perf_counter()
    as_of_ts, share = _country_defaults(country, as_of, max_share)
    report = GateReport(country=country, max_share=share, errors=list(errors or []))
    staged = dict(staged)
    for name in list(staged):
        missing = missing_required(name, staged[name].frame.columns)
        if missing:  # a table-level failure: the table cannot be keyed, placed or counted
            report.errors.append(
                f"{name}: required column(s) {', '.join(missing)} absent [rule: missing_column]. "
                f"Fix: map them in the country's mapping (only optional columns may be "
                f"declared not_collected; see `clm schema`)."
            )
            del staged[name]
    refs = _references(staged, report.warnings)
    for name, st in staged.items():
        table = TABLES[name]
        n = len(st.frame)
        masks = dict(st.prefailed)
        for label, m in row_masks(st.frame, table, refs, as_of_ts).items():
            rule, col = label.split(":", 1)
            if rule == "not_null" and f"type:{col}" in masks:
                # an unreadable cell is reported once, as `type`, not again as missing
                m = m & ~masks[f"type:{col}"]
                if not m.any():
                    continue
            masks[label] = masks[label] | m if label in masks else m
        failed = failed_rules_column(masks, n)
        bad = (failed != "").to_numpy()
        canon = _canonical_frame(st.frame, name)
        accepted = canon[~bad].reset_index(drop=True)
        q = canon[bad].reset_index(drop=True)
        q.insert(
            0,
            "raw_values",
            (st.raw_values if st.raw_values is not None else pd.Series([""] * n, dtype="string"))[
                bad
            ].reset_index(drop=True),
        )
        q.insert(0, "failed_rules", failed[bad].reset_index(drop=True))
        q.insert(0, "source_row", pd.Series(st.source_row[bad], dtype="Int64"))
        q.insert(
            0,
            "source_file",
            pd.Series(st.source_file[bad], dtype="string")
            .map(lambda p: Path(p).name if isinstance(p, str) else p)
            .astype("string"),
        )
        if len(accepted) + len(q) != n:  # the promise of the gate: no row is lost
            raise RuntimeError(f"gate lost rows in {name}: {n} in, {len(accepted)} + {len(q)} out")
        tg = TableGate(
            name,
            n,
            len(accepted),
            len(q),
            {k: int(np.sum(v)) for k, v in masks.items() if np.any(v)},
        )
        tg.not_collected = not_collected(name, st.frame.columns)
        for fk in table.foreign_keys:
            if f"{fk.ref_table}.{fk.ref_column}" not in refs:
                tg.notes.append(
                    f"{fk.column} not checked against {fk.ref_table}: no {fk.ref_table} table"
                )
            elif fk.ref_table not in staged:
                tg.notes.append(
                    f"{fk.column} checked against a list derived from the "
                    f"{FACILITY_LIST_SOURCE} data: no {fk.ref_table} table"
                )
        report.tables[name] = tg
        report.accepted[name] = accepted
        report.quarantine[name] = q
    if use_gx and staged:
        results, records = run_gx(country, staged, refs, as_of_ts, data_docs=data_docs)
        report.docs_records = records
        report.docs_created = str(as_of_ts.date())
        for name, (success, failed_counts) in results.items():
            report.tables[name].gx_success = success
            report.tables[name].gx_failed = failed_counts
    report.seconds = time.perf_counter() - t0
    return report


def _gx_frame(frame: pd.DataFrame, object_columns: set[str] | None = None) -> pd.DataFrame:
    """The frame in the dtypes GX checks fast: object strings, numpy numbers and datetimes.

    GX's regex and set checks want plain object strings (only ``object_columns`` are converted
    when given: a column that is only checked for nulls and duplicates, such as a million
    interview ids, stays in pandas' string dtype); its range check is vectorised only
    for numpy ``int``/``float`` and ``datetime64[ns]`` columns and otherwise calls a Python
    function per row (1M rows of a nullable ``Int64`` column: ~4 s). Nullable integers become
    ``float64`` (missing as NaN; every integer of the data model is exact in float64) and
    dates ``datetime64[ns]``: the same values, so the same verdicts and unexpected counts.
    """
    out = frame.copy()
    for c in out.columns:
        s = out[c]
        if pd.api.types.is_string_dtype(s) and not pd.api.types.is_object_dtype(s):
            if object_columns is None or c in object_columns:
                out[c] = s.astype(object).where(s.notna(), None)
        elif pd.api.types.is_integer_dtype(s) or pd.api.types.is_float_dtype(s):
            out[c] = s.to_numpy(dtype="float64", na_value=np.nan)
        elif pd.api.types.is_datetime64_dtype(s) and s.dtype != "datetime64[ns]":
            out[c] = s.astype("datetime64[ns]")
    return out


def run_gx(
    country: str,
    staged: dict[str, StagedTable],
    refs: dict[str, pd.Series],
    as_of: pd.Timestamp,
    *,
    data_docs: bool = True,
) -> tuple[dict[str, tuple[bool, dict[str, int]]], list[dict[str, Any]] | None]:
    """Validate every staged table with its GX suite in an ephemeral context.

    Returns
    -------
    results, records
        Per table: (success, rule label -> unexpected count of failed expectations; ``-1`` for
        a failed table-level expectation such as a missing column); every expectation's record
        for the Data Docs (``None`` without ``data_docs``), written by the pipeline only once
        the gate's verdict is known.
    """
    gx = import_gx()
    # The verdict needs each expectation's success and unexpected count (BASIC). The Data Docs
    # are the project's own page (quality.docs): GX's site loads its assets from CDNs, so it
    # is blank offline and tells those hosts whenever a report is read.
    result_format = "BASIC"
    context = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # pragma: no cover - older/newer GX without this knob
        pass
    records: list[dict[str, Any]] = []
    source = context.data_sources.add_pandas(f"clm_{country}")
    # only the keys some foreign key points at (not, e.g., a million interview ids)
    referenced = {
        f"{fk.ref_table}.{fk.ref_column}" for name in staged for fk in TABLES[name].foreign_keys
    }
    ref_values = {
        k: v.dropna().astype(str).unique().tolist() for k, v in refs.items() if k in referenced
    }
    results: dict[str, tuple[bool, dict[str, int]]] = {}
    vds: list[Any] = []
    frames: dict[str, tuple[str, pd.DataFrame]] = {}
    object_columns: dict[str, set[str]] = {}
    for name, st in staged.items():
        frame = st.frame
        specs = expectation_specs(
            name, ref_values, as_of, framework_columns(name, None), present=frame.columns
        )
        object_columns[name] = {
            s.kwargs["column"]
            for s in specs
            if s.expectation in ("ExpectColumnValuesToBeInSet", "ExpectColumnValuesToMatchRegex")
        }
        suite = context.suites.add(build_suite(f"{country}.{name}", specs))
        asset = source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe("all_rows")
        vd = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{country}.{name}", data=batch, suite=suite)
        )
        vds.append(vd)
        frames[vd.name] = (name, frame)
    # Data Docs are built once at the end: a per-checkpoint docs action rebuilds the site each time
    for vd in vds:
        name, frame = frames[vd.name]
        # Tables whose rows are people or key-population sites: Data Docs show how many values
        # failed, never which (a detector may miss a name typed into a column).
        fmt: dict[str, Any] = {"result_format": result_format}
        if TABLES[name].sensitive:
            fmt["exclude_unexpected_values"] = True
        run = vd.run(
            batch_parameters={"dataframe": _gx_frame(frame, object_columns[name])},
            result_format=fmt,
        )
        failed: dict[str, int] = {}
        for er in run.results:
            if data_docs:
                records.append(expectation_record(name, er))
            if er.success:
                continue
            label = (er.expectation_config.meta or {}).get("rule", er.expectation_config.type)
            cnt = er.result.get("unexpected_count") if er.result else None
            failed[label] = int(cnt) if cnt is not None else -1
        results[name] = (bool(run.success), failed)
    return results, (records if data_docs else None)
