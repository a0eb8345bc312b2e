"""Small pieces of ingestion: labels, bands, privacy, readers."""

from __future__ import annotations

import pandas as pd
import pytest

from clm_research.errors import IngestError
from clm_research.ingest.mapping import (
    ColumnSpec,
    TableSpec,
    apply_mapping,
    band_values,
    parse_likert,
)
from clm_research.ingest.privacy import age_in_years, pseudonym_key, pseudonymise
from clm_research.schema import TABLES


def test_likert_labels() -> None:
    s = pd.Series(["4 clean", "5 very clean", "3  Ok ", "2 unclean           ", "", "clean"])
    assert parse_likert(s).tolist() == ["4", "5", "3", "2", "", "clean"]


def test_band_representative_values() -> None:
    v = band_values({"< 30mins": (0, 30), "30-45 mins": (30, 45), ">45 mins": (45, None)})
    assert v == {"< 30mins": 15.0, "30-45 mins": 37.5, ">45 mins": 52.5}


def test_labels_yes_no_dont_know_and_bands() -> None:
    text = pd.DataFrame(
        {
            "wait": ["< 30mins", ">45 mins", "30-45 mins", "an hour"],
            "denied": ["Yes", "No", "Dont Know", "yes "],
        }
    )
    spec = TableSpec(
        files=["x.csv"],
        columns={
            "wait_minutes": ColumnSpec(
                **{
                    "from": "wait",
                    "bands": {"< 30mins": (0, 30), "30-45 mins": (30, 45), ">45 mins": (45, None)},
                }
            ),
            "denied_service": "denied",
        },
    )
    m = apply_mapping(text, spec, TABLES["interviews"], "kobo", "x.csv")
    assert m.frame["wait_minutes"].tolist() == [15.0, 52.5, 37.5, "an hour"]  # unknown label kept
    assert m.frame["denied_service"].tolist() == [True, False, None, True]
    assert m.unknown_labels == {"wait_minutes": {"an hour": 1}}


def test_hmac_pseudonym_rfc4231_case_2() -> None:
    # RFC 4231 test case 2: HMAC-SHA256(key="Jefe", "what do ya want for nothing?")
    out = pseudonymise(pd.Series(["what do ya want for nothing?", None]), b"Jefe", length=64)
    assert out.iloc[0] == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert pd.isna(out.iloc[1])


def test_pseudonym_key_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLM_PSEUDONYM_KEY", raising=False)
    with pytest.raises(IngestError, match="CLM_PSEUDONYM_KEY"):
        pseudonym_key()
    monkeypatch.setenv("CLM_PSEUDONYM_KEY", "x" * 32)
    assert pseudonym_key() == b"x" * 32


def test_age_in_completed_years() -> None:
    b = pd.Series(pd.to_datetime(["2000-02-29", "2000-02-29", "1990-12-31"]))
    at = pd.Series(pd.to_datetime(["2024-02-28", "2024-02-29", "2024-12-30"]))
    assert age_in_years(b, at).tolist() == [23, 24, 33]


def test_spreadsheet_whole_numbers_match_their_labels() -> None:
    # an export saved through a spreadsheet writes the code 2 as "2.0"
    text = pd.DataFrame({"level": ["2", "2.0", " 3 ", "2.5", "x"]})
    spec = TableSpec(
        files=["x.csv"],
        columns={
            "type": ColumnSpec(**{"from": "level", "values": {"2": "dispensary", "3": "clinic"}})
        },
    )
    m = apply_mapping(text, spec, TABLES["facilities"], "kobo", "x.csv")
    assert m.frame["type"].tolist() == ["dispensary", "dispensary", "clinic", "2.5", "x"]
    assert m.unknown_labels == {"type": {"2.5": 1, "x": 1}}
