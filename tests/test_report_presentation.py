"""The presentation layer against numbers worked out by hand: the summary scorecard, the
verdict rule, the synthesis table and the index page's status logic."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clm_research.evaluation.effects import EFFECT_VERDICTS, effect_verdict
from clm_research.framework import parse_framework

# ------------------------------------------------------------------ a tiny hand-built framework

_IND = {
    "level": "outcomes",
    "unaids_domain": "health_services",
    "dataset": "interviews",
}
FRAMEWORK = parse_framework(
    {
        "name": "hand-built",
        "indicators": [
            {  # improved, target met
                **_IND,
                "id": "vl_result_received",
                "label": "Clients who received their viral-load result",
                "type": "proportion",
                "numerator": "vl_result_received",
                "denominator": "vl_result_received is not null",
                "direction": "higher_is_better",
                "target": 0.7,
            },
            {  # worse, target not met (lower is better)
                **_IND,
                "id": "confidentiality_breach",
                "label": "Clients reporting a confidentiality breach",
                "type": "proportion",
                "numerator": "confidentiality_breach",
                "denominator": "confidentiality_breach is not null",
                "direction": "lower_is_better",
                "target": 0.05,
            },
            {  # no clear change, no target
                **_IND,
                "id": "wait_time_median",
                "label": "Median waiting time",
                "type": "median",
                "value": "wait_minutes",
                "unit": "minutes",
                "direction": "lower_is_better",
            },
            {  # not evaluated (no comparison design), latest suppressed
                **_IND,
                "dataset": "observations",
                "id": "arv_stockout_observed",
                "label": "Visits with an ARV stock-out",
                "type": "proportion",
                "numerator": "arv_stockout",
                "denominator": "arv_stockout is not null",
                "direction": "lower_is_better",
                "target": 0.0,
            },
            {  # an input: never on the scorecard
                **_IND,
                "level": "inputs",
                "id": "interviews_done",
                "label": "Interviews done",
                "type": "count",
                "numerator": "interview_id is not null",
                "direction": "higher_is_better",
            },
        ],
    }
)


def _cells(rows: list[tuple[str, str, float, bool]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["indicator_id", "round", "estimate", "suppressed"])


INDICATORS = _cells(
    [
        ("vl_result_received", "2023Q1", 0.60, False),
        ("vl_result_received", "2024Q3", 0.66, False),
        ("vl_result_received", "2024Q4", 0.72, False),
        ("confidentiality_breach", "2023Q1", 0.04, False),
        ("confidentiality_breach", "2024Q4", 0.09, False),
        ("wait_time_median", "2023Q1", 55.0, False),
        ("wait_time_median", "2024Q4", 50.0, False),
        ("arv_stockout_observed", "2023Q1", 0.10, False),
        ("arv_stockout_observed", "2024Q4", np.nan, True),
    ]
)

EFFECTS = pd.DataFrame(
    [
        # indicator, estimate, ci_low, ci_high, p_adjusted, direction
        ("vl_result_received", 0.05, 0.01, 0.09, 0.012, "higher_is_better"),
        ("confidentiality_breach", 0.03, 0.01, 0.05, 0.004, "lower_is_better"),
        ("wait_time_median", -2.0, -6.0, 2.0, 0.40, "lower_is_better"),
        ("arv_stockout_observed", np.nan, np.nan, np.nan, np.nan, "lower_is_better"),
    ],
    columns=["indicator_id", "estimate", "ci_low", "ci_high", "p_adjusted", "direction"],
)
EFFECTS["verdict"] = [
    effect_verdict(e, p, d)
    for e, p, d in zip(
        EFFECTS["estimate"], EFFECTS["p_adjusted"], EFFECTS["direction"], strict=True
    )
]


@pytest.mark.parametrize(
    ("estimate", "p_adjusted", "direction", "expected"),
    [
        (0.05, 0.012, "higher_is_better", "improved"),
        (-0.05, 0.012, "higher_is_better", "worse"),
        (-3.0, 0.049, "lower_is_better", "improved"),  # just under the 5% FDR
        (-3.0, 0.05, "lower_is_better", "null"),  # at the FDR: not detected
        (3.0, 0.001, "lower_is_better", "worse"),
        (3.0, 0.50, "lower_is_better", "null"),
        (float("nan"), float("nan"), "higher_is_better", "not_evaluated"),
        (0.2, float("nan"), "higher_is_better", "not_evaluated"),
    ],
)
def test_the_verdict_rule(
    estimate: float, p_adjusted: float, direction: str, expected: str
) -> None:
    assert effect_verdict(estimate, p_adjusted, direction) == EFFECT_VERDICTS[expected]


@pytest.fixture(scope="module")
def scorecard() -> pd.DataFrame:
    from clm_research.report.summary import build_scorecard

    return build_scorecard(FRAMEWORK, INDICATORS, EFFECTS, "2023Q1", "2024Q4").set_index(
        "indicator_id"
    )


def test_the_scorecard_lists_outcomes_and_impact_only(scorecard: pd.DataFrame) -> None:
    assert list(scorecard.index) == [
        "vl_result_received",
        "confidentiality_breach",
        "wait_time_median",
        "arv_stockout_observed",
    ]


def _display_rows(scorecard: pd.DataFrame) -> dict[str, list[str]]:
    """The scorecard as the reader sees it: indicator label -> the row's cell texts."""
    from clm_research.report.summary import scorecard_display

    table = scorecard_display(scorecard.reset_index(), min_cell_size=10)
    frame = table.to_frame()
    return {row.iloc[0]: list(row) for _, row in frame.iterrows()}


