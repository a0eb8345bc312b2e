"""One country's run, in named steps: parameters → hash → gate → disclosure → notebooks → render
→ publish.

:func:`run_country` never raises: whatever happens, it returns a :class:`CountryResult` naming
the step that failed (and, for a notebook, the cell and the error), updates
``reports/<cc>/status.json`` and leaves the last good report in place. Each step is timed
(``timings.json`` beside the report and ``CountryResult.stages``).

1. **parameters** — the country's parameters and every notebook's ``parameters`` cell are
   validated before anything runs (:func:`prepare_task`, in the planning process);
2. **hash** — the inputs (raw exports, parameters, plan, framework, notebooks, package code)
   are hashed into the run key; with ``--changed-only`` an unchanged country is skipped;
3. **gate** — ingestion and the data-quality gate, once per country
   (:func:`clm_research.pipeline.validate_country`); a failed gate fails the run;
4. **disclosure** — every published indicator table protected together and audited by linear
   programming (:func:`clm_research.disclosure.protect_tables`); a failed audit fails the run;
5. **notebooks** — one kernel for the country, every notebook executed in it with papermill
   (:mod:`clm_research.run.kernel`), chapters first and the summary last; a chapter whose
   data the country does not collect is not executed: the report shows its title and a
   "not collected in this country" note (:mod:`clm_research.report.chapters`);
6. **render** — the HTML report (summary first, code hidden, images embedded, provenance) and
   ``report.pdf`` printed from it by headless Chromium (A4, a page per chapter);
7. **publish** — the temporary folder ``reports/<cc>/.tmp-<period>-…`` is renamed to
   ``reports/<cc>/<period>/``; a failed run's folder is kept as ``.failed-<period>``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from clm_research.config.country import CountryParams, load_country, notebook_parameters
from clm_research.errors import CLMError, DataQualityError, ParamsError
from clm_research.files import write_json
from clm_research.paths import data_dir, display_text, project_root, reports_dir
from clm_research.periods import check_period
from clm_research.run.notebooks import (
    check_notebook_parameters,
    evaluation_notebooks,
    execution_order,
    report_order,
    stage_times,
)
from clm_research.run.status import keep_failed, promote, read_status, report_ref, write_status

__all__ = [
    "STEPS",
    "NotebookFailure",
    "CountryResult",
    "CountryTask",
    "prepare_task",
    "run_country",
    "code_hash",
]

#: The named steps of a country's run, in order.
STEPS: tuple[str, ...] = (
    "parameters",
    "hash",
    "gate",
    "disclosure",
    "notebooks",
    "render",
    "publish",
)

Status = Literal["succeeded", "failed", "skipped"]


@dataclass
class NotebookFailure:
    """Where a country's run failed: the notebook, the cell and the error."""

    notebook: str
    cell_index: int | None
    execution_count: int | None
    ename: str
    evalue: str

    def describe(self) -> str:
        where = self.notebook
        if self.cell_index is not None:
            where += f", cell {self.cell_index}"
            if self.execution_count is not None:
                where += f" [In {self.execution_count}]"
        return f"{where}: {self.ename}: {self.evalue}".strip()


@dataclass
class CountryResult:
    """Outcome of one country's (or the synthesis') run."""

    country: str
    period: str | None
    status: Status
    started: str = ""
    finished: str = ""
    seconds: float = 0.0
    stage: str = ""
    stages: dict[str, float] = field(default_factory=dict)
    notebooks: dict[str, float] = field(default_factory=dict)
    report: str | None = None
    headline: str = ""
    failure: NotebookFailure | None = None
    error: str = ""
    run_key: str = ""
    warnings: list[str] = field(default_factory=list)
    #: chapter (notebook) -> "ran" or "not collected in this country"
    chapters: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "skipped")

    def message(self) -> str:
        if self.failure is not None:
            return self.failure.describe()
        if self.error:
            return f"{self.stage}: {self.error}" if self.stage else self.error
        if self.warnings:
            return " ".join([self.headline, *(f"Warning: {w}" for w in self.warnings)]).strip()
        return self.headline

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CountryTask:
    """Everything a worker (local process or Dask worker) needs to run one country."""

    country: str
    period: str
    notebooks: list[str]
    parameters: dict[str, Any]
    changed_only: bool = False
    gate: bool = True
    kernel: str = "python3"
    progress: bool | None = None
    position: int = 0
    project_root: str = ""
    data_dir: str = ""
    reports_dir: str = ""
    params_error: str = ""


