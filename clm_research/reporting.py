"""Report building blocks: the tables and figures the evaluation notebooks show, one call each.

Every function takes a country code (and a reporting round) and returns a DataFrame or a
matplotlib Figure, assembled from the lower-level APIs (tables, framework, indicators,
quality, evaluation). Notebooks stay thin: a cell is a call here and a table or a figure.

Caching: the expensive analyses (indicator tables, the CLM effect models) are memoised per
process with :func:`functools.cache`. The runner executes all of a country's notebooks in one
kernel, chapters first and the summary last, so the summary's progress scorecard reuses the
models fitted for the outcomes and impact chapters; a notebook run on its own recomputes them.

Privacy: only published-safe aggregates leave this module. Indicator cells below the
minimum cell size are shown as ``"suppressed"``; maps are drawn at district level from the
district boundaries only (never facility or outreach-site coordinates).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clm_research.params import load_country
from clm_research.paths import (
    country_report_dir,
    processed_dir,
    project_root,
    quarantine_dir,
    raw_dir,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from clm_research.disclosure import ProtectedTables

__all__ = [
    "SUPPRESSED",
    "VERDICTS",
    "save_table",
    "country_tables",
    "indicator_table",
    "published_tables",
    "indicator_display",
    "effect_panel",
    "clm_effects",
    "progress_scorecard",
    "scorecard_display",
    "headline",
    "gate_summary",
    "quarantine_by_rule",
    "dqr_scorecard",
    "data_docs_link",
    "facility_scorecard",
    "trend_figure",
    "district_map",
    "issue_funnel",
    "funnel_figure",
    "resolution_curve",
    "client_models",
    "impact_trends",
    "routine_did",
    "outreach_indicators",
    "community_led_assessment",
    "pooled_effects",
    "forest_figure",
    "ensure_country_data",
    "interrupted_time_series",
    "its_caption",
    "its_figure",
]

#: How a suppressed cell is shown in every published table.
SUPPRESSED = "suppressed"

#: Plain-language verdicts on the CLM effect (the scorecard's ``verdict`` column).
VERDICTS = {
    "improved": "improved with CLM",
    "worse": "worse with CLM",
    "null": "no clear change",
    "not_evaluated": "not evaluated (no comparison)",
}

#: Adjusted p-value under which an effect counts as detected (false-discovery rate 5%).
FDR = 0.05

_LEVELS = ("inputs", "activities", "outputs", "outcomes", "impact")


# ----------------------------------------------------------------------------- I/O


def save_table(df: pd.DataFrame, name: str, output_dir: str | Path = ".") -> pd.DataFrame:
    """Write ``df`` as ``<output_dir>/tables/<name>.csv`` and ``.parquet``; return it.

    An empty ``output_dir`` (the notebooks' default when opened by hand) writes nothing.

    Rows keep their (deterministic) order, the index is dropped and floats are written with
    12 significant digits, so identical inputs give byte-identical CSV files.
    """
    if output_dir in ("", None):  # interactive use: show, do not write
        return df
    folder = Path(output_dir) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    out = df.reset_index(drop=True)
    out.to_csv(folder / f"{name}.csv", index=False, float_format="%.12g")
    flat = out.copy()
    for c in flat.columns:  # Parquet needs one type per column
        if flat[c].dtype == object:
            flat[c] = flat[c].map(
                lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            )
    flat.to_parquet(folder / f"{name}.parquet", index=False)
    return df


@cache
def _tables(country: str, stamp: float) -> dict[str, pd.DataFrame]:
    from clm_research.tables import read_country

    return read_country(country)


def country_tables(country: str) -> dict[str, pd.DataFrame]:
    """The country's processed canonical tables (cached until ``data/processed`` changes)."""
    folder = processed_dir(country)
    stamp = max((p.stat().st_mtime for p in folder.glob("*.parquet")), default=0.0)
    return _tables(country, stamp)


@cache
def _framework(country: str) -> Any:
    from clm_research.framework import load_framework

    return load_framework(country)


def _params(country: str) -> Any:
    return load_country(country)


# ----------------------------------------------------------------------------- indicators


@cache
def _published(country: str, stamp: float) -> ProtectedTables:
    from clm_research.disclosure import protect_tables

    p = _params(country)
    return protect_tables(_framework(country), country_tables(country), ci="cluster", as_of=p.as_of)


def published_tables(country: str) -> ProtectedTables:
    """The country's published indicator tables, protected together, with their audit.

    A :class:`~clm_research.disclosure.ProtectedTables` (``.tables``, ``.audit``); computed
    once per process until ``data/processed`` changes. Raises ``DisclosureError`` when the
    tables cannot be made safe.
    """
    folder = processed_dir(country)
    stamp = max((p.stat().st_mtime for p in folder.glob("*.parquet")), default=0.0)
    return _published(country, stamp)


def indicator_table(country: str, by: tuple[str, ...] = ("round",)) -> pd.DataFrame:
    """Every framework indicator by ``by`` (facility-clustered CIs), as published.

    ``by`` must be one of the published groupings
    (:data:`clm_research.disclosure.PUBLISHED_GROUPINGS`): small cells are suppressed across
    all of them together, so no combination of the report's tables reveals one.
    """
    from clm_research.disclosure import PUBLISHED_GROUPINGS
    from clm_research.errors import CLMError

    name = next((n for n, b in PUBLISHED_GROUPINGS.items() if b == tuple(by)), None)
    if name is None:
        raise CLMError(
            f"indicators by {', '.join(by) or 'nothing'} are not a published grouping; add it "
            "to PUBLISHED_GROUPINGS in clm_research/disclosure.py so that it is audited"
        )
    return published_tables(country).tables[name]


def _fmt(value: Any, kind: str, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if kind == "proportion":
        return f"{100 * v:.{digits}f}%"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{max(digits, 2)}g}" if abs(v) < 1 else f"{v:.{digits}f}"


def indicator_display(
    country: str,
    period: str,
    level: str | Sequence[str] | None = None,
    by: tuple[str, ...] = ("round",),
) -> pd.DataFrame:
    """Indicators at ``period``: estimate with 95% CI, n, target and RAG, in words.

    Suppressed cells read ``"suppressed"``.
    """
    import pandas as pd

    t = indicator_table(country, by)
    if "round" in t.columns:
        t = t[t["round"] == period]
    if level is not None:
        levels = [level] if isinstance(level, str) else list(level)
        t = t[t["level"].isin(levels)]
    rows = []
    for r in t.itertuples(index=False):
        sup = bool(r.suppressed)
        est = SUPPRESSED if sup else _fmt(r.estimate, r.type)
        ci = (
            ""
            if sup or pd.isna(r.ci_low)
            else f"{_fmt(r.ci_low, r.type)} to {_fmt(r.ci_high, r.type)}"
        )
        row = {"indicator": r.label, "level": r.level}
        for b in by:
            if b != "round":
                row[b] = getattr(r, b)
        row.update(
            {
                "estimate": est,
                "95% CI": ci,
                "n": "" if sup or pd.isna(r.n) else f"{int(r.n):,}",
                "target": "" if pd.isna(r.target) else _fmt(r.target, r.type),
                "status": "" if sup or pd.isna(r.rag) else str(r.rag),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- CLM effects


def _row_outcome(ind: Any, frame: pd.DataFrame) -> tuple[pd.Series, pd.Series] | None:
    """Row-level (in scope, value) of an indicator: a 0/1 or numeric value per row."""
    from clm_research.expressions import evaluate, parse

    scope = (
        evaluate(parse(ind.denominator), frame)
        if ind.denominator
        else frame.index.to_series().map(lambda _: True)
    )
    if (
        ind.type == "proportion"
        and ind.numerator
        and not ind.numerator_sum
        and not ind.denominator_sum
    ):
        value = evaluate(parse(ind.numerator), frame).astype(float)
        return scope.astype(bool), value
    if ind.type in ("mean", "median") and ind.value:
        value = frame[ind.value].astype("float64")
        return scope.astype(bool) & value.notna(), value
    return None


@cache
def effect_panel(country: str, indicator_id: str) -> pd.DataFrame | None:
    """Facility × time panel of one indicator for the difference-in-differences models.

    Client (interviews) indicators are aggregated to facility × round; routine indicators use
    facility × month sums. ``None`` when the indicator has no comparison design (checklist
    observations exist only at CLM facilities; organisations, outreach and issues neither).
    """
    from clm_research.planned import indicator_panel  # one panel builder for both reports

    return indicator_panel(_framework(country), country_tables(country), indicator_id)


@cache
def clm_effects(country: str) -> pd.DataFrame:
    """The CLM effect on every outcome and impact indicator with a comparison design.

    Callaway & Sant'Anna (2021) difference-in-differences (not-yet-treated comparisons;
    robust to the staggered, ramping roll-out that biases two-way fixed effects) on the
    facility × time panel from :func:`effect_panel`. p-values are adjusted across the
    indicators with the Benjamini–Hochberg false-discovery rate.

    Returns
    -------
    DataFrame
        ``indicator_id, label, level, direction, type, estimate, ci_low, ci_high, p_value,
        p_adjusted, n_facilities, verdict, note``.
    """
    import numpy as np
    import pandas as pd

    from clm_research.evaluation.did import callaway_santanna

    rows = []
    for ind in _framework(country).indicators:
        if ind.level not in ("outcomes", "impact"):
            continue
        row = {
            "indicator_id": ind.id,
            "label": ind.label,
            "level": ind.level,
            "direction": ind.direction,
            "type": ind.type,
        }
        try:
            panel = effect_panel(country, ind.id)
        except Exception as e:  # a model that cannot be fitted is reported, not hidden
            panel, row["note"] = None, f"panel not built: {e}"
        if panel is not None:
            time_col = "round" if "round" in panel.columns else "period"
            try:
                res = callaway_santanna(panel, time=time_col)
                eff = res.primary
                row.update(
                    estimate=eff.estimate,
                    ci_low=eff.ci_low,
                    ci_high=eff.ci_high,
                    p_value=eff.p_value,
                    n_facilities=int(panel["facility_id"].nunique()),
                )
            except Exception as e:
                row["note"] = f"model not fitted: {type(e).__name__}: {e}"
        rows.append(row)
    out = pd.DataFrame(rows)
    for c in ("estimate", "ci_low", "ci_high", "p_value", "n_facilities", "note"):
        if c not in out:
            out[c] = np.nan if c != "note" else ""
    out["note"] = out["note"].fillna("")
    out["p_adjusted"] = _bh(out["p_value"].to_numpy(dtype=float))
    out["verdict"] = [
        _verdict(r.estimate, r.p_adjusted, r.direction) for r in out.itertuples(index=False)
    ]
    cols = [
        "indicator_id",
        "label",
        "level",
        "direction",
        "type",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adjusted",
        "n_facilities",
        "verdict",
        "note",
    ]
    return out[cols]


def _bh(p: Any) -> Any:
    """Benjamini–Hochberg adjusted p-values (missing p-values stay missing)."""
    import numpy as np

    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        try:
            from clm_research.evaluation import benjamini_hochberg  # issue 4's implementation

            out[ok] = np.asarray(benjamini_hochberg(p[ok]), dtype=float)
        except Exception:
            from statsmodels.stats.multitest import multipletests

            out[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return out


def _verdict(estimate: float, p_adj: float, direction: str) -> str:
    if estimate is None or not math.isfinite(float(estimate)) or not math.isfinite(float(p_adj)):
        return VERDICTS["not_evaluated"]
    if p_adj >= FDR:
        return VERDICTS["null"]
    good = (estimate > 0) == (direction == "higher_is_better")
    return VERDICTS["improved"] if good else VERDICTS["worse"]


def _at(t: pd.DataFrame, indicator_id: str, rnd: str) -> Any:
    sel = t[(t["indicator_id"] == indicator_id) & (t["round"] == rnd)]
    return None if sel.empty else sel.iloc[0]


def _target_status(latest: Any, target: Any, direction: str, suppressed: bool) -> str:
    import pandas as pd

    if suppressed or latest is None or pd.isna(latest):
        return "no data" if not suppressed else SUPPRESSED
    if target is None or pd.isna(target):
        return "no target"
    met = latest >= target if direction == "higher_is_better" else latest <= target
    return "target met" if met else "target not met"


def progress_scorecard(country: str, period: str) -> pd.DataFrame:
    """The first screen of a report: progress of every outcome and impact indicator.

    One row per indicator: level, baseline (first round), latest (``period``), target and
    whether it is met, the CLM effect with its 95% CI, the Benjamini–Hochberg adjusted
    p-value, the verdict and one plain-language sentence.
    """
    import pandas as pd

    p = _params(country)
    t = indicator_table(country, ("round",))
    eff = clm_effects(country).set_index("indicator_id")
    rows = []
    for ind in _framework(country).indicators:
        if ind.level not in ("outcomes", "impact"):
            continue
        base, last = _at(t, ind.id, p.baseline_round), _at(t, ind.id, period)
        b_sup = base is None or bool(base["suppressed"])
        l_sup = last is None or bool(last["suppressed"])
        b = None if b_sup else base["estimate"]
        lv = None if l_sup else last["estimate"]
        target = ind.target
        e = eff.loc[ind.id] if ind.id in eff.index else None
        est = None if e is None else e["estimate"]
        has_eff = est is not None and pd.notna(est)
        scale = 100 if ind.type == "proportion" else 1
        unit = (
            " percentage points"
            if ind.type == "proportion"
            else (f" {ind.unit}" if ind.unit else "")
        )
        effect = (
            f"{est * scale:+.1f}{' pp' if ind.type == 'proportion' else ''} "
            f"({e['ci_low'] * scale:+.1f} to {e['ci_high'] * scale:+.1f})"
            if has_eff
            else ""
        )
        verdict = e["verdict"] if e is not None else VERDICTS["not_evaluated"]
        tstat = _target_status(lv, target, ind.direction, l_sup and last is not None)
        words = f"{ind.label}: "
        if b is not None and lv is not None:
            words += f"{_fmt(b, ind.type)} in {p.baseline_round}, {_fmt(lv, ind.type)} in {period}"
        elif lv is not None:
            words += f"{_fmt(lv, ind.type)} in {period}"
        else:
            words += f"no publishable estimate for {period}"
        if target is not None:
            words += f" (target {_fmt(target, ind.type)}: {tstat.replace('target ', '')})"
        words += ". "
        if has_eff:
            words += (
                f"Compared with facilities not yet under CLM, CLM changed it by "
                f"{est * scale:+.1f}{unit} (95% CI {e['ci_low'] * scale:+.1f} to "
                f"{e['ci_high'] * scale:+.1f}; adjusted p = {e['p_adjusted']:.2g}): {verdict}."
            )
        else:
            words += "No comparison group for this indicator: progress is descriptive only."
        rows.append(
            {
                "indicator_id": ind.id,
                "indicator": ind.label,
                "level": ind.level,
                "baseline": "" if b is None else _fmt(b, ind.type),
                "latest": SUPPRESSED
                if l_sup and last is not None
                else ("" if lv is None else _fmt(lv, ind.type)),
                "target": "" if target is None else _fmt(target, ind.type),
                "target_status": tstat,
                "effect (95% CI)": effect,
                "adjusted p": "" if not has_eff else f"{e['p_adjusted']:.3g}",
                "verdict": verdict,
                "in plain words": words,
            }
        )
    return pd.DataFrame(rows)


def scorecard_display(scorecard: pd.DataFrame) -> Any:
    """The scorecard as a styled table (verdict coloured) without the id column."""

    def colour(v: str) -> str:
        if v == VERDICTS["improved"] or v == "target met":
            return "background-color: #cfe8cf"
        if v == VERDICTS["worse"]:
            return "background-color: #f8d0cc"
        return ""

    shown = scorecard.drop(columns=["indicator_id", "in plain words"])
    return shown.style.hide(axis="index").map(colour, subset=["verdict", "target_status"])


def headline(scorecard: pd.DataFrame) -> str:
    """One line for the index page: verdict counts and targets met."""
    v = scorecard["verdict"].value_counts()
    parts = [f"{int(v.get(VERDICTS[k], 0))} {VERDICTS[k]}" for k in ("improved", "worse", "null")]
    met = int((scorecard["target_status"] == "target met").sum())
    with_target = int(scorecard["target_status"].isin(["target met", "target not met"]).sum())
    return f"{'; '.join(parts)}; targets met {met}/{with_target}"


# ----------------------------------------------------------------------------- data quality


def gate_summary(country: str) -> pd.DataFrame:
    """Rows accepted and quarantined per table, read from the gate's outputs on disk."""
    import pandas as pd

    rows = []
    manifest_path = processed_dir(country) / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    passed = manifest.get("gate", {}).get("passed")
    max_share = manifest.get("gate", {}).get("max_share")
    from clm_research.schema import TABLES

    for name in TABLES:
        acc = processed_dir(country) / f"{name}.parquet"
        qua = quarantine_dir(country) / f"{name}.parquet"
        n_acc = (
            len(pd.read_parquet(acc, columns=[TABLES[name].primary_key[0]])) if acc.is_file() else 0
        )
        n_q = len(pd.read_parquet(qua, columns=["failed_rules"])) if qua.is_file() else 0
        total = n_acc + n_q
        rows.append(
            {
                "table": name,
                "rows received": total,
                "accepted": n_acc,
                "quarantined": n_q,
                "quarantined share": f"{(n_q / total if total else 0):.1%}",
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["passed"] = passed
    out.attrs["max_share"] = max_share
    return out


def quarantine_by_rule(country: str) -> pd.DataFrame:
    """Quarantined rows per table and failed rule (``rule:column``), largest first."""
    import pandas as pd

    rows = []
    for path in sorted(quarantine_dir(country).glob("*.parquet")):
        q = pd.read_parquet(path, columns=["failed_rules"])
        for rules in q["failed_rules"].dropna():
            for rule in str(rules).split(";"):
                if rule:
                    rows.append((path.stem, rule))
    if not rows:
        return pd.DataFrame(columns=["table", "rule", "rows"])
    d = pd.DataFrame(rows, columns=["table", "rule"])
    out = d.groupby(["table", "rule"]).size().rename("rows").reset_index()
    return out.sort_values(["rows", "table", "rule"], ascending=[False, True, True]).reset_index(
        drop=True
    )


def dqr_scorecard(country: str) -> pd.DataFrame:
    """WHO Data Quality Review scorecard of the routine data (completeness, outliers, consistency)."""
    from clm_research.quality import dqr

    t = country_tables(country)
    return dqr.scorecard(t["routine"], t["facilities"]["facility_id"])


def data_docs_link(country: str, report_dir: str | Path = ".") -> str:
    """Markdown link to the Great Expectations Data Docs, relative to the report folder."""
    target = country_report_dir(country) / "data_docs" / "index.html"
    if not target.is_file():
        return "Data Docs were not built for this run."
    # the report lives in reports/<cc>/<period>/, the Data Docs in reports/<cc>/data_docs/
    return "[Open the Great Expectations Data Docs](../data_docs/index.html) (expectation results per table)."


# ----------------------------------------------------------------------------- service quality

_RAG_COLOURS = {"red": "#f8d0cc", "amber": "#fde7b0", "green": "#cfe8cf"}


def facility_scorecard(
    country: str, period: str, indicators: Sequence[str] | None = None
) -> pd.DataFrame:
    """Facility × indicator estimates at ``period`` with their red/amber/green status.

    Returns a long table (facility, indicator, estimate text, rag); see
    :func:`facility_scorecard_display` for the coloured wide view.
    """
    import pandas as pd

    t = indicator_table(country, ("facility_id", "round"))
    t = t[(t["round"] == period) & (t["level"] == "outcomes")]
    if indicators is not None:
        t = t[t["indicator_id"].isin(list(indicators))]
    t = t[t["facility_id"] != "(all)"]
    names = country_tables(country)["facilities"].set_index("facility_id")["name"]
    rows = []
    for r in t.itertuples(index=False):
        sup = bool(r.suppressed)
        rows.append(
            {
                "facility": f"{names.get(r.facility_id, r.facility_id)} ({r.facility_id})",
                "indicator": r.label,
                "estimate": SUPPRESSED if sup else _fmt(r.estimate, r.type),
                "rag": "" if sup or pd.isna(r.rag) else str(r.rag),
            }
        )
    return pd.DataFrame(rows, columns=["facility", "indicator", "estimate", "rag"])


def facility_scorecard_display(long: pd.DataFrame) -> Any:
    """Wide, coloured facility scorecard (rows facilities, columns indicators)."""
    est = long.pivot(index="facility", columns="indicator", values="estimate").fillna("")
    rag = long.pivot(index="facility", columns="indicator", values="rag").fillna("")

    def colours(_: Any) -> Any:
        return rag.map(
            lambda v: f"background-color: {_RAG_COLOURS[v]}" if v in _RAG_COLOURS else ""
        )

    return est.style.apply(colours, axis=None)


def trend_figure(country: str, indicator_ids: Sequence[str], by_arm: bool = True) -> Figure:
    """Trends by round (95% CI bands), CLM vs comparison facilities, one panel per indicator."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    by = ("clm_arm", "round") if by_arm else ("round",)
    t = indicator_table(country, by)
    t = t[t["indicator_id"].isin(list(indicator_ids)) & ~t["suppressed"].astype(bool)]
    n = len(indicator_ids)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, iid in zip(axes[0], indicator_ids, strict=True):
        d = t[t["indicator_id"] == iid].sort_values("round")
        if d.empty:
            ax.set_title(f"{iid}: no data")
            continue
        hue = "clm_arm" if by_arm else None
        sns.lineplot(data=d, x="round", y="estimate", hue=hue, marker="o", ax=ax, sort=False)
        for _arm, g in d.groupby("clm_arm") if by_arm else [(None, d)]:
            ax.fill_between(
                g["round"], g["ci_low"].astype(float), g["ci_high"].astype(float), alpha=0.15
            )
        ax.set_title(str(d["label"].iloc[0])[:60], fontsize=9)
        ax.set_xlabel("round")
        ax.set_ylabel("estimate")
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    fig.tight_layout()
    plt.close(fig)
    return fig


def district_map(country: str, indicator_id: str, period: str) -> Figure:
    """Choropleth of one indicator by district at ``period``; suppressed districts hatched.

    Only district boundaries are drawn: no facility, outreach-site or key-population location
    is ever plotted.
    """
    import geopandas as gpd
    import matplotlib.pyplot as plt

    p = _params(country)
    path = (
        project_root() / p.district_boundaries
        if p.district_boundaries
        else raw_dir(country) / "districts.geojson"
    )
    shapes = gpd.read_file(path)
    key = next((c for c in ("district", "name", "NAME") if c in shapes.columns), shapes.columns[0])
    t = indicator_table(country, ("district", "round"))
    t = t[(t["indicator_id"] == indicator_id) & (t["round"] == period)]
    merged = shapes.merge(
        t[["district", "estimate", "suppressed", "label"]],
        left_on=key,
        right_on="district",
        how="left",
    )
    fig, ax = plt.subplots(figsize=(6.5, 5))
    is_sup = merged["suppressed"].fillna(True).astype(bool)
    shown, hidden = merged[~is_sup], merged[is_sup]
    if not shown.empty:
        shown.plot(
            column="estimate",
            ax=ax,
            legend=True,
            cmap="viridis",
            edgecolor="white",
            legend_kwds={"shrink": 0.7},
        )
    if not hidden.empty:
        hidden.plot(ax=ax, color="#dddddd", hatch="///", edgecolor="white")
    hidden_mask = merged["suppressed"].fillna(True).astype(bool)
    for (_, row), is_hidden in zip(merged.iterrows(), hidden_mask, strict=True):
        c = row.geometry.representative_point()
        txt = SUPPRESSED if is_hidden else ""
        ax.annotate(f"{row[key]}\n{txt}".strip(), (c.x, c.y), ha="center", fontsize=7)
    label = t["label"].iloc[0] if not t.empty else indicator_id
    ax.set_title(f"{label}, {period}, by district", fontsize=10)
    ax.set_axis_off()
    fig.tight_layout()
    plt.close(fig)
    return fig


# ----------------------------------------------------------------------------- accountability


def issue_funnel(country: str) -> Any:
    """Issues identified → escalated → action agreed → resolved (evaluation API result)."""
    from clm_research.evaluation.accountability import issue_funnel as funnel

    return funnel(country_tables(country)["issues"], by=("category",), as_of=_params(country).as_of)


def funnel_figure(country: str) -> Figure:
    """Bar chart of the issue funnel (all categories)."""
    import matplotlib.pyplot as plt

    res = issue_funnel(country)
    s = res.summary()
    s = s[s[s.columns[0]] == "all"]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.barh(s["stage"][::-1], s["issues"][::-1], color="#1f3a5f")
    for y, (n, share) in enumerate(
        zip(s["issues"][::-1], s["share_of_identified"][::-1], strict=True)
    ):
        ax.text(n, y, f" {n} ({share:.0%})", va="center", fontsize=8)
    ax.set_xlabel("issues")
    ax.set_title("The accountability loop: what happened to the issues found")
    fig.tight_layout()
    plt.close(fig)
    return fig


def resolution_curve(country: str, by: str | None = "severity") -> Any:
    """Kaplan–Meier time to resolution, open issues censored at the extraction date."""
    from clm_research.evaluation.accountability import time_to_resolution

    return time_to_resolution(
        country_tables(country)["issues"], by=by, as_of=_params(country).as_of
    )


# ----------------------------------------------------------------------------- outcomes / impact


@cache
def client_models(country: str, indicator_ids: tuple[str, ...]) -> pd.DataFrame:
    """Client-level GEE (clustered by facility) for interview indicators: effect of CLM exposure."""
    import pandas as pd

    from clm_research.derived import enrich
    from clm_research.evaluation.client import add_clm_exposure, client_gee

    t = country_tables(country)
    iv = add_clm_exposure(t["interviews"], t["facilities"])
    iv = enrich("interviews", iv.drop(columns=["clm_active"]), t["facilities"]).assign(
        clm_active=iv["clm_active"].to_numpy()
    )
    out = []
    for iid in indicator_ids:
        ind = _framework(country).indicator(iid)
        got = _row_outcome(ind, iv)
        if got is None:
            continue
        scope, value = got
        d = iv[scope].assign(outcome=value[scope].to_numpy())
        res = client_gee(d, "outcome")
        s = res.summary().iloc[[0]].assign(indicator_id=iid, indicator=ind.label)
        out.append(s)
    if not out:
        return pd.DataFrame()
    df = pd.concat(out, ignore_index=True)
    return df[
        ["indicator_id", "indicator", "estimate", "ci_low", "ci_high", "p_value", "n_obs", "method"]
    ]


def impact_trends(country: str) -> Figure:
    """Routine impact indicators by quarter, CLM vs comparison facilities."""
    ids = [i.id for i in _framework(country).by_level("impact")]
    return trend_figure(country, ids[:4], by_arm=True)


def routine_did(country: str, indicator_id: str = "viral_suppression") -> pd.DataFrame:
    """TWFE, event-study and Callaway–Sant'Anna side by side for one routine indicator."""
    from clm_research.evaluation.did import compare_did

    return compare_did(effect_panel(country, indicator_id))


@cache
def interrupted_time_series(
    country: str, indicator_id: str = "treatment_interruption", controlled: bool = False
) -> Any:
    """Interrupted time series of a routine indicator at the first CLM wave's facilities.

    Monthly counts summed over the facilities that started CLM first; level and slope change
    at their start; quasi-Poisson with the denominator (e.g. ``tx_curr``) as offset and two
    harmonic pairs for seasonality (see :func:`clm_research.planned.routine_its`). With
    ``controlled=True`` the never-monitored facilities are the comparison series.
    Returns an :class:`~clm_research.evaluation.ITSResult` (``.summary()``, ``.plot()``).
    """
    from clm_research.planned import routine_its

    return routine_its(
        _framework(country), country_tables(country), indicator_id, controlled=controlled
    )


def its_caption(country: str, result: Any, indicator_id: str) -> str:
    """Plain-language caption of an interrupted-time-series figure."""
    from clm_research.planned import its_caption as caption

    ind = _framework(country).indicator(indicator_id)
    return caption(result, ind.label, ind.unit)


def its_figure(country: str, result: Any, indicator_id: str) -> Figure:
    """The interrupted-time-series figure: observed, fitted and counterfactual, calendar axis."""
    from clm_research.planned import its_figure as figure

    ind = _framework(country).indicator(indicator_id)
    return figure(result, ind.label, ind.unit)


# ----------------------------------------------------------------------------- standalone use


def ensure_country_data(country: str) -> Path:
    """Make sure the country's processed tables exist; return their folder.

    Opened on its own (JupyterLab, ``pytest --nbval-lax``) a report notebook may find no
    ``data/processed/<country>/``. For a fictional demo country the demo raw exports are
    generated (if missing) and ingested through the row-level gate, without Great
    Expectations (``clm ingest``'s fast path); nothing happens when the tables exist.

    Raises
    ------
    IngestError
        For a real country without processed tables (run ``clm ingest <country>``).
    """
    from clm_research.errors import IngestError
    from clm_research.schema import TABLES

    folder = processed_dir(country)
    if all((folder / f"{name}.parquet").is_file() for name in TABLES):
        return folder
    if not _params(country).is_demo:
        raise IngestError(
            f"{country}: no processed tables in {folder}; run `clm ingest {country}` first"
        )
    from clm_research.demo import write_demo
    from clm_research.ingest.pipeline import ingest_country

    write_demo([country])
    ingest_country(country)
    return folder


# ----------------------------------------------------------------------------- community-led


def outreach_indicators(country: str, period: str) -> pd.DataFrame:
    """WHO SWIT outreach indicators (inputs and outcomes from the outreach data) at ``period``."""
    import pandas as pd

    fw = _framework(country)
    ids = [i.id for i in fw.indicators if i.dataset == "outreach"]
    t = indicator_display(country, period)
    labels = {fw.indicator(i).label for i in ids}
    return t[t["indicator"].isin(labels)].reset_index(drop=True) if not t.empty else pd.DataFrame()


def _yes(value: Any) -> str:
    import pandas as pd

    return "unknown" if pd.isna(value) else ("yes" if bool(value) else "no")


def community_led_assessment(country: str) -> pd.DataFrame:
    """UNAIDS community-led criteria per implementing organisation (seed 001).

    Shares of governance, leadership and staff from the constituency, the accountability
    mechanism, an agenda set by the constituency, and the overall judgement.
    """
    import pandas as pd

    from clm_research.derived import enrich

    org = enrich("organisations", country_tables(country)["organisations"], None)
    rows = []
    for r in org.sort_values("organisation_id").itertuples(index=False):
        row: dict[str, Any] = {"organisation": r.name, "constituency": r.constituency}
        for role in ("governance", "leadership", "staff"):
            tot, con = getattr(r, f"{role}_total"), getattr(r, f"{role}_constituency")
            row[f"{role} from constituency"] = "" if pd.isna(tot) or not tot else f"{con / tot:.0%}"
        row["accountable to constituency"] = _yes(r.accountability_mechanism)
        row["agenda set by constituency"] = _yes(r.agenda_set_by_constituency)
        row["community-led (UNAIDS)"] = "yes" if bool(r.community_led) else "no"
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- synthesis


def pooled_effects(countries: Sequence[str], period: str) -> pd.DataFrame:
    """Random-effects meta-analysis, per indicator, of the countries' CLM effects.

    Reads each country's published ``clm_effects`` table from its report folder.
    """
    import pandas as pd

    from clm_research.evaluation.meta import meta_analysis

    frames = []
    for c in countries:
        path = country_report_dir(c, period) / "tables" / "clm_effects.parquet"
        if path.is_file():
            frames.append(pd.read_parquet(path).assign(country=c))
    if not frames:
        return pd.DataFrame()
    allx = pd.concat(frames, ignore_index=True).dropna(subset=["estimate", "ci_low", "ci_high"])
    rows = []
    for iid, g in allx.groupby("indicator_id", sort=True):
        if len(g) < 2:
            continue
        res = meta_analysis(g, label="country")
        e = res.primary
        rows.append(
            {
                "indicator_id": iid,
                "indicator": g["label"].iloc[0],
                "countries": len(g),
                "pooled": e.estimate,
                "ci_low": e.ci_low,
                "ci_high": e.ci_high,
                "p_value": e.p_value,
                "i2": res.diagnostics.get("i2", float("nan")),
            }
        )
    return pd.DataFrame(rows)


def forest_figure(countries: Sequence[str], period: str, indicator_id: str) -> Figure:
    """Forest plot of one indicator's CLM effect across countries with the pooled estimate."""
    import pandas as pd

    from clm_research.evaluation.meta import meta_analysis

    frames = []
    for c in countries:
        path = country_report_dir(c, period) / "tables" / "clm_effects.parquet"
        if path.is_file():
            d = pd.read_parquet(path)
            frames.append(d[d["indicator_id"] == indicator_id].assign(country=c))
    g = pd.concat(frames, ignore_index=True).dropna(subset=["estimate"])
    return meta_analysis(g, label="country").plot()
