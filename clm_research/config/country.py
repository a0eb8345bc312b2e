"""Country parameters: one typed, validated model for every ``params/countries/<code>.yaml``.

``params/countries/`` is the single source of truth for the list of countries. Unknown or
misspelt keys are an error (papermill itself only warns), values are checked, and paths
given in a params file must stay inside the project.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from clm_research.config.loader import load_model, validate_model
from clm_research.errors import ParamsError
from clm_research.paths import countries_dir, display_path
from clm_research.periods import check_iso_date, check_month, check_period, check_round

__all__ = [
    "DemoSpec",
    "BoundarySpec",
    "CountryParams",
    "NotebookParameters",
    "SynthesisParameters",
    "ProjectPath",
    "check_project_path",
    "check_period",
    "notebook_parameters",
    "FrameworkChanges",
    "load_country",
    "list_countries",
    "CountryCode",
    "RoundCode",
    "MonthCode",
    "IsoDate",
]
# ISO 3166-1 user-assigned codes usable for fictional countries (XK avoided: used for Kosovo).
_USER_ASSIGNED = re.compile(r"^(AA|Q[M-Z]|X[A-JL-Z]|ZZ)$")


def check_project_path(value: str) -> str:
    """Accept only a relative path that stays inside the project.

    A parameters file may name files (e.g. district boundaries), but never an absolute path,
    a home-relative path or one that climbs out with ``..``: a report must be reproducible
    from the project folder alone.

    Raises
    ------
    ValueError
        Naming the offending path and the rule it breaks.
    """
    text = str(value).strip()
    if not text:
        raise ValueError("path is empty")
    if text.startswith("~"):
        raise ValueError(f"path {text!r} must be relative to the project, not to a home folder")
    if (
        PurePosixPath(text).is_absolute()
        or PureWindowsPath(text).is_absolute()
        or text[:1] in "/\\"
    ):
        raise ValueError(f"path {text!r} is absolute; give a path relative to the project root")
    parts = re.split(r"[/\\]", text)
    if ".." in parts:
        raise ValueError(f"path {text!r} climbs out with '..'; paths must stay inside the project")
    return text


#: A path from a parameters file: relative to the project root, no ``..``, not absolute.
ProjectPath = Annotated[str, AfterValidator(check_project_path)]


def _check_code(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{2}", value):
        raise ValueError(f"country code must be two capital letters, got {value!r}")
    return value


#: A two-letter country code (demo countries use ISO user-assigned codes: XA, XB, …).
CountryCode = Annotated[str, AfterValidator(_check_code)]
#: A CLM round (quarter), e.g. ``2024Q1``.
RoundCode = Annotated[str, AfterValidator(check_round)]
#: A reporting month, e.g. ``2024-03``.
MonthCode = Annotated[str, AfterValidator(check_month)]
#: A calendar date written ``YYYY-MM-DD`` (YAML may give it unquoted, as a date).
IsoDate = Annotated[str, BeforeValidator(check_iso_date)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DemoSpec(_Strict):
    """How the synthetic generator builds a fictional demo country (``clm demo-data``)."""

    seed: int = Field(ge=0, description="Random seed: same seed, same data")
    facilities: int = Field(60, ge=8, le=5000)
    regions: int = Field(3, ge=1, le=20)
    districts: int = Field(8, ge=2, le=100)
    interviews_per_round: int = Field(30, ge=5, le=500, description="Per facility and round")
    first_round: RoundCode = "2023Q1"
    rounds: int = Field(8, ge=2, le=40)
    routine_first_month: MonthCode = "2022-01"
    routine_months: int = Field(36, ge=12, le=240)
    waves: int = Field(3, ge=1, le=6, description="Staggered CLM roll-out waves")
    comparison_share: float = Field(0.3, ge=0.1, le=0.9)
    organisations: int = Field(5, ge=1, le=50)
    outreach_sites: int = Field(12, ge=1, le=2000)
    centre: tuple[float, float] = Field(
        (-12.0, -28.0), description="(longitude, latitude) of the fictional island"
    )


class BoundarySpec(_Strict):
    """Where a country's district boundaries come from and which features are its districts.

    Boundary files often hold several administrative levels (country, regions, districts,
    sub-districts) with the name in a property of their own (``area_name``, ``ADM2_EN``…):
    the map draws only the features the filter keeps and joins them to the data on their
    names, compared after normalisation (case, spaces, accents, punctuation).
    """

    file: ProjectPath = Field(description="GeoJSON file, relative to the project root")
    district_property: str | None = Field(
        None,
        description="Feature property holding the district name (default: the first of "
        "district, name, NAME)",
    )
    filter: str | None = Field(
        None,
        description="Which features are districts, in the filter language over the features' "
        'properties, e.g. "area_level == 4" or "type == \'district\'" (default: all)',
    )


class FrameworkChanges(_Strict):
    """A country's changes to the default framework: overrides and extra indicators."""

    overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="indicator id -> fields to replace (target, thresholds, min_cell_size, label)",
    )
    indicators: list[dict[str, Any]] = Field(
        default_factory=list, description="extra indicators, same fields as params/framework.yaml"
    )


