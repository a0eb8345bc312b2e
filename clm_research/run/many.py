"""``clm run``: the evaluation of many countries, then the synthesis and the index page.

Countries run one after another (``jobs=1``), in local processes (``jobs=N``) or on a Dask
distributed cluster (``scheduler="tcp://host:port"``; workers must see the same project folder).
Every country's parameters are validated before any notebook runs. One country's failure never
stops the others; the summary names the failing step, notebook, cell and error, and the exit
code is 0 only if every country succeeded. After the countries, the multi-country synthesis
notebook pools the countries with a good report, and ``reports/index.html`` links them all.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clm_research.config.country import list_countries
from clm_research.errors import CLMError, ParamsError
from clm_research.paths import display_path, display_text, project_root, reports_dir
from clm_research.periods import check_period
from clm_research.run.country import (
    CountryResult,
    CountryTask,
    NotebookFailure,
    prepare_task,
    run_country,
)
from clm_research.run.notebooks import SYNTHESIS_NOTEBOOK, check_notebook_parameters, kernel_name
from clm_research.run.status import keep_failed, promote, report_ref

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunSummary", "run_countries", "add_run_arguments", "cli_run"]


@dataclass
class RunSummary:
    """Every country's result, the synthesis' result and the index page."""

    results: list[CountryResult]
    synthesis: CountryResult | None = None
    index: str | None = None
    seconds: float = 0.0
    index_error: str = ""

    @property
    def ok(self) -> bool:
        return (
            all(r.ok for r in self.results)
            and (self.synthesis is None or self.synthesis.ok)
            and not self.index_error
        )

    @property
    def exit_code(self) -> int:
        return 0 if self.ok and self.results else 1

    def table(self) -> pd.DataFrame:
        """One row per country (and the synthesis): status, seconds, report, message."""
        import pandas as pd

        rows = [*self.results, *([self.synthesis] if self.synthesis else [])]
        return pd.DataFrame(
            [
                {
                    "country": r.country,
                    "period": r.period,
                    "status": r.status,
                    "seconds": round(r.seconds, 1),
                    "report": r.report or "",
                    "message": r.message(),
                }
                for r in rows
            ],
            columns=["country", "period", "status", "seconds", "report", "message"],
        )

    def format(self) -> str:
        """The summary table as plain text (printed at the end of ``clm run``)."""
        rows = [*self.results, *([self.synthesis] if self.synthesis else [])]
        header = ("country", "period", "status", "seconds", "message")
        data = [
            (r.country, r.period or "", r.status, f"{r.seconds:.1f}", r.message()) for r in rows
        ]
        widths = [
            max(len(h), *(len(d[i]) for d in data)) if data else len(h)
            for i, h in enumerate(header)
        ]
        widths[-1] = len(header[-1])
        line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
        out = [line, "-" * max(len(line), 40)]
        for d in data:
            out.append(
                "  ".join(v.ljust(w) for v, w in zip(d[:-1], widths[:-1], strict=True))
                + "  "
                + d[-1]
            )
        n_ok = sum(r.ok for r in self.results)
        out.append(f"{n_ok}/{len(self.results)} countries succeeded in {self.seconds:.1f} s")
        if self.index:
            out.append(f"index: {self.index}")
        if self.index_error:
            out.append(f"index not updated: {self.index_error}")
        return "\n".join(out)


def _run_local(
    tasks: list[CountryTask], jobs: int, on_done: Callable[[CountryResult], None]
) -> None:
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            on_done(run_country(task))
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # no forked kernels, sockets or locks
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(run_country, t): t for t in tasks}
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                on_done(fut.result())
            except Exception as e:  # a worker process died (e.g. killed): isolate it
                on_done(_crashed(task, e))


def _run_dask(
    tasks: list[CountryTask], scheduler: str, on_done: Callable[[CountryResult], None]
) -> None:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as e:
        raise CLMError(
            "--scheduler needs the Dask distributed package: pip install 'clm-research[dask]'"
        ) from e
    try:
        client = Client(scheduler, timeout="30s")
    except OSError as e:
        raise CLMError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    with client:
        futures = {
            client.submit(
                run_country, t, key=f"clm-run-{t.country}-{uuid.uuid4().hex[:8]}", pure=False
            ): t
            for t in tasks
        }
        for fut in dask_completed(list(futures)):
            task = futures[fut]
            try:
                on_done(fut.result())
            except Exception as e:  # the worker died or lost the task
                on_done(_crashed(task, e))


def _crashed(task: CountryTask, e: BaseException) -> CountryResult:
    return CountryResult(
        country=task.country,
        period=task.period or None,
        status="failed",
        stage="worker",
        error=f"worker crashed: {type(e).__name__}: {e}",
    )


def run_countries(
    codes: Iterable[str],
    period: str | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    changed_only: bool = False,
    *,
    notebooks_dir: Path | None = None,
    gate: bool = True,
    synthesis: bool = True,
    progress: bool | None = None,
    kernel: str | None = None,
) -> RunSummary:
    """Run the evaluation for several countries and write ``reports/index.html``.

    Parameters
    ----------
    codes
        Country codes (each needs ``params/countries/<code>.yaml``); duplicates are ignored.
    period
        Reporting round for every country (default: each country's ``period``).
    jobs
        Countries run at once in local processes (ignored with ``scheduler``).
    scheduler
        Address of a Dask distributed scheduler, e.g. ``tcp://10.0.0.5:8786``: each country
        runs on a worker, which must see the same project folder.
    changed_only
        Skip a country whose inputs, parameters and code hash equal its last good run.
    notebooks_dir
        Folder of the country notebooks (default ``notebooks/evaluation``).
    gate
        Run ingestion and the data-quality gate before the notebooks (always, from ``clm run``;
        ``False`` only for tests of the runner itself on throwaway notebooks, and recorded as
        such in each report's provenance).
    synthesis
        Run the multi-country synthesis notebook afterwards (when it exists).
    progress
        Progress bars: ``None`` shows them on a terminal only.
    kernel
        Jupyter kernel name (default: :func:`kernel_name`).

    Returns
    -------
    RunSummary
        With ``exit_code`` 0 only if every country succeeded (or was skipped unchanged).
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    codes = list(dict.fromkeys(codes))
    kernel = kernel or kernel_name()
    # Parameters of every country are validated here, before any notebook runs.
    tasks = [
        prepare_task(
            c,
            period,
            notebooks_dir=notebooks_dir,
            changed_only=changed_only,
            gate=gate,
            kernel=kernel,
            progress=progress,
            position=(i % max(1, jobs)) + 1,
        )
        for i, c in enumerate(codes)
    ]
    results: dict[str, CountryResult] = {}
    bar = tqdm(
        total=len(tasks),
        desc="countries",
        unit="country",
        position=0,
        disable=progress is False or (progress is None and not sys.stderr.isatty()),
    )

    def on_done(r: CountryResult) -> None:
        results[r.country] = r
        bar.set_postfix_str(f"{r.country} {r.status}")
        bar.update(1)

    bad = [t for t in tasks if t.params_error]
    good = [t for t in tasks if not t.params_error]
    for t in bad:
        on_done(run_country(t))
    try:
        if scheduler:
            _run_dask(good, scheduler, on_done)
        else:
            _run_local(good, jobs, on_done)
    finally:
        bar.close()
    summary = RunSummary(results=[results[c] for c in codes if c in results])

    if synthesis:
        summary.synthesis = _run_synthesis(summary, period, kernel, notebooks_dir)
    from clm_research.report.index import write_index

    try:
        summary.index = display_path(write_index())
    except CLMError as e:  # e.g. the reports folder is full: the countries' results still count
        summary.index_error = str(e)
    summary.seconds = time.perf_counter() - t0
    return summary


def _synthesis_notebook(notebooks_dir: Path | None) -> Path | None:
    base = (notebooks_dir or project_root() / "notebooks" / "evaluation").parent
    for candidate in (base / f"{SYNTHESIS_NOTEBOOK}.ipynb",):
        if candidate.is_file():
            return candidate
    return None


def _run_synthesis(
    summary: RunSummary, period: str | None, kernel: str, notebooks_dir: Path | None
) -> CountryResult | None:
    """Run ``notebooks/synthesis.ipynb`` over every country with a good report for the period."""
    from clm_research.config.country import SynthesisParameters
    from clm_research.report.provenance import utc_now
    from clm_research.run.kernel import execute, start_kernel, stop_kernel

    nb_path = _synthesis_notebook(notebooks_dir)
    good = [r for r in summary.results if r.ok and r.period]
    if nb_path is None or len(good) < 2:
        return None
    periods = sorted({r.period for r in good if r.period})
    the_period = period or periods[-1]
    countries = sorted(r.country for r in good if r.period == the_period)
    result = CountryResult(country="synthesis", period=the_period, status="failed")
    t0 = time.perf_counter()
    result.started = utc_now()
    out_dir = reports_dir() / "synthesis"
    tmp = out_dir / f".tmp-{the_period}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        import nbformat
        from papermill.exceptions import PapermillExecutionError

        check_notebook_parameters(nb_path, SynthesisParameters)
        sp = SynthesisParameters(countries=countries, period=the_period)
        (tmp / "tables").mkdir(parents=True)
        out = tmp / nb_path.name
        km = start_kernel(kernel, tmp)  # the countries' IPC kernel: no TCP port opened
        try:
            execute(nb_path, out, sp.model_dump(), kernel, km, report_dir=tmp)
        except PapermillExecutionError as e:
            result.failure = NotebookFailure(
                nb_path.stem, e.cell_index, e.exec_count, e.ename, display_text(str(e.evalue))[:500]
            )
            raise
        finally:
            stop_kernel(km)
        from clm_research.report.html import write_report
        from clm_research.report.pdf import PDFError, write_pdf

        html_path = write_report(
            [(nb_path.stem, nbformat.read(out, as_version=4))],
            tmp / "report.html",
            title="CLM evaluation: multi-country synthesis",
            subtitle=f"Countries {', '.join(countries)} · reporting round {the_period} · "
            "PDF: report.pdf",
        )
        try:
            write_pdf(html_path, tmp / "report.pdf")
        except PDFError as e:  # the HTML synthesis stands; the missing PDF is said
            result.warnings.append(str(e))
        promote(tmp, out_dir / the_period)
        result.status = "succeeded"
        result.report = report_ref(out_dir / the_period / "report.html")
    except Exception as e:
        if result.failure is None:
            result.error = display_text(f"{type(e).__name__}: {e}")
        if tmp.exists():
            keep_failed(tmp, out_dir, the_period)
    result.finished = utc_now()
    result.seconds = time.perf_counter() - t0
    return result


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``clm run``'s arguments to an argparse parser (one definition, used by ``clm``)."""
    parser.add_argument("countries", nargs="*", help="country codes, e.g. XA XB")
    parser.add_argument("--all", action="store_true", help="every country in params/countries/")
    parser.add_argument("--period", default=None, help="reporting round, e.g. 2024Q4")
    parser.add_argument("--jobs", type=int, default=1, help="countries run at once (processes)")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler, e.g. tcp://host:8786")
    parser.add_argument(
        "--changed-only", action="store_true", help="skip countries whose inputs did not change"
    )


def cli_run(args: argparse.Namespace) -> int:
    """``clm run``: run the countries named (or ``--all``), print the summary, return the exit code."""
    codes = list(getattr(args, "countries", None) or [])
    if getattr(args, "all", False):
        codes = list(dict.fromkeys([*codes, *list_countries()]))
    if not codes:
        print("clm run: name at least one country (e.g. clm run XA) or use --all", file=sys.stderr)
        return 2
    jobs = int(getattr(args, "jobs", 1) or 1)
    if jobs < 1:
        print("clm run: --jobs must be at least 1", file=sys.stderr)
        return 2
    period = getattr(args, "period", None)
    if period is not None:
        try:
            check_period(period)
        except ParamsError as e:
            print(f"clm run: {e}", file=sys.stderr)
            return 2
    summary = run_countries(
        codes,
        period=period,
        jobs=jobs,
        scheduler=getattr(args, "scheduler", None),
        changed_only=bool(getattr(args, "changed_only", False)),
    )
    print(summary.format())
    return summary.exit_code