def test_improved_and_target_met(scorecard: pd.DataFrame) -> None:
    row = scorecard.loc["vl_result_received"]
    assert row["verdict"] == "improved with CLM"
    # the saved scorecard keeps full precision; the displayed one prints percentages
    assert (row["baseline"], row["latest"], row["target"]) == (0.60, 0.72, 0.7)
    assert row["target_status"] == "target met"  # 72% >= 70%
    shown = _display_rows(scorecard)["Clients who received their viral-load result (%)"]
    assert shown[1:5] == ["60.0%", "72.0%", "70.0%", "✓ met"]
    # +0.05 on the 0-1 scale is +5.0 percentage points (no adjusted interval given: 95% CI)
    assert shown[5] == "+5.0 pp (+1.0 to +9.0)" and shown[6] == "0.01"
    assert shown[7] == "▲ improved with CLM"
    words = row["in plain words"]
    assert "60.0% in 2023Q1, 72.0% in 2024Q4" in words and "target 70.0%: met" in words
    assert "+5.0 percentage points" in words and "+1.0 to +9.0" in words
    assert "improved with CLM" in words


def test_worse_and_target_not_met(scorecard: pd.DataFrame) -> None:
    row = scorecard.loc["confidentiality_breach"]
    assert row["verdict"] == "worse with CLM"  # a rise in breaches is worse
    assert row["target_status"] == "target not met"  # 9% > 5%
    assert "+3.0 percentage points" in row["in plain words"]
    shown = _display_rows(scorecard)["Clients reporting a confidentiality breach (%)"]
    assert shown[4] == "✗ not met" and shown[7] == "▼ worse with CLM"
    assert shown[6] == "0.004"  # three decimals below 0.01


def test_no_clear_change_and_no_target(scorecard: pd.DataFrame) -> None:
    row = scorecard.loc["wait_time_median"]
    assert row["verdict"] == "no clear change"
    assert row["target_status"] == "no target" and math.isnan(row["target"])
    assert "-2.0 minutes" in row["in plain words"]
    shown = _display_rows(scorecard)["Median waiting time (minutes)"]
    # a missing target is a dash with a footnote saying why (its marker), never NaN
    assert shown[3].startswith("–") and shown[3] != "–" and "nan" not in " ".join(shown).lower()
    assert shown[6] == "0.40"


def test_not_evaluated_and_suppressed(scorecard: pd.DataFrame) -> None:
    from clm_research.report.summary import scorecard_display

    row = scorecard.loc["arv_stockout_observed"]
    assert row["verdict"] == "not evaluated (no comparison)"
    assert row["latest_suppressed"] and row["target_status"] == "suppressed"
    assert math.isnan(row["effect"]) and math.isnan(row["p_adjusted"])
    assert "No comparison group" in row["in plain words"]
    assert "no publishable estimate for 2024Q4" in row["in plain words"]
    table = scorecard_display(scorecard.reset_index(), min_cell_size=10)
    shown = _display_rows(scorecard)["Visits with an ARV stock-out (%)"]
    assert shown[2].startswith("suppressed")
    reasons = set(table.footnotes)
    assert "Suppressed: fewer than 10 respondents (privacy)." in reasons