class CountryParams(_Strict):
    """Everything a run needs to know about one country."""

    code: CountryCode = Field(
        description="Two-letter code; demo countries use user-assigned codes (XA…)"
    )
    name: str
    demo: DemoSpec | None = Field(None, description="Present for synthetic demo countries")
    baseline_round: RoundCode = Field(description="First round: the baseline of progress tables")
    period: RoundCode = Field(description="Reporting round, e.g. 2024Q4")
    as_of: IsoDate | None = Field(
        None, description="Data extraction date (YYYY-MM-DD); open issues are censored here"
    )
    min_cell_size: int = Field(10, ge=1, le=100, description="Default small-cell threshold")
    quarantine_max_share: float = Field(
        0.05, ge=0, le=1, description="Gate fails above this share of quarantined rows"
    )
    framework: FrameworkChanges = Field(default_factory=FrameworkChanges)
    district_boundaries: ProjectPath | None = Field(
        None,
        description="District boundaries (GeoJSON) for the maps, relative to the project root; "
        "default data/raw/<code>/districts.geojson",
    )
    boundaries: BoundarySpec | None = Field(
        None,
        description="District boundaries with the property holding the district name and a "
        "filter choosing the district features (instead of district_boundaries)",
    )
    notebooks: tuple[str, ...] | None = Field(
        None,
        description="Evaluation notebooks to run (file stems, e.g. 02_service_quality); "
        "default: all of notebooks/evaluation/",
    )
    plan: ProjectPath | None = Field(
        None,
        description="Pre-registered analysis plan (e.g. params/plans/<study>.yaml, relative to "
        "the project root): the report runs exactly it and lists every deviation",
    )

    @field_validator("plan")
    @classmethod
    def _plan(cls, v: str | None) -> str | None:
        if v is not None and not v.endswith((".yaml", ".yml")):
            raise ValueError(f"plan {v!r} must be a YAML file (params/plans/<study>.yaml)")
        return v

    @model_validator(mode="after")
    def _demo_codes_are_fictional(self) -> CountryParams:
        if self.demo is not None and not _USER_ASSIGNED.match(self.code):
            raise ValueError(
                f"a synthetic demo country must use an ISO 3166 user-assigned code (AA, QM-QZ, "
                f"XA-XZ except XK, ZZ), never a real country's code; got {self.code!r}"
            )
        return self

    @model_validator(mode="after")
    def _one_boundary_source(self) -> CountryParams:
        if self.boundaries is not None and self.district_boundaries is not None:
            raise ValueError(
                "give either district_boundaries (a file) or boundaries (file, "
                "district_property, filter), not both"
            )
        return self

    @property
    def is_demo(self) -> bool:
        return self.demo is not None


class NotebookParameters(_Strict):
    """The values the runner injects into every evaluation notebook's ``parameters`` cell.

    The field names are exactly the names assigned in each notebook's cell tagged
    ``parameters`` (a test checks this), so a misspelt or unknown parameter is an error
    here instead of papermill's mere warning.
    """

    country: CountryCode = Field(description="Country code, e.g. XA")
    period: RoundCode = Field(description="Reporting round, e.g. 2024Q4")
    output_dir: ProjectPath = Field(
        ".",
        description="Where the notebook writes its tables, relative to the kernel's working "
        "directory (the runner starts the kernel in the report's temporary folder)",
    )
    seed: int = Field(20240101, ge=0, description="Seed for anything random (bootstrap, jitter)")


class SynthesisParameters(_Strict):
    """The values injected into the multi-country synthesis notebook's ``parameters`` cell."""

    countries: list[CountryCode] = Field(description="Countries pooled (each with a good report)")
    period: RoundCode = Field(description="Reporting round, e.g. 2024Q4")
    output_dir: ProjectPath = Field(".", description="Where the notebook writes its tables")
    seed: int = Field(20240101, ge=0)

    @field_validator("countries")
    @classmethod
    def _countries(cls, v: list[str]) -> list[str]:
        return sorted(v)


def notebook_parameters(
    params: CountryParams, period: str | None = None, **overrides: Any
) -> NotebookParameters:
    """Build the validated notebook parameters for one country and period.

    Parameters
    ----------
    params
        The country's validated parameters.
    period
        Reporting round; defaults to ``params.period``.
    **overrides
        Other notebook parameters (``output_dir``, ``seed``); unknown names are an error.

    Raises
    ------
    ParamsError
        When a value breaks a rule or a name is not a notebook parameter.
    """
    values: dict[str, Any] = {"country": params.code, "period": period or params.period}
    values.update(overrides)
    return validate_model(NotebookParameters, values, f"notebook parameters for {params.code}")


def load_country(code: str, directory: Path | None = None) -> CountryParams:
    """Load and validate ``params/countries/<code>.yaml``.

    Raises
    ------
    ParamsError
        When the file is missing, is not YAML, or breaks a rule; the message names the file,
        the field and the rule.
    """
    directory = directory or countries_dir()
    path = directory / f"{code}.yaml"
    if not path.is_file():
        known = ", ".join(list_countries(directory)) or "none"
        raise ParamsError(
            f"no parameters for country {code!r} ({display_path(path)}); known countries: {known}"
        )
    return _load(path)


@cache
def _load_cached(path: Path, mtime: float) -> CountryParams:
    params = load_model(path, CountryParams, what="country parameters")
    if params.code != path.stem:
        raise ParamsError(
            f"{display_path(path)}: code {params.code!r} does not match the file name "
            f"{path.stem!r} [rule: code_matches_file]"
        )
    return params


def _load(path: Path) -> CountryParams:
    return _load_cached(path.resolve(), path.stat().st_mtime)


def list_countries(directory: Path | None = None) -> list[str]:
    """The country codes with a parameters file, sorted."""
    directory = directory or countries_dir()
    return sorted(p.stem for p in directory.glob("*.yaml"))
