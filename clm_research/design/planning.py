"""Planning a study on the learner's own indicator: units, power of each design, rehearsal data.

The workshop notebooks take a participant's indicator from the measurement framework and
their own numbers. The indicator's **type** decides the scale everything is stated on:

=========================== ============== ================================================
framework type              kind           values and effects
=========================== ============== ================================================
``mean``, ``median``,       continuous     the indicator's unit (minutes, days, points);
``duration``                               the SD between clients is needed
``proportion``              proportion     values in percent (60 = 60 %), effects in
                                           percentage points (+5 = from 60 % to 65 %)
``rate``                    rate           the indicator's unit (issues per visit, per
                                           person-month); Poisson variation plus a
                                           between-facility coefficient of variation
``count``                   rate           events per facility and round
=========================== ============== ================================================

:func:`power_check` computes the power of the design named in an analysis plan
(``pre_post``, ``its``, ``did``, ``stepped_wedge``, ``cluster_rct``) from these numbers, with
the formulas of :mod:`~clm_research.design.crt`, :mod:`~clm_research.design.stepped_wedge`
and :func:`~clm_research.design.simulation.did_power`, and says in words when the power is
below the target. :func:`rehearsal_data` simulates a study's data from the same numbers, so
the publishing session can build Table 1 and a figure before real data exist.

A median is planned as if it were a mean (the SD of the clients' values stands in for the
spread of the median); state it in the plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from clm_research.errors import DesignInputError
from clm_research.plans import DESIGNS

if TYPE_CHECKING:
    from clm_research.framework import Indicator

__all__ = [
    "OutcomeKind",
    "OutcomeScale",
    "PlanningNumbers",
    "PowerCheck",
    "PLANNED_DESIGNS",
    "power_check",
    "facilities_per_arm",
    "allocate_arms",
    "indicator_by_round",
    "round_labels",
    "round_range",
    "rehearsal_data",
]

OutcomeKind = Literal["continuous", "proportion", "rate"]

#: Designs a plan can name (the analysis plans' list).
PLANNED_DESIGNS: tuple[str, ...] = DESIGNS

_DESIGN_WORDS = {
    "pre_post": "pre/post comparison of the same facilities",
    "its": "interrupted time series of the facilities' average",
    "did": "difference-in-differences",
    "stepped_wedge": "stepped wedge",
    "cluster_rct": "cluster-randomised comparison",
}

_KIND_OF_TYPE: dict[str, OutcomeKind] = {
    "mean": "continuous",
    "median": "continuous",
    "duration": "continuous",
    "proportion": "proportion",
    "rate": "rate",
    "count": "rate",
}


def _num(x: float) -> str:
    """A number as a learner reads it: 45, 12.5, 0.035, 1234."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


@dataclass(frozen=True)
class OutcomeScale:
    """How an indicator's values and effects are stated (see the module docstring).

    Attributes
    ----------
    indicator_id, label
        The indicator of the framework.
    kind
        ``"continuous"``, ``"proportion"`` or ``"rate"``.
    unit
        Unit of a value: ``"minutes"``, ``"%"``, ``"issues per visit"``…
    direction
        ``"higher_is_better"`` or ``"lower_is_better"``.
    indicator_type
        The framework's type (``median``, ``proportion``…), which decides the summary statistic.
    """

    indicator_id: str
    label: str
    kind: OutcomeKind
    unit: str
    direction: str
    indicator_type: str = ""

    @classmethod
    def from_indicator(cls, indicator: Indicator) -> OutcomeScale:
        """The scale of a framework indicator.

        Examples
        --------
        >>> from clm_research.framework import load_framework
        >>> fw = load_framework()
        >>> OutcomeScale.from_indicator(fw.indicator("treated_with_respect")).effect_unit
        'percentage points'
        >>> OutcomeScale.from_indicator(fw.indicator("wait_time_median")).effect_unit
        'minutes'
        """
        kind = _KIND_OF_TYPE[indicator.type]
        if kind == "proportion":
            unit = "%"
        elif indicator.type == "count":
            unit = f"{indicator.unit or 'events'} per facility and round"
        else:
            unit = indicator.unit or "units"
            if kind == "rate" and unit.startswith("per "):
                unit = f"events {unit}"  # "per person-month on ART" names no numerator
        return cls(indicator.id, indicator.label, kind, unit, indicator.direction, indicator.type)

    @property
    def measured_in(self) -> str:
        """What a value is measured in, in words: ``"percent"``, ``"minutes"``…"""
        return "percent" if self.kind == "proportion" else self.unit

    @property
    def effect_unit(self) -> str:
        """Unit of an effect: ``"percentage points"`` for a proportion, else the value unit."""
        return "percentage points" if self.kind == "proportion" else self.unit

    def value_text(self, value: float) -> str:
        """A value with its unit: ``"45 minutes"``, ``"60%"``, ``"0.8 issues per visit"``."""
        if self.kind == "proportion":
            return f"{_num(value)}%"
        return f"{_num(value)} {self.unit}"

    def effect_text(self, effect: float) -> str:
        """A signed effect with its unit: ``"-10 minutes"``, ``"+5 percentage points"``."""
        sign = "+" if effect > 0 else "-" if effect < 0 else ""
        return f"{sign}{_num(abs(effect))} {self.effect_unit}"

    @property
    def axis_label(self) -> str:
        """Axis label for a figure: the indicator's label and the unit of its values."""
        if self.kind == "rate" and self.unit.removeprefix("events ") in self.label:
            return self.label
        return f"{self.label} ({self.unit})"

    def to_plan_scale(self, effect: float) -> float:
        """An effect as an analysis plan stores it: proportions on the 0–1 scale.

        Examples
        --------
        >>> OutcomeScale("x", "x", "proportion", "%", "higher_is_better").to_plan_scale(5)
        0.05
        """
        return effect / 100 if self.kind == "proportion" else float(effect)


