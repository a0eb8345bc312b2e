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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from clm_research.design.survey import z_value

__all__ = [
    "stepped_wedge_design",
    "hussey_hughes_variance",
    "gls_treatment_variance",
    "hussey_hughes_power",
    "stepped_wedge_power",
    "stepped_wedge_power_binary",
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
            raise ValueError("give `steps` when clusters_per_step is a single number")
        per_step = [clusters_per_step] * steps
    else:
        per_step = list(clusters_per_step)
        if steps is not None and steps != len(per_step):
            raise ValueError(f"steps={steps} but {len(per_step)} step sizes were given")
    if not per_step or any(int(k) < 1 for k in per_step):
        raise ValueError("every step needs at least one facility")
    if baseline_periods < 1 or extra_periods < 0:
        raise ValueError("baseline_periods must be ≥ 1 and extra_periods ≥ 0")
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
        raise ValueError(f"design must be a 2-D facilities × periods matrix, got shape {x.shape}")
    observed = x[~np.isnan(x)]
    if not allow_nan and np.isnan(x).any():
        raise ValueError("the Hussey & Hughes closed form needs a complete design (no NaN)")
    if not np.isin(observed, (0.0, 1.0)).all():
        raise ValueError("design entries must be 0 (no CLM) or 1 (CLM)")
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
        raise ValueError("sigma2 must be positive and tau2 non-negative")
    n_clusters, n_periods = x.shape
    u = x.sum()
    w = (x.sum(axis=0) ** 2).sum()
    v = (x.sum(axis=1) ** 2).sum()
    denom = (n_clusters * u - w) * sigma2 + (
        u**2 + n_clusters * n_periods * u - n_periods * w - n_clusters * v
    ) * tau2
    if denom <= 0:
        raise ValueError(
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
        raise ValueError("sigma2 must be positive and tau2 non-negative")
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
        raise ValueError("the treatment effect is not estimable from this design") from None
    var = float(cov[-1, -1])
    if not np.isfinite(var) or var <= 0:
        raise ValueError("the treatment effect is not estimable from this design")
    return var


def hussey_hughes_power(
    design: np.ndarray, effect: float, sigma2: float, tau2: float, *, alpha: float = 0.05
) -> float:
    """Two-sided power ``Φ(|θ| / sqrt(Var(θ̂)) − z₁₋α/₂)`` (Hussey & Hughes 2007, eq. 8).

    Examples
    --------
    Same design as :func:`hussey_hughes_variance`, effect 3: Φ(3 / sqrt(1.25) − 1.96) = 0.765.

    >>> round(hussey_hughes_power(stepped_wedge_design(2, steps=2), 3.0, 1.0, 0.5), 3)
    0.765
    """
    var = hussey_hughes_variance(design, sigma2, tau2)
    return _N.cdf(abs(effect) / var**0.5 - z_value(alpha))


def stepped_wedge_power(
    design: np.ndarray,
    effect: float,
    *,
    sd: float,
    icc: float,
    cluster_period_size: float,
    alpha: float = 0.05,
) -> float:
    """Power of a stepped-wedge study with a continuous outcome (e.g. waiting time).

    Splits the total variance ``sd²`` into between-facility ``τ² = ICC · sd²`` and within
    ``σ_e² = (1 − ICC) · sd²``; ``σ² = σ_e² / m`` with ``m`` interviews per facility-period.

    Examples
    --------
    24 facilities in 4 steps of 6, 5 rounds, 30 interviews per facility-round, ICC 0.05,
    waiting time SD 40 minutes, effect −10 minutes:

    >>> round(stepped_wedge_power(stepped_wedge_design([6, 6, 6, 6]), -10, sd=40, icc=0.05,
    ...                           cluster_period_size=30), 3)
    0.992
    """
    if not 0 <= icc < 1:
        raise ValueError(f"icc must be in [0, 1), got {icc!r}")
    if cluster_period_size < 1 or sd <= 0:
        raise ValueError("cluster_period_size must be ≥ 1 and sd positive")
    sigma2 = (1 - icc) * sd**2 / cluster_period_size
    return hussey_hughes_power(design, effect, sigma2, icc * sd**2, alpha=alpha)


def stepped_wedge_power_binary(
    design: np.ndarray,
    p_control: float,
    p_intervention: float,
    *,
    cluster_period_size: float,
    tau: float | None = None,
    icc: float | None = None,
    alpha: float = 0.05,
) -> float:
    """Power of a stepped-wedge study with a binary outcome (Hussey & Hughes 2007, sec. 3).

    ``σ² = p̄ (1 − p̄) / m`` with ``p̄`` the mean of the two proportions; the between-facility
    variation is given either as ``tau`` (SD of facility random effects on the proportion
    scale, as in swCRTdesign's ``swPwr``) or as an ICC (``τ² = ICC · p̄(1 − p̄) / (1 − ICC)``).

    Examples
    --------
    The swCRTdesign README example, ``swPwr(swDsn(c(6,6,6,6)), distn="binomial", n=120,
    mu0=0.05, mu1=0.035, tau=0.01, ...)``, whose documented answer is 0.7861896:

    >>> round(stepped_wedge_power_binary(stepped_wedge_design([6, 6, 6, 6]), 0.05, 0.035,
    ...                                  cluster_period_size=120, tau=0.01), 5)
    0.78619
    """
    for name, v in (("p_control", p_control), ("p_intervention", p_intervention)):
        if not 0 < v < 1:
            raise ValueError(f"{name} must be between 0 and 1, got {v!r}")
    if (tau is None) == (icc is None):
        raise ValueError("give exactly one of tau or icc")
    p_bar = (p_control + p_intervention) / 2
    base = p_bar * (1 - p_bar)
    if tau is not None:
        tau2 = tau**2
    else:
        assert icc is not None
        if not 0 <= icc < 1:
            raise ValueError(f"icc must be in [0, 1), got {icc!r}")
        tau2 = icc * base / (1 - icc)
    return hussey_hughes_power(
        design, p_intervention - p_control, base / cluster_period_size, tau2, alpha=alpha
    )


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
        raise ValueError(f"{len(labels)} period labels given for {n_periods} periods")
    allocation = allocation.sort_values(["step", "order"]).reset_index(drop=True)
    allocation["start_period"] = [labels[baseline_periods + s - 1] for s in allocation["step"]]
    return RolloutSchedule(allocation=allocation, design=design, periods=labels, seed=seed)
