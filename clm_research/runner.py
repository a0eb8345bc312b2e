"""Run the evaluation notebooks for many countries: validated, isolated, atomic, reproducible.

``clm run XA XB`` (see :func:`cli_run`) does, for each country and period:

1. validate the country's parameters and every notebook's parameters (one pydantic model,
   :class:`~clm_research.params.NotebookParameters`) before any notebook runs;
2. hash the inputs (raw exports, parameters, framework, notebooks, package code); with
   ``--changed-only`` a country whose hash equals its last successful run is skipped;
3. run the data-quality gate once (the Great Expectations import is paid once per country,
   in the runner process); the notebooks read the gate's outputs;
4. start **one** Jupyter kernel per country and execute each notebook in it with papermill,
   resetting the namespace between notebooks, so the heavy imports (statsmodels, seaborn,
   geopandas) are paid once per country, not once per notebook; the summary notebook is
   executed last (it reuses the analyses cached by the chapters) but shown first;
5. write everything into ``reports/<cc>/.tmp-<period>-<pid>/``: executed notebooks, tables
   (CSV + Parquet), ``report.html`` (code hidden, images embedded, provenance block),
   ``provenance.json`` and ``timings.json``; then swap it into ``reports/<cc>/<period>/`` by
   renaming, so a failed or interrupted run never replaces the last good report (a failed
   run's folder is kept as ``reports/<cc>/.failed-<period>/`` for inspection);
6. after every country: the multi-country synthesis notebook and ``reports/index.html``.

Countries run one after another (``jobs=1``), in local processes (``jobs=N``) or on a Dask
distributed cluster (``scheduler="tcp://host:port"``; workers must see the same project
folder). One country's failure never stops the others; the summary names the failing
notebook, cell and error, and the exit code is 0 only if every country succeeded.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from clm_research.errors import CLMError, ParamsError
from clm_research.params import (
    NotebookParameters,
    check_period,
    list_countries,
    load_country,
    notebook_parameters,
)
from clm_research.paths import data_dir, project_root, reports_dir

__all__ = [
    "KERNEL_NAME",
    "SUMMARY_NOTEBOOK",
    "SYNTHESIS_NOTEBOOK",
    "NotebookFailure",
    "CountryResult",
    "RunSummary",
    "CountryTask",
    "evaluation_notebooks",
    "execution_order",
    "parameters_cell_names",
    "check_notebook_parameters",
    "kernel_name",
    "prepare_task",
    "run_country",
    "run_countries",
    "cli_run",
    "add_run_arguments",
]

#: Kernel registered by ``make setup`` (the project's venv); ``python3`` when absent.
KERNEL_NAME = "clm-research"
#: The notebook whose first screen is the progress scorecard: executed last, shown first.
SUMMARY_NOTEBOOK = "00_summary"
#: Runs once after all countries.
SYNTHESIS_NOTEBOOK = "synthesis"

Status = Literal["succeeded", "failed", "skipped"]

#: Cell tags the runner reads to split a notebook's time into stages (see ``timings.json``).
STAGE_TAGS = ("imports", "load")

_RESET_CODE = (
    "get_ipython().run_line_magic('reset', '-f')\n"
    "import matplotlib.pyplot as _plt\n_plt.close('all')\ndel _plt\n"
)


# --------------------------------------------------------------------------- results


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

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "skipped")

    def message(self) -> str:
        if self.failure is not None:
            return self.failure.describe()
        if self.error:
            return f"{self.stage}: {self.error}" if self.stage else self.error
        return self.headline

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunSummary:
    """Every country's result, the synthesis' result and the index page."""

    results: list[CountryResult]
    synthesis: CountryResult | None = None
    index: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results) and (self.synthesis is None or self.synthesis.ok)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok and self.results else 1

    def table(self) -> Any:
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
        return "\n".join(out)


# --------------------------------------------------------------------------- notebooks


def evaluation_notebooks(directory: Path | None = None) -> list[Path]:
    """The country notebooks in ``notebooks/evaluation/``, sorted by name."""
    directory = directory or project_root() / "notebooks" / "evaluation"
    return sorted(p for p in directory.glob("*.ipynb") if not p.name.startswith("."))


def execution_order(notebooks: Sequence[Path]) -> list[Path]:
    """Chapters first, the summary last (it reads what the chapters cached)."""
    return sorted(notebooks, key=lambda p: (p.stem == SUMMARY_NOTEBOOK, p.name))


def report_order(notebooks: Sequence[Path]) -> list[Path]:
    """The summary first, then the chapters by name."""
    return sorted(notebooks, key=lambda p: (p.stem != SUMMARY_NOTEBOOK, p.name))


def parameters_cell_names(path: Path) -> list[str]:
    """Names assigned in the notebook's cell tagged ``parameters`` (sorted).

    Raises
    ------
    ParamsError
        When the notebook has no (or more than one) ``parameters`` cell, or the cell is not
        plain assignments.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParamsError(
            f"{path}: expected exactly one cell tagged 'parameters', found {len(cells)}"
        )
    try:
        tree = ast.parse(cells[0].source)
    except SyntaxError as e:
        raise ParamsError(f"{path}: the parameters cell is not valid Python: {e}") from None
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            names += [t.id for t in node.targets]  # type: ignore[attr-defined]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
        else:
            raise ParamsError(
                f"{path}: the parameters cell may only assign plain values (line {node.lineno})"
            )
    return sorted(names)