@dataclass(frozen=True)
class PlanningNumbers:
    """The numbers a learner plans with, on their indicator's scale (checked when built).

    Attributes
    ----------
    scale
        The indicator's :class:`OutcomeScale`.
    baseline
        The indicator's value without CLM: a mean in its unit, a proportion in percent, a rate.
    effect
        The smallest change worth detecting, signed (in the unit, percentage points, or rate
        unit).
    icc
        Intra-cluster correlation (continuous and proportion indicators).
    sd
        Continuous indicators: SD of the values between clients (all facilities).
    cv_between
        Rates: coefficient of variation of the true rates between facilities.
    interviews_per_round
        Interviews per facility and round (continuous and proportion indicators).
    exposure_per_round
        Rates: the rate's denominator per facility and round (visits, person-months…).
    alpha, target_power
        Two-sided significance level and the power the study should reach.
    """

    scale: OutcomeScale
    baseline: float
    effect: float
    icc: float = 0.05
    sd: float | None = None
    cv_between: float = 0.25
    interviews_per_round: float = 30
    exposure_per_round: float | None = None
    alpha: float = 0.05
    target_power: float = 0.8
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        s = self.scale
        if not math.isfinite(self.effect) or self.effect == 0:
            raise DesignInputError(
                f"effect: the smallest change worth detecting must be a non-zero number "
                f"(in {s.effect_unit}), got {self.effect!r}"
            )
        if not 0 < self.alpha < 0.5:
            raise DesignInputError(f"alpha must be between 0 and 0.5, got {self.alpha!r}")
        if not 0 < self.target_power < 1:
            raise DesignInputError(
                f"target_power must be between 0 and 1 (0.8 = 80%), got {self.target_power!r}"
            )
        notes: list[str] = []
        if s.kind in ("continuous", "proportion"):
            if not 0 <= self.icc < 1:
                raise DesignInputError(f"icc must be at least 0 and below 1, got {self.icc!r}")
            if self.interviews_per_round < 1:
                raise DesignInputError(
                    f"interviews_per_round must be at least 1, got {self.interviews_per_round!r}"
                )
        if s.kind == "continuous":
            if self.sd is None or not self.sd > 0:
                raise DesignInputError(
                    f"sd: {s.label} is measured in {s.unit}; give the SD of the clients' "
                    f"values in {s.unit} (a positive number), got {self.sd!r}"
                )
        elif s.kind == "proportion":
            after = self.baseline + self.effect
            if not 0 < self.baseline < 100:
                raise DesignInputError(
                    f"baseline: {s.label} is a percentage; give it between 0 and 100 "
                    f"(60 means 60%), got {self.baseline!r}"
                )
            if not 0 < after < 100:
                raise DesignInputError(
                    f"effect: baseline {_num(self.baseline)}% {s.effect_text(self.effect)} "
                    f"gives {_num(after)}%, which is not a percentage between 0 and 100"
                )
            if abs(self.effect) < 1:
                notes.append(
                    f"The effect {s.effect_text(self.effect)} is less than one percentage "
                    "point: effects of a proportion are given in percentage points here "
                    "(5 means from 60% to 65%)."
                )
            if self.baseline < 1:
                notes.append(
                    f"The baseline {_num(self.baseline)}% is below 1%: proportions are given "
                    "in percent here (60 means 60%)."
                )
        else:  # rate
            if not self.baseline > 0:
                raise DesignInputError(
                    f"baseline: the rate without CLM must be positive ({s.unit}), "
                    f"got {self.baseline!r}"
                )
            if not self.baseline + self.effect > 0:
                raise DesignInputError(
                    f"effect: baseline {s.value_text(self.baseline)} "
                    f"{s.effect_text(self.effect)} gives a rate of "
                    f"{_num(self.baseline + self.effect)}, which is not positive"
                )
            if self.exposure_per_round is None or not self.exposure_per_round > 0:
                raise DesignInputError(
                    f"exposure_per_round: {s.label} is a rate ({s.unit}); give its denominator "
                    f"per facility and round (a positive number), got {self.exposure_per_round!r}"
                )
            if self.cv_between < 0:
                raise DesignInputError(f"cv_between must be 0 or more, got {self.cv_between!r}")
        object.__setattr__(self, "notes", tuple(notes))

    # ---------------------------------------------------------------- derived quantities
    @property
    def after(self) -> float:
        """The value with CLM: baseline plus effect."""
        return self.baseline + self.effect

    @property
    def per_round(self) -> float:
        """Interviews (or, for a rate, exposure) per facility and round."""
        if self.scale.kind == "rate":
            assert self.exposure_per_round is not None
            return self.exposure_per_round
        return self.interviews_per_round

    def sample_text(self) -> str:
        """``"30 interviews per facility and round"`` or the exposure of a rate."""
        if self.scale.kind == "rate":
            return (
                f"exposure {_num(self.per_round)} per facility and round "
                "(the rate's denominator: person-time, visits…)"
            )
        return f"{_num(self.interviews_per_round)} interviews per facility and round"

    def model_effect(self) -> float:
        """The effect on the scale the formulas use (proportions 0–1)."""
        return self.scale.to_plan_scale(self.effect)

    def within_variance(self) -> float:
        """Variance of one interview (or one unit of exposure) around its facility's level."""
        if self.scale.kind == "continuous":
            assert self.sd is not None
            return (1 - self.icc) * self.sd**2
        if self.scale.kind == "proportion":
            p = (self.baseline + self.after) / 200
            return (1 - self.icc) * p * (1 - p)
        return (self.baseline + self.after) / 2  # Poisson: variance = mean rate

    def between_variance(self) -> float:
        """Variance of the facilities' levels (``τ²``)."""
        if self.scale.kind == "continuous":
            assert self.sd is not None
            return self.icc * self.sd**2
        if self.scale.kind == "proportion":
            p = (self.baseline + self.after) / 200
            return self.icc * p * (1 - p)
        return (self.cv_between * (self.baseline + self.after) / 2) ** 2

    def simulation_inputs(self) -> dict[str, float]:
        """The DiD simulation's inputs (effect, sd, icc, interviews) on the formulas' scale.

        :func:`~clm_research.design.simulation.simulate_did_power` and
        :func:`~clm_research.design.simulation.did_power` simulate facility-round means with
        variance ``(1 − icc) sd² / m``; a proportion is on the 0–1 scale and a rate's Poisson
        variance ``λ̄ / exposure`` is passed as one unit with that variance.
        """
        if self.scale.kind == "rate":
            return {
                "effect": self.effect,
                "sd": math.sqrt(self.within_variance() / self.per_round),
                "icc": 0.0,
                "cluster_period_size": 1,
            }
        return {
            "effect": self.model_effect(),
            "sd": math.sqrt(self.within_variance() + self.between_variance()),
            "icc": self.icc,
            "cluster_period_size": self.interviews_per_round,
        }

    def survey_sample(self, margin: float) -> tuple[int, int]:
        """Interviews and facilities for a survey estimating the indicator to ± ``margin``.

        ``margin`` is in percentage points for a proportion (5 = ± 5 points) and in the
        indicator's unit for a mean or median; the facilities each give
        ``interviews_per_round`` interviews (design effect with the planned ICC).

        Raises
        ------
        DesignInputError
            For a rate (it comes from routine data, not from a survey) or a margin ≤ 0.
        """
        from clm_research.design.survey import (
            clusters_needed,
            sample_size_mean,
            sample_size_proportion,
        )

        if self.scale.kind == "rate":
            raise DesignInputError(
                f"{self.scale.label} is a rate from routine data: a survey sample size does "
                "not apply"
            )
        if not margin > 0:
            raise DesignInputError(f"margin must be positive, got {margin!r}")
        m = self.interviews_per_round
        if self.scale.kind == "proportion":
            n = sample_size_proportion(
                self.baseline / 100, margin / 100, cluster_size=m, icc=self.icc
            )
        else:
            assert self.sd is not None
            n = sample_size_mean(self.sd, margin, cluster_size=m, icc=self.icc)
        return n, clusters_needed(n, m)

    def survey_margin(self, facilities: int, interviews_per_facility: float, icc: float) -> float:
        """± precision (95 %) of the indicator from a survey, in its effect unit."""
        from clm_research.design.survey import margin_of_error_mean, margin_of_error_proportion

        n = facilities * interviews_per_facility
        if self.scale.kind == "proportion":
            p = self.baseline / 100
            return 100 * margin_of_error_proportion(
                p, n, cluster_size=interviews_per_facility, icc=icc
            )
        if self.scale.kind == "continuous":
            assert self.sd is not None
            return margin_of_error_mean(self.sd, n, cluster_size=interviews_per_facility, icc=icc)
        raise DesignInputError(f"{self.scale.label} is a rate: survey precision does not apply")

    def describe(self) -> str:
        """The assumptions in one sentence (for the plan's notes)."""
        s = self.scale
        if s.kind == "continuous":
            spread = f"SD between clients {s.value_text(self.sd or 0)}, ICC {self.icc:g}"
        elif s.kind == "proportion":
            spread = f"ICC {self.icc:g}"
        else:
            spread = f"between-facility coefficient of variation {self.cv_between:g}"
        return (
            f"{s.label}: baseline {s.value_text(self.baseline)}, minimum effect "
            f"{s.effect_text(self.effect)}, {spread}, {self.sample_text()}, two-sided alpha "
            f"{self.alpha:g}"
        )


