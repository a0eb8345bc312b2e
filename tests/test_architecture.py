"""The layers of ARCHITECTURE.md are the import graph of the package: no cycle, no upward import."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "clm_research"


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (packages by their ``__init__``)."""
    out = {}
    for p in (ROOT / PACKAGE).rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that ``name`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    parts = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = parts[: len(parts) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
            # `from pkg import submodule` imports the submodule; `from pkg import name` the pkg
            sub = [t for t in targets[:-1] if t in known]
            targets = sub or [base]
        for t in targets:
            while t and t not in known and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in known and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def _layers() -> tuple[dict[str, str], dict[str, set[str]]]:
    """From ARCHITECTURE.md: module prefix -> layer, and layer -> layers it may import."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    owner: dict[str, str] = {}
    allowed: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("layer", "") or set(cells[0]) <= {"-"}:
            continue
        layer, modules, may = cells
        for m in re.findall(r"`([a-z_]+)/?`", modules):
            owner[f"{PACKAGE}.{m}"] = layer
        allowed[layer] = {x.strip() for x in may.split(",") if x.strip() not in ("", "—", "-")}
    return owner, allowed


def _layer_of(module: str, owner: dict[str, str]) -> str | None:
    parts = module.split(".")
    for i in range(len(parts), 1, -1):
        layer = owner.get(".".join(parts[:i]))
        if layer:
            return layer
    return None


def test_architecture_declares_layers_that_only_point_down() -> None:
    owner, allowed = _layers()
    assert len(allowed) >= 8, "ARCHITECTURE.md: the layer table was not found"
    for layer, below in allowed.items():
        unknown = below - set(allowed)
        assert not unknown, f"layer {layer} may import unknown layer(s) {unknown}"
    # the declared "may import" relation itself must be acyclic (a strict order of layers)
    seen: set[str] = set()

    def visit(layer: str, path: tuple[str, ...]) -> None:
        assert layer not in path, f"layers import each other: {' -> '.join((*path, layer))}"
        if layer in seen:
            return
        for lower in allowed[layer]:
            visit(lower, (*path, layer))
        seen.add(layer)

    for layer in allowed:
        visit(layer, ())


def test_every_module_belongs_to_a_layer() -> None:
    owner, _ = _layers()
    missing = [m for m in _graph() if m != PACKAGE and _layer_of(m, owner) is None]
    assert not missing, f"modules in no layer of ARCHITECTURE.md: {missing}"


def test_no_import_goes_up_or_sideways() -> None:
    owner, allowed = _layers()
    bad = []
    for module, targets in sorted(_graph().items()):
        if module == PACKAGE:
            continue
        layer = _layer_of(module, owner)
        for target in sorted(targets):
            other = _layer_of(target, owner)
            if other is None or other == layer or other in allowed[layer]:
                continue
            bad.append(f"{module} ({layer}) imports {target} ({other})")
    assert not bad, "imports the layers do not allow:\n" + "\n".join(bad)


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(" -> ".join([*stack[stack.index(t) :], t]))
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from clm_research.report import summary", {"clm_research.report.summary"}),
        ("from clm_research.evaluation import EvaluationError", {"clm_research.evaluation"}),
        ("import clm_research.files", {"clm_research.files"}),
        ("def f():\n    from clm_research.run.kernel import execute", {"clm_research.run.kernel"}),
    ],
)
def test_the_graph_sees_every_kind_of_import(
    tmp_path: Path, source: str, expected: set[str]
) -> None:
    path = tmp_path / "m.py"
    path.write_text(source)
    known = set(_modules())
    assert _imports("clm_research.x", path, known) == expected
