"""The one YAML loader under attack: alias bombs, deep nesting, huge files, wrong encodings, duplicate keys.

Every file the project reads as YAML (country parameters, the framework, mappings, analysis plans)
goes through :mod:`clm_research.config.loader`; each hostile file must give a clear
:class:`~clm_research.errors.CLMError` naming the file and the rule, quickly and without
building the expanded structure. The timings asserted are generous upper bounds against a hang
(the real numbers are printed with ``-s``); performance itself is measured in ``benchmarks/``.
"""

from __future__ import annotations

import ast
import string
import time
import tracemalloc
from pathlib import Path

import pytest

from clm_research.config.country import load_country
from clm_research.config.loader import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, MAX_NODES, read_yaml
from clm_research.errors import FrameworkError, IngestError, ParamsError
from clm_research.framework import load_framework
from clm_research.ingest.mapping import load_mapping
from clm_research.paths import project_root
from clm_research.plans import load_plan

HEADER = (
    "code: XA\nname: Arcadia\nperiod: 2024Q4\nframework:\n  overrides:\n    wait_time_median:\n"
)


def alias_bomb(depth: int, width: int = 9, *, size: int | None = None) -> str:
    """A params file whose ``framework.overrides`` nest ``depth`` levels of ``width`` aliases.

    Level 1 is a list of ``width`` strings, every further level a list of ``width`` aliases of
    the level below: ``width ** depth`` strings once expanded (9 levels of 9: 387,420,489). A
    comment pads the file to ``size`` bytes.
    """
    names = string.ascii_lowercase
    lines = [f"      a: &a [{', '.join(['lol'] * width)}]"]
    for i in range(1, depth):
        lines.append(f"      {names[i]}: &{names[i]} [{', '.join([f'*{names[i - 1]}'] * width)}]")
    text = HEADER + "\n".join(lines) + "\n"
    if size is not None:
        pad = size - len(text.encode()) - 3
        assert pad >= 0, len(text.encode())
        text = "# " + "x" * pad + "\n" + text
    return text


def expanded_values(depth: int, width: int = 9) -> int:
    """Values in the bomb file once every alias is expanded, counted by hand.

    A list or mapping counts 1 plus its items (a mapping: its keys and its values). Level k
    (1-based) is one list holding ``width`` copies of level k-1 (level 1 holds ``width``
    strings): ``v(1) = 1 + width``, ``v(k) = 1 + width * v(k-1)``. Each level sits under its
    own key (1 + v(k)) in the ``wait_time_median`` mapping (1 + those). Around it: the top
    mapping (1), ``code``, ``name``, ``period`` (a key and a value each: 6), the keys
    ``framework``, ``overrides``, ``wait_time_median`` (3) and the two mappings between (2): 12.
    """
    v = [0, 1 + width]
    for _ in range(2, depth + 1):
        v.append(1 + width * v[-1])
    wait_time_median = 1 + sum(1 + v[k] for k in range(1, depth + 1))
    return 12 + wait_time_median


def _load_timed(path: Path) -> tuple[ParamsError, float, float]:
    """The error, the seconds to get it, and the peak memory (MB, a second run under tracemalloc)."""
    t0 = time.perf_counter()
    with pytest.raises(ParamsError) as err:
        load_country("XA", path.parent)
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    try:
        with pytest.raises(ParamsError):
            load_country("XA", path.parent)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    return err.value, seconds, peak


def test_billion_laughs_547_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "XA.yaml"
    path.write_text(alias_bomb(9, size=547))
    assert path.stat().st_size == 547
    assert expanded_values(9) > 4 * 10**8  # 490 million values: gigabytes once expanded
    err, seconds, peak_mb = _load_timed(path)
    msg = str(err)
    assert "XA.yaml" in msg and "[rule: yaml_expansion]" in msg
    assert f"expands to {expanded_values(9):,} values" in msg  # the hand count above
    assert str(tmp_path) not in msg  # no absolute path in the message
    assert seconds < 5 and peak_mb < 50  # generous bounds against a hang or a blow-up
    with capsys.disabled():
        print(
            f"\n547-byte alias bomb: ParamsError in {seconds * 1000:.1f} ms, peak {peak_mb:.2f} MB"
        )


def test_billion_laughs_depth_8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "XA.yaml"
    path.write_text(alias_bomb(8))
    err, seconds, peak_mb = _load_timed(path)
    assert f"expands to {expanded_values(8):,} values" in str(err)
    assert "[rule: yaml_expansion]" in str(err)
    assert seconds < 5 and peak_mb < 50
    with capsys.disabled():
        print(
            f"\ndepth-8 alias bomb: ParamsError in {seconds * 1000:.1f} ms, peak {peak_mb:.2f} MB"
        )


def test_aliases_within_the_limits_are_fine(tmp_path: Path) -> None:
    # 3 levels of 9: 820 values, far below MAX_NODES; shared lists are legitimate YAML
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(3))
    value = read_yaml(path)
    c = value["framework"]["overrides"]["wait_time_median"]["c"]
    assert len(c) == 9 and len(c[0]) == 9 and c[0][0] == ["lol"] * 9
    assert expanded_values(3) < MAX_NODES


def test_just_over_the_expansion_limit(tmp_path: Path) -> None:
    # width 21, depth 4: 214,431 values by the hand count of expanded_values, just above the limit
    n = expanded_values(4, width=21)
    assert MAX_NODES < n < 2 * MAX_NODES
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(4, width=21))
    with pytest.raises(ParamsError, match=rf"expands to {n:,} values.*yaml_expansion"):
        read_yaml(path)