@dataclass(frozen=True)
class PowerCheck:
    """The power of a planned study and what it means, in words.

    Attributes
    ----------
    power
        Probability of detecting the planned effect.
    target
        The power aimed for (e.g. 0.8).
    design
        The design's plan name (``did``, ``stepped_wedge``…).
    method
        How the power was computed (formula and reference distribution).
    study
        The study's size in words (facilities, rounds, interviews).
    effect
        The effect in words, with its unit.
    notes
        Caveats of the formula for this design and remarks on the numbers.
    """

    power: float
    target: float
    design: str
    method: str
    study: str
    effect: str
    indicator: str
    notes: tuple[str, ...] = ()

    @property
    def meets_target(self) -> bool:
        """Whether the power reaches the target."""
        return self.power >= self.target

    def sentence(self) -> str:
        """The result in one plain sentence."""
        return (
            f"Power {self.power:.2f} ({self.power:.0%}) to detect a change of {self.effect} in "
            f"{self.indicator}, with {self.study}: {_DESIGN_WORDS[self.design]}, {self.method}."
        )

    def warning(self) -> str | None:
        """A warning in words when the power is below the target, else ``None``."""
        if self.meets_target:
            return None
        missed = round(100 * (1 - self.power))
        return (
            f"Warning: the study as planned has only a {self.power:.0%} chance of detecting a "
            f"change of {self.effect} in {self.indicator}, below the {self.target:.0%} target: "
            f"if the effect is real and of that size, about {missed} in 100 such studies "
            "would miss it. Add facilities or rounds, or plan for a larger minimum effect, "
            "before registering the plan."
        )

    def report(self) -> str:
        """Sentence, warning (if any) and notes, one per line."""
        lines = [self.sentence()]
        if (w := self.warning()) is not None:
            lines.append(w)
        lines.extend(self.notes)
        return "\n".join(lines)


