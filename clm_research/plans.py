"""Analysis plans: a pre-registered study written as ``params/plans/<study>.yaml`` and honoured.

The study-design notebook ``05_analysis_plan`` writes the plan before any outcome data are
looked at; the evaluation reports load it, run exactly it, and list every deviation
(:func:`check_deviations`) so readers can see what was decided in advance and what was not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clm_research.config.loader import load_model
from clm_research.errors import ParamsError
from clm_research.paths import display_path, params_dir

__all__ = [
    "ChainLink",
    "DESIGNS",
    "COMPARISON_GROUPS",
    "ESTIMATORS",
    "ESTIMATORS_BY_DESIGN",
    "ITS_FAMILIES",
    "AnalysisPlan",
    "plans_dir",
    "plan_path",
    "write_plan",
    "load_plan",
    "validate_indicators",
    "check_deviations",
]

#: Study designs a plan can name (see notebook ``02_choosing_a_design``).
DESIGNS: tuple[str, ...] = ("pre_post", "its", "did", "stepped_wedge", "cluster_rct")
#: Who CLM facilities are compared with.
COMPARISON_GROUPS: tuple[str, ...] = (
    "none",  # pre/post and single-series ITS: each facility is its own control
    "never_monitored",  # facilities without CLM during the study (clm_start empty)
    "not_yet_monitored",  # staggered roll-out: later waves serve as controls until they start
    "randomised_control",  # cluster RCT control arm
)

#: Estimators a plan can name, each with what it runs (the plan's ``model`` text only describes).
ESTIMATORS: dict[str, str] = {
    "callaway_santanna": "Callaway & Sant'Anna (2021) difference-in-differences, errors clustered "
    "by facility",
    "twfe": "two-way fixed effects (facility and period), errors clustered by facility",
    "event_study": "two-way fixed-effects event study (leads and lags of CLM start), errors "
    "clustered by facility",
    "gee": "client-level GEE (exchangeable correlation within facility, Mancl–DeRouen errors), "
    "round and CLM-facility terms",
    "its": "segmented regression of the first CLM wave's series (level and slope change at the "
    "start of CLM)",
    "controlled_its": "controlled interrupted time series: the first CLM wave's series against "
    "the never-monitored facilities' series",
    "pre_post": "facility-level change from the first to the last round (t-interval; minus the "
    "comparison facilities' change when there are any)",
    "two_group": "facility-level means in the last round, CLM vs randomised control (Welch "
    "t-interval)",
}
#: Which estimators fit which design.
ESTIMATORS_BY_DESIGN: dict[str, tuple[str, ...]] = {
    "did": ("callaway_santanna", "twfe", "event_study", "gee"),
    "stepped_wedge": ("twfe", "callaway_santanna", "event_study", "gee"),
    "its": ("its", "controlled_its"),
    "pre_post": ("pre_post",),
    "cluster_rct": ("two_group", "gee"),
}
#: Families of an interrupted time series (empty: chosen from the indicator's type).
ITS_FAMILIES: tuple[str, ...] = ("quasipoisson", "poisson", "negbin", "ols")

Estimator = Literal[
    "callaway_santanna",
    "twfe",
    "event_study",
    "gee",
    "its",
    "controlled_its",
    "pre_post",
    "two_group",
]

_ROUND = re.compile(r"^\d{4}Q[1-4]$")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class ChainLink(BaseModel):
    """A results-chain link named as a secondary hypothesis: ``upstream`` → ``downstream``.

    The link must be declared in the framework (``contributes_to``); ``lag`` (rounds) replaces
    the framework's lag when given.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    upstream: str
    downstream: str
    lag: int | None = Field(None, ge=0, le=8)

    @property
    def name(self) -> str:
        """``upstream → downstream`` (the plan's and the deviations' name of the link)."""
        return f"{self.upstream} → {self.downstream}"


