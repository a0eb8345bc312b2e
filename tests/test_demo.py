"""The synthetic generator: deterministic, geographically coherent, with its planted truth visible."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import yaml

from clm_research.demo import (
    CANARY_BIRTH_DATES,
    CANARY_MISPLACED,
    CANARY_NAMES,
    CANARY_PHONES,
    demo_countries,
    generate_country,
    ramp,
    wave_multiplier,
    write_demo,
)
from clm_research.schema import PERSONAL_DATA_COLUMNS, TABLES


def _digest(frames: dict[str, pd.DataFrame]) -> str:
    h = hashlib.sha256()
    for name in sorted(frames):
        h.update(pd.util.hash_pandas_object(frames[name], index=False).to_numpy().tobytes())
    return h.hexdigest()


def test_same_seed_same_data_other_country_other_data(demo_xa) -> None:
    again = generate_country("XA")
    assert _digest(again.raw) == _digest(demo_xa.raw)
    assert again.truth == demo_xa.truth
    xb = generate_country("XB")
    assert _digest(xb.clean) != _digest(demo_xa.clean)


def test_demo_countries_use_user_assigned_codes() -> None:
    codes = demo_countries()
    assert len(codes) >= 2
    # ISO 3166-1 user-assigned ranges: AA, QM-QZ, XA-XZ, ZZ (never a real country's code)
    assert all(c == "AA" or c == "ZZ" or (c[0] == "X") or ("QM" <= c <= "QZ") for c in codes)


def test_default_scale(demo_xa) -> None:
    fac = demo_xa.clean["facilities"]
    assert len(fac) == 60
    assert demo_xa.clean["interviews"]["round"].nunique() == 8
    per_cell = demo_xa.clean["interviews"].groupby(["facility_id", "round"]).size()
    assert (per_cell == 30).all()
    assert demo_xa.clean["routine"]["period"].nunique() == 36
    share_comparison = fac["clm_start"].isna().mean()
    assert 0.25 <= share_comparison <= 0.35
    assert fac.loc[fac["clm_start"].notna(), "clm_start"].nunique() == 3  # three waves


def test_clean_tables_follow_the_data_model(demo_xa) -> None:
    for name, frame in demo_xa.clean.items():
        table = TABLES[name]
        assert list(frame.columns) == list(table.column_names)
        assert not frame.duplicated(list(table.primary_key)).any(), name
        for col in table.columns:
            s = frame[col.name]
            if col.required:
                assert s.notna().all(), (name, col.name)
            if col.allowed is not None:
                assert s.dropna().isin(col.allowed).all(), (name, col.name)
            if col.minimum is not None:
                assert (s.dropna() >= col.minimum).all(), (name, col.name)
            if col.maximum is not None:
                assert (s.dropna() <= col.maximum).all(), (name, col.name)
            if col.pattern is not None:
                assert s.dropna().str.match(col.pattern).all(), (name, col.name)
        for fk in table.foreign_keys:
            ref = demo_xa.clean[fk.ref_table][fk.ref_column]
            assert frame[fk.column].isin(ref).all()
    assert not set(PERSONAL_DATA_COLUMNS) & set(demo_xa.clean["interviews"].columns)


def test_facilities_lie_inside_their_district(demo_xa) -> None:
    from shapely.geometry import Point, shape

    polys = {
        f["properties"]["district"]: shape(f["geometry"]) for f in demo_xa.districts["features"]
    }
    assert all(p.is_valid and p.area > 0 for p in polys.values())
    for row in demo_xa.clean["facilities"].itertuples():
        assert polys[row.district].contains(Point(row.longitude, row.latitude)), row.facility_id
    # districts do not overlap
    names = list(polys)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert polys[a].intersection(polys[b]).area < 1e-9


def test_raw_exports_carry_personal_data_and_canaries(demo_xa) -> None:
    raw = demo_xa.raw["interviews"]
    assert {"client_name", "phone_number", "date_of_birth", "free_text"} <= set(raw.columns)
    assert set(CANARY_NAMES) <= set(raw["client_name"])
    assert set(CANARY_PHONES) <= set(raw["phone_number"])
    assert set(CANARY_BIRTH_DATES) <= set(raw["date_of_birth"])
    # personal data typed into other columns, one extra row each
    for column, value in CANARY_MISPLACED.items():
        assert (raw[column] == value).sum() == 1, column
    # birth dates agree with the age (derived age = age, the rest of the rows)
    age = pd.to_numeric(raw["age"], errors="coerce")
    rest = raw[~raw["date_of_birth"].isin(CANARY_BIRTH_DATES) & age.notna()]
    dob = pd.to_datetime(rest["date_of_birth"])
    derived = (rest["date"] - dob).dt.days // 365.25
    assert (np.abs(derived - age[rest.index].astype(float)) <= 1).mean() > 0.99


def test_planted_faults_are_documented_and_extra(demo_xa) -> None:
    faults = demo_xa.truth["faults"]
    raw, clean = demo_xa.raw["interviews"], demo_xa.clean["interviews"]
    iv_faults = [f for f in faults if f["table"] == "interviews"]
    assert len(raw) == len(clean) + len(iv_faults)  # every faulty row is an extra row
    assert 0.005 <= len(iv_faults) / len(clean) <= 0.02
    rules = {f["rule"] for f in faults}
    assert rules == {
        "range",
        "allowed_values",
        "unknown_reference",
        "not_null",
        "future_date",
        "pattern",
        "duplicate_key",
        "inconsistent",
        "personal_data",
    }
    for f in iv_faults:
        row = raw.iloc[f["row"] - 2]  # "row" is the CSV line, header = line 1
        assert row["interview_id"] == f["id"]
    # a duplicate comes after its original
    for f in iv_faults:
        if f["rule"] == "duplicate_key":
            first = raw.index[raw["interview_id"] == f["id"]][0] + 2
            assert first < f["row"]
    rt = [f for f in faults if f["table"] == "routine"]
    assert rt and all(
        demo_xa.raw["routine"].iloc[f["row"] - 2]["vl_suppressed"]
        > demo_xa.raw["routine"].iloc[f["row"] - 2]["vl_tested"]
        for f in rt
    )


def test_ramp_and_wave_multiplier_by_hand() -> None:
    assert list(ramp(np.array([-2, -1, 0, 1, 2, 5]))) == pytest.approx([0, 0, 1 / 3, 2 / 3, 1, 1])
    assert list(wave_multiplier(np.array([0, 1, 2, 5]))) == [1.0, 0.75, 0.5, 0.25]


def _did(frame: pd.DataFrame, fac: pd.DataFrame, value: pd.Series) -> float:
    """2×2 difference in differences: (treated late − treated pre) − (comparison late − pre)."""
    first_wave = fac["clm_start"].min()
    arm = frame["facility_id"].map(fac.set_index("facility_id")["clm_start"].eq(first_wave))
    comp = frame["facility_id"].map(fac.set_index("facility_id")["clm_start"].isna())
    pre = frame["round"].isin(["2023Q1", "2023Q2"])
    late = frame["round"].isin(["2024Q3", "2024Q4"])
    m = lambda mask: value[mask].mean()  # noqa: E731
    return (m(arm & late) - m(arm & pre)) - (m(comp & late) - m(comp & pre))


@pytest.mark.parametrize(
    ("column", "transform", "sign"),
    [
        ("wait_minutes", lambda s: s.astype(float), -1),
        ("got_all_medicines", lambda s: s.astype(float), +1),
        ("vl_result_received", lambda s: s.astype(float), +1),
        (
            "treated_with_respect",
            lambda s: (s.astype(float) >= 4).astype(float).where(s.notna()),
            +1,
        ),
    ],
)
def test_planted_effects_show_in_raw_differences(demo_xa, column, transform, sign) -> None:
    iv, fac = demo_xa.clean["interviews"], demo_xa.clean["facilities"]
    effect = _did(iv, fac, transform(iv[column]))
    assert np.sign(effect) == sign


def test_truth_att_matches_effect_sizes(demo_xa) -> None:
    att = demo_xa.truth["att"]
    assert att["wait_time_mean"]["overall"] < 0
    assert att["medicine_stockout_experienced"]["overall"] < 0
    assert att["vl_result_received"]["overall"] > 0
    assert att["multi_month_dispensing"]["overall"] == 0.0  # a true null
    # dynamic effects: the effect grows with exposure (event time)
    by_e = att["wait_time_mean"]["by_event_time"]
    assert by_e[0] > by_e[1] > by_e[2]  # more negative with time


def test_write_demo_is_idempotent_and_complete(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CLM_DATA_DIR", str(tmp_path))
    out = write_demo(["XB"])
    folder = out["XB"]
    for name in TABLES:
        assert (folder / f"{name}.csv").is_file()
    assert (folder / "districts.geojson").is_file()
    truth = yaml.safe_load((folder / "truth.yaml").read_text())
    assert truth["country"] == "XB" and truth["faults"]
    stamp = (folder / "interviews.csv").stat().st_mtime_ns
    write_demo(["XB"])  # up to date: not rewritten
    assert (folder / "interviews.csv").stat().st_mtime_ns == stamp
    raw = pd.read_csv(folder / "interviews.csv")
    assert len(raw) == len(generate_country("XB").raw["interviews"])


def test_ritshidze_scale_override() -> None:
    big = generate_country("XB", facilities=100, interviews_per_round=50)
    assert len(big.clean["facilities"]) == 100
    assert len(big.clean["interviews"]) == 100 * 8 * 50