def _check_counts(**counts: int) -> None:
    for name, v in counts.items():
        if int(v) != v or v < 0:
            raise DesignInputError(f"{name} must be a whole number of 0 or more, got {v!r}")


def _steps_split(n: int, steps: int) -> list[int]:
    base, extra = divmod(n, steps)
    return [base + (1 if s < extra else 0) for s in range(steps)]


def power_check(
    numbers: PlanningNumbers,
    design: str,
    *,
    facilities_clm: int,
    facilities_comparison: int = 0,
    rounds_before: int = 1,
    rounds_after: int = 1,
    steps: int | None = None,
    crt_method: Literal["t", "normal"] = "t",
) -> PowerCheck:
    """Power of a planned study to detect the planned effect on the learner's indicator.

    Parameters
    ----------
    numbers
        The indicator's scale and the planning numbers.
    design
        ``pre_post``, ``its``, ``did``, ``stepped_wedge`` or ``cluster_rct``.
    facilities_clm, facilities_comparison
        Facilities with CLM (in a stepped wedge: all facilities of the roll-out) and
        facilities without CLM during the study.
    rounds_before, rounds_after
        Rounds of data before CLM starts and from its start (stepped wedge: before the first
        step, and from the first step).
    steps
        Stepped wedge only: the waves in which the CLM facilities start (default: one per
        round after, at most one per facility).
    crt_method
        Cluster RCT only: ``"t"`` (noncentral t, the default) or ``"normal"`` (to compare with
        the other designs' normal approximations like for like).

    Returns
    -------
    PowerCheck
        ``.power``, ``.sentence()``, ``.warning()`` (``None`` when the target is met).

    Notes
    -----
    * ``cluster_rct``: the rounds after the start are pooled (``m`` = interviews × rounds per
      facility); noncentral t with ``k₁ + k₀ − 2`` degrees of freedom (equal arms: 2(k − 1)).
    * ``did``: the two-way fixed-effects closed form of
      :func:`~clm_research.design.simulation.did_power` (normal approximation; facility
      levels cancel).
    * ``stepped_wedge``: Hussey & Hughes via :func:`~clm_research.design.stepped_wedge_power`
      (comparison facilities, if any, never switch).
    * ``pre_post``: the change of the same facilities, ``σ² (1/T_pre + 1/T_post) / G``; it
      assumes nothing else changes over time (notebook 2 shows the bias when it does).
    * ``its``: ordinary least squares on the facilities' average per round with independent
      errors (level change); optimistic when rounds are autocorrelated.

    Examples
    --------
    A parallel comparison, 10 facilities per arm, 20 interviews each at one round, ICC 0.05,
    an effect of half the SD: the noncentral t with 18 degrees of freedom gives 0.923.

    >>> scale = OutcomeScale("w", "waiting time", "continuous", "minutes", "lower_is_better")
    >>> n = PlanningNumbers(scale, baseline=60, effect=-20, sd=40, icc=0.05,
    ...                     interviews_per_round=20)
    >>> round(power_check(n, "cluster_rct", facilities_clm=10, facilities_comparison=10).power, 3)
    0.923
    """
    if design not in PLANNED_DESIGNS:
        raise DesignInputError(f"design {design!r} is not one of {', '.join(PLANNED_DESIGNS)}")
    _check_counts(
        facilities_clm=facilities_clm,
        facilities_comparison=facilities_comparison,
        rounds_before=rounds_before,
        rounds_after=rounds_after,
    )
    g1, g0 = int(facilities_clm), int(facilities_comparison)
    t_pre, t_post = int(rounds_before), int(rounds_after)
    s = numbers.scale
    m = numbers.per_round
    effect = numbers.model_effect()
    alpha = numbers.alpha
    notes = list(numbers.notes)
    who = f"{g1} CLM" + (f" and {g0} comparison" if g0 else "") + " facilities"
    study = f"{who}, {numbers.sample_text()}, {t_pre} round(s) before and {t_post} from the start"
    sigma2 = numbers.within_variance() / m  # variance of a facility-round mean

    from clm_research.design.crt import _power as crt_power
    from clm_research.design.survey import z_value

    z = z_value(alpha)
    if g1 < 1:
        raise DesignInputError("facilities_clm must be at least 1")
    if t_post < 1:
        raise DesignInputError("rounds_after must be at least 1 (CLM has to be measured)")

    if design == "cluster_rct":
        if min(g1, g0) < (2 if crt_method == "t" else 1):
            raise DesignInputError(
                "a cluster-randomised comparison needs facilities in each arm (2 with the t) "
                f"(got {g1} CLM and {g0} comparison)"
            )
        size = m * t_post
        if s.kind == "proportion":
            p0, p1 = numbers.baseline / 100, numbers.after / 100
            de = 1 + (size - 1) * numbers.icc
            var = (p0 * (1 - p0) / g0 + p1 * (1 - p1) / g1) * de / size
        elif s.kind == "continuous":
            assert numbers.sd is not None
            de = 1 + (size - 1) * numbers.icc
            var = numbers.sd**2 * de / size * (1 / g1 + 1 / g0)
        else:
            cv2 = numbers.cv_between**2
            lam0, lam1 = numbers.baseline, numbers.after
            var = (lam0 / size + cv2 * lam0**2) / g0 + (lam1 / size + cv2 * lam1**2) / g1
        power = crt_power(effect, math.sqrt(var), alpha, crt_method, (g1 + g0) / 2)
        method = (
            f"noncentral t with {g1 + g0 - 2} degrees of freedom"
            if crt_method == "t"
            else "normal approximation"
        )
        if t_pre:
            notes.append(
                "The rounds before CLM are not used by this comparison of the arms after the "
                "start (a baseline adjustment would add power)."
            )
    elif design == "did":
        if g0 < 1 or t_pre < 1:
            raise DesignInputError(
                "difference-in-differences needs comparison facilities and at least one round "
                f"before CLM (got {g0} comparison facilities, {t_pre} rounds before)"
            )
        from clm_research.design.simulation import did_power

        inputs = numbers.simulation_inputs()
        power = did_power(
            inputs["effect"],
            sd=inputs["sd"],
            icc=inputs["icc"],
            cluster_period_size=inputs["cluster_period_size"],
            clusters_treated=g1,
            clusters_control=g0,
            periods_pre=t_pre,
            periods_post=t_post,
            alpha=alpha,
        )
        method = "closed form for two-way fixed effects (normal approximation)"
        notes.append(
            "The formula treats the variance as known; the analysis estimates it from the "
            "facilities (clustered errors), which costs power when there are few of them "
            "(notebook 3 compares the formula with a simulation)."
        )
    elif design == "stepped_wedge":
        from clm_research.design.stepped_wedge import stepped_wedge_design, stepped_wedge_power

        if t_pre < 1:
            raise DesignInputError("a stepped wedge needs at least one round before the first step")
        n_steps = int(steps) if steps is not None else min(t_post, g1)
        if not 1 <= n_steps <= min(t_post, g1):
            raise DesignInputError(
                f"steps must be between 1 and {min(t_post, g1)} (one step per round from the "
                f"start, at least one facility per step), got {steps!r}"
            )
        x = stepped_wedge_design(
            _steps_split(g1, n_steps), baseline_periods=t_pre, extra_periods=t_post - n_steps
        )
        if g0:
            x = np.vstack([x, np.zeros((g0, x.shape[1]), dtype=int)])
        if s.kind == "proportion":
            power = stepped_wedge_power(
                x,
                p_control=numbers.baseline / 100,
                p_intervention=numbers.after / 100,
                icc=numbers.icc,
                cluster_period_size=m,
                alpha=alpha,
            )
        else:
            power = stepped_wedge_power(
                x,
                difference=effect,
                sigma_e=math.sqrt(numbers.within_variance()),
                tau=math.sqrt(numbers.between_variance()),
                cluster_period_size=m,
                alpha=alpha,
            )
        method = f"Hussey & Hughes closed form, {n_steps} step(s) (normal approximation)"
    elif design == "pre_post":
        if t_pre < 1:
            raise DesignInputError("a pre/post comparison needs at least one round before CLM")
        var = sigma2 * (1 / t_pre + 1 / t_post) / g1
        d = abs(effect) / math.sqrt(var)
        power = _phi(d - z) + _phi(-d - z)
        method = "change in the same facilities (normal approximation)"
        notes.append(
            "A pre/post comparison counts anything else that changed at the same time as an "
            "effect of CLM: this power says nothing about that bias (notebook 2)."
        )
        if g0:
            notes.append("Comparison facilities are not used by a pre/post comparison.")
    else:  # its
        if t_pre < 3 or t_post < 3:
            raise DesignInputError(
                "an interrupted time series needs at least 3 rounds before and 3 from the start "
                f"(got {t_pre} and {t_post}); 8–12 on each side are usual"
            )
        n = t_pre + t_post
        t = np.arange(n, dtype=float)
        post = (t >= t_pre).astype(float)
        xmat = np.column_stack([np.ones(n), t, post, (t - t_pre) * post])
        var = sigma2 / g1 * float(np.linalg.inv(xmat.T @ xmat)[2, 2])
        d = abs(effect) / math.sqrt(var)
        power = _phi(d - z) + _phi(-d - z)
        method = "segmented regression of the facilities' average, level change (normal)"
        notes.append(
            "The formula assumes rounds vary independently; real series are autocorrelated "
            "and their usual (Newey–West) errors too small with few rounds (notebook 3)."
        )
        if g0:
            notes.append("Comparison facilities are not used by a single interrupted time series.")
    return PowerCheck(
        power=float(power),
        target=numbers.target_power,
        design=design,
        method=method,
        study=study,
        effect=s.effect_text(numbers.effect),
        indicator=f"“{s.label}”",
        notes=tuple(notes),
    )


