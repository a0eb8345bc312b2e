"""The measurement framework (results chain) as data: typed, immutable, validated indicators.

The default framework lives in ``params/framework.yaml``; a country may override targets,
thresholds, labels and cell sizes, or add indicators, in ``params/countries/<code>.yaml``
under ``framework:``. Every filter is parsed with :mod:`clm_research.expressions` and checked
against the canonical data model, so a typo fails at load time with the file, the indicator,
the field and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clm_research.config.loader import read_yaml
from clm_research.derived import dataset_table, derived_sources
from clm_research.errors import FrameworkError
from clm_research.expressions import ExpressionError, check_against_table, columns, parse
from clm_research.paths import display_path, framework_path
from clm_research.schema import TABLES

__all__ = [
    "LEVELS",
    "AAAQ",
    "UNAIDS_DOMAINS",
    "INDICATOR_TYPES",
    "Level",
    "Thresholds",
    "Link",
    "DEFAULT_LAG",
    "Indicator",
    "Framework",
    "Availability",
    "resolve_availability",
    "load_framework",
    "parse_framework",
]

#: The results chain, in order.
LEVELS: tuple[str, ...] = ("inputs", "activities", "outputs", "outcomes", "impact")
#: Service dimensions used by the Global Fund for CLM.
AAAQ: tuple[str, ...] = ("availability", "accessibility", "acceptability", "quality")
#: UNAIDS value domains.
UNAIDS_DOMAINS: tuple[str, ...] = (
    "health_services",
    "community_systems",
    "enabling_environment",
    "policies_investments",
)
INDICATOR_TYPES: tuple[str, ...] = ("proportion", "mean", "median", "rate", "count", "duration")

Level = Literal["inputs", "activities", "outputs", "outcomes", "impact"]
AAAQDimension = Literal["availability", "accessibility", "acceptability", "quality"]
Domain = Literal[
    "health_services", "community_systems", "enabling_environment", "policies_investments"
]
IndicatorType = Literal["proportion", "mean", "median", "rate", "count", "duration"]
Direction = Literal["higher_is_better", "lower_is_better"]
DatasetName = Literal[
    "facilities", "organisations", "interviews", "observations", "issues", "routine", "outreach"
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Thresholds(_Frozen):
    """Red/amber/green cut-offs on the estimate's scale.

    For ``higher_is_better``: green at or above ``green``, amber at or above ``amber``, else
    red. For ``lower_is_better``: green at or below ``green``, amber at or below ``amber``.
    """

    green: float
    amber: float


#: Rounds between an upstream and a downstream indicator when a link does not say: the
#: following round (a problem resolved this quarter shows in next quarter's services).
DEFAULT_LAG = 1


class Link(_Frozen):
    """How one ``contributes_to`` link is tested: the lag and an optional filter on the upstream.

    Written in ``contributes_to`` as a mapping instead of a plain id, e.g.
    ``{to: wait_time_mean, lag: 1, where: "category == 'waiting_time'"}``: the share of
    *waiting-time* issues resolved in one round, against the mean waiting time in the next.
    """

    to: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Downstream indicator id")
    lag: int = Field(
        DEFAULT_LAG,
        ge=0,
        le=8,
        description="Rounds from upstream to downstream (0 = same round)",
    )
    where: str | None = Field(
        None,
        min_length=1,
        description="Filter on the upstream indicator's rows (e.g. one issue category)",
    )


def _split_link_entries(data: Any) -> Any:
    """Split ``contributes_to`` entries written as mappings (``to``, ``lag``, ``where``).

    The ids stay in ``contributes_to`` (what the study-design chain reads); the options go to
    ``links``. An explicit ``links`` entry (a country's change of a lag) wins over the mapping
    in ``contributes_to`` for the same target.
    """
    if not isinstance(data, dict) or "contributes_to" not in data:
        return data
    entries = data["contributes_to"]
    if entries is None or isinstance(entries, str) or not isinstance(entries, list | tuple):
        return data  # let field validation report the type
    ids: list[Any] = []
    options: dict[str, Any] = {}
    for entry in entries:
        if isinstance(entry, dict):
            target = entry.get("to")
            ids.append(target)
            if isinstance(target, str):
                options[target] = entry
        else:
            ids.append(entry)
    explicit = data.get("links") or ()
    if isinstance(explicit, list | tuple):
        for entry in explicit:
            target = entry.get("to") if isinstance(entry, dict) else getattr(entry, "to", None)
            if isinstance(target, str):
                options[target] = entry
    out = dict(data)
    out["contributes_to"] = ids
    out["links"] = list(options.values())
    return out


class Indicator(_Frozen):
    """One indicator of the framework, defined once, as data."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=3)
    short_label: str = Field(
        "", description="A few words naming the indicator mid-sentence (report headlines)"
    )
    description: str = ""
    level: Level
    aaaq: AAAQDimension | None = None
    unaids_domain: Domain
    dataset: DatasetName
    type: IndicatorType
    numerator: str | None = Field(
        None, description="Filter of rows counted (within the denominator)"
    )
    numerator_sum: str | None = Field(None, description="Column summed instead of counting rows")
    denominator: str | None = Field(None, description="Filter of the rows in scope (default: all)")
    denominator_sum: str | None = Field(None, description="Column summed as denominator")
    denominator_dataset: DatasetName | None = Field(
        None, description="For rates: dataset whose rows (or sums) form the denominator"
    )
    value: str | None = Field(None, description="Value column for mean and median")
    start: str | None = Field(None, description="Start date column for duration")
    end: str | None = Field(None, description="End date column for duration (empty = censored)")
    unit: str = ""
    disaggregations: tuple[str, ...] = ()
    direction: Direction
    target: float | None = None
    thresholds: Thresholds | None = None
    min_cell_size: int | None = Field(None, ge=0, le=1000)
    contributes_to: tuple[str, ...] = Field(
        (), description="Indicator ids this one leads to (the results chain)"
    )
    links: tuple[Link, ...] = Field(
        (),
        description="Lag and upstream filter of contributes_to links written as mappings",
    )
    source: str = ""

    @model_validator(mode="before")
    @classmethod
    def _split_links(cls, data: Any) -> Any:
        """Accept ``contributes_to`` entries written as mappings (see :func:`_split_link_entries`)."""
        return _split_link_entries(data)

    @model_validator(mode="after")
    def _fields_for_type(self) -> Indicator:
        need: dict[str, tuple[str, ...]] = {
            "proportion": (),
            "mean": ("value",),
            "median": ("value",),
            "rate": (),
            "count": (),
            "duration": ("start", "end"),
        }
        for name in need[self.type]:
            if getattr(self, name) is None:
                raise ValueError(f"field {name!r} is required for a {self.type} indicator")
        if self.type in ("proportion", "rate", "count") and not (
            self.numerator or self.numerator_sum
        ):
            raise ValueError(f"a {self.type} indicator needs 'numerator' or 'numerator_sum'")
        if self.type == "rate" and not (self.denominator_sum or self.denominator_dataset):
            raise ValueError("a rate needs 'denominator_sum' or 'denominator_dataset'")
        if self.type != "rate" and self.denominator_dataset is not None:
            raise ValueError("'denominator_dataset' is only for rates")
        targets = list(self.contributes_to)
        for target in targets:
            if targets.count(target) > 1:
                raise ValueError(f"contributes_to lists {target!r} twice")
        for link in self.links:
            if link.to not in targets:
                raise ValueError(
                    f"links: {link.to!r} has options but is not in contributes_to "
                    f"({', '.join(targets) or 'empty'})"
                )
        if self.thresholds is not None:
            g, a = self.thresholds.green, self.thresholds.amber
            if self.direction == "higher_is_better" and g < a:
                raise ValueError(f"higher_is_better needs green >= amber (got {g} < {a})")
            if self.direction == "lower_is_better" and g > a:
                raise ValueError(f"lower_is_better needs green <= amber (got {g} > {a})")
        return self

    def link(self, target: str) -> Link:
        """The link to ``target`` with its lag and filter (defaults when written as a plain id).

        Raises
        ------
        KeyError
            When this indicator does not contribute to ``target``.
        """
        if target not in self.contributes_to:
            raise KeyError(
                f"indicator {self.id!r} does not contribute to {target!r}; it contributes to: "
                f"{', '.join(self.contributes_to) or '(nothing)'}"
            )
        for link in self.links:
            if link.to == target:
                return link
        return Link(to=target, lag=DEFAULT_LAG, where=None)

    @property
    def chain_links(self) -> tuple[Link, ...]:
        """Every outgoing link, in ``contributes_to`` order, with its lag and filter."""
        return tuple(self.link(t) for t in self.contributes_to)

    @property
    def filters(self) -> dict[str, str]:
        """The filter fields that are set, by field name."""
        return {k: v for k in ("numerator", "denominator") if (v := getattr(self, k)) is not None}

    @property
    def columns_used(self) -> dict[str, set[str]]:
        """Columns read, by dataset (the denominator dataset may differ)."""
        own: set[str] = set()
        den: set[str] = set()
        if self.numerator:
            own |= columns(parse(self.numerator))
        if self.denominator:
            (den if self.denominator_dataset else own).update(columns(parse(self.denominator)))
        for f in ("numerator_sum", "value", "start", "end"):
            if (c := getattr(self, f)) is not None:
                own.add(c)
        if self.denominator_sum:
            (den if self.denominator_dataset else own).add(self.denominator_sum)
        out: dict[str, set[str]] = {self.dataset: own}
        if self.denominator_dataset:
            out.setdefault(self.denominator_dataset, set()).update(den)
        return out


class Framework(_Frozen):
    """A validated set of indicators (the results chain)."""

    name: str
    version: int = 1
    min_cell_size: int = Field(10, ge=0, le=1000)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    indicators: tuple[Indicator, ...]

    def indicator(self, indicator_id: str) -> Indicator:
        """Return the indicator ``indicator_id`` (``KeyError`` listing the known ids)."""
        for ind in self.indicators:
            if ind.id == indicator_id:
                return ind
        raise KeyError(
            f"unknown indicator {indicator_id!r}; known: {', '.join(i.id for i in self.indicators)}"
        )

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.indicators)

    def by_level(self, level: str) -> tuple[Indicator, ...]:
        """Indicators at one level of the results chain."""
        return tuple(i for i in self.indicators if i.level == level)

    def cell_size(self, indicator: Indicator) -> int:
        """The indicator's minimum cell size, or the framework default."""
        return self.min_cell_size if indicator.min_cell_size is None else indicator.min_cell_size

    def columns_used(self, dataset: str, include_derived: bool = False) -> set[str]:
        """Every column of ``dataset`` some indicator reads (filters, values, sums, dates).

        Parameters
        ----------
        dataset
            A canonical table name.
        include_derived
            Also list derived columns (``district``, ``clm_active``…, see
            :mod:`clm_research.derived`); by default only columns the raw table must carry.
        """
        used: set[str] = set()
        for ind in self.indicators:
            used |= ind.columns_used.get(dataset, set())
            if ind.dataset == dataset:
                used |= set(ind.disaggregations)
        if not include_derived:
            used &= set(TABLES[dataset].column_names)
        return used


