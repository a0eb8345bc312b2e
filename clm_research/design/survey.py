"""Sample size and precision for facility-clustered client exit surveys (proportions and means).

Conventions (stated once, used everywhere in :mod:`clm_research.design`):

* the normal quantile is exact (``z = 1.959964`` for 95 %), not the rounded 1.96;
* the design effect multiplies the *unrounded* simple-random-sample size and the result is
  rounded **up once, at the end** (``ceil(384.15 × 2) = 769``, not ``385 × 2 = 770``);
* the finite population correction (Cochran 1977, eq. 4.2) is applied after the design effect:
  ``n = n' / (1 + (n' − 1) / N)`` with ``n' = n0 · DE``.
"""

from __future__ import annotations

import math

from clm_research.errors import DesignInputError

__all__ = [
    "z_value",
    "design_effect",
    "effective_sample_size",
    "finite_population_correction",
    "sample_size_proportion",
    "sample_size_mean",
    "margin_of_error_proportion",
    "margin_of_error_mean",
    "clusters_needed",
]

# Rounding up a float that is an integer up to floating-point noise must not add one.
_EPS = 1e-9


def _ceil(x: float) -> int:
    return int(math.ceil(x - _EPS))


def _check_probability(name: str, value: float, *, open_interval: bool = True) -> None:
    ok = 0 < value < 1 if open_interval else 0 <= value <= 1
    if not ok:
        raise DesignInputError(f"{name} must be between 0 and 1, got {value!r}")


def z_value(alpha: float = 0.05, *, two_sided: bool = True) -> float:
    """Standard normal quantile for a significance level (or ``1 − confidence``).

    Parameters
    ----------
    alpha
        Significance level, e.g. 0.05 for 95 % confidence.
    two_sided
        ``True``: the quantile ``1 − alpha/2``; ``False``: ``1 − alpha``.

    Examples
    --------
    >>> round(z_value(0.05), 6)
    1.959964
    >>> round(z_value(0.05, two_sided=False), 4)
    1.6449
    """
    from statistics import NormalDist

    _check_probability("alpha", alpha)
    q = 1 - alpha / 2 if two_sided else 1 - alpha
    return NormalDist().inv_cdf(q)


def design_effect(cluster_size: float, icc: float, cv: float = 0.0) -> float:
    """Design effect of a cluster (facility) sample: how much the clustering inflates variance.

    ``DE = 1 + ((cv² + 1) · m̄ − 1) · ICC`` (Eldridge, Ashby & Kerry 2006), which reduces to
    the familiar ``1 + (m − 1) · ICC`` when every facility gives the same number of
    interviews (``cv = 0``).

    Parameters
    ----------
    cluster_size
        Mean number of interviews per facility (``m̄``).
    icc
        Intra-cluster correlation coefficient: the share of the variation that lies *between*
        facilities (0 = facilities do not differ, 1 = every client in a facility answers alike).
    cv
        Coefficient of variation of the cluster sizes (SD of sizes ÷ mean size); 0 when equal.

    Examples
    --------
    100 interviews per clinic at ICC 0.05 (exit-survey ICCs run 0.01–0.25):

    >>> round(design_effect(100, 0.05), 2)
    5.95

    Unequal sizes with mean 20 and cv 0.5:

    >>> round(design_effect(20, 0.05, cv=0.5), 2)
    2.2
    """
    if cluster_size < 1:
        raise DesignInputError(f"cluster_size must be at least 1, got {cluster_size!r}")
    _check_probability("icc", icc, open_interval=False)
    if cv < 0:
        raise DesignInputError(f"cv must be non-negative, got {cv!r}")
    return 1 + ((cv**2 + 1) * cluster_size - 1) * icc


def effective_sample_size(n: float, cluster_size: float, icc: float, cv: float = 0.0) -> float:
    """Number of independent interviews that carry the same information: ``n / DE``.

    Examples
    --------
    >>> round(effective_sample_size(3000, 100, 0.05), 1)
    504.2
    """
    return n / design_effect(cluster_size, icc, cv)


def finite_population_correction(n: float, population: int) -> float:
    """Reduce a sample size when it is a sizeable share of a finite population.

    ``n_fpc = n / (1 + (n − 1) / N)`` (Cochran 1977, eq. 4.2). The result is not rounded.

    Examples
    --------
    384.15 interviews needed from an infinite population, only 1,000 clients:

    >>> round(finite_population_correction(384.1459, 1000), 1)
    277.7
    """
    if population < 1:
        raise DesignInputError(f"population must be at least 1, got {population!r}")
    return n / (1 + (n - 1) / population)


def _inflate(
    n0: float,
    *,
    cluster_size: float | None,
    icc: float,
    cv: float,
    design_effect_value: float | None,
    population: int | None,
) -> int:
    if design_effect_value is not None:
        if design_effect_value < 1:
            raise DesignInputError(f"design_effect must be at least 1, got {design_effect_value!r}")
        de = design_effect_value
    elif cluster_size is not None:
        de = design_effect(cluster_size, icc, cv)
    else:
        de = 1.0
    n = n0 * de
    if population is not None:
        n = finite_population_correction(n, population)
    return _ceil(n)


