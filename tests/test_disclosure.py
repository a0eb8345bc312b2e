"""Disclosure control, tested as an attacker: every published table at once.

Three attacks on the published indicator tables of the demo country XA (the files `clm
indicators` writes, read back as an attacker would, plus the public facility list for which
facility lies in which district), each of which worked on the tables of the previous version:

(a) direct: a suppressed row still shows ``n`` (for a count, the suppressed value itself);
(b) margin remainder: a margin (national × round, district × round) minus its published
    facility cells leaves a numerator remainder equal to the denominator remainder: every
    suppressed cell is 100% (a secondary cell too: it is not small, but published as blank);
(c) zero remainder: a district × round margin minus its published sex × key-population cells
    leaves 0: every suppressed cell is 0.

Then the linear-programming audit itself: R sdcTable's documented attacker problem reproduced,
small tables whose attacker intervals are worked out by hand (one with a secondary cell that a
district margin showed at 100%), and random tables on which no suppressed cell's exact
interval is narrower than the protection rule after complementary suppression.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm_research.disclosure import (
    PUBLISHED_GROUPINGS,
    audit_tables,
    protect_tables,
)
from clm_research.errors import DisclosureError
from clm_research.framework import parse_framework
from clm_research.indicators import ALL, compute_indicators
from clm_research.tables import coerce

#: Columns an attacker reads off a row (the published indicator tables' value columns).
VALUE_COLUMNS = [
    "numerator",
    "denominator",
    "estimate",
    "ci_low",
    "ci_high",
    "n",
    "n_clusters",
    "design_effect",
    "rag",
]


# ----------------------------------------------------------------------------- the attacks


@pytest.fixture(scope="module")
def published_xa() -> dict[str, pd.DataFrame]:
    """XA's indicator tables as `clm indicators XA` writes them, read back from the CSV files."""
    from clm_research.cli import main
    from clm_research.paths import country_report_dir

    for step in (["demo-data", "XA"], ["ingest", "XA"], ["indicators", "XA"]):
        assert main(step) == 0, step
    folder = country_report_dir("XA") / "indicators"
    out = {}
    for path in sorted(folder.glob("*.csv")):
        if path.stem not in PUBLISHED_GROUPINGS:  # e.g. not_computed.csv: no indicator table
            continue
        by = ["facility_id", "round", "district", "sex", "key_population", "clm_arm"]
        out[path.stem] = pd.read_csv(path, dtype=dict.fromkeys(by, "string"))
    return out


@pytest.fixture(scope="module")
def facility_district() -> pd.Series:
    """The public facility list: which district each facility is in."""
    from clm_research.tables import read_country

    fac = read_country("XA")["facilities"]
    return fac.set_index("facility_id")["district"].astype("string")