def test_no_data_in_the_reporting_round() -> None:
    from clm_research.report.summary import build_scorecard

    card = build_scorecard(FRAMEWORK, INDICATORS, EFFECTS, "2023Q1", "2025Q1")
    assert set(card["target_status"]) == {"no data"}


def test_the_headline_names_what_the_scorecard_says(scorecard: pd.DataFrame) -> None:
    from clm_research.report.summary import headline, headline_html

    text = headline(scorecard.reset_index())
    assert text.startswith("CLM facilities improved Clients who received their viral-load result")
    assert "worse with CLM: Clients reporting a confidentiality breach" in text
    assert "no clear change in Median waiting time" in text
    assert "Targets met: 1 of 2." in text  # two indicators with a target and a value
    assert "1 indicator without a comparison group" in text
    box = headline_html(scorecard.reset_index(), "Arcadia", "2024Q4")
    assert "Improved with CLM:</b> Clients who received their viral-load result." in box


def test_the_headline_without_any_comparison_does_not_claim_no_improvement(
    scorecard: pd.DataFrame,
) -> None:
    # a country with routine data only (no CLM and comparison facilities): nothing was
    # evaluated, so "no indicator improved" or "worse: none" would be claims without evidence
    from clm_research.evaluation.effects import EFFECT_VERDICTS
    from clm_research.report.summary import headline, headline_html

    card = scorecard.reset_index()
    card["verdict"] = EFFECT_VERDICTS["not_evaluated"]
    text = headline(card)
    assert text.startswith("No effect of CLM could be evaluated.")
    assert "improved" not in text and "worse" not in text
    assert f"{len(card)} indicators without a comparison group" in text
    box = headline_html(card, "Malawi", "2019Q4")
    assert "No effect of CLM could be evaluated" in box and "Worse with CLM" not in box


# ------------------------------------------------------------------ synthesis


def test_pooled_effects_match_a_hand_computed_dersimonian_laird_case() -> None:
    """Three countries: estimates 1, 2, 4 with standard errors 0.5, 0.5, 1.

    Fixed-effect weights 4, 4, 1; mean 16/9; Q = 4(7/9)² + 4(2/9)² + (20/9)² = 68/9;
    C = 9 − 33/9 = 16/3; τ² = (Q − 2)/C = 25/24. Typical within-country variance
    s² = 2·9/(81 − 33) = 3/8, so I² = τ²/(τ² + s²) = 25/34 (= (Q − 2)/Q for DerSimonian–Laird).
    Random-effects weights 24/31, 24/31, 24/49: pooled = (72/31 + 96/49)/(48/31 + 24/49),
    its SE = (48/31 + 24/49)^(−1/2).
    """
    from clm_research.evaluation.meta import pool_effects

    z = 1.959963984540054
    rows = []
    for country, est, se in (("AA", 1.0, 0.5), ("QM", 2.0, 0.5), ("ZZ", 4.0, 1.0)):
        rows.append(
            {
                "indicator_id": "x",
                "label": "An indicator",
                "country": country,
                "estimate": est,
                "ci_low": est - z * se,
                "ci_high": est + z * se,
            }
        )
    rows.append({**rows[0], "indicator_id": "only_one"})  # one country: not pooled
    pooled = pool_effects(pd.DataFrame(rows), method="dl")
    assert list(pooled["indicator_id"]) == ["x"]
    row = pooled.iloc[0]
    sw = 48 / 31 + 24 / 49
    mu = (72 / 31 + 96 / 49) / sw
    assert row["countries"] == 3
    assert row["tau2"] == pytest.approx(25 / 24, rel=1e-9)
    assert row["i2"] == pytest.approx(25 / 34, rel=1e-9)
    assert row["pooled"] == pytest.approx(mu, rel=1e-9)
    assert row["ci_low"] == pytest.approx(mu - z / math.sqrt(sw), rel=1e-9)
    assert row["ci_high"] == pytest.approx(mu + z / math.sqrt(sw), rel=1e-9)


