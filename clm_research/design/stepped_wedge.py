"""Stepped-wedge designs: design matrices, a seeded roll-out schedule, and Hussey & Hughes power.

In a stepped-wedge study every facility starts without CLM and facilities switch to CLM in a
random order, a few at each step, until all are monitored. The design matrix ``X`` has one row
per facility (cluster) and one column per period; ``X[i, j] = 1`` when facility ``i`` has CLM
in period ``j``.

Power uses the closed form of Hussey & Hughes (2007, Contemp Clin Trials 28:182–191) for a
cross-sectional design analysed with fixed period effects and a random facility intercept:

``Var(θ̂) = I σ² (σ² + T τ²) / ((I U − W) σ² + (U² + I T U − T W − I V) τ²)``

with ``I`` facilities, ``T`` periods, ``U = Σ X``, ``W = Σ_j (Σ_i X_ij)²``,
``V = Σ_i (Σ_j X_ij)²``, ``σ²`` the variance of a facility-period mean (individual variance
÷ interviews per facility-period) and ``τ²`` the between-facility variance. The formula holds
for *any* complete 0/1 design matrix; :func:`gls_treatment_variance` computes the same
quantity by generalised least squares and also allows unobserved cells.

:func:`stepped_wedge_power` is the one power function: its arguments say which SD they are
(``sigma_e`` within facilities, ``tau`` between facilities, ``total_sd``, ``icc``), for a
continuous or a binary outcome, so a within-facility SD cannot be taken for a total one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from clm_research.design.survey import z_value
from clm_research.errors import DesignInputError

__all__ = [
    "stepped_wedge_design",
    "hussey_hughes_variance",
    "gls_treatment_variance",
    "stepped_wedge_power",
    "RolloutSchedule",
    "stepped_wedge_schedule",
]

_N = NormalDist()


def stepped_wedge_design(
    clusters_per_step: int | Sequence[int],
    steps: int | None = None,
    *,
    baseline_periods: int = 1,
    extra_periods: int = 0,
) -> np.ndarray:
    """Design matrix of a standard stepped-wedge study (facilities × periods, 0/1).

    Parameters
    ----------
    clusters_per_step
        Facilities switching at each step: one number for every step (then ``steps`` is
        required) or a list with one number per step (like swCRTdesign's ``swDsn(c(6,6,6,6))``).
    steps
        Number of steps when ``clusters_per_step`` is a single number.
    baseline_periods
        Periods before the first step, when no facility has CLM.
    extra_periods
        Periods after the last step, when every facility has CLM.

    Returns
    -------
    numpy.ndarray
        Integer array of shape ``(facilities, baseline_periods + steps - 1 + 1 + extra_periods)``;
        rows are ordered by step.

    Examples
    --------
    >>> stepped_wedge_design(2, steps=2)
    array([[0, 1, 1],
           [0, 1, 1],
           [0, 0, 1],
           [0, 0, 1]])
    >>> stepped_wedge_design([6, 6, 6, 6]).shape
    (24, 5)
    """
    if isinstance(clusters_per_step, int):
        if steps is None:
            raise DesignInputError("give `steps` when clusters_per_step is a single number")
        per_step = [clusters_per_step] * steps
    else:
        per_step = list(clusters_per_step)
        if steps is not None and steps != len(per_step):
            raise DesignInputError(f"steps={steps} but {len(per_step)} step sizes were given")
    if not per_step or any(int(k) < 1 for k in per_step):
        raise DesignInputError("every step needs at least one facility")
    if baseline_periods < 1 or extra_periods < 0:
        raise DesignInputError("baseline_periods must be ≥ 1 and extra_periods ≥ 0")
    n_periods = baseline_periods + len(per_step) + extra_periods
    rows = []
    for s, k in enumerate(per_step):
        row = np.zeros(n_periods, dtype=int)
        row[baseline_periods + s :] = 1
        rows.extend([row] * int(k))
    return np.array(rows)


def _as_design(design: np.ndarray | Sequence[Sequence[float]], *, allow_nan: bool) -> np.ndarray:
    x = np.asarray(design, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise DesignInputError(
            f"design must be a 2-D facilities × periods matrix, got shape {x.shape}"
        )
    observed = x[~np.isnan(x)]
    if not allow_nan and np.isnan(x).any():
        raise DesignInputError("the Hussey & Hughes closed form needs a complete design (no NaN)")
    if not np.isin(observed, (0.0, 1.0)).all():
        raise DesignInputError("design entries must be 0 (no CLM) or 1 (CLM)")
    return x


def hussey_hughes_variance(design: np.ndarray, sigma2: float, tau2: float) -> float:
    """Variance of the treatment effect estimate by the Hussey & Hughes (2007) closed form.

    Parameters
    ----------
    design
        Facilities × periods 0/1 matrix (any pattern, complete).
    sigma2
        Variance of a facility-period mean: individual (within-facility) variance divided by
        the interviews per facility-period.
    tau2
        Between-facility variance (random intercept).

    Examples
    --------
    Four facilities, three periods, two switching at each step, σ² = 1, τ² = 0.5:
    U = 6, W = 0² + 2² + 4² = 20, V = 2² + 2² + 1² + 1² = 10, so
    Var = 4 · 1 · (1 + 1.5) / ((24 − 20) · 1 + (36 + 72 − 60 − 40) · 0.5) = 10 / 8:

    >>> hussey_hughes_variance(stepped_wedge_design(2, steps=2), 1.0, 0.5)
    1.25
    """
    x = _as_design(design, allow_nan=False)
    if sigma2 <= 0 or tau2 < 0:
        raise DesignInputError("sigma2 must be positive and tau2 non-negative")
    n_clusters, n_periods = x.shape
    u = x.sum()
    w = (x.sum(axis=0) ** 2).sum()
    v = (x.sum(axis=1) ** 2).sum()
    denom = (n_clusters * u - w) * sigma2 + (
        u**2 + n_clusters * n_periods * u - n_periods * w - n_clusters * v
    ) * tau2
    if denom <= 0:
        raise DesignInputError(
            "the treatment effect is not estimable from this design "
            "(e.g. every facility switches at the same time)"
        )
    return float(n_clusters * sigma2 * (sigma2 + n_periods * tau2) / denom)


def gls_treatment_variance(design: np.ndarray, sigma2: float, tau2: float) -> float:
    """Variance of the treatment effect by generalised least squares, ``[(X'V⁻¹X)⁻¹]_θθ``.

    The model has one fixed effect per period, the treatment indicator, and a random facility
    intercept (``V`` block-diagonal, exchangeable: ``σ² I + τ² J`` per facility). Unobserved
    facility-periods may be given as ``NaN`` (e.g. transition periods), which the closed form
    cannot handle.

    Examples
    --------
    >>> round(gls_treatment_variance(stepped_wedge_design(2, steps=2), 1.0, 0.5), 10)
    1.25
    """
    x = _as_design(design, allow_nan=True)
    if sigma2 <= 0 or tau2 < 0:
        raise DesignInputError("sigma2 must be positive and tau2 non-negative")
    n_periods = x.shape[1]
    info = np.zeros((n_periods + 1, n_periods + 1))
    for row in x:
        seen = ~np.isnan(row)
        if not seen.any():
            continue
        d = np.column_stack([np.eye(n_periods)[seen], row[seen]])
        k = int(seen.sum())
        v = sigma2 * np.eye(k) + tau2 * np.ones((k, k))
        info += d.T @ np.linalg.solve(v, d)
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        raise DesignInputError("the treatment effect is not estimable from this design") from None
    var = float(cov[-1, -1])
    if not np.isfinite(var) or var <= 0:
        raise DesignInputError("the treatment effect is not estimable from this design")
    return var


def _two_sided_power(effect: float, variance: float, alpha: float) -> float:
    # Hussey & Hughes (2007, eq. 8) write the near tail only; swCRTdesign's swPwr adds the far
    # tail, Φ(−Z − z), and its documented example (0.7861896) needs it at the 7th decimal.
    z = z_value(alpha)
    d = abs(effect) / variance**0.5
    return _N.cdf(d - z) + _N.cdf(-d - z)


def _variance_components(
    *,
    sigma_e: float | None,
    tau: float | None,
    icc: float | None,
    total_sd: float | None,
) -> tuple[float, float]:
    """(σe², τ²) of a continuous outcome from the SDs or ICC the caller named."""
    given = {
        k
        for k, v in {"sigma_e": sigma_e, "tau": tau, "icc": icc, "total_sd": total_sd}.items()
        if v is not None
    }
    accepted = "sigma_e and tau, sigma_e and icc, total_sd and icc, or total_sd and tau"
    if len(given) != 2:
        raise DesignInputError(
            f"give exactly two of sigma_e, tau, icc, total_sd ({accepted}); got "
            f"{', '.join(sorted(given)) or 'none'}"
        )
    if icc is not None and not 0 <= icc < 1:
        raise DesignInputError(f"icc must be in [0, 1), got {icc!r}")
    for name, v in (("sigma_e", sigma_e), ("total_sd", total_sd)):
        if v is not None and v <= 0:
            raise DesignInputError(f"{name} must be positive, got {v!r}")
    if tau is not None and tau < 0:
        raise DesignInputError(f"tau must be 0 or more, got {tau!r}")
    if given == {"sigma_e", "tau"}:
        assert sigma_e is not None and tau is not None
        return sigma_e**2, tau**2
    if given == {"sigma_e", "icc"}:
        assert sigma_e is not None and icc is not None
        return sigma_e**2, icc * sigma_e**2 / (1 - icc)
    if given == {"total_sd", "icc"}:
        assert total_sd is not None and icc is not None
        return (1 - icc) * total_sd**2, icc * total_sd**2
    if given == {"total_sd", "tau"}:
        assert total_sd is not None and tau is not None
        if tau >= total_sd:
            raise DesignInputError(f"tau ({tau}) must be smaller than total_sd ({total_sd})")
        return total_sd**2 - tau**2, tau**2
    raise DesignInputError(f"sigma_e and total_sd cannot be combined; give {accepted}")


def stepped_wedge_power(
    design: np.ndarray,
    *,
    cluster_period_size: float,
    difference: float | None = None,
    p_control: float | None = None,
    p_intervention: float | None = None,
    sigma_e: float | None = None,
    tau: float | None = None,
    icc: float | None = None,
    total_sd: float | None = None,
    alpha: float = 0.05,
) -> float:
    """Power of a cross-sectional stepped-wedge study (Hussey & Hughes 2007), the one entry point.

    Every SD is named for what it is, so one cannot be passed for another:

    * ``sigma_e``: SD between clients *within* a facility and period (individual level);
    * ``tau``: SD of the facility effects (between facilities, random intercept);
    * ``total_sd``: SD between clients over all facilities, ``sqrt(σe² + τ²)``;
    * ``icc``: ``τ² / (τ² + σe²)``, the share of the total variance that lies between facilities.

    A **continuous** outcome (give ``difference``) takes two of these: ``sigma_e`` and ``tau``
    (as swCRTdesign's ``swPwr(sigma=, tau=)``), ``sigma_e`` and ``icc``, ``total_sd`` and
    ``icc``, or ``total_sd`` and ``tau``. A **binary** outcome (give ``p_control`` and
    ``p_intervention``, proportions 0–1) has ``σe² = p̄ (1 − p̄)`` with ``p̄`` their mean (as
    ``swPwr(distn="binomial")``) and takes ``tau`` (on the proportion scale) or ``icc``.

    The variance of the effect estimate is :func:`hussey_hughes_variance` with
    ``σ² = σe² / m`` (``m`` interviews per facility-period); the power is two-sided,
    ``Φ(Z − z₁₋α/₂) + Φ(−Z − z₁₋α/₂)`` with ``Z = |θ| / SE``, as in swPwr.

    Parameters
    ----------
    design
        Facilities × periods 0/1 matrix (e.g. :func:`stepped_wedge_design`).
    cluster_period_size
        Interviews per facility and period (``m``).
    difference
        Continuous outcome: the effect to detect, in the outcome's units.
    p_control, p_intervention
        Binary outcome: the proportions without and with CLM.
    sigma_e, tau, icc, total_sd
        The variability, named as above.
    alpha
        Two-sided significance level.

    Returns
    -------
    float
        Power.

    Raises
    ------
    DesignInputError
        When the outcome or the SDs are given in a combination that is not listed above.

    Examples
    --------
    The swCRTdesign example ``swPwr(swDsn(c(6,6,6,6)), distn="binomial", n=120, mu0=0.05,
    mu1=0.035, tau=0.01, eta=0, rho=0, gamma=0, alpha=0.05)``, documented answer 0.7861896:

    >>> sw = stepped_wedge_design([6, 6, 6, 6])
    >>> round(stepped_wedge_power(sw, p_control=0.05, p_intervention=0.035,
    ...                           cluster_period_size=120, tau=0.01), 7)
    0.7861896

    Waiting time, total SD 40 minutes, ICC 0.05, 30 interviews per facility-round, −10 minutes;
    the same study given as σe = sqrt(0.95) · 40 = 38.99 and τ = sqrt(0.05) · 40 = 8.94:

    >>> round(stepped_wedge_power(sw, difference=-10, total_sd=40, icc=0.05,
    ...                           cluster_period_size=30), 3)
    0.992
    >>> round(stepped_wedge_power(sw, difference=-10, sigma_e=0.95**0.5 * 40,
    ...                           tau=0.05**0.5 * 40, cluster_period_size=30), 3)
    0.992
    """
    if cluster_period_size <= 0:
        raise DesignInputError(f"cluster_period_size must be positive, got {cluster_period_size!r}")
    binary = p_control is not None or p_intervention is not None
    if binary and difference is not None:
        raise DesignInputError(
            "give either difference (continuous outcome) or p_control and p_intervention "
            "(binary outcome), not both"
        )
    if binary:
        if p_control is None or p_intervention is None:
            raise DesignInputError("a binary outcome needs both p_control and p_intervention")
        for name, v in (("p_control", p_control), ("p_intervention", p_intervention)):
            if not 0 < v < 1:
                raise DesignInputError(f"{name} must be between 0 and 1, got {v!r}")
        if sigma_e is not None or total_sd is not None:
            raise DesignInputError(
                "for a binary outcome σe² is p̄(1 − p̄), set by the proportions; give tau or icc only"
            )
        if (tau is None) == (icc is None):
            raise DesignInputError("a binary outcome needs exactly one of tau or icc")
        p_bar = (p_control + p_intervention) / 2
        sigma_e2 = p_bar * (1 - p_bar)
        if tau is not None:
            if tau < 0:
                raise DesignInputError(f"tau must be 0 or more, got {tau!r}")
            tau2 = tau**2
        else:
            assert icc is not None
            if not 0 <= icc < 1:
                raise DesignInputError(f"icc must be in [0, 1), got {icc!r}")
            tau2 = icc * sigma_e2 / (1 - icc)
        effect = p_intervention - p_control
    else:
        if difference is None:
            raise DesignInputError(
                "give difference (continuous outcome) or p_control and p_intervention (binary)"
            )
        sigma_e2, tau2 = _variance_components(sigma_e=sigma_e, tau=tau, icc=icc, total_sd=total_sd)
        effect = difference
    variance = hussey_hughes_variance(design, sigma_e2 / cluster_period_size, tau2)
    return _two_sided_power(effect, variance, alpha)


@dataclass(frozen=True)
class RolloutSchedule:
    """A randomised stepped-wedge roll-out: who starts CLM when.

    Attributes
    ----------
    allocation
        One row per facility: ``cluster_id``, ``step`` (1 = first wave), ``start_period``.
    design
        Facilities × periods 0/1 matrix, rows in the order of ``allocation``.
    periods
        Period labels (e.g. rounds ``"2025Q1"``), one per column of ``design``.
    seed
        The random seed used (same seed, same schedule).
    """

    allocation: pd.DataFrame
    design: np.ndarray
    periods: tuple[str, ...]
    seed: int

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per facility and period with ``clm`` (0/1)."""
        wide = pd.DataFrame(self.design, index=self.allocation["cluster_id"], columns=self.periods)
        wide.index.name = "cluster_id"
        return wide.reset_index().melt(id_vars="cluster_id", var_name="period", value_name="clm")


def stepped_wedge_schedule(
    cluster_ids: Sequence[str],
    clusters_per_step: int | Sequence[int],
    *,
    seed: int,
    baseline_periods: int = 1,
    extra_periods: int = 0,
    periods: Sequence[str] | None = None,
    strata: Sequence[str] | None = None,
) -> RolloutSchedule:
    """Randomly allocate facilities to the steps of a stepped-wedge roll-out (seeded).

    Parameters
    ----------
    cluster_ids
        Facility ids to allocate.
    clusters_per_step
        Facilities starting CLM at each step: a number (same at every step; must divide the
        number of facilities) or a list summing to the number of facilities.
    seed
        Random seed; record it in the analysis plan so the allocation can be re-created.
    baseline_periods, extra_periods
        Periods before the first and after the last step.
    periods
        Labels of the periods (default ``"P1"``, ``"P2"``, …).
    strata
        Optional stratum per facility (e.g. region): allocation is balanced within strata
        (see :func:`clm_research.design.sampling.allocate_rollout`).

    Examples
    --------
    >>> s = stepped_wedge_schedule(["F1", "F2", "F3", "F4"], 2, seed=1)
    >>> s.design.shape, sorted(s.allocation["step"].tolist())
    ((4, 3), [1, 1, 2, 2])
    """
    from clm_research.design.sampling import allocate_rollout

    allocation = allocate_rollout(cluster_ids, clusters_per_step, seed=seed, strata=strata)
    per_step = allocation.groupby("step").size().sort_index().tolist()
    design = stepped_wedge_design(
        per_step, baseline_periods=baseline_periods, extra_periods=extra_periods
    )
    n_periods = design.shape[1]
    labels = tuple(periods) if periods is not None else tuple(f"P{j + 1}" for j in range(n_periods))
    if len(labels) != n_periods:
        raise DesignInputError(f"{len(labels)} period labels given for {n_periods} periods")
    allocation = allocation.sort_values(["step", "order"]).reset_index(drop=True)
    allocation["start_period"] = [labels[baseline_periods + s - 1] for s in allocation["step"]]
    return RolloutSchedule(allocation=allocation, design=design, periods=labels, seed=seed)
