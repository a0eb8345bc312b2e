"""Multi-country synthesis: random-effects meta-analysis (DerSimonian–Laird or REML) and a forest plot."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from clm_research.evaluation._results import (
    Effect,
    EffectScale,
    EvaluationError,
    EvaluationResult,
    forest,
    numeric_column,
    require_columns,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MetaResult", "meta_analysis", "pool_effects"]


@dataclass(repr=False)
class MetaResult(EvaluationResult):
    """Pooled random-effects estimate; ``studies`` has each country's estimate, CI and weight."""

    studies: pd.DataFrame = field(default_factory=pd.DataFrame)
    ratio: bool = False

    def plot(self, ax: Axes | None = None) -> Figure:
        """Forest plot: one row per country (square sized by weight) and the pooled diamond."""
        s = self.studies
        e = self.primary
        return forest(
            labels=list(s["label"].astype(str)),
            estimates=list(s["estimate"]),
            lows=list(s["ci_low"]),
            highs=list(s["ci_high"]),
            null=e.null_value,
            log=self.ratio,
            weights=list(s["weight"]),
            pooled=(f"Pooled ({self.diagnostics['method']})", e.estimate, e.ci_low, e.ci_high),
            title=f"{self.method}; I² = {self.diagnostics['I2']:.0%}, τ² = {self.diagnostics['tau2']:.3g}",
            ax=ax,
        )


def _tau2_dl(y: np.ndarray, v: np.ndarray) -> float:
    w = 1 / v
    mu = np.sum(w * y) / np.sum(w)
    q = float(np.sum(w * (y - mu) ** 2))
    c = np.sum(w) - np.sum(w**2) / np.sum(w)
    return max(0.0, (q - (len(y) - 1)) / c)


def _tau2_reml(
    y: np.ndarray, v: np.ndarray, tol: float = 1e-10, max_iter: int = 500
) -> tuple[float, bool]:
    """REML τ² by Fisher scoring (Viechtbauer 2005, eq. 12), started at the DL value, truncated at 0."""
    tau2 = _tau2_dl(y, v)
    for _ in range(max_iter):
        w = 1 / (v + tau2)
        mu = np.sum(w * y) / np.sum(w)
        num = np.sum(w**2 * ((y - mu) ** 2 - v)) / np.sum(w**2) + 1 / np.sum(w)
        new = max(0.0, float(num))
        if abs(new - tau2) < tol:
            return new, True
        tau2 = new
    return tau2, False


