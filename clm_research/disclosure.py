"""Disclosure control across every table a country publishes: an attacker's audit by linear
programming, and complementary suppression until the audit passes.

Suppressing a small cell protects nobody if the published tables let an attacker work it out:
with a margin, one suppressed cell is the remainder; a remainder of 0 tells that every
suppressed cell is 0; a numerator remainder equal to the denominator remainder tells that
every suppressed cell is 100%. Statistical offices guard against this with *secondary* (or
complementary) cell suppression and check the result with an *audit*: for every suppressed
cell, the smallest and the largest value consistent with every published number, computed by
linear programming — the "attacker problem" of tau-ARGUS and of R ``sdcTable`` (``attack()``),
as described in Hundepool et al., *Statistical Disclosure Control* (Wiley, 2012), chapter 4,
and the US Federal Committee on Statistical Methodology's *Statistical Policy Working Paper 22*.
This module does both for a country's indicator tables.

What the attacker knows
-----------------------
Every table of :data:`PUBLISHED_GROUPINGS` (national, by round, facility × round, district ×
round, district × round × sex × key population, CLM arm × round; the report's scorecards, maps
and trend figures are views of these), and therefore:

* every published ``numerator``, ``denominator`` and ``n`` (and whatever the estimate and its
  interval give back with them) of every indicator;
* that a cell is the sum of the finer cells it contains (a district of its facilities, a round
  of its districts, a district × round of its sex × key-population cells, all rounds of each
  round…) — for every additive quantity: numerators and denominators of proportions, counts,
  rates, and the sums and row counts behind means, medians and durations (a mean or a median
  is not additive, its ``n`` is; a mean's sum of values is). Relations are derived from the
  data (a grouping nests in another when its groups each fall in one group of the other, as a
  facility falls in one district), including the unpublished common margins of two crossing
  groupings (facility × round and sex × key population meet in district × round);
* that quantities computed from the same rows are the same number in every table (the issues
  counted by ``issues_resolved`` are the issues of ``issues_per_facility_round``), and that a
  quantity whose rows are a subset of another's is not larger (a numerator and its
  denominator; the answers to one question and all interviews); that a sum of values lies
  between the row count times the column's minimum and maximum (the data model's range);
* non-negativity.

For groupings that nest or cross along a tree (a decomposable set of margins, which the
published list is), these linear relations are all an attacker can derive about the cells by
linear reasoning: any values satisfying them are the margins of some non-negative finer table.
Non-linear leftovers are out of scope: the number of facilities (``n_clusters``) and the design
effect of published cells, and a median (not a linear function of anything published; it is
protected through the mean of the same column, which is audited).

The protection rule (interval protection)
-----------------------------------------
A cell is *primary* when its size is below the indicator's ``min_cell_size`` ``m`` (the rule of
:mod:`clm_research.indicators`). What such a cell hides is what is true of the few people in
it, so the audited quantities of a primary cell are:

* proportion (and duration): the numerator ``N`` (people with the attribute, or issues
  resolved) and the complement ``D − N`` (people without it) — when the numerator's rows are
  a subset of the denominator's; otherwise the numerator alone, as a count;
* count and rate: the numerator (the events);
* mean: the sum of values ``T``.

With ``a`` the true value of an audited quantity, the attacker's interval ``[L, U]`` (the
minimum and maximum of the quantity over everything consistent with the published tables) must
contain the *protection interval*

    ``[max(lo, a − m·u, c_lo), min(hi, a + m·u, c_hi)]``

— ``m`` people either side of the truth, as far as the bounds allow:

* ``[lo, hi]``, the a-priori bounds, and ``u``, one person's worth: ``[0, D]`` and ``u = 1``
  for a numerator or a complement; ``[0, ∞)`` and ``u = 1`` for a count; for a sum of values
  ``[min·R, max·R]`` (``R`` rows, ``min``/``max`` the value range of the data model) and ``u``
  the national mean's distance above ``min`` (one typical person);
* ``[c_lo, c_hi]``, what the cell's *margins* say on their own: for every coarser cell that
  contains it and is not itself sensitive (a district of a facility, a round of a district),
  the range the quantity would have if everything inside that margin were suppressed (for a
  numerator, between ``N_p − (D_p − D)`` and ``N_p``). A margin is publishable as
  non-sensitive, so what it alone implies is its content, not a disclosure by differencing.

and, for a numerator and a complement with ``D ≥ 1``, whatever the margins say: ``U ≥ 1``. A
small group's attribute is never pinned to 0 nor to the full denominator (group disclosure:
"all 3 sex workers at this facility reported a breach"); when a margin itself shows 0% or 100%
over a group holding a primary cell, the margin is suppressed too.

This is the interval protection of tau-ARGUS and ``sdcTable`` (lower and upper protection
levels around each sensitive cell, here ``m`` people each side) with the a-priori bounds of a
frequency table; like the p% rule it asks that the attacker's estimate stay uncertain by a
margin, here in people rather than a percentage of a magnitude. Because a primary cell has
fewer than ``m`` people, a proportion's numerator and complement must each stay free over all
of ``[0, D]`` unless the margins already tell: the attacker can rule out neither 0% nor 100%,
so neither remainder attack works. A count's interval is ``[0, a + m]`` within its margins.

Sizes themselves (how many people a cell has) are not protected: the framework publishes them
on purpose (``interviews_completed`` and ``issues_per_facility_round`` have ``min_cell_size:
0``); the audit still counts them as known to the attacker.

Secondary and complementary cells (suppressed to protect another cell) are not sensitive and
need no protection interval, but a suppressed cell must not be shown to be at 0% or 100%
either: "all 5 issues at this facility in this round were resolved" is what its blank
withholds, and a margin minus its published cells (a district × round of a facility suppressed
only to hide its other, small round) would say it all the same. So a suppressed cell of a
proportion (or duration) at 0% or 100% has its numerator (at 0%) or complement (at 100%)
audited too, with the protection interval ``[0, 1]`` whatever its margins say (a margin at 0%
or 100% over it is suppressed as well); every other suppressed cell that is not small may be
worked out, as it could have been published.

The audit and the suppression
-----------------------------
Every cell of every quantity is a variable; published cells are fixed at their value; the
relations above are equalities and inequalities. The variables left free split into
independent blocks (connected components of the relations), and each block is a small linear
programme solved with HiGHS (``scipy.optimize.linprog(method="highs")``); independent blocks
are solved together in one programme, each with its own objective. A side of a protection
interval is *certified* by any feasible point reaching it (each programme's optimum is one, for
every audited quantity of its block), and decided exactly by minimising or maximising the
quantity when no point reached it yet; ``exact=True`` computes the attacker's exact interval of
every audited quantity. Suppressing more only widens intervals, so a certified side stays
certified while complementary cells are added.

:func:`protect_tables` starts from each table's own primary and secondary suppression and,
while an audited quantity is not protected, suppresses a complementary cell next to it, in every
table that publishes it, and audits again. The cell is a published cell in one of its relations
(searched outwards through suppressed cells): in the cell's own grouping first, then finer and
crossing groupings, in as many of its relations as possible (a facility in the same district
and CLM arm), the cheapest — fewest people — that can make up the shortfall, else the one that
makes up most of it. Only when that would hide a coarser margin (a district, a national
figure), a small linear programme first asks which published cells nearby would have to give
way at least cost (the linear relaxation of optimal cell suppression, after Fischetti and
Salazar-González, "Models and algorithms for optimizing cell suppression in tabular data with
linear constraints", JASA 2000). The result is returned with its audit summary; a pattern that
cannot be made safe raises :class:`~clm_research.errors.DisclosureError`, and nothing should be
published.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clm_research.errors import DisclosureError
from clm_research.indicators import REVEALING_COLUMNS, Tabulation, blank_suppressed

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from scipy import sparse

    from clm_research.framework import Framework, Indicator

__all__ = [
    "PUBLISHED_GROUPINGS",
    "CellInterval",
    "DisclosureAudit",
    "ProtectedTables",
    "audit_tables",
    "protect_tables",
]

#: Every grouping a country's run publishes: table name → group columns. The indicator tables
#: (``clm indicators``, CSV and Parquet) are these, and the report's tables, scorecards, trend
#: figures and maps are views of them; the disclosure audit takes them all together. A new
#: published grouping is added here, and nowhere else.
PUBLISHED_GROUPINGS: dict[str, tuple[str, ...]] = {
    "national": (),
    "national_round": ("round",),
    "facility_round": ("facility_id", "round"),
    "district_round": ("district", "round"),
    "district_round_sex_kp": ("district", "round", "sex", "key_population"),
    "arm_round": ("clm_arm", "round"),
}

#: Suppression label of a cell added by the audit (beside "primary" and "secondary").
COMPLEMENTARY = "complementary"

#: Names of the audited quantities (``CellInterval.quantity``).
_QUANTITY_LABELS = {
    "numerator": "numerator",
    "complement": "denominator minus numerator",
    "count": "count",
    "total": "sum of values",
}

#: Feasible points tried per block and direction before a side is decided by its own programme.
_SWEEPS = 6


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CellInterval:
    """What an attacker can derive about one audited quantity of a suppressed cell.

    ``low``/``high`` are the attacker's exact interval when ``exact`` is true; otherwise an
    interval the attacker's interval is known to contain (certified by feasible points), so the
    true interval is at least as wide. ``high`` is ``inf`` when nothing bounds the quantity.
    Only attacker-derivable numbers are kept (never the cell's true value).
    """

    table: str
    indicator_id: str
    group: tuple[tuple[str, str], ...]
    quantity: str
    low: float
    high: float
    exact: bool
    protected: bool

    @property
    def width(self) -> float:
        return self.high - self.low

    def describe(self) -> str:
        """One line: table, indicator, group, quantity and the interval."""
        where = ", ".join(f"{k}={v}" for k, v in self.group) or "all"
        hi = "∞" if math.isinf(self.high) else f"{self.high:g}"
        kind = "exactly" if self.exact else "at least"
        return (
            f"{self.table}: {self.indicator_id} [{where}] {_QUANTITY_LABELS[self.quantity]} "
            f"within [{self.low:g}, {hi}] ({kind})"
        )


@dataclass(frozen=True)
class DisclosureAudit:
    """Summary of a disclosure audit of a set of published tables.

    Attributes
    ----------
    tables
        The audited tables (names of the groupings).
    rows, suppressed_primary, suppressed_secondary, suppressed_complementary
        Published rows; rows suppressed because they are small, by each table's own secondary
        suppression, and by the audit (complementary).
    audited
        Audited quantities of primary cells (distinct cells across tables).
    audited_other
        Audited quantities of the other suppressed cells (secondary and complementary) of a
        proportion at 0% or 100%: not to be shown at 0% or 100%.
    narrowest
        The audited quantity with the narrowest interval (attacker-derivable numbers only).
    failures
        Quantities whose attacker interval does not contain the protection interval.
    lp_variables, lp_constraints, lp_blocks, largest_block
        Size of the attacker's problem: free variables and constraints over all blocks, the
        number of independent blocks with an audited quantity and the largest of them.
    lp_solves, lp_seconds, seconds
        Linear programmes solved, their time, and the audit's time (model and solves).
    """

    tables: tuple[str, ...]
    rows: int
    suppressed_primary: int
    suppressed_secondary: int
    suppressed_complementary: int
    audited: int
    narrowest: CellInterval | None
    failures: tuple[CellInterval, ...]
    lp_variables: int
    lp_constraints: int
    lp_blocks: int
    largest_block: int
    lp_solves: int
    lp_seconds: float
    seconds: float
    exact: bool = False
    audited_other: int = 0

    @property
    def passed(self) -> bool:
        """True when every audited quantity is protected."""
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        """Plain values for a provenance record (JSON-ready)."""
        return {
            "passed": self.passed,
            "tables": list(self.tables),
            "rows": self.rows,
            "suppressed_primary": self.suppressed_primary,
            "suppressed_secondary": self.suppressed_secondary,
            "suppressed_complementary": self.suppressed_complementary,
            "audited_quantities": self.audited,
            "audited_other_suppressed": self.audited_other,
            "failures": len(self.failures),
            "narrowest_interval": None if self.narrowest is None else self.narrowest.describe(),
            "lp_variables": self.lp_variables,
            "lp_constraints": self.lp_constraints,
            "lp_blocks": self.lp_blocks,
            "largest_block": self.largest_block,
            "lp_solves": self.lp_solves,
            "lp_seconds": round(self.lp_seconds, 3),
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        """The summary as printable lines."""
        verdict = "passed" if self.passed else f"FAILED ({len(self.failures)} unprotected)"
        out = [
            f"disclosure audit {verdict}: {len(self.tables)} tables "
            f"({', '.join(self.tables)}), {self.rows:,} cells",
            f"  suppressed: {self.suppressed_primary:,} primary, "
            f"{self.suppressed_secondary:,} secondary, "
            f"{self.suppressed_complementary:,} complementary (added by the audit)",
            f"  audited quantities of primary cells: {self.audited:,}; of other suppressed "
            f"cells at 0% or 100%: {self.audited_other:,}",
        ]
        if self.narrowest is not None:
            out.append(f"  narrowest interval: {self.narrowest.describe()}")
        out.append(
            f"  linear programmes: {self.lp_variables:,} variables, {self.lp_constraints:,} "
            f"constraints in {self.lp_blocks:,} blocks (largest {self.largest_block:,} "
            f"variables); {self.lp_solves:,} solves in {self.lp_seconds:.2f} s; audit "
            f"{self.seconds:.2f} s"
        )
        for f in self.failures[:10]:
            out.append(f"  not protected: {f.describe()}")
        if len(self.failures) > 10:
            out.append(f"  … and {len(self.failures) - 10} more")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class ProtectedTables:
    """Published indicator tables (suppressed cells blanked) and the audit that passed them."""

    tables: dict[str, pd.DataFrame]
    audit: DisclosureAudit


# ----------------------------------------------------------------------------- the model


def _digest(weights: np.ndarray) -> bytes:
    import numpy as np

    return hashlib.blake2b(np.ascontiguousarray(weights).tobytes(), digest_size=16).digest()


def _determines(codes: np.ndarray, n_groups: int, values: np.ndarray) -> bool:
    """Whether each group (``codes``) holds a single value of ``values`` (a functional link)."""
    import numpy as np

    if not len(codes):
        return True
    first = np.empty(n_groups, dtype=values.dtype)
    first[codes[::-1]] = values[::-1]  # the value at each group's first row
    return bool((first[codes] == values).all())


def _value_range(ind: Indicator, values: np.ndarray, scope: np.ndarray) -> tuple[float, float]:
    """A mean's value range: the data model's (public), else the data's own (tighter)."""
    import numpy as np

    from clm_research.derived import dataset_table

    lo = hi = None
    try:
        col = dataset_table(ind.dataset).column(ind.value)  # type: ignore[arg-type]
    except KeyError:
        col = None
    if col is not None:
        nums = [float(v) for v in (col.allowed or ()) if isinstance(v, int | float)]
        lo = col.minimum if col.minimum is not None else (min(nums) if nums else None)
        hi = col.maximum if col.maximum is not None else (max(nums) if nums else None)
    seen = values[scope]
    if lo is None:
        lo = float(np.min(seen)) if len(seen) else 0.0
    if hi is None:
        hi = float(np.max(seen)) if len(seen) else 0.0
    return float(lo), float(hi)


@dataclass
class _Partition:
    dataset: str
    keys: tuple[str, ...]
    codes: np.ndarray
    n: int
    closure: frozenset[str]
    offset: dict[int, int] = field(default_factory=dict)  # quantity → first variable


@dataclass
class _Target:
    """One audited quantity of a suppressed cell: a linear function of the variables."""

    kind: str  # numerator | complement | count | total
    vars: np.ndarray
    coefs: np.ndarray
    value: float
    low: float  # the protection interval
    high: float
    row: int  # a published row that shows the cell
    big: float  # above this the quantity is unbounded


class _Model:
    """Variables, relations and published rows of a set of indicator tables."""

    def __init__(
        self,
        tab: Tabulation,
        groupings: Mapping[str, Sequence[str]],
        raw: Mapping[str, pd.DataFrame],
    ) -> None:
        import numpy as np

        self.tab = tab
        self.groupings = {k: tuple(v) for k, v in groupings.items()}
        self.raw = raw
        self.indicators = {ind.id: ind for ind in tab.indicators}
        self._quantities(tab)
        self._partitions(tab)
        self._variables()
        self._relations()
        self._dominance()
        self._rows()
        self.n_var = len(self.value)
        self.lower = np.where(self.nonneg[self.var_q], 0.0, -self.big[self.var_q])
        self.upper = self.big[self.var_q]

    # -- quantities: additive row weights, shared across indicators when identical
    def _quantities(self, tab: Tabulation) -> None:
        import numpy as np

        self.q_dataset: list[str] = []
        self.q_weights: list[np.ndarray] = []
        seen: dict[tuple[str, bytes], int] = {}
        self.roles: dict[str, dict[str, int]] = {}
        self.mean_range: dict[str, tuple[float, float]] = {}
        self.mean_unit: dict[str, float] = {}
        for ind in tab.indicators:
            roles = {}
            for role, (ds, w) in tab.quantities(ind).items():
                w = np.asarray(w, dtype="float64")
                key = (ds, _digest(w))
                if key not in seen or not np.array_equal(self.q_weights[seen[key]], w):
                    seen[key] = len(self.q_weights)
                    self.q_dataset.append(ds)
                    self.q_weights.append(w)
                roles[role] = seen[key]
            self.roles[ind.id] = roles
            if ind.type == "mean":
                values = tab.frame(ind.dataset)[ind.value].to_numpy(
                    dtype="float64", na_value=np.nan
                )
                scope = self.q_weights[roles["denominator"]] > 0
                lo, hi = self.mean_range[ind.id] = _value_range(ind, values, scope)
                # one typical person's value above the minimum: the national mean's distance
                in_scope = values[scope]
                self.mean_unit[ind.id] = (
                    max(float(in_scope.mean()) - lo, 0.0) if len(in_scope) else 0.0
                )
        max_m = max((tab.framework.cell_size(i) for i in tab.indicators), default=0)
        self.nonneg = np.array([bool((w >= 0).all()) for w in self.q_weights])
        # a bound no audited quantity needs to reach: keeps every programme bounded
        self.big = np.array([2 * float(np.abs(w).sum()) + 2 * max_m + 1 for w in self.q_weights])

    # -- partitions: the groupings of each dataset, with the margins two groupings share
    def _partitions(self, tab: Tabulation) -> None:
        import numpy as np

        self.key_sets: dict[str, list[tuple[str, ...]]] = {}
        self.cell_keys: dict[tuple[str, str], tuple[str, ...]] = {}  # (indicator, table) → keys
        for ind in tab.indicators:
            for name, by in self.groupings.items():
                keys = tuple(tab.cell_keys(ind, by))
                self.cell_keys[(ind.id, name)] = keys
                for q in self.roles[ind.id].values():
                    ks = self.key_sets.setdefault(self.q_dataset[q], [])
                    if keys not in ks:
                        ks.append(keys)
        order = {
            c: i for i, c in enumerate(dict.fromkeys(c for b in self.groupings.values() for c in b))
        }
        self.parts: list[_Partition] = []
        self.part_of: dict[tuple[str, tuple[str, ...]], tuple[int, np.ndarray | None]] = {}
        self.edges: list[tuple[int, int, np.ndarray]] = []  # (coarse, fine, parent of fine groups)
        for ds, key_sets in self.key_sets.items():
            columns = sorted({c for ks in key_sets for c in ks}, key=order.__getitem__)
            col_codes = {c: tab.groups(ds, (c,))[0] for c in columns}

            def closure(
                keys: tuple[str, ...],
                ds: str = ds,
                columns: list[str] = columns,
                col_codes: dict[str, np.ndarray] = col_codes,
            ) -> frozenset[str]:
                codes, _, n = tab.groups(ds, keys)
                extra = {
                    c for c in columns if c not in keys and _determines(codes, n, col_codes[c])
                }
                return frozenset(keys) | extra

            by_closure: dict[frozenset[str], int] = {}
            pending = list(key_sets)
            while pending:
                keys = pending.pop(0)
                cl = closure(keys)
                codes, _, n = tab.groups(ds, keys)
                if cl in by_closure:
                    pid = by_closure[cl]
                    rep = self.parts[pid]
                    mapping = None
                    if keys != rep.keys:  # same groups under other key columns
                        mapping = np.empty(n, dtype=np.intp)
                        mapping[codes] = rep.codes
                    self.part_of[(ds, keys)] = (pid, mapping)
                    continue
                pid = len(self.parts)
                by_closure[cl] = pid
                self.parts.append(_Partition(ds, keys, codes, n, cl))
                self.part_of[(ds, keys)] = (pid, None)
                # the margin this grouping shares with each other one (e.g. district × round
                # for facility × round and sex × key population) is known to an attacker even
                # when it is not published: add it as an unpublished grouping
                for other_cl in list(by_closure):
                    meet = cl & other_cl
                    if meet not in by_closure and not any(frozenset(p) == meet for p in pending):
                        pending.append(tuple(sorted(meet, key=order.__getitem__)))
            pids = list(by_closure.values())
            self._check_decomposable(ds, [self.parts[p].closure for p in pids])
            for fine in pids:
                for coarse in pids:
                    cf, cc = self.parts[fine].closure, self.parts[coarse].closure
                    if fine == coarse or not cc < cf:
                        continue
                    between = any(
                        cc < self.parts[m].closure < cf for m in pids if m not in (fine, coarse)
                    )
                    if between:
                        continue
                    parent = np.empty(self.parts[fine].n, dtype=np.intp)
                    parent[self.parts[fine].codes] = self.parts[coarse].codes
                    self.edges.append((coarse, fine, parent))

    @staticmethod
    def _check_decomposable(dataset: str, closures: list[frozenset[str]]) -> None:
        """Refuse groupings whose margins form a cycle (the cell-level relations would then
        under-state what an attacker can derive from the finer table they imply)."""
        sets = [set(c) for c in closures]
        changed = True
        while changed:  # GYO reduction: drop lone columns and sets inside another set
            changed = False
            for s in sets:
                lone = {c for c in s if sum(c in t for t in sets) == 1}
                if lone:
                    s -= lone
                    changed = True
            for i, s in enumerate(sets):
                if any(j != i and s <= t for j, t in enumerate(sets)):
                    sets.pop(i)
                    changed = True
                    break
        if len(sets) > 1 or (sets and sets[0]):
            cols = sorted(set().union(*closures))
            raise DisclosureError(
                f"dataset {dataset}: the published groupings cross in a cycle over {cols}; "
                "the audit's relations hold only for groupings that nest or cross along a tree "
                "(remove a grouping from PUBLISHED_GROUPINGS)"
            )

    # -- variables: one per quantity and group of each partition of its dataset
    def _variables(self) -> None:
        import numpy as np

        var_q, var_p, values = [], [], []
        offset = 0
        self.part_quantities: dict[int, list[int]] = {}
        for q, ds in enumerate(self.q_dataset):
            w = self.q_weights[q]
            for pid, part in enumerate(self.parts):
                if part.dataset != ds:
                    continue
                part.offset[q] = offset
                self.part_quantities.setdefault(pid, []).append(q)
                values.append(np.bincount(part.codes, weights=w, minlength=part.n))
                var_q.append(np.full(part.n, q, dtype=np.intp))
                var_p.append(np.full(part.n, pid, dtype=np.intp))
                offset += part.n
        self.value = np.concatenate(values) if values else np.zeros(0)
        self.var_q = np.concatenate(var_q) if var_q else np.zeros(0, dtype=np.intp)
        self.var_p = np.concatenate(var_p) if var_p else np.zeros(0, dtype=np.intp)
        self.var_g = np.zeros(len(self.value), dtype=np.intp)
        for part in self.parts:
            for off in part.offset.values():
                self.var_g[off : off + part.n] = np.arange(part.n)

    # -- relations: a coarse cell is the sum of the fine cells it contains
    def _relations(self) -> None:
        import numpy as np
        from scipy import sparse

        rows, cols, vals = [], [], []
        n_rel = 0
        for coarse, fine, parent in self.edges:
            cp, fp = self.parts[coarse], self.parts[fine]
            for q, off_c in cp.offset.items():
                off_f = fp.offset[q]
                r = n_rel + np.arange(cp.n)
                rows += [r, n_rel + parent]
                cols += [off_c + np.arange(cp.n), off_f + np.arange(fp.n)]
                vals += [np.ones(cp.n), -np.ones(fp.n)]
                n_rel += cp.n
        n_var = len(self.value)
        if n_rel:
            self.rel = sparse.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                shape=(n_rel, n_var),
            )
        else:
            self.rel = sparse.csr_matrix((0, n_var))
        self.rel_csc = self.rel.tocsc()

    # -- inequalities: a ≤ b·c cell by cell (subsets of rows; a sum of values within range)
    def _dominance(self) -> None:
        import numpy as np

        pairs: list[tuple[int, int, float, float]] = []  # (A, B, a, b): a·x_A − b·x_B ≤ 0
        by_ds: dict[str, list[int]] = {}
        for q, ds in enumerate(self.q_dataset):
            by_ds.setdefault(ds, []).append(q)
        self.subset: set[tuple[int, int]] = set()
        ratio_pairs = {
            (r["numerator"], r["denominator"])
            for ind_id, r in self.roles.items()
            if "numerator" in r and "denominator" in r and ind_id not in self.mean_range
        }
        for qs in by_ds.values():
            le = {}
            # only quantities in the same unit: counts of rows (0/1 weights), or the numerator
            # and denominator sums of one indicator (a sum of minutes is not compared with a
            # count of people, although it may happen to exceed it)
            rows = {q for q in qs if bool(np.isin(self.q_weights[q], (0.0, 1.0)).all())}
            for a in qs:
                for b in qs:
                    same_unit = (a in rows and b in rows) or (a, b) in ratio_pairs
                    if a == b or not same_unit:
                        continue
                    wa, wb = self.q_weights[a], self.q_weights[b]
                    if wa.sum() <= wb.sum() + 1e-9:
                        le[(a, b)] = bool((wa <= wb + 1e-12).all())
            dominated = {k for k, v in le.items() if v}
            self.subset |= dominated
            for a, b in dominated:  # transitive reduction: skip a ≤ c ≤ b
                if any((a, c) in dominated and (c, b) in dominated for c in qs if c not in (a, b)):
                    continue
                pairs.append((a, b, 1.0, 1.0))
        for ind_id, (lo, hi) in self.mean_range.items():
            t, r = self.roles[ind_id]["numerator"], self.roles[ind_id]["denominator"]
            pairs.append((t, r, 1.0, hi))  # T ≤ max · R
            if lo > 0:
                pairs.append((r, t, lo, 1.0))  # min · R ≤ T
            elif lo < 0:
                self.nonneg[t] = False
        va, vb, ca, cb = [], [], [], []
        for a, b, ka, kb in pairs:
            for part in self.parts:
                if a in part.offset and b in part.offset:
                    g = np.arange(part.n)
                    va.append(part.offset[a] + g)
                    vb.append(part.offset[b] + g)
                    ca.append(np.full(part.n, ka))
                    cb.append(np.full(part.n, kb))
        cat = np.concatenate
        self.dom_a = cat(va) if va else np.zeros(0, dtype=np.intp)
        self.dom_b = cat(vb) if vb else np.zeros(0, dtype=np.intp)
        self.dom_ca = cat(ca) if ca else np.zeros(0)
        self.dom_cb = cat(cb) if cb else np.zeros(0)

    # -- published rows: which variables each row of each table shows
    def _rows(self) -> None:
        import numpy as np
        import pandas as pd
        from scipy import sparse

        table_ids, positions, inds, labels, num_var, den_var = [], [], [], [], [], []
        self.tables = list(self.raw)
        lookups: dict[tuple[str, tuple[str, ...]], pd.Index] = {}
        for t_id, name in enumerate(self.tables):
            df = self.raw[name]
            ind_col = df["indicator_id"].to_numpy()
            row_keys: dict[tuple[str, ...], pd.Index] = {}  # the table's groups, once per keys
            for ind_id in pd.unique(ind_col):
                ind = self.indicators[ind_id]
                pos = np.flatnonzero(ind_col == ind_id)
                keys = self.cell_keys[(ind_id, name)]
                found = {}
                for role, q in self.roles[ind_id].items():
                    ds = self.q_dataset[q]
                    pid, mapping = self.part_of[(ds, keys)]
                    if keys:
                        if (ds, keys) not in lookups:
                            _, index, _ = self.tab.groups(ds, keys)
                            lookups[(ds, keys)] = _string_index(index, keys)
                        if keys not in row_keys:
                            row_keys[keys] = _string_index(df[list(keys)], keys)
                        g = lookups[(ds, keys)].get_indexer(row_keys[keys][pos])
                    else:
                        g = np.zeros(len(pos), dtype=np.intp)
                    if mapping is not None:
                        g = np.where(g >= 0, mapping[np.maximum(g, 0)], -1)
                    v = np.where(g >= 0, self.parts[pid].offset[q] + np.maximum(g, 0), -1)
                    found[role] = v
                    self._verify(name, df, pos, ind, role, v)
                table_ids.append(np.full(len(pos), t_id))
                positions.append(pos)
                inds.append(np.full(len(pos), ind_id, dtype=object))
                labels.append(df["suppression"].to_numpy()[pos])
                num_var.append(found.get("numerator", np.full(len(pos), -1)))
                den_var.append(found.get("denominator", np.full(len(pos), -1)))
        cat = np.concatenate
        self.row_table = cat(table_ids).astype(np.intp)
        self.row_pos = cat(positions).astype(np.intp)
        self.row_ind = cat(inds)
        self.row_label = cat(labels).astype(object)
        self.row_num = cat(num_var).astype(np.intp)
        self.row_den = cat(den_var).astype(np.intp)
        self.row_suppressed = self.row_label != ""
        n_rows = len(self.row_table)
        r = np.r_[np.arange(n_rows), np.arange(n_rows)]
        v = np.r_[self.row_num, self.row_den]
        ok = v >= 0
        self.row_var = sparse.csr_matrix(
            (np.ones(int(ok.sum())), (r[ok], v[ok])), shape=(n_rows, len(self.value))
        )
        self.var_rows = self.row_var.tocsc()

    def _verify(
        self, name: str, df: pd.DataFrame, pos: np.ndarray, ind: Indicator, role: str, v: np.ndarray
    ) -> None:
        """The engine's published numbers must be the sums of the quantities' row weights."""
        import numpy as np

        shown = df[role].to_numpy(dtype="float64")[pos]
        truth = np.where(v >= 0, self.value[np.maximum(v, 0)], 0.0)
        ok = np.isnan(shown) | np.isclose(shown, truth, rtol=1e-9, atol=1e-9)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise RuntimeError(
                f"disclosure model and indicator engine disagree: table {name}, indicator "
                f"{ind.id}, {role} {shown[i]!r} vs {truth[i]!r} (row {int(pos[i])})"
            )

    # -- audited quantities of primary cells
    def _coarser(self) -> None:
        """Every strictly coarser partition of each partition, with its group of each group."""
        import numpy as np

        self.coarser: dict[int, list[tuple[int, np.ndarray]]] = {}
        for fine, fp in enumerate(self.parts):
            for coarse, cp in enumerate(self.parts):
                if cp.dataset == fp.dataset and cp.closure < fp.closure:
                    parent = np.empty(fp.n, dtype=np.intp)
                    parent[fp.codes] = cp.codes
                    self.coarser.setdefault(fine, []).append((coarse, parent))

    def margins(self, var: int) -> list[int]:
        """The cells of the same quantity that contain cell ``var`` (coarser groupings)."""
        q, pid, g = int(self.var_q[var]), int(self.var_p[var]), int(self.var_g[var])
        return [self.parts[c].offset[q] + int(parent[g]) for c, parent in self.coarser.get(pid, ())]

    def set_targets(self, primary: np.ndarray, margin_ok: np.ndarray) -> None:
        """Audit the cells of rows ``primary``; ``margin_ok``: cells that are not sensitive.

        A cell's protection interval is capped by what its non-sensitive margins say on their
        own (each margin with everything inside it suppressed): that much is the margins'
        content, publishable as non-sensitive (whether or not it ends up suppressed as a
        complementary cell), not a disclosure by differencing.
        """
        import numpy as np

        self._coarser()
        self.targets: list[_Target] = []
        self._seen: set[tuple[str, tuple[int, ...]]] = set()
        fw = self.tab.framework
        for row in np.flatnonzero(primary):
            self._add_targets(int(row), fw, self._seen, margin_ok)
        self.n_primary_targets = len(self.targets)

    def add_group_targets(self, suppressed: np.ndarray) -> int:
        """Audit suppressed rows that are not primary for group disclosure; targets added.

        A secondary or complementary cell is not sensitive, so it needs no protection
        interval, but a suppressed cell of a proportion at 0% or 100% must not be shown to be
        so: a margin minus its published cells would tell that nobody (or everybody) in the
        suppressed cells has the attribute, which is the very statement suppression withholds.
        Its numerator (at 0%) or complement (at 100%) gets the protection interval ``[0, 1]``:
        the attacker must not rule out one person either way. Not capped by the margins: a
        published margin at 0% or 100% over a suppressed cell is suppressed too, as for a
        primary cell.
        """
        import numpy as np

        before = len(self.targets)
        for row in np.flatnonzero(suppressed):
            ind = self.indicators[self.row_ind[row]]
            n, d = int(self.row_num[row]), int(self.row_den[row])
            if ind.type not in ("proportion", "duration") or n < 0 or d < 0:
                continue
            if (self.var_q[n], self.var_q[d]) not in self.subset and ind.type != "duration":
                continue  # the numerator is a count of other rows: no 0% or 100% to tell
            N, D = float(self.value[n]), float(self.value[d])
            if D < 1:
                continue
            for kind, vs, cs, value in (
                ("numerator", [n], [1.0], N),
                ("complement", [d, n], [1.0, -1.0], D - N),
            ):
                key = (kind, tuple(vs))
                if value > 0 or key in self._seen:
                    continue
                self._seen.add(key)
                vars_ = np.array(vs, dtype=np.intp)
                big = float(self.big[self.var_q[vars_]].max())
                target = _Target(kind, vars_, np.array(cs), 0.0, 0.0, 1.0, int(row), big)
                self.targets.append(target)
        return len(self.targets) - before

    def _margin_cap(
        self, kind: str, ind: Indicator, n: int, d: int, margin_ok: np.ndarray
    ) -> tuple[float, float]:
        """(lowest, highest) the cell's quantity can be given each published margin alone."""
        value = self.value
        lo, hi = -math.inf, math.inf
        dens = self.margins(d) if d >= 0 else []
        for i, n_p in enumerate(self.margins(n)):
            d_p = dens[i] if dens else -1
            if not margin_ok[n_p]:
                continue
            has_d = d_p >= 0 and margin_ok[d_p]
            N_p = value[n_p]
            if kind == "numerator":
                hi = min(hi, N_p)
                if has_d:
                    lo = max(lo, N_p - (value[d_p] - value[d]))
            elif kind == "complement" and has_d:
                C_p = value[d_p] - N_p
                hi = min(hi, C_p)
                lo = max(lo, C_p - (value[d_p] - value[d]))
            elif kind == "count":
                hi = min(hi, N_p)
            elif kind == "total" and has_d:
                vlo, vhi = self.mean_range[ind.id]
                rest = value[d_p] - value[d]
                lo = max(lo, N_p - vhi * rest)
                hi = min(hi, N_p - vlo * rest)
        return lo, hi

    def _add_targets(
        self,
        row: int,
        fw: Framework,
        seen: set[tuple[str, tuple[int, ...]]],
        margin_ok: np.ndarray,
    ) -> None:
        import numpy as np

        ind = self.indicators[self.row_ind[row]]
        m = float(max(fw.cell_size(ind), 1))  # a labelled primary cell is at least not pinned
        n, d = int(self.row_num[row]), int(self.row_den[row])
        specs: list[tuple[str, list[int], list[float], float, float]] = []
        if ind.type in ("proportion", "duration") and n >= 0 and d >= 0:
            N, D = self.value[n], self.value[d]
            if (self.var_q[n], self.var_q[d]) in self.subset or ind.type == "duration":
                c = D - N
                specs.append(("numerator", [n], [1.0], max(0.0, N - m), min(N + m, D)))
                specs.append(("complement", [d, n], [1.0, -1.0], max(0.0, c - m), min(c + m, D)))
            else:
                lo = 0.0 if self.nonneg[self.var_q[n]] else -math.inf
                specs.append(("count", [n], [1.0], max(lo, N - m), N + m))
        elif ind.type in ("count", "rate") and n >= 0:
            N = self.value[n]
            lo = 0.0 if self.nonneg[self.var_q[n]] else -math.inf
            specs.append(("count", [n], [1.0], max(lo, N - m), N + m))
        elif ind.type == "mean" and n >= 0 and d >= 0:
            T, R = self.value[n], self.value[d]
            vlo, vhi = self.mean_range[ind.id]
            u = self.mean_unit[ind.id]
            specs.append(("total", [n], [1.0], max(vlo * R, T - m * u), min(vhi * R, T + m * u)))
        for kind, vs, cs, low, high in specs:
            key = (kind, tuple(vs))
            if key in seen:
                continue
            cap_lo, cap_hi = self._margin_cap(kind, ind, n, d, margin_ok)
            low, high = max(low, cap_lo), min(high, cap_hi)
            if kind in ("numerator", "complement") and self.value[d] >= 1:
                # never pinned to 0 nor to the full denominator, whatever the margins say:
                # that nobody or everybody in a small group has the attribute is the group
                # disclosure suppression exists to prevent
                high = max(high, 1.0)
            if high <= low:  # nothing left to hide (an empty cell, or its margins tell all)
                continue
            seen.add(key)
            vars_ = np.array(vs, dtype=np.intp)
            coefs = np.array(cs)
            value = float(coefs @ self.value[vars_])
            big = float(self.big[self.var_q[vars_]].max())
            self.targets.append(_Target(kind, vars_, coefs, value, low, high, row, big))

    def known_from_rows(self, shown: np.ndarray) -> np.ndarray:
        """Variables some shown row publishes."""
        import numpy as np

        return np.asarray((self.row_var.T @ shown.astype("float64")) > 0)

    def describe_row(self, row: int) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """(table, indicator, group) of a published row."""
        t_id = int(self.row_table[row])
        if not hasattr(self, "_groups_of"):
            self._groups_of: dict[int, list[tuple[tuple[str, str], ...]]] = {}
        if t_id not in self._groups_of:
            name = self.tables[t_id]
            df, by = self.raw[name], self.groupings[name]
            cols = [df[k].astype(str).tolist() for k in by]
            self._groups_of[t_id] = [
                tuple(zip(by, vals, strict=True)) for vals in zip(*cols, strict=True)
            ] or [()] * len(df)
        return self.tables[t_id], str(self.row_ind[row]), self._groups_of[t_id][self.row_pos[row]]


