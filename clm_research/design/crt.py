"""Power and number of clusters for parallel cluster-randomised comparisons (two arms).

The comparison is of facilities with CLM against facilities without, randomised by facility.
Formulas are the normal approximation with a design effect (Donner & Klar 2000; Hayes &
Moulton 2017, ch. 7): with ``k`` facilities per arm and ``m`` interviews per facility,

``Var(difference) = (σ0² + σ1²) · DE / (k · m)``,  ``power = Φ(|δ| / SE − z₁₋α/₂)``,

where ``σ² = sd²`` for a continuous outcome and ``p(1 − p)`` for a proportion. With few
clusters the normal approximation is optimistic; ``small_sample_correction=True`` adds one
facility per arm (Hayes & Bennett 1999), as is common practice below about 15 per arm.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from clm_research.design.survey import _ceil, design_effect, z_value

__all__ = [
    "crt_power_continuous",
    "crt_power_binary",
    "crt_clusters_per_arm_continuous",
    "crt_clusters_per_arm_binary",
    "crt_minimum_detectable_difference",
]

_N = NormalDist()


def _power(effect: float, se: float, alpha: float) -> float:
    # Two-sided: includes the (negligible) probability of rejecting in the wrong direction.
    z = z_value(alpha)
    d = abs(effect) / se
    return _N.cdf(d - z) + _N.cdf(-d - z)


def crt_power_continuous(
    difference: float,
    sd: float,
    clusters_per_arm: int,
    cluster_size: float,
    icc: float,
    *,
    alpha: float = 0.05,
    cv: float = 0.0,
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

    Examples
    --------
    Ten facilities per arm, 20 interviews each, ICC 0.05, a difference of half an SD:
    DE = 1.95, SE = sqrt(2 · 1.95 / 200) = 0.1396, power = Φ(0.5/0.1396 − 1.96) = 0.947.

    >>> round(crt_power_continuous(0.5, 1.0, 10, 20, 0.05), 3)
    0.947
    """
    if clusters_per_arm < 1 or sd <= 0:
        raise ValueError("clusters_per_arm must be at least 1 and sd positive")
    de = design_effect(cluster_size, icc, cv)
    se = math.sqrt(2 * sd**2 * de / (clusters_per_arm * cluster_size))
    return _power(difference, se, alpha)


def crt_power_binary(
    p_control: float,
    p_intervention: float,
    clusters_per_arm: int,
    cluster_size: float,
    icc: float,
    *,
    alpha: float = 0.05,
    cv: float = 0.0,
) -> float:
    """Power to detect a difference between two proportions in a cluster-randomised comparison.

    Examples
    --------
    20 % vs 10 % of clients unable to get all their medicines; 15 facilities per arm,
    30 interviews each, ICC 0.05: DE = 2.45, SE = sqrt((0.16 + 0.09) · 2.45 / 450) = 0.0369,
    power = Φ(0.1/0.0369 − 1.96) = 0.77.

    >>> round(crt_power_binary(0.2, 0.1, 15, 30, 0.05), 2)
    0.77
    """
    for name, v in (("p_control", p_control), ("p_intervention", p_intervention)):
        if not 0 < v < 1:
            raise ValueError(f"{name} must be between 0 and 1, got {v!r}")
    de = design_effect(cluster_size, icc, cv)
    var = (p_control * (1 - p_control) + p_intervention * (1 - p_intervention)) * de
    se = math.sqrt(var / (clusters_per_arm * cluster_size))
    return _power(p_intervention - p_control, se, alpha)


def _clusters(
    variance_sum: float,
    difference: float,
    cluster_size: float,
    de: float,
    power: float,
    alpha: float,
    small_sample_correction: bool,
) -> int:
    if difference == 0:
        raise ValueError("difference must not be zero")
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1, got {power!r}")
    z = z_value(alpha) + _N.inv_cdf(power)
    k = z**2 * variance_sum * de / (cluster_size * difference**2)
    return _ceil(k) + (1 if small_sample_correction else 0)


def crt_clusters_per_arm_continuous(
    difference: float,
    sd: float,
    cluster_size: float,
    icc: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    cv: float = 0.0,
    small_sample_correction: bool = False,
) -> int:
    """Facilities per arm needed to detect a difference in means.

    ``k = (z₁₋α/₂ + z₁₋β)² · 2 sd² · DE / (m · δ²)``, rounded up (plus one with
    ``small_sample_correction``).

    Examples
    --------
    Detect 10 minutes of waiting time (SD 40), 30 interviews per facility, ICC 0.05, 80 %:
    7.849 · 2 · 1600 · 2.45 / (30 · 100) = 20.5 → 21 facilities per arm.

    >>> crt_clusters_per_arm_continuous(10, 40, 30, 0.05)
    21
    """
    de = design_effect(cluster_size, icc, cv)
    return _clusters(2 * sd**2, difference, cluster_size, de, power, alpha, small_sample_correction)


def crt_clusters_per_arm_binary(
    p_control: float,
    p_intervention: float,
    cluster_size: float,
    icc: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    cv: float = 0.0,
    small_sample_correction: bool = False,
) -> int:
    """Facilities per arm needed to detect a difference between two proportions.

    Examples
    --------
    20 % vs 10 %, 30 interviews per facility, ICC 0.05, 80 % power:
    7.849 · 0.25 · 2.45 / (30 · 0.01) = 16.03 → 17.

    >>> crt_clusters_per_arm_binary(0.2, 0.1, 30, 0.05)
    17
    """
    de = design_effect(cluster_size, icc, cv)
    var = p_control * (1 - p_control) + p_intervention * (1 - p_intervention)
    return _clusters(
        var, p_intervention - p_control, cluster_size, de, power, alpha, small_sample_correction
    )


def crt_minimum_detectable_difference(
    sd: float,
    clusters_per_arm: int,
    cluster_size: float,
    icc: float,
    *,
    power: float = 0.8,
    alpha: float = 0.05,
    cv: float = 0.0,
) -> float:
    """Smallest difference in means detectable with the given power (the "MDE").

    ``MDE = (z₁₋α/₂ + z₁₋β) · sqrt(2 sd² · DE / (k · m))``. For a proportion near ``p`` use
    ``sd = sqrt(p (1 − p))``.

    Examples
    --------
    >>> round(crt_minimum_detectable_difference(40, 21, 30, 0.05), 2)
    9.88
    """
    de = design_effect(cluster_size, icc, cv)
    z = z_value(alpha) + _N.inv_cdf(power)
    return z * math.sqrt(2 * sd**2 * de / (clusters_per_arm * cluster_size))
