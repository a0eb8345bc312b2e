"""One Jupyter kernel per country, shared by its notebooks, driven by papermill.

The heavy imports (statsmodels, seaborn, geopandas) are paid once per country: the runner starts
one kernel, executes each notebook in it with papermill and clears the namespace between
notebooks (imported modules stay loaded). The kernel talks over Unix sockets in a private
temporary folder (IPC transport), so no TCP port is opened.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # jupyter_client is imported when a kernel is started
    from jupyter_client.manager import AsyncKernelManager

__all__ = [
    "KERNEL_TMP_PREFIX",
    "start_kernel",
    "stop_kernel",
    "reset_namespace",
    "execute",
    "clean_kernel_leftovers",
]

#: Prefix of the socket folders this module creates in the system temporary folder.
KERNEL_TMP_PREFIX = "clm-kernel-"

#: The socket folder of each kernel this module started, removed by :func:`stop_kernel`.
_SOCKETS: weakref.WeakKeyDictionary[AsyncKernelManager, str] = weakref.WeakKeyDictionary()

RESET_CODE = (
    "get_ipython().run_line_magic('reset', '-f')\n"
    "import matplotlib.pyplot as _plt\n_plt.close('all')\ndel _plt\n"
)


def start_kernel(name: str, cwd: Path) -> AsyncKernelManager:
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    env = dict(os.environ)
    env.update({"PYTHONHASHSEED": "0", "MPLBACKEND": "module://matplotlib_inline.backend_inline"})
    # One BLAS/OpenMP thread: a multi-threaded BLAS splits sums differently from run to run, and
    # the models' estimates (GEE, mixed models) then differ in the 14th digit; with one thread
    # two runs on the same inputs write byte-identical tables. The countries run in parallel
    # processes instead (--jobs).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    # Unix-socket transport: no TCP port is opened, and ipykernel's plain-text warning is moot.
    # the runner's process id in the name: a later run removes the folder if this one is killed
    sockets = tempfile.mkdtemp(prefix=f"{KERNEL_TMP_PREFIX}{os.getpid()}-")
    km = AsyncKernelManager(kernel_name=name, transport="ipc", ip=os.path.join(sockets, "k"))
    _SOCKETS[km] = sockets  # removed by stop_kernel
    run_sync(km.start_kernel)(cwd=str(cwd), env=env)
    return km


def execute(
    nb_path: Path,
    out: Path,
    parameters: dict[str, Any],
    kernel: str,
    km: AsyncKernelManager,
    *,
    report_dir: Path | None = None,
) -> None:
    """Execute one notebook with papermill on an already started kernel ``km``.

    Papermill records the absolute input and output paths in the executed notebook's metadata;
    they are rewritten relative to the project (input) and to ``report_dir`` (output), so no
    report carries the machine's folder names.
    """
    import papermill as pm

    try:
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
    finally:
        if out.is_file():
            _relative_paths(nb_path, out, report_dir)


def _relative_paths(nb_path: Path, out: Path, report_dir: Path | None) -> None:
    import nbformat

    from clm_research.paths import display_path

    nb = nbformat.read(out, as_version=4)
    meta = nb.metadata.get("papermill")
    if not meta:
        return
    try:
        shown_out = out.relative_to(report_dir).as_posix() if report_dir else out.name
    except ValueError:
        shown_out = out.name
    meta["input_path"] = display_path(nb_path)
    meta["output_path"] = shown_out
    nbformat.write(nb, out)


def clean_kernel_leftovers(max_age_hours: float = 24.0) -> list[Path]:
    """Remove kernel socket folders that runs killed before :func:`stop_kernel` left behind.

    Only this user's ``clm-kernel-<pid>-…`` folders whose process is dead are removed (and,
    from versions that put no process id in the name, ones older than ``max_age_hours``).
    """
    import re
    import time

    from clm_research.files import pid_alive

    removed: list[Path] = []
    base = Path(tempfile.gettempdir())
    try:
        entries = list(base.glob(f"{KERNEL_TMP_PREFIX}*"))
    except OSError:
        return removed
    for p in entries:
        try:
            st = p.lstat()
        except OSError:
            continue
        if not p.is_dir() or p.is_symlink() or st.st_uid != os.getuid():
            continue
        m = re.match(rf"^{re.escape(KERNEL_TMP_PREFIX)}(\d+)-", p.name)
        if m:
            if pid_alive(int(m.group(1))):
                continue
        elif time.time() - st.st_mtime < max_age_hours * 3600:
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def stop_kernel(km: AsyncKernelManager) -> None:
    from jupyter_core.utils import run_sync

    try:
        run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # the kernel may already be dead; nothing left to clean
        pass
    shutil.rmtree(_SOCKETS.pop(km, ""), ignore_errors=True)


def reset_namespace(km: AsyncKernelManager) -> None:
    """Clear the previous notebook's variables; imported modules stay loaded (the point)."""
    from jupyter_client.blocking.client import BlockingKernelClient

    kc = BlockingKernelClient()
    kc.load_connection_info(km.get_connection_info())
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        kc.execute_interactive(
            RESET_CODE, timeout=60, store_history=False, output_hook=lambda m: None
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

    # papermill ships no type information, so its engine class is Any to mypy
    class SharedKernelEngine(NBClientEngine):  # type: ignore[misc]
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: IO[str] | None = None,
            stderr_file: IO[str] | None = None,
            start_timeout: float = 60,
            execution_timeout: float | None = None,
            **kwargs: Any,
        ) -> Any:  # papermill's NotebookNode, as the method it overrides
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