def check_notebook_parameters(path: Path, model: type[Any] = NotebookParameters) -> None:
    """Check the notebook's ``parameters`` cell assigns exactly the model's fields.

    Raises
    ------
    ParamsError
        Naming the unknown (misspelt) and the missing parameters.
    """
    names = set(parameters_cell_names(path))
    fields = set(model.model_fields)
    unknown, missing = sorted(names - fields), sorted(fields - names)
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown parameter(s) {unknown} (misspelt?)")
        if missing:
            parts.append(f"missing parameter(s) {missing}")
        raise ParamsError(
            f"{path}: parameters cell does not match {model.__name__}: " + "; ".join(parts)
        )


def kernel_name() -> str:
    """``clm-research`` when that kernel is installed, else ``python3``."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
    except Exception:  # pragma: no cover - jupyter_client is a dependency
        return "python3"
    return KERNEL_NAME if KERNEL_NAME in specs else "python3"


# --------------------------------------------------------------------------- tasks


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
    """Validate a country's parameters and its notebooks' parameters; build its task.

    Never raises for a bad country: the error is kept in ``params_error`` and the country is
    reported as failed at the ``parameters`` stage without running anything.
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


def _code_hash() -> str:
    """Hash of the package's source: a code change makes every country 'changed'."""
    digest = hashlib.sha256()
    pkg = Path(__file__).resolve().parent
    for p in sorted(pkg.rglob("*.py")):
        digest.update(p.relative_to(pkg).as_posix().encode())
        digest.update(p.read_bytes())
    return digest.hexdigest()


def _status_path(country: str) -> Path:
    return reports_dir() / country / "status.json"


def _read_status(country: str) -> dict[str, Any]:
    path = _status_path(country)
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
    return {}


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _start_kernel(name: str, cwd: Path) -> Any:
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    env = dict(os.environ)
    env.update({"PYTHONHASHSEED": "0", "MPLBACKEND": "module://matplotlib_inline.backend_inline"})
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Unix-socket transport: no TCP port is opened, and ipykernel's plain-text warning is moot.
    sockets = tempfile.mkdtemp(prefix="clm-kernel-")
    km = AsyncKernelManager(kernel_name=name, transport="ipc", ip=os.path.join(sockets, "k"))
    km._clm_sockets = sockets  # removed by _stop_kernel
    run_sync(km.start_kernel)(cwd=str(cwd), env=env)
    return km


def _execute(nb_path: Path, out: Path, parameters: dict[str, Any], kernel: str, km: Any) -> None:
    """Execute one notebook with papermill on an already started kernel ``km``."""
    import papermill as pm

    pm.execute_notebook(
        str(nb_path),
        str(out),
        parameters=parameters,
        kernel_name=kernel,
        km=km,
        engine_name=_register_engine(),
        progress_bar=False,
        request_save_on_cell_execute=False,
        log_output=False,
        start_timeout=120,
    )


