"""The report's first screen: the progress scorecard of every outcome and impact indicator.

One row per indicator: its baseline (first round) and latest (reporting round) value, its
target and whether the target is met (:func:`~clm_research.evaluation.progress.
progress_to_target`), the CLM effect with its 95% CI and adjusted p-value and the verdict
(:func:`~clm_research.evaluation.effects.clm_effects`), and one plain-language sentence.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from clm_research.evaluation.effects import EFFECT_VERDICTS
from clm_research.report.context import clm_effects, framework_of, indicator_table, params_of
from clm_research.report.tables import SUPPRESSED, format_value

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler

    from clm_research.framework import Framework, Indicator

__all__ = [
    "VERDICTS",
    "TARGET_STATUSES",
    "target_status",
    "build_scorecard",
    "progress_scorecard",
    "scorecard_display",
    "headline",
]

#: Plain-language verdicts on the CLM effect (the scorecard's ``verdict`` column).
VERDICTS = EFFECT_VERDICTS

#: What the scorecard's ``target_status`` column can say.
TARGET_STATUSES: tuple[str, ...] = (
    "target met",
    "target not met",
    "no target",
    "no data",
    SUPPRESSED,
)


def _cell(indicators: pd.DataFrame, indicator_id: str, round_: str) -> pd.Series | None:
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


def build_scorecard(
    framework: Framework,
    indicators: pd.DataFrame,
    effects: pd.DataFrame,
    baseline_round: str,
    period: str,
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
        :func:`~clm_research.evaluation.effects.clm_effects` output.
    baseline_round, period
        The first round and the reporting round.

    Returns
    -------
    DataFrame
        ``indicator_id, indicator, level, baseline, latest, target, target_status,
        effect (95% CI), adjusted p, verdict, in plain words``.
    """
    import pandas as pd

    eff = effects.set_index("indicator_id")
    rows = []
    for ind in framework.indicators:
        if ind.level not in ("outcomes", "impact"):
            continue
        base, last = _cell(indicators, ind.id, baseline_round), _cell(indicators, ind.id, period)
        b = None if base is None or bool(base["suppressed"]) else base["estimate"]
        l_sup = last is not None and bool(last["suppressed"])
        lv = None if last is None or l_sup else last["estimate"]
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
        effect = ""
        if has_eff and e is not None:
            effect = (
                f"{e['estimate'] * scale:+.1f}{' pp' if ind.type == 'proportion' else ''} "
                f"({e['ci_low'] * scale:+.1f} to {e['ci_high'] * scale:+.1f})"
            )
        verdict = e["verdict"] if e is not None else VERDICTS["not_evaluated"]
        tstat = target_status(ind, indicators, period)
        words = f"{ind.label}: "
        if b is not None and lv is not None:
            words += (
                f"{format_value(b, ind.type)} in {baseline_round}, "
                f"{format_value(lv, ind.type)} in {period}"
            )
        elif lv is not None:
            words += f"{format_value(lv, ind.type)} in {period}"
        else:
            words += f"no publishable estimate for {period}"
        if target is not None:
            words += f" (target {format_value(target, ind.type)}: {tstat.replace('target ', '')})"
        words += ". "
        if has_eff and e is not None:
            words += (
                f"Compared with facilities not yet under CLM, CLM changed it by "
                f"{e['estimate'] * scale:+.1f}{unit} (95% CI {e['ci_low'] * scale:+.1f} to "
                f"{e['ci_high'] * scale:+.1f}; adjusted p = {e['p_adjusted']:.2g}): {verdict}."
            )
        else:
            words += "No comparison group for this indicator: progress is descriptive only."
        rows.append(
            {
                "indicator_id": ind.id,
                "indicator": ind.label,
                "level": ind.level,
                "baseline": "" if b is None else format_value(b, ind.type),
                "latest": SUPPRESSED
                if l_sup
                else ("" if lv is None else format_value(lv, ind.type)),
                "target": "" if target is None else format_value(target, ind.type),
                "target_status": tstat,
                "effect (95% CI)": effect,
                "adjusted p": f"{e['p_adjusted']:.3g}" if has_eff and e is not None else "",
                "verdict": verdict,
                "in plain words": words,
            }
        )
    return pd.DataFrame(rows)


def progress_scorecard(country: str, period: str) -> pd.DataFrame:
    """The first screen of a country's report: :func:`build_scorecard` on its data."""
    return build_scorecard(
        framework_of(country),
        indicator_table(country, ("round",)),
        clm_effects(country),
        params_of(country).baseline_round,
        period,
    )


def scorecard_display(scorecard: pd.DataFrame) -> Styler:
    """The scorecard as a styled table (verdict coloured) without the id column."""

    def colour(v: object) -> str:
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
