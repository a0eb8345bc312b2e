"""Timing, memory and machine helpers for the benchmark suite (``benchmarks/run.py``).

Every figure is a :func:`summary` of several runs: ``{"median", "min", "max", "runs"}`` in
seconds (or bytes). Ratios are always taken between figures measured in the same command, so
that a busy machine slows the numerator and the denominator alike.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "summary",
    "time_call",
    "time_command",
    "ratio",
    "loglog_slope",
    "machine",
    "rss_bytes",
    "reset_peak_rss",
    "peak_rss_bytes",
]


def summary(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    """Median, min and max of repeated measurements (and the runs themselves)."""
    vals = [float(v) for v in values]
    return {
        "median": round(statistics.median(vals), digits),
        "min": round(min(vals), digits),
        "max": round(max(vals), digits),
        "runs": [round(v, digits) for v in vals],
    }


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 0) -> tuple[dict[str, Any], Any]:
    """Wall time of ``fn()`` over ``repeats`` runs (after ``warmup`` untimed runs).

    Returns the :func:`summary` and the last run's return value.
    """
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return summary(times), result


def time_command(
    argv: Sequence[str], repeats: int, env: dict[str, str] | None = None, cwd: Path | None = None
) -> dict[str, Any]:
    """Wall time of a command in a fresh process (start-up benchmarks), ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(argv, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return summary(times)


def ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Ratio of two summaries' medians (``a / b``)."""
    return round(a["median"] / b["median"], 3) if b["median"] else float("nan")


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log(y) on log(x): 1 is linear scaling."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    sxx = sum((x - mx) ** 2 for x in lx)
    sxy = sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True))
    return round(sxy / sxx, 3) if sxx else float("nan")


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss_bytes() -> int:
    """Current resident set size of this process (Linux)."""
    return _status_kb("VmRSS")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak resident set size since start (or since :func:`reset_peak_rss`)."""
    return _status_kb("VmHWM")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def machine() -> dict[str, Any]:
    """The machine a run was measured on, and how busy it was."""
    import numpy
    import pandas

    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gb": round(_ram_bytes() / 2**30, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
    }