def prepare_task(
    country: str,
    period: str | None = None,
    *,
    notebooks_dir: Path | None = None,
    changed_only: bool = False,
    gate: bool = True,
    kernel: str | None = None,
    progress: bool | None = None,
    position: int = 0,
) -> CountryTask:
    """Step **parameters**: validate a country's and its notebooks' parameters; build its task.

    Never raises for a bad country: the error is kept in ``params_error`` and the country is
    reported as failed at the ``parameters`` step without running anything.
    """
    task = CountryTask(
        country=country,
        period=period or "",
        notebooks=[],
        parameters={},
        changed_only=changed_only,
        gate=gate,
        kernel=kernel or "python3",
        progress=progress,
        position=position,
        project_root=str(project_root()),
        data_dir=str(data_dir()),
        reports_dir=str(reports_dir()),
    )
    try:
        params = load_country(country)
        if period is not None:
            check_period(period)
        nb_params = notebook_parameters(params, period)
        task.period = nb_params.period
        task.parameters = nb_params.model_dump()
        available = evaluation_notebooks(notebooks_dir)
        if not available:
            raise ParamsError(f"no notebooks found in {notebooks_dir or 'notebooks/evaluation'}")
        by_stem = {p.stem: p for p in available}
        if params.notebooks is not None:
            unknown = sorted(set(params.notebooks) - set(by_stem))
            if unknown:
                raise ParamsError(
                    f"params/countries/{country}.yaml: notebooks: unknown notebook(s) {unknown}; "
                    f"known: {sorted(by_stem)}"
                )
            chosen = [by_stem[s] for s in params.notebooks]
        else:
            chosen = available
        for nb in chosen:
            check_notebook_parameters(nb)
        task.notebooks = [str(p) for p in execution_order(chosen)]
    except CLMError as e:
        task.params_error = str(e)
    return task


def _apply_environment(task: CountryTask) -> None:
    # Workers (processes, Dask) see the same folders as the process that planned the run.
    for var, value in (
        ("CLM_PROJECT_ROOT", task.project_root),
        ("CLM_DATA_DIR", task.data_dir),
        ("CLM_REPORTS_DIR", task.reports_dir),
    ):
        if value:
            os.environ[var] = value
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MPLBACKEND", "Agg")


def code_hash() -> str:
    """Hash of the package's source: a code change makes every country 'changed'."""
    digest = hashlib.sha256()
    pkg = Path(__file__).resolve().parents[1]
    for p in sorted(pkg.rglob("*.py")):
        digest.update(p.relative_to(pkg).as_posix().encode())
        digest.update(p.read_bytes())
    return digest.hexdigest()