def test_too_many_aliases(tmp_path: Path) -> None:
    path = tmp_path / "aliases.yaml"
    path.write_text("a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_ALIASES + 1)) + "]\n")
    with pytest.raises(ParamsError, match=rf"more than {MAX_ALIASES} aliases.*yaml_aliases"):
        read_yaml(path)


def test_merge_keys_are_refused(tmp_path: Path) -> None:
    # `<<: [*a, *a]` duplicates the merged keys physically at every level: 2**30 pairs from
    # 30 lines, which no alias count bounds
    lines = ["a0: &a0 {k0: 1, k1: 2}"] + [
        f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}]}}" for i in range(1, 30)
    ]
    path = tmp_path / "merge.yaml"
    path.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    with pytest.raises(ParamsError, match=r"merge keys \(<<\) are not allowed \(line 2\)"):
        read_yaml(path)
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 5000])
def test_deep_nesting(tmp_path: Path, levels: int) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * levels + "]" * levels + "\n")  # 10 KB at 5000 levels
    with pytest.raises(ParamsError, match=rf"nested more than {MAX_DEPTH} levels.*yaml_depth"):
        read_yaml(path)
    ok = tmp_path / "ok.yaml"
    ok.write_text("a: " + "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2) + "\n")
    assert read_yaml(ok)["a"] is not None


def test_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "XA.yaml"
    body = "code: XA\nname: Arcadia\n"
    path.write_text(body + "#" * (MAX_BYTES + 1 - len(body) - 1) + "\n")
    assert path.stat().st_size == MAX_BYTES + 1
    with pytest.raises(ParamsError, match=r"XA\.yaml: 1,000,001 bytes, more than the 1,000,000"):
        load_country("XA", tmp_path)
    path.write_text(body + "#" * (MAX_BYTES - len(body) - 1) + "\n")  # exactly at the limit
    assert path.stat().st_size == MAX_BYTES
    assert read_yaml(path)["code"] == "XA"


def test_windows_1252_file(tmp_path: Path) -> None:
    path = tmp_path / "XA.yaml"
    path.write_bytes("code: XA\nname: Côte d’Ivoire\n".encode("cp1252"))
    # ô is 0xF4 in Windows-1252, on line 2; in UTF-8 it would be two bytes
    with pytest.raises(ParamsError) as err:
        load_country("XA", tmp_path)
    msg = str(err.value)
    assert "XA.yaml: line 2: not UTF-8 (byte 0xf4)" in msg and "Windows-1252" in msg
    assert "[rule: encoding]" in msg


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_file(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "XA.yaml"
    path.write_bytes("code: XA\nname: Arcadia\n".encode(encoding))  # with and without a BOM
    with pytest.raises(ParamsError, match=r"XA\.yaml: saved as UTF-16.*\[rule: encoding\]"):
        load_country("XA", tmp_path)


def test_utf8_with_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes("\ufeffname: Côte d’Ivoire\n".encode())
    assert read_yaml(path) == {"name": "Côte d’Ivoire"}


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("code: XA\nmin_cell_size: 10\nmin_cell_size: 5\n", "min_cell_size", (2, 3)),
        (
            "code: XA\nframework:\n  overrides:\n    a: {target: 1}\n    a: {target: 2}\n",
            "a",
            (4, 5),
        ),
    ],
)
def test_duplicate_keys(tmp_path: Path, text: str, key: str, lines: tuple[int, int]) -> None:
    path = tmp_path / "XA.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as err:
        load_country("XA", tmp_path)
    assert (
        f"key {key!r} appears twice in one mapping (lines {lines[0]} and {lines[1]}) "
        "[rule: duplicate_key]"
    ) in str(err.value)


def _bomb_file(folder: Path, name: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(alias_bomb(9).replace("code: XA\n", "country: XA\n"))
    return path


def test_every_loader_refuses_the_bomb(tmp_path: Path) -> None:
    """Country parameters, the framework, mappings and plans: each through the same limits."""
    with pytest.raises(FrameworkError, match="yaml_expansion"):
        load_framework(path=_bomb_file(tmp_path, "framework.yaml"))
    with pytest.raises(IngestError, match="yaml_expansion"):
        load_mapping(_bomb_file(tmp_path, "mapping.yaml"))
    with pytest.raises(ParamsError, match="yaml_expansion"):
        load_plan(_bomb_file(tmp_path, "plan.yaml"))
    with pytest.raises(ParamsError, match="yaml_expansion"):
        load_country("XA", _bomb_file(tmp_path / "countries", "XA.yaml").parent)


#: Calls that parse YAML. Only clm_research/config/loader.py may make them.
_YAML_READERS = {
    "load",
    "safe_load",
    "full_load",
    "unsafe_load",
    "load_all",
    "safe_load_all",
    "full_load_all",
    "unsafe_load_all",
    "compose",
    "compose_all",
    "parse",
    "scan",
}


def test_every_yaml_read_goes_through_the_loader() -> None:
    pkg = project_root() / "clm_research"
    offenders = []
    for path in sorted(pkg.rglob("*.py")):
        if path == pkg / "config" / "loader.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "yaml":
                names = {a.name for a in node.names} & _YAML_READERS
                if names:
                    offenders.append(f"{path.relative_to(pkg)}:{node.lineno} imports {names}")
            if (
                isinstance(node, ast.Attribute)
                and node.attr in _YAML_READERS
                and isinstance(node.value, ast.Name)
                and node.value.id == "yaml"
            ):
                offenders.append(f"{path.relative_to(pkg)}:{node.lineno} yaml.{node.attr}")
    assert offenders == []
    # the notebooks read parameters through the package too
    for nb in sorted((project_root() / "notebooks").rglob("*.ipynb")):
        text = nb.read_text(encoding="utf-8")
        assert not any(f"yaml.{r}(" in text for r in _YAML_READERS), nb.name
