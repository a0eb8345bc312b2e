"""The report's first screen: a headline in words, then the progress scorecard.

One scorecard row per outcome and impact indicator: its baseline (first round) and latest
(reporting round) value, its target and whether the target is met (:func:`~clm_research.
evaluation.progress.progress_to_target`), the CLM effect with its multiplicity-adjusted
interval and p-value and the verdict (:func:`~clm_research.evaluation.effects.clm_effects`; the
rule is :func:`~clm_research.evaluation.effects.verdict_rule`), and one plain-language
sentence. :func:`build_scorecard` keeps full-precision numbers (saved for reuse);
:func:`scorecard_display` is the table a reader sees; :func:`headline` names what improved.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clm_research.evaluation.effects import EFFECT_VERDICTS, FDR, verdict_rule
from clm_research.report.context import (
    clm_effects,
    framework_of,
    indicator_table,
    not_computed,
    params_of,
)
from clm_research.report.format import Cell, Column, IndicatorFormat, PresentationTable
from clm_research.report.tables import SUPPRESSED

if TYPE_CHECKING:
    import pandas as pd

    from clm_research.framework import Framework, Indicator

__all__ = [
    "VERDICTS",
    "VERDICT_SYMBOLS",
    "TARGET_STATUSES",
    "target_status",
    "build_scorecard",
    "progress_scorecard",
    "chapters_html",
    "scorecard_display",
    "scorecard_legend",
    "headline",
    "headline_html",
]

#: Plain-language verdicts on the CLM effect (the scorecard's ``verdict`` column).
VERDICTS = EFFECT_VERDICTS

#: The symbol printed with each verdict (colour is never the only cue).
VERDICT_SYMBOLS: dict[str, str] = {
    VERDICTS["improved"]: "▲",
    VERDICTS["worse"]: "▼",
    VERDICTS["null"]: "●",
    VERDICTS["not_evaluated"]: "○",
}

#: What the scorecard's ``target_status`` column can say.
TARGET_STATUSES: tuple[str, ...] = (
    "target met",
    "target not met",
    "no target",
    "no data",
    SUPPRESSED,
)

_TARGET_SHOWN = {
    "target met": ("✓ met", "target-met"),
    "target not met": ("✗ not met", "target-not-met"),
}


def _cell(indicators: pd.DataFrame, indicator_id: str, round_: str) -> Any:
    sel = indicators[(indicators["indicator_id"] == indicator_id) & (indicators["round"] == round_)]
    return None if sel.empty else sel.iloc[0]


def target_status(ind: Indicator, indicators: pd.DataFrame, period: str) -> str:
    """Whether ``ind`` meets its target in round ``period`` (one of :data:`TARGET_STATUSES`).

    The latest value's comparison with the target is :func:`~clm_research.evaluation.progress.
    progress_to_target`'s, on the indicator's publishable series up to ``period``.
    """
    from clm_research.evaluation.progress import progress_to_target

    last = _cell(indicators, ind.id, period)
    if last is None:
        return "no data"
    if bool(last["suppressed"]):
        return SUPPRESSED
    if last["estimate"] is None or not math.isfinite(float(last["estimate"])):
        return "no data"
    if ind.target is None:
        return "no target"
    series = indicators[(indicators["indicator_id"] == ind.id) & (indicators["round"] <= period)]
    series = series.assign(estimate=series["estimate"].where(~series["suppressed"].astype(bool)))
    res = progress_to_target(
        series, time="round", target=ind.target, direction=ind.direction, label=ind.id
    )
    return "target met" if res.target_met else "target not met"


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def build_scorecard(
    framework: Framework,
    indicators: pd.DataFrame,
    effects: pd.DataFrame,
    baseline_round: str,
    period: str,
    not_computed: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The progress scorecard from an indicator table by round and a CLM-effects table.

    Parameters
    ----------
    framework
        The country's framework (the outcome and impact indicators are scored).
    indicators
        :func:`~clm_research.indicators.compute_indicators` by ``round`` (``indicator_id``,
        ``round``, ``estimate``, ``suppressed``).
    effects
        :func:`~clm_research.evaluation.effects.clm_effects` output (the adjusted-interval
        columns are optional: without them the adjusted interval is missing).
    baseline_round, period
        The first round and the reporting round.
    not_computed
        Indicator id -> why the country's data cannot give it (a table or column not
        collected): left out of the rows and listed in ``attrs["not_collected"]`` (id ->
        label).

    Returns
    -------
    DataFrame
        Full-precision numbers (for reuse; :func:`scorecard_display` formats them):
        ``indicator_id, indicator, short_label, level, type, unit, direction, baseline,
        baseline_suppressed, latest, latest_suppressed, target, target_status, effect,
        ci_low, ci_high, ci_level_adjusted, ci_low_adjusted, ci_high_adjusted, p_adjusted,
        time_unit, verdict, note, in plain words``; ``baseline_round`` and ``period`` are in
        ``attrs``.
    """
    import pandas as pd

    eff = effects.set_index("indicator_id")
    rows = []
    absent: dict[str, str] = {}
    for ind in framework.indicators:
        if ind.level not in ("outcomes", "impact"):
            continue
        if not_computed and ind.id in not_computed:
            absent[ind.id] = ind.short_label or ind.label
            continue
        base, last = _cell(indicators, ind.id, baseline_round), _cell(indicators, ind.id, period)
        b_sup = base is not None and bool(base["suppressed"])
        l_sup = last is not None and bool(last["suppressed"])
        b = math.nan if base is None or b_sup else _num(base["estimate"])
        lv = math.nan if last is None or l_sup else _num(last["estimate"])
        e = eff.loc[ind.id] if ind.id in eff.index else None

        def get(col: str, e: Any = e) -> float:
            return _num(e[col]) if e is not None and col in e.index else math.nan

        est = get("estimate")
        verdict = str(e["verdict"]) if e is not None else VERDICTS["not_evaluated"]
        rows.append(
            {
                "indicator_id": ind.id,
                "indicator": ind.label,
                "short_label": ind.short_label or ind.label,
                "level": ind.level,
                "type": ind.type,
                "unit": ind.unit,
                "direction": ind.direction,
                "baseline": b,
                "baseline_suppressed": b_sup,
                "latest": lv,
                "latest_suppressed": l_sup,
                "target": math.nan if ind.target is None else float(ind.target),
                "target_status": target_status(ind, indicators, period),
                "effect": est,
                "ci_low": get("ci_low"),
                "ci_high": get("ci_high"),
                "ci_level_adjusted": get("ci_level_adjusted"),
                "ci_low_adjusted": get("ci_low_adjusted"),
                "ci_high_adjusted": get("ci_high_adjusted"),
                "p_adjusted": get("p_adjusted"),
                "time_unit": str(e["time_unit"]) if e is not None and "time_unit" in e else "",
                "verdict": verdict,
                "note": str(e["note"]) if e is not None and "note" in e.index else "",
            }
        )
    columns = [
        "indicator_id", "indicator", "short_label", "level", "type", "unit", "direction",
        "baseline", "baseline_suppressed", "latest", "latest_suppressed", "target",
        "target_status", "effect", "ci_low", "ci_high", "ci_level_adjusted", "ci_low_adjusted",
        "ci_high_adjusted", "p_adjusted", "time_unit", "verdict", "note",
    ]  # fmt: skip
    out = pd.DataFrame(rows, columns=columns)
    out["in plain words"] = [
        _sentence(framework.indicator(str(r["indicator_id"])), r, baseline_round, period)
        for r in rows
    ]
    out.attrs.update(baseline_round=baseline_round, period=period, not_collected=absent)
    return out


def _format_of(ind_type: str, unit: str, row: Any) -> IndicatorFormat:
    """One format per indicator: its magnitude from the observed values (the target only
    when there is none), so 0.85 condoms per condom required keeps two decimals."""
    observed = [row["baseline"], row["latest"]]
    finite = [abs(v) for v in observed if isinstance(v, float) and math.isfinite(v)]
    if not finite and isinstance(row["target"], float) and math.isfinite(row["target"]):
        finite = [abs(row["target"])]
    return IndicatorFormat(ind_type, unit, max(finite) if finite else math.nan)


def _level_text(fmt: IndicatorFormat, v: float) -> str:
    """A level in a sentence, with its unit: ``74.0 minutes``, ``51.4%``."""
    text = fmt.value(v)
    if fmt.kind == "proportion" or not fmt.unit_text:
        return text
    return f"{text} {fmt.unit_text}"


def _effect_unit(fmt: IndicatorFormat, row: Any) -> str:
    """The effect's unit in words (a count's effect is per facility and month or round)."""
    if fmt.kind == "proportion":
        return " percentage points"
    unit = fmt.unit_text
    if fmt.kind == "count" and row.get("time_unit"):
        unit = f"{unit} per facility per {row['time_unit']}".strip()
    return f" {unit}" if unit else ""


def _sentence(ind: Indicator, r: dict[str, Any], baseline_round: str, period: str) -> str:
    fmt = _format_of(ind.type, ind.unit, r)
    b, lv = r["baseline"], r["latest"]
    words = f"{ind.label}: "
    if math.isfinite(b) and math.isfinite(lv):
        words += f"{_level_text(fmt, b)} in {baseline_round}, {_level_text(fmt, lv)} in {period}"
    elif math.isfinite(lv):
        words += f"{_level_text(fmt, lv)} in {period}"
    else:
        words += f"no publishable estimate for {period}"
    if ind.target is not None:
        status = r["target_status"].replace("target ", "")
        words += f" (target {_level_text(fmt, ind.target)}: {status})"
    words += ". "
    if math.isfinite(r["effect"]):
        f = fmt.for_effect(r["effect"], r["ci_low"], r["ci_high"])
        unit = _effect_unit(fmt, r)
        level = r["ci_level_adjusted"]
        if math.isfinite(r["ci_low_adjusted"]) and math.isfinite(level):
            interval = f"{level:.1%} adjusted CI {f.interval(r['ci_low_adjusted'], r['ci_high_adjusted'], sign=True)}"
        else:
            interval = f"95% CI {f.interval(r['ci_low'], r['ci_high'], sign=True)}"
        words += (
            f"Compared with facilities not yet under CLM, CLM changed it by "
            f"{f.difference(r['effect'], with_unit=False)}{unit} ({interval}; adjusted "
            f"{_p(r['p_adjusted'])}): {r['verdict']}."
        )
    else:
        words += "No comparison group for this indicator: progress is descriptive only."
    return words


def _p(p: float) -> str:
    """``p = 0.03`` or ``p < 0.001`` (for sentences)."""
    from clm_research.report.format import format_p

    text = format_p(p)
    return f"p {text[0]} {text[1:]}" if text[0] in "<>" else f"p = {text}"


def progress_scorecard(country: str, period: str) -> pd.DataFrame:
    """The first screen of a country's report: :func:`build_scorecard` on its data (the
    indicators its data cannot give are listed as not collected)."""
    return build_scorecard(
        framework_of(country),
        indicator_table(country, ("round",)),
        clm_effects(country),
        params_of(country).baseline_round,
        period,
        not_computed(country),
    )


def chapters_html(country: str) -> str:
    """Which chapters of the report ran and which are not collected in this country ("" when
    every chapter ran)."""
    from clm_research.report.chapters import CHAPTER_TITLES, chapters_of

    status = chapters_of(country)
    absent = [CHAPTER_TITLES.get(c.chapter, c.chapter) for c in status if not c.ran]
    if not absent:
        return ""
    ran = [CHAPTER_TITLES.get(c.chapter, c.chapter) for c in status if c.ran]
    return (
        '<div class="clm-chapters"><p><b>Chapters in this report.</b> Run on this country\'s '
        f"data: {html.escape(_join(ran))}. Not collected in this country (the chapter says "
        f"so): {html.escape(_join(absent))}.</p></div>"
    )


def _adjusted_level(scorecard: pd.DataFrame) -> float:
    levels = scorecard["ci_level_adjusted"].dropna()
    return float(levels.iloc[0]) if len(levels) else math.nan


def scorecard_display(
    scorecard: pd.DataFrame, *, min_cell_size: int | None = None
) -> PresentationTable:
    """The scorecard as the reader sees it: grouped by level, formatted, footnoted, no codes.

    Columns: indicator (with unit), baseline and latest (their rounds in the headers),
    target, target met?, CLM effect with its adjusted interval, adjusted p, verdict (with a
    symbol). Missing cells are dashes whose footnotes say why.
    """
    from clm_research.report.format import format_p

    base_round = scorecard.attrs.get("baseline_round", "baseline")
    period = scorecard.attrs.get("period", "latest")
    level = _adjusted_level(scorecard)
    effect_header = (
        f"CLM effect ({level:.1%} adjusted CI)" if math.isfinite(level) else "CLM effect (95% CI)"
    )
    t = PresentationTable(
        [
            Column("Indicator (unit)", align="left", wrap=True, width="25%"),
            Column(f"Baseline {base_round}"),
            Column(f"Latest {period}"),
            Column("Target"),
            Column("Target met?", align="left"),
            Column(effect_header, wrap=True, width="19%"),
            Column("Adjusted p"),
            Column("Verdict", align="left", wrap=True, width="17%"),
        ],
        css="scorecard",
    )
    small = f"fewer than {min_cell_size} respondents" if min_cell_size else "too few respondents"
    for lvl in ("outcomes", "impact"):
        part = scorecard[scorecard["level"] == lvl]
        if part.empty:
            continue
        t.group("Outcomes" if lvl == "outcomes" else "Impact")
        for _, r in part.iterrows():
            fmt = _format_of(str(r["type"]), str(r["unit"]), r)
            cells: list[str | Cell] = [fmt.label(str(r["indicator"]))]
            for col, sup, rnd in (
                ("baseline", "baseline_suppressed", base_round),
                ("latest", "latest_suppressed", period),
            ):
                if bool(r[sup]):
                    cells.append(t.missing(f"Suppressed: {small} (privacy).", text=SUPPRESSED))
                elif math.isfinite(r[col]):
                    cells.append(fmt.value(r[col]))
                else:
                    cells.append(t.missing(f"No data in round {rnd}."))
            cells.append(
                fmt.value(r["target"])
                if math.isfinite(r["target"])
                else t.missing("No target set in the framework.")
            )
            status = str(r["target_status"])
            if status in _TARGET_SHOWN:
                text, css = _TARGET_SHOWN[status]
                cells.append(Cell(text, css=css))
            elif status == "no target":
                cells.append(t.missing("No target set in the framework."))
            elif status == SUPPRESSED:
                cells.append(t.missing(f"Suppressed: {small} (privacy).", text=SUPPRESSED))
            else:
                cells.append(t.missing(f"No data in round {period}."))
            if math.isfinite(r["effect"]):
                f = fmt.for_effect(r["effect"], r["ci_low"], r["ci_high"])
                lo, hi = (
                    (r["ci_low_adjusted"], r["ci_high_adjusted"])
                    if math.isfinite(r["ci_low_adjusted"])
                    else (r["ci_low"], r["ci_high"])
                )
                unit = " pp" if fmt.kind == "proportion" else ""
                markers: tuple[str, ...] = ()
                if fmt.kind == "count" and r.get("time_unit"):
                    markers = (t.marker(f"Effect per facility per {r['time_unit']}."),)
                cells.append(
                    Cell(
                        f"{f.difference(r['effect'], with_unit=False)}{unit} "
                        f"({f.interval(lo, hi, sign=True)})",
                        markers=markers,
                    )
                )
                cells.append(format_p(r["p_adjusted"]))
            else:
                reason = str(r.get("note") or "") or "not evaluated: no comparison group"
                reason = reason[0].upper() + reason[1:] + ("" if reason.endswith(".") else ".")
                cells.append(t.missing(reason))
                cells.append(t.missing(reason))
            verdict = str(r["verdict"])
            css = {
                VERDICTS["improved"]: "verdict-improved",
                VERDICTS["worse"]: "verdict-worse",
                VERDICTS["null"]: "verdict-null",
            }.get(verdict, "verdict-none")
            cells.append(Cell(f"{VERDICT_SYMBOLS.get(verdict, '')} {verdict}".strip(), css=css))
            t.add_row(cells)
    absent = scorecard.attrs.get("not_collected") or {}
    if absent:
        t.note(
            f"Not collected in this country ({len(absent)} indicator"
            f"{'s' if len(absent) != 1 else ''}, not scored): {_join(list(absent.values()))}."
        )
    return t


def scorecard_legend(scorecard: pd.DataFrame, effects: pd.DataFrame | None = None) -> str:
    """HTML legend under the scorecard: the verdict rule with this report's numbers, symbols."""
    rule = verdict_rule(effects) if effects is not None else _rule_from(scorecard)
    sym = " · ".join(f"{html.escape(s)} {html.escape(v)}" for v, s in VERDICT_SYMBOLS.items())
    return (
        '<div class="clm-legend"><p><b>How to read the verdicts.</b> '
        f"{html.escape(rule)}</p><p>{sym}. ✓ / ✗: the latest value meets / misses the "
        "framework's target. pp = percentage points. A verdict of <i>no clear change</i> "
        "means the data cannot tell the effect from zero; it is not proof that CLM does "
        "nothing.</p></div>"
    )


def _rule_from(scorecard: pd.DataFrame) -> str:
    import pandas as pd

    return verdict_rule(pd.DataFrame({"p_adjusted": scorecard["p_adjusted"].astype(float)}))


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _headline_parts(scorecard: pd.DataFrame) -> dict[str, list[str]]:
    parts: dict[str, list[str]] = {k: [] for k in ("improved", "worse", "null", "not_evaluated")}
    by_verdict = {v: k for k, v in VERDICTS.items()}
    for _, r in scorecard.iterrows():
        key = by_verdict.get(str(r["verdict"]), "not_evaluated")
        name = str(r.get("short_label") or r["indicator"])
        if name not in parts[key]:
            parts[key].append(name)
    return parts


def headline(scorecard: pd.DataFrame) -> str:
    """The answer in words, generated from the scorecard: what improved, what did not.

    E.g. "CLM facilities improved median waiting time, confidentiality and viral suppression;
    worse: none; no clear change in respectful treatment and testing yield. Targets met: 1
    of 18." Indicators without a comparison group are counted, not listed.
    """
    p = _headline_parts(scorecard)
    sentences = []
    evaluated = p["improved"] or p["worse"] or p["null"]
    if p["improved"]:
        sentences.append(f"CLM facilities improved {_join(p['improved'])}")
    elif evaluated:
        sentences.append("No indicator improved clearly with CLM")
    else:  # nothing to compare (e.g. routine data without CLM and comparison facilities)
        sentences.append("No effect of CLM could be evaluated")
    if p["worse"]:
        sentences.append(f"worse with CLM: {_join(p['worse'])}")
    if p["null"]:
        sentences.append(f"no clear change in {_join(p['null'])}")
    text = "; ".join(sentences) + "."
    met = int((scorecard["target_status"] == "target met").sum())
    with_target = int(scorecard["target_status"].isin(["target met", "target not met"]).sum())
    text += f" Targets met: {met} of {with_target}."
    n_ne = len(p["not_evaluated"])
    if n_ne:
        text += (
            f" {n_ne} indicator{'s' if n_ne != 1 else ''} without a comparison group "
            "(described, not evaluated)."
        )
    return text


def headline_html(scorecard: pd.DataFrame, country_name: str = "", period: str = "") -> str:
    """The headline as the first thing a reader sees (a box above the scorecard)."""
    p = _headline_parts(scorecard)
    esc = html.escape

    def names(key: str) -> str:
        return esc(_join(p[key]))

    lines = []
    evaluated = p["improved"] or p["worse"] or p["null"]
    if p["improved"]:
        lines.append(
            f'<li class="verdict-improved"><b>▲ Improved with CLM:</b> {names("improved")}.</li>'
        )
    elif evaluated:
        lines.append('<li class="verdict-null"><b>No indicator improved clearly with CLM.</b></li>')
    else:
        lines.append(
            '<li class="verdict-none"><b>○ No effect of CLM could be evaluated:</b> no '
            "indicator has both CLM and comparison facilities.</li>"
        )
    if evaluated:
        lines.append(
            f'<li class="verdict-worse"><b>▼ Worse with CLM:</b> {names("worse")}.</li>'
            if p["worse"]
            else '<li class="verdict-worse-none"><b>▼ Worse with CLM:</b> none.</li>'
        )
    if p["null"]:
        lines.append(f'<li class="verdict-null"><b>● No clear change:</b> {names("null")}.</li>')
    met = int((scorecard["target_status"] == "target met").sum())
    with_target = int(scorecard["target_status"].isin(["target met", "target not met"]).sum())
    n_ne = len(p["not_evaluated"])
    tail = f"Targets met: {met} of {with_target}."
    if n_ne:
        tail += f" {n_ne} indicators have no comparison group and are described only."
    n_absent = len(scorecard.attrs.get("not_collected") or {})
    if n_absent:
        tail += f" {n_absent} outcome and impact indicators are not collected in this country."
    where = f" in {esc(country_name)}" if country_name else ""
    when = f", {esc(period)}" if period else ""
    return (
        f'<div class="clm-headline"><p class="clm-headline-q">Is CLM improving services'
        f"{where}{when}? Compared with facilities not yet under CLM (adjusted for "
        f"{int(scorecard['p_adjusted'].notna().sum())} indicators tested, FDR {FDR:.0%}):</p>"
        f"<ul>{''.join(lines)}</ul><p>{esc(tail)}</p></div>"
    )