def direct_leaks(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Attack (a): suppressed rows that still show a value."""
    rows = []
    for name, t in tables.items():
        sup = t[t["suppressed"]]
        cols = [c for c in VALUE_COLUMNS if c in t.columns]
        shown = sup[sup[cols].notna().any(axis=1)]
        rows.append(shown.assign(table=name))
    return pd.concat(rows, ignore_index=True)


def _margin_rows(tables: dict[str, pd.DataFrame], name: str, key: list[str]) -> pd.DataFrame:
    t = tables[name]
    return t[~t["suppressed"]].set_index(["indicator_id", *key])


def remainder_disclosures(
    tables: dict[str, pd.DataFrame], facility_district: pd.Series
) -> list[tuple[str, str, str, int, str]]:
    """Attack (b): a margin minus its published facility cells, for every proportion.

    Margins: national × round, and (when published) district × round. A remainder whose
    numerator equals its denominator tells that every suppressed facility cell in it is 100%;
    a numerator remainder of 0 that every one is 0%.
    """
    fr = tables["facility_round"]
    fr = fr[(fr["type"] == "proportion") & (fr["facility_id"] != ALL)].copy()
    fr["district"] = fr["facility_id"].map(facility_district)
    margins = [("national_round", ["round"])]
    if "district_round" in tables:
        margins.append(("district_round", ["district", "round"]))
    found = []
    for mname, key in margins:
        margin = _margin_rows(tables, mname, key)
        for idx, cells in fr.groupby(["indicator_id", *key]):
            sup = cells[cells["suppressed"]]
            if sup.empty or idx not in margin.index:
                continue
            m = margin.loc[idx]
            pub = cells[~cells["suppressed"]]
            rem_n = m["numerator"] - pub["numerator"].sum()
            rem_d = m["denominator"] - pub["denominator"].sum()
            if rem_d > 0 and math.isclose(rem_n, rem_d):
                found.append((mname, *map(str, idx[:2]), len(sup), "100%"))
            elif rem_d > 0 and math.isclose(rem_n, 0, abs_tol=1e-9):
                found.append((mname, *map(str, idx[:2]), len(sup), "0%"))
    return found


def zero_remainders(
    tables: dict[str, pd.DataFrame], facility_district: pd.Series
) -> list[tuple[str, str, str, int]]:
    """Attack (c): district × round margin of client data minus its published sex × KP cells.

    The margin is the published district × round cell, or, where that table is not published,
    the sum of the district's facility cells when none of them is suppressed. A numerator
    remainder of 0 tells that every suppressed cell is 0.
    """
    sk = tables["district_round_sex_kp"]
    sk = sk[(sk["type"] == "proportion") & (sk["sex"] != ALL)]
    if "district_round" in tables:
        dist = _margin_rows(tables, "district_round", ["district", "round"])["numerator"]
    else:
        fr = tables["facility_round"]
        fr = fr[fr["facility_id"] != ALL].assign(
            district=lambda f: f["facility_id"].map(facility_district)
        )
        g = fr.groupby(["indicator_id", "district", "round"])
        full = g["suppressed"].sum() == 0
        dist = g["numerator"].sum()[full]
    found = []
    for idx, cells in sk.groupby(["indicator_id", "district", "round"]):
        sup = cells[cells["suppressed"]]
        if sup.empty or idx not in dist.index:
            continue
        total = dist.loc[idx]
        rem = total - cells.loc[~cells["suppressed"], "numerator"].sum()
        if math.isclose(rem, 0, abs_tol=1e-9):
            found.append((*map(str, idx), len(sup)))
    return found


def test_attack_a_no_suppressed_row_shows_a_value(published_xa) -> None:
    # previous version: n shown on every suppressed row, e.g. 33 of 33 suppressed
    # prep_initiations cells of facility_round (n is the count itself)
    leaks = direct_leaks(published_xa)
    assert leaks.empty, leaks[["table", "indicator_id", "n"]].head()
    fr = published_xa["facility_round"]
    counts = fr[(fr["type"] == "count") & fr["suppressed"]]
    assert len(counts) > 0 and counts["n"].isna().all()


def test_attack_b_margin_remainder_tells_nothing(published_xa, facility_district) -> None:
    # previous version: national × round remainders of issues_resolved in 2023Q3–2024Q1 equal
    # to the suppressed denominators, so all 42 suppressed cells were known to be 100%
    # resolved (e.g. XA-F002, 2024Q1: 1 issue, resolved)
    assert remainder_disclosures(published_xa, facility_district) == []


def test_attack_c_zero_remainder_tells_nothing(published_xa, facility_district) -> None:
    # previous version: 9 district × round margins with a remainder of 0 (84 suppressed cells),
    # e.g. confidentiality_breach, Newen, 2023Q1: 8 cells known to have no breach
    assert zero_remainders(published_xa, facility_district) == []


def test_written_tables_pass_the_audit_and_every_grouping_is_written(published_xa) -> None:
    from clm_research.config.country import load_country
    from clm_research.framework import load_framework
    from clm_research.tables import read_country

    assert set(published_xa) == set(PUBLISHED_GROUPINGS)
    audit, intervals = audit_tables(
        load_framework("XA"), read_country("XA"), published_xa, as_of=load_country("XA").as_of
    )
    assert audit.passed, audit
    assert audit.suppressed_complementary > 0  # the per-table suppression was not enough
    assert all(iv.protected for iv in intervals)


def test_the_audit_finds_the_leaks_of_the_previous_tables(demo_xa, framework_xa) -> None:
    """The previous publication: each table suppressed on its own, ``n`` left on suppressed rows."""
    from clm_research.indicators import Tabulation, blank_suppressed

    tab = Tabulation(framework_xa, demo_xa.clean, "cluster")
    previous = {}
    for name, by in PUBLISHED_GROUPINGS.items():
        raw = tab.table(by, blank=False)
        previous[name] = blank_suppressed(raw.copy()).assign(n=raw["n"])
    audit, intervals = audit_tables(framework_xa, demo_xa.clean, previous)
    assert not audit.passed
    failing = {(iv.table, iv.indicator_id) for iv in intervals if not iv.protected}
    # direct: a suppressed count's n is the count itself, so the attacker's interval is a point
    prep = [
        iv
        for iv in intervals
        if iv.indicator_id == "prep_initiations" and iv.table == "facility_round"
    ]
    assert len(prep) > 20 and all(iv.low == iv.high and not iv.protected for iv in prep)
    # by differencing across tables: proportions whose n (the denominator) was the only leak
    assert ("facility_round", "issues_resolved") in failing
    assert ("district_round_sex_kp", "confidentiality_breach") in failing


# ----------------------------------------------------------------------------- hand-built tables


def _framework(*indicators: dict, min_cell_size: int = 0):
    return parse_framework(
        {"name": "test", "min_cell_size": min_cell_size, "indicators": list(indicators)}
    )


COUNT = {
    "id": "interviews",
    "label": "interviews",
    "level": "activities",
    "unaids_domain": "community_systems",
    "dataset": "interviews",
    "type": "count",
    "numerator": "interview_id is not null",
    "direction": "higher_is_better",
}
BREACH = {
    "id": "breach",
    "label": "confidentiality breach",
    "level": "outcomes",
    "unaids_domain": "health_services",
    "dataset": "interviews",
    "type": "proportion",
    "numerator": "confidentiality_breach",
    "denominator": "confidentiality_breach is not null",
    "direction": "lower_is_better",
}
WAIT = {
    "id": "wait",
    "label": "mean wait",
    "level": "outcomes",
    "unaids_domain": "health_services",
    "dataset": "interviews",
    "type": "mean",
    "value": "wait_minutes",
    "direction": "lower_is_better",
}


def _tables(cells: dict[tuple[str, str, str], tuple[int, int]]) -> dict[str, pd.DataFrame]:
    """Interviews from cells (district, sex, key_population) → (clients, breaches).

    One facility per district; one round; wait 10 minutes for a breach, 30 otherwise.
    """
    districts = sorted({d for d, _, _ in cells})
    facilities = coerce(
        pd.DataFrame(
            {
                "facility_id": [f"F-{d}" for d in districts],
                "name": districts,
                "region": "R",
                "district": districts,
                "type": "clinic",
                "ownership": "public",
                "clm_start": "2023-01-01",
            }
        ),
        "facilities",
    )
    rows = []
    for (d, sex, kp), (n, events) in cells.items():
        for i in range(n):
            rows.append(
                {
                    "facility_id": f"F-{d}",
                    "sex": sex,
                    "key_population": kp,
                    "breach": i < events,
                    "wait": 10.0 if i < events else 30.0,
                }
            )
    f = pd.DataFrame(rows)
    interviews = coerce(
        pd.DataFrame(
            {
                "interview_id": [f"i{i}" for i in range(len(f))],
                "facility_id": f["facility_id"],
                "date": "2023-02-01",
                "round": "2023Q1",
                "sex": f["sex"],
                "key_population": f["key_population"],
                "on_art": True,
                "wait_minutes": f["wait"],
                "confidentiality_breach": f["breach"],
            }
        ),
        "interviews",
    )
    return {"facilities": facilities, "interviews": interviews}


def _blank(table: pd.DataFrame, cells: list[tuple[str, ...]], by: list[str]) -> pd.DataFrame:
    """``table`` with ``cells`` suppressed by hand, labelled primary."""
    t = table.copy()
    key = list(zip(*(t[b] for b in by), strict=True))
    hit = np.array([k in cells for k in key])
    t.loc[hit, "suppressed"] = True
    t.loc[hit, "suppression"] = "primary"
    t.loc[hit, VALUE_COLUMNS] = np.nan
    return t


# The 4 × 4 frequency table of R sdcTable's test of its SIMPLEHEURISTIC (tests/testthat/
# test-simpleheuristic.R): rows w–z, columns a–d, margins published.
SDC_TABLE = {
    ("w", "a"): 30, ("w", "b"): 47, ("w", "c"): 64, ("w", "d"): 89,
    ("x", "a"): 90, ("x", "b"): 124, ("x", "c"): 5, ("x", "d"): 31,
    ("y", "a"): 92, ("y", "b"): 100, ("y", "c"): 59, ("y", "d"): 85,
    ("z", "a"): 800, ("z", "b"): 991, ("z", "c"): 651, ("z", "d"): 685,
}  # fmt: skip
SDC_PRIMARY = [
    ("w", "a"), ("w", "b"), ("w", "c"), ("x", "a"), ("x", "c"),
    ("y", "b"), ("y", "d"), ("z", "b"), ("z", "d"),
]  # fmt: skip
SDC_GROUPINGS = {
    "total": (),
    "rows": ("district",),
    "columns": ("key_population",),
    "cells": ("district", "key_population"),
}


def _sdc_audit(extra: list[tuple[str, str]]):
    tables = _tables({(d, "female", kp): (n, 0) for (d, kp), n in SDC_TABLE.items()})
    fw = _framework(COUNT)
    published = {name: compute_indicators(fw, tables, by=by) for name, by in SDC_GROUPINGS.items()}
    assert published["total"]["numerator"].iloc[0] == 3943  # sdcTable's grand total
    published["cells"] = _blank(
        published["cells"], SDC_PRIMARY + extra, ["district", "key_population"]
    )
    _, intervals = audit_tables(fw, tables, published, SDC_GROUPINGS, exact=True)
    return {iv.group: iv for iv in intervals}


def test_reproduces_sdctable_attacker_problem() -> None:
    """sdcTable: with the 9 primary suppressions, cell w|b (47) is recomputed exactly.

    By hand: rows w and x give wa+wb+wc = 230−89 = 141 and xa+xc = 250−31−124 = 95;
    columns a and c give wa+xa = 1021−92−800 = 129 and wc+xc = 770−59−651 = 60; so
    wb = 141 − (129 + 60 − 95) = 47.
    """
    iv = _sdc_audit([])[(("district", "w"), ("key_population", "b"))]
    assert (iv.low, iv.high) == (pytest.approx(47), pytest.approx(47))
    assert iv.exact and not iv.protected


def test_reproduces_sdctable_bounds_after_its_secondary_suppression() -> None:
    """sdcTable's SIMPLEHEURISTIC adds x|b; ``attack()`` then gives w|b low 0, up 141.

    By hand: wb ≤ 141 (row w with wa = wc = 0, then xa = 129, xc = 60, xb = 30); wb ≥ 0
    (wa + wc = 141 within wa ≤ 129, wc ≤ 60). And xb = 219 − xa − xc = 30 + wa + wc =
    171 − wb, so x|b lies in [30, 171].
    """
    ivs = _sdc_audit([("x", "b")])
    wb = ivs[(("district", "w"), ("key_population", "b"))]
    xb = ivs[(("district", "x"), ("key_population", "b"))]
    assert (wb.low, wb.high) == (pytest.approx(0), pytest.approx(141))
    assert (xb.low, xb.high) == (pytest.approx(30), pytest.approx(171))
    assert wb.protected and xb.protected


SMALL = {  # (district, sex, kp): (clients, breaches); one district
    ("D1", "female", "msm"): (3, 1),
    ("D1", "female", "none"): (20, 2),
    ("D1", "male", "msm"): (12, 0),
    ("D1", "male", "none"): (40, 5),
}
SMALL_GROUPINGS = {
    "national": (),
    "sex": ("sex",),
    "kp": ("key_population",),
    "sex_kp": ("sex", "key_population"),
}


def test_hand_worked_intervals_of_a_proportion() -> None:
    """Female × msm (3 clients, 1 breach) is primary; its row and column need the other three.

    Margins: female 23 clients / 3 breaches, male 52 / 5, msm 15 / 1, none 60 / 7. With all
    four cells suppressed, the breaches: n_fm + n_mm = 1 (column msm), so n_fm ∈ [0, 1]. The
    clients: D_fm = t, D_fn = 23 − t, D_mm = 15 − t, D_mn = 37 + t. Those without a breach,
    D_fm − n_fm: 0 when t = n_fm; at most 14, since n_fm = 0 puts the msm breach in male × msm
    (D_mm = 15 − t ≥ 1) and n_fm = 1 needs t ≤ 15. So [0, 14].
    """
    tables = _tables(SMALL)
    fw = _framework(BREACH, min_cell_size=10)
    published = {
        name: compute_indicators(fw, tables, by=by) for name, by in SMALL_GROUPINGS.items()
    }
    cells = published["sex_kp"]
    assert cells["suppressed"].all()  # primary, then secondary in its row and column
    _, intervals = audit_tables(fw, tables, published, SMALL_GROUPINGS, exact=True)
    female_msm = (("sex", "female"), ("key_population", "msm"))
    by_kind = {iv.quantity: iv for iv in intervals if iv.group == female_msm}
    assert (by_kind["numerator"].low, by_kind["numerator"].high) == (0, pytest.approx(1))
    assert (by_kind["complement"].low, by_kind["complement"].high) == (0, pytest.approx(14))
    # the rule: [0, D] = [0, 3] for each, capped by the msm margin alone (1 breach; 14
    # without, of whom at least 14 − 12 = 2 in this cell): numerator [0, 1], complement [2, 3]
    # male × msm (12 clients, no breach) is secondary, at 0%: its breaches, 1 − n_fm, lie in
    # [0, 1], so nobody can tell that none of the 12 had one
    (male_msm,) = [iv for iv in intervals if iv.group != female_msm]
    assert male_msm.group == (("sex", "male"), ("key_population", "msm"))
    assert (male_msm.quantity, male_msm.low, male_msm.high) == ("numerator", 0, pytest.approx(1))
    assert all(iv.protected for iv in intervals)


def test_a_pinned_cell_is_reported_without_its_true_value() -> None:
    tables = _tables(SMALL)
    fw = _framework(BREACH, min_cell_size=10)
    published = {
        name: compute_indicators(fw, tables, by=by) for name, by in SMALL_GROUPINGS.items()
    }
    # publish everything but the primary cell: it is the remainder of its row
    t = published["sex_kp"]
    primary = t["suppression"] == "primary"
    raw = compute_indicators(_framework(BREACH), tables, by=("sex", "key_population"))
    published["sex_kp"] = raw.assign(suppressed=primary, suppression=t["suppression"])
    published["sex_kp"].loc[primary, VALUE_COLUMNS] = np.nan
    audit, intervals = audit_tables(fw, tables, published, SMALL_GROUPINGS, exact=True)
    assert not audit.passed
    num = next(iv for iv in intervals if iv.quantity == "numerator")
    assert (num.low, num.high) == (pytest.approx(1), pytest.approx(1))
    text = str(audit)
    assert "not protected" in text and "female" in text


def test_protect_adds_complementary_cells_until_the_exact_audit_passes() -> None:
    cells = {
        ("D1", "female", "msm"): (4, 0),
        ("D1", "female", "none"): (30, 3),
        ("D1", "male", "msm"): (25, 2),
        ("D1", "male", "none"): (40, 4),
        ("D2", "female", "msm"): (12, 1),
        ("D2", "female", "none"): (35, 4),
        ("D2", "male", "msm"): (6, 0),
        ("D2", "male", "none"): (45, 6),
    }
    groupings = {
        "national": (),
        "district": ("district",),
        "district_sex_kp": ("district", "sex", "key_population"),
        "kp": ("key_population",),
    }
    tables = _tables(cells)
    fw = _framework(BREACH, COUNT, WAIT, min_cell_size=10)
    res = protect_tables(fw, tables, groupings, ci="wilson")
    assert res.audit.passed
    for t in res.tables.values():
        sup = t[t["suppressed"]]
        assert sup[VALUE_COLUMNS].isna().all().all()
    audit, intervals = audit_tables(fw, tables, res.tables, groupings, exact=True)
    assert audit.passed, audit
    assert all(iv.exact for iv in intervals)


def test_an_unpublished_common_margin_is_used_by_the_attacker() -> None:
    """Facilities and sex cells of one district: the district total is not published, but both
    tables add up to it. Facility A has 10 clients, B 12; women 3, men 19. With only the
    women's cell suppressed, 3 = (10 + 12) − 19: the audit must see it through the district
    margin that neither table shows."""
    tables = _tables({("D1", "female", "none"): (3, 0), ("D1", "male", "none"): (19, 0)})
    fac = tables["facilities"]
    tables["facilities"] = coerce(
        pd.concat([fac, fac.assign(facility_id="F-B", name="B")], ignore_index=True),
        "facilities",
    )
    ivw = tables["interviews"]
    ivw.loc[ivw.index[:12], "facility_id"] = "F-B"  # 12 clients at B (2 of the women), 10 at A
    groupings = {"facility": ("facility_id",), "district_sex": ("district", "sex")}
    fw = _framework(COUNT)
    published = {name: compute_indicators(fw, tables, by=by) for name, by in groupings.items()}
    counts = published["facility"].set_index("facility_id")["numerator"]
    assert counts.to_dict() == {"F-B": 12, "F-D1": 10}
    published["district_sex"] = _blank(
        published["district_sex"], [("D1", "female")], ["district", "sex"]
    )
    audit, intervals = audit_tables(fw, tables, published, groupings, exact=True)
    (iv,) = intervals
    assert (iv.low, iv.high) == (pytest.approx(3), pytest.approx(3))
    assert not audit.passed


def test_groupings_that_cross_in_a_cycle_are_refused() -> None:
    tables = _tables(SMALL | {("D2", "female", "msm"): (20, 2)})
    cycle = {
        "sex_kp": ("sex", "key_population"),
        "kp_district": ("key_population", "district"),
        "district_sex": ("district", "sex"),
    }
    with pytest.raises(DisclosureError, match="cycle"):
        protect_tables(_framework(BREACH, min_cell_size=10), tables, cycle, ci="wilson")


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    counts=st.lists(st.tuples(st.integers(0, 30), st.floats(0, 1)), min_size=12, max_size=12),
    m=st.sampled_from([3, 5, 10]),
)
def test_no_suppressed_cell_is_narrower_than_the_rule(counts, m) -> None:
    """Random 3 districts × 2 sexes × 2 key populations: after protection, the attacker's
    exact interval of every audited quantity contains its protection interval, and equals the
    interval of an attacker written out independently (see :func:`_direct_attack`)."""
    keys = [
        (d, s, k) for d in ("D1", "D2", "D3") for s in ("female", "male") for k in ("msm", "none")
    ]
    cells = {key: (n, round(n * share)) for key, (n, share) in zip(keys, counts, strict=True) if n}
    if len({k[0] for k in cells}) < 2:
        return
    groupings = {
        "national": (),
        "district": ("district",),
        "sex": ("sex",),
        "district_sex_kp": ("district", "sex", "key_population"),
    }
    tables = _tables(cells)
    fw = _framework(BREACH, WAIT, min_cell_size=m)
    res = protect_tables(fw, tables, groupings, ci="wilson")
    audit, intervals = audit_tables(fw, tables, res.tables, groupings, exact=True)
    assert audit.passed, audit
    finest = [k for k in keys if k in cells]
    for iv in intervals:
        assert iv.exact and iv.protected
        low, high = _direct_attack(res.tables, finest, dict(iv.group), iv.quantity)
        assert (iv.low, iv.high) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))


def _direct_attack(
    published: dict[str, pd.DataFrame],
    finest: list[tuple[str, str, str]],
    group: dict[str, str],
    quantity: str,
) -> tuple[float, float]:
    """The attacker's interval, written out directly on the finest cells of the tables.

    Unknowns per district × sex × key population: breaches ``n``, clients ``d`` (the same for
    the breach question and the wait, both answered by all), total wait ``t``. Every value a
    published row shows is the sum of its finest cells; ``0 ≤ n ≤ d`` and ``0 ≤ t ≤ 720·d``
    (the data model's range of ``wait_minutes``). Then minimise and maximise the quantity of
    the cells in ``group``.
    """
    from scipy.optimize import linprog

    k = len(finest)
    names = ("district", "sex", "key_population")

    def members(g: dict[str, str]) -> np.ndarray:
        return np.array(
            [all(g.get(c, ALL) in (ALL, v) for c, v in zip(names, f, strict=True)) for f in finest],
            dtype=float,
        )

    rows, rhs = [], []
    for t in published.values():
        for r in t[~t["suppressed"]].itertuples(index=False):
            sel = members({c: getattr(r, c) for c in names if c in t.columns})
            parts = (  # (offset of the unknowns, published value)
                [(0, r.numerator), (k, r.denominator)]
                if r.indicator_id == "breach"
                else [(2 * k, r.numerator), (k, r.denominator)]
            )
            for off, value in parts:
                row = np.zeros(3 * k)
                row[off : off + k] = sel
                rows.append(row)
                rhs.append(value)
    eye = np.eye(k)
    zero = np.zeros((k, k))
    a_ub = np.block([[eye, -eye, zero], [zero, -720 * eye, eye]])  # n ≤ d, t ≤ 720 d
    sel = members(group)
    c = np.zeros(3 * k)
    if quantity == "numerator":
        c[:k] = sel
    elif quantity == "complement":
        c[:k], c[k : 2 * k] = -sel, sel
    else:  # the sum of waits
        c[2 * k :] = sel
    out = []
    for sense in (1, -1):
        res = linprog(
            sense * c,
            A_ub=a_ub,
            b_ub=np.zeros(2 * k),
            A_eq=np.array(rows),
            b_eq=np.array(rhs),
            bounds=(0, None),
            method="highs",
        )
        assert res.status == 0, res.message
        out.append(sense * res.fun)
    return out[0], out[1]


# ----------------------------------------------------------------------------- engine and CLI


def test_suppressed_rows_blank_every_revealing_column(demo_xa, framework_xa) -> None:
    t = compute_indicators(framework_xa, demo_xa.clean, by=["facility_id", "round"], ci="cluster")
    sup = t[t["suppressed"]]
    assert len(sup) > 0
    assert sup[VALUE_COLUMNS].isna().all().all()
    shown = t[~t["suppressed"] & (t["type"] == "proportion")]
    assert shown["n"].notna().all()


def test_cli_audit_disclosure_passes_on_the_computed_tables(published_xa, capsys) -> None:
    from clm_research.cli import main

    assert main(["audit-disclosure", "XA"]) == 0
    out = capsys.readouterr().out
    assert "disclosure audit passed" in out and "linear programmes" in out


def test_cli_audit_disclosure_fails_on_written_tables_that_leak(published_xa, capsys) -> None:
    from clm_research.cli import main
    from clm_research.paths import country_report_dir

    path = country_report_dir("XA") / "indicators" / "facility_round.csv"
    original = path.read_bytes()
    t = pd.read_csv(path, dtype={"facility_id": "string", "round": "string"})
    count = (t["type"] == "count") & t["suppressed"]
    t.loc[count, "n"] = 1.0  # a suppressed count shown again
    t.to_csv(path, index=False)
    try:
        assert main(["audit-disclosure", "XA", "--written"]) == 1
        assert "FAILED" in capsys.readouterr().out
    finally:
        path.write_bytes(original)


# ----------------------------------------------------------------------------- suppressed, not small

#: (facility, district, round): (clients, breaches). F2 has one client in 2023Q2 (primary with
#: ``min_cell_size`` 5); the table's own rule then suppresses F2's other round, 2023Q1 (5 of 5
#: with a breach: not small, suppressed only to hide 2023Q2 within F2), and 2023Q1's
#: smallest other facility, F3, with F3's other round.
BY_FACILITY = {
    ("F1", "D1", "2023Q1"): (6, 3),
    ("F1", "D1", "2023Q2"): (7, 3),
    ("F1", "D1", "2023Q3"): (5, 2),
    ("F2", "D1", "2023Q1"): (5, 5),
    ("F2", "D1", "2023Q2"): (1, 0),
    ("F3", "D2", "2023Q1"): (5, 2),
    ("F3", "D2", "2023Q2"): (5, 1),
    ("F4", "D2", "2023Q1"): (8, 3),
    ("F4", "D2", "2023Q2"): (9, 4),
    ("F4", "D2", "2023Q3"): (7, 3),
}
BY_FACILITY_GROUPINGS = {
    "national_round": ("round",),
    "facility_round": ("facility_id", "round"),
    "district_round": ("district", "round"),
}
F2_2023Q1 = (("facility_id", "F2"), ("round", "2023Q1"))


def _facility_tables(cells: dict[tuple[str, str, str], tuple[int, int]]) -> dict[str, pd.DataFrame]:
    """Interviews from cells (facility, district, round) → (clients, breaches)."""
    fac = sorted({(f, d) for f, d, _ in cells})
    facilities = coerce(
        pd.DataFrame(
            {
                "facility_id": [f for f, _ in fac],
                "name": [f for f, _ in fac],
                "region": "R",
                "district": [d for _, d in fac],
                "type": "clinic",
                "ownership": "public",
                "clm_start": "2023-01-01",
            }
        ),
        "facilities",
    )
    month = {"Q1": "02", "Q2": "05", "Q3": "08"}
    rows = [
        {
            "facility_id": f,
            "date": f"{r[:4]}-{month[r[4:]]}-01",
            "round": r,
            "breach": i < events,
        }
        for (f, _, r), (n, events) in cells.items()
        for i in range(n)
    ]
    df = pd.DataFrame(rows)
    interviews = coerce(
        pd.DataFrame(
            {
                "interview_id": [f"i{i}" for i in range(len(df))],
                "facility_id": df["facility_id"],
                "date": df["date"],
                "round": df["round"],
                "sex": "female",
                "key_population": "none",
                "on_art": True,
                "wait_minutes": 30.0,
                "confidentiality_breach": df["breach"],
            }
        ),
        "interviews",
    )
    return {"facilities": facilities, "interviews": interviews}


def test_a_suppressed_cell_that_is_not_small_is_not_shown_at_100_percent() -> None:
    """The district margin minus the published facility cells pins a secondary cell at 100%.

    Each table suppressed on its own: in D1 × 2023Q1 (11 clients, 8 breaches) F1 is published
    (6 clients, 3 breaches), so F2 is the remainder, 5 clients and 5 breaches: its clients
    without a breach, 11 − 8 − (6 − 3) = 0 exactly. F2 × 2023Q1 is not small (5 clients), but
    it is published as suppressed and the remainder says all 5 had a breach. Protected, F1 ×
    2023Q1 is suppressed too (complementary): then F1 and F2 share the 3 clients without a
    breach, so F2's lie anywhere in [0, 3] (3 when F1 has none: F1 6 of 6, F2 2 of 5).
    """
    tables = _facility_tables(BY_FACILITY)
    fw = _framework(BREACH, min_cell_size=5)
    own = {n: compute_indicators(fw, tables, by=by) for n, by in BY_FACILITY_GROUPINGS.items()}
    cells = own["facility_round"].set_index(["facility_id", "round"])["suppression"]
    assert cells[("F2", "2023Q1")] == "secondary" and cells[("F2", "2023Q2")] == "primary"
    assert cells[("F1", "2023Q1")] == ""  # the per-table rule leaves the remainder alone
    audit, intervals = audit_tables(fw, tables, own, BY_FACILITY_GROUPINGS, exact=True)
    f2 = {iv.quantity: iv for iv in intervals if iv.group == F2_2023Q1}
    assert set(f2) == {"complement"}  # 5 of 5: only "none without a breach" is at stake
    assert (f2["complement"].low, f2["complement"].high) == (0, pytest.approx(0))
    assert not f2["complement"].protected and not audit.passed
    district = tables["facilities"].set_index("facility_id")["district"].astype("string")
    assert ("district_round", "breach", "D1", 1, "100%") in remainder_disclosures(own, district)

    res = protect_tables(fw, tables, BY_FACILITY_GROUPINGS, ci="wilson")
    assert remainder_disclosures(res.tables, district) == []
    fr = res.tables["facility_round"].set_index(["facility_id", "round"])["suppression"]
    assert fr[("F1", "2023Q1")] == "complementary"
    audit, intervals = audit_tables(fw, tables, res.tables, BY_FACILITY_GROUPINGS, exact=True)
    assert audit.passed, audit
    f2 = {iv.quantity: iv for iv in intervals if iv.group == F2_2023Q1}
    assert (f2["complement"].low, f2["complement"].high) == (0, pytest.approx(3))
    assert f2["complement"].exact and f2["complement"].protected
