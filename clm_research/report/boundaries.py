"""District boundaries of a country's maps: which features are districts, and joining them by name.

A boundary file often holds every administrative level (country, regions, districts,
sub-districts) and names its features in a property of its own (``area_name``, ``ADM2_EN``…).
A country's parameters say which file, which property holds the district name and which
features are districts (``boundaries: {file, district_property, filter}``; the filter is written
in the framework's filter language over the features' properties, e.g. ``area_level == 4``).
Only those features are drawn.

Names in the data and in the boundary file rarely agree to the letter (``Nkhata Bay``,
``NKHATA-BAY``, ``Nkhatabay``…): they are joined after :func:`normalise_name` (case, accents,
punctuation and spaces ignored), and the districts of the data that match no feature are listed,
never silently dropped.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clm_research.errors import ParamsError
from clm_research.paths import display_path, project_root, raw_dir

if TYPE_CHECKING:
    import pandas as pd

    from clm_research.config.country import CountryParams

__all__ = [
    "DEFAULT_NAME_PROPERTIES",
    "DistrictShapes",
    "DistrictMatch",
    "estimates_by_feature",
    "normalise_name",
    "read_boundaries",
    "country_boundaries",
    "boundary_path",
]

#: Properties tried, in order, when a country does not name its district-name property.
DEFAULT_NAME_PROPERTIES: tuple[str, ...] = ("district", "name", "NAME")

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_name(name: object) -> str:
    """A place name compared without case, accents, punctuation or spacing.

    >>> normalise_name("  Nkhata-Bay ") == normalise_name("NKHATA BAY") == normalise_name("Nkhatá bay")
    True
    >>> normalise_name("Lilongwe City") == normalise_name("Lilongwe")
    False
    """
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return _NOT_ALNUM.sub(" ", text).strip()


@dataclass
class DistrictShapes:
    """The district features of a boundary file.

    Attributes
    ----------
    frame
        A GeoDataFrame with ``district`` (the name as written in the file), ``key``
        (:func:`normalise_name` of it) and ``geometry``, one row per chosen feature.
    source
        The file, as shown to readers (relative to the project).
    name_property, filter
        The property read as the district name, and the filter that chose the features.
    features_in_file
        How many features the file holds (before the filter).
    """

    frame: Any
    source: str
    name_property: str
    filter: str | None
    features_in_file: int

    def match(self, districts: Iterable[object]) -> DistrictMatch:
        """Which of ``districts`` (names as in the data) have a feature, joined on normalised names."""
        keys = set(self.frame["key"])
        names = sorted({str(d) for d in districts if d is not None and d == d})
        matched = {d: normalise_name(d) for d in names if normalise_name(d) in keys}
        unmatched = [d for d in names if d not in matched]
        used = set(matched.values())
        no_data = [str(n) for n, k in zip(self.frame["district"], self.frame["key"], strict=True)]
        no_data = [n for n in no_data if normalise_name(n) not in used]
        return DistrictMatch(matched, unmatched, no_data)


@dataclass
class DistrictMatch:
    """The join of the data's district names to the boundary features."""

    #: data name -> normalised key of its feature
    matched: dict[str, str] = field(default_factory=dict)
    #: data names with no feature (not drawn; listed in the figure's note and alt text)
    unmatched: list[str] = field(default_factory=list)
    #: feature names with no data
    no_data: list[str] = field(default_factory=list)

    def note(self, source: str) -> str:
        """A sentence for readers naming the districts of the data that are not on the map."""
        if not self.unmatched:
            return ""
        n = len(self.unmatched)
        return (
            f"{n} district{'s' if n != 1 else ''} of the data match{'' if n != 1 else 'es'} "
            f"no boundary in {source} and {'are' if n != 1 else 'is'} not on the map: "
            f"{', '.join(self.unmatched)}."
        )

    def warn(self, source: str) -> None:
        """Warn (once per call) about the districts of the data that are not on the map."""
        if self.unmatched:
            warnings.warn(self.note(source), UserWarning, stacklevel=3)