def _stop_kernel(km: Any) -> None:
    from jupyter_core.utils import run_sync

    try:
        run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # the kernel may already be dead; nothing left to clean
        pass
    shutil.rmtree(getattr(km, "_clm_sockets", ""), ignore_errors=True)


def _reset_namespace(km: Any) -> None:
    """Clear the previous notebook's variables; imported modules stay loaded (the point)."""
    from jupyter_client.blocking import BlockingKernelClient

    kc = BlockingKernelClient()
    kc.load_connection_info(km.get_connection_info())
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        kc.execute_interactive(
            _RESET_CODE, timeout=60, store_history=False, output_hook=lambda m: None
        )
    finally:
        kc.stop_channels()


_ENGINE = "clm-shared-kernel"


def _register_engine() -> str:
    """Register a papermill engine that runs in a kernel the runner owns and closes its client.

    Papermill's default engine accepts a running kernel manager (``km=``) and leaves it
    alive, but also leaves the per-notebook kernel client's channels open; this engine closes
    them after each notebook. Everything else is papermill's ``NBClientEngine``.
    """
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.utils import merge_kwargs, remove_args

    if _ENGINE in papermill_engines._engines:
        return _ENGINE

    class SharedKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(
                kwargs,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                log=logging.getLogger("papermill"),
            )
            client = PapermillNotebookClient(nb_man, **final)
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()
                    client.kc = None

    papermill_engines.register(_ENGINE, SharedKernelEngine)
    return _ENGINE


def _stage_times(nb: Any) -> dict[str, float]:
    """Seconds spent in cells tagged ``imports`` / ``load`` and in all other cells."""
    out = {"imports": 0.0, "load": 0.0, "analysis": 0.0}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        dur = cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0
        tags = set(cell.get("metadata", {}).get("tags", []))
        stage = next((t for t in STAGE_TAGS if t in tags), "analysis")
        out[stage] += float(dur)
    return out


def _run_gate(country: str) -> str:
    """Run ingestion + the data-quality gate once, if those modules are installed."""
    try:
        from clm_research.quality import gate
    except ImportError:
        return "gate not installed"
    validate = getattr(gate, "validate_country", None)
    if validate is None:
        return "gate not installed"
    result = validate(country)
    passed = getattr(result, "passed", None)
    if passed is False:
        from clm_research.errors import DataQualityError

        detail = getattr(result, "message", None) or getattr(result, "summary", lambda: "")()
        raise DataQualityError(f"data-quality gate failed for {country}: {detail}")
    return "passed" if passed is not False else "failed"


def _headline(tables: Path) -> str:
    """Verdict counts from the summary's progress scorecard, for the index page."""
    path = tables / "progress_scorecard.csv"
    if not path.is_file():
        return ""
    try:
        import pandas as pd

        from clm_research.reporting import headline

        return headline(pd.read_csv(path))
    except Exception as e:  # the headline is a nicety; never fail a good run for it
        return f"(headline unavailable: {type(e).__name__})"


