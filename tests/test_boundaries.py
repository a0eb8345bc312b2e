"""District boundaries: the country chooses the file, the name property and the features; maps
join on normalised names and list the districts they cannot place.

Checked against the real Malawi boundaries of the Naomi HIV model's demo data
(``data/examples/malawi/demo_areas.geojson``, MIT, see its LICENSE): 69 features on five levels
(0 country, 1 regions, 2 zones, 3 districts, 4 districts with the four cities apart). The
counts per level are read off the file with the json module, not from the code under test.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from clm_research.config.country import CountryParams
from clm_research.errors import ParamsError
from clm_research.framework import load_framework
from clm_research.report.boundaries import country_boundaries, normalise_name, read_boundaries
from clm_research.report.services import choropleth

GEOJSON = (
    Path(__file__).resolve().parents[1] / "data" / "examples" / "malawi" / "demo_areas.geojson"
)


@pytest.fixture(scope="module")
def features() -> list[dict[str, object]]:
    data = json.loads(GEOJSON.read_text(encoding="utf-8"))
    return [f["properties"] for f in data["features"]]


def test_file_holds_five_levels(features: list[dict[str, object]]) -> None:
    assert Counter(f["area_level"] for f in features) == {0: 1, 1: 3, 2: 5, 3: 28, 4: 32}


@pytest.mark.parametrize("level", [3, 4])
def test_filter_keeps_one_level(features: list[dict[str, object]], level: int) -> None:
    shapes = read_boundaries(GEOJSON, "area_name", f"area_level == {level}")
    expected = sorted(str(f["area_name"]) for f in features if f["area_level"] == level)
    assert sorted(shapes.frame["district"]) == expected
    assert shapes.features_in_file == len(features) == 69


def test_all_levels_at_once_is_an_error_with_the_fix() -> None:
    with pytest.raises(ParamsError) as e:
        read_boundaries(GEOJSON, "area_name", None, where="params/countries/MW.yaml")
    msg = str(e.value)
    assert "params/countries/MW.yaml" in msg and "Chitipa" in msg
    assert "boundaries.filter" in msg and "area_level" in msg


@pytest.mark.parametrize(
    ("prop", "flt", "words"),
    [
        ("area_nom", "area_level == 3", ["area_nom", "area_name"]),
        ("area_name", "level == 3", ["level", "area_level"]),
        ("area_name", "area_level = = 3", ["boundaries.filter"]),
        ("area_name", "area_level == 9", ["keeps none", "69"]),
    ],
)
def test_bad_boundary_parameters(prop: str, flt: str, words: list[str]) -> None:
    with pytest.raises(ParamsError) as e:
        read_boundaries(GEOJSON, prop, flt)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_names_join_without_case_accents_or_punctuation() -> None:
    assert normalise_name("Nkhata Bay") == normalise_name(" NKHATA-BAY ") == "nkhata bay"
    assert normalise_name("Nkhotakóta") == normalise_name("nkhotakota")
    assert normalise_name("Lilongwe City") != normalise_name("Lilongwe")


def test_map_draws_chosen_features_and_lists_unmatched_districts() -> None:
    shapes = read_boundaries(GEOJSON, "area_name", "area_level == 3")
    ind = load_framework().indicator("vl_result_received")
    table = pd.DataFrame(
        {
            "district": ["CHITIPA", "Nkhata-Bay", "Zómba", "Atlantis", "Lilongwe"],
            "estimate": [0.9, 0.8, 0.7, 0.5, 0.6],
            "suppressed": [False, False, False, False, True],
        }
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = choropleth(shapes, table, ind, "2024Q1")
    assert any("Atlantis" in str(w.message) for w in caught)
    assert "Atlantis" in fig.alt and "Atlantis" in fig.caption
    assert "Chitipa" not in fig.caption  # matched districts are not listed as unmatched
    assert "Map of 28 districts" in fig.alt
    assert "Best: Chitipa (90" in fig.alt and "worst: Zomba (70" in fig.alt
    assert "1 district(s) suppressed" in fig.alt
    assert "24 district(s) without data" in fig.alt  # 28 - 4 matched
    ax = fig.figure.axes[0]
    patches = sum(len(c.get_paths()) for c in ax.collections)
    assert patches == 28  # one polygon collection entry per chosen feature, none of other levels


def test_params_name_the_boundaries(tmp_path: Path) -> None:
    p = CountryParams(
        code="MW",
        name="Malawi",
        baseline_round="2016Q4",
        period="2018Q4",
        boundaries={  # type: ignore[arg-type]
            "file": "data/examples/malawi/demo_areas.geojson",
            "district_property": "area_name",
            "filter": "area_level == 4",
        },
    )
    shapes = country_boundaries(p)
    assert len(shapes.frame) == 32 and "Mzuzu City" in set(shapes.frame["district"])
    with pytest.raises(ValueError, match="not both"):
        CountryParams(
            code="MW",
            name="Malawi",
            baseline_round="2016Q4",
            period="2018Q4",
            district_boundaries="x.geojson",
            boundaries={"file": "y.geojson"},  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError, match="climbs out"):
        CountryParams(
            code="MW",
            name="Malawi",
            baseline_round="2016Q4",
            period="2018Q4",
            boundaries={"file": "../shared/x.geojson"},  # type: ignore[arg-type]
        )
