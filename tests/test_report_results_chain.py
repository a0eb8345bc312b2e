"""The results-chain diagram as a reader sees it: nothing overlaps, nothing is cut, text legible.

Checked geometrically from matplotlib's renderer (the drawn extents of every box, label, level
name, link marker and the legend) at the printed width, for the demo framework, for a framework
with many long-named indicators per level, and for a country whose issues table or issue
category column is absent (those links are "not collected", drawn and worded so).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from clm_research.evaluation.chain import (
    LINK_STYLES,
    ChainResult,
    chain_alt_text,
    chain_analysis,
    chain_link_numbers,
    chain_links_alt_text,
    plot_chain,
    plot_chain_links,
)
from clm_research.report.figures import FIGURE_WIDTH_IN, MIN_FONT_PT, ReportFigure

TOL = 0.5  # pixels


@pytest.fixture(scope="module")
def chain_xa(demo_xa, framework_xa) -> ChainResult:
    return chain_analysis(demo_xa.clean, framework_xa)


@pytest.fixture(scope="module")
def chain_no_issues(demo_xa, framework_xa) -> ChainResult:
    tables = {k: v for k, v in demo_xa.clean.items() if k != "issues"}
    return chain_analysis(tables, framework_xa, mediation=False)


def _extents(fig):
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    out = {}
    for a in fig.findobj(lambda a: bool(a.get_gid())):
        out[str(a.get_gid())] = a.get_window_extent(r)
    return out


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 - TOL and b.x0 < a.x1 - TOL and a.y0 < b.y1 - TOL and b.y0 < a.y1 - TOL


def _inside(inner, outer) -> bool:
    return (
        inner.x0 >= outer.x0 - TOL
        and inner.x1 <= outer.x1 + TOL
        and inner.y0 >= outer.y0 - TOL
        and inner.y1 <= outer.y1 + TOL
    )


def _legible(fig) -> None:
    from matplotlib.text import Text

    w, _ = fig.get_size_inches()
    assert w <= FIGURE_WIDTH_IN + 1e-6
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip()]
    # points at the printed size (drawn at print width): the report's minimum, so that
    # ReportFigure never has to enlarge a text after the layout was measured
    assert sizes and min(sizes) >= MIN_FONT_PT


def check_diagram(fig) -> dict:
    """Every drawn element inside the figure; boxes, markers, level names and the legend
    apart; each label inside its box and each number inside its marker."""
    _legible(fig)
    ext = _extents(fig)
    page = fig.bbox
    boxes = {k[4:]: v for k, v in ext.items() if k.startswith("box:")}
    markers = {k[7:]: v for k, v in ext.items() if k.startswith("marker:")}
    levels = [v for k, v in ext.items() if k.startswith("level:")]
    assert boxes and levels
    for k, v in ext.items():
        if not k.startswith("arrow:"):
            assert _inside(v, page), k
    for (a, ea), (b, eb) in itertools.combinations(boxes.items(), 2):
        assert not _overlap(ea, eb), (a, b)
    for i, e in boxes.items():
        assert _inside(ext[f"label:{i}"], e), i
    for (a, ea), (b, eb) in itertools.combinations(markers.items(), 2):
        assert not _overlap(ea, eb), ("markers", a, b)
    for n, e in markers.items():
        assert _inside(ext[f"number:{n}"], e), n
        for i, eb in boxes.items():
            assert not _overlap(e, eb), ("marker on a box", n, i)
    fixed = [*boxes.values(), *markers.values()]
    for ea, eb in itertools.combinations(levels, 2):
        assert not _overlap(ea, eb)
    for e in levels:
        assert not any(_overlap(e, b) for b in fixed)
    if "legend" in ext:
        assert not any(_overlap(ext["legend"], b) for b in [*fixed, *levels])
    return ext


def check_links_chart(fig) -> None:
    _legible(fig)
    ext = _extents(fig)
    rows = [v for k, v in ext.items() if k.startswith("row:")]
    reasons = [v for k, v in ext.items() if k.startswith("reason:")]
    chart = ext["axes"]
    for e in [*rows, *reasons]:
        assert _inside(e, fig.bbox)
    for a, b in itertools.combinations(rows, 2):
        assert not _overlap(a, b)
    for e in rows:
        assert not _overlap(e, chart)
    for e in reasons:
        assert e.x1 <= fig.bbox.x1 + TOL
    for a, b in itertools.combinations(reasons, 2):
        assert not _overlap(a, b)


# ----------------------------------------------------------------------------- demo framework
def test_demo_diagram_is_readable_at_print_width(chain_xa) -> None:
    status = {i: s for i, s in zip(chain_xa.indicators["id"], itertools.cycle(["green", "red"]))}
    fig = plot_chain(chain_xa, status, status_title="status in 2024Q4")
    ext = check_diagram(fig)
    shown = chain_link_numbers(chain_xa)
    # every drawn link has its numbered marker; structural links (per organisation) are not drawn
    assert {f"marker:{n}" for n in shown["number"]} <= set(ext)
    assert len(shown) == len(chain_xa.links) - 6
    # the report keeps it as drawn: 7 inches, no text raised or shrunk
    rf = ReportFigure(fig, chain_alt_text(chain_xa, status))
    assert rf.width_px == round(FIGURE_WIDTH_IN * 96)
    assert rf.figure.get_size_inches()[1] < 10.0  # fits an A4 page's text height
    assert "Link 1," in rf.alt and "the chain breaks here" in rf.alt
    check_links_chart(plot_chain_links(chain_xa))


def test_links_chart_turns_effects_toward_progress(chain_xa) -> None:
    alt = chain_links_alt_text(chain_xa)
    t = chain_link_numbers(chain_xa).set_index(["upstream", "downstream"])
    row = t.loc[("issues_resolved", "medicine_stockout_experienced")]
    # resolving stock-out issues lowers stock-outs (lower is better): drawn as positive
    assert row["standardized"] < 0 and row["expected_sign"] == -1
    assert f"Link {int(row['number'])}, Issues resolved to ART clients" in alt
    assert f"{-row['standardized']:+.2f}" in alt


# ----------------------------------------------------------------------------- many indicators
def _synthetic(per_level: dict[str, int], seed: int = 3) -> ChainResult:
    """A chain with many long-named indicators per level and every kind of link."""
    rng = np.random.default_rng(seed)
    words = (
        "clients reporting that the facility staff explained their treatment options and "
        "side-effects clearly during the consultation visit with viral-load monitoring"
    ).split()
    inds, by_level = [], {}
    for level, n in per_level.items():
        for k in range(n):
            length = int(rng.integers(3, len(words)))
            label = " ".join(words[:length]).capitalize() + f" {level[:3]}{k}"
            inds.append({"id": f"{level}_{k}", "label": label, "level": level, "type": "mean"})
            by_level.setdefault(level, []).append(f"{level}_{k}")
    indicators = pd.DataFrame(inds).assign(
        direction="higher_is_better", dataset="interviews", unit="", not_collected=""
    )
    indicators.loc[indicators["id"] == "outcomes_1", "not_collected"] = "not collected: no x table"
    levels = list(per_level)
    keys = list(LINK_STYLES)
    rows = []
    label = dict(zip(indicators["id"], indicators["label"], strict=True))
    for a, b in itertools.pairwise(levels):
        # every indicator linked (drawn): each upstream to two downstream, each downstream fed
        pairs = {
            (u, str(d))
            for u in by_level[a]
            for d in rng.choice(by_level[b], size=min(2, len(by_level[b])), replace=False)
        }
        pairs |= {(str(rng.choice(by_level[a])), d) for d in by_level[b]}
        for u, d in sorted(pairs):
            key = keys[len(rows) % len(keys)]
            est = key not in ("not_estimable", "not_collected")
            std = float(rng.normal(0.3, 0.2))
            rows.append(
                {
                    "link": f"{u} → {d}",
                    "upstream": u,
                    "downstream": d,
                    "where": None,
                    "lag": 1,
                    "method": "within_facility",
                    "upstream_label": label[u],
                    "downstream_label": label[d],
                    "status": "estimated" if est else "not estimable",
                    "reason": "" if est else f"{key.replace('_', ' ')}: no issues table",
                    "reason_kind": ""
                    if est
                    else "not collected"
                    if key == "not_collected"
                    else "insufficient data",
                    "strength": key if est else "not_estimable",
                    "estimate": std,
                    "ci_low": std - 0.2,
                    "ci_high": std + 0.2,
                    "standardized": std if est else math.nan,
                    "standardized_ci_low": std - 0.2,
                    "standardized_ci_high": std + 0.2,
                    "expected_sign": 1,
                }
            )
    return ChainResult(
        method="synthetic", effects=(), links=pd.DataFrame(rows), indicators=indicators
    )


@pytest.mark.parametrize(
    "per_level",
    [
        {"activities": 6, "outputs": 8, "outcomes": 10, "impact": 5},
        {"inputs": 3, "activities": 5, "outputs": 5, "outcomes": 7, "impact": 3},
        {"outputs": 1, "outcomes": 2},
    ],
)
def test_many_indicators_per_level_never_overlap(per_level) -> None:
    result = _synthetic(per_level)
    status = dict(zip(result.indicators["id"], itertools.cycle(["green", "amber", "red", ""])))
    status = {k: v for k, v in status.items() if v}
    fig = plot_chain(result, status)
    check_diagram(fig)
    # taller with more boxes per level; never wider than the printed width
    assert fig.get_size_inches()[0] == pytest.approx(FIGURE_WIDTH_IN)
    check_links_chart(plot_chain_links(result))


def test_height_follows_the_boxes_per_level() -> None:
    small = plot_chain(_synthetic({"outputs": 2, "outcomes": 3}))
    big = plot_chain(_synthetic({"outputs": 2, "outcomes": 9}))
    assert big.get_size_inches()[1] > small.get_size_inches()[1] + 2


# ----------------------------------------------------------------------------- not collected
def test_missing_tables_and_columns_are_not_collected(chain_no_issues, demo_xa, framework_xa):
    t = chain_no_issues.links.set_index(["upstream", "downstream"])
    for pair in [
        ("issues_action_agreed", "issues_resolved"),
        ("issues_resolved", "medicine_stockout_experienced"),
        ("feedback_meetings_held", "issues_per_facility_round"),
    ]:
        assert t.loc[pair, "reason"] == "not collected: no issues table", pair
        assert t.loc[pair, "reason_kind"] == "not collected"
    # links that do not need issues are still estimated
    assert t.loc[("wait_time_mean", "treatment_interruption"), "status"] == "estimated"
    ind = chain_no_issues.indicators.set_index("id")
    assert ind.loc["issues_resolved", "not_collected"] == "not collected: no issues table"
    assert ind.loc["wait_time_mean", "not_collected"] == ""
    assert "not collected: no issues table" in chain_no_issues.paragraph()
    fig = plot_chain(chain_no_issues, {"wait_time_mean": "green"})
    check_diagram(fig)
    # not-collected indicators are grey dotted boxes marked so; their links dotted grey
    box = next(a for a in fig.findobj(lambda a: a.get_gid() == "box:issues_resolved"))
    assert box.get_linestyle() == ":"
    label = next(a for a in fig.findobj(lambda a: a.get_gid() == "label:issues_resolved"))
    assert "not collected" in label.get_text().replace("\n", " ")
    alt = chain_alt_text(chain_no_issues)
    assert "Issues resolved (not collected)" in alt and "not tested (not collected" in alt
    # a missing column is "not collected" too, with the column named
    tables = dict(demo_xa.clean)
    tables["issues"] = tables["issues"].drop(columns=["category"])
    res = chain_analysis(
        tables, framework_xa, links=[("issues_resolved", "wait_time_mean")], mediation=False
    )
    row = res.links.iloc[0]
    assert row["reason_kind"] == "not collected"
    assert row["reason"].startswith("not collected: no 'category' column in the issues table")
    # a client-survey question not asked in this country: its links are not collected
    tables = dict(demo_xa.clean)
    tables["interviews"] = tables["interviews"].drop(columns=["treated_with_respect"])
    res = chain_analysis(
        tables,
        framework_xa,
        links=[("treated_with_respect", "treatment_interruption")],
        mediation=False,
    )
    row = res.links.iloc[0]
    assert row["reason"] == (
        "not collected: no 'treated_with_respect' column in the interviews table "
        "(needed by “Clients treated with respect (often or always)”)"
    )
    assert res.indicators.set_index("id").loc["treated_with_respect", "not_collected"]
    check_diagram(plot_chain(res))
