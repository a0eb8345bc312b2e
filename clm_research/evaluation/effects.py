"""The effect of CLM on every outcome and impact indicator, with one verdict rule.

For each outcome and impact indicator with a comparison design (client indicators from the exit
interviews, routine indicators summed by facility and month), the facility × time panel of
:func:`~clm_research.evaluation.panels.indicator_panel` is analysed with Callaway & Sant'Anna
(2021) difference-in-differences (not-yet-treated comparisons: robust to the staggered, ramping
roll-out that biases two-way fixed effects). p-values are adjusted across the indicators with
the Benjamini–Hochberg false-discovery rate (:func:`~clm_research.evaluation.multiplicity.
benjamini_hochberg`), and :func:`effect_verdict` turns each effect into a plain verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from clm_research.evaluation._results import EvaluationError
from clm_research.evaluation.multiplicity import benjamini_hochberg

if TYPE_CHECKING:
    import pandas as pd

    from clm_research.framework import Framework

__all__ = ["EFFECT_VERDICTS", "FDR", "EFFECT_COLUMNS", "effect_verdict", "clm_effects"]

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
    "p_adjusted",
    "n_facilities",
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


def clm_effects(framework: Framework, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The CLM effect on every outcome and impact indicator with a comparison design.

    Returns
    -------
    DataFrame
        One row per outcome and impact indicator, :data:`EFFECT_COLUMNS`: the Callaway &
        Sant'Anna overall effect with its 95% CI and p-value, the Benjamini–Hochberg adjusted
        p-value, the number of facilities, the verdict, and a note when the indicator has no
        comparison design or the model could not be fitted (the reason, never hidden).
    """
    import numpy as np
    import pandas as pd

    from clm_research.errors import CLMError
    from clm_research.evaluation.did import callaway_santanna
    from clm_research.evaluation.panels import indicator_panel

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
        try:
            panel = indicator_panel(framework, tables, ind.id)
        except (CLMError, KeyError, ValueError) as e:  # reported, not hidden
            row["note"] = f"panel not built: {e}"
        if panel is not None:
            time_col = "round" if "round" in panel.columns else "period"
            try:
                eff = callaway_santanna(panel, time=time_col).primary
                row.update(
                    estimate=eff.estimate,
                    ci_low=eff.ci_low,
                    ci_high=eff.ci_high,
                    p_value=eff.p_value,
                    n_facilities=int(panel["facility_id"].nunique()),
                )
            except (EvaluationError, np.linalg.LinAlgError, ValueError) as e:
                row["note"] = f"model not fitted: {type(e).__name__}: {e}"
        rows.append(row)
    out = pd.DataFrame(rows)
    for c in ("estimate", "ci_low", "ci_high", "p_value", "n_facilities", "note"):
        if c not in out:
            out[c] = np.nan if c != "note" else ""
    out["note"] = out["note"].fillna("")
    out["p_adjusted"] = benjamini_hochberg(out["p_value"].to_numpy(dtype=float))
    out["verdict"] = [
        effect_verdict(estimate, p_adjusted, direction)
        for estimate, p_adjusted, direction in zip(
            out["estimate"], out["p_adjusted"], out["direction"], strict=True
        )
    ]
    return out[list(EFFECT_COLUMNS)]
