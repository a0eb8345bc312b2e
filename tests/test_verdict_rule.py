"""The verdict rule and the interval printed beside it agree, at the boundaries and everywhere.

The rule (clm_research.evaluation.effects): an effect is detected when its Benjamini–Hochberg
adjusted p-value is below q = 5%; the interval shown is the Benjamini–Yekutieli (2005)
false-coverage-rate interval, the Wald interval at level 1 − R·q/m for R effects selected out
of m. The cases below are worked out by hand from those definitions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clm_research.evaluation.effects import (
    EFFECT_VERDICTS,
    FDR,
    effect_verdict,
    fcr_intervals,
    fcr_level,
    verdict_rule,
)
from clm_research.evaluation.multiplicity import benjamini_hochberg


def _effects_for(p_values: list[float], signs: list[int] | None = None) -> pd.DataFrame:
    """Effects with standard error 1 whose two-sided Wald p-values are ``p_values``."""
    p = np.asarray(p_values, dtype=float)
    z = stats.norm.isf(p / 2)
    sign = np.asarray(signs if signs is not None else [1] * len(p), dtype=float)
    est = sign * z
    q = benjamini_hochberg(p)
    low, high, level = fcr_intervals(est, np.ones_like(est), q)
    verdicts = [effect_verdict(e, qq, "higher_is_better") for e, qq in zip(est, q, strict=True)]
    return pd.DataFrame(
        {
            "estimate": est,
            "p_value": p,
            "p_adjusted": q,
            "low": low,
            "high": high,
            "level": level,
            "verdict": verdicts,
        }
    )


def test_a_hand_worked_case() -> None:
    """m = 4, q = 0.05, p = 0.001, 0.02, 0.03, 0.5.

    BH thresholds i·q/m = 0.0125, 0.025, 0.0375, 0.05: the first three are below theirs, the
    fourth is not, so R = 3. Adjusted p: 4·0.5/4 = 0.5; min(4·0.03/3, 0.5) = 0.04;
    min(4·0.02/2, 0.04) = 0.04; min(4·0.001/1, 0.04) = 0.004. The FCR level is
    1 − 3·0.05/4 = 0.9625, i.e. z = Φ⁻¹(1 − 0.0375/2) = Φ⁻¹(0.98125).
    """
    d = _effects_for([0.001, 0.02, 0.03, 0.5])
    assert d["p_adjusted"].tolist() == pytest.approx([0.004, 0.04, 0.04, 0.5])
    assert d["level"].iloc[0] == pytest.approx(0.9625)
    z = stats.norm.ppf(0.98125)
    assert z == pytest.approx(2.0803, abs=1e-4)  # normal table: Φ(2.08) = 0.98124
    assert (d["high"] - d["estimate"]).tolist() == pytest.approx([z] * 4)
    improved, null = EFFECT_VERDICTS["improved"], EFFECT_VERDICTS["null"]
    assert d["verdict"].tolist() == [improved, improved, improved, null]
    # the three detected intervals exclude 0, the fourth includes it
    assert ((d["low"] > 0) == (d["verdict"] == improved)).all()


@pytest.mark.parametrize(
    ("third", "selected", "level"),
    [
        # just below its BH threshold 3q/m = 0.0375: three selected, level 1 − 3q/m
        (0.0375 * (1 - 1e-6), 3, 1 - 3 * FDR / 4),
        # just above: BH stops at two (0.02 ≤ 2q/m = 0.025), level 1 − 2q/m
        (0.0375 * (1 + 1e-6), 2, 1 - 2 * FDR / 4),
    ],
)
def test_the_boundary_of_the_third_effect(third: float, selected: int, level: float) -> None:
    d = _effects_for([0.001, 0.02, third, 0.5], signs=[1, -1, 1, 1])
    detected = d["verdict"] != EFFECT_VERDICTS["null"]
    assert int(detected.sum()) == selected
    assert d["level"].iloc[0] == pytest.approx(level)
    excludes_zero = (d["low"] > 0) | (d["high"] < 0)
    assert (excludes_zero == detected).all()
    # the worse-direction effect (negative sign, higher is better) is "worse", interval < 0
    assert d["verdict"].iloc[1] == EFFECT_VERDICTS["worse"] and d["high"].iloc[1] < 0


def test_nothing_selected_uses_the_bonferroni_level() -> None:
    """R = 0: every p is at least q/m, so 1 − q/m intervals all include 0."""
    d = _effects_for([0.02, 0.3, 0.6])
    assert (d["verdict"] == EFFECT_VERDICTS["null"]).all()
    assert d["level"].iloc[0] == pytest.approx(1 - FDR / 3)
    assert ((d["low"] <= 0) & (d["high"] >= 0)).all()


def test_the_verdict_and_the_adjusted_interval_agree_on_random_tables() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        m = int(rng.integers(1, 25))
        # a mix of nulls (uniform p) and effects (small p)
        p = np.where(rng.random(m) < 0.4, rng.uniform(0, 0.01, m), rng.uniform(0, 1, m))
        d = _effects_for(list(p), signs=list(rng.choice([-1, 1], m)))
        detected = d["verdict"] != EFFECT_VERDICTS["null"]
        excludes_zero = (d["low"] > 0) | (d["high"] < 0)
        assert (excludes_zero == detected).all()


def test_untested_effects_have_no_interval_and_do_not_count() -> None:
    est = np.array([2.5, np.nan, 0.1])
    p = 2 * stats.norm.sf(np.abs(est))
    q = benjamini_hochberg(p)
    low, high, level = fcr_intervals(est, np.ones(3), q)
    assert math.isnan(low[1]) and math.isnan(high[1])
    # m = 2 tested; p = 0.0124 ≤ q/2 selects one: level 1 − 1·0.05/2
    assert level == pytest.approx(0.975)
    assert math.isnan(fcr_level([math.nan, math.nan]))


def test_the_rule_in_words_states_the_numbers() -> None:
    text = verdict_rule(pd.DataFrame({"p_adjusted": [0.004, 0.04, 0.04, 0.5]}))
    assert "4 indicators tested" in text and "3 of 4 are" in text
    assert "96.2% level" in text and "Benjamini–Yekutieli" in text
    none = verdict_rule(pd.DataFrame({"p_adjusted": [math.nan]}))
    assert "no verdict" in none
