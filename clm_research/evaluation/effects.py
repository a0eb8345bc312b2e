"""The effect of CLM on every outcome and impact indicator, with one verdict rule.

For each outcome and impact indicator with a comparison design (client indicators from the exit
interviews, routine indicators summed by facility and month), the facility × time panel of
:func:`~clm_research.evaluation.panels.indicator_panel` is analysed with Callaway & Sant'Anna
(2021) difference-in-differences (not-yet-treated comparisons: robust to the staggered, ramping
roll-out that biases two-way fixed effects). p-values are adjusted across the indicators with
the Benjamini–Hochberg false-discovery rate (:func:`~clm_research.evaluation.multiplicity.
benjamini_hochberg`), and :func:`effect_verdict` turns each effect into a plain verdict.

One rule, shown as it is applied
--------------------------------
An effect is *detected* (improved / worse with CLM) when its Benjamini–Hochberg adjusted
p-value is below the false-discovery rate ``q`` (5%). The interval a report prints beside the
verdict is adjusted the same way: the Benjamini–Yekutieli (2005) false-coverage-rate interval,
the marginal Wald interval at level ``1 − R·q/m`` for ``R`` effects selected out of ``m`` tested
(``1 − q/m`` when none is selected). Because a BH-selected p-value is below ``R·q/m`` and every
other p-value is at least ``(R + 1)·q/m``, the adjusted interval excludes no change exactly when
the verdict is improved or worse (Benjamini Y, Yekutieli D. False discovery rate-adjusted
multiple confidence intervals for selected parameters. JASA 2005;100:71-81). The unadjusted
95% interval is kept in the tables saved for reuse (and pooled by the synthesis).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from clm_research.evaluation._results import EvaluationError
from clm_research.evaluation.multiplicity import benjamini_hochberg

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from clm_research.framework import Framework, Indicator

__all__ = [
    "EFFECT_VERDICTS",
    "FDR",
    "EFFECT_COLUMNS",
    "effect_verdict",
    "fcr_level",
    "fcr_intervals",
    "verdict_rule",
    "clm_effects",
]

#: Plain-language verdicts on the effect of CLM.
EFFECT_VERDICTS: dict[str, str] = {
    "improved": "improved with CLM",
    "worse": "worse with CLM",
    "null": "no clear change",
    "not_evaluated": "not evaluated (no comparison)",
}

#: False-discovery rate: an effect counts as detected when its adjusted p-value is below it.
FDR = 0.05

#: Columns of :func:`clm_effects`.
EFFECT_COLUMNS: tuple[str, ...] = (
    "indicator_id",
    "label",
    "level",
    "direction",
    "type",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "se",
    "p_adjusted",
    "ci_level_adjusted",
    "ci_low_adjusted",
    "ci_high_adjusted",
    "n_facilities",
    "time_unit",
    "verdict",
    "note",
)


def effect_verdict(
    estimate: float | None, p_adjusted: float | None, direction: str, fdr: float = FDR
) -> str:
    """The verdict on one effect: improved / worse with CLM, no clear change, not evaluated.

    Parameters
    ----------
    estimate
        The effect (on the indicator's scale; a difference).
    p_adjusted
        Its multiplicity-adjusted p-value (missing when the effect was not estimated).
    direction
        ``higher_is_better`` or ``lower_is_better``: which sign is an improvement.
    fdr
        The false-discovery rate under which an effect counts as detected.

    Returns
    -------
    str
        One of :data:`EFFECT_VERDICTS`' values.
    """
    if (
        estimate is None
        or p_adjusted is None
        or not math.isfinite(float(estimate))
        or not math.isfinite(float(p_adjusted))
    ):
        return EFFECT_VERDICTS["not_evaluated"]
    if p_adjusted >= fdr:
        return EFFECT_VERDICTS["null"]
    good = (estimate > 0) == (direction == "higher_is_better")
    return EFFECT_VERDICTS["improved"] if good else EFFECT_VERDICTS["worse"]


def fcr_level(p_adjusted: Sequence[float] | np.ndarray, fdr: float = FDR) -> float:
    """Confidence level of the Benjamini–Yekutieli false-coverage-rate intervals.

    ``1 − R·q/m`` where ``m`` is the number of effects tested (finite adjusted p-values) and
    ``R`` the number selected (adjusted p-value below ``q``); ``1 − q/m`` when none is selected
    (every p-value is then at least ``q/m``, so every interval includes no change). ``nan``
    when nothing was tested.
    """
    import numpy as np

    q = np.asarray(p_adjusted, dtype=float)
    tested = q[np.isfinite(q)]
    m = len(tested)
    if m == 0:
        return math.nan
    selected = int((tested < fdr).sum())
    return 1.0 - max(selected, 1) * fdr / m


def fcr_intervals(
    estimate: Sequence[float] | np.ndarray,
    se: Sequence[float] | np.ndarray,
    p_adjusted: Sequence[float] | np.ndarray,
    fdr: float = FDR,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Benjamini–Yekutieli FCR-adjusted Wald intervals ``estimate ± z·se`` (see the module).

    Parameters
    ----------
    estimate, se
        Effects on the reporting scale (differences) and their standard errors, from normal
        (Wald) tests: the interval and the p-value must come from the same statistic for the
        interval to agree with the verdict.
    p_adjusted
        Benjamini–Hochberg adjusted p-values of the same effects (``nan`` = not tested).
    fdr
        The false-discovery rate ``q``.

    Returns
    -------
    low, high, level
        The adjusted limits (``nan`` where the effect was not tested) and their common level.
    """
    import numpy as np
    from scipy import stats

    est = np.asarray(estimate, dtype=float)
    s = np.asarray(se, dtype=float)
    q = np.asarray(p_adjusted, dtype=float)
    level = fcr_level(q, fdr)
    if not math.isfinite(level):
        nan = np.full(est.shape, np.nan)
        return nan, nan.copy(), level
    z = float(stats.norm.ppf(0.5 + level / 2))
    ok = np.isfinite(q) & np.isfinite(est) & np.isfinite(s)
    low = np.where(ok, est - z * s, np.nan)
    high = np.where(ok, est + z * s, np.nan)
    return low, high, level


def verdict_rule(effects: pd.DataFrame, fdr: float = FDR) -> str:
    """The verdict rule in one paragraph, with this report's numbers (tested, selected, level).

    ``effects`` is :func:`clm_effects` output; the sentence is what a report's legend prints.
    """
    import numpy as np

    q = effects["p_adjusted"].to_numpy(dtype=float)
    m = int(np.isfinite(q).sum())
    selected = int((q[np.isfinite(q)] < fdr).sum())
    level = fcr_level(q, fdr)
    if m == 0:
        return (
            "No indicator has a comparison group in these data, so no effect of CLM was "
            "estimated and no verdict is given."
        )
    return (
        f"An indicator is reported as improved or worse with CLM only when its effect is still "
        f"detected after adjusting for the {m} indicators tested (Benjamini–Hochberg "
        f"false-discovery rate {fdr:.0%}); {selected} of {m} are. The intervals beside the "
        f"verdicts are adjusted the same way (Benjamini–Yekutieli false-coverage-rate "
        f"intervals, here at the {level:.1%} level), so an interval that excludes zero always "
        f"goes with improved or worse, and one that includes zero with no clear change. "
        f"Unadjusted 95% intervals are in the chapter tables and the CSV files."
    )


#: Why an indicator from each dataset has no comparison design (the effects table's note).
_NO_COMPARISON: dict[str, str] = {
    "issues": "issues are logged only where CLM works: no comparison facilities",
    "observations": "monitoring visits happen only where CLM works: no comparison facilities",
    "outreach": "outreach data come only from CLM's implementing organisations",
    "organisations": "organisations are CLM's implementers: no comparison group",
    "facilities": "a facility attribute without a before/after series",
}


def _no_design_reason(ind: Indicator) -> str:
    if ind.dataset in _NO_COMPARISON:
        return f"not evaluated: {_NO_COMPARISON[ind.dataset]}"
    return (
        f"not evaluated: a {ind.type} of {ind.dataset} has no facility-level comparison "
        "design (only proportions, means and medians of interviews, and summed routine "
        "indicators have one)"
    )


def clm_effects(framework: Framework, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The CLM effect on every outcome and impact indicator with a comparison design.

    Returns
    -------
    DataFrame
        One row per outcome and impact indicator, :data:`EFFECT_COLUMNS`: the Callaway &
        Sant'Anna overall effect with its 95% CI, p-value and standard error, the
        Benjamini–Hochberg adjusted p-value, the Benjamini–Yekutieli FCR-adjusted interval and
        its level (:func:`fcr_intervals`), the number of facilities, the panel's time unit
        (``round`` or ``month``: an effect on a count is per facility and time unit), the
        verdict, and a note
        when the indicator has no comparison design or the model could not be fitted (the
        reason, never hidden).
    """
    import numpy as np
    import pandas as pd

    from clm_research.errors import CLMError
    from clm_research.evaluation.did import callaway_santanna
    from clm_research.evaluation.panels import indicator_panel
    from clm_research.framework import resolve_availability

    # a country that does not collect an indicator's data, or its facilities' CLM start
    # dates (the comparison), has nothing to evaluate: said in the note, never an error
    missing = resolve_availability(framework, tables).not_computed
    fac = tables.get("facilities")
    no_arms = fac is None or "clm_start" not in fac.columns
    rows = []
    for ind in framework.indicators:
        if ind.level not in ("outcomes", "impact"):
            continue
        row: dict[str, object] = {
            "indicator_id": ind.id,
            "label": ind.label,
            "level": ind.level,
            "direction": ind.direction,
            "type": ind.type,
        }
        panel = None
        if ind.id in missing:
            row["note"] = f"not evaluated: {missing[ind.id]}"
        elif no_arms and ind.dataset in ("interviews", "routine"):
            row["note"] = (
                "not evaluated: no facility list with CLM start dates, so CLM and comparison "
                "facilities cannot be told apart"
            )
        else:
            try:
                panel = indicator_panel(framework, tables, ind.id)
            except (CLMError, KeyError, ValueError) as e:  # reported, not hidden
                row["note"] = f"panel not built: {e}"
        if panel is None and "note" not in row:
            row["note"] = _no_design_reason(ind)
        if panel is not None:
            time_col = "round" if "round" in panel.columns else "period"
            try:
                eff = callaway_santanna(panel, time=time_col).primary
                row.update(
                    estimate=eff.estimate,
                    ci_low=eff.ci_low,
                    ci_high=eff.ci_high,
                    p_value=eff.p_value,
                    se=eff.se,
                    n_facilities=int(panel["facility_id"].nunique()),
                    time_unit="round" if time_col == "round" else "month",
                )
            except (EvaluationError, np.linalg.LinAlgError, ValueError) as e:
                row["note"] = f"model not fitted: {type(e).__name__}: {e}"
        rows.append(row)
    out = pd.DataFrame(rows)
    for c in ("estimate", "ci_low", "ci_high", "p_value", "se", "n_facilities"):
        if c not in out:
            out[c] = np.nan
    for c in ("note", "time_unit"):
        out[c] = out[c].fillna("") if c in out else ""
    out["p_adjusted"] = benjamini_hochberg(out["p_value"].to_numpy(dtype=float))
    low, high, level = fcr_intervals(
        out["estimate"].to_numpy(dtype=float),
        out["se"].to_numpy(dtype=float),
        out["p_adjusted"].to_numpy(dtype=float),
    )
    out["ci_level_adjusted"] = level
    out["ci_low_adjusted"], out["ci_high_adjusted"] = low, high
    out["verdict"] = [
        effect_verdict(estimate, p_adjusted, direction)
        for estimate, p_adjusted, direction in zip(
            out["estimate"], out["p_adjusted"], out["direction"], strict=True
        )
    ]
    return out[list(EFFECT_COLUMNS)]