def _check_indicator(ind: Indicator, all_ids: set[str]) -> None:
    """Semantic checks against the data model; raises (field, message)."""
    own = dataset_table(ind.dataset)
    den = dataset_table(ind.denominator_dataset) if ind.denominator_dataset else own
    for field_name in ("numerator", "denominator"):
        text = getattr(ind, field_name)
        if text is None:
            continue
        table = den if field_name == "denominator" else own
        try:
            check_against_table(parse(text), table)
        except ExpressionError as e:
            raise _FieldProblem(field_name, str(e)) from None
    numeric = ("integer", "float")
    for field_name, table, kinds in (
        ("numerator_sum", own, numeric),
        ("denominator_sum", den, numeric),
        ("value", own, numeric),
        ("start", own, ("date",)),
        ("end", own, ("date",)),
    ):
        col = getattr(ind, field_name)
        if col is None:
            continue
        if col not in table:
            raise _FieldProblem(
                field_name,
                f"unknown column {col!r} in dataset {table.name!r}; known columns: "
                f"{', '.join(table.column_names)}",
            )
        if table.column(col).dtype not in kinds:
            raise _FieldProblem(
                field_name,
                f"column {col!r} is {table.column(col).dtype}; needs {' or '.join(kinds)}",
            )
    for col in ind.disaggregations:
        if col not in own:
            raise _FieldProblem(
                "disaggregations",
                f"unknown column {col!r} in dataset {own.name!r}; known columns: "
                f"{', '.join(own.column_names)}",
            )
    for target in ind.contributes_to:
        if target not in all_ids:
            raise _FieldProblem("contributes_to", f"unknown indicator {target!r}")
        if target == ind.id:
            raise _FieldProblem("contributes_to", "an indicator cannot contribute to itself")
    for link in ind.links:
        if link.where is None:
            continue
        try:
            check_against_table(parse(link.where), own)
        except ExpressionError as e:
            raise _FieldProblem("contributes_to", f"link to {link.to!r}, 'where': {e}") from None