def _phi(x: float) -> float:
    from statistics import NormalDist

    return NormalDist().cdf(x)


def facilities_per_arm(
    numbers: PlanningNumbers, *, rounds_after: int = 1, method: Literal["t", "normal"] = "t"
) -> int:
    """Facilities per arm a cluster-randomised comparison needs for the target power.

    The rounds after the start are pooled per facility (``rounds_after`` × interviews, or
    exposure); the smallest whole number per arm under ``method`` (noncentral t by default).

    Examples
    --------
    20 % vs 10 % (an effect of −10 percentage points), 30 interviews per facility, ICC 0.05:
    17 per arm by the normal formula, 18 with the t.

    >>> scale = OutcomeScale("s", "stock-outs", "proportion", "%", "lower_is_better")
    >>> n = PlanningNumbers(scale, baseline=20, effect=-10, icc=0.05, interviews_per_round=30)
    >>> facilities_per_arm(n, method="normal"), facilities_per_arm(n)
    (17, 18)
    """
    from clm_research.design.crt import (
        crt_clusters_per_arm_binary,
        crt_clusters_per_arm_continuous,
        crt_clusters_per_arm_rate,
    )

    _check_counts(rounds_after=rounds_after)
    if rounds_after < 1:
        raise DesignInputError("rounds_after must be at least 1")
    size = numbers.per_round * rounds_after
    power, alpha = numbers.target_power, numbers.alpha
    if numbers.scale.kind == "proportion":
        return crt_clusters_per_arm_binary(
            numbers.baseline / 100,
            numbers.after / 100,
            size,
            numbers.icc,
            power=power,
            alpha=alpha,
            method=method,
        )
    if numbers.scale.kind == "continuous":
        assert numbers.sd is not None
        return crt_clusters_per_arm_continuous(
            numbers.effect, numbers.sd, size, numbers.icc, power=power, alpha=alpha, method=method
        )
    return crt_clusters_per_arm_rate(
        numbers.baseline,
        numbers.after,
        size,
        numbers.cv_between,
        power=power,
        alpha=alpha,
        method=method,
    )