def _string_index(data: pd.Index | pd.DataFrame, keys: Sequence[str]) -> pd.Index:
    """Group keys as the engine prints them (strings, missing as "(missing)")."""
    import pandas as pd

    frame = (
        data.to_frame(index=False) if isinstance(data, pd.Index) else data.reset_index(drop=True)
    )
    cols = [frame[c].astype("string").fillna("(missing)") for c in frame.columns[: len(keys)]]
    if len(cols) == 1:
        return pd.Index(cols[0])
    return pd.MultiIndex.from_arrays(cols)


# ----------------------------------------------------------------------------- the audit


class _System:
    """The attacker's linear system for one set of known variables, split into blocks.

    ``targets`` (indices into ``model.targets``) become the rows of :attr:`T` over the free
    variables, with their known part in :attr:`const` and their block in :attr:`tblock`
    (−1 when the quantity is published: nothing is free).
    """

    def __init__(self, model: _Model, known: np.ndarray, targets: np.ndarray) -> None:
        import numpy as np
        from scipy import sparse
        from scipy.sparse.csgraph import connected_components

        self.model = model
        free = ~known
        self.free_vars = np.flatnonzero(free)
        nf = len(self.free_vars)
        pos = np.full(model.n_var, -1, dtype=np.intp)
        pos[self.free_vars] = np.arange(nf)
        value = model.value
        # equalities: relations with a free variable, known terms moved to the right
        rel = model.rel
        touches = (abs(rel) @ free.astype("float64")) > 0
        r = rel[touches]
        self.A_eq = r[:, self.free_vars].tocsr()
        self.b_eq = -(r[:, known] @ value[known])
        # inequalities and bounds from a·x_A ≤ b·x_B with one or both sides free
        lb = model.lower[self.free_vars].copy()
        ub = model.upper[self.free_vars].copy()
        fa, fb = free[model.dom_a], free[model.dom_b]
        both = fa & fb
        only_a = fa & ~fb
        only_b = fb & ~fa
        np.minimum.at(
            ub,
            pos[model.dom_a[only_a]],
            model.dom_cb[only_a] * value[model.dom_b[only_a]] / model.dom_ca[only_a],
        )
        np.maximum.at(
            lb,
            pos[model.dom_b[only_b]],
            model.dom_ca[only_b] * value[model.dom_a[only_b]] / model.dom_cb[only_b],
        )
        self.lb, self.ub = lb, ub
        nb = int(both.sum())
        ia, ib = pos[model.dom_a[both]], pos[model.dom_b[both]]
        self.A_ub = sparse.csr_matrix(
            (
                np.r_[model.dom_ca[both], -model.dom_cb[both]],
                (np.r_[np.arange(nb), np.arange(nb)], np.r_[ia, ib]),
            ),
            shape=(nb, nf),
        )
        # the audited quantities over the free variables
        t_rows, t_cols, t_vals, consts = [], [], [], np.zeros(len(targets))
        for j, i in enumerate(targets):
            t = model.targets[i]
            p = pos[t.vars]
            fr = p >= 0
            consts[j] = float(t.coefs[~fr] @ value[t.vars[~fr]])
            t_rows.append(np.full(int(fr.sum()), j))
            t_cols.append(p[fr])
            t_vals.append(t.coefs[fr])
        cat = np.concatenate
        tr = cat(t_rows) if t_rows else np.zeros(0, dtype=np.intp)
        tc = cat(t_cols) if t_cols else np.zeros(0, dtype=np.intp)
        self.T = sparse.csr_matrix(
            (cat(t_vals) if t_vals else np.zeros(0), (tr, tc)), shape=(len(targets), nf)
        )
        self.const = consts
        # blocks: free variables linked by a constraint or by one audited quantity
        eq_coo = self.A_eq.tocoo()
        first = np.full(self.A_eq.shape[0], -1, dtype=np.intp)
        first[eq_coo.row[::-1]] = eq_coo.col[::-1]
        t_first = np.full(len(targets), -1, dtype=np.intp)
        t_first[tr[::-1]] = tc[::-1]
        la = cat([eq_coo.col, ia, tc])
        lb_ = cat([first[eq_coo.row], ib, t_first[tr]])
        graph = sparse.coo_matrix((np.ones(len(la)), (la, lb_)), shape=(nf, nf))
        self.n_blocks, self.block = connected_components(graph, directed=False)
        self.tblock = np.where(t_first >= 0, self.block[np.maximum(t_first, 0)], -1)
        # rows and variables of each block, for quick extraction
        eq_block = self.block[first] if len(first) else np.zeros(0, dtype=np.intp)
        self.eq_order = np.argsort(eq_block, kind="stable")
        self.eq_start = np.searchsorted(eq_block[self.eq_order], np.arange(self.n_blocks + 1))
        ub_block = self.block[ia] if nb else np.zeros(0, dtype=np.intp)
        self.ub_order = np.argsort(ub_block, kind="stable")
        self.ub_start = np.searchsorted(ub_block[self.ub_order], np.arange(self.n_blocks + 1))
        self.var_order = np.argsort(self.block, kind="stable")
        self.var_start = np.searchsorted(self.block[self.var_order], np.arange(self.n_blocks + 1))
        self._local = np.full(nf, -1, dtype=np.intp)
        self.solves = 0
        self.seconds = 0.0

    def block_sizes(self, blocks: np.ndarray) -> np.ndarray:
        import numpy as np

        return np.asarray(self.var_start[blocks + 1] - self.var_start[blocks])

    def constraints(self, blocks: np.ndarray) -> int:
        return int(
            (self.eq_start[blocks + 1] - self.eq_start[blocks]).sum()
            + (self.ub_start[blocks + 1] - self.ub_start[blocks]).sum()
        )

    def solve(self, blocks: np.ndarray, c_free: np.ndarray) -> np.ndarray:
        """Minimise ``c_free · x`` over the variables of ``blocks`` (independent of each other).

        Returns the optimal point over all free variables (NaN outside ``blocks``). The
        blocks share no variable and no constraint, so this is one optimum per block.
        """
        import numpy as np
        from scipy import sparse

        cols = np.concatenate(
            [self.var_order[self.var_start[b] : self.var_start[b + 1]] for b in blocks]
        )
        n = len(cols)
        local = self._local
        local[cols] = np.arange(n)

        def part(
            A: sparse.csr_matrix, order: np.ndarray, start: np.ndarray
        ) -> tuple[sparse.csr_matrix, np.ndarray]:
            rows = np.concatenate([order[start[b] : start[b + 1]] for b in blocks])
            sub = A[rows]
            m = sparse.csr_matrix((sub.data, local[sub.indices], sub.indptr), shape=(len(rows), n))
            return m, rows

        A_eq, eq_rows = part(self.A_eq, self.eq_order, self.eq_start)
        A_ub, _ = part(self.A_ub, self.ub_order, self.ub_start)
        t0 = time.perf_counter()
        res = _linprog(
            c_free[cols],
            A_ub=A_ub if A_ub.shape[0] else None,
            b_ub=np.zeros(A_ub.shape[0]) if A_ub.shape[0] else None,
            A_eq=A_eq if A_eq.shape[0] else None,
            b_eq=self.b_eq[eq_rows] if A_eq.shape[0] else None,
            bounds=np.c_[self.lb[cols], self.ub[cols]],
            method="highs",
        )
        self.seconds += time.perf_counter() - t0
        self.solves += 1
        local[cols] = -1
        if res.status != 0:  # the true values are feasible and every bound is finite
            raise RuntimeError(f"disclosure audit: linear programme failed: {res.message}")
        x = np.zeros(len(local))
        x[cols] = res.x
        return x