class _Run:
    """The state a country's steps share, and the timing of each step."""

    def __init__(self, task: CountryTask) -> None:
        from clm_research.report.provenance import utc_now

        self.task = task
        self.result = CountryResult(
            country=task.country, period=task.period or None, status="failed"
        )
        self.result.started = utc_now()
        self.stages: dict[str, float] = {}
        self.render_parts: dict[str, float] = {}
        self.current = "parameters"
        self.country_dir = reports_dir() / task.country
        self.tmp = self.country_dir / f".tmp-{task.period}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.final = self.country_dir / task.period
        self.km: Any = None
        self.params: CountryParams | None = None
        self.notebooks = [Path(p) for p in task.notebooks]
        self.executed: dict[str, Any] = {}
        self.inputs: dict[str, str] = {}
        self.versions: dict[str, str] = {}
        self.gate = "not run"
        self.disclosure: dict[str, Any] = {"status": "not run"}
        self.t0 = time.perf_counter()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the step ``name`` and remember it as the current one (for error messages)."""
        self.current = name
        t = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.perf_counter() - t

    def finish(self) -> CountryResult:
        from clm_research.report.provenance import utc_now

        self.result.finished = utc_now()
        self.result.seconds = time.perf_counter() - self.t0
        self.result.stages = {k: round(v, 3) for k, v in self.stages.items()}
        return self.result


def _hash(run: _Run) -> bool:
    """Step **hash**; returns ``True`` when the country is unchanged and may be skipped."""
    from clm_research.report.provenance import input_hashes, package_versions, run_key

    task = run.task
    run.inputs = input_hashes(task.country, run.notebooks)
    run.versions = package_versions()
    run.params = load_country(task.country)
    parameters = {"country": run.params.model_dump(mode="json"), "notebook": task.parameters}
    key = run_key(run.inputs, parameters, {**run.versions, "clm_research code": code_hash()})
    run.result.run_key = key
    good = read_status(task.country).get("last_good", {})
    return (
        task.changed_only and good.get("run_key") == key and (run.final / "report.html").is_file()
    )


def _gate(run: _Run) -> None:
    """Step **gate**: ingestion and the data-quality gate; a failed gate fails the run."""
    if not run.task.gate:
        run.gate = "not run (gate=False)"
        return
    from clm_research.pipeline import validate_country

    report = validate_country(run.task.country)
    if not report.passed:
        from clm_research.paths import display_path, rejected_dir

        raise DataQualityError(
            f"data-quality gate failed for {run.task.country}:\n{report.summary()}\n"
            "Nothing was published: the last passing tables, Data Docs and report stay; the "
            f"candidate and the gate's results are in {display_path(rejected_dir(run.task.country))}/"
        )
    run.gate = "passed"
    from clm_research.report.context import require_period_data

    require_period_data(run.task.country, run.task.period)


def _disclosure(run: _Run) -> None:
    """Step **disclosure**: the audit of every table the report publishes, before any notebook.

    Small cells are suppressed across all published groupings together and the linear-
    programming audit must show that no combination of them reveals a suppressed cell
    (:func:`clm_research.disclosure.protect_tables`); otherwise the run fails and nothing is
    published. The audit's summary goes into the report's provenance.
    """
    if not run.task.gate:
        run.disclosure = {"status": "not run (gate=False)"}
        return
    from clm_research.report.context import published_tables

    audit = published_tables(run.task.country).audit
    run.disclosure = {"status": "passed", **audit.as_dict()}


def _not_collected_notebook(path: Path, note: str) -> Any:
    """The chapter as the report shows it when its data are absent: its title and the note."""
    import nbformat

    source = nbformat.read(path, as_version=4)
    title = next(
        (
            c.source.strip().splitlines()[0]
            for c in source.cells
            if c.cell_type == "markdown" and c.source.strip()
        ),
        f"# {path.stem}",
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata = source.metadata
    nb.cells = [nbformat.v4.new_markdown_cell(title), nbformat.v4.new_markdown_cell(note)]
    return nb


def _notebooks(run: _Run) -> None:
    """Step **notebooks**: one kernel, every notebook executed in it, the summary last.

    A chapter whose data are absent (:func:`clm_research.report.chapters.chapter_status`) is
    not executed: its title and a "not collected in this country" note stand in for it.
    """
    import nbformat
    from papermill.exceptions import PapermillExecutionError
    from tqdm.auto import tqdm

    from clm_research.report.chapters import chapter_status, tables_present
    from clm_research.run.kernel import execute, reset_namespace, start_kernel, stop_kernel

    task = run.task
    run.country_dir.mkdir(parents=True, exist_ok=True)
    (run.tmp / "notebooks").mkdir(parents=True)
    (run.tmp / "tables").mkdir()
    t = time.perf_counter()
    run.km = start_kernel(task.kernel, run.tmp)
    run.stages["kernel_start"] = time.perf_counter() - t
    bar = tqdm(
        total=len(run.notebooks),
        desc=task.country,
        position=task.position,
        leave=False,
        disable=task.progress is False or (task.progress is None and not sys.stderr.isatty()),
        unit="nb",
    )
    present = tables_present(task.country)
    try:
        for i, nb_path in enumerate(run.notebooks):
            bar.set_description(f"{task.country} {nb_path.stem}")
            out = run.tmp / "notebooks" / nb_path.name
            chapter = chapter_status(nb_path.stem, present)
            run.result.chapters[nb_path.stem] = chapter.label
            if not chapter.ran:
                stub = _not_collected_notebook(nb_path, chapter.note)
                nbformat.write(stub, out)
                run.executed[nb_path.stem] = stub
                run.result.notebooks[nb_path.stem] = 0.0
                bar.update(1)
                continue
            if i:
                reset_namespace(run.km)
            t = time.perf_counter()
            try:
                execute(
                    nb_path, out, dict(task.parameters), task.kernel, run.km, report_dir=run.tmp
                )
            except PapermillExecutionError as e:
                run.result.failure = NotebookFailure(
                    notebook=nb_path.stem,
                    cell_index=e.cell_index,
                    execution_count=e.exec_count,
                    ename=e.ename,
                    evalue=display_text(str(e.evalue))[:500],
                )
                run.result.stage = nb_path.stem
                run.stages[f"notebook:{nb_path.stem}"] = time.perf_counter() - t
                raise
            wall = time.perf_counter() - t
            nb = nbformat.read(out, as_version=4)
            run.executed[nb_path.stem] = nb
            split = stage_times(nb)
            for k, v in split.items():
                run.stages[k] = run.stages.get(k, 0.0) + v
            run.stages["papermill_overhead"] = run.stages.get("papermill_overhead", 0.0) + max(
                0.0, wall - sum(split.values())
            )
            run.result.notebooks[nb_path.stem] = round(wall, 3)
            bar.update(1)
    finally:
        bar.close()
    stop_kernel(run.km)
    run.km = None


def _render(run: _Run) -> None:
    """Step **render**: the HTML report and its PDF, provenance and timings, the headline."""
    from clm_research.report.html import write_report
    from clm_research.report.pdf import PDFError, write_pdf
    from clm_research.report.provenance import git_commit, provenance_html, utc_now

    task, params = run.task, run.params
    assert params is not None  # set by the hash step
    prov = {
        "country": task.country,
        "period": task.period,
        "started": run.result.started,
        "finished": utc_now(),
        "git_commit": git_commit(),
        "run_key": run.result.run_key,
        "gate": run.gate,
        "disclosure": run.disclosure,
        "parameters": {
            **task.parameters,
            **{k: v for k, v in params.model_dump(mode="json").items() if k != "demo"},
        },
        "inputs": run.inputs,
        "versions": run.versions,
        "chapters": run.result.chapters,
    }
    ordered = [(p.stem, run.executed[p.stem]) for p in report_order(run.notebooks)]
    t = time.perf_counter()
    html_path = write_report(
        ordered,
        run.tmp / "report.html",
        title=f"{params.name}: CLM evaluation report",
        subtitle=f"Country {task.country} · reporting round {task.period} · generated "
        f"{prov['finished']} · PDF: report.pdf",
        provenance_html=provenance_html(prov),
    )
    run.render_parts["html"] = time.perf_counter() - t
    t = time.perf_counter()
    try:
        write_pdf(html_path, run.tmp / "report.pdf")
    except PDFError as e:  # the HTML report stands; the missing PDF is said, not hidden
        run.result.warnings.append(str(e))
    run.render_parts["pdf"] = time.perf_counter() - t
    write_json(run.tmp / "provenance.json", prov)
    run.result.headline = _headline(run.tmp / "tables")


def _headline(tables: Path) -> str:
    """The summary's headline in words (what improved), for the index page."""
    path = tables / "progress_scorecard.csv"
    if not path.is_file():
        return ""
    import pandas as pd

    from clm_research.report.summary import headline

    return headline(pd.read_csv(path, keep_default_na=False))