def meta_analysis(
    effects: pd.DataFrame,
    *,
    estimate: str = "estimate",
    se: str | None = None,
    ci_low: str = "ci_low",
    ci_high: str = "ci_high",
    label: str = "country",
    scale: Literal["difference", "ratio"] = "difference",
    method: Literal["reml", "dl"] = "reml",
    level: float = 0.95,
) -> MetaResult:
    """Random-effects meta-analysis of per-country effects.

    Parameters
    ----------
    effects
        One row per country: an estimate and either its standard error (``se``, on the
        estimation scale: log for ratios) or its confidence limits (the SE is then recovered as
        width / (2·z), on the log scale for ratios).
    scale
        ``ratio`` for rate/odds/hazard ratios (pooled on the log scale), ``difference`` otherwise.
    method
        ``reml`` (default) or ``dl`` (DerSimonian–Laird).

    Returns
    -------
    MetaResult
        Effect ``pooled`` and ``prediction`` (95% prediction interval for a new country, t with
        k − 2 df); diagnostics ``tau2``, ``I2`` (τ²/(τ²+s²), Higgins & Thompson), ``Q``, ``Q_p``.

    Raises
    ------
    EvaluationError
        Fewer than two countries, non-positive standard errors or CI limits.
    """
    from scipy import stats

    what = "meta_analysis"
    require_columns(effects, [estimate, label] + ([se] if se else [ci_low, ci_high]), what)
    df = effects.reset_index(drop=True)
    k = len(df)
    if k < 2:
        raise EvaluationError(f"{what}: need at least two countries (estimates) to pool, got {k}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    est = numeric_column(df, estimate, what).to_numpy(float)
    ratio = scale == "ratio"
    if ratio and np.any(est <= 0):
        raise EvaluationError(
            f"{what}: ratio estimates must be positive (row {int(np.argmax(est <= 0))})"
        )
    y = np.log(est) if ratio else est
    if se is not None:
        s = numeric_column(df, se, what).to_numpy(float)
    else:
        lo = numeric_column(df, ci_low, what).to_numpy(float)
        hi = numeric_column(df, ci_high, what).to_numpy(float)
        if ratio:
            if np.any(lo <= 0):
                raise EvaluationError(
                    f"{what}: ratio CI limits must be positive (row {int(np.argmax(lo <= 0))})"
                )
            lo, hi = np.log(lo), np.log(hi)
        s = (hi - lo) / (2 * z)
    if np.any(~np.isfinite(s)) or np.any(s <= 0) or np.any(~np.isfinite(y)):
        bad = int(np.argmax(~np.isfinite(s) | (s <= 0) | ~np.isfinite(y)))
        raise EvaluationError(
            f"{what}: row {bad} ({df[label].iloc[bad]!r}) has no usable estimate/standard error"
        )
    v = s**2
    w_fe = 1 / v
    mu_fe = np.sum(w_fe * y) / np.sum(w_fe)
    q = float(np.sum(w_fe * (y - mu_fe) ** 2))
    converged = True
    if method == "dl":
        tau2 = _tau2_dl(y, v)
    elif method == "reml":
        tau2, converged = _tau2_reml(y, v)
    else:
        raise EvaluationError(f"{what}: unknown method {method!r}; use 'reml' or 'dl'")
    w = 1 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    se_mu = float(math.sqrt(1 / np.sum(w)))
    typical_v = (k - 1) * np.sum(w_fe) / (np.sum(w_fe) ** 2 - np.sum(w_fe**2))
    i2 = float(tau2 / (tau2 + typical_v))
    eff_scale: EffectScale = "ratio" if ratio else "difference"
    pooled = Effect.from_coefficient(
        "pooled",
        f"Pooled effect ({method.upper()} random effects)",
        mu,
        se_mu,
        scale=eff_scale,
        level=level,
    )
    effects_out = [pooled]
    if k >= 3:
        t = float(stats.t.ppf(0.5 + level / 2, k - 2))
        half = t * math.sqrt(tau2 + se_mu**2)
        lo_p, hi_p = mu - half, mu + half
        tr = math.exp if ratio else (lambda x: x)
        effects_out.append(
            Effect(
                "prediction",
                "Prediction interval for a new country",
                tr(mu),
                tr(lo_p),
                tr(hi_p),
                math.nan,
                eff_scale,
                math.nan,
                level,
            )
        )
    tr_arr = np.exp if ratio else (lambda x: x)
    studies = pd.DataFrame(
        {
            "label": df[label].to_numpy(),
            "estimate": tr_arr(y),
            "ci_low": tr_arr(y - z * s),
            "ci_high": tr_arr(y + z * s),
            "se": s,
            "weight": w / w.sum(),
        }
    )
    notes = []
    if k < 5:
        notes.append(
            f"Only {k} countries: τ² is estimated imprecisely; read heterogeneity with caution."
        )
    if not converged:
        notes.append("REML did not converge; τ² is the last iterate.")
    return MetaResult(
        method=f"Random-effects meta-analysis ({method.upper()})",
        effects=tuple(effects_out),
        diagnostics={
            "method": method.upper(),
            "k": k,
            "tau2": tau2,
            "tau": math.sqrt(tau2),
            "I2": i2,
            "Q": q,
            "Q_df": k - 1,
            "Q_p": float(stats.chi2.sf(q, k - 1)),
            "fixed_effect": float(tr_arr(mu_fe)),
        },
        n_obs=k,
        notes=tuple(notes),
        studies=studies,
        ratio=ratio,
    )


def pool_effects(
    effects: pd.DataFrame,
    *,
    by: str = "indicator_id",
    label: str = "country",
    method: Literal["reml", "dl"] = "reml",
    level: float = 0.95,
) -> pd.DataFrame:
    """:func:`meta_analysis` of every indicator estimated in at least two countries.

    Parameters
    ----------
    effects
        Stacked per-country effect tables (``indicator_id``, ``label``, ``estimate``,
        ``ci_low``, ``ci_high`` and ``country``); rows without an estimate or CI are left out.
    by, label
        The indicator and the country columns.
    method, level
        As in :func:`meta_analysis`.

    Returns
    -------
    DataFrame
        One row per pooled indicator: ``indicator_id, indicator, countries, pooled, ci_low,
        ci_high, p_value, tau2, i2`` (I² as a share, 0–1).
    """
    columns = [by, "indicator", "countries", "pooled", "ci_low", "ci_high", "p_value", "tau2", "i2"]
    usable = effects.dropna(subset=["estimate", "ci_low", "ci_high"])
    rows = []
    for key, group in usable.groupby(by, sort=True):
        if len(group) < 2:
            continue
        res = meta_analysis(group, label=label, method=method, level=level)
        e = res.primary
        rows.append(
            {
                by: key,
                "indicator": group["label"].iloc[0] if "label" in group else str(key),
                "countries": len(group),
                "pooled": e.estimate,
                "ci_low": e.ci_low,
                "ci_high": e.ci_high,
                "p_value": e.p_value,
                "tau2": float(res.diagnostics["tau2"]),
                "i2": float(res.diagnostics["I2"]),
            }
        )
    return pd.DataFrame(rows, columns=columns)
