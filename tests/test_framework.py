"""The measurement framework as data: coverage of the results chain and every error message."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from clm_research.errors import FrameworkError
from clm_research.framework import AAAQ, LEVELS, UNAIDS_DOMAINS, load_framework, parse_framework
from clm_research.paths import framework_path
from clm_research.schema import TABLES


@pytest.fixture(scope="module")
def raw_framework() -> dict:
    return yaml.safe_load(framework_path().read_text())


def _with(raw: dict, indicator_id: str, **fields) -> dict:
    data = copy.deepcopy(raw)
    for ind in data["indicators"]:
        if ind["id"] == indicator_id:
            ind.update(fields)
            for k, v in list(ind.items()):
                if v is None:
                    del ind[k]
    return data


def test_default_framework_covers_the_results_chain() -> None:
    fw = load_framework()
    assert len(fw.indicators) >= 25
    assert {i.level for i in fw.indicators} == set(LEVELS)
    assert {i.dataset for i in fw.indicators} == set(TABLES)  # every dataset of the data model
    assert {i.aaaq for i in fw.indicators} >= set(AAAQ)
    assert {i.unaids_domain for i in fw.indicators} == set(UNAIDS_DOMAINS)
    assert {i.type for i in fw.indicators} == {
        "proportion",
        "mean",
        "median",
        "rate",
        "count",
        "duration",
    }
    assert len(set(fw.ids)) == len(fw.ids)


def test_framework_objects_are_immutable() -> None:
    fw = load_framework()
    with pytest.raises(Exception, match="frozen"):
        fw.indicators[0].target = 3  # type: ignore[misc]
    assert load_framework() is fw  # cached while the file is unchanged


def test_country_overrides_and_extra_indicators() -> None:
    base = load_framework()
    xa = load_framework("XA")
    assert base.indicator("wait_time_median").target == 60
    assert xa.indicator("wait_time_median").target == 45  # params/countries/XA.yaml
    xb = load_framework("XB")
    assert "refill_six_months" in xb.ids and "refill_six_months" not in base.ids


def test_unknown_column_names_file_indicator_field_and_known_columns(raw_framework: dict) -> None:
    data = _with(raw_framework, "wait_time_median", value="wait_mins")
    with pytest.raises(FrameworkError) as e:
        parse_framework(data, source="params/framework.yaml")
    msg = str(e.value)
    assert msg.startswith("params/framework.yaml: indicator 'wait_time_median', field 'value': ")
    assert (
        "unknown column 'wait_mins' in dataset 'interviews'; known columns: interview_id, facility_id"
        in msg
    )


@pytest.mark.parametrize(
    ("indicator", "fields", "expected"),
    [
        (
            "treated_with_respect",
            {"numerator": "treated_with_respect >= 'four'"},
            "indicator 'treated_with_respect', field 'numerator': column 'treated_with_respect' is integer",
        ),
        (
            "denied_service",
            {"numerator": "denied_service = true"},
            "indicator 'denied_service', field 'numerator': unexpected character '='",
        ),
        (
            "wait_time_mean",
            {"level": "outcome"},
            "indicator 'wait_time_mean', field 'level': Input should be 'inputs', 'activities', 'outputs', 'outcomes' or 'impact'",
        ),
        (
            "wait_time_mean",
            {"colour": "red"},
            "indicator 'wait_time_mean', field 'colour': unknown field (misspelt?); allowed fields: id, label",
        ),
        (
            "wait_time_mean",
            {"value": None},
            "indicator 'wait_time_mean', field '(indicator)': field 'value' is required for a mean indicator",
        ),
        (
            "wait_time_mean",
            {"value": "sex"},
            "indicator 'wait_time_mean', field 'value': column 'sex' is category; needs integer or float",
        ),
        (
            "issues_resolved",
            {"numerator": None},
            "a proportion indicator needs 'numerator' or 'numerator_sum'",
        ),
        (
            "wait_time_mean",
            {"thresholds": {"green": 120, "amber": 60}},
            "lower_is_better needs green <= amber",
        ),
        (
            "wait_time_mean",
            {"disaggregations": ["sex", "province"]},
            "field 'disaggregations': unknown column 'province' in dataset 'interviews'",
        ),
        ("wait_time_mean", {"dataset": "clients"}, "field 'dataset': Input should be 'facilities'"),
        (
            "wait_time_mean",
            {"contributes_to": ["no_such"]},
            "field 'contributes_to': unknown indicator 'no_such'",
        ),
        (
            "days_to_resolution",
            {"end": "category"},
            "field 'end': column 'category' is category; needs date",
        ),
        (
            "issues_per_facility_round",
            {"denominator": "visit_done"},
            "field 'denominator': unknown column 'visit_done' in dataset 'observations'",
        ),
    ],
)
def test_each_error_names_the_indicator_and_field(
    raw_framework: dict, indicator: str, fields: dict, expected: str
) -> None:
    with pytest.raises(FrameworkError, match=re.escape(expected)):
        parse_framework(_with(raw_framework, indicator, **fields), source="fw.yaml")


def test_duplicate_ids_and_bad_top_level(raw_framework: dict) -> None:
    data = copy.deepcopy(raw_framework)
    data["indicators"].append(copy.deepcopy(data["indicators"][0]))
    with pytest.raises(FrameworkError, match="indicator 'monitors_trained' is defined twice"):
        parse_framework(data, source="fw.yaml")
    with pytest.raises(FrameworkError, match="expected a mapping with a list under 'indicators'"):
        parse_framework({"name": "x"}, source="fw.yaml")
    with pytest.raises(FrameworkError, match=re.escape("fw.yaml: field 'confidence'")):
        parse_framework({**raw_framework, "confidence": 2}, source="fw.yaml")


def test_indicators_without_id_are_reported_as_missing_ids(raw_framework: dict) -> None:
    # two indicators without an id once read as "indicator None is defined twice"
    data = copy.deepcopy(raw_framework)
    for extra in (0, 1):
        item = copy.deepcopy(data["indicators"][extra])
        del item["id"]
        data["indicators"].append(item)
    n = len(raw_framework["indicators"])
    with pytest.raises(
        FrameworkError, match=re.escape(f"fw.yaml: indicator '#{n + 1}', field 'id': required")
    ):
        parse_framework(data, source="fw.yaml")


def test_country_changes_are_checked(raw_framework: dict) -> None:
    with pytest.raises(
        FrameworkError, match="XA.yaml: override for unknown indicator 'wait_median'"
    ):
        parse_framework(
            raw_framework,
            changes={"overrides": {"wait_median": {"target": 3}}},
            changes_source="XA.yaml",
        )
    with pytest.raises(
        FrameworkError,
        match="indicator 'wait_time_median', field 'numerator': a country may override only",
    ):
        parse_framework(
            raw_framework,
            changes={"overrides": {"wait_time_median": {"numerator": "x"}}},
            changes_source="XA.yaml",
        )
    extra = {
        "id": "wait_time_median",
        "label": "again",
        "level": "outcomes",
        "unaids_domain": "health_services",
        "dataset": "interviews",
        "type": "mean",
        "value": "wait_minutes",
        "direction": "lower_is_better",
    }
    with pytest.raises(
        FrameworkError, match="XA.yaml: indicator 'wait_time_median' is defined twice"
    ):
        parse_framework(raw_framework, changes={"indicators": [extra]}, changes_source="XA.yaml")


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(FrameworkError, match="framework file not found"):
        load_framework(path=tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("indicators: [\n")
    with pytest.raises(FrameworkError, match="not valid YAML"):
        load_framework(path=bad)


def test_columns_used_lists_canonical_columns_only() -> None:
    fw = load_framework()
    used = fw.columns_used("interviews")
    assert {"wait_minutes", "got_all_medicines", "on_art", "sex", "key_population"} <= used
    assert "clm_active" not in used and "clm_active" in fw.columns_used(
        "interviews", include_derived=True
    )
    assert fw.columns_used("observations") >= {
        "visit_completed",
        "arv_stockout",
    }  # also a rate's denominator