def allocate_arms(
    frame: pd.DataFrame, *, facilities_clm: int, facilities_comparison: int, seed: int
) -> pd.DataFrame:
    """Draw the study's facilities from the list at random and split them into two arms.

    Returns the drawn rows of ``frame`` (in the list's order) with a column ``arm``
    (``"CLM"`` or ``"comparison"``); the same seed gives the same draw.

    Examples
    --------
    >>> f = pd.DataFrame({"facility_id": list("ABCDEF"), "district": ["d"] * 6, "size": [1] * 6})
    >>> allocate_arms(f, facilities_clm=2, facilities_comparison=2, seed=4)["arm"].value_counts().tolist()
    [2, 2]
    """
    _check_counts(facilities_clm=facilities_clm, facilities_comparison=facilities_comparison)
    total = int(facilities_clm) + int(facilities_comparison)
    if total > len(frame):
        raise DesignInputError(
            f"the facility list has {len(frame)} facilities; the study asks for {total} "
            f"({facilities_clm} CLM + {facilities_comparison} comparison)"
        )
    rng = np.random.default_rng(seed)
    drawn = rng.permutation(len(frame))[:total]
    arm = np.array(["CLM"] * int(facilities_clm) + ["comparison"] * int(facilities_comparison))
    out = frame.iloc[drawn].assign(arm=arm)
    return out.sort_index().reset_index(drop=True)