def sample_size_proportion(
    p: float,
    margin: float,
    *,
    confidence: float = 0.95,
    cluster_size: float | None = None,
    icc: float = 0.0,
    cv: float = 0.0,
    design_effect: float | None = None,
    population: int | None = None,
) -> int:
    """Interviews needed to estimate a proportion within ``± margin``.

    ``n0 = z² · p · (1 − p) / margin²``, multiplied by the design effect (given directly, or
    from ``cluster_size``, ``icc`` and ``cv``), corrected for a finite population, and rounded
    up once at the end.

    Parameters
    ----------
    p
        Expected proportion (use 0.5 when unknown: it gives the largest sample).
    margin
        Half-width of the confidence interval, as a proportion (0.05 = ± 5 percentage points).
    confidence
        Confidence level.
    cluster_size, icc, cv
        Interviews per facility, intra-cluster correlation, and coefficient of variation of
        the facility sample sizes; used when ``design_effect`` is not given.
    design_effect
        A design effect to use directly (e.g. the conventional 2 of cluster surveys).
    population
        Size of the population sampled from (finite population correction), if small.

    Returns
    -------
    int
        Total number of interviews, rounded up.

    Examples
    --------
    The classic cluster survey: p = 0.5, ± 5 %, 95 %, DE = 2 (384.15 × 2 = 768.3 → 769):

    >>> sample_size_proportion(0.5, 0.05)
    385
    >>> sample_size_proportion(0.5, 0.05, design_effect=2)
    769

    Thirty interviews per facility at ICC 0.05 (DE = 2.45):

    >>> sample_size_proportion(0.5, 0.05, cluster_size=30, icc=0.05)
    942
    """
    _check_probability("p", p)
    _check_probability("margin", margin)
    _check_probability("confidence", confidence)
    z = z_value(1 - confidence)
    n0 = z**2 * p * (1 - p) / margin**2
    return _inflate(
        n0,
        cluster_size=cluster_size,
        icc=icc,
        cv=cv,
        design_effect_value=design_effect,
        population=population,
    )


def sample_size_mean(
    sd: float,
    margin: float,
    *,
    confidence: float = 0.95,
    cluster_size: float | None = None,
    icc: float = 0.0,
    cv: float = 0.0,
    design_effect: float | None = None,
    population: int | None = None,
) -> int:
    """Interviews needed to estimate a mean (e.g. waiting time in minutes) within ``± margin``.

    ``n0 = z² · sd² / margin²``, then the design effect, finite population correction and one
    rounding up, as in :func:`sample_size_proportion`.

    Examples
    --------
    Waiting time with SD 60 minutes, ± 5 minutes, 95 %: 1.96² · 3600 / 25 = 553.2 → 554:

    >>> sample_size_mean(60, 5)
    554
    >>> sample_size_mean(60, 5, cluster_size=30, icc=0.1)
    2158
    """
    if sd <= 0 or margin <= 0:
        raise DesignInputError("sd and margin must be positive")
    _check_probability("confidence", confidence)
    z = z_value(1 - confidence)
    n0 = z**2 * sd**2 / margin**2
    return _inflate(
        n0,
        cluster_size=cluster_size,
        icc=icc,
        cv=cv,
        design_effect_value=design_effect,
        population=population,
    )


def margin_of_error_proportion(
    p: float,
    n: float,
    *,
    confidence: float = 0.95,
    cluster_size: float | None = None,
    icc: float = 0.0,
    cv: float = 0.0,
    population: int | None = None,
) -> float:
    """Half-width of the confidence interval of a proportion from ``n`` clustered interviews.

    ``z · sqrt(DE · p(1 − p) / n · (N − n)/(N − 1))`` (the last factor only with ``population``).

    Examples
    --------
    30 facilities × 30 interviews, p = 0.5, ICC 0.05:

    >>> round(margin_of_error_proportion(0.5, 900, cluster_size=30, icc=0.05), 4)
    0.0511
    """
    _check_probability("p", p)
    if n <= 0:
        raise DesignInputError(f"n must be positive, got {n!r}")
    de = design_effect(cluster_size, icc, cv) if cluster_size is not None else 1.0
    var = de * p * (1 - p) / n
    if population is not None:
        var *= max(population - n, 0) / max(population - 1, 1)
    return z_value(1 - confidence) * math.sqrt(var)


def margin_of_error_mean(
    sd: float,
    n: float,
    *,
    confidence: float = 0.95,
    cluster_size: float | None = None,
    icc: float = 0.0,
    cv: float = 0.0,
    population: int | None = None,
) -> float:
    """Half-width of the confidence interval of a mean from ``n`` clustered interviews.

    Examples
    --------
    >>> round(margin_of_error_mean(60, 554), 2)
    5.0
    """
    if n <= 0 or sd <= 0:
        raise DesignInputError("n and sd must be positive")
    de = design_effect(cluster_size, icc, cv) if cluster_size is not None else 1.0
    var = de * sd**2 / n
    if population is not None:
        var *= max(population - n, 0) / max(population - 1, 1)
    return z_value(1 - confidence) * math.sqrt(var)


def clusters_needed(n: float, cluster_size: float) -> int:
    """Facilities to visit to reach ``n`` interviews at ``cluster_size`` per facility (rounded up).

    Examples
    --------
    >>> clusters_needed(942, 30)
    32
    """
    if cluster_size <= 0:
        raise DesignInputError(f"cluster_size must be positive, got {cluster_size!r}")
    return _ceil(n / cluster_size)