def _publish(run: _Run) -> None:
    """Step **publish**: the timings, then the swap of the finished folder into place."""
    write_json(
        run.tmp / "timings.json",
        {
            "stages": {k: round(v, 3) for k, v in run.stages.items()},
            "notebooks": run.result.notebooks,
            # the render step split into the HTML and the PDF (seconds), and the run so far
            "render": {k: round(v, 3) for k, v in run.render_parts.items()},
            "seconds_to_publish": round(time.perf_counter() - run.t0, 3),
        },
    )
    promote(run.tmp, run.final)
    run.result.status = "succeeded"
    run.result.report = report_ref(run.final / "report.html")


def run_country(task: CountryTask) -> CountryResult:
    """Run one country's steps (see the module docstring) and build its report. Never raises.

    The country's lock (:mod:`clm_research.locks`) is held for the whole run: a second run of
    the same country waits or fails at the step ``lock`` without touching anything. Leftovers
    of interrupted runs of the country (temporary folders of dead processes, an earlier failed
    run's folder, kernel socket folders) are removed first.

    The result's ``stages`` hold the wall time of each step in seconds (``hash``, ``gate``,
    ``notebooks``, ``render``, ``publish``) and, within the notebooks, ``kernel_start``,
    ``imports``, ``load``, ``analysis`` (cells) and ``papermill_overhead`` (notebook wall time
    minus cell time).
    """
    from clm_research.locks import country_lock

    _apply_environment(task)
    run = _Run(task)
    if task.params_error:
        run.result.stage, run.result.error = "parameters", display_text(task.params_error)
        return run.finish()
    try:
        with country_lock(task.country, command="clm run"):
            try:
                clean_run_leftovers(task.country)
            except Exception:  # a clean-up never fails a run; what it missed, the next one gets
                pass
            return _run_steps(run)
    except CLMError as e:  # the lock is held by another run, or cannot be created
        from clm_research.errors import LockError

        run.result.stage, run.result.error = "lock", display_text(str(e))
        result = run.finish()
        if not isinstance(e, LockError):  # e.g. a read-only data folder: say so where possible
            _update_status(task.country, result)
        return result


