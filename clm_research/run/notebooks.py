"""The evaluation notebooks a country's run executes: which, in what order, with which parameters.

Each notebook has one cell tagged ``parameters`` assigning exactly the fields of
:class:`~clm_research.config.country.NotebookParameters` (checked before anything runs: papermill
itself only warns about an unknown parameter). Chapters run first and the summary last (it reuses
the analyses the chapters cached in the shared kernel) but the report shows the summary first.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from clm_research.config.country import NotebookParameters
from clm_research.errors import ParamsError
from clm_research.paths import project_root

__all__ = [
    "KERNEL_NAME",
    "SUMMARY_NOTEBOOK",
    "SYNTHESIS_NOTEBOOK",
    "STAGE_TAGS",
    "evaluation_notebooks",
    "execution_order",
    "report_order",
    "parameters_cell_names",
    "check_notebook_parameters",
    "kernel_name",
    "stage_times",
]

KERNEL_NAME = "clm-research"

SUMMARY_NOTEBOOK = "00_summary"

SYNTHESIS_NOTEBOOK = "synthesis"


STAGE_TAGS = ("imports", "load")


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
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
        else:
            raise ParamsError(
                f"{path}: the parameters cell may only assign plain values (line {node.lineno})"
            )
    return sorted(names)


def check_notebook_parameters(path: Path, model: type[BaseModel] = NotebookParameters) -> None:
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


def stage_times(nb: Any) -> dict[str, float]:
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