def round_labels(first_round: str, n: int) -> list[str]:
    """``n`` consecutive quarterly rounds from ``first_round`` (``"2025Q1"``).

    Examples
    --------
    >>> round_labels("2025Q3", 4)
    ['2025Q3', '2025Q4', '2026Q1', '2026Q2']
    """
    import re

    if not re.fullmatch(r"\d{4}Q[1-4]", str(first_round)):
        raise DesignInputError(f"first_round must look like 2025Q1, got {first_round!r}")
    if n < 1:
        raise DesignInputError(f"the number of rounds must be at least 1, got {n!r}")
    year, q = int(first_round[:4]), int(first_round[5])
    out = []
    for _ in range(n):
        out.append(f"{year}Q{q}")
        year, q = (year + 1, 1) if q == 4 else (year, q + 1)
    return out


def indicator_by_round(data: pd.DataFrame, scale: OutcomeScale) -> pd.DataFrame:
    """The indicator per round and arm from (rehearsal) data, in the scale's unit.

    A proportion is the percentage of interviews with ``value`` 1, a median the median and a
    mean or duration the mean of ``value``; a rate is the events over the exposure.

    Returns
    -------
    pandas.DataFrame
        Index ``round``, one column per arm.
    """
    group = data.groupby(["round", "arm"])
    if scale.kind == "rate":
        out = group["events"].sum() / group["exposure"].sum()
    elif scale.kind == "proportion":
        out = 100 * group["value"].mean()
    elif scale.indicator_type == "median":
        out = group["value"].median()
    else:
        out = group["value"].mean()
    return out.unstack("arm")


def round_range(first_round: str, last_round: str) -> list[str]:
    """Every quarterly round from ``first_round`` to ``last_round``, both included.

    Examples
    --------
    >>> round_range("2023Q3", "2024Q2")
    ['2023Q3', '2023Q4', '2024Q1', '2024Q2']
    """
    if round_labels(last_round, 1)[0] < round_labels(first_round, 1)[0]:
        raise DesignInputError(f"last_round {last_round} is before first_round {first_round}")
    n = (int(last_round[:4]) - int(first_round[:4])) * 4 + int(last_round[5]) - int(first_round[5])
    return round_labels(first_round, n + 1)