class _FieldProblem(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _pydantic_problem(err: ValidationError) -> tuple[str, str]:
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"]) or "(indicator)"
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        fields = ", ".join(Indicator.model_fields)
        msg = f"unknown field (misspelt?); allowed fields: {fields}"
    elif e["type"] == "literal_error":
        msg = f"{msg} (got {e.get('input')!r})"
    elif e["type"] == "missing":
        msg = "required field is missing"
    return loc, msg.removeprefix("Value error, ")


def _link_problem(
    item: dict[str, Any], err: ValidationError, loc: str, msg: str
) -> tuple[str, str]:
    """Name a bad link option by its target, as written under ``contributes_to``."""
    e = err.errors()[0]
    if not e["loc"] or e["loc"][0] != "links" or len(e["loc"]) < 2:
        return loc, msg
    split = _split_link_entries(item)
    links = split.get("links") if isinstance(split, dict) else None
    pos = e["loc"][1]
    target = "?"
    if isinstance(links, list) and isinstance(pos, int) and pos < len(links):
        entry = links[pos]
        target = entry.get("to", "?") if isinstance(entry, dict) else "?"
    option = ".".join(str(p) for p in e["loc"][2:]) or "(link)"
    if e["type"] == "extra_forbidden":
        msg = f"unknown option; a link may set {', '.join(Link.model_fields)}"
    return "contributes_to", f"link to {target!r}, option {option!r}: {msg}"


def parse_framework(
    data: object,
    source: str = "<framework>",
    changes: dict[str, Any] | None = None,
    changes_source: str = "<country>",
) -> Framework:
    """Validate a framework given as plain data, optionally with a country's changes.

    Parameters
    ----------
    data
        The parsed ``framework.yaml``: ``name``, optional ``min_cell_size``/``confidence``
        and ``indicators`` (a list of mappings).
    source
        File name used in error messages.
    changes
        A country's ``framework:`` block: ``overrides`` (indicator id → fields to replace) and
        ``indicators`` (extra indicators).
    changes_source
        File name of the changes, for error messages.

    Raises
    ------
    FrameworkError
        Naming the file, the indicator id and the field, and saying what is allowed.
    """
    if not isinstance(data, dict) or not isinstance(data.get("indicators"), list):
        raise FrameworkError(f"{source}: expected a mapping with a list under 'indicators'")
    raw = [(dict(i) if isinstance(i, dict) else i, source) for i in data["indicators"]]
    changes = changes or {}
    extra = changes.get("indicators") or []
    raw += [(dict(i) if isinstance(i, dict) else i, changes_source) for i in extra]
    ids = [i.get("id") if isinstance(i, dict) else None for i, _ in raw]
    for pos, (item, src) in enumerate(raw):
        if not isinstance(item, dict):
            raise FrameworkError(f"{src}: indicator #{pos + 1} is not a mapping of fields")
    seen: set[str] = set()
    for ind_id, (_, src) in zip(ids, raw, strict=True):
        if ind_id is None:
            continue  # a missing id is reported with its position when the indicator is validated
        if ind_id in seen:
            raise FrameworkError(
                f"{src}: indicator {ind_id!r} is defined twice; ids must be unique"
            )
        seen.add(ind_id)
    overrides = changes.get("overrides") or {}
    allowed_override = {
        "label",
        "short_label",
        "description",
        "target",
        "thresholds",
        "min_cell_size",
        "disaggregations",
        "unit",
        "links",
    }
    for ind_id, fields in overrides.items():
        if ind_id not in seen:
            raise FrameworkError(
                f"{changes_source}: override for unknown indicator {ind_id!r}; known: {', '.join(sorted(seen))}"
            )
        bad = set(fields) - allowed_override
        if bad:
            raise FrameworkError(
                f"{changes_source}: indicator {ind_id!r}, field {sorted(bad)[0]!r}: a country may "
                f"override only {', '.join(sorted(allowed_override))} (add a new indicator instead)"
            )
        for item, _ in raw:
            if item.get("id") == ind_id:
                item.update(fields)
    indicators: list[Indicator] = []
    for pos, (item, src) in enumerate(raw):
        label = item.get("id") or f"#{pos + 1}"
        try:
            indicators.append(Indicator.model_validate(item))
        except ValidationError as e:
            loc, msg = _pydantic_problem(e)
            loc, msg = _link_problem(item, e, loc, msg)
            raise FrameworkError(f"{src}: indicator {label!r}, field {loc!r}: {msg}") from None
    all_ids = {i.id for i in indicators}
    for ind, (_, src) in zip(indicators, raw, strict=True):
        try:
            _check_indicator(ind, all_ids)
        except _FieldProblem as p:
            raise FrameworkError(f"{src}: indicator {ind.id!r}, field {p.field!r}: {p}") from None
    # Keys starting with "_" hold YAML anchors (shared disaggregation lists), not settings.
    top = {k: v for k, v in data.items() if k != "indicators" and not k.startswith("_")}
    try:
        return Framework.model_validate({**top, "indicators": tuple(indicators)})
    except ValidationError as e:
        loc, msg = _pydantic_problem(e)
        raise FrameworkError(f"{source}: field {loc!r}: {msg}") from None


def _read_yaml(path: Path) -> object:
    return read_yaml(path, what="framework file", error=FrameworkError)


@cache
def _load(path: Path, mtime: float, country: str | None, country_mtime: float) -> Framework:
    data = _read_yaml(path)
    changes = None
    country_src = "<country>"
    if country is not None:
        from clm_research.config.country import load_country

        params = load_country(country)
        changes = params.framework.model_dump()
        country_src = f"params/countries/{country}.yaml"
    return parse_framework(
        data, source=display_path(path), changes=changes, changes_source=country_src
    )


def load_framework(country: str | None = None, path: Path | None = None) -> Framework:
    """Load the framework, with a country's overrides and extra indicators when given.

    Parameters
    ----------
    country
        Country code; its ``params/countries/<code>.yaml`` ``framework:`` block is applied.
    path
        Framework file; default ``params/framework.yaml``.

    Returns
    -------
    Framework
        Immutable; loading the same unchanged files twice returns the same object.

    Raises
    ------
    FrameworkError
        When a file is missing or any indicator is invalid (file, indicator id, field).
    """
    path = (path or framework_path()).resolve()
    mtime = path.stat().st_mtime if path.exists() else 0.0
    cmtime = 0.0
    if country is not None:
        from clm_research.paths import countries_dir

        cpath = countries_dir() / f"{country}.yaml"
        cmtime = cpath.stat().st_mtime if cpath.exists() else 0.0
    return _load(path, mtime, country, cmtime)


def known_datasets() -> tuple[str, ...]:
    """Names of the datasets an indicator can use."""
    return tuple(TABLES)


@dataclass(frozen=True)
class Availability:
    """Which indicators of a framework a country's data can give, and why the others cannot.

    A country collects any non-empty subset of the canonical tables and, within a table, may
    not collect some optional columns (absent from its processed table). An indicator is
    computable when every dataset it reads is present and every column it reads (filters,
    values, sums, dates; derived columns through the columns they are made from) is collected.
    Disaggregations never block an indicator: a grouping column the data lack is reported as
    :data:`clm_research.indicators.ALL`.

    Attributes
    ----------
    computable
        Indicator ids that can be computed, in framework order.
    not_computed
        Indicator id -> the reason (``"not collected: no observations table"``,
        ``"column `on_art` not collected"``), in framework order.
    tables
        The canonical tables present.
    not_collected
        Table -> optional columns absent from it (present tables only).
    """

    computable: tuple[str, ...]
    not_computed: dict[str, str] = field(default_factory=dict)
    tables: tuple[str, ...] = ()
    not_collected: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def tables_not_collected(self) -> tuple[str, ...]:
        """Canonical tables the country does not collect."""
        return tuple(t for t in TABLES if t not in self.tables)

    def lines(self) -> list[str]:
        """One line per indicator not computed: ``id: reason``."""
        return [f"{i}: {why}" for i, why in self.not_computed.items()]


def _columns_of(value: Any) -> set[str]:
    cols = getattr(value, "columns", value)
    return {str(c) for c in cols}


def resolve_availability(
    framework: Framework,
    tables: Mapping[str, Any],
    indicators: Iterable[str] | None = None,
) -> Availability:
    """Resolve which of ``framework``'s indicators the data in ``tables`` can give.

    Parameters
    ----------
    framework
        The validated framework.
    tables
        Canonical table name -> the table (a DataFrame) or its column names. An absent table,
        or an absent column of a present table, is "not collected".
    indicators
        Indicator ids to resolve, in this order; default every indicator of the framework.

    Returns
    -------
    Availability
        The computable indicators and the reason for each of the others.
    """
    present = {name: _columns_of(v) for name, v in tables.items() if name in TABLES}
    wanted = (
        framework.indicators
        if indicators is None
        else tuple(framework.indicator(i) for i in indicators)
    )
    ok: list[str] = []
    missing: dict[str, str] = {}
    for ind in wanted:
        reasons: list[str] = []
        for dataset, cols in ind.columns_used.items():
            if dataset not in present:
                reasons.append(f"not collected: no {dataset} table")
                continue
            for col in sorted(cols):
                if col in present[dataset]:
                    continue
                sources = derived_sources(dataset, col)
                if not sources:
                    reasons.append(f"column `{col}` not collected")
                    continue
                for table_name, source in sources:
                    if table_name not in present:
                        reasons.append(f"column `{col}` not available: no {table_name} table")
                        break
                    if source not in present[table_name]:
                        reasons.append(
                            f"column `{col}` not available: `{table_name}.{source}` not collected"
                        )
                        break
        if reasons:
            missing[ind.id] = "; ".join(dict.fromkeys(reasons))
        else:
            ok.append(ind.id)
    not_collected = {
        name: tuple(c for c in TABLES[name].column_names if c not in cols)
        for name, cols in present.items()
    }
    return Availability(
        computable=tuple(ok),
        not_computed=missing,
        tables=tuple(t for t in TABLES if t in present),
        not_collected={k: v for k, v in not_collected.items() if v},
    )