class AnalysisPlan(BaseModel):
    """A pre-specified analysis of one CLM study (frozen; unknown fields are an error).

    Attributes
    ----------
    study_id
        Short identifier, lower case with underscores; also the file name.
    question
        The research question in one or two plain sentences.
    design
        ``pre_post``, ``its``, ``did``, ``stepped_wedge`` or ``cluster_rct``.
    primary_indicator, secondary_indicators
        Indicator ids of the measurement framework.
    chain_links
        Results-chain links (``upstream``, ``downstream``, optional ``lag``) tested as secondary
        hypotheses, exactly as the chain analysis of the report tests them; each must be a
        ``contributes_to`` link of the framework.
    comparison_group
        ``none``, ``never_monitored``, ``not_yet_monitored`` or ``randomised_control``.
    first_round, last_round
        Time window of the analysis (rounds such as ``2023Q1``).
    estimator
        The estimator run, one of :data:`ESTIMATORS` that fits the design
        (:data:`ESTIMATORS_BY_DESIGN`); validated when the plan is loaded.
    model
        The statistical model in words, stated in advance (e.g. "two-way fixed effects, errors
        clustered by facility"); a description for readers, never parsed.
    its_family, harmonics
        For interrupted time series: the family (``quasipoisson``, ``poisson``, ``negbin``,
        ``ols``; default from the indicator: counts and proportions quasi-Poisson, means OLS)
        and the number of sine/cosine pairs for seasonality (default 2 for monthly series,
        none for rounds).
    alpha
        Two-sided significance level.
    minimum_detectable_effect
        The smallest effect the study is powered to detect, in the primary indicator's units
        (minutes, or a proportion on the 0–1 scale), signed in the expected direction.
    power
        The power the sample size was chosen for.
    countries
        Country codes the plan covers.
    registered_on, registered_on_reason
        The date the plan was fixed and, when the file was written later, why.
    planned_power, power_warning
        The power of the study as planned (notebook ``05_analysis_plan``) and, when it is below
        ``power``, the warning given at registration.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    study_id: str = Field(description="Short id, lower case with underscores (the file name)")
    title: str = Field("", description="Optional human-readable title")
    question: str = Field(min_length=10, description="The research question, plainly")
    design: Literal["pre_post", "its", "did", "stepped_wedge", "cluster_rct"]
    primary_indicator: str
    secondary_indicators: tuple[str, ...] = ()
    chain_links: tuple[ChainLink, ...] = Field(
        (), description="Results-chain links tested as secondary hypotheses"
    )
    comparison_group: Literal["none", "never_monitored", "not_yet_monitored", "randomised_control"]
    first_round: str
    last_round: str
    estimator: Estimator = Field(description="The estimator run (see ESTIMATORS)")
    model: str = Field(min_length=3, description="The model in words (not parsed)")
    its_family: Literal["quasipoisson", "poisson", "negbin", "ols"] | None = None
    harmonics: int | None = Field(None, ge=0, le=6)
    alpha: float = Field(0.05, gt=0, lt=0.5)
    minimum_detectable_effect: float
    power: float = Field(0.8, gt=0, lt=1)
    countries: tuple[str, ...] = Field(min_length=1)
    registered_on: date | None = Field(None, description="Date the plan was fixed")
    registered_on_reason: str = Field(
        "", description="Why registered_on is earlier than the day the plan was written"
    )
    planned_power: float | None = Field(
        None, ge=0, le=1, description="Power of the study as planned, under the stated assumptions"
    )
    power_warning: str = Field(
        "", description="In words, when planned_power is below the target power"
    )
    notes: str = ""

    @field_validator("study_id")
    @classmethod
    def _study_id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"must be lower case letters, digits and underscores, got {v!r}")
        return v

    @field_validator("first_round", "last_round")
    @classmethod
    def _round(cls, v: str) -> str:
        if not _ROUND.match(v):
            raise ValueError(f"round must look like 2024Q1, got {v!r}")
        return v

    @field_validator("countries")
    @classmethod
    def _countries(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for c in v:
            if not re.fullmatch(r"[A-Z]{2}", c):
                raise ValueError(f"country code must be two capital letters, got {c!r}")
        if len(set(v)) != len(v):
            raise ValueError("a country is listed twice")
        return v

    @field_validator("minimum_detectable_effect")
    @classmethod
    def _mde(cls, v: float) -> float:
        if v == 0:
            raise ValueError("must not be zero (give the smallest effect worth detecting)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> AnalysisPlan:
        if self.first_round > self.last_round:
            raise ValueError(
                f"first_round {self.first_round} is after last_round {self.last_round}"
            )
        if self.primary_indicator in self.secondary_indicators:
            raise ValueError("the primary indicator is also listed as secondary")
        if len(set(self.secondary_indicators)) != len(self.secondary_indicators):
            raise ValueError("a secondary indicator is listed twice")
        names = [link.name for link in self.chain_links]
        if len(set(names)) != len(names):
            raise ValueError("a chain link is listed twice")
        if self.design in ("pre_post", "its") and self.comparison_group not in (
            "none",
            "never_monitored",
        ):
            raise ValueError(
                f"design {self.design!r} cannot use comparison_group {self.comparison_group!r}"
            )
        if (
            self.design in ("did", "stepped_wedge", "cluster_rct")
            and self.comparison_group == "none"
        ):
            raise ValueError(f"design {self.design!r} needs a comparison group")
        if self.design == "cluster_rct" and self.comparison_group != "randomised_control":
            raise ValueError("a cluster RCT compares with its randomised_control arm")
        allowed = ESTIMATORS_BY_DESIGN[self.design]
        if self.estimator not in allowed:
            raise ValueError(
                f"estimator {self.estimator!r} does not fit design {self.design!r}; "
                f"use one of {', '.join(allowed)}"
            )
        if self.estimator == "its" and self.comparison_group != "none":
            raise ValueError(
                "estimator 'its' has no comparison series: use comparison_group 'none', or "
                "estimator 'controlled_its' with 'never_monitored'"
            )
        if self.estimator == "controlled_its" and self.comparison_group != "never_monitored":
            raise ValueError("estimator 'controlled_its' compares with 'never_monitored'")
        if (self.its_family is not None or self.harmonics is not None) and self.design != "its":
            raise ValueError("its_family and harmonics apply only to design 'its'")
        return self

    @property
    def indicators(self) -> tuple[str, ...]:
        """Primary then secondary indicator ids."""
        return (self.primary_indicator, *self.secondary_indicators)


def plans_dir() -> Path:
    """``params/plans/``: one ``<study_id>.yaml`` per analysis plan."""
    return params_dir() / "plans"


def plan_path(study_id: str, directory: Path | None = None) -> Path:
    """Where the plan of ``study_id`` lives."""
    return (directory or plans_dir()) / f"{study_id}.yaml"


def validate_indicators(plan: AnalysisPlan, source: str = "plan") -> None:
    """Check that every indicator of the plan exists in each country's framework.

    Raises
    ------
    ParamsError
        Naming the file (``source``), the field and the unknown id.
    """
    from clm_research.config.country import list_countries
    from clm_research.framework import load_framework

    known_countries = list_countries()
    for country in plan.countries:
        if country not in known_countries:
            raise ParamsError(
                f"{source}: countries: no parameters for country {country!r} "
                f"(params/countries/); known: {', '.join(known_countries) or 'none'}"
            )
        ids = set(load_framework(country).ids)
        for field, values in (
            ("primary_indicator", (plan.primary_indicator,)),
            ("secondary_indicators", plan.secondary_indicators),
        ):
            for v in values:
                if v not in ids:
                    raise ParamsError(
                        f"{source}: {field}: unknown indicator {v!r} in the framework of "
                        f"{country}; known: {', '.join(sorted(ids))}"
                    )
        declared = {
            (ind.id, target)
            for ind in load_framework(country).indicators
            for target in ind.contributes_to
        }
        for link in plan.chain_links:
            if (link.upstream, link.downstream) not in declared:
                raise ParamsError(
                    f"{source}: chain_links: {link.name} is not a contributes_to link of the "
                    f"framework of {country} [rule: declared_link]"
                )


def write_plan(plan: AnalysisPlan, path: str | Path | None = None) -> Path:
    """Write the plan as YAML (default ``params/plans/<study_id>.yaml``) and return the path.

    The indicators are checked against the framework first, so a written plan always loads.
    """
    path = Path(path) if path is not None else plan_path(plan.study_id)
    if path.suffix == "" or path.is_dir():
        path = path / f"{plan.study_id}.yaml"
    validate_indicators(plan, str(path))
    data = plan.model_dump(mode="json")
    header = (
        f"# Analysis plan {plan.study_id}: written by notebooks/study_design/05_analysis_plan.\n"
        "# Fixed before outcome data are analysed; evaluation reports flag any deviation.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    return path


def load_plan(path_or_study: str | Path, *, check_framework: bool = True) -> AnalysisPlan:
    """Load and validate a plan: a path to a YAML file, or a study id in ``params/plans/``.

    Raises
    ------
    ParamsError
        When the file is missing, not YAML, has unknown or invalid fields, or names an
        indicator that is not in the framework; the message names the file and the field.
    """
    p = Path(path_or_study)
    if p.suffix not in (".yaml", ".yml"):
        p = plan_path(str(path_or_study))
    if not p.is_file():
        known = sorted(x.stem for x in p.parent.glob("*.yaml")) if p.parent.is_dir() else []
        raise ParamsError(
            f"no analysis plan at {display_path(p)}; known plans: {', '.join(known) or 'none'}"
        )
    plan = load_model(p, AnalysisPlan, what="analysis plan")
    if check_framework:
        validate_indicators(plan, display_path(p))
    return plan


def _as_mapping(run_config: Any) -> dict[str, Any]:
    if isinstance(run_config, Mapping):
        return dict(run_config)
    if isinstance(run_config, BaseModel):
        return run_config.model_dump()
    if hasattr(run_config, "__dict__"):
        return {k: v for k, v in vars(run_config).items() if not k.startswith("_")}
    raise TypeError(
        f"run_config must be a mapping or an object with attributes, got {type(run_config)}"
    )


def _norm(v: Any) -> Any:
    if isinstance(v, list | tuple | set | frozenset):
        return tuple(sorted(str(x) for x in v))
    if isinstance(v, date):
        return v.isoformat()
    return v


def check_deviations(plan: AnalysisPlan, run_config: Any) -> list[str]:
    """Compare what a run actually did with the plan; one plain sentence per deviation.

    Parameters
    ----------
    plan
        The pre-registered plan.
    run_config
        What the run used: a mapping (or object) with any of the plan's field names, e.g.
        ``{"design": "did", "primary_indicator": "wait_time_median", "first_round": "2023Q1",
        "last_round": "2024Q4", "countries": ["XA"]}``. Fields the run does not report are not
        compared; the order of list fields does not matter; numbers are compared with a
        relative tolerance of 1e-9. Secondary indicators the run did not analyse, and extra
        ones it added, are both reported. Unknown keys are reported as not in the plan.

    Returns
    -------
    list of str
        Empty when the run followed the plan.

    Examples
    --------
    >>> plan = AnalysisPlan(study_id="demo", question="Does CLM shorten waiting times?",
    ...     design="did", primary_indicator="wait_time_median", comparison_group="never_monitored",
    ...     first_round="2023Q1", last_round="2024Q4", estimator="twfe",
    ...     model="two-way fixed effects",
    ...     minimum_detectable_effect=-10, countries=("XA",))
    >>> check_deviations(plan, {"design": "did", "last_round": "2024Q3"})
    ["last_round: planned '2024Q4', run used '2024Q3'"]
    """
    run = _as_mapping(run_config)
    out: list[str] = []
    planned = plan.model_dump()
    for key, used in run.items():
        if key not in planned:
            out.append(f"{key}: not part of the plan (run used {used!r})")
            continue
        want = planned[key]
        if key == "secondary_indicators":
            want_s, used_s = set(want), set(used or ())
            if missing := sorted(want_s - used_s):
                out.append(f"secondary_indicators: planned but not analysed: {', '.join(missing)}")
            if extra := sorted(used_s - want_s):
                out.append(f"secondary_indicators: analysed but not planned: {', '.join(extra)}")
            continue
        if isinstance(want, float) and isinstance(used, int | float) and not isinstance(used, bool):
            if abs(want - used) <= 1e-9 * max(abs(want), abs(used), 1.0):
                continue
        elif _norm(want) == _norm(used):
            continue
        out.append(f"{key}: planned {_norm(want)!r}, run used {_norm(used)!r}")
    return out
