"""The one formatting module and the report figures, against values worked out by hand.

Tables: percentages for proportions, decimals per indicator type and magnitude, small rates
per 1,000, p-values in journal style, no NaN (a dash with a footnote saying why), no index,
wide tables split into parts that fit. Figures: at most the A4 text width, no text below
9 pt, an alternative text built from the numbers shown.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from clm_research.report.format import (
    DASH,
    Cell,
    Column,
    IndicatorFormat,
    PresentationTable,
    format_count,
    format_number,
    format_p,
    format_percent,
    ratio_text,
    table_from_frame,
)


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.00004, "<0.001"),
        (0.000999, "<0.001"),
        (0.001, "0.001"),
        (0.0045, "0.004"),  # three decimals below 0.01: 0.004, never 0.00
        (0.031, "0.03"),
        (0.43, "0.43"),
        (0.995, ">0.99"),
        (float("nan"), DASH),
        (None, DASH),
    ],
)
def test_p_values_in_journal_style(p: float | None, text: str) -> None:
    assert format_p(p) == text


def test_numbers_percentages_and_counts() -> None:
    assert format_number(1234.567, 1) == "1,234.6"
    assert format_number(-0.04, 1) == "0.0"  # never "-0.0"
    assert format_number(0.04, 1, sign=True) == "0.0"
    assert format_number(3.2, 1, sign=True) == "+3.2"
    assert format_percent(0.452769) == "45.3%"  # the funnel's raw 0.452769 of issue 12
    assert format_count(14400.0) == "14,400" and format_count(np.nan) == DASH
    assert ratio_text(0.781287, 0.690224, 0.884364) == "0.78 (0.69 to 0.88)"


def test_proportions_are_percentages_and_their_differences_points() -> None:
    f = IndicatorFormat("proportion", "", 0.75)
    assert f.value(0.7534) == "75.3%"
    assert f.interval(0.712, 0.789) == "71.2% to 78.9%"
    assert f.effect(0.0581, 0.0119, 0.1043) == "+5.8 pp (+1.2 to +10.4)"
    assert f.label("Issues resolved") == "Issues resolved (%)"


def test_decimals_follow_the_magnitude_of_the_indicator() -> None:
    minutes = IndicatorFormat("mean", "minutes", 98.6)
    assert minutes.value(88.77) == "88.8"  # 10-100: one decimal
    assert IndicatorFormat("mean", "minutes", 140).value(133.4) == "133"  # >= 100: none
    assert IndicatorFormat("rate", "distributed per required", 0.85).value(0.8312) == "0.83"
    assert minutes.label("Median waiting time") == "Median waiting time (minutes)"
    # an effect keeps the level's decimals, or more when it is small (never "+0.0 (…)")
    sat = IndicatorFormat("mean", "points (1-5)", 3.9)
    assert sat.effect(0.1452, 0.069, 0.221) == "+0.15 points (1-5) (+0.07 to +0.22)"
    assert sat.label("Mean satisfaction with the visit (1-5)") == (
        "Mean satisfaction with the visit (1-5)"
    )


def test_small_rates_are_shown_per_thousand() -> None:
    """0.0126 interruptions per person-month = 12.6 per 1,000 person-months; the effect
    -0.00152 (-0.00358 to +0.00067) is -1.5 (-3.6 to +0.7) per 1,000, not -0.0 (-0.0 to +0.0)."""
    f = IndicatorFormat("rate", "per person-month on ART", 0.0126)
    assert f.multiplier == 1000
    assert f.value(0.0126) == "12.6"
    assert f.unit_text == "per 1,000 person-months on ART"
    assert f.label("Treatment interruptions per person-month on ART") == (
        "Treatment interruptions per 1,000 person-months on ART"
    )
    assert f.difference(-0.00152, with_unit=False) == "-1.5"
    assert f.interval(-0.00358, 0.00067, sign=True) == "-3.6 to +0.7"
    # a rate of about one per unit is left alone
    assert IndicatorFormat("rate", "issues per visit", 1.8).multiplier == 1


def test_a_table_has_no_nan_no_index_and_says_why_a_cell_is_missing() -> None:
    t = PresentationTable([Column("Indicator", align="left", wrap=True), Column("Value")])
    t.add_row(["Waiting time (minutes)", "74.0"])
    t.add_row(["Stock-outs (%)", t.missing("Suppressed: fewer than 10 respondents.")])
    t.add_row(["Respect (%)", t.missing("Suppressed: fewer than 10 respondents.")])
    t.add_row(["Confidentiality (%)", DASH])  # a bare dash gets a reason too
    html = t.html()
    assert "NaN" not in html and "None" not in html and "<th>0</th>" not in html
    assert html.count("<sup>a</sup>") == 3  # two cells + the footnote itself
    assert "<sup>a</sup> Suppressed: fewer than 10 respondents." in html
    assert "<sup>b</sup> No value in the data for this cell." in html
    with pytest.raises(TypeError, match="format it first"):
        t.add_row(["x", 3.5])  # raw numbers never reach a report table
    with pytest.raises(ValueError, match="2 columns"):
        t.add_row(["only one"])


def test_wide_tables_split_into_balanced_parts_repeating_the_key_column() -> None:
    cols = [Column("Facility", align="left")] + [Column(f"I{k}") for k in range(16)]
    t = PresentationTable(cols, caption="Facility scorecard")
    t.add_row(["F1", *[str(k) for k in range(15)], t.missing("Suppressed.")])
    parts = t.split(key_columns=1, max_columns=6)
    # 16 indicators, at most 5 a table: 4 tables of 4 (not 5 + 5 + 5 + 1)
    assert [len(p.columns) - 1 for p in parts] == [4, 4, 4, 4]
    assert all(p.headers[0] == "Facility" for p in parts)
    assert parts[0].caption == "Facility scorecard (part 1 of 4)"
    assert "Suppressed." in parts[3].footnotes and "Suppressed." not in parts[0].footnotes
    t.columns.append(Column("I16"))
    t.rows = [[*t.data_rows()[0], Cell("x")]]
    assert [len(p.columns) - 1 for p in t.split(1, 6)] == [5, 4, 4, 4]  # 17 columns


def test_table_from_frame_formats_without_index() -> None:
    df = pd.DataFrame(
        {"table": ["interviews", "routine"], "rows": [14562, 2163], "share": [0.011, np.nan]}
    )
    t = table_from_frame(
        df,
        {"table": "Table", "rows": "Rows received", "share": "Quarantined (%)"},
        formats={"share": lambda v: "" if v != v else format_percent(v)},
    )
    frame = t.to_frame()
    assert list(frame.columns) == ["Table", "Rows received", "Quarantined (%)"]
    assert frame.iloc[0].tolist() == ["interviews", "14,562", "1.1%"]
    assert frame.iloc[1, 2] == DASH + "a"


def test_a_cell_renders_its_markers_and_escapes_text() -> None:
    c = Cell("<b>5</b>", markers=("a",))
    assert c.html() == "&lt;b&gt;5&lt;/b&gt;<sup>a</sup>" and c.plain() == "<b>5</b>a"


# ------------------------------------------------------------------ figures


@pytest.fixture(scope="module")
def country(tmp_path_factory: pytest.TempPathFactory):
    """Demo country XB ingested (fast path) into a temporary data folder."""
    from clm_research.pipeline import ensure_country_data
    from clm_research.report import context, impact, outcomes

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("clm-figures")
    mp.setenv("CLM_DATA_DIR", str(root / "data"))
    mp.setenv("CLM_REPORTS_DIR", str(root / "reports"))
    for f in (context._tables, context._published, context.effect_panel, context.clm_effects):
        f.cache_clear()
    impact.interrupted_time_series.cache_clear()
    outcomes.client_models.cache_clear()
    ensure_country_data("XB")
    yield "XB"
    for f in (context._tables, context._published, context.effect_panel, context.clm_effects):
        f.cache_clear()
    mp.undo()


def _report_figures(country: str) -> dict[str, object]:
    from clm_research.report import accountability, impact, plan, services

    period = "2024Q4"
    scopes = accountability.funnel_scopes(country, period)
    km = accountability.resolution_curve(country)
    its = impact.interrupted_time_series(country, "treatment_interruption", controlled=True)
    figs = {
        "trends": services.trend_figure(country, ["wait_time_median", "vl_result_received"]),
        "map_higher_better": services.district_map(country, "vl_result_received", period),
        "map_lower_better": services.district_map(country, "wait_time_median", period),
        "funnel": accountability.funnel_figure(scopes),
        "km": accountability.resolution_figure(km),
        "impact_trends": impact.impact_trends(country),
        "its": impact.its_figure(country, its, "treatment_interruption"),
    }
    analysis = plan.planned_analysis(country)
    if analysis is not None:
        figs["plan"] = plan.plan_figure(analysis)
    return figs


def test_every_figure_is_readable_at_report_size(country: str) -> None:
    from matplotlib.text import Text

    from clm_research.report.figures import FIGURE_WIDTH_IN, MIN_FONT_PT

    for name, rf in _report_figures(country).items():
        fig = rf.figure
        rf.png()  # drawn once, as the report draws it
        assert fig.get_size_inches()[0] <= FIGURE_WIDTH_IN + 1e-9, name
        small = [
            (t.get_text(), t.get_fontsize())
            for t in fig.findobj(Text)
            if t.get_text().strip() and t.get_visible() and t.get_fontsize() < MIN_FONT_PT
        ]
        assert small == [], (name, small)
        # axes carry labels (units), never the bare word "estimate" or a column code
        for ax in fig.axes:
            if not ax.get_visible() or not ax.has_data():
                continue
            labels = (ax.get_xlabel(), ax.get_ylabel())
            assert "estimate" not in labels and "clm_arm" not in labels, (name, labels)
            legend = ax.get_legend()
            if legend is not None:
                assert legend.get_title().get_text() != "clm_arm", name
        bad = re.compile(r"No description|nan|None|<Figure")
        assert len(rf.alt) > 40 and not bad.search(rf.alt), (name, rf.alt)


def test_proportions_have_percent_axes_and_maps_are_direction_aware(country: str) -> None:
    from matplotlib.ticker import PercentFormatter

    figs = _report_figures(country)
    trends = figs["trends"].figure
    vl_axis = [ax for ax in trends.axes if "viral-load" in ax.get_title(loc="left")][0]
    assert isinstance(vl_axis.yaxis.get_major_formatter(), PercentFormatter)

    # the colour bar is titled with the unit and says which way is better
    def labels(fig) -> list[str]:
        return [" ".join(ax.get_ylabel().split()) for ax in fig.axes if ax.get_ylabel()]

    hb, lb = labels(figs["map_higher_better"].figure), labels(figs["map_lower_better"].figure)
    assert any("higher is better" in t and "(%)" in t for t in hb), hb
    assert any("lower is better" in t and "minutes" in t for t in lb), lb
    assert "darker is better" in figs["map_lower_better"].alt


def test_figures_carry_their_alt_text_into_the_notebook_output(country: str) -> None:
    rf = _report_figures(country)["km"]
    data, meta = rf._repr_mimebundle_()
    assert data["image/png"] and meta["image/png"]["alt"] == rf.alt
    assert meta["image/png"]["width"] == round(rf.figure.get_size_inches()[0] * 96)
    assert "Median" in rf.caption and "95% CI" in rf.caption
    assert not math.isnan(float(re.search(r"median (\d+) days", rf.alt).group(1)))