def _promote(tmp: Path, final: Path) -> None:
    """Swap the finished temporary folder into place; the old report goes only afterwards."""
    old = final.with_name(f".old-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    if final.exists():
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except OSError:
        if old.exists() and not final.exists():
            os.rename(old, final)
        raise
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def _keep_failed(tmp: Path, country_dir: Path, period: str) -> None:
    failed = country_dir / f".failed-{period}"
    if failed.exists():
        shutil.rmtree(failed, ignore_errors=True)
    try:
        os.rename(tmp, failed)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def run_country(task: CountryTask) -> CountryResult:
    """Run one country's notebooks and build its report. Never raises.

    See the module docstring for the steps. The result's ``stages`` hold the wall time of
    each stage in seconds: ``parameters``, ``hashing``, ``validation`` (the gate),
    ``kernel_start``, ``imports``, ``load``, ``analysis`` (cells), ``papermill_overhead``
    (notebook wall time minus cell time), ``rendering`` and ``publish``.
    """
    from clm_research.provenance import input_hashes, package_versions, run_key, utc_now

    _apply_environment(task)
    t_start = time.perf_counter()
    result = CountryResult(country=task.country, period=task.period or None, status="failed")
    result.started = utc_now()
    stages: dict[str, float] = {}

    def done() -> CountryResult:
        result.finished = utc_now()
        result.seconds = time.perf_counter() - t_start
        result.stages = {k: round(v, 3) for k, v in stages.items()}
        return result

    if task.params_error:
        result.stage, result.error = "parameters", task.params_error
        return done()

    country_dir = reports_dir() / task.country
    tmp = country_dir / f".tmp-{task.period}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    km = None
    current = "hashing"
    try:
        t = time.perf_counter()
        notebooks = [Path(p) for p in task.notebooks]
        inputs = input_hashes(task.country, notebooks)
        versions = package_versions()
        params = load_country(task.country)
        parameters = {"country": params.model_dump(mode="json"), "notebook": task.parameters}
        key = run_key(inputs, parameters, {**versions, "clm_research code": _code_hash()})
        result.run_key = key
        stages["hashing"] = time.perf_counter() - t

        status = _read_status(task.country)
        final = country_dir / task.period
        if (
            task.changed_only
            and status.get("last_good", {}).get("run_key") == key
            and (final / "report.html").is_file()
        ):
            result.status = "skipped"
            result.report = str(final / "report.html")
            result.headline = status.get("last_good", {}).get("headline", "")
            return done()

        current = "validation"
        t = time.perf_counter()
        gate_status = _run_gate(task.country) if task.gate else "skipped"
        stages["validation"] = time.perf_counter() - t

        current = "kernel_start"
        country_dir.mkdir(parents=True, exist_ok=True)
        (tmp / "notebooks").mkdir(parents=True)
        (tmp / "tables").mkdir()
        t = time.perf_counter()
        km = _start_kernel(task.kernel, tmp)
        stages["kernel_start"] = time.perf_counter() - t

        import nbformat
        from papermill.exceptions import PapermillExecutionError
        from tqdm.auto import tqdm

        executed: dict[str, Any] = {}
        bar = tqdm(
            total=len(notebooks),
            desc=task.country,
            position=task.position,
            leave=False,
            disable=task.progress is False or (task.progress is None and not sys.stderr.isatty()),
            unit="nb",
        )
        try:
            for i, nb_path in enumerate(notebooks):
                current = nb_path.stem
                bar.set_description(f"{task.country} {nb_path.stem}")
                if i:
                    _reset_namespace(km)
                out = tmp / "notebooks" / nb_path.name
                t = time.perf_counter()
                try:
                    _execute(nb_path, out, dict(task.parameters), task.kernel, km)
                except PapermillExecutionError as e:
                    result.failure = NotebookFailure(
                        notebook=nb_path.stem,
                        cell_index=e.cell_index,
                        execution_count=e.exec_count,
                        ename=e.ename,
                        evalue=str(e.evalue)[:500],
                    )
                    result.stage = nb_path.stem
                    stages[f"notebook:{nb_path.stem}"] = time.perf_counter() - t
                    raise
                wall = time.perf_counter() - t
                nb = nbformat.read(out, as_version=4)
                executed[nb_path.stem] = nb
                split = _stage_times(nb)
                for k, v in split.items():
                    stages[k] = stages.get(k, 0.0) + v
                stages["papermill_overhead"] = stages.get("papermill_overhead", 0.0) + max(
                    0.0, wall - sum(split.values())
                )
                result.notebooks[nb_path.stem] = round(wall, 3)
                bar.update(1)
        finally:
            bar.close()
        _stop_kernel(km)
        km = None

        current = "rendering"
        t = time.perf_counter()
        from clm_research.provenance import git_commit, provenance_html
        from clm_research.report_html import write_report

        prov = {
            "country": task.country,
            "period": task.period,
            "started": result.started,
            "finished": utc_now(),
            "git_commit": git_commit(),
            "run_key": key,
            "gate": gate_status,
            "parameters": {
                **task.parameters,
                **{k: v for k, v in params.model_dump(mode="json").items() if k != "demo"},
            },
            "inputs": inputs,
            "versions": versions,
        }
        ordered = [(p.stem, executed[p.stem]) for p in report_order(notebooks)]
        write_report(
            ordered,
            tmp / "report.html",
            title=f"{params.name}: CLM evaluation report",
            subtitle=f"Country {task.country} · reporting round {task.period} · generated {prov['finished']}",
            provenance_html=provenance_html(prov),
        )
        _write_json(tmp / "provenance.json", prov)
        stages["rendering"] = time.perf_counter() - t
        result.headline = _headline(tmp / "tables")
        _write_json(
            tmp / "timings.json",
            {"stages": {k: round(v, 3) for k, v in stages.items()}, "notebooks": result.notebooks},
        )

        current = "publish"
        t = time.perf_counter()
        _promote(tmp, final)
        stages["publish"] = time.perf_counter() - t
        result.status = "succeeded"
        result.report = str(final / "report.html")
    except Exception as e:
        if result.failure is None:
            result.stage = result.stage or current
            msg = str(e).strip() or type(e).__name__
            result.error = msg if isinstance(e, CLMError) else f"{type(e).__name__}: {msg}"
            if not isinstance(e, CLMError):
                result.error += "\n" + "".join(traceback.format_exception(e)[-3:]).strip()
        if km is not None:
            _stop_kernel(km)
        if tmp.exists():
            _keep_failed(tmp, country_dir, task.period)
    finally:
        done()
    _update_status(task.country, result)
    return result


def _update_status(country: str, result: CountryResult) -> None:
    try:
        status = _read_status(country)
        entry = {
            "status": result.status,
            "period": result.period,
            "started": result.started,
            "finished": result.finished,
            "message": result.message(),
            "report": result.report,
            "headline": result.headline,
            "run_key": result.run_key,
        }
        status["last_run"] = entry
        if result.status == "succeeded":
            status["last_good"] = entry
        (reports_dir() / country).mkdir(parents=True, exist_ok=True)
        _write_json(_status_path(country), status)
    except OSError:
        pass


# --------------------------------------------------------------------------- many countries


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
        Run the data-quality gate before the notebooks.
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
    from clm_research.index_page import write_index

    summary.index = str(write_index())
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
    from clm_research.params import SynthesisParameters

    nb_path = _synthesis_notebook(notebooks_dir)
    good = [r for r in summary.results if r.ok and r.period]
    if nb_path is None or len(good) < 2:
        return None
    periods = sorted({r.period for r in good if r.period})
    the_period = period or periods[-1]
    countries = sorted(r.country for r in good if r.period == the_period)
    result = CountryResult(country="synthesis", period=the_period, status="failed")
    t0 = time.perf_counter()
    from clm_research.provenance import utc_now

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
        km = _start_kernel(kernel, tmp)  # the countries' IPC kernel: no TCP port opened
        try:
            _execute(nb_path, out, sp.model_dump(), kernel, km)
        except PapermillExecutionError as e:
            result.failure = NotebookFailure(
                nb_path.stem, e.cell_index, e.exec_count, e.ename, str(e.evalue)[:500]
            )
            raise
        finally:
            _stop_kernel(km)
        from clm_research.report_html import write_report

        write_report(
            [(nb_path.stem, nbformat.read(out, as_version=4))],
            tmp / "report.html",
            title="CLM evaluation: multi-country synthesis",
            subtitle=f"Countries {', '.join(countries)} · reporting round {the_period}",
        )
        _promote(tmp, out_dir / the_period)
        result.status = "succeeded"
        result.report = str(out_dir / the_period / "report.html")
    except Exception as e:
        if result.failure is None:
            result.error = f"{type(e).__name__}: {e}"
        if tmp.exists():
            _keep_failed(tmp, out_dir, the_period)
    result.finished = utc_now()
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- CLI


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``clm run``'s arguments to an argparse parser (for the lead's cli.py)."""
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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m clm_research.runner``: the same as ``clm run``."""
    parser = argparse.ArgumentParser(prog="clm run", description=cli_run.__doc__)
    add_run_arguments(parser)
    return cli_run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
