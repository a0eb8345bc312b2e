"""Power and number of clusters for parallel cluster-randomised comparisons (two arms).

The comparison is of facilities with CLM against facilities without, randomised by facility.
With ``k`` facilities per arm and ``m`` interviews per facility the difference in means has

``Var(difference) = (σ0² + σ1²) · DE / (k · m)``  (Donner & Klar 2000; Hayes & Moulton 2017, ch. 7)

where ``σ² = sd²`` for a continuous outcome and ``p(1 − p)`` for a proportion, and
``DE = 1 + ((cv² + 1) m − 1) ICC`` is the design effect. For an event rate (events per
person-time ``y`` in each facility, between-facility coefficient of variation ``cv_between``)
Hayes & Bennett (1999, Int J Epidemiol 28:319–326) give
``Var(difference) = [(λ0 + λ1) / y + cv_between² (λ0² + λ1²)] / k``.

Two ways to turn the variance into power (``method``):

* ``"t"`` (default): the analysis that suits few facilities, a t-test on facility summaries,
  has ``2(k − 1)`` degrees of freedom, so power is a **noncentral t** probability,
  ``P(|T| > t₁₋α/₂,2(k−1))`` with ``T ~ t(2(k − 1), δ / SE)``. This is what the R package
  clusterPower (``cpa.normal``, ``cpa.binary`` with ``tdist = TRUE``) and the NIH Research
  Methods Resources GRT sample-size calculator compute.
* ``"normal"``: ``Φ(|δ| / SE − z₁₋α/₂) + Φ(−|δ| / SE − z₁₋α/₂)``, the textbook approximation.
  It is optimistic with few facilities (10 per arm: 0.947 where the t gives 0.923), which is
  why Hayes & Moulton add one facility per arm below about 15 (``small_sample_correction``).

The sample-size functions return the smallest whole number of facilities per arm whose power
reaches the target under the chosen method (for ``"t"`` they step up from the normal answer).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Literal

from clm_research.design.survey import _ceil, design_effect, z_value
from clm_research.errors import DesignInputError

__all__ = [
    "PowerMethod",
    "crt_power_continuous",
    "crt_power_binary",
    "crt_power_rate",
    "crt_clusters_per_arm_continuous",
    "crt_clusters_per_arm_binary",
    "crt_clusters_per_arm_rate",
    "crt_minimum_detectable_difference",
]

#: ``"t"``: noncentral t with 2(k − 1) degrees of freedom; ``"normal"``: normal approximation.
PowerMethod = Literal["t", "normal"]

_N = NormalDist()
# more facilities per arm than any CLM programme has: a sample-size search stops here
_MAX_CLUSTERS = 100_000


def _check_method(method: str) -> None:
    if method not in ("t", "normal"):
        raise DesignInputError(f"method must be 't' or 'normal', got {method!r}")


def _power(effect: float, se: float, alpha: float, method: str, clusters_per_arm: float) -> float:
    """Two-sided power for an estimate with standard error ``se`` (both tails counted)."""
    _check_method(method)
    d = abs(effect) / se
    if method == "normal":
        z = z_value(alpha)
        return _N.cdf(d - z) + _N.cdf(-d - z)
    if clusters_per_arm < 2:
        raise DesignInputError(
            "the t method needs at least 2 facilities per arm (2(k − 1) degrees of freedom)"
        )
    from scipy import stats

    df = 2 * (clusters_per_arm - 1)
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    return float(stats.nct.sf(crit, df, d) + stats.nct.cdf(-crit, df, d))


def _check_clusters(clusters_per_arm: float) -> None:
    if clusters_per_arm < 1:
        raise DesignInputError(f"clusters_per_arm must be at least 1, got {clusters_per_arm!r}")


def _check_proportion(name: str, value: float) -> None:
    if not 0 < value < 1:
        raise DesignInputError(f"{name} must be between 0 and 1, got {value!r}")


def crt_power_continuous(
    difference: float,
    sd: float,
    clusters_per_arm: int,
    cluster_size: float,
    icc: float,
    *,
    alpha: float = 0.05,
    cv: float = 0.0,
    method: PowerMethod = "t",
) -> float:
    """Power to detect a difference in means between two arms of facilities.

    Parameters
    ----------
    difference
        Difference in means to detect (in the outcome's units, e.g. minutes of waiting).
    sd
        Standard deviation of the outcome between individual clients (total, all facilities).
    clusters_per_arm
        Facilities in each arm.
    cluster_size
        Interviews per facility (mean, when sizes vary).
    icc
        Intra-cluster correlation coefficient.
    alpha
        Two-sided significance level.
    cv
        Coefficient of variation of the facility sample sizes.
    method
        ``"t"`` (noncentral t, 2(k − 1) degrees of freedom) or ``"normal"``.

    Examples
    --------
    Ten facilities per arm, 20 interviews each, ICC 0.05, a difference of half an SD:
    DE = 1.95, SE = sqrt(2 · 1.95 / 200) = 0.1396, δ/SE = 3.58. Normal: Φ(3.58 − 1.96) = 0.947;
    t with 18 degrees of freedom (critical value 2.101): 0.923.

    >>> round(crt_power_continuous(0.5, 1.0, 10, 20, 0.05), 3)
    0.923
    >>> round(crt_power_continuous(0.5, 1.0, 10, 20, 0.05, method="normal"), 3)
    0.947
    """
    _check_clusters(clusters_per_arm)
    if sd <= 0:
        raise DesignInputError(f"sd must be positive, got {sd!r}")
    de = design_effect(cluster_size, icc, cv)
    se = math.sqrt(2 * sd**2 * de / (clusters_per_arm * cluster_size))
    return _power(difference, se, alpha, method, clusters_per_arm)


def crt_power_binary(
    p_control: float,
    p_intervention: float,
    clusters_per_arm: int,
    cluster_size: float,
    icc: float,
    *,
    alpha: float = 0.05,
    cv: float = 0.0,
    method: PowerMethod = "t",
) -> float:
    """Power to detect a difference between two proportions in a cluster-randomised comparison.

    Parameters
    ----------
    p_control, p_intervention
        Expected proportions (0–1) in the comparison and the CLM arm.
    clusters_per_arm, cluster_size, icc, alpha, cv, method
        As in :func:`crt_power_continuous`.

    Examples
    --------
    20 % vs 10 % of clients unable to get all their medicines; 15 facilities per arm,
    30 interviews each, ICC 0.05: DE = 2.45, SE = sqrt((0.16 + 0.09) · 2.45 / 450) = 0.0369,
    normal power Φ(0.1/0.0369 − 1.96) = 0.77; with 28 degrees of freedom 0.74.

    >>> round(crt_power_binary(0.2, 0.1, 15, 30, 0.05, method="normal"), 2)
    0.77
    >>> round(crt_power_binary(0.2, 0.1, 15, 30, 0.05), 2)
    0.74
    """
    _check_proportion("p_control", p_control)
    _check_proportion("p_intervention", p_intervention)
    _check_clusters(clusters_per_arm)
    de = design_effect(cluster_size, icc, cv)
    var = (p_control * (1 - p_control) + p_intervention * (1 - p_intervention)) * de
    se = math.sqrt(var / (clusters_per_arm * cluster_size))
    return _power(p_intervention - p_control, se, alpha, method, clusters_per_arm)


def _rate_variance_sum(
    rate_control: float, rate_intervention: float, person_time: float, cv_between: float
) -> float:
    for name, v in (("rate_control", rate_control), ("rate_intervention", rate_intervention)):
        if v <= 0:
            raise DesignInputError(f"{name} must be positive, got {v!r}")
    if person_time <= 0:
        raise DesignInputError(f"person_time must be positive, got {person_time!r}")
    if cv_between < 0:
        raise DesignInputError(f"cv_between must be 0 or more, got {cv_between!r}")
    return (rate_control + rate_intervention) / person_time + cv_between**2 * (
        rate_control**2 + rate_intervention**2
    )


def crt_power_rate(
    rate_control: float,
    rate_intervention: float,
    clusters_per_arm: int,
    person_time: float,
    cv_between: float,
    *,
    alpha: float = 0.05,
    method: PowerMethod = "t",
) -> float:
    """Power to detect a difference between two event rates (Hayes & Bennett 1999).

    Parameters
    ----------
    rate_control, rate_intervention
        Expected rates (events per unit of person-time, e.g. treatment interruptions per
        person-month, issues per visit) in the comparison and the CLM arm.
    clusters_per_arm
        Facilities in each arm.
    person_time
        Person-time (or visits) observed in each facility.
    cv_between
        Coefficient of variation of the true rates between facilities of the same arm
        (Hayes & Bennett's ``k``; 0.25 is a common planning value).
    alpha, method
        As in :func:`crt_power_continuous`.

    Examples
    --------
    0.1 vs 0.2 events per person-year, 10 person-years per facility, cv 0.1:
    Var = (0.3/10 + 0.01 · 0.05) / k = 0.0305 / k; with k = 25, SE = 0.03493 and
    normal power Φ(0.1/0.03493 − 1.96) = 0.82.

    >>> round(crt_power_rate(0.1, 0.2, 25, 10, 0.1, method="normal"), 2)
    0.82
    """
    _check_clusters(clusters_per_arm)
    var = _rate_variance_sum(rate_control, rate_intervention, person_time, cv_between)
    se = math.sqrt(var / clusters_per_arm)
    return _power(rate_intervention - rate_control, se, alpha, method, clusters_per_arm)


def _smallest_k(
    power_at: Callable[[int], float],
    normal_k: float,
    power: float,
    method: str,
    small_sample_correction: bool,
) -> int:
    """Smallest whole k with power ≥ target: the normal formula, then a t search upwards."""
    _check_method(method)
    if method == "t" and small_sample_correction:
        raise DesignInputError(
            "small_sample_correction adds one facility per arm to the normal approximation; "
            "the t method already accounts for few facilities (use method='normal' with it)"
        )
    k = max(1, _ceil(normal_k))
    if method == "normal":
        return k + (1 if small_sample_correction else 0)
    k = max(2, k)
    while power_at(k) < power:
        k += 1
        if k > _MAX_CLUSTERS:
            raise DesignInputError(
                f"more than {_MAX_CLUSTERS} facilities per arm would be needed for power {power}"
            )
    return k


def _check_target(difference: float, power: float) -> None:
    if difference == 0:
        raise DesignInputError("the difference to detect must not be zero")
    if not 0 < power < 1:
        raise DesignInputError(f"power must be between 0 and 1, got {power!r}")


def crt_clusters_per_arm_continuous(
    difference: float,
    sd: float,
    cluster_size: float,
    icc: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    cv: float = 0.0,
    method: PowerMethod = "t",
    small_sample_correction: bool = False,
) -> int:
    """Facilities per arm needed to detect a difference in means.

    Normal approximation: ``k = (z₁₋α/₂ + z₁₋β)² · 2 sd² · DE / (m · δ²)``, rounded up (plus one
    with ``small_sample_correction``). The t method returns the smallest ``k`` whose
    noncentral-t power (2(k − 1) degrees of freedom) reaches ``power``.

    Examples
    --------
    Detect 10 minutes of waiting time (SD 40), 30 interviews per facility, ICC 0.05, 80 %:
    7.849 · 2 · 1600 · 2.45 / (30 · 100) = 20.5 → 21 facilities per arm by the normal formula;
    at 21 per arm the t power (40 degrees of freedom) is 0.790, at 22 it is 0.809:

    >>> crt_clusters_per_arm_continuous(10, 40, 30, 0.05, method="normal")
    21
    >>> crt_clusters_per_arm_continuous(10, 40, 30, 0.05)
    22
    """
    _check_target(difference, power)
    if sd <= 0:
        raise DesignInputError(f"sd must be positive, got {sd!r}")
    de = design_effect(cluster_size, icc, cv)
    z = z_value(alpha) + _N.inv_cdf(power)
    normal_k = z**2 * 2 * sd**2 * de / (cluster_size * difference**2)

    def power_at(k: int) -> float:
        return crt_power_continuous(
            difference, sd, k, cluster_size, icc, alpha=alpha, cv=cv, method="t"
        )

    return _smallest_k(power_at, normal_k, power, method, small_sample_correction)


def crt_clusters_per_arm_binary(
    p_control: float,
    p_intervention: float,
    cluster_size: float,
    icc: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    cv: float = 0.0,
    method: PowerMethod = "t",
    small_sample_correction: bool = False,
) -> int:
    """Facilities per arm needed to detect a difference between two proportions.

    Examples
    --------
    20 % vs 10 %, 30 interviews per facility, ICC 0.05, 80 % power. Normal:
    (1.96 + 0.84)² = 7.85, and 7.85 · (0.16 + 0.09) · 2.45 / (30 · 0.01) = 16.03 → 17;
    the t method needs 18 (power 0.799 at 17 per arm, 0.822 at 18):

    >>> crt_clusters_per_arm_binary(0.2, 0.1, 30, 0.05, method="normal")
    17
    >>> crt_clusters_per_arm_binary(0.2, 0.1, 30, 0.05)
    18
    """
    _check_proportion("p_control", p_control)
    _check_proportion("p_intervention", p_intervention)
    _check_target(p_intervention - p_control, power)
    de = design_effect(cluster_size, icc, cv)
    var = p_control * (1 - p_control) + p_intervention * (1 - p_intervention)
    z = z_value(alpha) + _N.inv_cdf(power)
    normal_k = z**2 * var * de / (cluster_size * (p_intervention - p_control) ** 2)

    def power_at(k: int) -> float:
        return crt_power_binary(
            p_control, p_intervention, k, cluster_size, icc, alpha=alpha, cv=cv, method="t"
        )

    return _smallest_k(power_at, normal_k, power, method, small_sample_correction)


def crt_clusters_per_arm_rate(
    rate_control: float,
    rate_intervention: float,
    person_time: float,
    cv_between: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    method: PowerMethod = "t",
    small_sample_correction: bool = False,
) -> int:
    """Facilities per arm needed to detect a difference between two event rates.

    With ``method="normal", small_sample_correction=True`` this is Hayes & Bennett's (1999)
    formula ``c = 1 + (z₁₋α/₂ + z₁₋β)² [(λ0 + λ1)/y + k² (λ0² + λ1²)] / (λ0 − λ1)²``.

    Examples
    --------
    0.1 vs 0.2 per person-year, 10 person-years per facility, cv 0.1, 80 % power:
    1 + 7.849 · (0.03 + 0.0005) / 0.01 = 24.94 → 25 facilities per arm.

    >>> crt_clusters_per_arm_rate(0.1, 0.2, 10, 0.1, method="normal", small_sample_correction=True)
    25
    """
    _check_target(rate_intervention - rate_control, power)
    var = _rate_variance_sum(rate_control, rate_intervention, person_time, cv_between)
    z = z_value(alpha) + _N.inv_cdf(power)
    normal_k = z**2 * var / (rate_intervention - rate_control) ** 2

    def power_at(k: int) -> float:
        return crt_power_rate(
            rate_control, rate_intervention, k, person_time, cv_between, alpha=alpha, method="t"
        )

    return _smallest_k(power_at, normal_k, power, method, small_sample_correction)


def crt_minimum_detectable_difference(
    sd: float,
    clusters_per_arm: int,
    cluster_size: float,
    icc: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    cv: float = 0.0,
    method: PowerMethod = "t",
) -> float:
    """Smallest difference in means detectable with the given power (the "MDE").

    Normal approximation: ``MDE = (z₁₋α/₂ + z₁₋β) · sqrt(2 sd² · DE / (k · m))``. The t method
    solves ``power(MDE) = power`` for the noncentral-t power (close to
    ``(t₁₋α/₂ + t₁₋β) · SE`` with 2(k − 1) degrees of freedom). For a proportion near ``p`` use
    ``sd = sqrt(p (1 − p))``.

    Examples
    --------
    21 facilities per arm, 30 interviews, ICC 0.05, SD 40: SE = sqrt(2 · 1600 · 2.45 / 630) =
    3.528. Normal: (1.960 + 0.842) · 3.528 = 9.88; t with 40 degrees of freedom:
    (2.021 + 0.851) · 3.528 ≈ 10.13.

    >>> round(crt_minimum_detectable_difference(40, 21, 30, 0.05, method="normal"), 2)
    9.88
    >>> round(crt_minimum_detectable_difference(40, 21, 30, 0.05), 2)
    10.13
    """
    _check_clusters(clusters_per_arm)
    _check_method(method)
    if not 0 < power < 1:
        raise DesignInputError(f"power must be between 0 and 1, got {power!r}")
    if sd <= 0:
        raise DesignInputError(f"sd must be positive, got {sd!r}")
    de = design_effect(cluster_size, icc, cv)
    se = math.sqrt(2 * sd**2 * de / (clusters_per_arm * cluster_size))
    z = z_value(alpha) + _N.inv_cdf(power)
    if method == "normal":
        return z * se
    from scipy.optimize import brentq

    def gap(d: float) -> float:
        return _power(d, se, alpha, "t", clusters_per_arm) - power

    hi = z * se
    while gap(hi) < 0:
        hi *= 2
    return float(brentq(gap, 1e-12 * se, hi, xtol=1e-12 * se))
