"""One loader for every YAML file the project reads: country parameters, the framework,
mappings and analysis plans.

Reading is defensive because parameter files come from users and from other programmes:

- the file must exist, be at most :data:`MAX_BYTES` long and be UTF-8 (a file saved as
  Windows-1252 or UTF-16 gets an error saying so, not a ``UnicodeDecodeError``);
- YAML is parsed with PyYAML's safe loader (no Python objects), duplicate keys are an error
  (PyYAML silently keeps the last one), and anchors/aliases are allowed only within limits:
  at most :data:`MAX_ALIASES` aliases and :data:`MAX_NODES` values once every alias is expanded.
  A "billion laughs" file (nested aliases that expand exponentially) is refused before anything
  walks the expanded structure, in milliseconds; so is a value nested more than
  :data:`MAX_DEPTH` levels deep (``[[[[…]]]]`` would otherwise exhaust Python's recursion);
- validation against a pydantic model gives one error format, naming the file, the key (a
  dotted path) and the rule broken: ``params/countries/XA.yaml: 1 problem(s)`` followed by
  ``  - as_of: must look like 2025-01-15 [rule: value_error]``.

Every caller passes the :class:`~clm_research.errors.CLMError` subclass it raises
(``ParamsError`` for parameters and plans, ``FrameworkError``, ``IngestError`` for mappings).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from pydantic import BaseModel, ValidationError

from clm_research.errors import CLMError, ParamsError

__all__ = [
    "MAX_BYTES",
    "MAX_ALIASES",
    "MAX_NODES",
    "MAX_DEPTH",
    "read_yaml",
    "read_yaml_mapping",
    "validate_model",
    "load_model",
    "format_validation_error",
]

#: Largest YAML file read (bytes). The framework, the largest file, is about 25 KB.
MAX_BYTES = 1_000_000
#: Most aliases (``*name``) in one file. The framework uses six.
MAX_ALIASES = 200
#: Most values (scalars, lists and mappings) once every alias is expanded.
MAX_NODES = 200_000
#: Deepest nesting of lists and mappings. The project's files nest at most 6 levels deep.
MAX_DEPTH = 50

M = TypeVar("M", bound=BaseModel)


class _LimitedLoader(yaml.SafeLoader):
    """Safe loader that counts aliases and refuses duplicate keys."""

    aliases_seen = 0
    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_ALIASES:
                # types-PyYAML leaves Parser.peek_event unannotated; it returns the next event
                peek_event = cast("Callable[[], yaml.Event]", self.peek_event)
                mark = peek_event().start_mark
                where = f" (line {mark.line + 1})" if mark is not None else ""
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases{where} [rule: yaml_aliases]")
        # the composer recurses once per level: refuse deep nesting before Python's stack does
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                peek = cast("Callable[[], yaml.Event]", self.peek_event)
                mark = peek().start_mark
                where = f" (line {mark.line + 1})" if mark is not None else ""
                raise yaml.YAMLError(
                    f"values nested more than {MAX_DEPTH} levels deep{where} [rule: yaml_depth]"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                # `<<: [*a, *a]` copies the merged keys physically, doubling at every level:
                # an alias-count limit does not bound it, so merge keys are refused outright
                raise yaml.YAMLError(
                    f"merge keys (<<) are not allowed (line {key_node.start_mark.line + 1}); "
                    "write the keys out [rule: yaml_merge]"
                )
            try:
                key = self.construct_object(key_node, deep=True)
                hash(key)
            except TypeError:
                continue  # an unhashable key is reported by PyYAML itself
            if key in seen:
                raise yaml.YAMLError(
                    f"key {key!r} appears twice in one mapping (lines {seen[key] + 1} and "
                    f"{key_node.start_mark.line + 1}) [rule: duplicate_key]"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)

    def timestamp_or_text(self, node: yaml.Node) -> object:
        # `as_of: 2025-13-01` looks like a date to YAML but is none: PyYAML's constructor raises
        # a bare ValueError. The text is kept instead, so the model's date check names the key
        # and the format expected.
        try:
            return self.construct_yaml_timestamp(cast("yaml.ScalarNode", node))
        except ValueError:
            return self.construct_scalar(cast("yaml.ScalarNode", node))


_LimitedLoader.add_constructor("tag:yaml.org,2002:timestamp", _LimitedLoader.timestamp_or_text)


def _expanded_size(value: Any) -> int:
    """Number of values in ``value`` with every shared (aliased) part counted each time it is used.

    Shared parts are sized once (memoised by identity), so this runs in time proportional to
    the file, not to its expansion.
    """
    memo: dict[int, int] = {}

    def size(v: Any) -> int:
        if isinstance(v, dict):
            key = id(v)
            if key not in memo:
                memo[key] = 1 + sum(size(k) + size(x) for k, x in v.items())
            return memo[key]
        if isinstance(v, list):
            key = id(v)
            if key not in memo:
                memo[key] = 1 + sum(size(x) for x in v)
            return memo[key]
        return 1

    return size(value)


def _display(path: Path) -> str:
    """The path relative to the current folder or project when possible (no absolute paths)."""
    from clm_research.paths import display_path

    return display_path(path)


def read_yaml(
    path: str | Path, *, what: str = "file", error: type[CLMError] = ParamsError
) -> object:
    """Read one YAML file within the limits above.

    Parameters
    ----------
    path
        The file.
    what
        What the file is, for the "not found" message (e.g. ``"country parameters"``).
    error
        The :class:`~clm_research.errors.CLMError` subclass to raise.

    Returns
    -------
    object
        The document as plain data (mappings, lists, text, numbers, dates), to be validated.

    Raises
    ------
    CLMError
        (of class ``error``) naming the file and the rule: missing, too large, not UTF-8, not
        YAML (with line and column), a duplicate key, too many aliases or an expansion that is
        too large.
    """
    p = Path(path)
    shown = _display(p)
    if not p.is_file():
        raise error(f"{shown}: {what} not found [rule: missing_file]")
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise error(
                f"{shown}: {size:,} bytes, more than the {MAX_BYTES:,} a {what} may have "
                "[rule: file_size]"
            )
        data = p.read_bytes()
    except OSError as e:
        raise error(f"{shown}: cannot be read ({e.strerror or e}) [rule: readable]") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        raise error(
            f"{shown}: saved as UTF-16; save it as UTF-8 (in most editors: 'Save with encoding') "
            "[rule: encoding]"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise error(
            f"{shown}: line {line}: not UTF-8 (byte 0x{data[e.start]:02x}); the file was probably "
            "saved as Windows-1252 or Latin-1: save it as UTF-8 [rule: encoding]"
        ) from None
    loader = _LimitedLoader(text)
    try:
        value = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = e.problem or e.context or "syntax error"
        raise error(f"{shown}: not valid YAML: {where}{problem} [rule: yaml_syntax]") from None
    except yaml.YAMLError as e:
        raise error(f"{shown}: not valid YAML: {e}") from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops nesting long before
        raise error(f"{shown}: values nested too deeply [rule: yaml_depth]") from None
    finally:
        loader.dispose()
    nodes = _expanded_size(value)
    if nodes > MAX_NODES:
        raise error(
            f"{shown}: expands to {nodes:,} values through its aliases, more than the "
            f"{MAX_NODES:,} allowed [rule: yaml_expansion]"
        )
    return value


def read_yaml_mapping(
    path: str | Path, *, what: str = "file", error: type[CLMError] = ParamsError
) -> dict[str, Any]:
    """:func:`read_yaml`, requiring a mapping (``key: value`` lines) at the top level."""
    value = read_yaml(path, what=what, error=error)
    if not isinstance(value, dict):
        kind = "empty" if value is None else f"a {type(value).__name__}"
        raise error(
            f"{_display(Path(path))}: expected a mapping of {what} fields (key: value) at the top "
            f"level, found {kind} [rule: mapping]"
        )
    return value


def format_validation_error(err: ValidationError, source: str) -> str:
    """One readable line per problem: the key as a dotted path, the message and the rule."""
    lines = [f"{source}: {err.error_count()} problem(s)"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        rule = e["type"]
        if rule == "extra_forbidden":
            msg, rule = "unknown parameter (misspelt?)", "unknown_key"
        elif rule == "missing":
            msg, rule = "required but missing", "required"
        lines.append(f"  - {loc}: {msg} [rule: {rule}]")
    return "\n".join(lines)


def validate_model(
    model: type[M], raw: Any, source: str, *, error: type[CLMError] = ParamsError
) -> M:
    """Validate ``raw`` against ``model``; errors name ``source``, each key and each rule."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise error(format_validation_error(e, source)) from None


def load_model(
    path: str | Path, model: type[M], *, what: str = "file", error: type[CLMError] = ParamsError
) -> M:
    """Read ``path`` (:func:`read_yaml_mapping`) and validate it against ``model``."""
    raw = read_yaml_mapping(path, what=what, error=error)
    return validate_model(model, raw, _display(Path(path)), error=error)