def read_boundaries(
    path: Path,
    district_property: str | None = None,
    filter: str | None = None,
    *,
    where: str = "",
) -> DistrictShapes:
    """Read the district features of a GeoJSON boundary file.

    Parameters
    ----------
    path
        The boundary file.
    district_property
        The property holding the district name (default: the first of
        :data:`DEFAULT_NAME_PROPERTIES` present).
    filter
        Which features are districts, in the filter language over the properties
        (e.g. ``area_level == 4``); default all.
    where
        What to name in messages (the parameters file and key).

    Raises
    ------
    ParamsError
        The file is missing, the property or a filter column does not exist, the filter is
        not valid, nothing is left after the filter, or two chosen features share a name (the
        file holds several levels and the filter does not pick one).
    """
    import geopandas as gpd

    from clm_research.expressions import ExpressionError, columns, evaluate, parse

    shown = display_path(path)
    where = where or shown
    if not path.is_file():
        raise ParamsError(
            f"{where}: boundary file {shown} not found. Fix: put the district boundaries "
            "(GeoJSON) there or correct boundaries.file in the country's parameters."
        )
    shapes = gpd.read_file(path)
    props = [c for c in shapes.columns if c != "geometry"]
    if district_property is None:
        district_property = next((c for c in DEFAULT_NAME_PROPERTIES if c in props), None)
        if district_property is None:
            raise ParamsError(
                f"{where}: {shown} has no district, name or NAME property; its properties are "
                f"{', '.join(props)}. Fix: set boundaries.district_property."
            )
    elif district_property not in props:
        raise ParamsError(
            f"{where}: boundaries.district_property {district_property!r} is not a property of "
            f"{shown}; its properties are {', '.join(props)}."
        )
    total = len(shapes)
    if filter:
        try:
            expr = parse(filter)
            unknown = sorted(columns(expr) - set(props))
            if unknown:
                raise ExpressionError(
                    f"unknown propert{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
                    f"the features have {', '.join(props)}"
                )
            keep = evaluate(expr, shapes.drop(columns="geometry"))
        except ExpressionError as e:
            raise ParamsError(f"{where}: boundaries.filter {filter!r}: {e}") from None
        shapes = shapes[keep.to_numpy(dtype=bool)]
    if shapes.empty:
        raise ParamsError(
            f"{where}: boundaries.filter {filter!r} keeps none of the {total} features of {shown}."
        )
    frame = gpd.GeoDataFrame(
        {
            "district": shapes[district_property].astype(str).to_numpy(),
            "key": [normalise_name(v) for v in shapes[district_property]],
        },
        geometry=shapes.geometry.to_numpy(),
        crs=shapes.crs,
    )
    dup = frame["key"][frame["key"].duplicated()].unique().tolist()
    if dup:
        names = frame.loc[frame["key"].isin(dup), "district"].unique().tolist()
        level = next((c for c in props if "level" in c.lower()), None)
        hint = ""
        if level and not filter:
            values = ", ".join(str(v) for v in sorted(set(shapes[level].dropna())))
            hint = f' such as "{level} == <one of {values}>"'
        raise ParamsError(
            f"{where}: {len(names)} district name(s) of {shown} occur in several features after "
            f"{'the filter' if filter else 'reading all ' + str(total) + ' features'}: "
            f"{', '.join(names[:8])}{' …' if len(names) > 8 else ''}. The file probably holds "
            f"several administrative levels. Fix: set boundaries.filter to keep one level{hint}."
        )
    return DistrictShapes(frame, shown, district_property, filter, total)


def boundary_path(params: CountryParams) -> Path:
    """The boundary file of a country (default ``data/raw/<code>/districts.geojson``)."""
    if params.boundaries is not None:
        return project_root() / params.boundaries.file
    if params.district_boundaries:
        return project_root() / params.district_boundaries
    return raw_dir(params.code) / "districts.geojson"


def country_boundaries(params: CountryParams) -> DistrictShapes:
    """The district features of a country's boundary file, as its parameters choose them."""
    spec = params.boundaries
    return read_boundaries(
        boundary_path(params),
        spec.district_property if spec else None,
        spec.filter if spec else None,
        where=f"params/countries/{params.code}.yaml",
    )


def estimates_by_feature(
    shapes: DistrictShapes, table: pd.DataFrame, column: str = "district"
) -> tuple[Any, DistrictMatch]:
    """The boundary features with the rows of ``table`` joined on normalised district names.

    Returns the GeoDataFrame (every chosen feature, ``table``'s columns empty where it has no
    row) and the match (the districts of ``table`` without a feature).
    """
    t = table.copy()
    t["key"] = [normalise_name(v) for v in t[column]]
    m = shapes.match(t[column])
    merged = shapes.frame.merge(t.drop(columns=[column]), on="key", how="left")
    return merged, m