class _Auditor:
    """Audits the targets of a model for growing sets of hidden rows (certificates persist)."""

    def __init__(self, model: _Model, exact: bool = False, seed: int = 20240613) -> None:
        import numpy as np

        self.model = model
        self.exact = exact
        self.rng = np.random.default_rng(seed)
        empty = np.zeros(0)
        self.t_low, self.t_high, self.t_big = empty, empty.copy(), empty.copy()
        self.tol_low, self.tol_high = empty.copy(), empty.copy()
        self.inner_lo, self.inner_hi = empty.copy(), empty.copy()
        self.low_ok = np.zeros(0, dtype=bool)
        self.high_ok = np.zeros(0, dtype=bool)
        self.low_x, self.high_x = empty.copy(), empty.copy()
        self.extend()
        self.solves = 0
        self.lp_seconds = 0.0
        self.stats = [0, 0, 0, 0]

    def extend(self) -> None:
        """Take in the targets the model gained since the last call (none certified yet)."""
        import numpy as np

        ts = self.model.targets[len(self.t_low) :]
        if not ts and len(self.t_low):
            return
        low = np.array([t.low for t in ts], dtype=float)
        high = np.array([t.high for t in ts], dtype=float)
        value = np.array([t.value for t in ts], dtype=float)
        tol_low = 1e-6 * np.maximum(1.0, np.abs(low))
        tol_high = 1e-6 * np.maximum(1.0, np.abs(high))
        cat = np.concatenate
        self.t_low, self.t_high = cat([self.t_low, low]), cat([self.t_high, high])
        self.t_big = cat([self.t_big, np.array([t.big for t in ts], dtype=float)])
        self.tol_low, self.tol_high = cat([self.tol_low, tol_low]), cat([self.tol_high, tol_high])
        # an interval the attacker's contains (the true value is always feasible), and the
        # sides of the protection interval the true value reaches already
        self.inner_lo, self.inner_hi = cat([self.inner_lo, value]), cat([self.inner_hi, value])
        self.low_ok = cat([self.low_ok, value <= low + tol_low])
        self.high_ok = cat([self.high_ok, value >= high - tol_high])
        self.low_x = cat([self.low_x, np.full(len(ts), np.nan)])  # exact bounds, where computed
        self.high_x = cat([self.high_x, np.full(len(ts), np.nan)])

    def run(self, known: np.ndarray) -> list[tuple[int, str, float]]:
        """Audit every target not yet certified on both sides (every target if ``exact``).

        Returns the failing sides as (target, "low" or "high", shortfall).
        """
        import numpy as np

        todo = (
            np.flatnonzero(~(self.low_ok & self.high_ok))
            if not self.exact
            else np.arange(len(self.model.targets))
        )
        # exact bounds of an earlier (smaller) suppression pattern are only inner bounds now:
        # the points that reached them are in ``inner_lo``/``inner_hi`` already
        self.low_x[:] = np.nan
        self.high_x[:] = np.nan
        if not len(todo):
            return []
        system = _System(self.model, known, todo)
        self._size(system)
        fixed = system.tblock < 0
        if fixed.any():  # published: the interval is the value itself
            self.low_x[todo[fixed]] = system.const[fixed]
            self.high_x[todo[fixed]] = system.const[fixed]
            self._certify(todo[fixed], system.const[fixed])
        if not self.exact:
            self._sweeps(system, todo)
        self._exact(system, todo)
        self.solves += system.solves
        self.lp_seconds += system.seconds
        failures = []
        for j in np.flatnonzero(~self.low_ok[todo] & ~np.isnan(self.low_x[todo])):
            i = int(todo[j])
            failures.append((i, "low", float(self.low_x[i] - self.t_low[i])))
        for j in np.flatnonzero(~self.high_ok[todo] & ~np.isnan(self.high_x[todo])):
            i = int(todo[j])
            failures.append((i, "high", float(self.t_high[i] - self.high_x[i])))
        return failures

    def _size(self, system: _System) -> None:
        import numpy as np

        blocks = np.unique(system.tblock[system.tblock >= 0])
        sizes = system.block_sizes(blocks)
        st = self.stats
        self.stats = [
            max(st[0], int(sizes.sum())),
            max(st[1], system.constraints(blocks)),
            max(st[2], len(blocks)),
            max(st[3], int(sizes.max(initial=0))),
        ]

    def _certify(self, idx: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Record feasible values ``x`` of targets ``idx``; which of them certified a side."""
        import numpy as np

        np.minimum.at(self.inner_lo, idx, x)
        np.maximum.at(self.inner_hi, idx, x)
        low = ~self.low_ok[idx] & (x <= self.t_low[idx] + self.tol_low[idx])
        high = ~self.high_ok[idx] & (x >= self.t_high[idx] - self.tol_high[idx])
        self.low_ok[idx[low]] = True
        self.high_ok[idx[high]] = True
        return np.asarray(low | high)

    def _evaluate(
        self, system: _System, todo: np.ndarray, blocks: np.ndarray, x: np.ndarray
    ) -> np.ndarray:
        """Certify what the point ``x`` reaches for every target of ``blocks``; new per target."""
        import numpy as np

        sel = np.flatnonzero(np.isin(system.tblock, blocks))
        vals = system.T[sel] @ x + system.const[sel]
        new = np.zeros(len(todo), dtype=bool)
        new[sel] = self._certify(todo[sel], vals)
        return new

    def _sweeps(self, system: _System, todo: np.ndarray) -> None:
        """Feasible points pushing every pending side of a block at once, down then up."""
        import numpy as np

        inblock = system.tblock >= 0
        active = {"down": np.ones(system.n_blocks, bool), "up": np.ones(system.n_blocks, bool)}
        for sweep in range(2 * _SWEEPS):
            direction = "down" if sweep % 2 == 0 else "up"
            ok = self.low_ok if direction == "down" else self.high_ok
            pend = inblock & ~ok[todo] & active[direction][np.maximum(system.tblock, 0)]
            if not pend.any():
                if not (active["down"].any() or active["up"].any()):
                    break
                continue
            sense = 1.0 if direction == "down" else -1.0
            w = sense * self.rng.uniform(1.0, 2.0, int(pend.sum()))
            c = np.asarray(system.T[np.flatnonzero(pend)].T @ w).ravel()
            blocks = np.unique(system.tblock[pend])
            x = system.solve(blocks, c)
            before = ok[todo].copy()
            self._evaluate(system, todo, blocks, x)
            gained = ok[todo] & ~before
            progress = np.bincount(system.tblock[gained], minlength=system.n_blocks) > 0
            active[direction][blocks] = progress[blocks]
            active[direction][~np.isin(np.arange(system.n_blocks), blocks)] = False

    def _exact(self, system: _System, todo: np.ndarray) -> None:
        """Minimise or maximise each side still open: the attacker's exact bound."""
        import numpy as np

        queues: dict[int, list[tuple[int, str]]] = {}
        for jj in np.flatnonzero(system.tblock >= 0):
            j, i = int(jj), int(todo[jj])
            q = queues.setdefault(int(system.tblock[j]), [])
            if self.exact or not self.low_ok[i]:
                q.append((j, "low"))
            if self.exact or not self.high_ok[i]:
                q.append((j, "high"))
        queues = {b: q for b, q in queues.items() if q}
        while queues:
            asked: list[tuple[int, int, str]] = []
            for b in list(queues):
                q = queues[b]
                while q and not self.exact:  # skip sides an earlier point certified
                    j, side = q[0]
                    if not (self.low_ok if side == "low" else self.high_ok)[todo[j]]:
                        break
                    q.pop(0)
                if not q:
                    del queues[b]
                    continue
                j, side = q.pop(0)
                asked.append((b, j, side))
            if not asked:
                break
            rows = np.array([a[1] for a in asked])
            sense = np.array([1.0 if a[2] == "low" else -1.0 for a in asked])
            c = np.asarray(system.T[rows].T @ sense).ravel()
            blocks = np.array([a[0] for a in asked])
            x = system.solve(blocks, c)
            vals = system.T[rows] @ x + system.const[rows]
            for (_b, j, side), v in zip(asked, vals, strict=True):
                i = int(todo[j])
                if side == "low":
                    self.low_x[i] = v
                else:
                    self.high_x[i] = math.inf if v >= self.t_big[i] * (1 - 1e-9) else v
            self._evaluate(system, todo, blocks, x)

    def refine_narrowest(self, known: np.ndarray, batch: int = 20, limit: int = 200) -> None:
        """Exact intervals for the narrowest certified targets, until the narrowest is exact.

        A certified interval lies inside the attacker's, so once the narrowest exact width is
        at most the next certified width, no other target can be narrower.
        """
        import numpy as np

        done = np.zeros(len(self.model.targets), dtype=bool)
        while True:
            exact = ~(np.isnan(self.low_x) | np.isnan(self.high_x))
            width = np.where(exact, self.high_x - self.low_x, self.inner_hi - self.inner_lo)
            order = np.argsort(width, kind="stable")
            best = order[exact[order]][:1]
            todo = order[~exact[order] & ~done[order]][:batch]
            if not len(todo) or done.sum() >= limit:
                return
            if len(best) and width[best[0]] <= width[todo[0]]:
                return
            system = _System(self.model, known, todo)
            fixed = system.tblock < 0
            self.low_x[todo[fixed]] = self.high_x[todo[fixed]] = system.const[fixed]
            was, self.exact = self.exact, True
            try:
                self._exact(system, todo)
            finally:
                self.exact = was
            self.solves += system.solves
            self.lp_seconds += system.seconds
            done[todo] = True

    def intervals(self) -> list[CellInterval]:
        """Every target's interval, as far as audited (exact where computed)."""
        import numpy as np

        out = []
        for i, t in enumerate(self.model.targets):
            name, ind, group = self.model.describe_row(t.row)
            exact = not (np.isnan(self.low_x[i]) or np.isnan(self.high_x[i]))
            lo = float(self.low_x[i]) if exact else float(self.inner_lo[i])
            hi = float(self.high_x[i]) if exact else float(self.inner_hi[i])
            if hi >= t.big * (1 - 1e-9):
                hi = math.inf
            out.append(
                CellInterval(
                    name,
                    ind,
                    group,
                    t.kind,
                    lo,
                    hi,
                    exact,
                    bool(self.low_ok[i] and self.high_ok[i]),
                )
            )
        return out


# ----------------------------------------------------------------------------- choosing cells


def _room(model: _Model, target: _Target, side: str, var: int) -> tuple[float, float]:
    """(room, cost) of hiding variable ``var`` for a target that fails on ``side``.

    Room: how much of the failing quantity the candidate cell could take or give (its
    numerator, complement, count or sum headroom); cost: the people it holds (its size).
    """
    ind = model.indicators[model.row_ind[target.row]]
    roles = model.roles[ind.id]
    pid, g = int(model.var_p[var]), int(model.var_g[var])
    part = model.parts[pid]

    def val(role: str) -> float | None:
        q = roles.get(role)
        if q is None or q not in part.offset:
            return None
        return float(model.value[part.offset[q] + g])

    n, d = val("numerator"), val("denominator")
    size = d if d is not None else (n if n is not None else float(model.value[var]))
    if n is None:
        return 0.0, size
    up = (side == "high") == (target.kind != "complement")  # the numerator must go up
    if target.kind in ("numerator", "complement"):
        room = n if up else (d - n if d is not None else 0.0)
    elif target.kind == "count":
        room = n if up else math.inf
    else:  # total of a mean
        lo, hi = model.mean_range[ind.id]
        rows = d or 0.0
        room = n - lo * rows if up else hi * rows - n
    return room, size


def _pick(
    model: _Model, t: _Target, scored: list[tuple[int, float, float, int]], deficit: float
) -> int:
    """The complementary cell among ``scored`` (variable, room, cost, shared) for a failing target.

    Groupings are tried in order: the target's own (its siblings in a margin), then finer and
    crossing ones, then coarser ones from the finest (a hidden margin costs the most and
    spreads); the first grouping whose cells together can make up the shortfall is used. In
    it, among the cells in the most of the target's relations (a facility in the same district
    *and* CLM arm frees both margins at once), the cheapest cell (fewest people) that makes up
    the shortfall alone, else the one that makes up most of it.
    """
    own = model.parts[int(model.var_p[t.vars[0]])].closure

    def order(v: int) -> tuple[int, int]:
        cl = model.parts[int(model.var_p[v])].closure
        tier = 0 if cl == own else (2 if cl < own else 1)
        return tier, -len(cl)

    groups: dict[tuple[int, int], list[tuple[int, float, float, int]]] = {}
    for s in scored:
        groups.setdefault(order(s[0]), []).append(s)
    chosen = next(
        (groups[k] for k in sorted(groups) if sum(s[1] for s in groups[k]) >= deficit - 1e-9),
        scored,
    )
    enough = [s for s in chosen if s[1] >= deficit - 1e-9]
    if enough:
        return min(enough, key=lambda s: (-s[3], s[2], s[0]))[0]
    return max(chosen, key=lambda s: (s[3], s[1], -s[2], -s[0]))[0]


def _elastic(
    model: _Model,
    auditor: _Auditor,
    t: _Target,
    side: str,
    known: np.ndarray,
    depth: int = 4,
) -> list[int]:
    """Published cells near a failing target whose values would have to give way, by LP.

    Within ``depth`` relation steps of the target, every published cell may deviate from its
    value at a cost per unit (its people, ten times more for a coarser margin than the
    target's grouping); the cheapest deviations that let the target reach its protection
    interval name the cells to suppress (the linear relaxation of optimal cell suppression,
    Fischetti and Salazar-González). Relations beyond ``depth`` are left out, so this may
    suppress too little; the audit that follows says. Empty when nothing nearby can do it.
    """
    import numpy as np
    from scipy import sparse

    rel, rel_csc = model.rel, model.rel_csc
    in_s = {int(v) for v in t.vars}
    frontier, rows = set(in_s), set[int]()
    for _ in range(depth):
        new_rows = set()
        for v in frontier:
            new_rows.update(rel_csc.indices[rel_csc.indptr[v] : rel_csc.indptr[v + 1]].tolist())
        new_rows -= rows
        rows |= new_rows
        frontier = set()
        for r in new_rows:
            frontier.update(v for v in rel.indices[rel.indptr[r] : rel.indptr[r + 1]].tolist())
        frontier -= in_s
        in_s |= frontier
        if not frontier:
            break
    if len(in_s) > 20_000:
        return []
    S = np.array(sorted(in_s), dtype=np.intp)
    n = len(S)
    local = {int(v): j for j, v in enumerate(S)}
    kn = np.flatnonzero(known[S])
    k = len(kn)
    own = model.parts[int(model.var_p[t.vars[0]])].closure
    size = np.array([_room(model, t, side, int(S[j]))[1] for j in kn], dtype=float) + 1.0
    coarse = np.array([model.parts[int(model.var_p[S[j]])].closure < own for j in kn])
    cost = size * np.where(coarse, 10.0, 1.0)
    R = rel[sorted(rows)][:, S] if rows else sparse.csr_matrix((0, n))
    pick_k = sparse.csr_matrix((np.ones(k), (np.arange(k), kn)), shape=(k, n))
    stacked: Any = sparse.vstack(
        [
            sparse.hstack([R, sparse.csr_matrix((R.shape[0], 2 * k))]),
            sparse.hstack([pick_k, -sparse.eye(k), sparse.eye(k)]),
        ]
    )
    A_eq = stacked.tocsr()
    b_eq = np.r_[np.zeros(R.shape[0]), model.value[S[kn]]]
    goal = np.zeros(n + 2 * k)
    for v, c in zip(t.vars, t.coefs, strict=True):
        goal[local[int(v)]] += c
    # the target reaches its protection interval: high side ≥ high, low side ≤ low
    a_ub = [(-goal, -t.high) if side == "high" else (goal, t.low)]
    inside = np.isin(model.dom_a, S) & np.isin(model.dom_b, S)
    for a, b, ca, cb in zip(
        model.dom_a[inside],
        model.dom_b[inside],
        model.dom_ca[inside],
        model.dom_cb[inside],
        strict=True,
    ):
        row = np.zeros(n + 2 * k)
        row[local[int(a)]] += ca
        row[local[int(b)]] -= cb
        a_ub.append((row, 0.0))
    bounds = np.r_[
        np.c_[model.lower[S], model.upper[S]], np.c_[np.zeros(2 * k), np.full(2 * k, np.inf)]
    ]
    started = time.perf_counter()
    res = _linprog(
        np.r_[np.zeros(n), cost, cost],
        A_ub=sparse.csr_matrix(np.array([r for r, _ in a_ub])),
        b_ub=np.array([b for _, b in a_ub]),
        A_eq=A_eq,
        b_eq=b_eq,
        bounds=bounds,
        method="highs",
    )
    auditor.solves += 1
    auditor.lp_seconds += time.perf_counter() - started
    if res.status != 0:
        return []
    moved = res.x[n : n + k] + res.x[n + k :]
    return [int(S[kn[j]]) for j in np.flatnonzero(moved > 1e-7)]


def _choose(
    model: _Model,
    auditor: _Auditor,
    failures: list[tuple[int, str, float]],
    known: np.ndarray,
) -> np.ndarray:
    """Rows to suppress next: for each failing side, a published cell in one of its relations."""
    import numpy as np

    rel, rel_csc = model.rel, model.rel_csc
    chosen_vars: set[int] = set()
    order = sorted(failures, key=lambda f: -f[2])
    for i, side, deficit in order:
        t = model.targets[i]
        # the cell itself is published somewhere (another table, another indicator)
        if known[t.vars].all():
            chosen_vars.update(int(v) for v in t.vars)
            continue
        frontier = set(int(v) for v in t.vars if not known[v])
        seen = set(frontier)
        pick = None
        scored: list[Any] = []
        for _depth in range(12):
            rels = set()
            for v in frontier:
                rels.update(rel_csc.indices[rel_csc.indptr[v] : rel_csc.indptr[v + 1]].tolist())
            if not rels:
                break
            cands, nxt = [], set()
            shared: dict[int, int] = {}  # relations of the frontier each candidate is in
            for r in rels:
                for v in rel.indices[rel.indptr[r] : rel.indptr[r + 1]].tolist():
                    if v in shared:
                        shared[v] += 1
                    if v in seen:
                        continue
                    seen.add(v)
                    if known[v]:
                        cands.append(v)
                        shared[v] = 1
                    else:
                        nxt.add(v)
            if cands:
                scored = [(v, *_room(model, t, side, v), shared[v]) for v in cands]
                # a cell chosen for another failure in this round may already make up for it
                if any(s[0] in chosen_vars and s[1] >= deficit - 1e-9 for s in scored):
                    pick = -1
                    break
                scored = [s for s in scored if s[0] not in chosen_vars]
            if cands and scored:
                pick = _pick(model, t, scored, deficit)
                break
            frontier = nxt | {v for v in cands if v in chosen_vars}
            if not frontier:
                break
        if pick is None:
            # bounded by a published quantity it is a subset of (or holds): hide that one
            mine = np.isin(model.dom_a, t.vars)
            other = np.isin(model.dom_b, t.vars)
            dom = np.r_[
                model.dom_b[mine & known[model.dom_b]], model.dom_a[other & known[model.dom_a]]
            ]
            if len(dom):
                pick = int(dom[np.argmin(model.value[dom])])
        own = model.parts[int(model.var_p[t.vars[0]])].closure
        if pick is not None and pick >= 0 and model.parts[int(model.var_p[pick])].closure < own:
            # a margin would be hidden: first ask which published cells nearby must give way
            nearby = _elastic(model, auditor, t, side, known)
            if nearby:
                chosen_vars.update(nearby)
                continue
        if pick is not None and pick >= 0:
            chosen_vars.add(pick)
    rows = np.zeros(len(model.row_table), dtype=bool)
    csc = model.var_rows
    for v in chosen_vars:
        rows[csc.indices[csc.indptr[v] : csc.indptr[v + 1]]] = True
    return rows


# ----------------------------------------------------------------------------- public API


def _summary(
    model: _Model,
    auditor: _Auditor,
    hidden: np.ndarray,
    started: float,
    exact: bool,
    intervals: list[CellInterval] | None = None,
) -> DisclosureAudit:
    import numpy as np

    intervals = auditor.intervals() if intervals is None else intervals
    failures = tuple(iv for iv in intervals if not iv.protected)
    finite = [iv for iv in intervals if iv.protected]
    narrowest = min(finite, key=lambda iv: (iv.width, not iv.exact, iv.table), default=None)
    label = model.row_label
    v, c, nb, lg = auditor.stats
    del np
    return DisclosureAudit(
        tables=tuple(model.tables),
        rows=len(label),
        suppressed_primary=int((label == "primary").sum()),
        suppressed_secondary=int((label == "secondary").sum()),
        suppressed_complementary=int((hidden & (label == "")).sum()),
        audited=model.n_primary_targets,
        audited_other=len(model.targets) - model.n_primary_targets,
        narrowest=narrowest,
        failures=failures,
        lp_variables=v,
        lp_constraints=c,
        lp_blocks=nb,
        largest_block=lg,
        lp_solves=auditor.solves,
        lp_seconds=auditor.lp_seconds,
        seconds=time.perf_counter() - started,
        exact=exact,
    )


def protect_tables(
    framework: Framework,
    tables: Mapping[str, pd.DataFrame],
    groupings: Mapping[str, Sequence[str]] | None = None,
    *,
    ci: str = "cluster",
    confidence: float | None = None,
    as_of: str | pd.Timestamp | None = None,
    max_rounds: int = 1000,
) -> ProtectedTables:
    """Compute every published indicator table, suppress until the audit passes, and blank.

    Parameters
    ----------
    framework, tables
        The validated framework and the country's canonical tables.
    groupings
        Table name → group columns; default :data:`PUBLISHED_GROUPINGS`. Every table a
        country publishes must be among them (the audit covers only these).
    ci, confidence, as_of
        As for :func:`clm_research.indicators.compute_indicators`.
    max_rounds
        Audit–suppress rounds before giving up.

    Returns
    -------
    ProtectedTables
        ``tables`` (name → indicator table; suppressed rows blanked, complementary cells
        labelled ``"complementary"``) and ``audit``, the summary of the final audit.

    Raises
    ------
    DisclosureError
        When no suppression pattern within ``max_rounds`` protects every primary cell.
    """

    groupings = dict(groupings or PUBLISHED_GROUPINGS)
    tab = Tabulation(framework, tables, ci, confidence, None, as_of)  # type: ignore[arg-type]
    raw = {name: tab.table(by, blank=False) for name, by in groupings.items()}
    t_model = time.perf_counter()
    model = _Model(tab, groupings, raw)
    primary = model.row_label == "primary"
    model.set_targets(primary, model.known_from_rows(~primary))
    hidden = model.row_suppressed.copy()
    model.add_group_targets(hidden & ~primary)
    auditor = _Auditor(model)
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be at least 1, got {max_rounds}")
    known = model.known_from_rows(~hidden)
    failures: list[tuple[int, str, float]] = []
    for _ in range(max_rounds):
        known = model.known_from_rows(~hidden)
        failures = auditor.run(known)
        if not failures:
            break
        add = _choose(model, auditor, failures, known) & ~hidden
        if not add.any():
            break
        hidden |= add
        if model.add_group_targets(add):  # a complementary cell at 0% or 100%
            auditor.extend()
    if not failures:
        auditor.refine_narrowest(known)
    audit = _summary(model, auditor, hidden, t_model, exact=False)
    if not audit.passed:
        raise DisclosureError(
            "the published tables would let an attacker work out suppressed cells, and "
            "complementary suppression could not prevent it:\n" + "\n".join(audit.lines()),
            audit,
        )
    out = {}
    added = hidden & ~model.row_suppressed
    for t_id, name in enumerate(model.tables):
        df = raw[name].copy()
        rows = model.row_pos[(model.row_table == t_id) & added]
        df.loc[df.index[rows], "suppression"] = COMPLEMENTARY
        df["suppressed"] = df["suppression"] != ""
        out[name] = blank_suppressed(df)
        _check_blank(name, out[name])
    return ProtectedTables(out, audit)


def _check_blank(name: str, df: pd.DataFrame) -> None:
    sup = df["suppressed"].to_numpy(dtype=bool)
    cols = [c for c in REVEALING_COLUMNS if c in df.columns]
    leak = df.loc[sup, cols].notna().any(axis=1)
    if leak.any():  # a programming error: never publish such a table
        raise RuntimeError(f"table {name}: a suppressed row still shows {cols}")


def audit_tables(
    framework: Framework,
    tables: Mapping[str, pd.DataFrame],
    published: Mapping[str, pd.DataFrame],
    groupings: Mapping[str, Sequence[str]] | None = None,
    *,
    ci: str = "cluster",
    confidence: float | None = None,
    as_of: str | pd.Timestamp | None = None,
    exact: bool = False,
) -> tuple[DisclosureAudit, list[CellInterval]]:
    """Audit tables as published: what an attacker holding all of them can derive.

    What is known is read from the published tables themselves (a row shows what its
    non-blank ``numerator``, ``denominator``, ``n``, estimate and interval give back), so a
    table that still shows ``n`` of a suppressed cell fails. The primary cells are those of the
    indicator rule and any row the publisher labelled ``"primary"``.

    Parameters
    ----------
    framework, tables
        The framework and the canonical tables the published ones were computed from (the
        truth the attacker is after).
    published
        Table name → the table as published (e.g. read back from its CSV).
    groupings
        Table name → group columns of each published table; default
        :data:`PUBLISHED_GROUPINGS`.
    exact
        Compute the attacker's exact interval of every audited quantity (two programmes each)
        instead of certifying the protection interval.

    Returns
    -------
    (DisclosureAudit, list of CellInterval)
        The summary and the interval of every audited quantity.
    """
    import numpy as np

    started = time.perf_counter()
    groupings = dict(groupings or PUBLISHED_GROUPINGS)
    missing = [n for n in published if n not in groupings]
    if missing:
        raise DisclosureError(
            f"published table(s) {missing} have no grouping; give their group columns in "
            "`groupings`"
        )
    tab = Tabulation(framework, tables, ci, confidence, None, as_of)  # type: ignore[arg-type]
    raw = {name: tab.table(groupings[name], blank=False) for name in published}
    model = _Model(tab, {n: groupings[n] for n in published}, raw)
    shown_num = np.zeros(len(model.row_table), dtype=bool)
    shown_den = np.zeros(len(model.row_table), dtype=bool)
    labelled = np.zeros(len(model.row_table), dtype=bool)
    suppressed = np.zeros(len(model.row_table), dtype=bool)  # labelled suppressed, any reason
    for t_id, name in enumerate(model.tables):
        pub = published[name]
        mine = raw[name]
        by = list(groupings[name])
        key = ["indicator_id", *by]
        left = mine[key].astype("string")
        right = pub[key].astype("string").assign(_pub=np.arange(len(pub)))
        where = left.merge(right, on=key, how="left")["_pub"].to_numpy()
        sel = model.row_table == t_id
        rows = np.flatnonzero(sel)
        pub_pos = where[model.row_pos[rows]]
        has = ~np.isnan(pub_pos.astype("float64"))
        idx = pub_pos[has].astype(np.intp)
        r = rows[has]

        def col(c: str, idx: np.ndarray = idx, pub: pd.DataFrame = pub) -> np.ndarray:
            if c not in pub.columns:
                return np.zeros(len(idx), dtype=bool)
            values = pub[c].to_numpy()[idx].astype("float64")
            return np.asarray(values == values)  # not NaN

        types = mine["type"].to_numpy()[model.row_pos[r]]
        n_is_num = np.isin(types, ("count", "rate"))
        num = col("numerator")
        den = col("denominator") | (col("n") & ~n_is_num)
        num |= col("n") & n_is_num
        est = col("estimate") | col("ci_low") | col("ci_high")
        num |= est & (den | (types == "count"))  # the estimate with its denominator
        den |= est & num & np.isin(types, ("proportion", "rate", "mean"))
        shown_num[r], shown_den[r] = num, den
        if "suppression" in pub.columns:
            label = pub["suppression"].astype("string").fillna("").to_numpy()[idx]
            labelled[r] = label == "primary"
            suppressed[r] = label != ""
        if "suppressed" in pub.columns:
            suppressed[r] |= pub["suppressed"].astype("boolean").fillna(False).to_numpy()[idx]
    primary = labelled | (model.row_label == "primary")
    known = np.zeros(model.n_var, dtype=bool)
    known[model.row_num[shown_num & (model.row_num >= 0)]] = True
    known[model.row_den[shown_den & (model.row_den >= 0)]] = True
    hidden = ~(shown_num | shown_den)
    model.set_targets(primary, model.known_from_rows(~primary))
    model.add_group_targets((hidden | suppressed) & ~primary)
    auditor = _Auditor(model, exact=exact)
    auditor.run(known)
    if not exact:
        auditor.refine_narrowest(known)
    intervals = auditor.intervals()
    return _summary(model, auditor, hidden, started, exact, intervals), intervals


def _linprog(c: np.ndarray, **constraints: Any) -> Any:
    """``scipy.optimize.linprog`` with sparse constraint matrices (HiGHS takes them; the type
    stubs list only dense arrays)."""
    from scipy.optimize import linprog

    solve: Any = linprog
    return solve(c, **constraints)