def test_the_synthesis_table_reads_each_countrys_published_effects(tmp_path: Path) -> None:
    import os

    from clm_research.report.synthesis import pooled_effects

    z = 1.959963984540054
    old = os.environ.get("CLM_REPORTS_DIR")
    os.environ["CLM_REPORTS_DIR"] = str(tmp_path)
    try:
        for country, est, se in (("AA", 1.0, 0.5), ("QM", 2.0, 0.5), ("ZZ", 4.0, 1.0)):
            folder = tmp_path / country / "2024Q4" / "tables"
            folder.mkdir(parents=True)
            pd.DataFrame(
                [
                    {
                        "indicator_id": "x",
                        "label": "An indicator",
                        "estimate": est,
                        "ci_low": est - z * se,
                        "ci_high": est + z * se,
                    }
                ]
            ).to_parquet(folder / "clm_effects.parquet")
        table = pooled_effects(["AA", "QM", "ZZ"], "2024Q4")
    finally:
        if old is None:
            os.environ.pop("CLM_REPORTS_DIR")
        else:
            os.environ["CLM_REPORTS_DIR"] = old
    assert table["i2"].notna().all() and table["tau2"].notna().all()
    assert table.iloc[0]["countries"] == 3


# ------------------------------------------------------------------ index page


def _status(base: Path, code: str, **entries: dict[str, object]) -> None:
    (base / code).mkdir(parents=True, exist_ok=True)
    (base / code / "status.json").write_text(json.dumps(entries))


def test_the_index_shows_each_countrys_status_and_links_only_good_reports(tmp_path: Path) -> None:
    from clm_research.report.index import collect_status, render_index

    base = tmp_path / "reports"
    good = {
        "status": "succeeded",
        "period": "2024Q4",
        "report": "XA/2024Q4/report.html",
        "headline": "3 improved with CLM",
        "finished": "2025-01-20T10:00:00+00:00",
    }
    (base / "XA" / "2024Q4").mkdir(parents=True)
    (base / "XA" / "2024Q4" / "report.html").write_text("<html></html>")
    # XA: the last run failed, but the last good report stays linked
    _status(
        base,
        "XA",
        last_run={"status": "failed", "period": "2025Q1", "message": "gate: 12% quarantined"},
        last_good=good,
    )
    # XB: succeeded, but its report folder was deleted: no dead link
    _status(
        base,
        "XB",
        last_run={**good, "report": "XB/2024Q4/report.html"},
        last_good={**good, "report": "XB/2024Q4/report.html"},
    )
    # QZ: a status pointing outside the reports folder is never linked
    _status(
        base,
        "QZ",
        last_run={**good, "report": "../../etc/passwd"},
        last_good=good | {"report": "/etc/passwd"},
    )
    rows = {r["code"]: r for r in collect_status(base)}
    assert {"XA", "XB", "QZ"} <= set(rows)
    html = render_index(list(rows.values()), base)
    xa = html[html.index("<b>XA</b>") : html.index("</tr>", html.index("<b>XA</b>"))]
    assert 'class="status-failed"' in xa and "gate: 12% quarantined" in xa
    assert 'href="XA/2024Q4/report.html"' in xa  # the last good report
    xb = html[html.index("<b>XB</b>") : html.index("</tr>", html.index("<b>XB</b>"))]
    assert "no report yet" in xb and "href" not in xb
    qz = html[html.index("<b>QZ</b>") : html.index("</tr>", html.index("<b>QZ</b>"))]
    assert "href" not in qz
    # a country with parameters but no run at all
    never = render_index([{"code": "QM", "name": "Nowhere"}], base)
    assert "status-never" in never and "no report yet" in never


# ------------------------------------------------------------------ the gate cannot be skipped


def test_a_broken_quality_package_fails_the_run_with_a_named_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from clm_research.run.country import CountryTask, run_country

    monkeypatch.setenv("CLM_REPORTS_DIR", str(tmp_path / "reports"))
    for name in ("clm_research.pipeline", "clm_research.quality.gate"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "clm_research.quality.gate", None)  # import fails
    task = CountryTask(
        country="XA",
        period="2024Q4",
        notebooks=[],
        parameters={"country": "XA", "period": "2024Q4", "output_dir": ".", "seed": 0},
    )
    result = run_country(task)
    assert result.status == "failed" and result.stage == "gate"
    assert "ModuleNotFoundError" in result.error or "ImportError" in result.error
    assert not (tmp_path / "reports" / "XA" / "2024Q4").exists()