def rehearsal_data(
    frame: pd.DataFrame,
    numbers: PlanningNumbers,
    *,
    clm_facilities: Sequence[str],
    rounds: Sequence[str],
    start_round: str,
    seed: int,
    key_population_shares: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Simulated data of the planned study, to rehearse tables and figures before data exist.

    Every facility of ``frame`` is observed in every round; facilities in ``clm_facilities``
    have CLM from ``start_round`` and change by the planned effect. Facility levels vary with
    the planned ICC (or, for a rate, the between-facility coefficient of variation).

    Parameters
    ----------
    frame
        The sampling frame (:func:`~clm_research.design.facilities.sampling_frame`).
    numbers
        The planning numbers (indicator scale, baseline, effect, spread, interviews).
    clm_facilities
        Facility ids with CLM; the others are comparison facilities.
    rounds, start_round
        Round labels and the round CLM starts.
    seed
        Random seed.
    key_population_shares
        Survey indicators: share of clients per key-population group (schema values, summing
        to 1); default 90 % ``none``, 4 % ``msm``, 4 % ``sex_worker``, 2 % ``pwud``.

    Returns
    -------
    pandas.DataFrame
        Survey indicators: one row per simulated interview with ``facility_id``, ``district``,
        ``arm`` (``"CLM"``/``"comparison"``), ``round``, ``clm_active``, ``key_population``
        and ``value`` (0/1 for a proportion; the unit's value, at least 0, otherwise).
        Rates: one row per facility and round with ``events``, ``exposure`` and ``value``.

    Examples
    --------
    >>> scale = OutcomeScale("r", "respect", "proportion", "%", "higher_is_better")
    >>> n = PlanningNumbers(scale, baseline=60, effect=10, interviews_per_round=5)
    >>> f = pd.DataFrame({"facility_id": ["A", "B"], "district": ["d1", "d2"], "size": [1, 2]})
    >>> data = rehearsal_data(f, n, clm_facilities=["A"], rounds=["2025Q1", "2025Q2"],
    ...                       start_round="2025Q2", seed=1)
    >>> len(data), sorted(data["arm"].unique())
    (20, ['CLM', 'comparison'])
    """
    from clm_research.schema import KEY_POPULATIONS

    rounds = list(rounds)
    if start_round not in rounds:
        raise DesignInputError(f"start_round {start_round!r} is not one of the rounds {rounds}")
    unknown = sorted(set(clm_facilities) - set(frame["facility_id"]))
    if unknown:
        raise DesignInputError(f"CLM facilities not in the facility list: {', '.join(unknown)}")
    shares = dict(
        key_population_shares or {"none": 0.90, "msm": 0.04, "sex_worker": 0.04, "pwud": 0.02}
    )
    bad = sorted(set(shares) - set(KEY_POPULATIONS))
    if bad:
        raise DesignInputError(
            f"key_population_shares: unknown group(s) {', '.join(bad)}; known: "
            f"{', '.join(KEY_POPULATIONS)}"
        )
    if any(v < 0 for v in shares.values()) or not math.isclose(sum(shares.values()), 1.0):
        raise DesignInputError("key_population_shares must be 0 or more and add up to 1")
    rng = np.random.default_rng(seed)
    s = numbers.scale
    ids = frame["facility_id"].astype(str).tolist()
    clm = set(clm_facilities)
    start = rounds.index(start_round)
    level = rng.normal(0.0, math.sqrt(numbers.between_variance()), len(ids))
    mult = np.ones(len(ids))  # facility rate multipliers: between-facility spread of a rate
    if s.kind == "rate" and numbers.cv_between > 0:
        cv = numbers.cv_between
        mult = rng.gamma(1 / cv**2, cv**2, len(ids))
    rows: list[pd.DataFrame] = []
    for i, (fid, district) in enumerate(zip(ids, frame["district"].astype(str), strict=True)):
        arm = "CLM" if fid in clm else "comparison"
        for r, label in enumerate(rounds):
            active = int(fid in clm and r >= start)
            base = {"facility_id": fid, "district": district, "arm": arm, "round": label}
            if s.kind == "rate":
                rate = numbers.baseline * mult[i] + numbers.effect * active
                exposure = float(numbers.per_round)
                events = int(rng.poisson(max(rate, 0.0) * exposure))
                rows.append(
                    pd.DataFrame(
                        [
                            {
                                **base,
                                "clm_active": active,
                                "events": events,
                                "exposure": exposure,
                                "value": events / exposure,
                            }
                        ]
                    )
                )
                continue
            k = int(numbers.interviews_per_round)
            if s.kind == "proportion":
                p = (numbers.baseline + numbers.effect * active) / 100 + level[i]
                value = rng.binomial(1, min(max(p, 0.001), 0.999), k).astype(float)
            else:
                mu = numbers.baseline + numbers.effect * active + level[i]
                value = np.maximum(rng.normal(mu, math.sqrt(numbers.within_variance()), k), 0.0)
            kp = rng.choice(list(shares), size=k, p=list(shares.values()))
            rows.append(
                pd.DataFrame(
                    {
                        **{c: [v] * k for c, v in base.items()},
                        "clm_active": active,
                        "key_population": kp,
                        "value": value,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)