def clean_run_leftovers(country: str) -> list[Path]:
    """Remove what interrupted runs of ``country`` left behind; return what went.

    A publication of processed data killed between its folder swaps is finished first
    (:func:`~clm_research.pipeline.finish_publication`). Temporary report folders (``.tmp-*``)
    and renamed-aside reports of dead processes (a
    renamed-aside report whose replacement never arrived is put back), the previous failed
    run's ``.failed-*`` folder (kept for inspection until the next run), and the kernel socket
    folders of dead processes. Called with the country's lock held.
    """
    import shutil

    from clm_research.files import clean_leftovers
    from clm_research.pipeline import finish_publication, rejected_dir
    from clm_research.run.kernel import clean_kernel_leftovers

    finish_publication(country)  # an ingestion killed between its folder swaps
    folder = reports_dir() / country
    removed = clean_leftovers(folder) + clean_leftovers(reports_dir())
    removed += clean_leftovers(rejected_dir(country))
    if folder.is_dir():
        for p in folder.glob(".failed-*"):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    removed += clean_kernel_leftovers()
    return removed


def _run_steps(run: _Run) -> CountryResult:
    task = run.task
    try:
        with run.step("hash"):
            unchanged = _hash(run)
        if unchanged:
            good = read_status(task.country).get("last_good", {})
            run.result.status = "skipped"
            run.result.report = report_ref(run.final / "report.html")
            run.result.headline = good.get("headline", "")
            skipped = run.finish()
            # the last run is this one: a failure recorded before it (inputs since fixed back
            # to those of the last good report) must not stay on the index page
            _update_status(task.country, skipped)
            return skipped
        with run.step("gate"):
            _gate(run)
        with run.step("disclosure"):
            _disclosure(run)
        with run.step("notebooks"):
            _notebooks(run)
        with run.step("render"):
            _render(run)
        with run.step("publish"):
            _publish(run)
    except Exception as e:
        if run.result.failure is None:
            run.result.stage = run.result.stage or run.current
            msg = str(e).strip() or type(e).__name__
            run.result.error = msg if isinstance(e, CLMError) else f"{type(e).__name__}: {msg}"
            if not isinstance(e, CLMError):
                run.result.error += "\n" + "".join(traceback.format_exception(e)[-3:]).strip()
            # kept in status.json and shown on the index page: no absolute folder names
            run.result.error = display_text(run.result.error)
        if run.km is not None:
            from clm_research.run.kernel import stop_kernel

            stop_kernel(run.km)
        if run.tmp.exists():
            keep_failed(run.tmp, run.country_dir, task.period)
    result = run.finish()
    _update_status(task.country, result)
    return result


def _update_status(country: str, result: CountryResult) -> None:
    entry = {
        "status": result.status,
        "period": result.period,
        "started": result.started,
        "finished": result.finished,
        "message": result.message(),
        "report": result.report,
        "headline": result.headline,
        "run_key": result.run_key,
        "chapters": result.chapters,
    }
    try:
        write_status(country, entry, good=result.status == "succeeded")
    except CLMError:
        pass  # the run's own outcome is reported; a status file that cannot be written is not
