"""WHO Data Quality Review checks: hand-computed examples and the Malawi Naomi demo data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clm_research.quality import dqr

MALAWI = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "reference-data"
    / "malawi_naomi_demo"
    / "demo_art_number.csv"
)


def test_modified_z_by_hand() -> None:
    # x = 1..9 and 100: median 5.5, |x - 5.5| = 4.5 3.5 2.5 1.5 .5 .5 1.5 2.5 3.5 94.5 -> MAD 2.5
    x = pd.Series([1, 2, 3, 4, 5, 6, 7, 8, 9, 100.0])
    z = dqr.modified_z(x)
    assert z.iloc[-1] == pytest.approx(0.6745 * 94.5 / 2.5)  # 25.5 -> extreme
    assert z.iloc[0] == pytest.approx(0.6745 * -4.5 / 2.5)
    # MAD = 0: 0.7979 (x - median) / mean absolute deviation (mean 14, deviations 4,4,4,4,16 -> 6.4)
    z0 = dqr.modified_z(pd.Series([10.0, 10, 10, 10, 30]))
    assert z0.iloc[-1] == pytest.approx(0.7979 * 20 / 6.4)


def test_outlier_grades() -> None:
    vals = [100.0] * 11 + [101.0] * 11 + [160.0]
    df = pd.DataFrame(
        {"facility_id": "F1", "period": [f"p{i:02d}" for i in range(23)], "tx_curr": vals}
    )
    out = dqr.outliers(df, ["tx_curr"]).set_index("period")
    mean, sd = np.mean(vals), np.std(vals, ddof=1)
    assert out.loc["p22", "z_sd"] == pytest.approx((160 - mean) / sd)  # about 4.6 SD
    assert out.loc["p22", "outlier_sd"] == "extreme"
    # median 101, MAD = 0? no: deviations 1 (x11), 0 (x11), 59 -> MAD 1 -> z = .6745*59 = 39.8
    assert out.loc["p22", "z_mod"] == pytest.approx(0.6745 * 59)
    assert out.loc["p22", "outlier"] == "extreme"
    assert (out.drop(index="p22")["outlier"] == "none").all()


def test_completeness_grid() -> None:
    routine = pd.DataFrame(
        {
            "facility_id": ["A", "A", "B"],
            "period": ["2024-01", "2024-03", "2024-01"],
            "tx_curr": [1, 2, None],
            "tests": [5, None, 7],
        }
    )
    c = dqr.completeness(routine, facilities=["A", "B", "C"], value_columns=["tx_curr", "tests"])
    assert len(c) == 9  # 3 facilities x 3 months (2024-01..03)
    assert c["reported"].sum() == 3 and c["reported"].mean() == pytest.approx(1 / 3)
    row = c.set_index(["facility_id", "period"]).loc[("A", "2024-03")]
    assert row["values_complete"] == 0.5


def test_consistency_over_time_by_hand() -> None:
    # 12 months at 100 then 140: 40% above the mean of the preceding 12 -> flagged; 130 is +30%: not
    df = pd.DataFrame(
        {
            "facility_id": "A",
            "period": [f"2023-{m:02d}" for m in range(1, 13)] + ["2024-01"],
            "tx_new": [100.0] * 12 + [140.0],
        }
    )
    out = dqr.consistency_over_time(df, ["tx_new"]).set_index("period")
    assert out.loc["2024-01", "reference"] == 100 and out.loc["2024-01", "flag"] == True  # noqa: E712
    assert pd.isna(out.loc["2023-03", "flag"])  # fewer than 6 preceding months
    df.loc[12, "tx_new"] = 130.0
    assert not dqr.consistency_over_time(df, ["tx_new"]).set_index("period").loc["2024-01", "flag"]
    annual = pd.DataFrame(
        {
            "facility_id": "A",
            "period": ["2019", "2020", "2021", "2022"],
            "tests": [90, 100, 110, 60.0],
        }
    )
    a = dqr.consistency_over_time(annual, ["tests"], window=3, min_periods=3).set_index("period")
    assert (
        a.loc["2022", "ratio"] == pytest.approx(0.6) and a.loc["2022", "flag"]
    )  # WHO: vs mean of 3 years


def test_timeliness() -> None:
    r = pd.DataFrame(
        {
            "period": ["2024-01", "2024-01", "2024-02"],
            "submitted_on": ["2024-02-15", "2024-02-16", None],
        }
    )
    assert dqr.timeliness(r).tolist()[:2] == [True, False]
    assert pd.isna(dqr.timeliness(r).iloc[2])


def test_scorecard_flags_inconsistent_month() -> None:
    months = [f"2023-{m:02d}" for m in range(1, 13)]
    df = pd.DataFrame(
        {"facility_id": "A", "period": months, "vl_tested": 40.0, "vl_suppressed": 36.0}
    )
    df.loc[5, "vl_suppressed"] = 45.0
    card = dqr.scorecard(df, value_columns=["vl_tested", "vl_suppressed"]).set_index("period")
    assert card.loc["2023-06", "inconsistent"] == 1 and not card.loc["2023-06", "ok"]
    assert card.drop(index="2023-06")["inconsistent"].sum() == 0
    assert len(card) == 12


@pytest.mark.reference
@pytest.mark.skipif(not MALAWI.is_file(), reason=f"Naomi demo data absent: {MALAWI}")
def test_malawi_more_suppressed_than_tested() -> None:
    m = pd.read_csv(MALAWI)
    bad = dqr.internal_consistency(m, [("vl_suppressed_12mos", "vl_tested_12mos")])
    names = set(bad["area_name"])
    assert {"Ntchisi", "Dowa"} <= names
    nt = bad[bad["area_name"] == "Ntchisi"].iloc[0]
    assert (nt["year"], nt["smaller"], nt["larger"]) == (2016, 449, 413)  # read off the file
    assert len(bad) == 9 and set(bad["year"]) == {2016}  # counted with awk on the csv
