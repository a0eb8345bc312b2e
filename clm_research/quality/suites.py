"""Great Expectations suites for the canonical tables, generated from :mod:`clm_research.schema`.

:func:`expectation_specs` lists, without importing Great Expectations, every expectation of a
table with the rule label (``"range:wait_minutes"``) it enforces — the same labels the
quarantine uses (:mod:`clm_research.quality.rules`). :func:`build_suite` turns them into a GX
``ExpectationSuite`` (GX imported lazily). Framework-derived expectations check that every
column an indicator reads exists (``framework:<column>``); their allowed values are already
enforced by the schema expectations of the same column.
"""

from __future__ import annotations

import os
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from clm_research.quality.rules import CONSISTENCY
from clm_research.schema import TABLES, Table

if TYPE_CHECKING:  # Great Expectations is imported when a suite is built
    from great_expectations import ExpectationSuite

__all__ = ["ExpectationSpec", "expectation_specs", "build_suite", "import_gx", "framework_columns"]


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation: the GX class name, its keyword arguments and the rule label it checks."""

    expectation: str
    kwargs: dict[str, Any] = field(hash=False)
    label: str


def import_gx() -> types.ModuleType:
    """Import great_expectations with usage analytics switched off (Great Expectations sends usage statistics unless ``GX_ANALYTICS_ENABLED=false``)."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("TQDM_DISABLE", "1")
    import great_expectations as gx

    return gx


def framework_columns(dataset: str, country: str | None = None) -> set[str]:
    """Columns of ``dataset`` the measurement framework's indicators read (empty if unavailable)."""
    try:
        from clm_research.framework import load_framework

        return set(load_framework(country).columns_used(dataset))
    except Exception:  # the framework is validated by its own command; the gate does not fail on it
        return set()


def expectation_specs(
    table: Table | str,
    references: Mapping[str, Iterable[Any]] | None = None,
    as_of: pd.Timestamp | None = None,
    framework_cols: Iterable[str] = (),
    present: Iterable[str] | None = None,
) -> list[ExpectationSpec]:
    """Every expectation of a canonical table, derived from the schema.

    Parameters
    ----------
    table
        The table (or its name).
    references
        ``"facilities.facility_id"`` -> known ids (referential integrity); omitted keys unchecked.
    as_of
        Data extraction date: dates must not be later (``future_date``).
    framework_cols
        Columns some indicator reads: each must exist (unless not collected).
    present
        The columns the data have. An optional column that is absent was not collected in
        this country: it gets no expectation (the indicators that read it are not computed).
        ``None``: every column is expected.
    """
    t = TABLES[table] if isinstance(table, str) else table
    references = references or {}
    have = set(t.column_names if present is None else present)
    specs: list[ExpectationSpec] = []
    for col in t.columns:
        if not col.required and col.name not in have:
            continue
        if col.required:
            specs.append(
                ExpectationSpec(
                    "ExpectColumnToExist", {"column": col.name}, f"missing_column:{col.name}"
                )
            )
            specs.append(
                ExpectationSpec(
                    "ExpectColumnValuesToNotBeNull", {"column": col.name}, f"not_null:{col.name}"
                )
            )
        if col.allowed is not None:
            values = (
                [int(a) for a in col.allowed]
                if col.dtype == "integer"
                else [str(a) for a in col.allowed]
            )
            specs.append(
                ExpectationSpec(
                    "ExpectColumnValuesToBeInSet",
                    {"column": col.name, "value_set": values},
                    f"allowed_values:{col.name}",
                )
            )
        if (col.minimum is not None or col.maximum is not None) and col.dtype != "date":
            specs.append(
                ExpectationSpec(
                    "ExpectColumnValuesToBeBetween",
                    {"column": col.name, "min_value": col.minimum, "max_value": col.maximum},
                    f"range:{col.name}",
                )
            )
        if col.pattern is not None:
            regex = re.sub(r"\((?!\?)", "(?:", col.pattern)  # non-capturing: GX uses str.contains
            specs.append(
                ExpectationSpec(
                    "ExpectColumnValuesToMatchRegex",
                    {"column": col.name, "regex": regex},
                    f"pattern:{col.name}",
                )
            )
        if col.dtype == "date" and as_of is not None:
            specs.append(
                ExpectationSpec(
                    "ExpectColumnValuesToBeBetween",
                    {"column": col.name, "max_value": pd.Timestamp(as_of)},
                    f"future_date:{col.name}",
                )
            )
    key = list(t.primary_key)
    if len(key) == 1:
        specs.append(
            ExpectationSpec(
                "ExpectColumnValuesToBeUnique", {"column": key[0]}, f"duplicate_key:{key[0]}"
            )
        )
    else:
        specs.append(
            ExpectationSpec(
                "ExpectCompoundColumnsToBeUnique",
                {"column_list": key, "ignore_row_if": "any_value_is_missing"},
                f"duplicate_key:{'+'.join(key)}",
            )
        )
    for fk in t.foreign_keys:
        ref = references.get(f"{fk.ref_table}.{fk.ref_column}")
        if ref is None or fk.column not in have:
            continue
        ids = sorted({str(v) for v in ref if v is not None and not pd.isna(v)})
        specs.append(
            ExpectationSpec(
                "ExpectColumnValuesToBeInSet",
                {"column": fk.column, "value_set": ids},
                f"unknown_reference:{fk.column}",
            )
        )
    for pair in CONSISTENCY:
        if pair.table != t.name or pair.smaller not in have or pair.larger not in have:
            continue
        is_date = t.column(pair.smaller).dtype == "date"
        specs.append(
            ExpectationSpec(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {
                    "column_A": pair.larger,
                    "column_B": pair.smaller,
                    "or_equal": True,
                    "ignore_row_if": "either_value_is_missing",
                },
                f"inconsistent:{pair.larger if is_date else pair.smaller}",
            )
        )
    not_collected = {c.name for c in t.columns if not c.required and c.name not in have}
    for c in sorted(set(framework_cols) - not_collected):
        specs.append(ExpectationSpec("ExpectColumnToExist", {"column": c}, f"framework:{c}"))
    return specs


def build_suite(name: str, specs: list[ExpectationSpec]) -> ExpectationSuite:
    """A GX ``ExpectationSuite`` named ``name``; each expectation's ``meta`` carries its rule label."""
    gx = import_gx()
    suite: ExpectationSuite = gx.ExpectationSuite(name=name)
    for s in specs:
        cls = getattr(gx.expectations, s.expectation)
        suite.add_expectation(cls(**s.kwargs, meta={"rule": s.label}))
    return suite
